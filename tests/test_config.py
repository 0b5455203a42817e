"""Configuration errors name the key and what is allowed; overrides apply before validation."""

import pytest

from sigil.schemas.config import ConfigError, load_config

BASE = {"output": "/tmp/x", "block": {"mode": "dedupe"}}


def test_unknown_key_is_named():
    with pytest.raises(ConfigError, match=r"block\.lsh\.treshold: unknown key"):
        load_config(base={**BASE, "block": {"lsh": {"treshold": 0.4}}})


def test_bad_choice_lists_allowed_values():
    with pytest.raises(ConfigError, match=r"block\.mode: got 'merge'; allowed: 'dedupe' or 'link'"):
        load_config(base={**BASE, "block": {"mode": "merge"}})


def test_set_overrides_parse_yaml_values(tmp_path):
    conf = tmp_path / "c.yaml"
    conf.write_text("output: /tmp/out\nblock: {mode: link}\n")
    cfg = load_config(conf, ["block.lsh.threshold=0.4", "block.exact_jaccard=true", "spark.conf.spark.x=1"])
    assert cfg.block.lsh.threshold == 0.4 and cfg.block.exact_jaccard is True and cfg.block.mode == "link"
    with pytest.raises(ConfigError, match="expects key=value"):
        load_config(conf, ["block.mode"])


def test_cross_field_rules():
    with pytest.raises(ConfigError, match="min_jaccard needs block.exact_jaccard"):
        load_config(base={**BASE, "block": {"min_jaccard": 0.3}})
    with pytest.raises(ConfigError, match="set together"):
        load_config(base={**BASE, "block": {"lsh": {"bands": 4}}})
    with pytest.raises(ConfigError, match="must be <= minhash.num_perm"):
        load_config(base={**BASE, "block": {"minhash": {"num_perm": 16}, "lsh": {"bands": 5, "rows": 4}}})
    with pytest.raises(ConfigError, match="greater than 0"):
        load_config(base={**BASE, "block": {"lsh": {"threshold": 0}}})


def test_missing_file():
    with pytest.raises(ConfigError, match="not found"):
        load_config("/nonexistent/conf.yaml")


def test_extends_merges_sections_and_replaces_lists(tmp_path):
    (tmp_path / "base.yaml").write_text(
        "output: /tmp/base\nblock: {mode: link, lsh: {threshold: 0.3, max_bucket_size: 50}}\n"
        "ingest: {sources: [{name: a, path: x, id_column: id}], attributes: [{name: n}, {name: m}]}\n")
    (tmp_path / "child.yaml").write_text(
        "extends: base.yaml\noutput: /tmp/child\nblock: {lsh: {threshold: 0.4}}\n"
        "ingest: {attributes: [{name: z}]}\n")
    c = load_config(tmp_path / "child.yaml")
    assert c.output == "/tmp/child" and c.block.mode == "link"
    assert (c.block.lsh.threshold, c.block.lsh.max_bucket_size) == (0.4, 50)
    assert [a.name for a in c.ingest.attributes] == ["z"]
    (tmp_path / "loop.yaml").write_text("extends: loop.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(tmp_path / "loop.yaml")


def test_rule_blocking_is_validated():
    with pytest.raises(ConfigError, match="needs block.rules"):
        load_config(base={"output": "/tmp/x", "block": {"method": "rules"}})
    with pytest.raises(ConfigError, match="column or column"):
        load_config(base={"output": "/tmp/x", "block": {"method": "rules", "rules": [["dob[a:b]"]]}})
    ok = load_config(base={"output": "/tmp/x", "block": {"method": "rules", "rules": [
        ["dob[0:4]", "surname"], {"left": ["given", "surname"], "right": ["surname", "given"]}]}})
    assert len(ok.block.rules) == 2
