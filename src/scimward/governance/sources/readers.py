"""Reading an export a row at a time: CSV by the csv module, JSON by ijson (an array of objects, or an
object with one array of them) and JSON Lines by line. Memory stays flat however long the file.

Each row comes with where it is: ``line N`` of a CSV or JSON Lines file (the line its record starts
on), ``record N`` of a JSON array. A mapping file (YAML) renames columns, status words and the date
format::

    columns:                 # column in the export: field (records.FIELDS) or SCIM attribute
      Employee ID: employee_id
      Work Email: email
      Legal First Name: given_name
      Employment Status: status
      Manager Employee ID: manager_id
      Cost Center: cost_center
      Division: division
    statuses:                # word in the export: active | leave | terminated
      Active: active
      On Leave: leave
      Terminated: terminated
    date_format: "%m/%d/%Y"
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import ijson
import yaml

from scimward.errors import ConfigurationError
from scimward.governance.sources.records import ALIASES, EXTRA_ATTRIBUTES, FIELDS, STATUSES, RowFormat, Status


class ExportError(ConfigurationError):
    """A file scimward cannot read as an export at all (not one of its rows: ``records.BadRow``)."""


@dataclass(frozen=True)
class Row:
    where: str  # "line" or "record"
    number: int
    values: dict[str, Any] | None
    #: Why the row is not an object, when it is not.
    problem: str | None = None


def load_format(path: Path | None) -> RowFormat:
    """The row format a mapping file describes; the default columns without one."""
    if path is None:
        return RowFormat()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ExportError(f"cannot read the mapping file {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ExportError(f"the mapping file {path} is not valid YAML: {exc}") from exc
    return format_from_json(data, str(path))


def format_from_json(data: Any, label: str = "the mapping") -> RowFormat:
    if not isinstance(data, dict):
        raise ExportError(f"{label}: a mapping with columns, statuses and date_format")
    unknown = set(data) - {"columns", "statuses", "date_format"}
    if unknown:
        raise ExportError(f"{label}: unknown setting {sorted(unknown)[0]!r} (columns, statuses, date_format)")
    columns: dict[str, str] = {}
    for column, name in (data.get("columns") or {name: name for name in FIELDS}).items():
        target = str(name)
        target = ALIASES.get(target, target)
        if target not in FIELDS and target not in EXTRA_ATTRIBUTES:
            raise ExportError(
                f"{label}: column {column!r} maps to {name!r}, which is neither a field "
                f"({', '.join(FIELDS)}) nor a SCIM attribute scimward fills from HR "
                f"({', '.join(sorted(EXTRA_ATTRIBUTES))})"
            )
        columns[str(column)] = target
    named = set(columns.values())
    for needed in ("employee_id", "status"):
        if needed not in named:
            raise ExportError(f"{label}: no column maps to {needed}")
    statuses: dict[str, Status] = {s: s for s in STATUSES}
    if data.get("statuses") is not None:
        if not isinstance(data["statuses"], dict):
            raise ExportError(f"{label}: statuses: a mapping from the export's word to active, leave or terminated")
        statuses = {}
        for word, status in data["statuses"].items():
            if status not in STATUSES:
                raise ExportError(f"{label}: status {word!r} maps to {status!r}, not active, leave or terminated")
            statuses[str(word)] = status
    date_format = data.get("date_format", "%Y-%m-%d")
    if not isinstance(date_format, str) or "%" not in date_format:
        raise ExportError(f"{label}: date_format is a strftime format like %Y-%m-%d, not {date_format!r}")
    return RowFormat(columns, statuses, date_format)


class Export:
    """An export file being read: its rows, and how far into the file they are (for a progress bar)."""

    def __init__(self, path: Path, kind: str, fmt: RowFormat) -> None:
        self.path, self.kind, self.fmt = path, kind, fmt
        try:
            self.size = path.stat().st_size
        except OSError as exc:
            raise ExportError(f"cannot read {path}: {exc.strerror}") from exc
        self._raw: IO[bytes] | None = None

    @property
    def position(self) -> int:
        """Bytes read so far (ahead of the row just given by at most the reader's buffer)."""
        return self._raw.tell() if self._raw is not None and not self._raw.closed else self.size

    def rows(self) -> Iterator[Row]:
        try:
            raw = self.path.open("rb")
        except OSError as exc:
            raise ExportError(f"cannot read {self.path}: {exc.strerror}") from exc
        self._raw = raw
        with raw:
            if self.kind == "csv":
                text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
                yield from _csv_rows(text, self.fmt)
            else:
                yield from _json_rows(raw)


def read_rows(path: Path, kind: str, fmt: RowFormat) -> Iterator[Row]:
    """The file's rows, one at a time (``kind``: csv or json)."""
    return Export(path, kind, fmt).rows()


def _csv_rows(handle: IO[str], fmt: RowFormat) -> Iterator[Row]:
    reader = csv.DictReader(handle)
    try:
        header = reader.fieldnames or []
    except (csv.Error, UnicodeDecodeError) as exc:
        raise ExportError(f"line 1: the header cannot be read: {exc}") from exc
    missing = [column for column in fmt.required if column not in header]
    if missing:
        raise ExportError(
            f"line 1: the header has no column {', '.join(missing)} (a mapping file can name the export's columns)"
        )
    start = reader.line_num + 1
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except (csv.Error, UnicodeDecodeError) as exc:
            yield Row("line", start, None, f"cannot be read as CSV: {exc}")
            start = reader.line_num + 1
            continue
        if None in values:
            yield Row("line", start, None, f"has {len(header) + len(values[None])} fields, the header {len(header)}")
        else:
            yield Row("line", start, values)
        start = reader.line_num + 1


def _json_rows(handle: IO[bytes]) -> Iterator[Row]:
    first = handle.read(1)
    while first and first.isspace():
        first = handle.read(1)
    if not first:
        return
    handle.seek(handle.tell() - 1)
    if first == b"[":
        yield from _ijson_rows(handle, "item")
    elif first == b"{" and _is_json_lines(handle):
        yield from _json_lines(handle)
    elif first == b"{":
        yield from _ijson_rows(handle, _array_prefix(handle))
    else:
        raise ExportError("line 1: a JSON export is an array of objects, an object holding one, or JSON Lines")


def _is_json_lines(handle: IO[bytes]) -> bool:
    """Whether the first line is a whole JSON object (JSON Lines) rather than the start of one."""
    position = handle.tell()
    line = handle.readline()
    handle.seek(position)
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def _array_prefix(handle: IO[bytes]) -> str:
    """The ijson prefix of the first array of objects in an object (``{"employees": [...]}``)."""
    position = handle.tell()
    opened: str | None = None  # the prefix of the items of the array just opened
    try:
        for prefix, event, _ in ijson.parse(handle):
            if opened is not None and prefix == opened and event == "start_map":
                return opened
            opened = (f"{prefix}.item" if prefix else "item") if event == "start_array" else None
    except ijson.JSONError as exc:
        raise ExportError(f"the JSON export cannot be read: {exc}") from exc
    finally:
        handle.seek(position)
    raise ExportError("the JSON export holds no array of records")


def _ijson_rows(handle: IO[bytes], prefix: str) -> Iterator[Row]:
    number = 0
    try:
        for item in ijson.items(handle, prefix, use_float=True):
            number += 1
            if isinstance(item, dict):
                yield Row("record", number, item)
            else:
                yield Row("record", number, None, "is not a JSON object")
    except ijson.JSONError as exc:
        raise ExportError(f"after record {number}: the JSON export cannot be read further: {exc}") from exc


def _json_lines(handle: IO[bytes]) -> Iterator[Row]:
    for number, raw in enumerate(handle, start=1):
        if not raw.strip():
            continue
        try:
            item = json.loads(raw)
        except ValueError as exc:
            yield Row("line", number, None, f"is not JSON: {exc}")
            continue
        if isinstance(item, dict):
            yield Row("line", number, item)
        else:
            yield Row("line", number, None, "is not a JSON object")
