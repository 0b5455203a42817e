"""Splink 5 (DuckDB backend): the reference side of the entity-resolution benchmark.

Splink (Fellegi-Sunter, unsupervised: u by random sampling, m by expectation maximisation)
deduplicates / links the shared data sets, and its pairwise predictions and clusters are
scored against the ground truth with the plain metric helpers of this module, which the
caller reuses for the other system:

- ``pairwise_metrics(predicted_pairs, true_pairs)``: precision / recall / F1 over unordered
  pairs (every true pair counts, so a true pair lost by blocking is a miss);
- ``cluster_pairwise_metrics(labels, true_pairs, sources=None)``: the same over the pairs
  implied by a clustering (only cross-source pairs when ``sources`` is given: link mode),
  counted without materialising them;
- ``bcubed(predicted_labels, true_labels)``: B-cubed precision / recall / F1 (Bagga &
  Baldwin 1998) of a clustering against the true entities.

Data sets (``--datasets``): ``febrl3`` (dedupe, 5,000 records), ``febrl4`` (link_only,
5,000 + 5,000), ``abt_buy`` (link_only, 1,076 + 1,064 products) and ``generated`` (dedupe on
person records written by ``sigil generate``: ``--generated-records GLOB`` of CSV files,
``--generated-truth`` Parquet of true pairs). The settings follow Splink's own FEBRL demos
(docs/demos/examples/duckdb/febrl3 and febrl4): see ``febrl3_model`` and its neighbours.

Settings, in short (all: prior from deterministic rules, u by random sampling with
``max_pairs=1e7`` and seed 1, m by EM without term frequencies, predict and cluster at 0.5):

- FEBRL (both): ``NameComparison`` (exact, Jaro-Winkler 0.92 / 0.88 / 0.7, term frequencies)
  on given_name and surname; ``DateOfBirthComparison`` (exact, Levenshtein 1, within 1 month
  / 1 year / 10 years); Damerau-Levenshtein 1 / 2 on soc_sec_id and postcode; exact on
  street_number and state; Jaro-Winkler 0.9 / 0.8 on address_1 and suburb.
  febrl3 blocks on soc_sec_id, given_name, surname, date_of_birth, postcode (the demo's
  rules); febrl4 on the demo's seven rules (names, swapped names, date of birth, soc_sec_id,
  state + address_1, street_number + address_1, postcode). EM on date of birth, then postcode.
- abt_buy: name (exact, token Jaccard 0.6, Jaro-Winkler 0.9, Jaccard 0.4, Jaro-Winkler 0.8,
  Jaccard 0.25), model-number-like tokens of the name (shared, prefix, substring), price
  (relative difference < 10% / 25% / 50%); blocks on the brand (first name token) or a
  shared model token; EM on the brand block.
- generated: the FEBRL comparisons, blocking on pairs of columns (see ``generated_model``).

Installation. Splink 5.0.0 installs into the project's ``.venv`` without changing any pinned
version: ``pip install --dry-run -c constraints.txt splink==5.0.0`` resolves to splink plus
two new packages only (duckdb 2.0.1, sqlglot 30.30.0; its pyarrow requirement is met by the
pinned 25.0.1, and it needs neither numpy nor pandas). They are the optional group ``bench``
of ``pyproject.toml``::

    .venv/bin/pip install -c constraints.txt -e ".[dev,bench]"

Timing. A data set is read from its CSV files into Arrow once (not timed; reported as
``read_seconds``). Each of ``--repeat`` runs is then timed from a fresh DuckDB connection:
register the tables with Splink, build the ``Linker``, estimate the parameters
(probability two random records match from deterministic rules, u by random sampling
with ``max_pairs=1e7``, m by EM), ``predict`` at match probability 0.5 and
``cluster_pairwise_predictions_at_threshold`` at 0.5. The median is reported as
``seconds``, the per-stage medians as ``stage_seconds``. Metrics (and ``comparisons_scored``:
the blocked pairs Splink scored, counted after the timed part) are computed after the timer
stops, from the last run. ``peak_rss_bytes`` is the peak resident memory of this process
so far (DuckDB runs inside it): run one data set per process to read it for that data set.

Run from the repository root::

    .venv/bin/python benchmarks/splink_reference.py [--datasets febrl3,febrl4,abt_buy] [--repeat 3] [--json FILE]
    .venv/bin/python benchmarks/splink_reference.py --datasets generated \\
        --generated-records '/tmp/bench_gen/generate/records/source=people/*.csv' \\
        --generated-truth /tmp/bench_gen/generate/truth
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import statistics
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "er"
THRESHOLD = 0.5          # match probability for predictions and for clustering
U_MAX_PAIRS = 1e7        # estimate_u_using_random_sampling(max_pairs=...)
U_SEED = 1               # reproducible u estimates
DATASETS = ("febrl3", "febrl4", "abt_buy", "generated")

FEBRL_COLUMNS = ["rec_id", "given_name", "surname", "street_number", "address_1", "address_2",
                 "suburb", "postcode", "state", "date_of_birth", "soc_sec_id"]


def log(msg: str) -> None:
    print(f"[splink] {msg}", file=sys.stderr, flush=True)


# ================================================================ metric helpers
# Plain functions over pandas: pairs are frames of two id columns (or iterables of 2-tuples),
# labelings are record id -> cluster label (pandas Series indexed by record id, or dicts).

def _as_series(labels: pd.Series | Mapping) -> pd.Series:
    if isinstance(labels, pd.Series):
        return labels
    return pd.Series(dict(labels), dtype=object)


def _str_index(series: pd.Series) -> pd.Series:
    """A copy of ``series`` indexed by the record ids as strings."""
    return pd.Series(series.to_numpy(), index=series.index.astype(str))


def pair_frame(pairs: pd.DataFrame | Iterable[tuple[Any, Any]]) -> pd.DataFrame:
    """Unordered pairs as a frame ``l, r`` (string ids, ``l < r``), self pairs and duplicates dropped.

    ``pairs``: a DataFrame whose first two columns are the ids, or an iterable of 2-tuples.
    """
    if isinstance(pairs, pd.DataFrame):
        left, right = pairs.iloc[:, 0], pairs.iloc[:, 1]
    else:
        rows = list(pairs)
        left = pd.Series([p[0] for p in rows], dtype=object)
        right = pd.Series([p[1] for p in rows], dtype=object)
    a = left.astype(str).to_numpy(dtype=object)
    b = right.astype(str).to_numpy(dtype=object)
    swap = a > b
    frame = pd.DataFrame({"l": np.where(swap, b, a), "r": np.where(swap, a, b)})
    return frame[frame["l"] != frame["r"]].drop_duplicates(ignore_index=True)


def prf(true_positives: int, predicted: int, actual: int) -> dict:
    """Precision, recall, F1 from counts (precision 0 when nothing is predicted)."""
    precision = true_positives / predicted if predicted else 0.0
    recall = true_positives / actual if actual else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1,
            "true_positives": int(true_positives), "predicted_pairs": int(predicted), "true_pairs": int(actual)}


def pairwise_metrics(predicted, truth) -> dict:
    """Pairwise precision / recall / F1 of predicted pairs against ALL true pairs (unordered)."""
    p, t = pair_frame(predicted), pair_frame(truth)
    tp = len(p.merge(t, on=["l", "r"], how="inner"))
    return prf(tp, len(p), len(t))


def cluster_pairwise_metrics(labels, truth, sources=None) -> dict:
    """Pairwise precision / recall / F1 of the pairs implied by a clustering.

    ``labels``: record id -> cluster id; a record that is absent is a singleton.
    ``sources``: record id -> source name; when given (link mode) only pairs of records from
    different sources are implied (and counted as true positives). The implied pairs are
    counted per cluster, not materialised, so one large cluster costs nothing.
    """
    lab = _str_index(_as_series(labels))
    t = pair_frame(truth)
    cl_l = lab.reindex(t["l"]).to_numpy(dtype=object)
    cl_r = lab.reindex(t["r"]).to_numpy(dtype=object)
    same = pd.notna(cl_l) & pd.notna(cl_r) & (cl_l == cl_r)
    if sources is None:
        sizes = lab.value_counts().to_numpy(dtype=np.int64)
        implied = int((sizes * (sizes - 1) // 2).sum())
    else:
        src = _str_index(_as_series(sources))
        frame = pd.DataFrame({"c": lab.to_numpy(), "s": src.reindex(lab.index).to_numpy()})
        per = frame.groupby(["c", "s"]).size().rename("n").reset_index()
        total = per.groupby("c")["n"].sum()
        squares = (per["n"] ** 2).groupby(per["c"]).sum()
        implied = int(((total ** 2 - squares) // 2).sum())
        same &= src.reindex(t["l"]).to_numpy(dtype=object) != src.reindex(t["r"]).to_numpy(dtype=object)
    return prf(int(same.sum()), implied, len(t))


def bcubed(predicted, truth) -> dict:
    """B-cubed precision / recall / F1 (Bagga & Baldwin 1998).

    ``truth``: record id -> true cluster (entity) for every record; ``predicted``: record id ->
    predicted cluster; records of ``truth`` missing from ``predicted`` are singletons.
    Precision averages |C(r) & T(r)| / |C(r)| over the records, recall |C(r) & T(r)| / |T(r)|.
    """
    t = _str_index(_as_series(truth))
    p = _str_index(_as_series(predicted)).reindex(t.index)
    # labels as integer codes; each record without a predicted cluster gets a code of its own
    codes, _ = pd.factorize(p.astype(object), use_na_sentinel=True)
    missing = codes < 0
    codes[missing] = codes.max(initial=-1) + 1 + np.arange(missing.sum())
    frame = pd.DataFrame({"p": codes, "t": pd.factorize(t.astype(object))[0]})
    cells = frame.groupby(["p", "t"]).size().rename("n").reset_index()
    n_p = frame.groupby("p").size()
    n_t = frame.groupby("t").size()
    n = len(frame)
    sq = cells["n"].to_numpy(dtype=np.float64) ** 2
    precision = float((sq / n_p.reindex(cells["p"]).to_numpy()).sum() / n) if n else 0.0
    recall = float((sq / n_t.reindex(cells["t"]).to_numpy()).sum() / n) if n else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def clusters_from_pairs(records: Iterable[Any], pairs) -> pd.Series:
    """Connected components of ``pairs`` over ``records`` (record id -> component number)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    ids = pd.Index(pd.Series(list(records), dtype=object).astype(str).unique())
    p = pair_frame(pairs)
    i, j = ids.get_indexer(p["l"]), ids.get_indexer(p["r"])
    if (i < 0).any() or (j < 0).any():
        raise ValueError("a pair names a record that is not in records")
    graph = coo_matrix((np.ones(len(i)), (i, j)), shape=(len(ids), len(ids)))
    _, comp = connected_components(graph, directed=False)
    return pd.Series(comp, index=ids)


