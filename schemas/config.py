"""Configuration models: one YAML file drives every job, validated before any work starts.

A configuration has one section per job (``generate``, ``ingest``, ``block``, ``match``,
``cluster`` for records; ``graph``, ``graph_index``, ``communities`` for graphs) plus
``spark``, ``output`` and the ground ``truth`` that quality metrics use. ``sigil <job> --conf
FILE`` validates the whole file, then runs the job's section. Unknown keys and bad values fail with the key's dotted path and what is
allowed (pydantic, ``extra="forbid"``).
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sigil.schemas.datasets import NORM_SUFFIX

Normalizer = Literal["nfkc", "casefold", "whitespace", "strip_punctuation", "digits_only"]


def _date_format(fmt: str) -> str:
    """A strptime format that can read back a date it wrote (``%Q`` and the like cannot)."""
    try:
        datetime.strptime(datetime(2001, 2, 3).strftime(fmt), fmt)
    except ValueError as err:
        raise ValueError(f"not a date format ({err})") from None
    return fmt


DateFormat = Annotated[str, AfterValidator(_date_format)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SparkConfig(Model):
    master: str = Field("local[*]", description="master of the embedded Spark; ignored under `spark-submit`")
    app_name: str = Field("sigil", description="Spark application name")
    shuffle_partitions: int = Field(8, ge=1, description="partitions after a shuffle "
                                                         "(`spark.sql.shuffle.partitions`)")
    driver_memory: str = Field("4g", pattern=r"^\d+[kKmMgGtT]?[bB]?$",
                               description="driver memory of the embedded Spark (a JVM size: `512m`, `4g`); "
                                           "ignored under `spark-submit`")
    arrow_batch_rows: int = Field(100_000, ge=100, description="rows per Arrow batch handed to Python (fewer, "
                                                               "larger batches: the per-batch costs of the "
                                                               "comparisons add up at millions of pairs)")
    broadcast_join_mb: int = Field(64, ge=0, description="`spark.sql.autoBroadcastJoinThreshold`: joins whose "
                                                         "smaller side Spark estimates under this (Parquet size) "
                                                         "broadcast it instead of shuffling both sides, and "
                                                         "records whose needed columns fit under it are held by "
                                                         "every Python worker for rule blocking and matching "
                                                         "(`jobs/spark/lookup.py`) instead of joined; 0 turns both off")
    conf: dict[str, str | int | float | bool] = Field(default_factory=dict, description="any other `spark.*` "
                                                                                        "setting")
    progress: bool | None = Field(None, description="Spark's console progress bar: on, off, or (unset) on only "
                                                    "when stderr is a terminal; it concatenates into long single "
                                                    "lines in spark-submit logs")


class GenerateConfig(Model):
    """Synthetic person records with duplicates and ground truth (see transforms/people.py)."""

    entities: int = Field(10_000, ge=1, description="distinct people (rounded up to equal chunks)")
    mode: Literal["dedupe", "link"] = Field("dedupe", description="`dedupe`: one source `people` with "
                                                                  "duplicates; `link`: sources `a` and `b`")
    format: Literal["parquet", "csv"] = Field("parquet", description="file format of the records")
    chunk_entities: int = Field(50_000, ge=100, description="people per generation task")
    duplicate_rate: float = Field(0.3, ge=0, le=1, description="dedupe: share of people with duplicate records")
    max_duplicates: int = Field(3, ge=1, description="dedupe: most duplicates of a person (k with P(k) ~ 1/k)")
    link_overlap: float = Field(0.5, ge=0, le=1, description="link: share of people in both sources")
    seed: int = Field(0, description="random seed")


class Attribute(Model):
    """An attribute column: its type (checked at ingest) and how it is normalised."""

    name: str = Field(description="attribute name, the column name unless the source's `column_map` "
                                  "says otherwise")
    type: Literal["string", "int", "float", "date"] = Field("string", description="a value that does not parse "
                                                                                  "is quarantined")
    date_format: DateFormat = Field("%Y%m%d", description="strptime format of `date` values")
    normalize: tuple[Normalizer, ...] = Field(("nfkc", "casefold", "whitespace"),
                                              description="normalisation steps, applied in order")


class Source(Model):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="source name, unique")
    path: str = Field(description="a file or a directory of files")
    format: Literal["csv", "tsv", "parquet", "jsonl"] = Field("csv", description="file format")
    id_column: str = Field(description="column of record ids; a repeated id is quarantined")
    delimiter: str | None = Field(None, min_length=1, max_length=1, description="field delimiter; default `,` "
                                                                                "(csv) or a tab (tsv)")
    encoding: Literal["utf-8"] = Field("utf-8", description="text encoding")
    strip_header: bool = Field(True, description="strip spaces around header names (FEBRL has them)")
    column_map: dict[str, str] = Field(default_factory=dict, description="attribute name -> column name in "
                                                                         "this source")


class IngestConfig(Model):
    sources: list[Source] = Field(min_length=1, description="record files, one source each")
    attributes: list[Attribute] = Field(min_length=1, description="the attributes read from every source")
    split_bytes: int = Field(128 << 20, ge=1, description="CSV/TSV/JSONL files larger than this are parsed "
                                                           "in several tasks, split at line boundaries (line "
                                                           "numbers stay exact)")
    max_record_bytes: int = Field(16 << 20, ge=1, description="a CSV/TSV record whose quoted field spans lines "
                                                              "must end within this many bytes; otherwise its "
                                                              "first line is quarantined (`malformed line: "
                                                              "unclosed quote`) and parsing resumes on the next "
                                                              "line")

    @field_validator("sources")
    @classmethod
    def _unique_sources(cls, sources):
        names = [s.name for s in sources]
        if len(set(names)) != len(names):
            raise ValueError(f"source names must be unique, got {names}")
        return sources

    @field_validator("attributes")
    @classmethod
    def _unique_attributes(cls, attributes):
        names = [a.name for a in attributes]
        if len(set(names)) != len(names):
            raise ValueError(f"attribute names must be unique, got {names}")
        return attributes


class TokenizerConfig(Model):
    """How a record becomes the token set that MinHash signs."""

    kind: Literal["qgram", "word"] = Field("qgram", description="character q-grams (of code points) or "
                                                                "`word` tokens")
    q: int = Field(3, ge=1, le=16, description="characters per q-gram")
    columns: list[str] | None = Field(None, description="attributes to tokenise; default all")
    join: bool = Field(True, description="tokenise the columns joined by a space; `false`: each column alone")
    tag_columns: bool = Field(False, description="with `join: false`, tokens carry their column, so equal text "
                                                 "in different columns differs")


class MinHashConfig(Model):
    """MinHash signatures, bit-for-bit datasketch's."""

    num_perm: int = Field(128, ge=1, le=1024, description="hash functions (values per signature)")
    seed: int = Field(1, description="seed of the hash functions, as datasketch's `MinHash(seed=...)`")
    scheme: Literal["affine32", "legacy"] = Field("affine32", description="datasketch's hashing: `affine32` "
                                                                          "(datasketch 2) or `legacy` "
                                                                          "(datasketch < 2)")


class LshConfig(Model):
    """Banding of the signatures into LSH buckets, as datasketch's ``MinHashLSH``."""

    threshold: float = Field(0.5, gt=0, lt=1, description="Jaccard threshold the bands are tuned for")
    false_positive_weight: float = Field(0.5, ge=0, le=1, description="weight of false positives when tuning, "
                                                                      "as datasketch's `MinHashLSH`")
    false_negative_weight: float = Field(0.5, ge=0, le=1, description="weight of false negatives when tuning, "
                                                                      "as datasketch's `MinHashLSH`")
    bands: int | None = Field(None, ge=1, description="bands; set with `rows` to fix the banding, else tuned "
                                                      "from the threshold")
    rows: int | None = Field(None, ge=1, description="signature values per band; set with `bands`")
    max_bucket_size: int = Field(1_000, ge=2, description=(
        "larger buckets are handled by `oversized` and reported in `oversized/` and the manifest (the pairs they "
        "hold; with a truth, the true pairs the cap cost); datasketch's `MinHashLSH` has no such cap, so a cap can "
        "leave out pairs it would give: raise it to compare the two"))
    oversized: Literal["skip", "split"] = Field("split", description="`skip` an oversized bucket, or `split` it "
                                                                     "by the next band's values (parts still too "
                                                                     "large are skipped)")

    @model_validator(mode="after")
    def _bands_rows_together(self):
        if (self.bands is None) != (self.rows is None):
            raise ValueError("lsh.bands and lsh.rows are set together or not at all")
        return self


def _check_shape(lsh: LshConfig, minhash: MinHashConfig) -> None:
    if lsh.bands is not None and lsh.bands * lsh.rows > minhash.num_perm:
        raise ValueError(f"lsh.bands * lsh.rows must be <= minhash.num_perm ({minhash.num_perm})")


