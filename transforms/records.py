"""Record ingest: parse one input file into Arrow, validate, normalise; bad rows get a reason.

Every function here works on one file or one Arrow table, so a Spark task (one per file),
a Beam ``DoFn`` or a notebook calls the same code. A parsed row keeps its file and line
(1-based; for Parquet the row number), so a quarantined row can always be found again.

Lines are physical lines of the file: they end at ``\\n`` (``\\r\\n`` too; a lone ``\\r`` is
data), and a row's line is the one its record starts on. The physical records of a
CSV/TSV/JSONL file are its lines except the header (and comment lines or blank lines
before it), blank lines (CSV/TSV: nothing but the line end; JSONL: nothing but white
space) and comment lines; a CSV record
continues over further lines only inside a quoted field. Every physical record becomes
one row, good or quarantined, so that input rows = records + quarantined rows. A
UTF-8 byte-order mark at the start of a file is skipped.

CSV/TSV quoting follows RFC 4180, leniently as Arrow's and Python's readers do
(``"a""b"`` is ``a"b``; text after a closing quote is kept). A record spanning several
lines must parse (the header's number of fields, no text after a closing quote) and close
its quotes within ``max_record_bytes``; otherwise only its first line is quarantined
(``malformed line: unclosed quote``) and parsing resumes on the next line, so one stray
quote costs one row, not the rest of the file. A record on one line may be any length.

Quarantine reasons (the ``reason`` column starts with one of these):
``malformed line``, ``undecodable bytes``, ``missing id``, ``wrong type``, ``duplicate id``.
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numba
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.json as pajson
import pyarrow.parquet as pq

BATCH_ROWS = 50_000
MAX_RECORD_BYTES = 16 << 20  # a CSV record spanning lines closes its quotes within this many bytes
MAX_HEADER_BYTES = 1 << 20  # the header line ends within this many bytes of the file's start
BOM = b"\xef\xbb\xbf"  # UTF-8 byte-order mark (Excel's "CSV UTF-8")
_TYPE_PATTERNS = {
    "int": r"^[+-]?\d+$",
    "float": r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$",
}


class InputError(ValueError):
    """An input that cannot be read at all (missing path, empty file, missing column).

    Unlike a bad row, which is quarantined with a reason, it fails the job, naming the file.

    Examples
    --------
    >>> try:
    ...     list_files("/no/such/input")
    ... except InputError as err:
    ...     print(err)
    input path does not exist: /no/such/input
    """


@contextmanager
def _reading(path: str):
    """File errors (unreadable, not the format it claims, truncated) as one-line InputErrors."""
    try:
        yield
    except (OSError, pa.ArrowException) as err:
        raise InputError(f"cannot read {path}: {' '.join(str(err).split())}") from None


@dataclass(frozen=True)
class Parsed:
    """Rows parsed from one file: string columns plus their lines, and the rows that failed.

    Parameters
    ----------
    table : pyarrow.Table
        The good rows: the wanted columns (``large_string``) and ``__line`` (int64, the
        row's line in its file, 1-based; for Parquet its row number).
    bad : list of tuple
        ``(line, reason, raw text)`` of each row that failed (``(..., id)`` after
        validation, see ``records_from_file``).

    Examples
    --------
    >>> import pyarrow as pa
    >>> parsed = Parsed(pa.table({"id": ["1"], "__line": [2]}), [(3, "malformed line", "2,x,y")])
    >>> parsed.table.num_rows, parsed.bad[0][1]
    (1, 'malformed line')
    """

    table: pa.Table  # columns: the wanted ones (large_string) + "__line" (int64)
    bad: list[tuple]  # (line, reason, raw text[, id])


def open_input(path: str) -> tuple[pafs.FileSystem, str]:
    """A pyarrow filesystem and path for a local path or any URI pyarrow understands.

    Parameters
    ----------
    path : str
        A local path (made absolute) or a URI (``s3://``, ``hdfs://``, ``file://``, ...).

    Returns
    -------
    filesystem : pyarrow.fs.FileSystem
    path : str
        The path within ``filesystem``.

    Examples
    --------
    >>> fs, path = open_input("/tmp")
    >>> type(fs).__name__, path
    ('LocalFileSystem', '/tmp')
    """
    if "://" not in path:
        path = os.path.abspath(path)
    return pafs.FileSystem.from_uri(path)


def list_files(path: str) -> list[str]:
    """The data files under ``path`` (a file or a directory, recursively), sorted.

    Files whose names start with ``.`` or ``_`` (``_SUCCESS``, ``.crc``) are skipped.

    Parameters
    ----------
    path : str
        A file or directory: a local path or any URI pyarrow reads.

    Returns
    -------
    list of str
        The files, with the URI's scheme when ``path`` has one.

    Raises
    ------
    InputError
        When ``path`` does not exist, cannot be listed or holds no data file.

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     for name in ("b.csv", "_SUCCESS", os.path.join("sub", "a.csv")):
    ...         os.makedirs(os.path.dirname(os.path.join(d, name)), exist_ok=True)
    ...         _ = open(os.path.join(d, name), "w").write("x")
    ...     [os.path.relpath(f, d) for f in list_files(d)]
    ['b.csv', 'sub/a.csv']
    """
    fs, p = open_input(path)
    with _reading(path):
        info = fs.get_file_info(p)
        if info.type == pafs.FileType.NotFound:
            raise InputError(f"input path does not exist: {path}")
        if info.type == pafs.FileType.File:
            files = [info]
        else:
            files = [f for f in fs.get_file_info(pafs.FileSelector(p, recursive=True))
                     if f.type == pafs.FileType.File and not f.base_name.startswith((".", "_"))]
    if not files:
        raise InputError(f"no data files under {path}")
    prefix = path.split("://")[0] + "://" if "://" in path else ""
    return sorted(prefix + f.path if prefix and not f.path.startswith(prefix) else f.path for f in files)


def check_columns(path: str, wanted: list[str], header: list[str]) -> None:
    """Fail, naming the file, when a configured column is not among the file's columns.

    Parameters
    ----------
    path : str
        The file.
    wanted : list of str
        The configured columns.
    header : list of str
        The file's columns (``read_header``); at most 20 are named, each cut to 40 characters.

    Raises
    ------
    InputError
        Naming the missing columns.

    Examples
    --------
    >>> try:
    ...     check_columns("a.csv", ["id", "dob"], ["id", "name"])
    ... except InputError as err:
    ...     print(err)
    a.csv: missing configured column(s) ['dob']; the file has ['id', 'name']
    """
    missing = [c for c in wanted if c not in header]
    if missing:
        shown = [n if len(n) <= 40 else n[:40] + "..." for n in header[:20]] + (["..."] if len(header) > 20 else [])
        raise InputError(f"{path}: missing configured column(s) {missing}; the file has {shown}")


def read_header(path: str, fmt: str, delimiter: str | None = None, strip: bool = True,
                header: bool = True, comment: str | None = None) -> list[str]:
    """Column names of a file, read without reading the data.

    Parameters
    ----------
    path : str
        The file: a local path or any URI pyarrow reads.
    fmt : {"csv", "tsv", "jsonl", "parquet"}
        Its format (JSONL: the keys of its first non-blank line; Parquet: its schema, which
        also checks that the file is Parquet).
    delimiter : str, optional
        CSV/TSV field delimiter (one ASCII character); default ``,`` (csv) or tab (tsv).
    strip : bool, default True
        Strip spaces and double quotes around CSV/TSV header names.
    header : bool, default True
        Whether a CSV/TSV file has a header line; without one its columns are named
        ``0, 1, 2, ...``, as many as its first line has fields.
    comment : str, optional
        CSV/TSV lines starting with this are skipped.

    Returns
    -------
    list of str

    Raises
    ------
    InputError
        On an empty or unreadable file, a file that is not Parquet when ``fmt`` says so,
        a CSV/TSV header line with an unclosed quote or not ending within
        ``MAX_HEADER_BYTES``.

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = os.path.join(d, "people.csv")
    ...     _ = open(path, "w").write('# exported\\nid, name ,"dob, iso"\\n1,ann,19800102\\n')
    ...     read_header(path, "csv", comment="#"), read_header(path, "csv", header=False, comment="#")
    (['id', 'name', 'dob, iso'], ['0', '1', '2'])
    """
    fs, p = open_input(path)
    with _reading(path):
        if fmt == "parquet":
            with fs.open_input_file(p) as f:
                return pq.ParquetFile(f).schema_arrow.names
        with fs.open_input_stream(p) as f:
            head = f.read(MAX_HEADER_BYTES + 1)
    if fmt == "jsonl":
        head = head.removeprefix(BOM)
        starts, ends, blank = _lines(np.frombuffer(head, np.uint8))
        if blank.all() and len(head) <= MAX_HEADER_BYTES:
            raise InputError(f"empty file: {path}")
        first = head[starts[~blank][0]:ends[~blank][0]] if not blank.all() else b""
        try:
            return list(json.loads(first).keys()) if first.strip() else []
        except (ValueError, AttributeError):
            return []
    return _csv_header(np.frombuffer(head, np.uint8), path, _delimiter(fmt, delimiter), strip, header, comment)[0]


def _delimiter(fmt: str, delimiter: str | None) -> str:
    delimiter = delimiter or ("\t" if fmt == "tsv" else ",")
    if len(delimiter.encode()) != 1:
        raise InputError(f"the delimiter must be one ASCII character, got {delimiter!r}")
    return delimiter


def _csv_header(head: np.ndarray, path: str, delimiter: str, strip: bool, has_header: bool,
                comment: str | None) -> tuple[list[str], int]:
    """The column names from the first bytes of a CSV file, and the byte offset where its
    records start (after the BOM, and after the header line and what precedes it)."""
    begin = 3 if bytes(head[:3]) == BOM else 0
    prefix = head[:MAX_HEADER_BYTES]
    starts, ends, _, status, fields = _csv_records(prefix, begin, ord(delimiter), ord('"'),
                                                   np.frombuffer((comment or "").encode(), np.uint8), -1, 0)
    first = np.flatnonzero(status != COMMENTED)
    if not len(first):
        raise InputError(f"empty file (no header line): {path}")
    i = first[0]
    line_end = bytes(prefix[ends[i]:ends[i] + 2]).find(b"\n")
    if line_end < 0 and len(head) > MAX_HEADER_BYTES:
        raise InputError(f"{path}: the first line does not end within {MAX_HEADER_BYTES} bytes")
    if status[i] == UNCLOSED:
        raise InputError(f"{path}: unclosed quote in the {'header' if has_header else 'first'} line")
    if not has_header:
        return [str(k) for k in range(fields[i])], begin
    lo, hi = _csv_spans(prefix, starts[i:i + 1], ends[i:i + 1], ord(delimiter), ord('"'),
                        np.arange(fields[i], dtype=np.int64))
    values, offsets = _csv_values(prefix, lo.ravel(), hi.ravel(), ord('"'))
    names = [bytes(values[a:b]).decode("utf-8", "replace") for a, b in zip(offsets[:-1], offsets[1:])]
    body = int(ends[i]) + line_end + 1 if line_end >= 0 else len(prefix)
    return [n.strip().strip('"') if strip else n for n in names], body


LINE_FORMATS = ("csv", "tsv", "jsonl")  # one record per line: these files can be split by byte range


def line_splits(path: str, split_bytes: int) -> list[tuple[int, int]]:
    """Byte ranges of about ``split_bytes`` that start at line starts and cover the file.

    Each range ends just after the first newline at or past a multiple of ``split_bytes``,
    so a line-oriented file (CSV/TSV/JSONL) is split among tasks without cutting a line.
    (A cut inside a quoted CSV field that spans lines leaves both parts quarantined line
    by line: counted, not lost.)

    Parameters
    ----------
    path : str
        The file: a local path or any URI pyarrow reads.
    split_bytes : int
        Target range size.

    Returns
    -------
    list of tuple of int
        ``(start, end)`` byte ranges, ``[start, end)``, in order.

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = os.path.join(d, "lines.txt")
    ...     _ = open(path, "w").write("aaaa\\nbbbb\\ncccc\\n")
    ...     line_splits(path, 6)
    [(0, 10), (10, 15)]
    """
    fs, p = open_input(path)
    size = fs.get_file_info(p).size
    bounds = [0]
    with fs.open_input_file(p) as f:
        for target in range(split_bytes, size, split_bytes):
            if target <= bounds[-1]:
                continue
            f.seek(target)
            while True:  # the range ends just after the next newline
                block = f.read(1 << 16)
                if not block:
                    break
                cut = block.find(b"\n")
                if cut >= 0:
                    bounds.append(f.tell() - len(block) + cut + 1)
                    break
    bounds = sorted(set(b for b in bounds if b < size)) + [size]
    return list(zip(bounds[:-1], bounds[1:]))


def count_newlines(path: str, start: int, end: int) -> int:
    """Newlines in the byte range ``[start, end)`` of a file, read in 16 MiB blocks.

    A task reading a range gets its first line number from the newlines before it.

    Parameters
    ----------
    path : str
        The file: a local path or any URI pyarrow reads.
    start, end : int
        The byte range.

    Returns
    -------
    int

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = os.path.join(d, "lines.txt")
    ...     _ = open(path, "w").write("aaaa\\nbbbb\\ncccc\\n")
    ...     count_newlines(path, 0, 10), count_newlines(path, 5, 15)
    (2, 2)
    """
    fs, p = open_input(path)
    count = 0
    with fs.open_input_file(p) as f:
        f.seek(start)
        left = end - start
        while left > 0:
            block = f.read(min(left, 1 << 24))
            if not block:
                break
            count += block.count(b"\n")
            left -= len(block)
    return count


def _read_range(path: str, start: int, end: int | None) -> bytes:
    fs, p = open_input(path)
    with _reading(path), fs.open_input_file(p) as f:
        f.seek(start)
        return f.read() if end is None else f.read(end - start)


def parse_file(path: str, fmt: str, columns: list[str], *, delimiter: str | None = None,
               strip_header: bool = True, start: int = 0, end: int | None = None,
               first_line: int = 1, header: bool = True, comment: str | None = None,
               max_record_bytes: int = MAX_RECORD_BYTES) -> Iterator[Parsed]:
    """Parse one file, or the byte range ``[start, end)`` of a line-oriented one whose first
    line is line ``first_line`` of the file; yield good rows and bad rows.

    CSV/TSV only: ``header=False`` reads a file without a header line (see ``read_header``);
    lines starting with ``comment`` are skipped, listed among the bad rows with the reason
    ``COMMENT`` so that callers can drop them without losing count of lines.

    Bad rows: ``malformed line`` (``expected N fields, got M``; ``unclosed quote``, see
    the module docstring; not a JSON object), ``undecodable bytes in column C`` (not
    UTF-8), ``wrong type`` (a nested JSON/Parquet value). Blank lines are no rows.

    Parameters
    ----------
    path : str
        The file: a local path or any URI pyarrow reads.
    fmt : {"csv", "tsv", "jsonl", "parquet"}
        Its format.
    columns : list of str
        The columns to read; all values become strings (JSON numbers as their JSON text).
    delimiter : str, optional
        CSV/TSV field delimiter (one ASCII character); default ``,`` (csv) or tab (tsv).
    strip_header : bool, default True
        Strip spaces and quotes around CSV/TSV header names.
    start, end : int, optional
        Byte range ``[start, end)`` of a CSV/TSV/JSONL file (``line_splits``); whole file
        by default.
    first_line : int, default 1
        The file's line number of the range's first line (``count_newlines``).
    header : bool, default True
        Whether a CSV/TSV file has a header line.
    comment : str, optional
        CSV/TSV comment prefix.
    max_record_bytes : int, default MAX_RECORD_BYTES
        A CSV/TSV record spanning several lines must end within this many bytes.

    Yields
    ------
    Parsed
        One per batch of rows (CSV/TSV: one for the range; JSONL/Parquet: one per
        ``BATCH_ROWS``).

    Raises
    ------
    InputError
        On an unknown format, a missing column, an empty or unreadable file.

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = os.path.join(d, "people.csv")
    ...     text = 'id,name,dob\\n1,"Ann\\nLee",19800102\\n2,Bob\\n3,"Cy,19990101\\n4,Di,20000101\\n'
    ...     _ = open(path, "w").write(text)
    ...     (parsed,) = parse_file(path, "csv", ["id", "name"])
    >>> parsed.table.to_pylist()
    [{'id': '1', 'name': 'Ann\\nLee', '__line': 2}, {'id': '4', 'name': 'Di', '__line': 6}]
    >>> parsed.bad
    [(4, 'malformed line: expected 3 fields, got 2', '2,Bob'), (5, 'malformed line: unclosed quote', '3,"Cy,19990101')]
    """
    if fmt in ("csv", "tsv"):
        yield _parse_csv(path, columns, _delimiter(fmt, delimiter), strip_header, start, end, first_line, header,
                         comment, max_record_bytes)
    elif fmt == "jsonl":
        yield from _parse_jsonl(path, columns, start, end, first_line)
    elif fmt == "parquet":
        yield from _parse_parquet(path, columns)
    else:
        raise InputError(f"unknown input format {fmt!r}")


COMMENT = "comment"

# CSV lexer states, and the status of a record
_START, _FIELD, _QUOTED, _AFTER = 0, 1, 2, 3  # at a field's start, in a field, in quotes, after a quote in quotes
GOOD, FIELDS, UNCLOSED, COMMENTED = 0, 1, 2, 3  # parsed; wrong number of fields; unclosed quote; comment line


@numba.njit(cache=True)
def _step(state, c, delim, quote):
    """The lexer's state after byte ``c`` (not a line end), and whether ``c`` ended a field."""
    if state == _QUOTED:
        return (_AFTER if c == quote else _QUOTED), False
    if c == delim:
        return _START, True
    if c == quote and state != _FIELD:  # a field's opening quote, or the second of a doubled one
        return _QUOTED, False
    return _FIELD, False


@numba.njit(cache=True)
def _csv_records(data, begin, delim, quote, comment, ncols, max_bytes):
    """The records of CSV bytes from ``begin`` (a line start): byte spans without the line
    end, lines (0-based from ``begin``), status and number of fields (``ncols < 0``: any
    number is right). One sequential pass; a failed record spanning lines is its first line."""
    size = len(data)
    cap = 1
    for p in range(begin, size):
        cap += data[p] == 10
    starts, ends, lines = np.empty(cap, np.int64), np.empty(cap, np.int64), np.empty(cap, np.int64)
    status, fields = np.empty(cap, np.int8), np.empty(cap, np.int64)
    n, pos, line = 0, begin, 0
    while pos < size:
        c = data[pos]
        if c == 10 or (c == 13 and (pos + 1 == size or data[pos + 1] == 10)):  # a blank line
            pos += 1 if c == 10 else 2
            line += 1
            continue
        commented = len(comment) > 0 and pos + len(comment) <= size
        for j in range(len(comment) if commented else 0):
            commented = commented and data[pos + j] == comment[j]
        state, nf, crossed, junk, p = _START, 1, 0, False, pos
        while not commented and p < size:
            c = data[p]
            if c == 10 and state != _QUOTED:
                break
            if c == 10:
                crossed += 1
                if p - pos > max_bytes:
                    break
            else:
                line_end = c == 13 and (p + 1 == size or data[p + 1] == 10)
                junk = junk or (state == _AFTER and c != quote and c != delim and not line_end)
                state, ended = _step(state, c, delim, quote)
                nf += ended
            p += 1
        if commented or state == _QUOTED or (crossed and (junk or nf != ncols)):  # this line alone
            p, crossed = pos, 0
            while p < size and data[p] != 10:
                p += 1
            status[n] = COMMENTED if commented else UNCLOSED
        else:
            status[n] = GOOD if nf == ncols or ncols < 0 else FIELDS
        starts[n], ends[n], lines[n], fields[n] = pos, p - (p > pos and data[p - 1] == 13), line, nf
        n += 1
        pos, line = p + 1, line + crossed + 1
    return starts[:n], ends[:n], lines[:n], status[:n], fields[:n]


@numba.njit(cache=True)
def _csv_spans(data, starts, ends, delim, quote, slot):
    """Byte spans, quotes included, of the wanted fields of records: field i of a record goes
    to row ``slot[i]`` (-1: not wanted) of the ``(columns, records)`` arrays ``lo, hi``."""
    lo = np.zeros((slot.max() + 1, len(starts)), np.int64)
    hi = np.zeros_like(lo)
    for r in range(len(starts)):
        state, f, s = _START, 0, starts[r]
        for p in range(starts[r], ends[r] + 1):
            ended = p == ends[r]
            if not ended:
                state, ended = _step(state, data[p], delim, quote)
            if ended:
                if f < len(slot) and slot[f] >= 0:
                    lo[slot[f], r], hi[slot[f], r] = s, p
                f, s = f + 1, p + 1
    return lo, hi


@numba.njit(cache=True)
def _unquote(data, lo, hi, quote, out, o):
    """The value of the field ``data[lo:hi]`` without its quoting, written at ``out[o:]``
    when ``out`` is given (non-empty); returns its length."""
    state, m = _START, 0
    for p in range(lo, hi):
        c = data[p]
        if state == _QUOTED:
            keep = c != quote
            state = _QUOTED if keep else _AFTER
        else:
            keep = not (c == quote and state == _START)  # the opening quote goes; "" gives one
            state = _QUOTED if c == quote and state != _FIELD else _FIELD
        if keep:
            if len(out):
                out[o + m] = c
            m += 1
    return m


@numba.njit(cache=True)
def _csv_values(data, lo, hi, quote):
    """The unquoted values of fields ``data[lo[i]:hi[i]]``, back to back, and their offsets."""
    offsets = np.zeros(len(lo) + 1, np.int64)
    none = np.empty(0, np.uint8)
    for i in range(len(lo)):
        offsets[i + 1] = offsets[i] + _unquote(data, lo[i], hi[i], quote, none, 0)
    out = np.empty(offsets[-1], np.uint8)
    for i in range(len(lo)):
        _unquote(data, lo[i], hi[i], quote, out, offsets[i])
    return out, offsets


def _parse_csv(path, columns, delimiter, strip_header, start, end, first_line, has_header, comment,
               max_record_bytes) -> Parsed:
    """One ``Parsed`` for a CSV/TSV file or byte range, by the rules of the module docstring."""
    data = np.frombuffer(_read_range(path, start, end), np.uint8)
    head = data if not start else np.frombuffer(_read_range(path, 0, MAX_HEADER_BYTES + 1), np.uint8)
    header, body = _csv_header(head, path, delimiter, strip_header, has_header, comment)
    check_columns(path, columns, header)
    if start:
        body = 0
    base = first_line - 1 if start else int(np.count_nonzero(data[:body] == 10))  # file line of `body`, 0-based
    quote, marker = ord('"'), np.frombuffer((comment or "").encode(), np.uint8)
    starts, ends, lines, status, fields = _csv_records(data, body, ord(delimiter), quote, marker, len(header),
                                                       max_record_bytes)
    lines += base + 1
    bad = [(int(lines[i]), COMMENT if status[i] == COMMENTED else
            "malformed line: unclosed quote" if status[i] == UNCLOSED else
            f"malformed line: expected {len(header)} fields, got {fields[i]}",
            bytes(data[starts[i]:ends[i]]).decode("utf-8", "replace")) for i in np.flatnonzero(status != GOOD)]
    good = status == GOOD
    slot = np.full(len(header), -1, np.int64)
    for j, name in enumerate(columns):
        slot[header.index(name)] = j
    lo, hi = _csv_spans(data, starts[good], ends[good], ord(delimiter), quote, slot)
    values, offsets = _csv_values(data, lo.ravel(), hi.ravel(), quote)
    flat = pa.LargeBinaryArray.from_buffers(pa.large_binary(), len(offsets) - 1,
                                            [None, pa.py_buffer(offsets), pa.py_buffer(values)])
    n = int(good.sum())
    table = pa.table({name: flat.slice(j * n, n) for j, name in enumerate(columns)})
    return _decoded(table, lines[good], path, bad)


def _decoded(table: pa.Table, lines: np.ndarray, path: str, bad: list) -> Parsed:
    """Binary columns -> UTF-8 strings; rows with undecodable bytes move to ``bad``."""
    ok = np.ones(table.num_rows, dtype=bool)
    for name in table.column_names:
        col = table[name].combine_chunks()
        try:
            pc.cast(col, pa.large_string())
        except pa.ArrowInvalid:
            for i, v in enumerate(col.to_pylist()):  # only on the error path
                if v is not None and ok[i]:
                    try:
                        v.decode("utf-8")
                    except UnicodeDecodeError:
                        ok[i] = False
                        bad.append((int(lines[i]), f"undecodable bytes in column {name}",
                                    v.decode("utf-8", errors="replace")))
    keep = pa.array(ok)
    table = table.filter(keep) if not ok.all() else table
    cols = {n: pc.cast(table[n], pa.large_string()) for n in table.column_names}
    cols["__line"] = pa.array(lines[ok])
    return Parsed(pa.table(cols), bad)


def _as_strings(table: pa.Table, columns: list[str], lines: np.ndarray, path: str) -> Parsed:
    """Cast every wanted column to string; nested values are a wrong type."""
    bad, ok = [], np.ones(table.num_rows, dtype=bool)
    for name in columns:
        t = table.schema.field(name).type
        if pa.types.is_nested(t):
            present = table[name].is_valid().to_numpy(zero_copy_only=False) & ok
            for i in np.flatnonzero(present):
                bad.append((int(lines[i]), f"wrong type: column {name} holds a nested value",
                            json.dumps(table.slice(i, 1).to_pylist()[0], default=str)))
            ok &= ~present
    table = table.filter(pa.array(ok))
    cols = {}
    for name in columns:
        col = table[name]
        cols[name] = (pa.nulls(table.num_rows, pa.large_string()) if pa.types.is_nested(col.type)
                      else pc.cast(col, pa.large_string()))
    cols["__line"] = pa.array(lines[ok])
    return Parsed(pa.table(cols), bad)


def _parse_parquet(path, columns):
    fs, p = open_input(path)
    with _reading(path), fs.open_input_file(p) as f:
        pf = pq.ParquetFile(f)
        check_columns(path, columns, pf.schema_arrow.names)
        start = 1
        for batch in pf.iter_batches(batch_size=BATCH_ROWS, columns=columns):
            lines = np.arange(start, start + batch.num_rows, dtype=np.int64)
            start += batch.num_rows
            yield _as_strings(pa.Table.from_batches([batch]), columns, lines, path)


def _lines(data: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Byte spans ``[start, end)`` of the lines of ``data`` (without their ``\n``) and which are
    blank (nothing but JSON white space, which Arrow's JSON reader skips too)."""
    ends = np.append(np.flatnonzero(data == 10), len(data))
    starts = np.append(0, ends[:-1] + 1)
    blank = np.ones(len(starts), dtype=bool)
    filled = np.flatnonzero(ends > starts)
    if len(filled):  # a line with ink, up to the next one with any (blank lines between add none)
        ink = ~np.isin(data, np.frombuffer(b" \t\r\n", np.uint8))
        blank[filled] = ~np.logical_or.reduceat(ink, starts[filled])
    return starts, ends, blank


def _parse_jsonl(path, columns, start=0, end=None, first_line=1):
    """JSONL rows in chunks of ``BATCH_ROWS`` lines; blank lines are no rows."""
    raw = _read_range(path, start, end)
    raw = raw if start else raw.removeprefix(BOM)
    starts, ends, blank = _lines(np.frombuffer(raw, np.uint8))
    rows = np.flatnonzero(~blank)
    if not len(rows) and not start and end is None:
        raise InputError(f"empty file: {path}")
    for i in range(0, len(rows), BATCH_ROWS):
        chunk = rows[i:i + BATCH_ROWS]
        yield _parse_json_chunk(raw, starts[chunk], ends[chunk], first_line + chunk, columns, path)


def _parse_json_chunk(raw: bytes, starts: np.ndarray, ends: np.ndarray, lines: np.ndarray, columns: list[str],
                      path: str) -> Parsed:
    """Arrow's JSON reader over the lines ``raw[starts[i]:ends[i]]`` (blank lines between
    them are skipped by it too); any failure falls back to ``_parse_json_lines``."""
    text = pa.py_buffer(raw)[starts[0]:ends[-1]]
    block = int(min(max(1 << 20, (ends - starts).max() + 2), (1 << 31) - 1))  # a line fits in one block
    try:
        table = pajson.read_json(pa.BufferReader(text), read_options=pajson.ReadOptions(block_size=block))
        stamps = [f.name for f in table.schema if pa.types.is_timestamp(f.type)]
        if stamps:  # Arrow reads ISO dates as timestamps: read them again as the strings they are
            schema = pa.schema([(name, pa.string()) for name in stamps])
            table = pajson.read_json(pa.BufferReader(text), read_options=pajson.ReadOptions(block_size=block),
                                     parse_options=pajson.ParseOptions(explicit_schema=schema))
        if table.num_rows != len(lines):
            raise pa.ArrowInvalid("not one JSON object per line")
    except pa.ArrowInvalid:
        return _parse_json_lines([raw[s:e] for s, e in zip(starts, ends)], lines, columns)
    for name in columns:
        if name not in table.column_names:
            table = table.append_column(name, pa.nulls(table.num_rows, pa.large_string()))
    return _as_strings(table, columns, lines, path)


_SURROGATE = re.compile("[\ud800-\udfff]")


def _parse_json_lines(chunk: list[bytes], lines: np.ndarray, columns: list[str]) -> Parsed:
    """The error path, line by line: malformed lines and nested values get a reason."""
    bad, good, good_lines = [], {c: [] for c in columns}, []
    for line, text in zip(lines.tolist(), chunk):
        try:
            obj = json.loads(text.decode("utf-8"))
            if not isinstance(obj, dict):
                raise ValueError("not a JSON object")
        except (ValueError, RecursionError) as err:
            bad.append((line, f"malformed line: {' '.join(str(err).split())}", text.decode("utf-8", "replace")))
            continue
        nested = [c for c in columns if isinstance(obj.get(c), (dict, list))]
        if nested:
            bad.append((line, f"wrong type: column {nested[0]} holds a nested value", text.decode()))
            continue
        unpaired = [c for c in columns if isinstance(obj.get(c), str) and _SURROGATE.search(obj[c])]
        if unpaired:  # a "\ud800" escape: no UTF-8 text
            bad.append((line, f"undecodable bytes in column {unpaired[0]}", text.decode()))
            continue
        for c in columns:
            v = obj.get(c)
            good[c].append(v if v is None or isinstance(v, str) else json.dumps(v))
        good_lines.append(line)
    cols = {c: pa.array(v, pa.large_string()) for c, v in good.items()}
    cols["__line"] = pa.array(good_lines, pa.int64())
    return Parsed(pa.table(cols), bad)


def nfkc(values: pa.Array) -> pa.Array:
    """Unicode NFKC normalisation [1]_: compatibility decomposition, then canonical composition.

    ASCII values are already normal; only the others go through Python's ``unicodedata``
    (pyarrow 25's ``utf8_normalize`` returns decomposed forms for NFC/NFKC).

    Parameters
    ----------
    values : pyarrow.Array or pyarrow.ChunkedArray
        Strings.

    Returns
    -------
    pyarrow.Array
        The normalised strings, nulls kept.

    References
    ----------
    .. [1] Unicode Standard Annex #15, "Unicode Normalization Forms".
       https://unicode.org/reports/tr15/

    Examples
    --------
    >>> import pyarrow as pa
    >>> nfkc(pa.array(["\ufb01ne", "Ｂ２", None])).to_pylist()  # the "fi" ligature, full-width letters
    ['fine', 'B2', None]
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    other = np.flatnonzero(~pc.fill_null(pc.string_is_ascii(values), True).to_numpy(zero_copy_only=False))
    if len(other) == 0:
        return values
    fixed = [unicodedata.normalize("NFKC", v) for v in values.take(pa.array(other)).to_pylist()]
    mask = np.zeros(len(values), dtype=bool)
    mask[other] = True
    return pc.replace_with_mask(values, pa.array(mask), pa.array(fixed, values.type))


def normalize(values: pa.Array, steps: tuple[str, ...]) -> pa.Array:
    """Normalised strings: each step vectorised over the array; empty results become null.

    ``nfkc`` Unicode NFKC [1]_; ``casefold`` Unicode lower case (Arrow's full-string
    lowering); ``whitespace`` trims and collapses runs of white space;
    ``strip_punctuation`` removes punctuation and symbols; ``digits_only`` keeps digits.

    Parameters
    ----------
    values : pyarrow.Array
        Strings.
    steps : tuple of str
        The steps above, applied in order.

    Returns
    -------
    pyarrow.Array
        The normalised strings; null where a value is null or ends empty.

    Raises
    ------
    ValueError
        On an unknown step.

    References
    ----------
    .. [1] Unicode Standard Annex #15, "Unicode Normalization Forms".
       https://unicode.org/reports/tr15/

    Examples
    --------
    >>> import pyarrow as pa
    >>> steps = ("nfkc", "casefold", "whitespace", "strip_punctuation")
    >>> normalize(pa.array(["  Ann   LEE! ", "---", None]), steps).to_pylist()
    ['ann lee', None, None]
    >>> normalize(pa.array(["(02) 9876-5432"]), ("digits_only",)).to_pylist()
    ['0298765432']
    """
    out = values
    for step in steps:
        if step == "nfkc":
            out = nfkc(out)
        elif step == "casefold":
            out = pc.utf8_lower(out)
        elif step == "whitespace":
            out = pc.utf8_trim_whitespace(pc.replace_substring_regex(out, r"\s+", " "))
        elif step == "strip_punctuation":
            out = pc.replace_substring_regex(out, r"[\p{P}\p{S}]+", "")
        elif step == "digits_only":
            out = pc.replace_substring_regex(out, r"\D+", "")
        else:
            raise ValueError(f"unknown normalisation step {step!r}")
    return pc.if_else(pc.equal(out, ""), pa.scalar(None, out.type), out)


def typed_ok(values: pa.Array, kind: str, date_format: str = "%Y%m%d") -> tuple[np.ndarray, pa.Array]:
    """Which values parse as ``kind`` (nulls pass), and their canonical strings.

    Parameters
    ----------
    values : pyarrow.Array
        Strings.
    kind : {"string", "int", "float", "date"}
        The attribute's type: ``int`` an optionally signed integer, ``float`` a decimal
        number with an optional exponent (within the double range), ``date`` a date in
        ``date_format`` that exists (strftime gives the value back, up to leading zeros
        and letter case).
    date_format : str, default "%Y%m%d"
        strptime format of dates.

    Returns
    -------
    ok : numpy.ndarray
        bool per value.
    canonical : pyarrow.Array
        The values trimmed; dates as ``YYYY-MM-DD`` (null where not a date); numbers in
        one written form (``_canonical_number``: ``1999.0`` and ``1999`` as floats are both
        ``1999``); strings unchanged.

    Examples
    --------
    >>> import pyarrow as pa
    >>> ok, canonical = typed_ok(pa.array(["19800102", "1980-01-02", None]), "date")
    >>> ok.tolist(), canonical.to_pylist()
    ([True, False, True], ['1980-01-02', None, None])
    >>> typed_ok(pa.array(["19900230", "1990011", "1/2/1990"]), "date", "%d/%m/%Y")[0].tolist()
    [False, False, True]
    >>> typed_ok(pa.array([" 12", "1.5"]), "int")[0].tolist()
    [True, False]
    >>> ok, canonical = typed_ok(pa.array(["1999.0", "1999", "1.999e3", "0.50", "-0.0", "1e400"]), "float")
    >>> ok.tolist(), canonical.to_pylist()[:5]
    ([True, True, True, True, True, False], ['1999', '1999', '1999', '0.5', '0'])
    >>> typed_ok(pa.array(["+007", "-0", "12"]), "int")[1].to_pylist()
    ['7', '0', '12']
    """
    if kind == "string":
        return np.ones(len(values), dtype=bool), values
    trimmed = pc.utf8_trim_whitespace(values)
    if kind == "date":
        parsed = pc.strptime(trimmed, format=date_format, unit="s", error_is_null=True)
        # Arrow's strptime is lenient (19900230 -> 1990-03-02, 1990011 -> 1990-01-01): a date
        # must be written back as it was read, leading zeros and letter case aside
        same = pc.equal(_unpadded(pc.strftime(parsed, format=date_format)), _unpadded(trimmed))
        parsed = pc.if_else(same, parsed, pa.scalar(None, parsed.type))
        ok = pc.or_(pc.is_null(trimmed), pc.is_valid(parsed))
        canonical = pc.cast(pc.strftime(parsed, format="%Y-%m-%d"), values.type)
    else:
        ok = pc.fill_null(pc.or_(pc.is_null(trimmed), pc.match_substring_regex(trimmed, _TYPE_PATTERNS[kind])), True)
        if kind == "float":  # beyond the double range (1e400) is no number to compare
            value = pc.cast(pc.if_else(ok, trimmed, pa.scalar(None, trimmed.type)), pa.float64())
            ok = pc.and_(ok, pc.fill_null(pc.is_finite(value), True))
        canonical = _canonical_number(trimmed, ok, kind)
    return pc.fill_null(ok, True).to_numpy(zero_copy_only=False), canonical


def _canonical_number(values: pa.Array, ok: pa.Array, kind: str) -> pa.Array:
    """Numbers in one written form, so that equal numbers compare equal as strings: an int
    without a ``+`` sign or leading zeros, a float as the shortest decimal that reads back
    the same double (Arrow's cast: ``1999.0``, ``1999`` and ``1.999e3`` -> ``1999``), zero
    unsigned. Values that are not numbers stay as they are (their rows are quarantined)."""
    numbers = pc.if_else(ok, values, pa.scalar(None, values.type))
    if kind == "int":
        text = pc.replace_substring_regex(pc.replace_substring_regex(numbers, r"^\+", ""), r"^(-?)0+(\d)", r"\1\2")
    else:
        text = pc.cast(pc.cast(numbers, pa.float64()), values.type)
    text = pc.if_else(pc.equal(text, "-0"), pa.scalar("0", values.type), text)
    return pc.if_else(ok, text, values)


def _unpadded(values: pa.Array) -> pa.Array:
    """Strings in lower case without the leading zeros of their digit runs (``01/02`` -> ``1/2``)."""
    return pc.utf8_lower(pc.replace_substring_regex(values, r"(^|\D)0+(\d)", r"\1\2"))


def staged_schema(attributes: list[str]) -> pa.Schema:
    """Arrow schema of ingested rows before de-duplication: good rows have a null ``reason``.

    Parameters
    ----------
    attributes : list of str
        Attribute names.

    Returns
    -------
    pyarrow.Schema
        ``source, file, line, id, reason, raw``, then ``<attribute>`` and
        ``<attribute>_norm`` for each attribute.

    Examples
    --------
    >>> staged_schema(["name"]).names
    ['source', 'file', 'line', 'id', 'reason', 'raw', 'name', 'name_norm']
    """
    fields = [pa.field("source", pa.string()), pa.field("file", pa.string()), pa.field("line", pa.int64()),
              pa.field("id", pa.string()), pa.field("reason", pa.string()), pa.field("raw", pa.string())]
    for name in attributes:
        fields += [pa.field(name, pa.string()), pa.field(name + "_norm", pa.string())]
    return pa.schema(fields)


def records_from_file(path: str, source, attributes, start: int = 0, end: int | None = None,
                      first_line: int = 1, max_record_bytes: int = MAX_RECORD_BYTES) -> Iterator[pa.RecordBatch]:
    """Parse, validate and normalise one file, or one byte range of it (see ``parse_file``),
    of a source (``staged_schema`` batches).

    Each attribute is normalised (``normalize``) and type-checked (``typed_ok``); ids are
    trimmed. Bad rows get the reasons of ``parse_file``, ``missing id`` or
    ``wrong type: column <attribute> expects <type>``. Ids are not de-duplicated here.

    Parameters
    ----------
    path : str
        The file: a local path or any URI pyarrow reads.
    source : schemas.config.Source
        Its ``name, format, id_column, delimiter, strip_header, column_map``.
    attributes : list of schemas.config.Attribute
        Each with ``name, type, date_format, normalize``.
    start, end, first_line
        A byte range of the file, as in ``parse_file``.
    max_record_bytes : int, default MAX_RECORD_BYTES
        As in ``parse_file``.

    Yields
    ------
    pyarrow.RecordBatch
        ``staged_schema`` rows: bad rows (``reason``, ``raw``, and ``id`` when known) in
        batches of their own, then the good ones (at most ``BATCH_ROWS`` per batch).

    Raises
    ------
    InputError
        As ``parse_file``.

    Examples
    --------
    >>> import os, tempfile
    >>> from sigil.schemas.config import Attribute, Source
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = os.path.join(d, "people.csv")
    ...     _ = open(path, "w").write("id,name,dob\\n1,Ann  LEE,19800102\\n,Cy,19990101\\n3,Dee,1999-01-01\\n")
    ...     source = Source(name="a", path=path, id_column="id")
    ...     attributes = [Attribute(name="name"), Attribute(name="dob", type="date")]
    ...     rows = [r for b in records_from_file(path, source, attributes) for r in b.to_pylist()]
    >>> [(r["line"], r["id"], r["reason"]) for r in rows]
    [(3, None, 'missing id'), (4, '3', 'wrong type: column dob expects date'), (2, '1', None)]
    >>> rows[-1]["name_norm"], rows[-1]["dob_norm"]
    ('ann lee', '1980-01-02')
    """
    names = [a.name for a in attributes]
    schema = staged_schema(names)
    column_of = {a.name: source.column_map.get(a.name, a.name) for a in attributes}
    wanted = list(dict.fromkeys([source.id_column, *column_of.values()]))
    for parsed in parse_file(path, source.format, wanted, delimiter=source.delimiter,
                             strip_header=source.strip_header, start=start, end=end, first_line=first_line,
                             max_record_bytes=max_record_bytes):
        good, bad = _validated(parsed.table, source.id_column, attributes, column_of)
        if parsed.bad or bad:
            rows = parsed.bad + bad
            yield pa.RecordBatch.from_pydict({
                "source": [source.name] * len(rows), "file": [path] * len(rows),
                "line": [r[0] for r in rows], "id": [r[3] if len(r) > 3 else None for r in rows],
                "reason": [r[1] for r in rows], "raw": [r[2] for r in rows],
                **{c: [None] * len(rows) for c in schema.names[6:]}}, schema=schema)
        for batch in good.to_batches(max_chunksize=BATCH_ROWS):
            n = batch.num_rows
            cols = {"source": pa.array([source.name] * n, pa.string()),
                    "file": pa.array([path] * n, pa.string()),
                    "line": batch["__line"], "id": pc.cast(batch["__id"], pa.string()),
                    "reason": pa.nulls(n, pa.string()), "raw": pa.nulls(n, pa.string())}
            for a in attributes:
                cols[a.name] = pc.cast(batch[a.name], pa.string())
                cols[a.name + "_norm"] = pc.cast(batch[a.name + "_norm"], pa.string())
            yield pa.RecordBatch.from_pydict(cols, schema=schema)


def _validated(table: pa.Table, id_column: str, attributes, column_of) -> tuple[pa.Table, list]:
    """Good rows (id, raw and normalised attributes, __line) and (line, reason, raw) of bad ones."""
    lines = table["__line"].to_numpy()
    ids = pc.utf8_trim_whitespace(table[id_column])
    ok = pc.fill_null(pc.not_equal(ids, ""), False).to_numpy(zero_copy_only=False)
    reasons = np.where(ok, None, "missing id").astype(object)
    cols = {"__line": table["__line"], "__id": ids}
    for a in attributes:
        raw = table[column_of[a.name]]
        norm = normalize(raw, tuple(a.normalize))
        typed, canonical = typed_ok(norm, a.type, a.date_format)
        wrong = ~typed & ok
        reasons[wrong] = f"wrong type: column {a.name} expects {a.type}"
        ok &= typed
        cols[a.name] = raw
        cols[a.name + "_norm"] = canonical
    good = pa.table(cols).filter(pa.array(ok))
    bad_idx = np.flatnonzero(~ok)
    bad = []
    if len(bad_idx):
        raw_rows = table.drop(["__line"]).take(pa.array(bad_idx)).to_pylist()
        id_values = ids.to_pylist()
        bad = [(int(lines[i]), reasons[i], json.dumps(r, ensure_ascii=False), id_values[i] or None)
               for i, r in zip(bad_idx, raw_rows)]
    return good, bad


def input_files(config) -> list[tuple[str, str]]:
    """(source name, file) for every input file of ``config.ingest`` (a SigilConfig); fails before any work, naming the file, on
    a missing path, a directory without data files, an empty or unreadable file, a file
    that is not Parquet where the source says so, or a configured column absent from a
    file's header (``read_header`` opens every file once)."""
    files = []
    for source in config.ingest.sources:
        wanted = [source.id_column] + [source.column_map.get(a.name, a.name) for a in config.ingest.attributes]
        for path in list_files(source.path):
            header = read_header(path, source.format, source.delimiter, source.strip_header)
            if source.format != "jsonl":  # JSON objects may leave keys out
                check_columns(path, wanted, header)
            files.append((source.name, path))
    return files
