// taskloom labelling page: sign in with a worker token, pick a pool, label task after task.
// An ES module, no framework, no build step. Task content is only ever put into the page as
// text nodes or checked attributes (never as markup), and the server's Content-Security-Policy
// allows no inline script.
import { buildControl, el, fieldOfPath, renderInputs } from "./fields.js";

const ROOT = location.pathname.replace(/\/label\/?$/, "");
const TOKEN_KEY = "taskloom.workerToken";

const state = {
  token: null,
  worker: null,
  pools: [],
  poolId: new URLSearchParams(location.search).get("pool"),
  assignment: null,
  controls: [], // one list of field controls per task of the assignment
  submitted: 0,
  busy: false,
};

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------- the server

class ApiError extends Error {
  constructor(status, body) {
    const err = (body && body.error) || {};
    super(err.message || `The server answered ${status}.`);
    this.status = status;
    this.code = err.code || "";
    this.details = err.details || {};
  }
}

async function api(method, path, body) {
  const headers = { Accept: "application/json", Authorization: `Worker ${state.token}` };
  const init = { method, headers, cache: "no-store", credentials: "omit" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(ROOT + path, init);
  } catch (_) {
    throw new ApiError(0, {
      error: { code: "network", message: "The server cannot be reached. Try again in a moment." },
    });
  }
  if (resp.status === 204) return null;
  const text = await resp.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch (_) {
      data = null;
    }
  }
  if (!resp.ok) throw new ApiError(resp.status, data);
  return data;
}

// ---------------------------------------------------------------- views and messages

const VIEWS = ["login-view", "pools-view", "task-view", "done-view"];

function show(view) {
  for (const id of VIEWS) $(id).hidden = id !== view;
  $("who").hidden = view === "login-view";
}

function alertMessage(text) {
  const box = $("alert");
  box.textContent = text || "";
  box.hidden = !text;
}

function status(text) {
  $("status").textContent = text || "";
}

function setBusy(busy) {
  state.busy = busy;
  for (const id of ["submit", "skip", "check-again", "sign-in"]) $(id).disabled = busy;
  $("task-form").setAttribute("aria-busy", busy ? "true" : "false");
}

function updateCounter() {
  $("counter").textContent = state.submitted ? `${state.submitted} submitted` : "";
}

function setPoolInUrl(poolId) {
  const url = new URL(location.href);
  if (poolId) url.searchParams.set("pool", poolId);
  else url.searchParams.delete("pool");
  history.replaceState(null, "", url);
}

/** Handle the errors every worker call can meet; false when the caller should handle it. */
function handleCommonError(err) {
  if (err.status === 401) {
    signOut("Your token was not accepted. Sign in again.");
    return true;
  }
  if (err.status === 0) {
    alertMessage(err.message);
    return true;
  }
  return false;
}

// ---------------------------------------------------------------- sign in, pools

async function signIn(token) {
  state.token = token;
  setBusy(true);
  status("Signing in…");
  try {
    const me = await api("GET", "/v1/crowd/me");
    sessionStorage.setItem(TOKEN_KEY, token);
    state.worker = (me && me.worker) || {};
    state.pools = (me && Array.isArray(me.pools) && me.pools) || [];
    $("worker-name").textContent = state.worker.name || state.worker.external_id || state.worker.id || "worker";
    alertMessage("");
    status("");
  } catch (err) {
    setBusy(false);
    status("");
    if (err.status === 401) {
      signOut("That token was not accepted. Check it and try again.");
    } else {
      alertMessage(err.message);
      show("login-view");
    }
    return;
  }
  setBusy(false);
  if (state.poolId) await next();
  else showPools();
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  Object.assign(state, { token: null, worker: null, pools: [], assignment: null, controls: [] });
  $("tasks").replaceChildren();
  $("token").value = "";
  show("login-view");
  status("");
  alertMessage(message || "");
  $("token").focus();
}

function poolName(pool) {
  return pool.public_name || pool.private_name || pool.id;
}

function showPools() {
  state.assignment = null;
  const list = $("pool-list");
  list.replaceChildren();
  for (const pool of state.pools) {
    const button = el("button", { type: "button", "data-pool": pool.id }, poolName(pool));
    button.addEventListener("click", () => {
      state.poolId = String(pool.id);
      setPoolInUrl(state.poolId);
      alertMessage("");
      next();
    });
    const item = el("li", {}, button);
    if (pool.public_description) item.append(el("p", { class: "help", text: pool.public_description }));
    list.append(item);
  }
  $("no-pools").hidden = state.pools.length > 0;
  show("pools-view");
  const first = list.querySelector("button");
  if (first) first.focus();
}

// ---------------------------------------------------------------- assignments

async function next() {
  if (state.busy) return;
  setBusy(true);
  status("Loading the next task…");
  let assignment;
  try {
    assignment = await api("POST", "/v1/crowd/me/assignments", { pool_id: state.poolId });
  } catch (err) {
    setBusy(false);
    status("");
    if (handleCommonError(err)) return;
    alertMessage(err.message);
    setPoolInUrl(null);
    state.poolId = null;
    showPools();
    return;
  }
  setBusy(false);
  if (assignment === null) {
    state.assignment = null;
    status("");
    show("done-view");
    $("check-again").focus();
    return;
  }
  status("");
  renderAssignment(assignment);
}

