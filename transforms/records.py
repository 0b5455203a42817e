"""Record ingest: parse one input file into Arrow, validate, normalise; bad rows get a reason.

Every function here works on one file or one Arrow table, so a Spark task (one per file),
a Beam ``DoFn`` or a notebook calls the same code. A parsed row keeps its file and line
(1-based; for Parquet the row number), so a quarantined row can always be found again.

Quarantine reasons (the ``reason`` column starts with one of these):
``malformed line``, ``undecodable bytes``, ``missing id``, ``wrong type``, ``duplicate id``.
"""

from __future__ import annotations

import json
import os
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.fs as pafs
import pyarrow.json as pajson
import pyarrow.parquet as pq

BATCH_ROWS = 50_000
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
        When ``path`` does not exist or holds no data file.

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


def read_header(path: str, fmt: str, delimiter: str | None = None, strip: bool = True,
                header: bool = True, comment: str | None = None) -> list[str]:
    """Column names of a file, read without reading the data.

    Parameters
    ----------
    path : str
        The file: a local path or any URI pyarrow reads.
    fmt : {"csv", "tsv", "jsonl", "parquet"}
        Its format (JSONL: the keys of its first line; Parquet: its schema).
    delimiter : str, optional
        CSV/TSV field delimiter; default ``,`` (csv) or tab (tsv).
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
        On an empty file.

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = os.path.join(d, "people.csv")
    ...     _ = open(path, "w").write("# exported\\nid, name ,dob\\n1,ann,19800102\\n")
    ...     read_header(path, "csv", comment="#"), read_header(path, "csv", header=False, comment="#")
    (['id', 'name', 'dob'], ['0', '1', '2'])
    """
    fs, p = open_input(path)
    if fmt == "parquet":
        with fs.open_input_file(p) as f:
            return pq.ParquetFile(f).schema_arrow.names
    if fmt == "jsonl":
        with fs.open_input_stream(p) as f:
            first = f.read(1 << 20).split(b"\n", 1)[0]
        if fs.get_file_info(p).size == 0:
            raise InputError(f"empty file: {path}")
        try:
            return list(json.loads(first).keys()) if first.strip() else []
        except (ValueError, AttributeError):
            return []
    with fs.open_input_stream(p) as f:
        lines = f.read(1 << 20).split(b"\n")
    if comment:
        lines = [line for line in lines if not line.startswith(comment.encode())] or [b""]
    first = lines[0].rstrip(b"\r")
    if not first:
        raise InputError(f"empty file (no header line): {path}")
    names = first.decode("utf-8", errors="replace").split(delimiter or ("\t" if fmt == "tsv" else ","))
    if not header:
        return [str(i) for i in range(len(names))]
    return [n.strip().strip('"') if strip else n for n in names]


LINE_FORMATS = ("csv", "tsv", "jsonl")  # one record per line: these files can be split by byte range


