"""Pairs read from files: the ground truth (block, match, cluster report quality against it)
and labels (match's logistic model). Unreadable files and missing columns fail before any
work, naming the file."""

from corpus.case import Case

PEOPLE = "id,name\n1,Ann Lee\n2,Ann Lee\n3,Bob Ray\n4,Bob Ray\n"
TRUTH = "id_a,id_b\n1,2\n3,4\n"


def blocked(truth: dict | None = None, files: dict | None = None, **outcome) -> dict:
    config = {"ingest": {"sources": [{"name": "s", "path": "{dir}/people.csv", "id_column": "id"}],
                         "attributes": [{"name": "name"}]},
              "block": {"lsh": {"threshold": 0.3}}}
    if truth is not None:
        config["truth"] = truth
    return dict(job="block", files={"people.csv": PEOPLE, **(files or {})}, config=config, before=("ingest",),
                **outcome)


LOGISTIC = {"comparisons": [{"column": "name", "levels": [{"kind": "exact"}]}], "model": "logistic"}

CASES = [
    Case("truth-good", **blocked({"path": "{dir}/truth.csv"}, {"truth.csv": " id_a , id_b \n1,2\n3,4\n"})),
    Case("truth-missing", **blocked({"path": "{dir}/nowhere.csv"}, exit=2,
                                    message=r"input path does not exist: .*nowhere\.csv")),
    Case("truth-missing-column", **blocked({"path": "{dir}/truth.csv"}, {"truth.csv": "id_a,other\n1,2\n"}, exit=2,
                                           message=r"truth\.csv: .*no column\(s\) \['id_b'\]")),
    Case("truth-source-a-only", **blocked({"path": "{dir}/truth.csv"},
                                          {"truth.csv": "source_a,id_a,id_b\ns,1,2\n"}, exit=2,
                                          message=r"truth\.csv: .*no column\(s\) \['source_b'\]")),
    Case("truth-empty-file", **blocked({"path": "{dir}/truth.csv"}, {"truth.csv": ""}, exit=2,
                                       message=r"truth\.csv")),
    Case("truth-not-parquet", **blocked({"path": "{dir}/truth.parquet", "format": "parquet"},
                                        {"truth.parquet": TRUTH}, exit=2, message=r"truth\.parquet")),
    Case("truth-regex-without-group", **{**blocked({"id_regex": "^rec-"}, exit=2,
                                                   message=r"truth\.id_regex: needs a group"), "before": ()}),
    Case("truth-regex-invalid", **{**blocked({"id_regex": "(rec"}, exit=2,
                                             message=r"truth\.id_regex: not a regular expression"), "before": ()}),
    Case("labels-not-binary", "match", files={"people.csv": PEOPLE, "labels.csv": "id_a,id_b,label\n1,2,1\n3,4,maybe\n"},
         config={**blocked()["config"], "match": {**LOGISTIC, "labels": {"path": "{dir}/labels.csv"}}},
         before=("ingest", "block"), exit=2, message=r"labels\.csv: label must be 0 or 1"),
    Case("labels-fractional", "match", files={"people.csv": PEOPLE, "labels.csv": "id_a,id_b,label\n1,2,0.5\n"},
         config={**blocked()["config"], "match": {**LOGISTIC, "labels": {"path": "{dir}/labels.csv"}}},
         before=("ingest", "block"), exit=2, message=r"labels\.csv: label must be 0 or 1"),
    Case("labels-missing-column", "match", files={"people.csv": PEOPLE, "labels.csv": "id_a,id_b\n1,2\n"},
         config={**blocked()["config"], "match": {**LOGISTIC, "labels": {"path": "{dir}/labels.csv"}}},
         before=("ingest", "block"), exit=2, message=r"labels\.csv: .*no column\(s\) \['label'\]"),
]