class TruthConfig(Model):
    """Ground truth: a file of matching id pairs, or a regular expression whose first group
    extracts the entity from each record id (FEBRL's ``rec-(\\d+)-``)."""

    path: str | None = Field(None, description="matching id pairs (optionally with `source_a`, `source_b` "
                                               "columns); one of `path` and `id_regex`")
    format: Literal["csv", "parquet"] = Field("csv", description="file format of `path`")
    id_columns: tuple[str, str] = Field(("id_a", "id_b"), description="the two id columns of `path`")
    id_regex: str | None = Field(None, description="instead of a file: records whose ids give the same first "
                                                   "group are true matches (FEBRL: `^rec-(\\d+)-`)")

    @model_validator(mode="after")
    def _one_way(self):
        if (self.path is None) == (self.id_regex is None):
            raise ValueError("truth needs exactly one of path or id_regex")
        return self

    @field_validator("id_regex")
    @classmethod
    def _has_a_group(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                groups = re.compile(pattern).groups
            except re.error as err:
                raise ValueError(f"not a regular expression ({err})") from None
            if groups < 1:
                raise ValueError(f"needs a group that extracts the entity, e.g. '^rec-(\\d+)-'; got {pattern!r}")
        return pattern


RULE_PART = r"^[A-Za-z0-9_]+(\[\d*:\d*\])?$"


class CrossRule(Model):
    """Records x, y pair when x's ``left`` key equals y's ``right`` key (e.g. swapped names)."""

    left: list[str] = Field(min_length=1, description="parts of record x's key")
    right: list[str] = Field(min_length=1, description="parts of record y's key, as many as `left`")

    @model_validator(mode="after")
    def _same_length(self):
        if len(self.left) != len(self.right):
            raise ValueError("a cross rule's left and right keys have the same number of parts")
        return self


class BlockConfig(Model):
    input: str | None = Field(None, description="ingested records to block; default "
                                                "`<output>/ingest/records`")
    mode: Literal["dedupe", "link"] = Field("dedupe", description="`dedupe`: pairs within and across all "
                                                                  "sources; `link`: only across sources")
    method: Literal["minhash", "rules"] = Field("minhash", description="`minhash` (LSH), or `rules`: equality "
                                                                       "rules")
    rules: list[list[str] | CrossRule] = Field(default_factory=list, description=(
        "with `method: rules`: records pair when every part of a rule is equal and present; a part is an "
        "attribute, optionally sliced like `date_of_birth[0:4]`; `{left: [...], right: [...]}` pairs x's left "
        "key with y's right key (swapped names); the pairs of all rules are united"))
    max_rule_group: int = Field(1_000, ge=2, description="rule keys shared by more records are skipped "
                                                         "and listed in the manifest")
    tokenizer: TokenizerConfig = Field(TokenizerConfig(), description="tokens of a record (method `minhash`)")
    minhash: MinHashConfig = Field(MinHashConfig(), description="signatures of the token sets")
    lsh: LshConfig = Field(LshConfig(), description="buckets of the signatures")
    min_jaccard_estimate: float | None = Field(None, ge=0, le=1, description="drop pairs whose signature "
                                                                             "estimate is below")
    exact_jaccard: bool = Field(False, description="compute the exact token-set Jaccard of each pair")
    min_jaccard: float | None = Field(None, ge=0, le=1, description="drop pairs whose exact Jaccard is below; "
                                                                    "needs `exact_jaccard`")

    def rule_parts(self) -> list[str]:
        return [p for r in self.rules for p in (r if isinstance(r, list) else [*r.left, *r.right])]

    def rule_columns(self) -> list[str]:
        """The attributes the rules read (a part ``date_of_birth[0:4]`` reads ``date_of_birth``)."""
        return sorted({p.partition("[")[0] for p in self.rule_parts()})

    @model_validator(mode="after")
    def _rules(self):
        if self.method == "rules" and not self.rules:
            raise ValueError("block.method=rules needs block.rules")
        bad = [p for p in self.rule_parts() if not re.match(RULE_PART, p)]
        if bad:
            raise ValueError(f"block.rules parts must look like column or column[start:end], got {bad}")
        return self

    @model_validator(mode="after")
    def _exact_needed(self):
        if self.min_jaccard is not None and not self.exact_jaccard:
            raise ValueError("block.min_jaccard needs block.exact_jaccard: true")
        _check_shape(self.lsh, self.minhash)
        return self


LevelKind = Literal["exact", "jaro_winkler", "jaro", "levenshtein", "levenshtein_ratio", "damerau_levenshtein",
                    "jaccard", "numeric_diff", "date_days", "cosine"]
#: level kinds whose bound is a similarity (a pair holds when similarity >= min); the others
#: are distances (a pair holds when distance <= max); ``exact`` has no bound.
SIMILARITY_LEVELS = ("jaro_winkler", "jaro", "levenshtein_ratio", "jaccard", "cosine")
#: the column of record embeddings (nlsh-block) that ``cosine`` levels compare
EMBEDDING = "embedding"
DISTANCE_LEVELS = ("levenshtein", "damerau_levenshtein", "numeric_diff", "date_days")


class Level(Model):
    """One comparison level: a predicate on the two values of a pair. ``min`` bounds a
    similarity in [0, 1]; ``max`` bounds a distance (edits, relative difference, days)."""

    kind: LevelKind = Field(description="`exact`; similarities bounded by `min`: `jaro_winkler`, `jaro`, "
                                        "`levenshtein_ratio`, `jaccard` (word sets), `cosine` (embeddings); "
                                        "distances bounded by `max`: `levenshtein`, `damerau_levenshtein` "
                                        "(edits), `numeric_diff` (relative difference), `date_days`")
    min: float | None = Field(None, ge=0, le=1, description="a similarity level holds at or above this")
    max: float | None = Field(None, ge=0, description="a distance level holds at or below this")
    date_format: DateFormat = Field("%Y%m%d", description="strptime format of `date_days` values")

    @model_validator(mode="after")
    def _bound(self):
        if self.kind in SIMILARITY_LEVELS and (self.min is None or self.max is not None):
            raise ValueError(f"level {self.kind} takes min (a similarity in [0, 1])")
        if self.kind in DISTANCE_LEVELS and (self.max is None or self.min is not None):
            raise ValueError(f"level {self.kind} takes max (a distance)")
        if self.kind == "exact" and (self.min, self.max) != (None, None):
            raise ValueError("level exact takes neither min nor max")
        return self

    def label(self) -> str:
        bound = f">={self.min:g}" if self.min is not None else f"<={self.max:g}" if self.max is not None else ""
        return self.kind + bound


class Comparison(Model):
    """How the two values of one attribute compare: the first level whose predicate holds,
    else the ``else`` level; a pair with a missing value on either side has the null level."""

    column: str = Field(description=f"the attribute compared, or `{EMBEDDING}` (`match.embeddings`) with "
                                    "`cosine` levels")
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9_]+$", description="name of the comparison; default "
                                                                           "the column")
    levels: list[Level] = Field(min_length=1, description="tried in order: the first that holds wins, else "
                                                          "`else`; a value missing on either side is the null "
                                                          "level, no evidence")
    normalized: bool = Field(True, description="compare the normalised values (`<column>_norm`), else the raw "
                                               "ones")
    extract: Literal["value", "codes"] = Field("value", description="compare the whole `value`, or only its "
                                                                    "`codes`: words of 4+ characters with a "
                                                                    "digit (e.g. model numbers)")
    term_frequency: bool = Field(False, description="adjust an exact first level by how common the value is")

    @property
    def key(self) -> str:
        return self.name or self.column

    def labels(self) -> list[str]:
        return [level.label() for level in self.levels] + ["else"]

    @model_validator(mode="after")
    def _tf_on_exact(self):
        cosine = [level.kind == "cosine" for level in self.levels]
        if any(cosine) and not (all(cosine) and self.column == EMBEDDING):
            raise ValueError(f"comparison {self.key}: cosine levels compare column {EMBEDDING!r} (match.embeddings), "
                             "and that column only cosine levels")
        if self.term_frequency and self.levels[0].kind != "exact":
            raise ValueError(f"comparison {self.key}: term_frequency adjusts an exact first level; "
                             f"the first level is {self.levels[0].kind}")
        if len(self.levels) > 100:
            raise ValueError(f"comparison {self.key}: at most 100 levels")
        return self


class EmConfig(Model):
    """Fellegi-Sunter training: u from random record pairs, then m and the prior by EM."""

    u_pairs: int = Field(1_000_000, ge=1_000, description="random record pairs for the u probabilities "
                                                          "(seeded by record key)")
    max_iterations: int = Field(100, ge=1, description="EM iterations at most")
    tolerance: float = Field(1e-6, gt=0, description="stop when no parameter moves more than this")
    update_u: bool = Field(True, description="re-estimate u among the candidates' non-matches, the random-pair "
                                             "u as a Dirichlet prior (`false`: keep u from the random pairs, as "
                                             "Splink does)")
    u_prior_pairs: float = Field(1_000.0, ge=0, description="weight of the random-pair u, in pairs, when "
                                                            "`update_u` (0: the candidates only)")
    prior: float | None = Field(None, gt=0, lt=1, description="starting match prior; default from the data")
    seed: int = Field(0, description="seed of the random pairs, of sampled labels and of the logistic model")