def all_pairs_within(labels) -> pd.DataFrame:
    """Every unordered pair of records that share a label (the true pairs of a dedupe task)."""
    lab = _as_series(labels)
    frame = pd.DataFrame({"id": lab.index.astype(str), "c": lab.to_numpy()})
    m = frame.merge(frame, on="c", suffixes=("_l", "_r"))
    return pair_frame(m.loc[m["id_l"] < m["id_r"], ["id_l", "id_r"]])


# ================================================================ data (read once, not timed)

def _arrow(sql: str) -> pa.Table:
    con = duckdb.connect()
    try:
        return con.sql(sql).to_arrow_table()
    finally:
        con.close()


def _sql_str(path: Path | str) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def read_febrl(path: Path) -> pa.Table:
    """A FEBRL CSV (headers and values with a space after each comma): values stripped,
    empty values as NULL, all columns text."""
    cols = ", ".join(f"'{c}': 'VARCHAR'" for c in FEBRL_COLUMNS)
    select = ", ".join(f"nullif(trim({c}), '') as {c}" for c in FEBRL_COLUMNS)
    return _arrow(f"select {select} from read_csv({_sql_str(path)}, header=false, skip=1, "
                  f"columns={{{cols}}}, quote='\"', auto_detect=false)")


def febrl_entity(rec_ids: Iterable[str]) -> pd.Series:
    """rec-<n>-org / rec-<n>-dup-<k> -> entity <n>."""
    ids = pd.Series(list(rec_ids), dtype=object)
    return pd.Series(ids.str.extract(r"^rec-(\d+)-")[0].to_numpy(), index=ids.to_numpy())


