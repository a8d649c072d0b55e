// taskloom labelling page: showing a task's input values and building one answer control
// per output_spec field. Task content only ever goes into the page as text nodes or checked
// attributes, never as markup.

const CHOICE_RADIO_MAX = 10; // more allowed values than this: a <select>
const IMAGE_PATH = /\.(png|jpe?g|gif|webp|bmp|svg|avif|ico)$/i;
const SCALARS = new Set(["string", "integer", "float", "boolean", "url", "file", "coordinates", "json"]);

/** Build an element. Children are nodes or strings (appended as text, never parsed). */
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "text") node.textContent = String(value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

/** "solutions[1].output_values.tags.2" -> {task: 1, field: "tags"}; null when not a field. */
export function fieldOfPath(path) {
  const m = /^(?:solutions(?:\[(\d+)\]|\.(\d+))\.)?output_values\.([^.[\]]+)/.exec(String(path || ""));
  if (!m) return null;
  return { task: Number(m[1] ?? m[2] ?? 0), field: m[3] };
}

// ---------------------------------------------------------------- showing input values

function splitType(type) {
  const t = String(type || "");
  return t.startsWith("array_") ? { array: true, base: t.slice(6) } : { array: false, base: t };
}

function safeUrl(value) {
  try {
    const url = new URL(String(value), location.href);
    return url.protocol === "http:" || url.protocol === "https:" ? url : null;
  } catch (_) {
    return null;
  }
}

function renderValue(base, value, label) {
  if (value === null || value === undefined) return el("span", { class: "empty", text: "—" });
  if (base === "url" || (!SCALARS.has(base) && typeof value === "string" && /^https?:\/\//i.test(value))) {
    const url = safeUrl(value);
    if (!url) return el("span", { class: "text", text: String(value) });
    const link = el("a", { href: url.href, target: "_blank", rel: "noopener noreferrer" });
    if (IMAGE_PATH.test(url.pathname)) {
      link.append(el("img", { src: url.href, alt: label, referrerpolicy: "no-referrer", loading: "lazy" }));
      return el("span", { class: "image" }, link, el("span", { class: "url", text: url.href }));
    }
    link.textContent = String(value);
    return link;
  }
  if (base === "json" || (typeof value === "object" && value !== null)) {
    return el("pre", { class: "json", text: JSON.stringify(value, null, 2) });
  }
  if (base === "boolean" && typeof value === "boolean") {
    return el("span", { class: "text", text: value ? "yes" : "no" });
  }
  return el("span", { class: "text", text: String(value) });
}

export function renderInputs(values, inputSpec, index) {
  const list = el("dl", { class: "inputs", "data-inputs": index });
  const names = Object.keys(inputSpec).length ? Object.keys(inputSpec) : Object.keys(values);
  for (const name of names) {
    const field = inputSpec[name] || {};
    if (field.hidden) continue;
    if (!(name in values)) continue;
    const value = values[name];
    const { array, base } = splitType(field.type);
    let shown;
    if (array && Array.isArray(value)) {
      shown = el("ul", { class: "array" });
      value.forEach((item, i) => shown.append(el("li", {}, renderValue(base, item, `${name} ${i + 1}`))));
    } else {
      shown = renderValue(base, value, name);
    }
    list.append(el("dt", { text: name }), el("dd", { "data-input": name }, shown));
  }
  return list;
}

// ---------------------------------------------------------------- answer controls

const isBlank = (s) => s.trim() === "";

/** Check a scalar (already typed) value against the field's rules: a message or "". */
function checkScalar(base, value, field) {
  if (base === "string" || base === "url" || base === "file" || base === "coordinates") {
    if (field.min_length != null && value.length < field.min_length)
      return `Enter at least ${field.min_length} characters.`;
    if (field.max_length != null && value.length > field.max_length)
      return `Enter at most ${field.max_length} characters.`;
  }
  if (base === "integer" || base === "float") {
    if (field.min_value != null && value < field.min_value) return `The smallest allowed value is ${field.min_value}.`;
    if (field.max_value != null && value > field.max_value) return `The largest allowed value is ${field.max_value}.`;
  }
  if (base === "string" && field.pattern) {
    const re = compilePattern(field.pattern);
    // A pattern JavaScript cannot read is left to the server.
    if (re && !re.test(value)) return "The answer does not have the expected form.";
  }
  if (base === "url" && !safeUrl(value)) return "Enter a full http(s) address.";
  if (base === "coordinates") {
    const m = /^\s*([+-]?\d+(?:\.\d+)?)\s*,\s*([+-]?\d+(?:\.\d+)?)\s*$/.exec(value);
    if (!m || Math.abs(Number(m[1])) > 90 || Math.abs(Number(m[2])) > 180)
      return "Enter coordinates as latitude,longitude (latitude -90 to 90, longitude -180 to 180).";
  }
  if (Array.isArray(field.allowed_values) && !field.allowed_values.includes(value))
    return "This value is not one of the allowed answers.";
  return "";
}

const patterns = new Map();
function compilePattern(pattern) {
  if (!patterns.has(pattern)) {
    let re = null;
    try {
      re = new RegExp(`^(?:${pattern})$`, "u");
    } catch (_) {
      re = null;
    }
    patterns.set(pattern, re);
  }
  return patterns.get(pattern);
}

/** Parse one typed value from text: {value} or {error}. */
function parseText(base, text) {
  const s = text.trim();
  if (base === "integer") {
    if (!/^[-+]?\d+$/.test(s)) return { error: "Enter a whole number." };
    return { value: Number(s) };
  }
  if (base === "float") {
    const n = Number(s);
    if (s === "" || !Number.isFinite(n)) return { error: "Enter a number." };
    return { value: n };
  }
  if (base === "boolean") {
    if (/^(true|yes|1)$/i.test(s)) return { value: true };
    if (/^(false|no|0)$/i.test(s)) return { value: false };
    return { error: "Enter yes or no." };
  }
  if (base === "json") {
    try {
      return { value: JSON.parse(s) };
    } catch (_) {
      return { error: "Enter valid JSON." };
    }
  }
  return { value: base === "string" ? text : s };
}

export function buildControl(taskIndex, k, name, field) {
  const id = `t${taskIndex}-f${k}`;
  const errorId = `${id}-error`;
  const { array, base } = splitType(field.type);
  const required = field.required !== false;
  const allowed = Array.isArray(field.allowed_values) ? field.allowed_values : null;
  const root = el("div", { class: "field", "data-task": taskIndex, "data-field": name });
  const error = el("p", { id: errorId, class: "field-error", hidden: true });
  const labelText = required ? name : `${name} (optional)`;
  const inputs = []; // the focusable elements, for aria-invalid and focus

  const control = {
    name,
    root,
    setError(message) {
      error.textContent = message || "";
      error.hidden = !message;
      root.classList.toggle("invalid", Boolean(message));
      for (const input of inputs) {
        if (message) input.setAttribute("aria-invalid", "true");
        else input.removeAttribute("aria-invalid");
      }
    },
    focus() {
      const target = inputs.find((i) => i.checked) || inputs[0];
      if (target) target.focus();
    },
    read() {
      return { value: undefined };
    },
  };

  const group = (legend, radio) => {
    const fs = el("fieldset", { id, "aria-describedby": errorId });
    if (radio) {
      fs.setAttribute("role", "radiogroup");
      if (required) fs.setAttribute("aria-required", "true");
    }
    fs.append(el("legend", { text: legend }));
    root.append(fs);
    return fs;
  };
  // A chosen radio button cannot be unchosen by clicking: optional questions get a button.
  const clearable = (fs) => {
    if (required) return;
    const clear = el("button", { type: "button", class: "link", "aria-label": `Clear ${name}` }, "Clear");
    clear.addEventListener("click", () => {
      for (const input of inputs) input.checked = false;
    });
    fs.append(clear);
  };
  const option = (fs, type, text, j) => {
    const optionId = `${id}-o${j}`;
    const input = el("input", { type, id: optionId, name: id, value: j });
    inputs.push(input);
    fs.append(el("div", { class: "option" }, input, el("label", { for: optionId, text })));
    return input;
  };
  const missing = () => (required ? { error: "This answer is required." } : { value: undefined });

  if (array && allowed) {
    // Several of the allowed values: check boxes.
    const fs = group(labelText, false);
    allowed.forEach((v, j) => option(fs, "checkbox", String(v), j));
    control.read = () => {
      const value = inputs.filter((i) => i.checked).map((i) => allowed[Number(i.value)]);
      if (field.min_size != null && value.length < field.min_size)
        return { error: `Choose at least ${field.min_size}.` };
      if (field.max_size != null && value.length > field.max_size)
        return { error: `Choose at most ${field.max_size}.` };
      return { value };
    };
  } else if (!array && base === "boolean") {
    const fs = group(labelText, true);
    option(fs, "radio", "Yes", 0);
    option(fs, "radio", "No", 1);
    clearable(fs);
    control.read = () => {
      const chosen = inputs.find((i) => i.checked);
      if (!chosen) return missing();
      const value = chosen.value === "0";
      if (allowed && !allowed.includes(value)) return { error: "This value is not one of the allowed answers." };
      return { value };
    };
  } else if (!array && allowed && allowed.length <= CHOICE_RADIO_MAX) {
    const fs = group(labelText, true);
    allowed.forEach((v, j) => option(fs, "radio", String(v), j));
    clearable(fs);
    control.read = () => {
      const chosen = inputs.find((i) => i.checked);
      return chosen ? { value: allowed[Number(chosen.value)] } : missing();
    };
  } else if (!array && allowed) {
    const select = el("select", { id, name: id, "aria-describedby": errorId, required });
    select.append(el("option", { value: "", text: "Choose…" }));
    allowed.forEach((v, j) => select.append(el("option", { value: j, text: String(v) })));
    inputs.push(select);
    root.append(el("label", { for: id, text: labelText }), select);
    control.read = () => (select.value === "" ? missing() : { value: allowed[Number(select.value)] });
  } else if (array || base === "json") {
    // Free-form lists (one value a line) and JSON: a text area.
    const hint = base === "json" ? (array ? "A JSON array." : "A JSON object.") : "One value a line.";
    const hintId = `${id}-hint`;
    const area = el("textarea", {
      id,
      name: id,
      rows: 4,
      spellcheck: "false",
      "aria-describedby": `${hintId} ${errorId}`,
      required,
    });
    inputs.push(area);
    root.append(el("label", { for: id, text: labelText }), el("p", { id: hintId, class: "help", text: hint }), area);
    control.read = () => {
      if (isBlank(area.value)) return missing();
      if (base === "json") {
        const parsed = parseText("json", area.value);
        if (parsed.error) return parsed;
        if (array && !Array.isArray(parsed.value)) return { error: "Enter a JSON array." };
        if (!array && (typeof parsed.value !== "object" || parsed.value === null || Array.isArray(parsed.value)))
          return { error: "Enter a JSON object." };
        return parsed;
      }
      const value = [];
      for (const line of area.value.split("\n")) {
        if (isBlank(line)) continue;
        const parsed = parseText(base, line);
        if (parsed.error) return parsed;
        const problem = checkScalar(base, parsed.value, field);
        if (problem) return { error: `${line.trim()}: ${problem}` };
        value.push(parsed.value);
      }
      if (field.min_size != null && value.length < field.min_size)
        return { error: `Give at least ${field.min_size} values.` };
      if (field.max_size != null && value.length > field.max_size)
        return { error: `Give at most ${field.max_size} values.` };
      return { value };
    };
  } else {
    // One scalar value: a number, address or text input.
    const attrs = { id, name: id, "aria-describedby": errorId, required, autocomplete: "off" };
    if (base === "integer" || base === "float") {
      Object.assign(attrs, {
        type: "number",
        step: base === "integer" ? "1" : "any",
        min: field.min_value,
        max: field.max_value,
        inputmode: base === "integer" ? "numeric" : "decimal",
      });
    } else {
      Object.assign(attrs, {
        type: base === "url" ? "url" : "text",
        maxlength: field.max_length,
        minlength: field.min_length,
        placeholder: base === "coordinates" ? "latitude,longitude" : null,
      });
      if (base === "string" && field.pattern && compilePattern(field.pattern)) attrs.pattern = field.pattern;
    }
    const input = el("input", attrs);
    inputs.push(input);
    root.append(el("label", { for: id, text: labelText }), input);
    control.read = () => {
      if (base === "integer" || base === "float") {
        if (input.validity && input.validity.badInput) return { error: "Enter a number." };
      }
      if (isBlank(input.value)) return missing();
      const parsed = parseText(base, input.value);
      if (parsed.error) return parsed;
      const problem = checkScalar(base, parsed.value, field);
      return problem ? { error: problem } : parsed;
    };
  }
  root.append(error);
  return control;
}