class PairLabels(Model):
    """Labelled record pairs, for match (``match.labels``) and nlsh-train alike: a table of
    id pairs (``csv``, ``parquet``: two id columns, and source_a, source_b when there are
    several sources), or ``serialized`` lines ``<record>\\t<record>\\t<0|1>`` (the
    DeepMatcher / Ditto format) mapped to records by content. What does not map is
    quarantined with its reason (``<job>/<name>_quarantine``)."""

    path: str = Field(description="file of labelled pairs")
    format: Literal["serialized", "csv", "parquet"] = Field("csv", description=(
        "`csv`, `parquet`: id pairs; `serialized`: DeepMatcher lines mapped to records by content"))
    id_columns: tuple[str, str] = Field(("id_a", "id_b"), description="the two id columns (`csv`, `parquet`)")
    label_column: str | None = Field("label", description="1 = match, 0 = not; null: the file lists matches "
                                                          "only (`csv`, `parquet`)")
    columns: list[str] | None = Field(None, min_length=1, description=(
        "`serialized`: the attributes the sides are matched on; default the serialised attributes the records "
        "have (others, e.g. one the records lack, are ignored)"))
    nearest: float | None = Field(0.9, ge=0, le=1, description=(
        "`serialized`: a side whose normalised text no record has maps to the one record of its source at least "
        "this similar (rapidfuzz token-sort ratio / 100), if no other is as similar; null: exact text only"))
    min_mapped: float = Field(0.9, ge=0, le=1, description="under this share of lines or pairs mapped to records a "
                                                           "run warns, and fails with --strict")
    max_pairs: int = Field(1_000_000, ge=1, description="most labelled pairs (they are mapped and fitted on the "
                                                        "driver); match without a label column: non-matches fill "
                                                        "up to it")


class PseudoLabels(Model):
    """Labels from confident neighbours of the embeddings (candidates with a ``cosine``):
    a pair that is each record's nearest and at least ``min_cosine`` is taken as a match, a
    pair under ``max_negative_cosine`` as a non-match. Given labels take precedence."""

    min_cosine: float = Field(0.9, ge=-1, le=1, description="a pair that is each record's nearest and at least "
                                                            "this close is a match")
    max_negative_cosine: float = Field(0.6, ge=-1, le=1, description="a pair under this cosine is a non-match")
    max_negatives: int = Field(20_000, ge=0, description="a seeded sample of the non-matches, at most this many")


class MatchConfig(Model):
    input: str | None = Field(None, description="candidate pairs to score (any blocker's); default "
                                                "`<output>/block/candidates`")
    comparisons: list[Comparison] = Field(min_length=1, description="one per attribute compared")
    model: Literal["fellegi_sunter", "logistic"] = Field("fellegi_sunter", description=(
        "`fellegi_sunter` (trained by EM), or `logistic` (scikit-learn, needs `labels` or `pseudo_labels`)"))
    em: EmConfig = Field(EmConfig(), description="Fellegi-Sunter training")
    labels: PairLabels | None = Field(None, description="labelled pairs: train the logistic model, or choose "
                                                          "`best_f1`")
    threshold: float | Literal["best_f1"] = Field(0.5, description="match probability above which a pair "
                                                                   "matches, or `best_f1` on the labels")
    load_model: str | None = Field(None, description="a saved `model.json`: score with it, no training")
    embeddings: str | None = Field(None, description="record embeddings (`<output>/nlsh_block/embeddings`): "
                                                     f"the `{EMBEDDING}` column that `cosine` levels compare")
    pseudo_labels: PseudoLabels | None = Field(None, description="labels for the logistic model from the "
                                                                 "candidates' cosines (nlsh-block)")
    one_to_one: bool = Field(False, description="link mode: a record matches at most one record of another "
                                                "source; a match must be the best pair of both its records "
                                                "(mutual best by weight)")

    @model_validator(mode="after")
    def _consistent(self):
        keys = [c.key for c in self.comparisons]
        if len(set(keys)) != len(keys):
            raise ValueError(f"comparison names must be unique, got {keys}")
        if self.model == "logistic" and self.labels is None and self.pseudo_labels is None and self.load_model is None:
            raise ValueError("match.model=logistic needs match.labels or match.pseudo_labels")
        if self.pseudo_labels is not None and self.model != "logistic":
            raise ValueError("match.pseudo_labels train the logistic model: set match.model=logistic")
        if any(c.column == EMBEDDING for c in self.comparisons) and self.embeddings is None:
            raise ValueError(f"a comparison on {EMBEDDING!r} needs match.embeddings")
        if self.threshold == "best_f1" and self.labels is None and self.pseudo_labels is None:
            raise ValueError("match.threshold=best_f1 needs match.labels or match.pseudo_labels")
        if isinstance(self.threshold, float) and not 0 < self.threshold < 1:
            raise ValueError("match.threshold must lie in (0, 1)")
        return self


class RuleCondition(Level):
    """One condition of a match rule: a comparison level applied to one attribute of both
    records, to the whole value, its first word or its codes."""

    column: str = Field(description="the attribute compared")
    extract: Literal["value", "first_word", "codes"] = Field("value", description=(
        "compare the whole `value`, its `first_word`, or only its `codes`: words of 4+ characters with a digit"))
    normalized: bool = Field(True, description="compare the normalised values, else the raw ones")

    def value_column(self) -> str:
        return self.column + (NORM_SUFFIX if self.normalized else "")