_TOKENS = "list_filter(string_split_regex(regexp_replace(lower({col}), '[^a-z0-9]+', ' ', 'g'), ' +'), lambda x: x <> '')"
# model-number-like tokens: split on blanks, keep letters and digits only, at least 4 characters
# with at least one digit ("AVR-1709" -> "avr1709", "MF209-B1" -> "mf209b1")
_CODES = ("list_distinct(list_filter(list_transform(string_split_regex(lower({col}), '[[:space:],;()]+'), "
          "lambda x: regexp_replace(x, '[^a-z0-9]', '', 'g')), lambda x: length(x) >= 4 and regexp_matches(x, '[0-9]')))")


def read_abt_buy(path: Path) -> pa.Table:
    """Abt-Buy table (id,name,description,price) with the derived columns the model uses:
    ``name_norm`` (lower case, punctuation as blanks), ``name_tokens``, ``brand`` (first name token),
    ``name_codes`` (model-number-like tokens of the name), ``price`` as a number."""
    tokens = _TOKENS.format(col="name")
    codes = _CODES.format(col="name")
    return _arrow(f"""
        with raw as (
            select cast(id as varchar) as id, nullif(trim(name), '') as name,
                   nullif(trim(description), '') as description, try_cast(price as double) as price
            from read_csv({_sql_str(path)}, header=true, all_varchar=true))
        select id, name, description, price,
               nullif(trim(regexp_replace(lower(name), '[^a-z0-9]+', ' ', 'g')), '') as name_norm,
               {tokens} as name_tokens,
               ({tokens})[1] as brand,
               {codes} as name_codes
        from raw""")


# ================================================================ Splink settings

