"""The correct-answer file of a task model: a header line, then one row per key with its label.

TSV is the native form (NCLUE's ``pet_food.tsv``); CSV is read too. The reader copes with
what spreadsheets and editors write: a UTF-8 byte-order mark (or UTF-16 with one), CRLF
line ends, quoted fields (quotes around a field holding the delimiter, doubled quotes
inside), blank lines and spaces around values. The columns are the first two unless named.

Errors are :class:`~taskloom.ml.tabular.TrainingError` with a ``code``:
``unreadable_file`` (binary data, not UTF-8, broken quoting), ``missing_column``,
``no_rows``, ``missing_key`` / ``missing_label`` (an empty cell, with its line number).
"""

from __future__ import annotations

import codecs
import csv
import io
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from taskloom.ml.tabular import TrainingError

__all__ = ["LabelTable", "read_label_file"]

_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


class LabelTable(NamedTuple):
    """The rows of a correct-answer file (file order): keys as an arrow string array (a
    million keys cost a few megabytes, not a million Python objects), labels as a numpy
    object array whose equal labels share one string."""

    keys: Any
    labels: np.ndarray
    key_column: str
    label_column: str


def _payload(data: bytes) -> bytes:
    """The file as UTF-8 bytes without a byte-order mark; unreadable files refused."""
    if data.startswith(_UTF16_BOMS):
        try:
            return data.decode("utf-16").encode("utf-8")
        except UnicodeDecodeError as exc:
            raise TrainingError(
                "the correct-answer file is not valid UTF-16", code="unreadable_file"
            ) from exc
    if b"\x00" in data:
        raise TrainingError(
            "the correct-answer file is not a text file (it holds NUL bytes)",
            code="unreadable_file",
        )
    try:
        codecs.decode(data, "utf-8")
    except UnicodeDecodeError as exc:
        raise TrainingError(
            f"the correct-answer file is not UTF-8 text (byte {exc.start}); "
            "save it as UTF-8 (or UTF-16 with a byte-order mark)",
            code="unreadable_file",
        ) from exc
    return data[len(codecs.BOM_UTF8) :] if data.startswith(codecs.BOM_UTF8) else data


def _delimiter(first_line: str, filename: str | None) -> str:
    name = (filename or "").lower()
    if name.endswith(".csv"):
        return ","
    if name.endswith((".tsv", ".tab")):
        return "\t"
    # no telling name: the header decides (a tab anywhere in it means TSV)
    return "\t" if "\t" in first_line or "," not in first_line else ","


def _header(payload: bytes) -> tuple[str, int]:
    """The first line that is not blank, and where it starts."""
    offset = 0
    for line in io.BytesIO(payload):
        text = line.decode("utf-8").rstrip("\r\n")
        if text.strip():
            return text, offset
        offset += len(line)
    return "", offset


def _first(mask: Any) -> int | None:
    """The position of the first true value of an arrow boolean array, if any."""
    if not pc.any(mask).as_py():
        return None
    return int(np.flatnonzero(mask.to_numpy(zero_copy_only=False))[0])


def read_label_file(
    data: bytes,
    *,
    filename: str | None = None,
    key_column: str | None = None,
    label_column: str | None = None,
    delimiter: str | None = None,
) -> LabelTable:
    """Parse a correct-answer file (pyarrow's CSV reader: no Python loop over rows).

    ``filename`` (``.csv`` / ``.tsv``) picks the delimiter; without it the header line does.
    ``key_column`` and ``label_column`` name the columns to use (default: the first two).
    """
    payload = _payload(bytes(data))
    header, start = _header(payload)
    if not header:
        raise TrainingError("the correct-answer file is empty", code="no_rows")
    sep = delimiter or _delimiter(header, filename)
    kind = "TSV" if sep == "\t" else "CSV"
    try:
        width = len(next(csv.reader([header], delimiter=sep)))
        # the header is read as the first row, so that every column, whatever its name, is
        # text ("007" stays "007"), and an empty cell is "" (never a null)
        table = pacsv.read_csv(
            pa.py_buffer(memoryview(payload)[start:]),
            read_options=pacsv.ReadOptions(use_threads=False, autogenerate_column_names=True),
            parse_options=pacsv.ParseOptions(
                delimiter=sep, quote_char='"', double_quote=True, ignore_empty_lines=True
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={f"f{i}": pa.string() for i in range(width)},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (csv.Error, pa.ArrowInvalid) as exc:
        raise TrainingError(
            f"the correct-answer file cannot be read as {kind}: {exc}", code="unreadable_file"
        ) from exc
    columns = [str(table.column(i)[0].as_py()).strip() for i in range(table.num_columns)]
    table = table.slice(1)
    for i, t in enumerate(table.schema.types):
        if not pa.types.is_string(t):  # a header the csv module split otherwise: still text
            table = table.set_column(i, table.field(i).name, pc.cast(table.column(i), pa.string()))
    key_name = key_column if key_column is not None else (columns[0] if columns else "")
    if label_column is not None:
        label_name = label_column
    elif len(columns) >= 2:
        label_name = columns[1]
    else:
        raise TrainingError(
            f"the correct-answer file needs a key column and a label column; its header has "
            f"{columns}",
            code="missing_column",
            details={"columns": columns},
        )
    for wanted in (key_name, label_name):
        if wanted not in columns:
            raise TrainingError(
                f"the correct-answer file has no column {wanted!r} (its header: {columns})",
                code="missing_column",
                details={"column": wanted, "columns": columns},
            )
    raw = [table.column(i).combine_chunks() for i in range(len(columns))]
    for name in (key_name, label_name):
        col = raw[columns.index(name)]
        breaks = pc.or_(pc.match_substring(col, "\n"), pc.match_substring(col, "\r"))
        position = _first(breaks)
        if position is not None:  # a quote left open runs on over the following lines
            raise TrainingError(
                f"the correct-answer file cannot be read as {kind}: the {name!r} of row "
                f"{position + 1} runs over a line end (a quote that is not closed?)",
                code="unreadable_file",
                details={"row": position + 1, "column": name},
            )
    cells = [pc.utf8_trim_whitespace(col) for col in raw]
    del raw, table
    # rows whose every cell is blank ("\t\t" lines) are blank lines too
    blank = None
    for col in cells:
        empty = pc.equal(pc.utf8_length(col), 0)
        blank = empty if blank is None else pc.and_(blank, empty)
    if blank is not None and pc.any(blank).as_py():
        cells = [col.filter(pc.invert(blank)) for col in cells]
    if not cells or len(cells[0]) == 0:
        raise TrainingError("the correct-answer file has a header but no rows", code="no_rows")
    keys, labels = cells[columns.index(key_name)], cells[columns.index(label_name)]
    for name, col, code in ((key_name, keys, "missing_key"), (label_name, labels, "missing_label")):
        position = _first(pc.equal(pc.utf8_length(col), 0))
        if position is not None:
            raise TrainingError(
                f"row {position + 1} of the correct-answer file (after the header, blank lines not "
                f"counted) has an empty {name!r}",
                code=code,
                details={"row": position + 1, "column": name},
            )
    # labels repeat: one string per distinct label, shared by its rows
    encoded = pc.dictionary_encode(labels)
    names = np.asarray(encoded.dictionary.to_pylist(), dtype=object)
    return LabelTable(
        keys=keys,
        labels=names[encoded.indices.to_numpy(zero_copy_only=False)],
        key_column=key_name,
        label_column=label_name,
    )
