"""Record files (``sigil ingest``): every reason the reader gives, the files it refuses with
one message naming them, and the awkward files it reads fine (transforms/records.py)."""

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq

from corpus.case import Case

ATTRIBUTES = [{"name": "name"}, {"name": "dob", "type": "date"}]
ROWS = [f"{i},Name {i},199001{i:02d}" for i in range(1, 21)]  # 20 good rows, ids 1..20


def people(**replaced: str) -> str:
    """A header and the 20 rows, with rows replaced by id (``r4="..."``)."""
    rows = [replaced.get(f"r{i}", row) for i, row in enumerate(ROWS, 1)]
    return "id,name,dob\n" + "\n".join(rows) + "\n"


def ingest(name: str, files: dict, fmt: str = "csv", path: str | None = None, source: dict | None = None,
           **outcome) -> Case:
    """A case reading one source ``s`` from ``people.<fmt>`` (or ``path``)."""
    src = {"name": "s", "path": "{dir}/" + (path or f"people.{fmt}"), "id_column": "id", "format": fmt,
           **(source or {})}
    return Case(f"records-{name}", "ingest", files=files, config={"ingest": {"sources": [src],
                                                                            "attributes": ATTRIBUTES}}, **outcome)


def parquet(table: pa.Table) -> bytes:
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()


PARQUET = parquet(pa.table({"id": [str(i) for i in range(1, 21)] + [None], "name": ["x"] * 21,
                            "dob": ["19900101"] * 21}))
DAMAGED = PARQUET[:4] + b"\xab" * 60 + PARQUET[64:]  # the footer reads, the first data page does not
JSONL = [json.dumps({"id": str(i), "name": f"Name {i}", "dob": "19900101"}) for i in range(1, 21)]