def febrl_comparisons() -> list:
    """Comparisons of the FEBRL models (Splink's febrl3 / febrl4 demos, plus the address
    columns): name comparisons with Jaro-Winkler levels, date of birth, Damerau-Levenshtein
    levels on the ids, exact / Jaro-Winkler on the address."""
    return [
        cl.NameComparison("given_name").configure(term_frequency_adjustments=True),
        cl.NameComparison("surname").configure(term_frequency_adjustments=True),
        cl.DateOfBirthComparison("date_of_birth", input_is_string=True, datetime_format="%Y%m%d",
                                 invalid_dates_as_null=True),
        cl.DamerauLevenshteinAtThresholds("soc_sec_id", [1, 2]),
        cl.ExactMatch("street_number").configure(term_frequency_adjustments=True),
        cl.DamerauLevenshteinAtThresholds("postcode", [1, 2]).configure(
            term_frequency_adjustments=True),
        cl.JaroWinklerAtThresholds("address_1", [0.9, 0.8]),
        cl.JaroWinklerAtThresholds("suburb", [0.9, 0.8]).configure(term_frequency_adjustments=True),
        cl.ExactMatch("state").configure(term_frequency_adjustments=True),
    ]


FEBRL_DETERMINISTIC = [
    block_on("soc_sec_id"),
    block_on("given_name", "surname", "date_of_birth"),
    "l.given_name = r.surname and l.surname = r.given_name and l.date_of_birth = r.date_of_birth",
]


@dataclass
class SplinkModel:
    """Everything a Splink run needs besides the data."""

    link_type: str
    unique_id: str
    blocking_rules: list
    comparisons: Callable[[], list]
    deterministic_rules: list
    deterministic_recall: float
    em_rules: list
    em_max_pairs: float | None = None
    u_max_pairs: float = U_MAX_PAIRS

    def settings(self) -> SettingsCreator:
        return SettingsCreator(
            unique_id_column_name=self.unique_id,
            link_type=self.link_type,
            blocking_rules_to_generate_predictions=list(self.blocking_rules),
            comparisons=self.comparisons(),
            retain_intermediate_calculation_columns=False,
            retain_matching_columns=False,
        )

    def describe(self) -> dict:
        """The settings as plain text (for the JSON output and the report)."""
        def rule(r):
            if isinstance(r, str):
                return r
            br = r.get_blocking_rule("duckdb")
            explode = getattr(br, "array_columns_to_explode", None)
            return br.blocking_rule_sql + (f" (exploding {', '.join(explode)})" if explode else "")

        def comparison(c):
            comp = c.get_comparison("duckdb")
            return {"name": comp.output_column_name,
                    "levels": [lvl.label_for_charts for lvl in comp.comparison_levels],
                    "tf": sorted({lvl._tf_adjustment_input_column.unquote().name for lvl in comp.comparison_levels
                                  if lvl._tf_adjustment_input_column is not None})}
        return {
            "link_type": self.link_type,
            "blocking_rules": [rule(r) for r in self.blocking_rules],
            "comparisons": [comparison(c) for c in self.comparisons()],
            "deterministic_rules": [rule(r) for r in self.deterministic_rules],
            "deterministic_recall": self.deterministic_recall,
            "u": f"estimate_u_using_random_sampling(max_pairs={self.u_max_pairs:g}, seed={U_SEED})",
            "em_rules": [rule(r) for r in self.em_rules],
            "em_max_pairs": self.em_max_pairs,
            "threshold_match_probability": THRESHOLD,
        }


def febrl3_model() -> SplinkModel:
    """Splink's febrl3 demo: blocking on single columns, EM on date of birth and postcode."""
    return SplinkModel(
        link_type="dedupe_only", unique_id="rec_id",
        blocking_rules=[block_on("soc_sec_id"), block_on("given_name"), block_on("surname"),
                        block_on("date_of_birth"), block_on("postcode")],
        comparisons=febrl_comparisons,
        deterministic_rules=FEBRL_DETERMINISTIC, deterministic_recall=0.9,
        em_rules=[block_on("date_of_birth"), block_on("postcode")],
    )


def febrl4_model() -> SplinkModel:
    """Splink's febrl4 demo: its seven blocking rules, EM on date of birth and postcode."""
    return SplinkModel(
        link_type="link_only", unique_id="rec_id",
        blocking_rules=[
            block_on("given_name", "surname"),
            "l.given_name = r.surname and l.surname = r.given_name",
            block_on("date_of_birth"),
            block_on("soc_sec_id"),
            block_on("state", "address_1"),
            block_on("street_number", "address_1"),
            block_on("postcode"),
        ],
        comparisons=febrl_comparisons,
        deterministic_rules=FEBRL_DETERMINISTIC[:2], deterministic_recall=0.8,
        em_rules=[block_on("date_of_birth"), block_on("postcode")],
    )