class MatchRule(Model):
    """A declarative match rule: a condition, or ``all`` / ``any`` / ``not`` of rules.
    Interpreted by transforms/match_rules.py, never evaluated as code."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    all: list[MatchRule] | None = Field(None, description="holds when all of these rules hold")
    any: list[MatchRule] | None = Field(None, description="holds when any of these rules holds")
    not_: MatchRule | None = Field(None, alias="not", description="holds when this rule does not")
    condition: RuleCondition | None = Field(None, description="a level on one attribute; also written directly "
                                                              "as the rule: `{column, kind, ...}`")

    @model_validator(mode="before")
    @classmethod
    def _bare_condition(cls, data):
        if isinstance(data, dict) and "column" in data:  # a condition written directly
            return {"condition": data}
        return data

    @model_validator(mode="after")
    def _one_kind(self):
        given = [k for k in ("all", "any", "not_", "condition") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a rule is exactly one of: a condition {column, kind, ...}, all: [...], "
                             f"any: [...], not: {{...}}; got {[k.rstrip('_') for k in given] or 'nothing'}")
        return self

    def children(self) -> list[MatchRule]:
        return list(self.all or self.any or ([self.not_] if self.not_ else []))


class ClusterConfig(Model):
    input: str | None = Field(None, description="scored pairs; default `<output>/match/pairs`")
    threshold: float | None = Field(None, gt=0, lt=1, description="match probability of an edge; unset, the "
                                                                  "edges are the pairs with `is_match` (the "
                                                                  "match job's decision)")
    max_size: int = Field(1_000, ge=2, description="components larger than this are reported in `oversized/`")
    split_threshold: float | None = Field(None, gt=0, lt=1, description="re-cluster oversized components on "
                                                                        "edges at or above this stricter "
                                                                        "probability")
    max_iterations: int = Field(64, ge=1, description="large-star/small-star rounds before giving up")


TableFormat = Literal["csv", "tsv", "parquet", "jsonl"]


class GraphGenerateConfig(Model):
    """A graph with planted communities, seed queries and ground truth (transforms/graphgen.py)."""

    vertices: int = Field(10_000, ge=2, lt=3_000_000_000, description="vertices of the graph")
    average_degree: float = Field(15, ge=1, description="mean vertex degree")
    max_degree: float = Field(50, gt=1, description="largest vertex degree")
    degree_exponent: float = Field(2.0, gt=0, description="exponent of the power law of degrees")
    min_community: int = Field(20, ge=2, description="smallest community")
    max_community: int = Field(100, ge=2, description="largest community")
    community_exponent: float = Field(1.5, gt=0, description="exponent of the power law of community sizes")
    mixing: float = Field(0.3, ge=0, le=1, description="expected share of a vertex's edges leaving its community")
    queries: int = Field(1_000, ge=0, description="seed queries written beside the graph")
    seeds_per_query: int = Field(3, ge=1, description="seed vertices per query, all of one community")
    chunk_vertices: int = Field(200_000, ge=1_000, description="vertices per generation task")
    seed: int = Field(0, description="random seed")

    @model_validator(mode="after")
    def _ranges(self):
        if self.min_community > self.max_community:
            raise ValueError("graph_generate.min_community must be <= max_community")
        if self.average_degree >= self.max_degree:
            raise ValueError("graph_generate.average_degree must be < max_degree")
        return self


def _by_position(data: Any, positions: dict[str, str]) -> Any:
    """Defaults of a csv/tsv table without a header (``header: false``), whose columns are
    named by position 0, 1, 2, ...: ``positions`` (column setting -> position)."""
    if isinstance(data, dict) and data.get("header") is False and data.get("format", "csv") in ("csv", "tsv"):
        return {**positions, **data}
    return data


class EdgeInput(Model):
    """An edge list: one edge per row (CSV/TSV/Parquet/JSONL), or a whole GML/GraphML graph.
    Without a header the end points default to the first two columns; a third column is not
    taken as the weight unless ``weight_column`` names it (SNAP's third column is often a
    timestamp)."""

    path: str = Field(description="a file or a directory of files")
    format: Literal["csv", "tsv", "parquet", "jsonl", "gml", "graphml"] = Field("csv", description="file format")
    src_column: str = Field("src", description="column of the source vertex (without a header: `0`)")
    dst_column: str = Field("dst", description="column of the destination vertex (without a header: `1`)")
    weight_column: str | None = Field(None, description="edge weights; default 1 per edge (without a header: "
                                                        "set `2` to weigh by the third column)")
    header: bool = Field(True, description="csv/tsv: the first line names the columns; without it the "
                                           "columns are named 0, 1, 2, ...")
    delimiter: str | None = Field(None, min_length=1, max_length=1, description="field delimiter; default `,` "
                                                                                "(csv) or a tab (tsv)")
    comment: str | None = Field("#", min_length=1, description="csv/tsv lines starting with this are skipped")
    community_attribute: str | None = Field(None, description="gml/graphml: the node attribute holding a "
                                                              "ground-truth community")

    @model_validator(mode="before")
    @classmethod
    def _positions(cls, data: Any) -> Any:
        return _by_position(data, {"src_column": "0", "dst_column": "1"})

    def columns(self) -> tuple[list[str], list[str]]:
        """The columns read: (required, optional)."""
        return [c for c in (self.src_column, self.dst_column, self.weight_column) if c], []


class VertexInput(Model):
    """A vertex table: every vertex of the graph (isolated ones too); edges naming a vertex
    not in it are quarantined."""

    path: str = Field(description="a file or a directory of files")
    format: TableFormat = Field("csv", description="file format")
    id_column: str = Field("id", description="column of vertex ids (without a header: `0`)")
    community_column: str | None = Field(None, description="a ground-truth community per vertex")
    header: bool = Field(True, description="csv/tsv: the first line names the columns; without it the "
                                           "columns are named 0, 1, 2, ...")
    delimiter: str | None = Field(None, min_length=1, max_length=1, description="field delimiter; default `,` "
                                                                                "(csv) or a tab (tsv)")

    @model_validator(mode="before")
    @classmethod
    def _positions(cls, data: Any) -> Any:
        return _by_position(data, {"id_column": "0"})

    def columns(self) -> tuple[list[str], list[str]]:
        """The columns read: (required, optional)."""
        return [c for c in (self.id_column, self.community_column) if c], []


class GraphConfig(Model):
    """The graph-ingest job: edges (and optionally vertices) -> vertex dictionary + edges."""

    edges: EdgeInput = Field(description="the edge list")
    vertices: VertexInput | None = Field(None, description="a vertex table; default the vertices of the edges")
    directed: bool = Field(False, description="edges have a direction")
    self_loops: Literal["keep", "drop"] = Field("drop", description="`keep` or `drop` edges from a vertex to "
                                                                    "itself")
    max_local_edges: int = Field(2_000_000, ge=1, description="gml/graphml are read on one machine, up "
                                                               "to this many edges")
    split_bytes: int = Field(128 << 20, ge=1, description="csv/tsv/jsonl files larger than this are "
                                                           "parsed in several tasks")
    max_iterations: int = Field(64, ge=1, description="rounds of connected components for the statistics")


class GraphIndexConfig(Model):
    """Neighbourhood MinHash signatures and their LSH index (Chamberlain et al., 2018)."""

    neighbourhood: Literal["in", "out", "all"] = Field("in", description="whose neighbours are hashed: `in` "
                                                                          "(followers), `out` or `all`; "
                                                                          "undirected graphs: all")
    include_self: bool = Field(True, description="hash the closed neighbourhood N(v) + {v}")
    minhash: MinHashConfig = Field(MinHashConfig(), description="signatures of the neighbourhoods, as in `block`")
    # one row per band: vertices of one community share few neighbours (Jaccard ~0.1-0.2 on
    # LFR graphs), so bands of r >= 2 rows collide with probability J^r and lose them
    lsh: LshConfig = Field(LshConfig(bands=64, rows=1), description="buckets of the signatures, as in `block`")

    @model_validator(mode="after")
    def _fits(self):
        _check_shape(self.lsh, self.minhash)
        return self


class _VertexListInput(Model):
    """A table of queries: an id, a list of vertices (a list, or one string split by
    ``separator``) and optionally a number per query; subclasses name the last two columns
    (``LIST``, ``NUMBER``)."""

    LIST: ClassVar[str]
    NUMBER: ClassVar[str]

    path: str = Field(description="a file or a directory of files")
    format: TableFormat = Field("csv", description="file format")
    id_column: str = Field("query_id", description="column of query ids (without a header: `0`)")
    separator: str = Field(" ", min_length=1, description="separator of the vertices in a string")
    header: bool = Field(True, description="csv/tsv: the first line names the columns; without it the "
                                           "columns are named 0, 1, 2, ...")
    delimiter: str | None = Field(None, min_length=1, max_length=1, description="field delimiter; default `,` "
                                                                                "(csv) or a tab (tsv)")

    @model_validator(mode="before")
    @classmethod
    def _positions(cls, data: Any) -> Any:
        return _by_position(data, {"id_column": "0", cls.LIST: "1", cls.NUMBER: "2"})

    @property
    def list_column(self) -> str:
        return getattr(self, self.LIST)

    @property
    def number_column(self) -> str | None:
        return getattr(self, self.NUMBER)

    def columns(self) -> tuple[list[str], list[str]]:
        """The columns read: (required, optional: a file may lack the number column)."""
        return [self.id_column, self.list_column], [self.number_column] if self.number_column else []


class QueryInput(_VertexListInput):
    """Seed queries: an id, the seed vertices and optionally a target size per query."""

    LIST, NUMBER = "seeds_column", "size_column"
    seeds_column: str = Field("seeds", description="column of the seed vertices: a list, or one string split by "
                                                   "`separator` (without a header: `1`)")
    size_column: str | None = Field("size", description="column of a query's target size; where it is absent "
                                                        "or empty, `communities.size` (without a header: `2`)")


class WholeGraphConfig(Model):
    """Every vertex gets a community from a similarity graph weighted by the estimated
    Jaccard of neighbourhoods: the graph's own edges (``graph``), the LSH bucket pairs whose
    estimate reaches ``threshold`` (``lsh``), or both. Leiden or Louvain run on one machine
    (up to ``max_local_edges``); connected components run at any size over the edges whose
    estimate reaches ``threshold``. The Jaccard weights sharpen small dense communities
    but cut up large sparse ones with hubs, so by default (``weights: auto``) the partition
    of the weighted graph and that of the plain graph compete, and the one under which the
    graph has the shorter description length (nested degree-corrected block model,
    ``transforms/blockmodel.py``) is kept."""

    similarity: Literal["graph", "lsh", "both"] = Field("graph", description=(
        "the edges weighed: the graph's own (`graph`), the LSH bucket pairs (`lsh`), or `both`"))
    threshold: float = Field(0.1, gt=0, le=1, description="the least estimated Jaccard of an LSH pair, and of "
                                                          "any edge for `components`")
    algorithm: Literal["leiden", "louvain", "components"] = Field("leiden", description=(
        "`leiden` or `louvain` (on the driver), or connected `components` (at any size)"))
    weights: Literal["auto", "jaccard", "none"] = Field("auto", description=(
        "Leiden/Louvain edge weights: the estimated Jaccard (`jaccard`), 1 (`none`), or `auto`: both the "
        "Jaccard-weighted similarity graph and the graph's own edges unweighted are clustered, and the "
        "partition with the shorter description length of the graph is kept"))
    resolution: float = Field(1.0, gt=0, description="Leiden/Louvain resolution: higher gives smaller "
                                                     "communities")
    iterations: int = Field(2, ge=-1, description="Leiden passes; -1: until the partition is stable")
    max_local_edges: int = Field(20_000_000, ge=1, description="Leiden/Louvain run on the driver up to this "
                                                               "many edges; more fail the job")
    seed: int = Field(0, description="seed of Leiden/Louvain")


class CommunitiesConfig(Model):
    queries: QueryInput | None = Field(None, description="seed queries: grow a community around each query's "
                                                         "seeds")
    size: int = Field(50, ge=1, description="target community size when a query gives none")
    ranking: Literal["streaming", "seeds"] = Field("streaming", description=(
        "`streaming`: grow greedily by mean similarity to the community so far; `seeds`: rank once by "
        "mean similarity to the seeds"))
    max_candidates: int = Field(5_000, ge=1, description="per query, the candidates sharing most buckets "
                                                          "with the seeds are kept")
    broadcast_index_mb: int = Field(256, ge=0, description=(
        "a graph whose signatures and LSH index take up to this much memory (vertices x num_perm x 4 + "
        "index rows x 16 bytes) is sent to every task once, with the vertex names, and answers the queries "
        "in memory; larger graphs join the index and the signatures in Spark"))
    driver_batch: int = Field(10_000_000, ge=0, description=(
        "a batch of at most this many queries x max_candidates, on a graph within broadcast_index_mb, is "
        "read and answered on the driver by the in-memory index (`CommunityIndex`), with no Spark stage for "
        "the queries: small batches pay no task start-up; 0 sends every batch to Spark"))
    subcommunities: float | None = Field(None, gt=0, le=1, description=(
        "split each found community into sub-communities: Leiden on the members' Jaccard graph at this "
        "threshold"))
    whole_graph: WholeGraphConfig | None = Field(None, description="give every vertex a community")

    @model_validator(mode="after")
    def _something(self):
        if self.queries is None and self.whole_graph is None:
            raise ValueError("communities needs queries, whole_graph, or both")
        return self


class PprQueryInput(_VertexListInput):
    """Personalized PageRank queries: an id, the source vertices (the query is the PPR of
    the uniform distribution over them) and optionally the number of vertices to rank."""

    LIST, NUMBER = "sources_column", "k_column"
    sources_column: str = Field("sources", description="column of the source vertices (external ids): a list, or "
                                                       "one string split by `separator` (without a header: `1`)")
    k_column: str | None = Field("k", description="column of a query's k, the vertices it ranks; where it is absent "
                                                  "or empty, `ppr.k` (without a header: `2`)")


class PprConfig(Model):
    """Personalized PageRank as PowerWalk computes it (Liu et al., CIKM 2016): ppr-index gives
    every vertex a fingerprint by random walks; ppr-query answers a batch of queries by the
    vertex-centric decomposition and the fingerprints (transforms/ppr.py)."""

    walks: int = Field(30, ge=1, description="R, random walks from every vertex: a fingerprint's error falls as "
                                             "1 / sqrt(R); the fingerprints' rows and time grow about as R")
    alpha: float = Field(0.15, gt=0, le=1, description="restart probability per step (a walk visits 1 / alpha "
                                                       "vertices on average); ppr-query uses the fingerprints' own")
    seed: int = Field(0, description="seed of the walks: step j of walk w from vertex s draws from (seed, s, w, j), "
                                     "so a rerun or a retried task gives the same fingerprints")
    floor: float = Field(0.0, ge=0, le=1, description="fingerprint values below this are left out (0: keep all); "
                                                      "the mass left out is reported")
    held_graph_mb: int = Field(512, ge=0, description=(
        "a graph whose CSR takes up to this much memory (8 bytes per vertex and per edge, 16 per edge when "
        "weighted; undirected edges count twice; ppr-query adds 8 bytes per edge and 49 per vertex for its pushes) is "
        "read once by every Python worker: ppr-index walks it in the tasks, ppr-query decomposes its queries "
        "there; larger graphs are walked by joining the walkers with the out-edges in Spark, one step per join, "
        "and ppr-query refuses them; 0: always join"))
    held_fingerprints_mb: int = Field(512, ge=0, description=(
        "ppr-query: fingerprints taking up to this much memory (8 bytes per row) are held by every Python "
        "worker with the graph, and each task answers its queries in memory; larger ones are joined with the "
        "decomposition's residuals in Spark; 0: always join"))
    queries: PprQueryInput | None = Field(None, description="ppr-query: the table of queries")
    k: int = Field(50, ge=1, description="vertices ranked per query where the query gives no k")
    steps: int = Field(8, ge=0, description=(
        "T, decomposition steps from each query's sources before the fingerprints take over: more steps spread "
        "the rest over more fingerprints (more accurate) and push more vertices per query"))
    prune: float = Field(1e-3, ge=0, description=(
        "residual entries below this are not pushed but left to the fingerprints: lower is more accurate and "
        "pushes up to 1 / prune vertices per query and step"))
    resolution: float = Field(2e-4, ge=0, lt=1, description=(
        "residual weights below this are sampled before the fingerprints cover them (kept at this value with "
        "probability weight / resolution, seeded by `seed` and the query's sources): unbiased, and each query "
        "reads about 1 / resolution fingerprints instead of one per vertex its pushes reached; 0: keep all"))
    exact_sample: int = Field(0, ge=0, description=(
        "ppr-query: compare this many queries (a seeded sample) with exact PPR (power iteration to L1 1e-10) and "
        "report their L1 error, precision@k and NDCG@k; 0: no check"))
    exact_seed: int = Field(0, description="seed of that sample")


class InteractionInput(Model):
    """An interaction log: one interaction per row (CSV/TSV/Parquet/JSONL) with a user id,
    an item id and optionally a timestamp, a weight (a rating, a count) and a label
    (transforms/interaction_log.py)."""

    path: str = Field(description="a file or a directory of files")
    format: Literal["csv", "tsv", "parquet", "jsonl"] = Field("csv", description="file format")
    user_column: str = Field("user", description="column of the user id (without a header: `0`)")
    item_column: str = Field("item", description="column of the item id (without a header: `1`)")
    timestamp_column: str | None = Field(None, description="when it happened: an integer (epoch seconds or any "
                                                           "order) or an ISO-8601 date/date-time; needed by "
                                                           "`split.method: time`")
    weight_column: str | None = Field(None, description="its weight (a rating, a count; a finite number >= 0); "
                                                        "default 1 per row")
    label_column: str | None = Field(None, description="1/0 or true/false: rows labelled 0 are not interactions "
                                                       "(counted apart)")
    header: bool = Field(True, description="csv/tsv: the first line names the columns; without it the columns are "
                                           "named 0, 1, 2, ...")
    delimiter: str | None = Field(None, min_length=1, max_length=1, description="field delimiter; default `,` "
                                                                                "(csv) or a tab (tsv)")
    comment: str | None = Field("#", min_length=1, description="csv/tsv lines starting with this are skipped")

    @model_validator(mode="before")
    @classmethod
    def _positions(cls, data: Any) -> Any:
        return _by_position(data, {"user_column": "0", "item_column": "1"})

    def columns(self) -> tuple[list[str], list[str]]:
        """The columns read: (required, optional)."""
        return [c for c in (self.user_column, self.item_column, self.timestamp_column, self.weight_column,
                            self.label_column) if c], []


class SplitConfig(Model):
    """The train/test split of each user's interactions (merged pairs)."""

    method: Literal["random", "time"] = Field("random", description="`random`: a seeded hash of (seed, user, item) "
                                                                     "orders each user's items; `time`: their last "
                                                                     "interaction's timestamp does")
    test_fraction: float = Field(0.2, ge=0, lt=1, description="share of each user's items held out for test (the "
                                                              "last ones in the order), rounded half up, at least one")
    min_user_items: int = Field(3, ge=2, description="users with fewer items keep them all in train")
    seed: int = Field(0, description="seed of the random order")