def line_splits(path: str, split_bytes: int) -> list[tuple[int, int]]:
    """Byte ranges of about ``split_bytes`` that start at line starts and cover the file.

    Each range ends just after the first newline at or past a multiple of ``split_bytes``,
    so a line-oriented file (CSV/TSV/JSONL) is split among tasks without cutting a line.

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
    with fs.open_input_file(p) as f:
        f.seek(start)
        return f.read() if end is None else f.read(end - start)


def parse_file(path: str, fmt: str, columns: list[str], *, delimiter: str | None = None,
               strip_header: bool = True, start: int = 0, end: int | None = None,
               first_line: int = 1, header: bool = True, comment: str | None = None) -> Iterator[Parsed]:
    """Parse one file, or the byte range ``[start, end)`` of a line-oriented one whose first
    line is line ``first_line`` of the file; yield good rows and bad rows.

    CSV/TSV only: ``header=False`` reads a file without a header line (see ``read_header``);
    lines starting with ``comment`` are skipped, listed among the bad rows with the reason
    ``COMMENT`` so that callers can drop them without losing count of lines.

    Bad rows: ``malformed line`` (wrong number of fields, or not a JSON object),
    ``undecodable bytes`` (not UTF-8), ``wrong type`` (a nested JSON/Parquet value).

    Parameters
    ----------
    path : str
        The file: a local path or any URI pyarrow reads.
    fmt : {"csv", "tsv", "jsonl", "parquet"}
        Its format.
    columns : list of str
        The columns to read; all values become strings (JSON numbers as their JSON text).
    delimiter : str, optional
        CSV/TSV field delimiter; default ``,`` (csv) or tab (tsv).
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

    Yields
    ------
    Parsed
        One per batch of rows (CSV/TSV: one for the range; JSONL/Parquet: one per
        ``BATCH_ROWS``).

    Raises
    ------
    InputError
        On an unknown format, a missing column, or an empty file.

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = os.path.join(d, "people.csv")
    ...     _ = open(path, "w").write("id,name,dob\\n1,Ann Lee,19800102\\n2,Bob\\n3,Cy,19990101\\n")
    ...     (parsed,) = parse_file(path, "csv", ["id", "name"])
    >>> parsed.table.to_pylist()
    [{'id': '1', 'name': 'Ann Lee', '__line': 2}, {'id': '3', 'name': 'Cy', '__line': 4}]
    >>> parsed.bad
    [(3, 'malformed line: expected 3 fields, got 2', '2,Bob')]
    """
    if fmt in ("csv", "tsv"):
        yield from _parse_csv(path, columns, delimiter or ("\t" if fmt == "tsv" else ","), strip_header,
                              start, end, first_line, header, comment)
    elif fmt == "jsonl":
        yield from _parse_jsonl(path, columns, start, end, first_line)
    elif fmt == "parquet":
        yield from _parse_parquet(path, columns)
    else:
        raise InputError(f"unknown input format {fmt!r}")


COMMENT = "comment"


def _parse_csv(path, columns, delimiter, strip_header, start=0, end=None, first_line=1, has_header=True,
               comment=None):
    header = read_header(path, "csv", delimiter, strip_header, has_header, comment)
    missing = [c for c in columns if c not in header]
    if missing:
        raise InputError(f"{path}: missing configured column(s) {missing}; the file has {header}")
    bad: list[tuple[int, str, str]] = []
    offset = first_line - 1 if start else 0  # the buffer's line 1 is the file's line first_line

    def on_invalid(row):
        if comment and row.text.startswith(comment):
            bad.append((row.number + offset, COMMENT, row.text))
        else:
            bad.append((row.number + offset, f"malformed line: expected {row.expected_columns} fields, "
                                             f"got {row.actual_columns}", row.text))
        return "skip"

    # the whole range at once and single-threaded, so the bad rows' line numbers are known
    # and the good rows' lines are the remaining ones, in order
    read = pacsv.ReadOptions(column_names=header, skip_rows=0 if start or not has_header else 1, use_threads=False)
    parse = pacsv.ParseOptions(delimiter=delimiter, invalid_row_handler=on_invalid, ignore_empty_lines=False)
    convert = pacsv.ConvertOptions(column_types={c: pa.binary() for c in header}, include_columns=columns,
                                   strings_can_be_null=False, quoted_strings_can_be_null=False)
    table = pacsv.read_csv(pa.BufferReader(_read_range(path, start, end)), read_options=read,
                           parse_options=parse, convert_options=convert)
    skipped = np.asarray([line for line, _, _ in bad], dtype=np.int64)
    first = first_line if start or not has_header else 2
    lines = np.setdiff1d(np.arange(first, first + table.num_rows + len(skipped), dtype=np.int64), skipped)
    yield _decoded(table, lines, path, bad)


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
    with fs.open_input_file(p) as f:
        pf = pq.ParquetFile(f)
        missing = [c for c in columns if c not in pf.schema_arrow.names]
        if missing:
            raise InputError(f"{path}: missing configured column(s) {missing}; the file has {pf.schema_arrow.names}")
        start = 1
        for batch in pf.iter_batches(batch_size=BATCH_ROWS, columns=columns):
            lines = np.arange(start, start + batch.num_rows, dtype=np.int64)
            start += batch.num_rows
            yield _as_strings(pa.Table.from_batches([batch]), columns, lines, path)


def _parse_jsonl(path, columns, start=0, end=None, first_line=1):
    raw = _read_range(path, start, end)
    if not raw.strip() and not start:
        raise InputError(f"empty file: {path}")
    text_lines = raw.split(b"\n")
    if text_lines and text_lines[-1] == b"":
        text_lines.pop()
    for i in range(0, len(text_lines), BATCH_ROWS):
        chunk = text_lines[i:i + BATCH_ROWS]
        lines = np.arange(first_line + i, first_line + i + len(chunk), dtype=np.int64)
        yield _parse_json_chunk(chunk, lines, columns, path)


def _parse_json_chunk(chunk: list[bytes], lines: np.ndarray, columns: list[str], path: str) -> Parsed:
    try:
        table = pajson.read_json(pa.BufferReader(b"\n".join(chunk)))
        if table.num_rows != len(chunk):
            raise pa.ArrowInvalid("blank lines")
    except pa.ArrowInvalid:
        return _parse_json_lines(chunk, lines, columns)
    for name in columns:
        if name not in table.column_names:
            table = table.append_column(name, pa.nulls(table.num_rows, pa.large_string()))
    return _as_strings(table, columns, lines, path)


def _parse_json_lines(chunk: list[bytes], lines: np.ndarray, columns: list[str]) -> Parsed:
    """The error path, line by line: malformed lines and nested values get a reason."""
    bad, good, good_lines = [], {c: [] for c in columns}, []
    for line, text in zip(lines.tolist(), chunk):
        try:
            obj = json.loads(text)
            if not isinstance(obj, dict):
                raise ValueError("not a JSON object")
        except (ValueError, UnicodeDecodeError) as err:
            bad.append((line, f"malformed line: {err}", text.decode("utf-8", "replace")))
            continue
        nested = [c for c in columns if isinstance(obj.get(c), (dict, list))]
        if nested:
            bad.append((line, f"wrong type: column {nested[0]} holds a nested value", text.decode()))
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
        number with an optional exponent, ``date`` a date in ``date_format``.
    date_format : str, default "%Y%m%d"
        strptime format of dates.

    Returns
    -------
    ok : numpy.ndarray
        bool per value.
    canonical : pyarrow.Array
        The values trimmed; dates as ``YYYY-MM-DD`` (null where not a date); strings
        unchanged.

    Examples
    --------
    >>> import pyarrow as pa
    >>> ok, canonical = typed_ok(pa.array(["19800102", "1980-01-02", None]), "date")
    >>> ok.tolist(), canonical.to_pylist()
    ([True, False, True], ['1980-01-02', None, None])
    >>> typed_ok(pa.array([" 12", "1.5"]), "int")[0].tolist()
    [True, False]
    """
    if kind == "string":
        return np.ones(len(values), dtype=bool), values
    trimmed = pc.utf8_trim_whitespace(values)
    if kind == "date":
        parsed = pc.strptime(trimmed, format=date_format, unit="s", error_is_null=True)
        ok = pc.or_(pc.is_null(trimmed), pc.is_valid(parsed))
        canonical = pc.cast(pc.strftime(parsed, format="%Y-%m-%d"), values.type)
    else:
        ok = pc.or_(pc.is_null(trimmed), pc.match_substring_regex(trimmed, _TYPE_PATTERNS[kind]))
        canonical = trimmed
    return pc.fill_null(ok, True).to_numpy(zero_copy_only=False), canonical


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
                      first_line: int = 1) -> Iterator[pa.RecordBatch]:
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
                             strip_header=source.strip_header, start=start, end=end, first_line=first_line):
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
