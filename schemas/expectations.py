"""Data-quality expectation suites (Great Expectations) of the datasets sigil reads and writes.

Every dataset ``<job>/<dataset>`` has a suite named ``<job>.<dataset>`` built from its
contract: the columns and non-null fields of its Arrow schema (schemas/datasets.py), its
row count as the job reported it (the ``rows`` parameter; ingest's is its input rows less
the quarantined ones, so the counts reconcile), and the checks it promises that one pass
over its rows decides (values in range, pair keys ordered, ids in their dictionary's
range). The checks that shuffle or read another dataset (ids unique, every candidate's
records exist, an entity's id is one of its records) form a second suite,
``<job>.<dataset>.full``, run when ``quality.checks: all``. Raw record sources have the
suite ``ingest.sources`` (every row an id), checked on each source as ingest reads it.

The suites are versioned as the files of a Great Expectations project, ``schemas/gx/``
(``expectations/<job>/<dataset>.json``); ``python -m sigil.schemas.expectations`` writes
them from the contracts here and a test keeps the two equal. Another dataset is named in a
check as the Spark view ``sigil_<name>`` (``sigil_records``, ``sigil_vertices``), which the
validating job registers.

References
----------
Great Expectations 1.x: expectation suites, validation definitions and Data Docs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from sigil.schemas import datasets

PROJECT = Path(__file__).with_name("gx")  # the file-backed project: great_expectations.yml, expectations/


@dataclass(frozen=True)
class Contract:
    """What a dataset promises: ``schema``'s columns (``exact``: these and no others, in this
    order; otherwise at least these, when the rest follow the configuration), its row count
    as reported (``counted``), ``cheap`` checks of one pass and ``full`` checks that shuffle
    or join. Checks are ``(kind, arguments, why)`` triples; see ``_expectation``."""

    schema: pa.Schema
    exact: bool = True
    counted: bool = False
    cheap: tuple = ()
    full: tuple = field(default=())


def _between(column, lo=None, hi=None, why=""):
    return ("between", {"column": column, "min_value": lo, "max_value": hi}, why)


def _none_where(condition, why):
    return ("none_where", {"condition": condition}, why)


def _unique(*columns, why=""):
    return ("unique", {"columns": list(columns)}, why)


def _found_in(table, join, why):
    """Every row ``b`` has a row ``r`` of ``table`` (a view ``sigil_<name>``, or ``{batch}``
    itself) with ``join``."""
    return ("found_in", {"table": table, "join": join}, why)


_PAIR_ORDERED = _none_where("NOT (source_a < source_b OR (source_a = source_b AND id_a < id_b))",
                            "a pair is stored once, (source_a, id_a) < (source_b, id_b)")
_PAIR_UNIQUE = _unique("source_a", "id_a", "source_b", "id_b", why="a pair appears once")
_SAME_PAIR = "b.source_a = r.source_a AND b.id_a = r.id_a AND b.source_b = r.source_b AND b.id_b = r.id_b"


def _candidates() -> Contract:
    return Contract(datasets.CANDIDATES, counted=True, cheap=(
        _PAIR_ORDERED,
        _between("jaccard_estimate", 0, 1, "a MinHash estimate of a Jaccard similarity"),
        _between("jaccard", 0, 1, "a Jaccard similarity"),
        _between("cosine", -1.0001, 1.0001, "the cosine of unit vectors (float32 rounding)"),
    ), full=(_PAIR_UNIQUE, _found_in("sigil_records", "b.source_a = r.source AND b.id_a = r.id", "record a exists"),
             _found_in("sigil_records", "b.source_b = r.source AND b.id_b = r.id", "record b exists")))


def _quarantine() -> Contract:
    return Contract(datasets.QUARANTINE, counted=True)


def _bucket_sizes() -> Contract:
    return Contract(datasets.BUCKET_SIZES, cheap=(_between("size", 1, why="a bucket holds a record"),
                                                  _between("buckets", 1, why="sizes that occur")))


def _oversized() -> Contract:
    return Contract(datasets.OVERSIZED, cheap=(_between("size", 2, why="an oversized bucket"),))


def _vertex_ids(*columns):
    """Every id in ``columns`` is a vertex of the dictionary."""
    return tuple(_found_in("sigil_vertices", f"b.{c} = r.vid", f"{c} is a vertex of the dictionary") for c in columns)


def _top_k(order: str) -> tuple:
    return (_between("rank", 0, why="ranks count from 0 or 1"),), (
        _unique("query_id", "rank", why="one row per query and rank"),
        _unique("query_id", order, why="a row once per query"))


CONTRACTS: dict[str, Contract] = {
    # a raw source as Spark reads it, its id column renamed `id` (its attributes follow the configuration)
    "ingest.sources": Contract(pa.schema([pa.field("id", pa.string())]), exact=False, cheap=(
        _none_where("id IS NULL OR trim(id) = ''", "every row has an id"),),
        full=(_unique("id", why="an id once per source; a repeat is quarantined"),)),
    "generate.truth": Contract(datasets.TRUTH),
    "ingest.records": Contract(datasets.records([]), exact=False, counted=True, cheap=(
        _between("line", 1, why="lines count from 1"),
    ), full=(_unique("rid", why="rid = xxhash64(source, id) is the record key"),
             _unique("source", "id", why="a repeated id is quarantined"))),
    "ingest.quarantine": _quarantine(),
    "block.signatures": Contract(datasets.signatures(1, False), exact=False, cheap=(
        _between("num_tokens", 0, why="a count"),), full=(_unique("rid", why="one signature per record"),)),
    "block.candidates": _candidates(),
    "block.bucket_sizes": _bucket_sizes(),
    "block.oversized": _oversized(),
    "nlsh_block.embeddings": Contract(datasets.embeddings(1), exact=False, full=(
        _unique("rid", why="one embedding per record"),)),
    "nlsh_block.candidates": _candidates(),
    "nlsh_block.bucket_sizes": _bucket_sizes(),
    "nlsh_block.oversized": _oversized(),
    "match.pairs": Contract(datasets.scored([]), exact=False, counted=True, cheap=(
        _PAIR_ORDERED,
        _between("match_probability", 0, 1, "a probability"),
    ), full=(_PAIR_UNIQUE, _found_in("sigil_candidates", _SAME_PAIR, "every scored pair is a candidate"))),
    "match.labels_quarantine": _quarantine(),
    "nlsh_train.train_quarantine": _quarantine(),
    "nlsh_train.valid_quarantine": _quarantine(),
    "cluster.entities": Contract(datasets.ENTITIES, counted=True, cheap=(
        _none_where("entity_id > rid", "an entity's id is its smallest record key"),
        _between("cluster_size", 1, why="an entity holds its records"),
    ), full=(_unique("rid", why="every record is in one entity"),
             _found_in("{batch}", "b.entity_id = r.rid AND r.entity_id = b.entity_id",
                       "an entity's id is the key of one of its records"),
             _found_in("sigil_records", "b.rid = r.rid", "every record clustered was ingested"))),
    "cluster.oversized": Contract(datasets.OVERSIZED_COMPONENTS, counted=True, cheap=(
        _between("size", 2, why="a component of several records"),)),
    "cluster.quarantine": _quarantine(),
    "graph.vertices": Contract(datasets.VERTICES, counted=True, cheap=(
        _between("vid", 0, why="dense indices"), _between("in_degree", 0), _between("out_degree", 0)),
        full=(_unique("vid", why="dense indices"), _unique("vertex", why="one index per external id"))),
    "graph.edges": Contract(datasets.EDGES, counted=True, cheap=(
        _between("multiplicity", 1, why="merged duplicates count"),
        _between("src", 0), _between("dst", 0)),
        full=(_unique("src", "dst", why="duplicates merged"), *_vertex_ids("src", "dst"))),
    "graph.communities": Contract(datasets.VERTEX_COMMUNITIES, full=(_unique("vid", why="one community each"),)),
    "graph.quarantine": _quarantine(),
    "graph_index.signatures": Contract(datasets.neighbourhood_signatures(1), exact=False, cheap=(
        _between("set_size", 0),), full=(_unique("vid", why="one signature per vertex"),)),
    "graph_index.lsh": Contract(datasets.LSH_INDEX, full=(_unique("band", "vid", why="one bucket per band"),)),
    "graph_index.bucket_sizes": _bucket_sizes(),
    "graph_index.oversized": _oversized(),
    "communities.members": Contract(datasets.COMMUNITY_MEMBERS, cheap=(
        _top_k("vid")[0][0], _between("score", 0, 1, "a mean estimated Jaccard similarity")),
        full=_top_k("vid")[1]),
    "communities.assignments": Contract(datasets.VERTEX_ASSIGNMENTS, cheap=(
        _none_where("community > vid", "a community is labelled by its smallest vid"),
        _between("community_size", 1)), full=(_unique("vid", why="one community per vertex"),)),
    "communities.quarantine": _quarantine(),
    "ppr_index.fingerprints": Contract(datasets.FINGERPRINTS, cheap=(
        _between("value", 0, 1, "alpha * visits / walks"),),
        full=(_unique("source", "target", why="one value per pair"),
              _none_where("source IN (SELECT source FROM {batch} GROUP BY source HAVING sum(value) > 1.0001)",
                          "a fingerprint is a sub-probability vector"))),
    "ppr_query.rankings": Contract(datasets.PPR_RANKINGS, cheap=(
        _top_k("vid")[0][0], _between("score", 0, why="a PageRank estimate")), full=_top_k("vid")[1]),
    "ppr_query.quarantine": _quarantine(),
    "interactions.users": Contract(datasets.USERS, cheap=(_between("uid", 0), _between("degree", 0)),
                                   full=(_unique("uid"), _unique("user"))),
    "interactions.items": Contract(datasets.ITEMS, cheap=(_between("iid", 0), _between("degree", 0)),
                                   full=(_unique("iid"), _unique("item"))),
    **{f"interactions.{split}": Contract(datasets.INTERACTIONS, cheap=(
        _between("count", 1, why="merged repeats count"),
        _none_where("first_timestamp > last_timestamp", "first before last")),
        full=(_unique("uid", "iid", why="repeats merged"),)) for split in ("interactions", "train", "test")},
    "interactions.quarantine": _quarantine(),
    "graphhash.mapping": Contract(datasets.GRAPHHASH_MAPPING, cheap=(
        _between("bucket", 0), _between("bucket2", 0), _between("dense_id", 0), _between("table", 0, 1)),
        full=(_unique("entity_type", "dense_id", why="one row per user and item"),)),
    "graphhash.baselines": Contract(datasets.GRAPHHASH_BASELINES, cheap=(_between("bucket", 0),)),
    "graphhash.bucket_sizes": Contract(datasets.GRAPHHASH_BUCKET_SIZES, cheap=(
        _none_where("users + items < 1", "a row holds a user or an item"),)),
    "hqi_index.layout": Contract(datasets.hqi_layout(1), exact=False, cheap=(
        _between("leaf", 0), _between("cluster", 0)), full=(_unique("id", why="every row laid out once"),)),
    "hqi_index.centroids": Contract(datasets.hqi_centroids(1), exact=False, cheap=(_between("rows", 1),),
                                    full=(_unique("cluster"),)),
    "hqi_index.quarantine": _quarantine(),
    "hqi_query.results": Contract(datasets.HQI_RESULTS, counted=True, cheap=(
        _between("rank", 0), _between("distance", 0, why="a squared L2 distance")),
        full=_top_k("id")[1]),
    "hqi_query.query_stats": Contract(datasets.HQI_QUERY_STATS, cheap=(
        _between("rows_scanned", 0), _between("distance_computations", 0)), full=(_unique("query_id"),)),
    "hqi_query.quarantine": _quarantine(),
}

def _expectation(kind: str, args: dict, why: str):
    """One check as a Great Expectations expectation. An SQL check selects the rows that
    break it: GX counts them and keeps a bounded sample."""
    import great_expectations.expectations as gxe

    meta = {"why": why} if why else None
    if kind == "between":
        return gxe.ExpectColumnValuesToBeBetween(**args, meta=meta)
    if kind == "unique" and len(args["columns"]) == 1:
        return gxe.ExpectColumnValuesToBeUnique(column=args["columns"][0], meta=meta)
    if kind == "unique":
        return gxe.ExpectCompoundColumnsToBeUnique(column_list=args["columns"], meta=meta)
    if kind == "none_where":
        query = f"SELECT * FROM {{batch}} WHERE {args['condition']}"
    else:  # found_in
        query = f"SELECT b.* FROM {{batch}} b LEFT ANTI JOIN {args['table']} r ON {args['join']}"
    return gxe.UnexpectedRowsExpectation(unexpected_rows_query=query, description=why)


def _columns(contract: Contract) -> list:
    """The schema's part: its columns, its non-null fields, and the reported row count."""
    import great_expectations.expectations as gxe

    schema = contract.schema
    out = ([gxe.ExpectTableColumnsToMatchOrderedList(column_list=schema.names)] if contract.exact
           else [gxe.ExpectColumnToExist(column=name) for name in schema.names])
    out += [gxe.ExpectColumnValuesToNotBeNull(column=f.name) for f in schema if not f.nullable]
    if contract.counted:
        out.append(gxe.ExpectTableRowCountToEqual(value={"$PARAMETER": "rows"}))
    return out


