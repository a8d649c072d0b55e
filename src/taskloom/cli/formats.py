"""Documents in files: JSON Lines, CSV and Parquet, read as a stream and written whole.

Readers yield one ``Record`` per document (or per unreadable line, so that an import can
report it with its line number) and report how far they are through the file. Writers take
documents one at a time; CSV and Parquet need every column before the first row, so they
spool to a temporary file and write the real one when closed. Every writer writes next to
the target and renames at the end, so a failed export leaves no half-written file.

CSV conventions (the same both ways):
- a column ``a.b`` is the field ``b`` inside the object ``a``;
- ``*_vector_`` columns and cells holding lists or objects are JSON text (``[0.1, 0.2]``);
- with type inference, ``true``/``false`` are booleans, ``42`` and ``-1.5e3`` are numbers
  (but ``007`` stays text), and an empty cell leaves the field out.

Parquet is read and written with ``pyarrow``, a dependency of taskloom.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import decimal
import json
import math
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from taskloom.cli.common import CliError

FORMATS = ("jsonl", "csv", "parquet")
_EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet"}
VECTOR_SUFFIX = "_vector_"
_JSON_OPTS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def detect_format(path: Path, given: str | None, *, default: str | None = None) -> str:
    """The file format: ``given``, else from the extension, else ``default``."""
    if given:
        return given
    fmt = _EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        if default is not None:
            return default
        raise CliError(
            f"cannot tell the format of {path.name!r} from its extension "
            "(.jsonl, .ndjson, .csv, .parquet); give --format"
        )
    return fmt


def require_pyarrow() -> tuple[Any, Any]:
    """``(pyarrow, pyarrow.parquet)``, or a clear error when the extra is not installed."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise CliError(
            f"Parquet files need pyarrow, which is not installed ({exc}); "
            "install it with: pip install 'taskloom[parquet]'"
        ) from None
    return pa, pq


# -- reading ---------------------------------------------------------------------------------


@dataclass
class Record:
    """One document read from a file, or why the line could not be read."""

    where: str
    doc: dict[str, Any] | None = None
    error: str | None = None


class Source:
    """A file of documents. ``total`` is in ``unit``s (bytes for text files, rows for
    Parquet), the same units ``records`` passes to ``advance`` as it reads."""

    def __init__(self, path: Path, fmt: str, *, infer_types: bool = True) -> None:
        self.path = path
        self.fmt = fmt
        self.infer_types = infer_types
        if fmt == "parquet":
            _, pq = require_pyarrow()
            try:
                self._parquet = pq.ParquetFile(path)
            except Exception as exc:  # pyarrow raises several types for a bad file
                raise CliError(f"{path.name} is not a readable Parquet file: {exc}") from None
            self.total = self._parquet.metadata.num_rows
            self.unit = "rows"
        else:
            self.total = path.stat().st_size
            self.unit = "bytes"

    def records(self, advance: Callable[[int], None]) -> Iterator[Record]:
        if self.fmt == "jsonl":
            return _read_jsonl(self.path, advance)
        if self.fmt == "csv":
            return _read_csv(self.path, advance, self.infer_types)
        return _read_parquet(self._parquet, advance)


def _read_jsonl(path: Path, advance: Callable[[int], None]) -> Iterator[Record]:
    with open(path, "rb") as f:
        for n, line in enumerate(f, 1):
            advance(len(line))
            if n == 1:
                line = line.removeprefix(b"\xef\xbb\xbf")
            if not line.strip():
                continue
            where = f"line {n}"
            try:
                doc = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                yield Record(where, error=f"not valid JSON: {exc}")
                continue
            if not isinstance(doc, dict):
                yield Record(where, error="not a JSON object")
                continue
            yield Record(where, doc)


_MISSING = object()
_INT_RE = re.compile(r"[-+]?(?:0|[1-9][0-9]*)")
_FLOAT_RE = re.compile(r"[-+]?(?:(?:0|[1-9][0-9]*)(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")