CASES = [
    # one stray quote costs its line alone, also when a later field is quoted
    ingest("unclosed-quote", {"people.csv": people(r4='4,"Unclosed Name,19900104', r10='10,"Smith, J",19900110')},
           quarantined={"malformed line: unclosed quote": 1}, rows=19),
    ingest("unclosed-quote-line", {"people.csv": people(r4='4,"Unclosed Name,19900104')}, args=("--strict",),
           exit=2, message=r"1 row\(s\) quarantined; first: .*people\.csv line 5: malformed line: unclosed quote"),
    # a quoted field spanning lines: one record, and later rows keep their physical lines
    ingest("multiline-field", {"people.csv": people(r2='2,"Name\nover\nthree lines",19900102')}, rows=20),
    ingest("multiline-field-lines", {"people.csv": people(r2='2,"Name\nover\nthree lines",19900102', r5="5,Name 5")},
           args=("--strict",), exit=2, message=r"people\.csv line 8: malformed line: expected 3 fields, got 2"),
    ingest("multiline-field-in-ranges", {"people.csv": people(r2='2,"Name\nover lines",19900102', r15="15,x")},
           args=("--strict", "--set", "ingest.split_bytes=64"), exit=2,
           message=r"people\.csv line 17: malformed line: expected 3 fields, got 2"),
    ingest("impossible-dates", {"people.csv": people(r2="2,b,19900230", r3="3,c,19990229", r4="4,d,1990011")},
           quarantined={"wrong type: column dob expects date": 3}, rows=17),
    # every reason of the CSV reader in one file
    ingest("csv-reasons", {"people.csv": (people(r2="2,Name 2", r3='3,"Name 3,19900103', r5=",Name 5,19900105",
                                                 r6="6,Name 6,1990-01-06", r7="1,Name 7,19900107")
                                          .encode().replace(b"Name 4", b"Name \xff"))},
           quarantined={"malformed line: expected 3 fields, got 2": 1, "malformed line: unclosed quote": 1,
                        "undecodable bytes in column name": 1, "missing id": 1,
                        "wrong type: column dob expects date": 1, "duplicate id (first at ": 1}, rows=14),
    ingest("jsonl-reasons", {"people.jsonl": "\n".join(JSONL[:15] + [
        '{"id": "16", "name": ', '[16]', '{"id": "17", "name": {"first": "x"}, "dob": "19900101"}',
        '{"id": "", "name": "y"}', '{"id": "19", "dob": "1990-13-01"}', '{"id": "1", "name": "again"}',
        "", "   ", '{"id": "20", "name": "\\ud800"}']) + "\n"}, fmt="jsonl",
           quarantined={"malformed line": 2, "wrong type: column name holds a nested value": 1, "missing id": 1,
                        "wrong type: column dob expects date": 1, "duplicate id (first at ": 1,
                        "undecodable bytes in column name": 1}, rows=15),
    ingest("parquet-missing-id", {"people.parquet": PARQUET}, fmt="parquet", quarantined={"missing id": 1}, rows=20),
    # awkward files read fine
    ingest("excel-bom-crlf-blank-lines", {"people.csv": ("\ufeff" + people()).replace("\n", "\r\n") + "\r\n\n"},
           rows=20),
    ingest("bom-jsonl", {"people.jsonl": "\ufeff" + "\n".join(JSONL) + "\n\n"}, fmt="jsonl", rows=20),
    ingest("long-field", {"people.csv": people(r3="3," + "x" * (3 << 20) + ",19900103")}, rows=20),
    ingest("long-jsonl-line", {"people.jsonl": "\n".join(JSONL + [json.dumps({"id": "21", "name": "y" * (3 << 20)})])},
           fmt="jsonl", rows=21),
    ingest("tsv-quoted-tabs", {"people.tsv": people(r2='2,"Name\t2",19900102').replace(",", "\t")}, fmt="tsv",
           rows=20),
    ingest("directory", {"people/a.csv": people(), "people/more/b.csv": "id,name,dob\n21,x,19900101\n",
                         "people/_SUCCESS": ""}, path="people", rows=21),
    Case("records-source-without-rows", "ingest", files={"a.csv": people(), "b.csv": "id,name,dob\n"},
         config={"ingest": {"sources": [{"name": "a", "path": "{dir}/a.csv", "id_column": "id"},
                                        {"name": "b", "path": "{dir}/b.csv", "id_column": "id"}],
                            "attributes": ATTRIBUTES}}, rows=20),
    # files refused before any work, naming the file
    ingest("no-line-end", {"people.csv": "x" * (10 << 20)}, exit=2,
           message=r"people\.csv: the first line does not end within 1048576 bytes"),
    ingest("empty-file", {"people.csv": ""}, exit=2, message=r"empty file \(no header line\): .*people\.csv"),
    ingest("empty-jsonl", {"people.jsonl": "\n\n"}, fmt="jsonl", exit=2, message=r"empty file: .*people\.jsonl"),
    ingest("empty-parquet", {"people.parquet": b""}, fmt="parquet", exit=2,
           message=r"cannot read .*people\.parquet: Parquet file size is 0 bytes"),
    ingest("not-parquet", {"people.parquet": people()}, fmt="parquet", exit=2,
           message=r"cannot read .*people\.parquet: Parquet magic bytes not found"),
    ingest("truncated-parquet", {"people.parquet": PARQUET[:-40]}, fmt="parquet", exit=2,
           message=r"cannot read .*people\.parquet"),
    ingest("damaged-parquet-page", {"people.parquet": DAMAGED}, fmt="parquet", exit=2,
           message=r"cannot read .*people\.parquet: "),
    ingest("empty-directory", {"people/_SUCCESS": "", "people/.hidden.csv": people()}, path="people", exit=2,
           message=r"no data files under .*people"),
    ingest("missing-column", {"people.csv": "id,name\n1,x\n"}, exit=2,
           message=r"people\.csv: missing configured column\(s\) \['dob'\]; the file has \['id', 'name'\]"),
    ingest("header-unclosed-quote", {"people.csv": 'id,"name,dob\n1,x,19900101\n'}, exit=2,
           message=r"people\.csv: unclosed quote in the header line"),
    ingest("non-ascii-delimiter", {"people.csv": people().replace(",", "§")}, source={"delimiter": "§"}, exit=2,
           message=r"the delimiter must be one ASCII character, got '§'"),
]
