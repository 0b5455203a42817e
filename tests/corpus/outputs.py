"""Output locations: a job replaces only its own previous output, never an input or someone
else's files, and only one run writes an output at a time."""

import json
import socket

from corpus.case import Case

PEOPLE = "id,name\n1,Ann\n2,Bob\n"


def ingest(path: str = "{dir}/people.csv", output: str = "{dir}/out") -> dict:
    return {"output": output, "ingest": {"sources": [{"name": "s", "path": path, "id_column": "id"}],
                                         "attributes": [{"name": "name"}]}}


CASES = [
    Case("output-holds-the-input", "ingest", files={"out/ingest/people.csv": PEOPLE},
         config=ingest("{dir}/out/ingest/people.csv"), exit=2, message=r"output .*/out/ingest overlaps the input"),
    Case("output-is-the-input-folder", "ingest", files={"out/ingest/people.csv": PEOPLE},
         config=ingest("{dir}/out/ingest"), exit=2, message=r"overlaps the input .*/out/ingest"),
    Case("output-holds-other-files", "ingest", files={"people.csv": PEOPLE, "out/ingest/notes.txt": "mine"},
         config=ingest(), exit=2, message=r"out/ingest holds files that are not a sigil ingest output"),
    Case("output-holds-another-jobs-output", "ingest",
         files={"people.csv": PEOPLE, "out/ingest/manifest.json": json.dumps({"job": "block"})},
         config=ingest(), exit=2, message=r"not a sigil ingest output"),
    Case("output-is-a-file", "ingest", files={"people.csv": PEOPLE, "out/ingest": "not a folder"},
         config=ingest(), exit=2, message=r"out/ingest exists and is not a directory"),
    Case("output-root-is-a-file", "ingest", files={"people.csv": PEOPLE, "afile": "x"},
         config=ingest(output="{dir}/afile"), exit=2, message=r"cannot use the output .*/afile"),
    Case("output-read-only", "ingest", files={"people.csv": PEOPLE},  # sysfs refuses even root
         config=ingest(output="/sys/sigil-corpus-out"), exit=2, message=r"cannot use the output /sys/sigil-corpus-out"),
    Case("output-empty-folder", "ingest", files={"people.csv": PEOPLE, "out/ingest/.keep": ""},
         config=ingest(), exit=2, message=r"holds files that are not a sigil ingest output"),
    Case("output-replaces-its-own", "ingest", files={"people.csv": PEOPLE}, config=ingest(), before=("ingest",),
         rows=2),
    Case("output-locked-by-a-live-run", "ingest",
         files={"people.csv": PEOPLE, "out/.ingest.lock": json.dumps({"pid": 1, "host": socket.gethostname(),
                                                                      "started": "earlier"})},
         config=ingest(), exit=2, message=r"another sigil run is writing .*/out/ingest \(pid 1 on"),
    Case("output-locked-by-a-dead-run", "ingest",
         files={"people.csv": PEOPLE, "out/.ingest.lock": json.dumps({"pid": 2 ** 22 + 12345,
                                                                      "host": socket.gethostname()}),
                "out/.ingest.tmp-0123456789ab/records/part-x.parquet": "half-written"},
         config=ingest(), rows=2),
    Case("input-missing", "ingest", config=ingest("{dir}/nowhere.csv"), exit=2,
         message=r"input path does not exist: .*nowhere\.csv"),
    Case("block-before-ingest", "block", config={**ingest(), "block": {}}, exit=2,
         message=r"no ingested records at .*/out/ingest/records: run 'sigil ingest' first"),
    Case("match-before-block", "match", files={"people.csv": PEOPLE}, config={**ingest(), "match": {"comparisons": [
        {"column": "name", "levels": [{"kind": "exact"}]}]}}, before=("ingest",), exit=2,
         message=r"no candidate pairs at .*/out/block/candidates: run 'sigil block' first"),
    Case("cluster-before-match", "cluster", files={"people.csv": PEOPLE}, config={**ingest(), "cluster": {"threshold": 0.5}}, before=("ingest",),
         exit=2, message=r"no scored pairs at .*/out/match/pairs: run 'sigil match' first"),
]