class InteractionsConfig(Model):
    """The interactions-ingest job: an interaction log -> user and item dictionaries, merged
    interactions and a train/test split."""

    log: InteractionInput = Field(description="the interaction log")
    split: SplitConfig = Field(SplitConfig(), description="the train/test split, per user")
    split_bytes: int = Field(128 << 20, ge=1, description="csv/tsv/jsonl files larger than this are parsed in "
                                                          "several tasks")


class InteractionsGenerateConfig(Model):
    """Synthetic interaction logs with latent communities and power-law activity
    (transforms/interactions.py), generated on the driver."""

    users: int = Field(10_000, ge=1, description="users")
    items: int = Field(5_000, ge=1, description="items")
    interactions: int = Field(500_000, ge=1, le=50_000_000, description="interaction rows (repeats of a pair "
                                                                        "included)")
    communities: int = Field(50, ge=1, description="latent communities of users and items")
    seed: int = Field(0, description="seed of everything")


class BudgetConfig(Model):
    """Embedding rows a mapping may use (transforms/graphhash.py ``Budget``): ``rows`` (one
    table that users and items share), ``users`` and ``items`` (two tables), or ``ratio``
    (one shared table of ceil((users + items) / ratio) rows)."""

    rows: int | None = Field(None, ge=1, description="one table of this many rows, shared by users and items")
    users: int | None = Field(None, ge=1, description="with `items`: a user table of this many rows")
    items: int | None = Field(None, ge=1, description="with `users`: an item table of this many rows")
    ratio: float | None = Field(None, ge=1, description="one shared table this many times smaller than one row per "
                                                        "user and item")

    @model_validator(mode="after")
    def _one_form(self):
        forms = (self.rows is not None) + (self.ratio is not None) + (self.users is not None or self.items is not None)
        if forms != 1 or (self.users is None) != (self.items is None):
            raise ValueError("give the budget as `rows`, `ratio`, or `users` and `items`")
        return self


