"""Interaction logs (user, item, optional timestamp, weight and label) parsed and checked,
row by row, for the interactions-ingest job.

A log holds one interaction per row: a user id and an item id (external, any text), and
optionally when it happened, how much it weighs (a rating, a play count) and whether it is
a positive one (a label: implicit-feedback logs often keep the impressions that were not
clicked). Rows are read from CSV/TSV/Parquet/JSONL by ``records.parse_file`` (one task
per file or line range), then checked here:

* user and item are trimmed; a blank one is missing (``missing user``, ``missing item``);
* a weight must be a finite number >= 0 (``bad weight``): the interaction graph is
  clustered by modularity, which needs non-negative weights; without a weight column every
  row weighs 1;
* a timestamp is an integer (epoch seconds, or any integer order) or an ISO-8601 date or
  date-time (``2021-03-04``, ``2021-03-04T05:06:07``, ``2021-03-04 05:06:07``), stored
  as epoch seconds (``bad timestamp`` otherwise);
* a label is ``1``/``0``/``true``/``false`` (any case; ``bad label`` otherwise); rows
  labelled 0 are kept, flagged, and not interactions (the job counts them apart).

Example
-------
>>> import os, tempfile
>>> from sigil.schemas.config import InteractionInput
>>> with tempfile.TemporaryDirectory() as d:
...     path = os.path.join(d, "log.csv")
...     _ = open(path, "w").write("user,item,ts,rating\\nu1,i1,2021-03-04,4\\nu2,,5,3\\nu1,i2,x,5\\n")
...     log = InteractionInput(path=path, timestamp_column="ts", weight_column="rating")
...     rows = [r for b in interactions_from_file(path, log) for r in b.to_pylist()]
>>> [(r["line"], r["user"], r["timestamp"], r["weight"], r["reason"]) for r in rows]
[(3, None, None, None, 'missing item'), (4, None, None, None, 'bad timestamp: not an integer or an ISO-8601 date/time'), (2, 'u1', 1614816000, 4.0, None)]
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sigil.transforms.graph import bad_batch, input_columns, nonnegative_weights, rejected_rows, trimmed
from sigil.transforms.records import COMMENT, parse_file

#: Interactions as parsed, before the dictionaries: good rows have a null reason.
STAGED_INTERACTIONS = pa.schema([
    pa.field("file", pa.string()), pa.field("line", pa.int64()),
    pa.field("user", pa.string()), pa.field("item", pa.string()), pa.field("timestamp", pa.int64()),
    pa.field("weight", pa.float64()), pa.field("positive", pa.bool_()),
    pa.field("reason", pa.string()), pa.field("raw", pa.string()),
])

_DATE_FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d")


def timestamps(values) -> tuple[np.ndarray, np.ndarray]:
    """Integers or ISO-8601 dates/date-times as int64 epoch seconds: ok mask and values.

    Examples
    --------
    >>> ok, t = timestamps(pa.array(["7", " 2000-01-02 ", "2000-01-02T00:00:01", "2000-02-30", "1.5"]))
    >>> ok.tolist(), t[ok].tolist()
    ([True, True, True, False, False], [7, 946771200, 946771201])
    """
    text = pc.utf8_trim_whitespace(pc.cast(values, pa.large_string()))
    out = np.zeros(len(text), dtype=np.int64)
    integer = pc.fill_null(pc.match_substring_regex(text, r"^[+-]?\d{1,18}$"), False).to_numpy(zero_copy_only=False)
    if integer.any():
        out[integer] = pc.cast(pc.filter(text, pa.array(integer)), pa.int64()).to_numpy(zero_copy_only=False)
    ok = integer.copy()
    for fmt in _DATE_FORMATS:
        rest = ~ok
        if not rest.any():
            break
        candidates = pc.filter(text, pa.array(rest))
        parsed = pc.strptime(candidates, format=fmt, unit="s", error_is_null=True)
        # strict: strptime rolls 2000-02-30 over to March; a real date formats back to its text
        same = pc.equal(pc.strftime(parsed, format=fmt), pc.cast(candidates, pa.string()))
        good = pc.fill_null(same, False).to_numpy(zero_copy_only=False)
        parsed = pc.if_else(pa.array(good), parsed, pa.scalar(None, parsed.type))
        at = np.flatnonzero(rest)[good]
        out[at] = pc.cast(pc.drop_null(parsed), pa.int64()).to_numpy(zero_copy_only=False)
        ok[at] = True
    return ok, out


def labels(values) -> tuple[np.ndarray, np.ndarray]:
    """``1/0/true/false`` (any case, trimmed) as booleans: ok mask and values.

    Examples
    --------
    >>> ok, v = labels(pa.array(["1", "False", " TRUE", "2", None]))
    >>> ok.tolist(), v[ok].tolist()
    ([True, True, True, False, False], [True, False, True])
    """
    text = pc.utf8_lower(pc.utf8_trim_whitespace(pc.cast(values, pa.large_string())))
    yes = pc.fill_null(pc.is_in(text, pa.array(["1", "true"], pa.large_string())), False).to_numpy(zero_copy_only=False)
    no = pc.fill_null(pc.is_in(text, pa.array(["0", "false"], pa.large_string())), False).to_numpy(zero_copy_only=False)
    return yes | no, yes


def interaction_table(table: pa.Table, lines: np.ndarray, path: str, log) -> tuple[pa.RecordBatch, list[tuple]]:
    """Check parsed log rows: the good ones as ``STAGED_INTERACTIONS``, the others with a
    reason (the later overriding the earlier: ``bad label``, ``bad weight``, ``bad
    timestamp``, ``missing user``, ``missing item``, ``comment`` for a comment line with the
    right number of fields).

    Parameters
    ----------
    table : pyarrow.Table
        Parsed rows, string columns (``records.parse_file``).
    lines : numpy.ndarray
        int64 line of each row in its file.
    path : str
        The file, recorded in each row.
    log : schemas.config.InteractionInput
        Its column names and comment prefix.

    Returns
    -------
    good : pyarrow.RecordBatch
    bad : list of tuple
        ``(line, reason, raw)`` of the other rows.
    """
    n = table.num_rows
    user, item = trimmed(table[log.user_column]), trimmed(table[log.item_column])
    reasons = np.full(n, None, dtype=object)
    positive = np.ones(n, dtype=bool)
    if log.label_column is not None:
        ok, positive = labels(table[log.label_column])
        reasons[~ok] = "bad label: not 1, 0, true or false"
    weight = np.ones(n)
    if log.weight_column is not None:
        ok, weight = nonnegative_weights(table[log.weight_column])
        reasons[~ok] = "bad weight: not a finite number >= 0"
    stamp, has_time = np.zeros(n, dtype=np.int64), log.timestamp_column is not None
    if has_time:
        ok, stamp = timestamps(table[log.timestamp_column])
        reasons[~ok] = "bad timestamp: not an integer or an ISO-8601 date/time"
    reasons[~user.is_valid().to_numpy(zero_copy_only=False)] = "missing user"
    reasons[~item.is_valid().to_numpy(zero_copy_only=False)] = "missing item"
    if log.comment and log.format in ("csv", "tsv"):
        starts = pc.fill_null(pc.starts_with(pc.cast(table[log.user_column], pa.large_string()), log.comment), False)
        reasons[starts.to_numpy(zero_copy_only=False)] = COMMENT
    good = np.equal(reasons, None)
    keep, m = pa.array(good), int(good.sum())
    batch = pa.RecordBatch.from_pydict({
        "file": pa.array([path] * m, pa.string()), "line": pa.array(lines[good], pa.int64()),
        "user": pc.cast(pc.filter(user, keep), pa.string()), "item": pc.cast(pc.filter(item, keep), pa.string()),
        "timestamp": pa.array(stamp[good], pa.int64(), mask=None if has_time else np.ones(m, bool)),
        "weight": pa.array(weight[good]), "positive": pa.array(positive[good]),
        "reason": pa.nulls(m, pa.string()), "raw": pa.nulls(m, pa.string())}, schema=STAGED_INTERACTIONS)
    return batch, rejected_rows(table, lines, reasons)


def interactions_from_file(path: str, log, start: int = 0, end: int | None = None,
                           first_line: int = 1) -> Iterator[pa.RecordBatch]:
    """``STAGED_INTERACTIONS`` batches of one log file, or one byte range of it: bad rows
    (with a reason and the raw text) in a batch of their own, then the good ones.

    Parameters
    ----------
    path : str
        The file: a local path or any URI pyarrow reads.
    log : schemas.config.InteractionInput
    start, end : int, optional
        Byte range of a CSV/TSV/JSONL file (``records.line_splits``); the whole file by default.
    first_line : int, default 1
        The file's line number of the range's first line.
    """
    columns = input_columns(path, log)
    if columns is None:
        return
    for parsed in parse_file(path, log.format, columns, delimiter=log.delimiter, start=start, end=end,
                             first_line=first_line, header=log.header, comment=log.comment):
        good, bad = interaction_table(parsed.table, parsed.table["__line"].to_numpy(), path, log)
        rows = parsed.bad + bad
        if rows:
            yield bad_batch(STAGED_INTERACTIONS, path, rows)
        yield good