def infer_value(cell: str) -> Any:
    """A CSV cell as the JSON value it most plainly is (see the module docstring)."""
    if cell == "":
        return _MISSING
    low = cell.lower()
    if low in ("true", "false"):
        return low == "true"
    if _INT_RE.fullmatch(cell):
        n = int(cell)
        # JSON numbers beyond 64 bits do not survive the trip; keep them as text
        return n if -(2**63) <= n < 2**64 else cell
    if _FLOAT_RE.fullmatch(cell):
        f = float(cell)
        return f if math.isfinite(f) else cell
    if cell[0] in "[{":
        try:
            return json.loads(cell)
        except ValueError:
            return cell
    return cell


def _csv_value(column: str, cell: str, infer: bool) -> Any:
    if column == "_id":
        return cell if cell != "" else _MISSING
    if column.endswith(VECTOR_SUFFIX):
        if not cell.strip():
            return _MISSING
        try:
            return json.loads(cell)
        except ValueError:
            return cell  # the server explains why this is not a vector
    return infer_value(cell) if infer else cell


def _read_csv(path: Path, advance: Callable[[int], None], infer: bool) -> Iterator[Record]:
    def lines() -> Iterator[str]:
        with open(path, "rb") as f:
            for n, raw in enumerate(f, 1):
                advance(len(raw))
                try:
                    yield raw.decode("utf-8-sig" if n == 1 else "utf-8")
                except UnicodeDecodeError as exc:
                    raise CliError(f"{path.name} line {n} is not UTF-8 text: {exc}") from None

    reader = csv.reader(lines())
    try:
        header = next(reader, None)
        if header is None:
            return
        if len(set(header)) != len(header) or any(not h for h in header):
            raise CliError(f"{path.name}: the header needs unique, non-empty column names")
        paths = [h.split(".") for h in header]
        for row in reader:
            if not row:
                continue
            where = f"line {reader.line_num}"
            if len(row) > len(header):
                yield Record(where, error=f"{len(row)} cells, but the header has {len(header)}")
                continue
            doc: dict[str, Any] = {}
            try:
                for column, parts, cell in zip(header, paths, row, strict=False):
                    value = _csv_value(column, cell, infer)
                    if value is not _MISSING:
                        _set_path(doc, parts, value)
            except ValueError as exc:
                yield Record(where, error=str(exc))
                continue
            yield Record(where, doc)
    except csv.Error as exc:
        raise CliError(f"{path.name} line {reader.line_num}: not valid CSV: {exc}") from None


def _set_path(doc: dict[str, Any], parts: list[str], value: Any) -> None:
    node = doc
    for i, p in enumerate(parts[:-1]):
        nxt = node.setdefault(p, {})
        if not isinstance(nxt, dict):
            raise ValueError(
                f"column {'.'.join(parts)!r} conflicts with {'.'.join(parts[: i + 1])!r}"
            )
        node = nxt
    if isinstance(node.get(parts[-1]), dict):
        raise ValueError(f"column {'.'.join(parts)!r} conflicts with its sub-columns")
    node[parts[-1]] = value


def _read_parquet(pfile: Any, advance: Callable[[int], None]) -> Iterator[Record]:
    n = 0
    for batch in pfile.iter_batches(batch_size=1000):
        for row in batch.to_pylist():
            n += 1
            advance(1)
            yield Record(f"row {n}", _plain(row))


