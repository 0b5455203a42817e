"""The Spark jobs end to end: quality on FEBRL, quarantine, strictness, atomic outputs."""

import hashlib
import json
from collections import Counter

import datasketch
import numpy as np
import pyarrow.parquet as pq
import pytest

from conftest import FEBRL, febrl4_config, needs_data
from sigil.jobs import block, generate, ingest
from sigil.run import StrictError
from sigil.schemas import datasets
from sigil.schemas.config import load_config
from sigil.transforms.records import InputError


@needs_data(FEBRL)
def test_febrl4_pair_completeness_with_few_candidates(febrl4):
    _, _, manifest = febrl4
    m = manifest["metrics"]
    assert m["pair_completeness"] >= 0.999
    assert m["candidate_pairs"] <= 6000
    assert m["records"] == 10_000 and m["truth_pairs"] == 5000
    assert (m["bands"], m["rows"]) == (37, 3)
    for suite in ("block.candidates", "block.candidates.full", "block.signatures", "block.bucket_sizes"):
        assert manifest["expectations"][suite] == {"success": True, "failed": []}, suite


@needs_data(FEBRL)
def test_outputs_follow_the_contracts(febrl4):
    config, ingest_manifest, _ = febrl4
    root = f"{config.output}/block"
    cand = pq.read_table(f"{root}/candidates")
    assert cand.schema == datasets.CANDIDATES
    pairs = list(zip(*(cand.column(c).to_pylist() for c in ("source_a", "id_a", "source_b", "id_b"))))
    assert all((sa, ia) < (sb, ib) for sa, ia, sb, ib in pairs) and len(set(pairs)) == len(pairs)
    assert min(cand.column("jaccard").to_pylist()) >= 0.3
    sigs = pq.read_table(f"{root}/signatures")
    assert sigs.schema == datasets.signatures(128, True)
    records = pq.read_table(f"{config.output}/ingest/records")
    assert records.schema == datasets.records([a.name for a in config.ingest.attributes])
    assert ingest_manifest["inputs"] == {"a": 5000, "b": 5000}
    assert ingest_manifest["quarantined"] == {"a": 0, "b": 0}


@needs_data(FEBRL)
def test_job_signatures_equal_datasketch(febrl4):
    config, _, _ = febrl4
    records = pq.read_table(f"{config.output}/ingest/records").slice(0, 25).to_pylist()
    sigs = {r["rid"]: r["signature"] for r in pq.read_table(f"{config.output}/block/signatures").to_pylist()}
    names = [a.name for a in config.ingest.attributes]
    for r in records:
        text = " ".join(r[n + "_norm"] for n in names if r[n + "_norm"] is not None)
        m = datasketch.MinHash(num_perm=128, seed=1)
        m.update_batch({text[i:i + 3].encode() for i in range(len(text) - 2)})
        assert np.array_equal(m.hashvalues, np.array(sigs[r["rid"]], dtype=np.uint32))


MESSY = (b"rec_id,name,born\n"
         b"1,Ann Lee,19800101\n"
         b"2,Bob\n"
         b",Carl,19800101\n"
         b"4,D\xffn,19800101\n"
         b"1,Ann Again,19800101\n"
         b"6,Eve,1980-01-01\n"
         b"7,Fay Wu,19811111\n")


def messy_config(tmp_path, **extra):
    src = tmp_path / "in"
    src.mkdir(exist_ok=True)
    (src / "part-1.csv").write_bytes(MESSY)
    (tmp_path / "more.jsonl").write_text('{"rec_id": "x1", "name": "Gus", "born": "19700101"}\n{broken\n')
    return load_config(base={
        "output": str(tmp_path / "out"),
        "ingest": {"sources": [{"name": "csv", "path": str(src), "id_column": "rec_id"},
                               {"name": "json", "path": str(tmp_path / "more.jsonl"), "format": "jsonl",
                                "id_column": "rec_id"}],
                   "attributes": [{"name": "name"}, {"name": "born", "type": "date"}]}, **extra})