def generated_model() -> SplinkModel:
    """The FEBRL comparisons, for ``sigil generate``'s people at any size (20k..1M entities).

    Blocking: the FEBRL rules on single columns (given name, surname, postcode, date of
    birth) give pair counts that grow with the square of the records (at 150k records
    ``block_on("postcode")`` alone gives 9.3M pairs), so the rules here are pairs of
    columns; the name rule carries the birth year or the birth month+day. Against the
    generator's truth this loses 0.01% of the blocking recall of the broad rules at 150k.

    EM on date of birth and on given name + surname, each capped at 5e6 blocked pairs
    (Splink samples records beyond that). Not on postcode as in the FEBRL demos: the
    generator draws suburb and state from the postcode, so within a postcode block they
    agree for every pair, and at 150k records EM converged to "same area" instead of "same
    person" (precision 0.67, giant clusters)."""
    return SplinkModel(
        link_type="dedupe_only", unique_id="rec_id",
        blocking_rules=[
            block_on("soc_sec_id"),
            block_on("given_name", "surname", "substr(date_of_birth, 1, 4)"),
            block_on("given_name", "surname", "substr(date_of_birth, 5, 4)"),
            "l.given_name = r.surname and l.surname = r.given_name",
            block_on("given_name", "date_of_birth"),
            block_on("surname", "date_of_birth"),
            block_on("postcode", "given_name"),
            block_on("postcode", "surname"),
            block_on("postcode", "date_of_birth"),
            block_on("address_1", "street_number"),
        ],
        comparisons=febrl_comparisons,
        deterministic_rules=FEBRL_DETERMINISTIC, deterministic_recall=0.9,
        em_rules=[block_on("date_of_birth"), block_on("given_name", "surname")],
        em_max_pairs=5e6,
    )


def _name_jaccard(threshold: float) -> dict:
    inter = "len(list_intersect(name_tokens_l, name_tokens_r))"
    union = "len(list_distinct(list_concat(name_tokens_l, name_tokens_r)))"
    return cll.CustomLevel(f"{inter} >= {threshold} * {union}",
                           label_for_charts=f"name token Jaccard >= {threshold}")


def abt_buy_comparisons() -> list:
    return [
        cl.CustomComparison(
            output_column_name="name",
            comparison_levels=[
                cll.NullLevel("name_norm"),
                cll.ExactMatchLevel("name_norm"),
                _name_jaccard(0.6),
                cll.JaroWinklerLevel("name_norm", 0.9),
                _name_jaccard(0.4),
                cll.JaroWinklerLevel("name_norm", 0.8),
                _name_jaccard(0.25),
                cll.ElseLevel(),
            ],
            comparison_description="name: exact, token Jaccard 0.6, Jaro-Winkler 0.9, token Jaccard 0.4, "
                                   "Jaro-Winkler 0.8, token Jaccard 0.25",
        ),
        cl.CustomComparison(
            output_column_name="model_code",
            comparison_levels=[
                cll.CustomLevel("len(name_codes_l) = 0 or len(name_codes_r) = 0",
                                label_for_charts="no model code on one side").configure(is_null_level=True),
                cll.ArrayIntersectLevel("name_codes", 1),
                cll.CustomLevel(
                    "len(list_filter(name_codes_l, lambda x: len(list_filter(name_codes_r, "
                    "lambda y: starts_with(x, y) or starts_with(y, x))) > 0)) > 0",
                    label_for_charts="a model code is a prefix of one on the other side"),
                cll.CustomLevel(
                    "len(list_filter(name_codes_l, lambda x: len(list_filter(name_codes_r, "
                    "lambda y: contains(x, y) or contains(y, x))) > 0)) > 0",
                    label_for_charts="a model code contains one on the other side"),
                cll.ElseLevel(),
            ],
            comparison_description="model-number-like tokens of the name: shared, prefix, substring, none",
        ),
        cl.CustomComparison(
            output_column_name="price",
            comparison_levels=[
                cll.NullLevel("price"),
                cll.PercentageDifferenceLevel("price", 0.1),
                cll.PercentageDifferenceLevel("price", 0.25),
                cll.PercentageDifferenceLevel("price", 0.5),
                cll.ElseLevel(),
            ],
            comparison_description="price: relative difference < 10%, 25%, 50%",
        ),
    ]


def abt_buy_model() -> SplinkModel:
    """Abt-Buy, unsupervised: blocking on the brand (first name token) or on a shared model
    code (exploded array of model-number-like name tokens); EM on the brand block."""
    return SplinkModel(
        link_type="link_only", unique_id="id",
        blocking_rules=[
            block_on("brand"),
            block_on("name_codes", arrays_to_explode=["name_codes"]),
        ],
        comparisons=abt_buy_comparisons,
        deterministic_rules=[block_on("name_norm"),
                             block_on("name_codes", arrays_to_explode=["name_codes"])],
        deterministic_recall=0.7,
        em_rules=[block_on("brand")],
    )


# ================================================================ running Splink (timed)

@dataclass
class SplinkRun:
    linker: Linker
    db_api: DuckDBAPI
    predictions: Any
    clusters: Any
    seconds: float
    stage_seconds: dict = field(default_factory=dict)


