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

import csv
import io
import warnings
from typing import NamedTuple

import numpy as np
import pandas as pd

from taskloom.ml.tabular import TrainingError

__all__ = ["LabelTable", "read_label_file"]

_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


class LabelTable(NamedTuple):
    """The rows of a correct-answer file (strings, file order)."""

    keys: np.ndarray
    labels: np.ndarray
    key_column: str
    label_column: str


def _text(data: bytes) -> str:
    if data.startswith(_UTF16_BOMS):
        try:
            return data.decode("utf-16")
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
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TrainingError(
            f"the correct-answer file is not UTF-8 text (byte {exc.start}); "
            "save it as UTF-8 (or UTF-16 with a byte-order mark)",
            code="unreadable_file",
        ) from exc


def _delimiter(first_line: str, filename: str | None) -> str:
    name = (filename or "").lower()
    if name.endswith(".csv"):
        return ","
    if name.endswith((".tsv", ".tab")):
        return "\t"
    # no telling name: the header decides (a tab anywhere in it means TSV)
    return "\t" if "\t" in first_line or "," not in first_line else ","


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line
    return ""


def read_label_file(
    data: bytes,
    *,
    filename: str | None = None,
    key_column: str | None = None,
    label_column: str | None = None,
    delimiter: str | None = None,
) -> LabelTable:
    """Parse a correct-answer file.

    ``filename`` (``.csv`` / ``.tsv``) picks the delimiter; without it the header line does.
    ``key_column`` and ``label_column`` name the columns to use (default: the first two).
    """
    text = _text(bytes(data))
    header = _first_line(text)
    if not header:
        raise TrainingError("the correct-answer file is empty", code="no_rows")
    sep = delimiter or _delimiter(header, filename)
    try:
        with warnings.catch_warnings():
            # a first row longer than the header is a warning in pandas; it is the same error
            # as any later row that is too long
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(
                io.StringIO(text),
                sep=sep,
                dtype=str,
                keep_default_na=False,
                na_filter=False,
                skip_blank_lines=True,
                quoting=csv.QUOTE_MINIMAL,
                engine="c",
                index_col=False,
            )
    except (pd.errors.ParserError, pd.errors.ParserWarning, ValueError) as exc:
        raise TrainingError(
            f"the correct-answer file cannot be read as {'TSV' if sep == chr(9) else 'CSV'}: {exc}",
            code="unreadable_file",
        ) from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    columns = list(frame.columns)
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
        if wanted not in frame.columns:
            raise TrainingError(
                f"the correct-answer file has no column {wanted!r} (its header: {columns})",
                code="missing_column",
                details={"column": wanted, "columns": columns},
            )
    # rows whose every cell is blank ("\t\t" lines) are blank lines too
    cells = frame.apply(lambda col: col.str.strip())
    cells = cells[(cells != "").any(axis=1)]
    if cells.empty:
        raise TrainingError("the correct-answer file has a header but no rows", code="no_rows")
    for name, code in ((key_name, "missing_key"), (label_name, "missing_label")):
        empty = (cells[name] == "").to_numpy()
        if empty.any():
            position = int(np.flatnonzero(empty)[0])
            raise TrainingError(
                f"row {position + 1} of the correct-answer file (after the header, blank lines not "
                f"counted) has an empty {name!r}",
                code=code,
                details={"row": position + 1, "column": name},
            )
    return LabelTable(
        keys=cells[key_name].to_numpy(dtype=object),
        labels=cells[label_name].to_numpy(dtype=object),
        key_column=key_name,
        label_column=label_name,
    )