GRAPHHASH_VARIANTS = ("graphhash", "double_graphhash", "frequency_hybrid", "random", "double", "frequency")


class GraphHashConfig(Model):
    """The graphhash job: the train interactions' user-item graph clustered by modularity
    into a budget of embedding rows (GraphHash, Wu et al., WWW 2025), and the hashing
    baselines under the same budget."""

    budget: BudgetConfig = Field(description="the rows the mapping may use, met exactly")
    variant: Literal[GRAPHHASH_VARIANTS] = Field("graphhash", description=(  # type: ignore[valid-type]
        "the mapping written to `mapping/`: `graphhash` (a row per cluster), `double_graphhash` (a cluster row plus "
        "a hashed row, summed), `frequency_hybrid` (the most frequent entities keep their own rows), or a baseline: "
        "`random` (modulo hashing), `double` (two hashes), `frequency`"))
    baselines: list[Literal[GRAPHHASH_VARIANTS]] = Field(  # type: ignore[valid-type]
        ["random", "double", "frequency"], description="variants also written, under the same budget, to "
                                                       "`baselines/` for comparison")
    hash_share: float = Field(0.5, gt=0, lt=1, description="double variants: the share of each table given to the "
                                                           "second, hashed row")
    frequent_share: float = Field(0.5, gt=0, lt=1, description="frequency variants: the share of each table given "
                                                               "to the most frequent entities' own rows")
    edge_weight: Literal["binary", "count", "weight"] = Field("binary", description=(
        "the graph's edge weights: 1 per (user, item) pair, its interaction count, or its summed weight"))
    algorithm: Literal["leiden", "louvain"] = Field("leiden", description="modularity clustering (igraph)")
    max_clusterings: int = Field(12, ge=1, description="clusterings the search over resolution may try")
    max_edges: int = Field(50_000_000, ge=1, description=(
        "the most train pairs the driver holds (about 100 bytes each): a graph this size or smaller is clustered "
        "on the driver; a larger one through a sample of about this many pairs (`clustering`)"))
    clustering: Literal["auto", "driver", "sampled"] = Field("auto", description=(
        "`driver`: the whole graph on the driver, failing above `max_edges`; `sampled`: an edge sample of about "
        "`max_edges` pairs clustered on the driver, then extended and refined over every pair in Spark "
        "(jobs/spark/sampled_clustering.py); `auto`: `driver` up to `max_edges` pairs, `sampled` above"))
    refine_rounds: int = Field(3, ge=1, description="sampled clustering: half-rounds of local moves over every pair "
                                                    "(users, items, users, ...)")
    seed: int = Field(0, description="seed of the clustering and of every hash")


class HqiGenerateConfig(Model):
    """Synthetic entities with clustered vectors and correlated attributes, and Zipf-skewed
    workloads of hybrid queries over them (transforms/hqi_workload.py), generated on the
    driver."""

    rows: int = Field(20_000, ge=1, le=5_000_000, description="entities, the data's rows (made on the driver: "
                                                              "about rows x (4 dim + 60) bytes)")
    dim: int = Field(32, ge=1, le=4096, description="vector dimension")
    clusters: int = Field(64, ge=1, description="Gaussian clusters of the vectors")
    center_scale: float = Field(1.0, gt=0, description="standard deviation of the cluster centres' coordinates (the "
                                                       "points' is 1)")
    training: int = Field(2_000, ge=0, description="queries of the training workload (drawn like the batch, with "
                                                   "another seed)")
    queries: int = Field(1_000, ge=0, description="queries of the batch to answer")
    k: list[Annotated[int, Field(ge=1)]] = Field([10], min_length=1, description="each query's k, drawn uniformly "
                                                                                  "from these values")
    noise: float = Field(1.0, ge=0, description="standard deviation of the noise added to a random row's vector to "
                                                "make a query's")
    truth: bool = Field(True, description="also write the batch's exact answers (`truth`, for `hqi.truth`), by brute "
                                          "force on the driver: queries x rows x dim work")
    seed: int = Field(0, description="seed of the data; the training workload draws from seed + 1, the batch from "
                                     "seed + 2")


class HqiDataInput(Model):
    """The rows: Parquet with an integer id, a vector (a list of d numbers, the interface's
    fixed-size float32 lists or any other) and attribute columns."""

    path: str = Field(description="a Parquet file or a directory of Parquet files")
    id_column: str = Field("id", description="column of the row ids (integers; a missing or repeated id is "
                                             "quarantined)")
    vector_column: str = Field("vector", description="column of the vectors (a null vector, one of another length "
                                                     "or with NaN or infinite values is quarantined)")
    attribute_columns: list[str] | None = Field(None, description="the columns predicates may read (strings are "
                                                                  "categorical, integers and floats numeric); "
                                                                  "default every other column")


class HqiWorkloadInput(Model):
    """A workload of hybrid queries: Parquet with ``query_id`` (integer), ``k`` (integer),
    ``vector`` (a list of d numbers) and ``predicate`` (JSON text, transforms/predicates.py)."""

    path: str = Field(description="a Parquet file or a directory of Parquet files")


class HqiResultsInput(Model):
    """Answers to compare with: Parquet with ``query_id``, ``rank``, ``id`` and ``distance``
    (schemas.datasets.HQI_RESULTS)."""

    path: str = Field(description="a Parquet file or a directory of Parquet files; not this run's own output (give "
                                  "a copy)")


class HqiConfig(Model):
    """HQI batch hybrid queries (Mohoney et al., SIGMOD 2023; transforms/hqi.py): hqi-index
    lays the rows out for a training workload, hqi-query answers batches of queries."""

    data: HqiDataInput = Field(description="the rows: ids, vectors, attributes")
    training: HqiWorkloadInput | None = Field(None, description="hqi-index: the training workload whose predicates "
                                                                "the qd-tree is cut for (only `predicate` is read); "
                                                                "none: one leaf")
    queries: HqiWorkloadInput | None = Field(None, description="hqi-query: the batch of queries")
    truth: HqiResultsInput | None = Field(None, description="hqi-query: exact answers of the batch; the manifest then "
                                                            "gives the recall@k of each query's own k, a row whose "
                                                            "distance ties the k-th counting as found")
    min_leaf_rows: int = Field(4096, ge=1, description="hqi-index: no qd-tree cut leaves fewer rows on a side (leaves "
                                                      "of 16 clusters or more keep cluster probing selective)")
    rows_per_cluster: int = Field(256, ge=1, description="hqi-index: a leaf of n rows gets ceil(n / this) k-means "
                                                         "clusters")
    clusters_per_leaf: int | None = Field(None, ge=1, description="hqi-index: instead of `rows_per_cluster`, this "
                                                                  "many clusters per leaf")
    iterations: int = Field(10, ge=1, description="hqi-index: Lloyd iterations of each leaf's k-means")
    sample_rows: int = Field(200_000, ge=1, description=(
        "hqi-index fits the qd-tree and each leaf's k-means on the driver: on every row when the data has no more "
        "than this, else on this many rows sampled by a seeded hash of the id (about sample_rows x (4 d + 8 per "
        "attribute) bytes on the driver); every row is then placed in Spark tasks"))
    seed: int = Field(0, description="seed of the sample and of k-means (leaf l draws from (seed, l))")
    nprobe: int | None = Field(None, ge=1, description="hqi-query: the nearest clusters (holding a satisfying row) "
                                                       "each query probes, more until they hold its k; none: exact")
    engine: Literal["memory", "spark"] | None = Field(None, description=(
        "hqi-query: `memory`: every Python worker holds the layout and each task answers a slice of the batch; "
        "`spark`: the layout's leaves, cut into slices, are Spark's groups, each searched for the queries routed "
        "to it, and Spark merges each query's k best; none: memory when the layout fits `held_mb`. Both give the "
        "same answers"))
    held_mb: int = Field(1024, ge=0, description="hqi-query: the most memory (about rows x (4 d + 24 + 9 per "
                                                 "attribute) bytes) a layout held by every Python worker may take "
                                                 "when `engine` is unset")
    slice_rows: int = Field(100_000, ge=1, description="hqi-query, engine spark: a leaf's consecutive clusters are "
                                                       "searched in slices of at most this many rows (a larger "
                                                       "cluster alone), one group of Spark's each")


