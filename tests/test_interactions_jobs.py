"""interactions-ingest on Spark: dictionaries, merged pairs, the split, bad rows."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from conftest import NO_CHECKS
from sigil.cli import main
from sigil.schemas import datasets
from sigil.schemas.config import load_config

LOG = """user,item,ts,rating,label
u1,i1,2021-01-01,5,1
u1,i2,2021-01-02,4,1
u1,i3,2021-01-03,3,1
u1,i1,2021-01-04,5,1
u2,i1,2021-01-01,2,1
u2,i4,2021-01-05,1,0
u2,,2021-01-05,1,1
u3,i2,yesterday,1,1
u3,i9,2021-02-30,1,1
u3,i2,2021-01-01,-1,1
u4,i1,3,1,yes
10,i3,1000,1,true
9,i3,1001,1,true
# a comment
"""


def _read(path) -> list[dict]:
    return pq.read_table(str(path)).to_pylist()


def _config(tmp_path, log: dict, split: dict | None = None):
    return load_config(base={"output": str(tmp_path / "out"), "spark": {"shuffle_partitions": 4},
                             "quality": NO_CHECKS, "interactions": {"log": log, **({"split": split} if split else {})}})


def test_log_ingest_numbers_merges_splits_and_quarantines(spark, tmp_path):
    from sigil.jobs import interactions_ingest

    path = tmp_path / "log.csv"
    path.write_text(LOG)
    config = _config(tmp_path, {"path": str(path), "timestamp_column": "ts", "weight_column": "rating",
                                "label_column": "label"},
                     {"method": "time", "test_fraction": 0.34, "min_user_items": 2})
    manifest = interactions_ingest.run(spark, config, quiet=True)
    out = tmp_path / "out" / "interactions"
    users = {r["user"]: r for r in _read(out / "users")}
    items = {r["item"]: r for r in _read(out / "items")}
    # integer ids in numeric order first, then the others; users and items numbered apart
    assert sorted(users, key=lambda u: users[u]["uid"]) == ["9", "10", "u1", "u2"]
    assert sorted(items, key=lambda i: items[i]["iid"]) == ["i1", "i2", "i3"]
    pairs = {(r["uid"], r["iid"]): r for r in _read(out / "interactions")}
    u1_i1 = pairs[(users["u1"]["uid"], items["i1"]["iid"])]
    assert (u1_i1["count"], u1_i1["weight"], u1_i1["first_timestamp"], u1_i1["last_timestamp"]) == \
        (2, 10.0, 1609459200, 1609718400)
    # u1 holds 3 items: round(3 x 0.34) = 1 held out, the last by time (i1, seen again on 01-04)
    assert [(r["uid"], r["iid"]) for r in _read(out / "test")] == [(users["u1"]["uid"], items["i1"]["iid"])]
    assert len(_read(out / "train")) == len(pairs) - 1
    assert users["u1"]["degree"] == 3 and users["u1"]["train_degree"] == 2 and users["u2"]["train_degree"] == 1
    assert items["i3"]["degree"] == 3 and items["i3"]["weight"] == 5.0
    reasons = sorted((r["line"], r["reason"].split(":")[0]) for r in _read(out / "quarantine"))
    assert reasons == [(8, "missing item"), (9, "bad timestamp"), (10, "bad timestamp"), (11, "bad weight"),
                       (12, "bad label")]
    m = manifest["metrics"]
    assert manifest["inputs"] == {"rows": 13, "comment_lines": 1}
    assert m["rows_used"] + m["negative_rows"] + manifest["quarantined"]["rows"] == 13
    assert (m["negative_rows"], m["repeats_merged"], m["users"], m["items"], m["interactions"]) == (1, 1, 4, 3, 6)
    for name, schema in (("users", datasets.USERS), ("items", datasets.ITEMS), ("interactions", datasets.INTERACTIONS),
                         ("train", datasets.INTERACTIONS), ("test", datasets.INTERACTIONS)):
        assert pq.read_schema(next((out / name).glob("*.parquet"))).equals(schema), name


def test_random_split_is_seeded_per_user_and_never_leaks(spark, tmp_path):
    from sigil.jobs import interactions_ingest

    rng = np.random.default_rng(0)
    users, items = rng.integers(0, 200, 4000), rng.integers(0, 300, 4000)
    path = tmp_path / "log.parquet"
    pq.write_table(pa.table({"u": [f"user{u}" for u in users], "i": items.astype(str)}), path)
    log = {"path": str(path), "format": "parquet", "user_column": "u", "item_column": "i"}
    runs = []
    for seed, name in ((1, "a"), (1, "b"), (2, "c")):
        config = _config(tmp_path / name, log, {"test_fraction": 0.25, "min_user_items": 5, "seed": seed})
        interactions_ingest.run(spark, config, quiet=True)
        out = tmp_path / name / "out" / "interactions"
        runs.append({s: {(r["uid"], r["iid"]) for r in _read(out / s)} for s in ("train", "test", "interactions")})
    a, b, c = runs
    assert a == b and a["test"] != c["test"]  # the seed decides
    assert not a["train"] & a["test"] and a["train"] | a["test"] == a["interactions"]
    n = {}
    for uid, _ in a["interactions"]:
        n[uid] = n.get(uid, 0) + 1
    held = {}
    for uid, _ in a["test"]:
        held[uid] = held.get(uid, 0) + 1
    for uid, total in n.items():
        expected = max(1, int(total * 0.25 + 0.5)) if total >= 5 else 0  # rounded half up
        assert held.get(uid, 0) == expected, (uid, total)


def test_log_errors_are_one_message(spark, tmp_path, capsys):
    log = tmp_path / "log.csv"
    log.write_text("user,item\nu,i\n")
    conf = tmp_path / "c.yaml"
    conf.write_text(yaml.safe_dump({"output": str(tmp_path / "out"), "interactions": {
        "log": {"path": str(log)}, "split": {"method": "time"}}}))
    assert main(["interactions-ingest", "--conf", str(conf)]) == 2
    assert "timestamp_column" in capsys.readouterr().err
    log.write_text("user,item\n# nothing\n")
    assert main(["interactions-ingest", "--conf", str(conf), "--set", "interactions.split.method=random"]) == 2
    assert "no interactions in" in capsys.readouterr().err
    log.write_text("member,item\nu,i\n")
    assert main(["interactions-ingest", "--conf", str(conf), "--set", "interactions.split.method=random"]) == 2
    assert "missing configured column" in capsys.readouterr().err


@pytest.mark.parametrize("text", ["u1\ti1\n", "u1\ti1\t7\n"])
def test_headerless_tsv_reads_the_first_two_columns(spark, tmp_path, text):
    from sigil.jobs import interactions_ingest

    path = tmp_path / "log.tsv"
    path.write_text(text + "u2\ti1" + text[5:])
    config = _config(tmp_path, {"path": str(path), "format": "tsv", "header": False})
    manifest = interactions_ingest.run(spark, config, quiet=True)
    assert (manifest["metrics"]["users"], manifest["metrics"]["items"], manifest["metrics"]["interactions"]) == (2, 1, 2)