def run_splink(model: SplinkModel, tables: list[pa.Table], names: list[str]) -> SplinkRun:
    """One timed Splink run on a fresh DuckDB connection: load, train, predict, cluster."""
    stages = {}
    t0 = t = time.perf_counter()
    db_api = DuckDBAPI(connection=duckdb.connect())
    sdfs = [db_api.register(tab, dataset_display_name=name) for tab, name in zip(tables, names)]
    linker = Linker(sdfs if model.link_type != "dedupe_only" else sdfs[0], model.settings(),
                    log_level=logging.WARNING)
    stages["load"], t = time.perf_counter() - t, time.perf_counter()
    linker.training.estimate_probability_two_random_records_match(
        model.deterministic_rules, recall=model.deterministic_recall)
    stages["train_prior"], t = time.perf_counter() - t, time.perf_counter()
    linker.training.estimate_u_using_random_sampling(max_pairs=model.u_max_pairs, seed=U_SEED)
    stages["train_u"], t = time.perf_counter() - t, time.perf_counter()
    for rule in model.em_rules:
        linker.training.estimate_parameters_using_expectation_maximisation(
            rule, estimate_without_term_frequencies=True, max_pairs=model.em_max_pairs)
    stages["train_em"], t = time.perf_counter() - t, time.perf_counter()
    predictions = linker.inference.predict(threshold_match_probability=THRESHOLD)
    stages["predict"], t = time.perf_counter() - t, time.perf_counter()
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        predictions, threshold_match_probability=THRESHOLD)
    stages["cluster"] = time.perf_counter() - t
    return SplinkRun(linker, db_api, predictions, clusters, time.perf_counter() - t0, stages)


def _node(source_col: str | None, id_col: str) -> str:
    return f"({source_col} || ':' || {id_col})" if source_col else id_col


def evaluate(run: SplinkRun, model: SplinkModel, truth_pairs: pd.DataFrame, truth_labels: pd.Series,
             sources: pd.Series | None) -> dict:
    """Metrics of one run (not timed). In link mode record ids are ``<source>:<id>``."""
    uid = model.unique_id
    link = model.link_type != "dedupe_only"
    con = run.db_api.duckdb_con
    l_node = _node("source_dataset_l" if link else None, f"{uid}_l")
    r_node = _node("source_dataset_r" if link else None, f"{uid}_r")
    pred = con.sql(f"select {l_node} as l, {r_node} as r from {run.predictions.physical_name} "
                   f"where match_probability >= {THRESHOLD}").to_df()
    node = _node("source_dataset" if link else None, uid)
    clusters = con.sql(f"select {node} as id, cast(cluster_id as varchar) as c "
                       f"from {run.clusters.physical_name}").to_df()
    labels = pd.Series(clusters["c"].to_numpy(), index=clusters["id"].to_numpy())

    blocked_pairs = _blocked_pairs(run, model)
    comparisons = len(blocked_pairs)
    blocking = pairwise_metrics(blocked_pairs, truth_pairs)

    pw = pairwise_metrics(pred, truth_pairs)
    cp = cluster_pairwise_metrics(labels, truth_pairs, sources if link else None)
    b3 = bcubed(labels, truth_labels)
    return {
        "comparisons_scored": int(comparisons),
        "predicted_matches": pw["predicted_pairs"],
        "true_pairs": pw["true_pairs"],
        "precision": pw["precision"], "recall": pw["recall"], "f1": pw["f1"],
        "cluster_precision": cp["precision"], "cluster_recall": cp["recall"], "cluster_f1": cp["f1"],
        "cluster_implied_pairs": cp["predicted_pairs"],
        "bcubed_precision": b3["precision"], "bcubed_recall": b3["recall"], "bcubed_f1": b3["f1"],
        "blocking_recall": blocking["recall"],
        "clusters": int(labels.nunique()),
        "probability_two_random_records_match":
            run.linker._settings_obj._probability_two_random_records_match,
    }


def _blocked_pairs(run: SplinkRun, model: SplinkModel) -> pd.DataFrame:
    """The blocked pairs (what predict scored) as record ids, for the blocking recall.

    Splink's join keys are ``<source>-__-<id>`` in link mode (``<id>`` when deduplicating)."""
    blocked = run.linker.inference.compute_blocked_pairs_for_predict()
    if model.link_type != "dedupe_only":
        key = "replace({side}, '-__-', ':')"
    else:
        key = "{side}"
    return run.db_api.duckdb_con.sql(
        f"select {key.format(side='join_key_l')} as l, {key.format(side='join_key_r')} as r "
        f"from {blocked.physical_name}").to_df()


# ================================================================ per data set