class EncoderConfig(Model):
    """Records as text (``COL <attr> VAL <value> ...`` over ``columns``, raw values) embedded
    by a local sentence-transformers model."""

    model: str | None = Field(None, description="a local sentence-transformers directory; default the "
                                                "packaged all-MiniLM-L6-v2")
    columns: list[str] = Field(min_length=1, description="attributes serialised as `COL <attr> VAL <value>` "
                                                         "(raw values)")
    max_seq_length: int = Field(128, ge=8, le=512, description="tokens per record; longer ones are truncated")
    batch_size: int = Field(64, ge=1, description="records per encoding batch")
    threads: int = Field(1, ge=1, description="torch threads per Spark task (tasks already run in parallel)")
    precision: Literal["float32", "bfloat16", "int8"] = Field(
        "float32", description="`bfloat16`: encode under CPU autocast, about 1.8x faster on CPUs with AVX-512 BF16 "
                               "or AMX (slower on others); cosines within 1e-4 of `float32`. `int8`: ONNX Runtime with "
                               "int8 weights (CPUs with VNNI), cosines about 0.99 with `float32`. Training steps stay "
                               "`float32`; its encodings for mining and validation follow `bfloat16`")


class NlshTrainConfig(Model):
    """nlsh-train: fine-tune the encoder as an (R, cR)-sensitive hash (NLSHBlock) from
    labelled pairs or a match rule. Training runs on the driver."""

    labels: PairLabels | None = Field(None, description="labelled pairs to train from; one of `labels` and "
                                                        "`rule`")
    valid: PairLabels | None = Field(None, description="held-out matching pairs: recall at each k per epoch")
    rule: MatchRule | None = Field(None, description="train from this match rule instead of labels")
    rule_neighbours: int = Field(20, ge=1, description="rule mode: each record's nearest neighbours under the "
                                                       "starting model are the pairs the rule labels")
    rule_valid_share: float = Field(0.2, ge=0, lt=1, description="rule mode: matching pairs held out for validation")
    radius: float = Field(0.1, gt=0, lt=2, description="R: matches are pulled within cosine distance R")
    c: float = Field(3.0, gt=1, description="non-matches are pushed beyond cosine distance c * R")
    epochs: int = Field(2, ge=0, description="passes over the matching pairs")
    batch_pairs: int = Field(32, ge=2, description="matching pairs per optimiser step")
    learning_rate: float = Field(3e-5, gt=0, description="AdamW learning rate")
    train_layers: int | None = Field(None, ge=0, description="train only the top N transformer layers; "
                                                             "null: all")
    hard_negatives: bool = Field(True, description="mine each anchor's nearest non-match every epoch")
    labelled_negatives: bool = Field(True, description="add a labelled non-match of each anchor to its batch")
    max_pairs: int = Field(4_000, ge=1, description="matching pairs trained on: a seeded sample of the labelled "
                                                    "(or rule) matches, with the labelled non-matches of its "
                                                    "anchors; bounds the steps per epoch")
    valid_pairs: int = Field(1_000, ge=1, description="held-out matching pairs validated on (a seeded sample)")
    valid_pool: int = Field(5_000, ge=1, description="validation ranks each held-out anchor among the held-out "
                                                     "records and a sample of this many others")
    mining_pool: int = Field(10_000, ge=1, description="records besides the labelled ones that hard "
                                                       "negatives are mined from (encoded once)")
    max_records: int = Field(200_000, ge=1, description="records gathered on the driver for training")
    eval_k: list[int] = Field([1, 3, 5, 10, 20], min_length=1, description="the k of the validation recall")
    max_seq_length: int | None = Field(None, ge=8, le=512, description="tokens per record while training; "
                                                                       "default `encoder.max_seq_length`")
    seed: int = Field(0, description="seed of the record sample and the training order")

    @model_validator(mode="after")
    def _source_of_matches(self):
        if (self.labels is None) == (self.rule is None):
            raise ValueError("nlsh_train needs exactly one of labels or rule")
        return self


class HyperplaneLshConfig(Model):
    """Random-hyperplane LSH over embeddings: ``tables`` codes of ``bits`` sign bits each."""

    tables: int = Field(16, ge=1, le=256, description="hash tables (codes per record)")
    bits: int = Field(12, ge=1, le=62, description="sign bits per code")
    probes: int = Field(0, ge=0, description="also enter the buckets of each code with one of its N least "
                                             "certain bits flipped")
    max_bucket_size: int = Field(1_000, ge=2, description="larger buckets are handled by `oversized` and "
                                                          "reported")
    oversized: Literal["skip", "split"] = Field("split", description="`skip` an oversized bucket, or `split` it "
                                                                     "by the next table's code (parts still too "
                                                                     "large are skipped)")
    center: bool = Field(True, description="hash the embeddings minus their mean: records of one domain share "
                                           "a direction that hyperplanes through the origin do not split")
    seed: int = Field(0, description="seed of the hyperplanes")


class IvfConfig(Model):
    """An inverted file over the embeddings: k-means cells, each record searched in its
    ``probes`` nearest cells (approximate top-k, distributed by cell)."""

    cell_size: int = Field(2_000, ge=16, description="records per k-means cell, on average")
    probes: int = Field(8, ge=1, description="cells each query record is searched in, nearest first (8: PC 0.956 "
                                             "at 1M person records where exact top-k gives 0.995, benchmarks/README)")
    sample: int = Field(100_000, ge=100, description="embeddings the centroids are fitted on (a seeded sample, "
                                                     "on the driver)")
    iterations: int = Field(10, ge=1, description="k-means rounds")
    seed: int = Field(0, description="seed of the sample and the k-means start")


class NlshBlockConfig(Model):
    """nlsh-block: candidate pairs from the embeddings, exact top-k or hyperplane LSH."""

    model: str = Field("trained", description="`trained` (`<output>/nlsh_train/model`), `pretrained` "
                                              "(`encoder.model`) or a model directory")
    input: str | None = Field(None, description="ingested records; default `<output>/ingest/records`")
    embeddings: str | None = Field(None, description="embeddings an earlier nlsh-block wrote for the same "
                                                     "records, used instead of encoding (to try other candidate "
                                                     "settings in minutes); give a copy, not this job's own "
                                                     "output")
    method: Literal["topk", "ivf", "lsh"] = Field("topk", description=(
        "exact top-k per query record (`topk`), top-k within the nearest k-means cells (`ivf`, for inputs whose "
        "smaller side exceeds `broadcast_mb`), or hyperplane `lsh`"))
    k: int = Field(10, ge=1, description="top-k and ivf: candidates per query record")
    queries: str | None = Field(None, description="top-k and ivf: the source whose records query; default the first "
                                                  "source in link mode, every record in dedupe mode")
    block_rows: int = Field(4096, ge=16, description="query rows per block of the blocked matrix product")
    broadcast_mb: int = Field(512, ge=0, description="the candidate side is broadcast up to this size")
    ivf: IvfConfig = Field(IvfConfig(), description="cells of the embeddings (`method: ivf`)")
    lsh: HyperplaneLshConfig = Field(HyperplaneLshConfig(), description="buckets of the embeddings "
                                                                        "(`method: lsh`)")
    min_cosine: float | None = Field(None, ge=-1, le=1, description="drop pairs whose cosine is below")
    union_minhash: bool = Field(False, description="add the MinHash candidates of the block job "
                                                   "(`<output>/block/candidates`)")


INPUT_FIELDS = ("path", "input", "embeddings", "load_model")  # fields that name a path a job reads
# the sections a job reads besides its own (by its output directory's name)
JOB_READS = {"block": ("block", "truth"), "match": ("match", "truth"), "cluster": ("cluster", "truth"),
             "nlsh_train": ("nlsh_train", "encoder"), "nlsh_block": ("nlsh_block", "encoder", "truth"),
             "ppr_query": ("ppr",), "hqi_index": ("hqi",), "hqi_query": ("hqi",)}


class QualityConfig(Model):
    validate_output: Literal["off", "warn", "fail"] = Field("warn", description=(
        "check every dataset a job writes with its Great Expectations suite (`schemas/gx/`) before the outputs "
        "move into place: `warn` logs failures, `fail` fails the run and keeps the previous output; results in "
        "the manifest (`expectations`) and in the project"))
    checks: Literal["cheap", "all"] = Field("cheap", description=(
        "`cheap`: the checks of one pass over a dataset (columns, nulls, ranges, row counts, pair order); `all` "
        "adds the suites `<job>.<dataset>.full` (ids unique, every candidate's records exist), which shuffle "
        "and join"))
    project: str | None = Field(None, description="a local directory for the Great Expectations project of these "
                                                  "outputs (suites, results, Data Docs in `gx/`); default the "
                                                  "output root when it is local")
    data_docs: bool = Field(False, description="rebuild the Data Docs site after every run (always: `sigil docs`)")

    @field_validator("validate_output", mode="before")
    @classmethod
    def _yaml_off(cls, value):
        return "off" if value is False else value  # YAML reads a bare `off` as false