def test_ingest_quarantines_every_bad_row_with_a_reason(spark, tmp_path):
    config = messy_config(tmp_path)
    manifest = ingest.run(spark, config, quiet=True)
    assert manifest["inputs"] == {"csv": 7, "json": 2}
    assert manifest["quarantined"] == {"csv": 5, "json": 1}
    assert manifest["outputs"]["records"] == 3
    for name in ("csv", "json"):  # nothing lost: input = output + quarantined
        assert manifest["inputs"][name] == manifest["outputs"][f"records.{name}"] + manifest["quarantined"][name]
    q = pq.read_table(f"{config.output}/ingest/quarantine").to_pylist()
    reasons = sorted((r["source"], r["line"], r["reason"].split(" (")[0].split(":")[0]) for r in q)
    assert reasons == [("csv", 3, "malformed line"), ("csv", 4, "missing id"),
                       ("csv", 5, "undecodable bytes in column name"), ("csv", 6, "duplicate id"),
                       ("csv", 7, "wrong type"), ("json", 2, "malformed line")]
    dup = next(r for r in q if r["reason"].startswith("duplicate id"))
    assert dup["id"] == "1" and "part-1.csv:2" in dup["reason"]
    records = pq.read_table(f"{config.output}/ingest/records").to_pylist()
    assert {(r["id"], r["born_norm"]) for r in records} == {("1", "1980-01-01"), ("7", "1981-11-11"),
                                                          ("x1", "1970-01-01")}


def test_strict_fails_naming_file_line_reason_and_keeps_previous_output(spark, tmp_path):
    config = messy_config(tmp_path)
    ingest.run(spark, config, quiet=True)
    before = json.loads((tmp_path / "out" / "ingest" / "manifest.json").read_text())["started"]
    with pytest.raises(StrictError, match=r"part-1\.csv line 3: malformed line"):
        ingest.run(spark, config, strict=True, quiet=True)
    after = json.loads((tmp_path / "out" / "ingest" / "manifest.json").read_text())["started"]
    assert before == after
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]


def test_input_errors_fail_before_work(spark, tmp_path):
    config = messy_config(tmp_path)
    bad = load_config(base={**config.model_dump(mode="json"), "ingest": {
        **config.ingest.model_dump(mode="json"), "attributes": [{"name": "nickname"}]}})
    with pytest.raises(InputError, match=r"missing configured column\(s\) \['nickname'\]"):
        ingest.run(spark, bad, quiet=True)
    gone = load_config(base={"output": str(tmp_path / "o"), "ingest": {
        "sources": [{"name": "s", "path": str(tmp_path / "absent.csv"), "id_column": "id"}],
        "attributes": [{"name": "x"}]}})
    with pytest.raises(InputError, match="does not exist"):
        ingest.run(spark, gone, quiet=True)
    (tmp_path / "empty.jsonl").write_text("")
    empty = load_config(base={"output": str(tmp_path / "o"), "ingest": {
        "sources": [{"name": "s", "path": str(tmp_path / "empty.jsonl"), "format": "jsonl", "id_column": "id"}],
        "attributes": [{"name": "x"}]}})
    with pytest.raises(InputError, match="empty file"):
        ingest.run(spark, empty, quiet=True)


def test_oversized_buckets_are_reported_and_never_explode(spark, tmp_path):
    rows = "id,name\n" + "".join(f"{i},jane maria smith\n" for i in range(40)) + \
        "".join(f"u{i},{hashlib.sha1(str(i).encode()).hexdigest()[:16]}\n" for i in range(40))
    (tmp_path / "skew.csv").write_text(rows)
    base = {"output": str(tmp_path / "out"),
            "ingest": {"sources": [{"name": "s", "path": str(tmp_path / "skew.csv"), "id_column": "id"}],
                       "attributes": [{"name": "name"}]},
            "block": {"lsh": {"threshold": 0.5, "max_bucket_size": 10, "oversized": "skip"}}}
    config = load_config(base=base)
    ingest.run(spark, config, quiet=True)
    m = block.run(spark, config, quiet=True)["metrics"]
    assert m["oversized_buckets"] == m["bands"]  # the 40 copies fill one bucket per band
    top = m["oversized_top"][0]
    assert top["size"] == 40 and len(top["sample_ids"]) == 5
    cand = pq.read_table(f"{config.output}/block/candidates").to_pylist()
    assert not [c for c in cand if not c["id_a"].startswith("u") and not c["id_b"].startswith("u")]
    wide = load_config(base={**base, "block": {"lsh": {"threshold": 0.5, "max_bucket_size": 100}}})
    assert block.run(spark, wide, quiet=True)["metrics"]["candidate_pairs"] >= 40 * 39 // 2


