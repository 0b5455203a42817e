"""Record pairs as every stage handles them, in Arrow: oriented, normalised from a pairs
file, and the true pairs of records whose ids name the same entity.

A pair of records is four strings, ``KEYS``, oriented so that (source_a, id_a) <
(source_b, id_b), comparing UTF-8 bytes as Spark compares its strings (the order of code
points, which is also Python's ``str`` order, but not Java's UTF-16 order). Candidates,
matches, labels and the ground truth all follow it, so pairs from any of them join on
``KEYS``.

The functions take one Arrow batch or table and keep no state, so a Spark job maps them
over Arrow batches (``mapInArrow``) or entity groups (``groupBy(...).applyInArrow``) and a
notebook calls them on a whole table: one implementation for both.

Example
-------
>>> import pyarrow as pa
>>> records = pa.table({"source": ["a", "b", "b"], "id": ["rec-1-org", "rec-1-dup-0", "rec-2-dup-0"]})
>>> records = records.append_column("entity", entity_of(records["id"], r"^rec-(\\d+)-"))
>>> entity_pairs(records, "link").to_pylist()
[{'source_a': 'a', 'id_a': 'rec-1-org', 'source_b': 'b', 'id_b': 'rec-1-dup-0'}]
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from sigil.transforms.records import InputError, list_files, open_input

KEYS = ["source_a", "id_a", "source_b", "id_b"]
MODES = ("dedupe", "link")

ArrayLike = pa.Array | pa.ChunkedArray


def _text(values: ArrayLike) -> ArrayLike:
    return values if values.type == pa.string() else pc.cast(values, pa.string())


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")


def oriented(source_x: ArrayLike, id_x: ArrayLike, source_y: ArrayLike, id_y: ArrayLike) -> dict[str, ArrayLike]:
    """Pairs with their sides swapped where needed so that (source_a, id_a) < (source_b, id_b).

    Strings compare by their UTF-8 bytes, as Spark compares them; a comparison with a null
    does not swap (Spark's ``when(null)`` takes the ``otherwise`` branch).

    Parameters
    ----------
    source_x, id_x, source_y, id_y : pyarrow.Array or pyarrow.ChunkedArray
        The two sides of each pair, of equal length; cast to string.

    Returns
    -------
    dict of str to pyarrow.Array
        ``KEYS`` -> the oriented columns (string).

    Example
    -------
    >>> import pyarrow as pa
    >>> pairs = oriented(pa.array(["b", "a"]), pa.array(["1", "9"]), pa.array(["a", "a"]), pa.array(["2", "3"]))
    >>> [pairs[k].to_pylist() for k in KEYS]
    [['a', 'a'], ['2', '3'], ['b', 'a'], ['1', '9']]
    """
    sx, ix, sy, iy = (_text(c) for c in (source_x, id_x, source_y, id_y))
    swap = pc.or_kleene(pc.greater(sx, sy), pc.and_kleene(pc.equal(sx, sy), pc.greater(ix, iy)))
    swap = pc.fill_null(swap, False)
    return {"source_a": pc.if_else(swap, sy, sx), "id_a": pc.if_else(swap, iy, ix),
            "source_b": pc.if_else(swap, sx, sy), "id_b": pc.if_else(swap, ix, iy)}


def normalised_pairs(batch: pa.RecordBatch | pa.Table, id_columns: Sequence[str] = ("id_a", "id_b"),
                     mode: str = "dedupe", sources: Sequence[str] = (),
                     extra: Sequence[str] = ()) -> pa.RecordBatch | pa.Table:
    """A batch of a pairs file (ground truth, labels) as ``KEYS`` oriented like candidates,
    followed by the ``extra`` columns.

    Column names lose surrounding spaces (FEBRL's headers have them). A file without
    ``source_a``/``source_b`` names the single source (``dedupe``) or the first and second
    sources (``link``). Ids and sources are cast to string and lose surrounding spaces.
    Pairs are not de-duplicated (see ``distinct_pairs``), so that a distributed engine can
    map this over batches and de-duplicate itself.

    Parameters
    ----------
    batch : pyarrow.RecordBatch or pyarrow.Table
        Rows of a pairs file, as read.
    id_columns : (str, str)
        The columns of the two records' ids.
    mode : {"dedupe", "link"}
        How the pairs' sources are filled in when the file has none.
    sources : sequence of str
        The sources of the records, sorted (as the jobs sort them).
    extra : sequence of str
        Columns kept as they are after ``KEYS`` (e.g. a label).

    Returns
    -------
    pyarrow.RecordBatch or pyarrow.Table
        The same kind as ``batch``: ``KEYS`` (string), then ``extra``.

    Raises
    ------
    InputError
        When an id, source or extra column is missing (naming it and the columns present),
        or the sources to fill in are not known.

    Example
    -------
    >>> import pyarrow as pa
    >>> batch = pa.record_batch({" id_a": ["b2 ", "a1"], "id_b ": [" a1", "b3"], "label": [1, 0]})
    >>> normalised_pairs(batch, mode="dedupe", sources=["s"], extra=["label"]).to_pylist()[0]
    {'source_a': 's', 'id_a': 'a1', 'source_b': 's', 'id_b': 'b2', 'label': 1}
    """
    _check_mode(mode)
    names = [c.strip() for c in batch.schema.names]
    batch = batch.rename_columns(names)
    missing = [c for c in (*id_columns, *extra) if c not in names]
    if "source_a" in names and "source_b" not in names:
        missing.append("source_b")
    if missing:
        raise InputError(f"the pairs have no column(s) {missing}; they have {names}")
    if "source_a" in names:
        source_a, source_b = batch["source_a"], batch["source_b"]
    else:
        needed = 1 if mode == "dedupe" else 2
        if len(sources) < needed:
            raise InputError(f"pairs without source columns in {mode} mode need {needed} source(s); "
                             f"the records have {list(sources)}")
        a, b = (sources[0], sources[0]) if mode == "dedupe" else (sources[0], sources[1])
        source_a, source_b = (pa.repeat(pa.scalar(s, pa.string()), batch.num_rows) for s in (a, b))
    trimmed = [pc.utf8_trim(_text(c), " ")  # Spark's trim: spaces only
               for c in (source_a, batch[id_columns[0]], source_b, batch[id_columns[1]])]
    keys = oriented(*trimmed)
    return type(batch).from_arrays([*keys.values(), *(batch[c] for c in extra)], names=[*KEYS, *extra])


def distinct_pairs(pairs: pa.Table | pa.RecordBatch) -> pa.Table:
    """The first row of each pair (``KEYS``), in the order of ``pairs``.

    Parameters
    ----------
    pairs : pyarrow.Table or pyarrow.RecordBatch
        Pairs with ``KEYS`` columns and any others.

    Returns
    -------
    pyarrow.Table
        ``pairs`` without the later rows of a repeated pair.

    Example
    -------
    >>> import pyarrow as pa
    >>> t = pa.table({"source_a": ["a"] * 3, "id_a": ["1", "1", "2"], "source_b": ["a"] * 3,
    ...               "id_b": ["2", "2", "3"], "label": [1, 0, 1]})
    >>> distinct_pairs(t)["label"].to_pylist()
    [1, 1]
    """
    table = pa.table(pairs) if isinstance(pairs, pa.RecordBatch) else pairs
    rows = table.select(KEYS).append_column("_row", pa.array(np.arange(table.num_rows, dtype=np.int64)))
    first = rows.group_by(KEYS, use_threads=False).aggregate([("_row", "min")])["_row_min"].to_numpy()
    return table.take(np.sort(first))


def entity_of(ids: ArrayLike, pattern: str) -> pa.Array:
    """The entity of each record id: the first group of ``pattern`` where it matches.

    Python ``re`` semantics, searched anywhere in the id (``re.search``) as Spark's
    ``regexp_extract`` does; null where the pattern does not match or its first group is
    empty or did not take part.

    Parameters
    ----------
    ids : pyarrow.Array or pyarrow.ChunkedArray
        Record ids (strings).
    pattern : str
        A regular expression with at least one group, e.g. FEBRL's ``^rec-(\\d+)-``.

    Returns
    -------
    pyarrow.Array
        string, one per id.

    Raises
    ------
    ValueError
        When ``pattern`` has no group.

    Example
    -------
    >>> import pyarrow as pa
    >>> entity_of(pa.array(["rec-12-org", "rec-12-dup-0", "other", None]), r"^rec-(\\d+)-").to_pylist()
    ['12', '12', None, None]
    """
    regex = re.compile(pattern)
    if regex.groups < 1:
        raise ValueError(f"id_regex {pattern!r} has no group ( ... ) to extract the entity with")

    def first_group(value):
        found = regex.search(value) if value is not None else None
        return (found.group(1) or None) if found else None

    return pa.array(map(first_group, _text(ids).to_pylist()), pa.string(), size=len(ids))


def entity_pairs(records: pa.Table, mode: str = "dedupe") -> pa.Table:
    """Every pair of records that share an entity, oriented, each once.

    Records with a null or empty entity pair with none; a record repeated with the same
    entity counts once. In ``link`` mode only records of different sources pair. The
    records are sorted by entity and the pairs of each run of equal entities are numpy
    index pairs, so a run of k records costs k(k-1)/2 pairs and no Python loop.

    Parameters
    ----------
    records : pyarrow.Table
        Columns ``source``, ``id`` and ``entity`` (e.g. from ``entity_of``); other columns
        are ignored. A distributed engine passes one group of entities at a time.
    mode : {"dedupe", "link"}
        ``dedupe``: pairs within and across sources; ``link``: only across sources.

    Returns
    -------
    pyarrow.Table
        ``KEYS`` (string), sorted by entity, then by side a, then by side b.

    Example
    -------
    >>> import pyarrow as pa
    >>> records = pa.table({"source": ["s", "s", "s"], "id": ["3", "1", "2"], "entity": ["e", "e", None]})
    >>> entity_pairs(records).to_pylist()
    [{'source_a': 's', 'id_a': '1', 'source_b': 's', 'id_b': '3'}]
    """
    _check_mode(mode)
    table = pa.table({"entity": _text(records["entity"]), "source": _text(records["source"]),
                      "id": _text(records["id"])})
    table = table.filter(pc.fill_null(pc.not_equal(table["entity"], ""), False))
    table = table.sort_by([("entity", "ascending"), ("source", "ascending"), ("id", "ascending")])
    entity, source, ids = (table[c].combine_chunks() for c in ("entity", "source", "id"))
    n = len(entity)
    if n > 1:  # a record repeated: keep its first row
        same = [pc.fill_null(pc.equal(c[1:], c[:-1]), False).to_numpy(zero_copy_only=False)
                for c in (entity, source, ids)]
        keep = np.r_[True, ~(same[0] & same[1] & same[2])]
        entity, source, ids = (c.filter(pa.array(keep)) for c in (entity, source, ids))
        n = len(entity)
    if n == 0:
        return pa.table({k: pa.array([], pa.string()) for k in KEYS})
    starts = np.flatnonzero(np.r_[True, pc.not_equal(entity[1:], entity[:-1]).to_numpy(zero_copy_only=False)])
    ends = np.repeat(np.r_[starts[1:], n], np.diff(np.r_[starts, n]))  # end of each record's entity run
    later = ends - np.arange(n) - 1  # the records after it in its run: its partners
    i = np.repeat(np.arange(n), later)
    j = i + 1 + np.arange(len(i)) - np.repeat(np.cumsum(later) - later, later)
    if mode == "link":
        code = pc.dictionary_encode(source).indices.to_numpy(zero_copy_only=False)
        across = code[i] != code[j]
        i, j = i[across], j[across]
    keys = oriented(source.take(i), ids.take(i), source.take(j), ids.take(j))
    return pa.table(keys)


def read_pairs(path: str, fmt: str, mode: str, sources: Sequence[str], id_columns: Sequence[str] = ("id_a", "id_b"),
               extra: Sequence[str] = ()) -> pa.Table:
    """A pairs file (or a directory of them) read as Spark reads it, normalised
    (``normalised_pairs``) and without repeated pairs (``distinct_pairs``).

    CSV files have a header line and every value is a string (an empty one is null);
    hidden and ``_`` files of a directory are skipped.

    Parameters
    ----------
    path : str
        A file or directory, local or any URI pyarrow understands.
    fmt : {"csv", "parquet"}
        The file format.
    mode, sources, id_columns, extra
        As for ``normalised_pairs``.

    Returns
    -------
    pyarrow.Table
        ``KEYS`` then ``extra``, each pair once.

    Raises
    ------
    InputError
        When the path does not exist or a file lacks a needed column.

    Example
    -------
    >>> import pathlib, tempfile
    >>> file = pathlib.Path(tempfile.mkdtemp()) / "truth.csv"
    >>> _ = file.write_text("id_a , id_b\\n2,1\\n1,2\\n")
    >>> read_pairs(str(file), "csv", "dedupe", ["s"]).to_pylist()
    [{'source_a': 's', 'id_a': '1', 'source_b': 's', 'id_b': '2'}]
    """
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"pairs format must be csv or parquet, got {fmt!r}")
    parts = []
    for file in list_files(path):
        fs, p = open_input(file)
        if fmt == "csv":
            with fs.open_input_stream(p) as f:  # the header as pyarrow parses it (quotes and all)
                strings = {c: pa.string() for c in pacsv.open_csv(f).schema.names}
            with fs.open_input_stream(p) as f:
                table = pacsv.read_csv(f, convert_options=pacsv.ConvertOptions(
                    column_types=strings, strings_can_be_null=True, null_values=[""]))
        else:
            with fs.open_input_file(p) as f:
                table = pq.read_table(f)
        try:
            parts.append(normalised_pairs(table, id_columns, mode, sources, extra))
        except InputError as e:
            raise InputError(f"{file}: {e}") from None
    return distinct_pairs(pa.concat_tables(parts, promote_options="permissive"))