class SigilConfig(Model):
    output: str = Field(description="directory under which each job writes `<output>/<job>/`; not a "
                                    "filesystem's root")
    spark: SparkConfig = Field(SparkConfig(), description="the Spark session")
    quality: QualityConfig = Field(QualityConfig(), description="data-quality checks of the datasets jobs write")
    generate: GenerateConfig | None = Field(None, description="the generate job: synthetic person records with "
                                                              "duplicates and ground truth "
                                                              "(`transforms/people.py`)")
    ingest: IngestConfig | None = Field(None, description="the ingest job: record files read, typed and "
                                                          "normalised; bad rows quarantined")
    block: BlockConfig | None = Field(None, description="the block job: candidate record pairs by MinHash-LSH "
                                                        "or equality rules")
    match: MatchConfig | None = Field(None, description="the match job: candidate pairs compared attribute by "
                                                        "attribute and scored")
    cluster: ClusterConfig | None = Field(None, description="the cluster job: entities as connected components "
                                                            "of the matches")
    graph_generate: GraphGenerateConfig | None = Field(None, description=(
        "the graph-generate job: a planted-partition graph with power-law degrees and community sizes, seed "
        "queries and ground truth (`transforms/graphgen.py`)"))
    graph: GraphConfig | None = Field(None, description="the graph-ingest job: an edge list (and a vertex table) "
                                                        "ingested into a vertex dictionary and merged edges")
    graph_index: GraphIndexConfig | None = Field(None, description="the graph-index job: MinHash signatures of "
                                                                   "vertex neighbourhoods and their LSH index")
    communities: CommunitiesConfig | None = Field(None, description="the communities job: communities grown "
                                                                    "around seed queries, or of every vertex")
    ppr: PprConfig | None = Field(None, description="the ppr-index and ppr-query jobs: random-walk fingerprints of "
                                                    "every vertex and batches of personalized PageRank queries")
    interactions_generate: InteractionsGenerateConfig | None = Field(None, description=(
        "the interactions-generate job: a synthetic interaction log (`transforms/interactions.py`)"))
    interactions: InteractionsConfig | None = Field(None, description="the interactions-ingest job: an interaction "
                                                                      "log -> dictionaries, merged interactions, "
                                                                      "train/test split")
    graphhash: GraphHashConfig | None = Field(None, description="the graphhash job: embedding rows shared by the "
                                                                "clusters of the user-item graph")
    hqi_generate: HqiGenerateConfig | None = Field(None, description=(
        "the hqi-generate job: synthetic entities with vectors and attributes, a training workload and a batch of "
        "hybrid queries (`transforms/hqi_workload.py`)"))
    hqi: HqiConfig | None = Field(None, description="the hqi-index and hqi-query jobs: a workload-aware layout of "
                                                    "vectors and attributes, and batches of hybrid (vector + "
                                                    "predicate) queries")
    encoder: EncoderConfig | None = Field(None, description="records embedded by a sentence-transformers "
                                                            "model (nlsh-train, nlsh-block)")
    nlsh_train: NlshTrainConfig | None = Field(None, description="the nlsh-train job: the encoder fine-tuned as "
                                                                 "an (R, cR)-sensitive hash, on the driver")
    nlsh_block: NlshBlockConfig | None = Field(None, description="the nlsh-block job: candidate pairs from the "
                                                                 "embeddings, exact top-k or hyperplane LSH")
    truth: TruthConfig | None = Field(None, description=(
        "ground truth: every stage then reports its quality (blocking: pair completeness, pair quality, "
        "reduction ratio; match: pairwise precision, recall, F1; cluster: pairwise and B-cubed precision, "
        "recall, F1)"))

    @field_validator("output")
    @classmethod
    def _below_root(cls, output: str) -> str:
        path = output.strip().split("://", 1)[-1]
        if "://" in output:  # a URI: its path comes after the authority
            path = path.partition("/")[2]
        if not path.strip("/"):
            raise ValueError(f"must name a directory below the filesystem root, got {output!r}")
        return output

    def input_paths(self, job: str) -> list[str]:
        """The paths job ``job`` (its output directory's name) reads as configured: the
        fields ``path``, ``input``, ``embeddings``, ``load_model`` of its section and of the
        sections it also reads (the truth for quality, the encoder)."""

        def walk(model) -> list[str]:
            found = []
            for name in type(model).model_fields:
                value = getattr(model, name)
                for item in value if isinstance(value, (list, tuple)) else [value]:
                    if isinstance(item, BaseModel):
                        found += walk(item)
                    elif name in INPUT_FIELDS and isinstance(item, str):
                        found.append(item)
            return found

        sections = [getattr(self, name, None) for name in JOB_READS.get(job, (job,))]
        return [path for section in sections if section is not None for path in walk(section)]

    def er_mode(self) -> str:
        """``dedupe`` (one source, or all sources pooled) or ``link`` (pairs across sources only)."""
        return self.block.mode if self.block else "dedupe"

    def records_path(self) -> str:
        """The records the block job reads: ``block.input``, or the ingest job's output."""
        return (self.block.input if self.block and self.block.input
                else f"{self.output.rstrip('/')}/ingest/records")

    def token_columns(self, record_columns: list[str]) -> list[str]:
        """The attributes to tokenise: configured, or every normalised column of the records."""
        if self.block.tokenizer.columns:
            return list(self.block.tokenizer.columns)
        return [c[: -len(NORM_SUFFIX)] for c in record_columns if c.endswith(NORM_SUFFIX)]

    def stage_path(self, stage: str, dataset: str) -> str:
        return f"{self.output.rstrip('/')}/{stage}/{dataset}"

    @model_validator(mode="after")
    def _block_columns_exist(self):
        if self.block and self.ingest and self.block.tokenizer.columns:
            known = {a.name for a in self.ingest.attributes}
            unknown = [c for c in self.block.tokenizer.columns if c not in known]
            if unknown:
                raise ValueError(f"block.tokenizer.columns names unknown attributes {unknown}; "
                                 f"allowed: {sorted(known)}")
        if self.match and self.match.one_to_one and self.er_mode() != "link":
            raise ValueError("match.one_to_one needs block.mode=link (pairs across sources)")
        if self.match and self.ingest:
            known = {a.name for a in self.ingest.attributes}
            unknown = [c.column for c in self.match.comparisons if c.column not in known | {EMBEDDING}]
            if unknown:
                raise ValueError(f"match.comparisons name unknown attributes {unknown}; allowed: {sorted(known)}")
        return self


class ConfigError(ValueError):
    """A configuration that cannot run; the message names the key and what is allowed."""


def _set_dotted(tree: dict, dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    if keys[:2] == ["spark", "conf"]:  # Spark's own keys contain dots
        keys = keys[:2] + [".".join(keys[2:])]
    node = tree
    for key in keys[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {dotted}: {key} is not a section")
    node[keys[-1]] = value


def _merged(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def read_yaml(path: Path, seen: tuple = ()) -> dict:
    """A configuration file as a tree. ``extends: other.yaml`` (relative to the file) starts
    from that file's tree; sections merge key by key, lists and values are replaced. Only
    plain YAML is read (``safe_load``: no ``!!python`` tags)."""
    if not path.is_file():
        raise ConfigError(f"configuration file not found: {path}")
    if path.resolve() in seen:
        raise ConfigError(f"{path}: 'extends' forms a cycle")
    try:
        with open(path, encoding="utf-8") as f:  # named, so YAML's errors say where
            tree = yaml.safe_load(f) or {}
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text (byte {err.start})") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {_yaml_problem(err)}") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot be read ({err.strerror})") from None
    if not isinstance(tree, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    parent = tree.pop("extends", None)
    if parent is None:
        return tree
    if not isinstance(parent, str):
        raise ConfigError(f"{path}: extends must name a configuration file, got {parent!r}")
    return _merged(read_yaml(path.parent / parent, (*seen, path.resolve())), tree)


def _yaml_problem(err: yaml.YAMLError) -> str:
    """A YAML error in one line: the problem and where it is."""
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})" if mark else problem


def load_config(path: str | Path | None = None, overrides: list[str] = (), base: dict | None = None) -> SigilConfig:
    """Read YAML, apply ``key.path=value`` overrides (values parsed as YAML), validate."""
    tree: dict = dict(base or {})
    if path is not None:
        tree = read_yaml(Path(path))
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError as err:
            raise ConfigError(f"--set {item}: not a YAML value: {_yaml_problem(err)}") from None
        _set_dotted(tree, key.strip(), parsed)
    try:
        return SigilConfig.model_validate(tree)
    except ValidationError as err:
        raise ConfigError(_explain(err)) from None


def _explain(err: ValidationError) -> str:
    lines = ["invalid configuration:"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        elif e["type"] == "literal_error":
            msg = f"got {e['input']!r}; allowed: {e['ctx']['expected']}"
        elif e["type"] == "value_error":
            msg = msg.removeprefix("Value error, ")
        elif e["type"] == "string_pattern_mismatch":
            msg = f"got {e['input']!r}; {msg[0].lower()}{msg[1:]}"
        lines.append(f"  {key}: {msg}")
    return "\n".join(lines)