def _measure(dataset: str, model: SplinkModel, tables: list[pa.Table], names: list[str],
             truth_pairs: pd.DataFrame, truth_labels: pd.Series, sources: pd.Series | None,
             read_seconds: float, repeat: int) -> dict:
    seconds, stage_runs, counts = [], [], []
    run = None
    for i in range(repeat):
        if run is not None:
            run.db_api.duckdb_con.close()
        run = run_splink(model, tables, names)
        seconds.append(run.seconds)
        stage_runs.append(run.stage_seconds)
        counts.append(run.db_api.duckdb_con.sql(
            f"select count(*) as n from {run.predictions.physical_name}").to_df()["n"].iloc[0])
        log(f"{dataset} run {i + 1}/{repeat}: {run.seconds:.2f} s "
            f"({', '.join(f'{k} {v:.2f}' for k, v in run.stage_seconds.items())}), "
            f"{counts[-1]} predicted pairs")
    metrics = evaluate(run, model, truth_pairs, truth_labels, sources)
    run.db_api.duckdb_con.close()
    records = sum(t.num_rows for t in tables)
    return {
        "system": "splink", "dataset": dataset, "records": records,
        **{k: metrics[k] for k in ("comparisons_scored", "predicted_matches")},
        **{k: metrics[k] for k in ("precision", "recall", "f1", "cluster_precision", "cluster_recall",
                                   "cluster_f1", "bcubed_precision", "bcubed_recall", "bcubed_f1")},
        "seconds": statistics.median(seconds),
        "seconds_all": seconds,
        "stage_seconds": {k: statistics.median(s[k] for s in stage_runs) for k in stage_runs[0]},
        "read_seconds": read_seconds,
        "repeat": repeat,
        "predicted_matches_per_run": [int(c) for c in counts],
        **{k: metrics[k] for k in ("true_pairs", "blocking_recall", "cluster_implied_pairs", "clusters",
                                   "probability_two_random_records_match")},
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "load_average_after": os.getloadavg()[0],
        "settings": model.describe(),
    }


def febrl3(data_dir: Path = DEFAULT_DATA / "febrl", repeat: int = 1) -> dict:
    """FEBRL dataset 3: deduplication of 5,000 records (true pairs: all pairs of one entity)."""
    t0 = time.perf_counter()
    table = read_febrl(Path(data_dir) / "dataset3.csv")
    entity = febrl_entity(table.column("rec_id").to_pylist())
    truth = all_pairs_within(entity)
    read_seconds = time.perf_counter() - t0
    return _measure("febrl3", febrl3_model(), [table], ["febrl3"], truth, entity, None,
                    read_seconds, repeat)


def febrl4(data_dir: Path = DEFAULT_DATA / "febrl", repeat: int = 1) -> dict:
    """FEBRL dataset 4: link 4a (5,000 originals) with 4b (5,000 duplicates), 5,000 true links."""
    t0 = time.perf_counter()
    a = read_febrl(Path(data_dir) / "dataset4a.csv")
    b = read_febrl(Path(data_dir) / "dataset4b.csv")
    ids = {"a": a.column("rec_id").to_pylist(), "b": b.column("rec_id").to_pylist()}
    nodes = [f"{s}:{i}" for s in ids for i in ids[s]]
    entity = pd.Series(febrl_entity([i for s in ids for i in ids[s]]).to_numpy(), index=nodes)
    sources = pd.Series([s for s in ids for _ in ids[s]], index=nodes)
    frame = pd.DataFrame({"id": nodes, "e": entity.to_numpy(), "s": sources.to_numpy()})
    truth = frame[frame.s == "a"].merge(frame[frame.s == "b"], on="e")[["id_x", "id_y"]]
    read_seconds = time.perf_counter() - t0
    return _measure("febrl4", febrl4_model(), [a, b], ["a", "b"], truth, entity, sources,
                    read_seconds, repeat)


def abt_buy(data_dir: Path = DEFAULT_DATA / "abt_buy", repeat: int = 1) -> dict:
    """Abt-Buy: link 1,076 Abt with 1,064 Buy products, 1,064 true matches (matches.csv)."""
    t0 = time.perf_counter()
    a = read_abt_buy(Path(data_dir) / "tableA.csv")
    b = read_abt_buy(Path(data_dir) / "tableB.csv")
    m = pd.read_csv(Path(data_dir) / "matches.csv", dtype=str)
    truth = pd.DataFrame({"l": "abt:" + m["tableA_id"], "r": "buy:" + m["tableB_id"]})
    nodes = ["abt:" + i for i in a.column("id").to_pylist()] + ["buy:" + i for i in b.column("id").to_pylist()]
    sources = pd.Series([n.split(":", 1)[0] for n in nodes], index=nodes)
    entity = clusters_from_pairs(nodes, truth)
    read_seconds = time.perf_counter() - t0
    return _measure("abt_buy", abt_buy_model(), [a, b], ["abt", "buy"], truth, entity, sources,
                    read_seconds, repeat)