def test_generate_is_deterministic_and_truthful(spark, tmp_path):
    from sigil.transforms.people import generate_people, truth_pairs

    base = {"generate": {"entities": 3000, "chunk_entities": 1000, "seed": 5, "format": "parquet"}}
    first = generate.run(spark, load_config(base={**base, "output": str(tmp_path / "a")}), quiet=True)
    second = generate.run(spark, load_config(base={**base, "output": str(tmp_path / "b")}), quiet=True)
    assert first["outputs"] == second["outputs"]
    read = lambda root: pq.read_table(f"{root}/generate/records").sort_by("rec_id").drop(["source"])  # noqa: E731
    assert read(tmp_path / "a").equals(read(tmp_path / "b"))
    chunks = [generate_people(c, 1000, seed=5) for c in range(3)]
    assert first["outputs"]["records.people"] == sum(c.num_rows for c in chunks)
    assert first["outputs"]["truth"] == sum(truth_pairs(c).num_rows for c in chunks)


def test_demo_runs_the_whole_chain(spark, tmp_path, capsys):
    from sigil import chains

    out = tmp_path / "demo"
    manifests = chains.demo(overrides=[f"output={out}", "generate.entities=2000", "generate.chunk_entities=1000",
                                     f"ingest.sources=[{{name: people, path: '{out}/generate/records/source=people',"
                                     " format: csv, id_column: rec_id}]",
                                     f"truth.path={out}/generate/truth"], quiet=True)
    assert manifests["block"]["metrics"]["pair_completeness"] > 0.9
    assert manifests["match"]["metrics"]["f1"] > 0.95
    cluster = manifests["cluster"]["metrics"]
    assert cluster["bcubed_f1"] > 0.95 and cluster["cluster_f1"] > 0.9
    assert cluster["records"] == manifests["ingest"]["outputs"]["records"]
    out = capsys.readouterr().out
    for line in ("pair completeness", "match F1", "entities", "B-cubed F1", "time cluster"):
        assert line in out


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_large_files_split_by_line_give_the_same_rows_and_lines(spark, tmp_path, fmt):
    import random

    rng = random.Random(7)
    lines = []
    for i in range(400):
        bad = rng.random() < 0.05
        if fmt == "csv":
            lines.append(f"{i},name {i}" + (",extra" if bad else ""))
        else:
            lines.append("{broken" if bad else json.dumps({"id": str(i), "name": f"name {i}"}))
    body = ("id,name\n" if fmt == "csv" else "") + "\n".join(lines) + "\n"
    (tmp_path / f"big.{fmt}").write_text(body)

    def run(split_bytes, out):
        config = load_config(base={"output": str(tmp_path / out), "ingest": {
            "sources": [{"name": "s", "path": str(tmp_path / f"big.{fmt}"), "format": fmt, "id_column": "id"}],
            "attributes": [{"name": "name"}], "split_bytes": split_bytes}})
        manifest = ingest.run(spark, config, quiet=True)
        read = lambda d: sorted((r["line"], r.get("id"), r.get("reason")) for r in  # noqa: E731
                                pq.read_table(f"{config.output}/ingest/{d}").to_pylist())
        return manifest, read("records"), read("quarantine")

    whole, split = run(1 << 30, "whole"), run(300, "split")
    assert split[1] == whole[1] and split[2] == whole[2]
    assert whole[0]["inputs"] == split[0]["inputs"] == {"s": 400}
    assert len(whole[2]) > 5  # the bad lines were found, at the same line numbers
    first = 2 if fmt == "csv" else 1
    assert sorted(line for line, _, _ in whole[1] + whole[2]) == list(range(first, first + 400))


def test_generated_link_data_blocks_across_sources_only(spark, tmp_path):
    out = tmp_path / "link"
    config = load_config(base={
        "output": str(out),
        "generate": {"entities": 1500, "chunk_entities": 500, "mode": "link", "seed": 3},
        "ingest": {"sources": [{"name": n, "path": f"{out}/generate/records/source={n}", "format": "parquet",
                                "id_column": "rec_id"} for n in ("a", "b")],
                   "attributes": [{"name": f} for f in ("given_name", "surname", "street_number", "address_1",
                                                         "suburb", "postcode", "state", "date_of_birth")]},
        "block": {"mode": "link", "lsh": {"threshold": 0.4}, "exact_jaccard": True, "min_jaccard": 0.4},
        "truth": {"path": f"{out}/generate/truth", "format": "parquet"}})
    generated = generate.run(spark, config, quiet=True)
    assert set(generated["outputs"]) == {"records.a", "records.b", "truth"}
    ingest.run(spark, config, quiet=True)
    m = block.run(spark, config, quiet=True)["metrics"]
    assert m["truth_pairs"] == generated["outputs"]["truth"] and m["pair_completeness"] > 0.95
    cand = pq.read_table(f"{out}/block/candidates")
    assert set(zip(cand.column("source_a").to_pylist(), cand.column("source_b").to_pylist())) == {("a", "b")}