def suites() -> dict:
    """Every suite, by name: ``<job>.<dataset>`` and, where there are checks that shuffle or
    join, ``<job>.<dataset>.full``."""
    import great_expectations as gx

    out = {}
    for name, contract in CONTRACTS.items():
        out[name] = gx.ExpectationSuite(name=name, expectations=_columns(contract) + [
            _expectation(*check) for check in contract.cheap])
        if contract.full:
            out[f"{name}.full"] = gx.ExpectationSuite(name=f"{name}.full", expectations=[
                _expectation(*check) for check in contract.full])
    return out


def views(name: str) -> set[str]:
    """The other datasets suite ``name``'s checks read (``sigil_records`` -> ``records``)."""
    contract = CONTRACTS[name.removesuffix(".full")]
    checks = contract.full if name.endswith(".full") else contract.cheap
    return {args["table"].removeprefix("sigil_") for kind, args, _ in checks
            if kind == "found_in" and args["table"].startswith("sigil_")}


def suite_file(name: str, root: Path = PROJECT) -> Path:
    """Where the project keeps suite ``name`` (GX's layout: the name's dots are folders)."""
    return root.joinpath("expectations", *name.split(".")).with_suffix(".json")


def suite_json(suite) -> str:
    """A suite as its versioned file holds it: no store ids, stable order."""
    return json.dumps(suite.to_json_dict(), indent=2, sort_keys=True) + "\n"


def write_project(root: Path = PROJECT) -> list[Path]:
    """Write every suite into the project at ``root``; returns the files written."""
    written = []
    for name, suite in suites().items():
        path = suite_file(name, root)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(suite_json(suite))
        written.append(path)
    return written


if __name__ == "__main__":  # python -m sigil.schemas.expectations: rewrite schemas/gx/expectations/
    for path in write_project():
        print(path)