def generated(records_csv_glob: str, truth_parquet_path: str | Path, repeat: int = 1) -> dict:
    """Dedupe of person records written by ``sigil generate`` (CSV with ``entity_id``, which
    is kept out of Splink's input; true pairs from the generator's Parquet)."""
    t0 = time.perf_counter()
    cols = ", ".join(f"nullif(trim(cast({c} as varchar)), '') as {c}" for c in FEBRL_COLUMNS)
    full = _arrow(f"select {cols}, cast(entity_id as varchar) as entity_id from "
                  f"read_csv({_sql_str(records_csv_glob)}, header=true, all_varchar=true, hive_partitioning=false)")
    entity = pd.Series(full.column("entity_id").to_numpy(zero_copy_only=False),
                       index=full.column("rec_id").to_numpy(zero_copy_only=False))
    table = full.drop_columns(["entity_id"])
    truth_path = Path(truth_parquet_path)
    pattern = truth_path / "**" / "*.parquet" if truth_path.is_dir() else truth_path
    truth = _arrow(f"select id_a, id_b from read_parquet({_sql_str(pattern)})").to_pandas()
    read_seconds = time.perf_counter() - t0
    log(f"generated: {table.num_rows} records, {len(truth)} true pairs, read in {read_seconds:.1f} s")
    return _measure("generated", generated_model(), [table], ["people"], truth, entity, None,
                    read_seconds, repeat)


# ================================================================ report

COLUMNS = [("dataset", "{}", "dataset"), ("records", "{:,}", "records"),
           ("comparisons_scored", "{:,}", "scored"), ("blocking_recall", "{:.4f}", "block R"),
           ("predicted_matches", "{:,}", "pred"), ("precision", "{:.4f}", "P"), ("recall", "{:.4f}", "R"),
           ("f1", "{:.4f}", "F1"), ("cluster_f1", "{:.4f}", "clust F1"), ("bcubed_precision", "{:.4f}", "B3 P"),
           ("bcubed_recall", "{:.4f}", "B3 R"), ("bcubed_f1", "{:.4f}", "B3 F1"), ("seconds", "{:.2f}", "median s"),
           ("load_average_after", "{:.1f}", "load")]


def table(rows: list[dict], columns: list) -> str:
    """A plain-text table: ``columns`` are (key, format, heading); missing values print as -."""
    def cell(r, key, fmt):
        return fmt.format(r[key]) if r.get(key) is not None else "-"

    widths = [max([len(h)] + [len(cell(r, k, f)) for r in rows]) for k, f, h in columns]
    line = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w)  # noqa: E731
                                   for i, (c, w) in enumerate(zip(cells, widths)))
    head = line([h for _, _, h in columns])
    return "\n".join([head, "-" * len(head), *(line([cell(r, k, f) for k, f, _ in columns]) for r in rows)])


def print_table(results: list[dict]) -> None:
    print(table(results, COLUMNS))
    print()
    for r in results:
        print(f"{r['dataset']}: cluster P/R {r['cluster_precision']:.4f}/{r['cluster_recall']:.4f}; "
              f"stages (median s) " + ", ".join(f"{k} {v:.2f}" for k, v in r["stage_seconds"].items())
              + f"; read once {r['read_seconds']:.2f} s; runs {', '.join(f'{s:.2f}' for s in r['seconds_all'])} s;"
              f" peak RSS so far {r['peak_rss_bytes'] / 2**30:.2f} GiB")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", default="febrl3,febrl4,abt_buy",
                   help=f"comma-separated, of {', '.join(DATASETS)} (default febrl3,febrl4,abt_buy)")
    p.add_argument("--repeat", type=int, default=3, help="timed runs per data set (median reported)")
    p.add_argument("--json", type=Path, help="write the results as JSON here")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with febrl/ and abt_buy/")
    p.add_argument("--generated-records", default="/tmp/bench_gen/generate/records/source=people/*.csv",
                   help="CSV glob of sigil generate's records (for --datasets generated)")
    p.add_argument("--generated-truth", default="/tmp/bench_gen/generate/truth",
                   help="sigil generate's true pairs (Parquet file or folder)")
    args = p.parse_args(argv)
    if args.repeat < 1:
        p.error("--repeat must be >= 1")
    names = [d.strip() for d in args.datasets.split(",") if d.strip()]
    unknown = [d for d in names if d not in DATASETS]
    if unknown:
        p.error(f"unknown data set(s) {unknown}; choose from {', '.join(DATASETS)}")

    results = []
    for name in names:
        log(f"{name} ...")
        if name == "febrl3":
            r = febrl3(args.data / "febrl", args.repeat)
        elif name == "febrl4":
            r = febrl4(args.data / "febrl", args.repeat)
        elif name == "abt_buy":
            r = abt_buy(args.data / "abt_buy", args.repeat)
        else:
            r = generated(args.generated_records, args.generated_truth, args.repeat)
        log(f"{name}: F1 {r['f1']:.4f}, cluster F1 {r['cluster_f1']:.4f}, B3 F1 {r['bcubed_f1']:.4f}, "
            f"{r['seconds']:.2f} s")
        results.append(r)

    print()
    print_table(results)
    if args.json:
        out = {"benchmark": "splink_reference", "repeat": args.repeat,
               "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                           "python": platform.python_version()},
               "versions": {k: metadata.version(k) for k in ("splink", "duckdb", "sqlglot", "pandas", "pyarrow")},
               "results": results}
        args.json.write_text(json.dumps(out, indent=2, default=str))
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