@needs_data(FEBRL)
@pytest.mark.parametrize("in_tasks", [True, False], ids=["records-in-tasks", "shuffled"])
def test_rule_blocking_equals_brute_force_equality(spark, febrl4, tmp_path, in_tasks):
    """Every pair across sources that agrees on one rule's key, and no other pair; the
    keys shared by too many records skipped and reported. Both ways: the records' keys
    held by every task, or too large for that and shuffled."""
    config, _, _ = febrl4
    rules = [["soc_sec_id"], ["surname", "date_of_birth[0:4]"],
             {"left": ["given_name", "surname"], "right": ["surname", "given_name"]}, ["state"]]
    tree = config.model_dump(mode="json", exclude_none=True)
    tree.update(output=str(tmp_path), block={**tree["block"], "method": "rules", "rules": rules,
                                              "max_rule_group": 800, "input": f"{config.output}/ingest/records"})
    spark.conf.set("spark.sql.autoBroadcastJoinThreshold", f"{config.spark.broadcast_join_mb}m" if in_tasks else "-1")
    try:
        m = block.run(spark, load_config(base=tree), quiet=True)["metrics"]
    finally:
        spark.conf.set("spark.sql.autoBroadcastJoinThreshold", f"{config.spark.broadcast_join_mb}m")
    got = pq.read_table(f"{tmp_path}/block/candidates")
    assert got.schema == datasets.CANDIDATES and got.column("jaccard_estimate").null_count == got.num_rows
    got = set(zip(*(got.column(c).to_pylist() for c in ("source_a", "id_a", "source_b", "id_b"))))

    recs = pq.read_table(f"{config.output}/ingest/records").to_pylist()

    def key(r, parts):
        vals = [r[p.split("[")[0] + "_norm"] for p in parts]
        vals = [v[0:4] if "[" in p and v else v for p, v in zip(parts, vals)]
        return tuple(vals) if all(v and v.strip() for v in vals) else None

    want, skipped = set(), []
    for number, rule in enumerate(rules):
        left, right = (rule, rule) if isinstance(rule, list) else (rule["left"], rule["right"])
        index, group = {}, Counter(key(r, left) for r in recs)
        for r in recs:
            if (k := key(r, right)) is not None:
                index.setdefault(k, []).append(r)
        skipped += [(number, size) for k, size in group.items() if k is not None and size > 800]
        for x in recs:
            if (k := key(x, left)) is None or group[k] > 800:
                continue
            for y in index.get(k, []):
                if x["source"] != y["source"]:
                    want.add(tuple(sorted([(x["source"], x["id"]), (y["source"], y["id"])])))
    assert got == {(a[0], a[1], b[0], b[1]) for a, b in want}
    assert sorted((k["rule"], k["size"]) for k in m["skipped_rule_keys"]) == sorted(skipped) and skipped
    assert m["candidate_pairs"] == len(got) and m["pair_completeness"] > 0.9


@needs_data(FEBRL)
def test_the_bucket_cap_cost_is_the_recall_it_took(spark, febrl4, febrl4_truth, tmp_path):
    """With tiny buckets skipped, the true pairs the manifest says the cap cost are exactly
    those the uncapped run (the session's) finds and this one does not."""
    from sigil.jobs import block

    config, _, uncapped = febrl4
    capped = block.run(spark, load_config(base=febrl4_config(
        tmp_path, febrl4_truth, input=f"{config.output}/ingest/records",
        lsh={"threshold": 0.3, "max_bucket_size": 3, "oversized": "skip"})), quiet=True)["metrics"]
    assert uncapped["metrics"]["oversized_buckets"] == 0 and capped["oversized_buckets"] > 0
    assert capped["oversized_pairs_held"] >= 3 * capped["oversized_buckets"]
    assert capped["cap_lost_true_pairs"] == uncapped["metrics"]["true_candidates"] - capped["true_candidates"] > 0