function renderAssignment(assignment) {
  state.assignment = assignment;
  const spec = assignment.task_spec || assignment.spec || {};
  const inputSpec = spec.input_spec || {};
  const outputSpec = spec.output_spec || {};
  const settings = (spec.view_spec && spec.view_spec.settings) || {};
  const tasks = Array.isArray(assignment.tasks) ? assignment.tasks : [];
  const pool = state.pools.find((p) => String(p.id) === String(assignment.pool_id));

  $("task-title").textContent = pool ? poolName(pool) : "Task";
  const description = $("pool-description");
  description.textContent = (pool && pool.public_description) || "";
  description.hidden = !description.textContent;
  const instructions = (pool && pool.public_instructions) || "";
  $("instructions-text").textContent = instructions;
  $("instructions").hidden = !instructions;
  $("skip").hidden = settings.showSkip === false;

  const container = $("tasks");
  container.replaceChildren();
  state.controls = [];
  tasks.forEach((task, index) => {
    const article = el("article", {
      class: "task",
      "data-task": index,
      "data-task-id": task.id,
      "aria-labelledby": `t${index}-title`,
    });
    const heading = tasks.length > 1 ? `Task ${index + 1} of ${tasks.length}` : "Task";
    article.append(el("h3", { id: `t${index}-title`, text: heading }));
    article.append(renderInputs(task.input_values || {}, inputSpec, index));
    const answers = el("div", { class: "answers" });
    const controls = Object.entries(outputSpec).map(([name, field], k) =>
      buildControl(index, k, name, field || {}),
    );
    for (const control of controls) answers.append(control.root);
    article.append(answers);
    state.controls.push(controls);
    container.append(article);
  });
  show("task-view");
  const first = container.querySelector("input, select, textarea");
  if (first) first.focus();
}

async function submit(event) {
  event.preventDefault();
  if (state.busy || !state.assignment) return;
  clearErrors();
  const solutions = [];
  let firstInvalid = null;
  for (const controls of state.controls) {
    const output = {};
    for (const control of controls) {
      const { value, error } = control.read();
      if (error) {
        control.setError(error);
        firstInvalid = firstInvalid || control;
      } else if (value !== undefined) {
        output[control.name] = value;
      }
    }
    solutions.push({ output_values: output });
  }
  if (firstInvalid) {
    alertMessage("Some answers need attention.");
    firstInvalid.focus();
    return;
  }
  const id = state.assignment.id;
  setBusy(true);
  status("Submitting…");
  try {
    await api("POST", `/v1/crowd/me/assignments/${encodeURIComponent(id)}/submit`, { solutions });
  } catch (err) {
    setBusy(false);
    status("");
    if (handleCommonError(err)) return;
    if (err.status === 422 || err.status === 400) {
      showServerErrors(err);
      return;
    }
    if (err.status === 404 || err.status === 409) {
      alertMessage(`This assignment can no longer be submitted: ${err.message}`);
      await next();
      return;
    }
    alertMessage(err.message);
    return;
  }
  setBusy(false);
  state.submitted += 1;
  updateCounter();
  await next();
  if (!state.busy) status("Submitted.");
}

async function skip() {
  if (state.busy || !state.assignment) return;
  const id = state.assignment.id;
  setBusy(true);
  status("Skipping…");
  try {
    await api("POST", `/v1/crowd/me/assignments/${encodeURIComponent(id)}/skip`);
  } catch (err) {
    setBusy(false);
    status("");
    if (handleCommonError(err)) return;
    if (err.status !== 404 && err.status !== 409) {
      alertMessage(err.message);
      return;
    }
  }
  setBusy(false);
  await next();
}

// ---------------------------------------------------------------- errors on fields

function clearErrors() {
  alertMessage("");
  for (const controls of state.controls) for (const control of controls) control.setError("");
}

function showServerErrors(err) {
  const found = [];
  const details = err.details || {};
  const many = details.validation_errors || details.errors;
  if (many && typeof many === "object") {
    const entries = Array.isArray(many)
      ? many.map((e) => [e.field || e.path, e])
      : Object.entries(many);
    for (const [path, e] of entries) found.push([path, (e && e.message) || err.message]);
  }
  if (details.field && !found.some(([path]) => path === details.field)) {
    // The top message may start with the path itself: "solutions.0.output_values.x: ...".
    const prefix = `${details.field}: `;
    const message = err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message;
    found.push([details.field, message]);
  }
  let firstControl = null;
  const unplaced = [];
  for (const [path, message] of found) {
    const where = fieldOfPath(path);
    const control =
      where && (state.controls[where.task] || []).find((c) => c.name === where.field);
    if (control) {
      control.setError(message);
      firstControl = firstControl || control;
    } else {
      unplaced.push(message);
    }
  }
  if (!found.length) unplaced.push(err.message);
  alertMessage(
    unplaced.length ? unplaced.join(" ") : "The server did not accept some answers.",
  );
  if (firstControl) firstControl.focus();
}

// ---------------------------------------------------------------- start

function start() {
  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token").value.trim();
    if (!token) {
      alertMessage("Enter your worker token.");
      $("token").focus();
      return;
    }
    $("token").value = "";
    signIn(token);
  });
  $("task-form").addEventListener("submit", submit);
  $("skip").addEventListener("click", skip);
  $("check-again").addEventListener("click", () => next());
  $("other-pools").addEventListener("click", () => refreshPools());
  $("change-pool").addEventListener("click", () => refreshPools());
  $("sign-out").addEventListener("click", () => signOut(""));

  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) signIn(token);
  else signOut("");
}

async function refreshPools() {
  if (state.busy) return;
  alertMessage("");
  state.poolId = null;
  setPoolInUrl(null);
  try {
    const me = await api("GET", "/v1/crowd/me");
    state.pools = (me && Array.isArray(me.pools) && me.pools) || [];
  } catch (err) {
    if (handleCommonError(err)) return;
    alertMessage(err.message);
  }
  showPools();
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