def _plain(value: Any) -> Any:
    """A Parquet value as JSON: nulls inside objects are left out, dates become ISO text."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            return base64.b64encode(value).decode()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# -- writing ---------------------------------------------------------------------------------


class Writer:
    """Writes documents to ``path`` (``-``: standard output, JSON Lines only)."""

    def __init__(self, path: Path, fmt: str) -> None:
        if fmt == "parquet":
            require_pyarrow()
        self.path = path
        self.fmt = fmt
        self.count = 0
        self._to_stdout = str(path) == "-"
        if self._to_stdout and fmt != "jsonl":
            raise CliError("only JSON Lines can be written to standard output")
        self._tmp: Path | None = None
        self._spool: IO[bytes] | None = None
        self._columns: dict[str, None] = {"_id": None}  # ordered set
        self._schema: Any = None
        self._pending: list[dict[str, Any]] = []
        if self._to_stdout:
            self._out: IO[bytes] = sys.stdout.buffer
        else:
            if path.parent and not path.parent.is_dir():
                raise CliError(f"the folder {path.parent} does not exist")
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
            self._tmp = Path(tmp)
            self._out = os.fdopen(fd, "wb")
        if fmt != "jsonl":
            self._spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()/abort()

    def write(self, doc: dict[str, Any]) -> None:
        self.count += 1
        if self.fmt == "jsonl":
            self._out.write(orjson.dumps(doc, option=_JSON_OPTS | orjson.OPT_APPEND_NEWLINE))
            return
        assert self._spool is not None
        if self.fmt == "csv":
            flat: dict[str, str] = {}
            _flatten(doc, "", flat)
            for k in flat:
                self._columns.setdefault(k, None)
            self._spool.write(orjson.dumps(flat, option=orjson.OPT_APPEND_NEWLINE))
        else:
            self._spool.write(orjson.dumps(doc, option=_JSON_OPTS | orjson.OPT_APPEND_NEWLINE))
            self._pending.append(doc)
            if len(self._pending) >= 1000:
                self._infer_schema()

    def close(self) -> None:
        """Finish the file and put it in place."""
        try:
            if self.fmt == "csv":
                self._write_csv()
            elif self.fmt == "parquet":
                self._write_parquet()
            self._out.flush()
        except BaseException:
            self.abort()
            raise
        if self._tmp is not None:
            self._out.close()
            # mkstemp made the file private; give it the mode a plain open() would have
            os.chmod(self._tmp, _file_mode(self.path))
            os.replace(self._tmp, self.path)
            self._tmp = None
        if self._spool is not None:
            self._spool.close()

    def abort(self) -> None:
        """Drop what was written; the target file is left as it was."""
        if self._spool is not None:
            self._spool.close()
        if self._tmp is not None:
            self._out.close()
            self._tmp.unlink(missing_ok=True)
            self._tmp = None

    def _rows(self) -> Iterator[dict[str, Any]]:
        assert self._spool is not None
        self._spool.flush()
        self._spool.seek(0)
        for line in self._spool:
            yield orjson.loads(line)

    def _write_csv(self) -> None:
        import io

        text = io.TextIOWrapper(self._out, encoding="utf-8", newline="", write_through=True)
        w = csv.DictWriter(text, fieldnames=list(self._columns), restval="")
        w.writeheader()
        for row in self._rows():
            w.writerow(row)
        text.flush()
        text.detach()

    def _infer_schema(self) -> None:
        pa, _ = require_pyarrow()
        if not self._pending:
            return
        try:
            # pa.array looks at every row (Table.from_pylist only at the first one's keys)
            schema = pa.schema(list(pa.array(self._pending).type))
            self._schema = (
                schema
                if self._schema is None
                else pa.unify_schemas([self._schema, schema], promote_options="permissive")
            )
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            raise CliError(
                f"cannot write Parquet: the documents' field types differ ({exc}); "
                "export to .jsonl instead"
            ) from None
        self._pending = []

    def _write_parquet(self) -> None:
        pa, pq = require_pyarrow()
        self._infer_schema()
        schema = self._schema
        if schema is None:
            schema = pa.schema([pa.field("_id", pa.string())])
        # vectors are float32 in taskloom; keep them so rather than widening to float64
        for i, f in enumerate(schema):
            if f.name.endswith(VECTOR_SUFFIX) and pa.types.is_list(f.type):
                schema = schema.set(i, pa.field(f.name, pa.list_(pa.float32())))
        try:
            with pq.ParquetWriter(self._out, schema) as w:
                batch: list[dict[str, Any]] = []
                for row in self._rows():
                    batch.append(row)
                    if len(batch) >= 1000:
                        w.write_table(pa.Table.from_pylist(batch, schema=schema))
                        batch = []
                if batch or self.count == 0:
                    w.write_table(pa.Table.from_pylist(batch, schema=schema))
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            raise CliError(f"cannot write Parquet: {exc}; export to .jsonl instead") from None


def _file_mode(path: Path) -> int:
    """The existing file's mode, or 0o666 less the umask."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _flatten(doc: dict[str, Any], prefix: str, out: dict[str, str]) -> None:
    for k, v in doc.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            _flatten(v, key + ".", out)
        else:
            out[key] = _csv_cell(v)


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    return json.dumps(value, ensure_ascii=False)
