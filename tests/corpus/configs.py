"""Bad configurations: each fails before any work, naming the file or key and what is allowed."""

from corpus.case import Case

SOURCE = {"sources": [{"name": "s", "path": "{dir}/people.csv", "id_column": "id"}],
          "attributes": [{"name": "name"}, {"name": "dob", "type": "date"}]}
PEOPLE = "id,name,dob\n1,Ann,19900101\n"


def config_case(name: str, message: str, job: str = "ingest", args: tuple = (), **fields) -> Case:
    return Case(name=f"config-{name}", job=job, files={"people.csv": PEOPLE}, args=args, exit=2, message=message,
                **fields)


CASES = [
    config_case("yaml-syntax", r"conf\.yaml: not valid YAML: .*\(line 4, column 1\)", conf_text="output: x\ningest:\n  - [1, 2\n"),
    config_case("yaml-tab", r"conf\.yaml: not valid YAML", conf_text="output: x\ningest:\n\tsources: []\n"),
    config_case("python-tag", r"conf\.yaml: not valid YAML: could not determine a constructor for the tag "
                r"'tag:yaml.org,2002:python/object/apply:os.system'",
                conf_text="output: !!python/object/apply:os.system ['echo owned']\n"),
    config_case("not-utf8", r"conf\.yaml: not UTF-8 text", conf_text="output: caf\udce9\n"),
    config_case("top-level-list", r"conf\.yaml: the top level must be a mapping", conf_text="- output: x\n"),
    config_case("extends-number", r"extends must name a configuration file, got 5", conf_text="extends: 5\noutput: x\n"),
    config_case("extends-missing", r"configuration file not found: .*nowhere\.yaml",
                conf_text="extends: nowhere.yaml\noutput: x\n"),
    config_case("extends-cycle", r"'extends' forms a cycle", conf_text="extends: conf.yaml\noutput: x\n"),
    config_case("unknown-key", r"block\.lsh\.threshhold: unknown key",
                config={"ingest": SOURCE, "block": {"lsh": {"threshhold": 0.4}}}),
    config_case("bad-literal", r"block\.mode: got 'both'; allowed: 'dedupe' or 'link'",
                config={"ingest": SOURCE, "block": {"mode": "both"}}),
    config_case("out-of-range", r"block\.lsh\.threshold: Input should be less than 1",
                config={"ingest": SOURCE, "block": {"lsh": {"threshold": 1.5}}}),
    config_case("output-empty", r"output: must name a directory below the filesystem root, got ''",
                config={"ingest": SOURCE, "output": ""}),
    config_case("output-root", r"output: must name a directory below the filesystem root, got '/'",
                config={"ingest": SOURCE, "output": "/"}),
    config_case("output-uri-root", r"output: must name a directory below the filesystem root",
                config={"ingest": SOURCE, "output": "hdfs://namenode:8020/"}),
    config_case("driver-memory", r"spark\.driver_memory: got 'lots'",
                config={"ingest": SOURCE, "spark": {"driver_memory": "lots"}}),
    config_case("date-format", r"ingest\.attributes\.1\.date_format: not a date format \('Q' is a bad directive",
                config={"ingest": {**SOURCE, "attributes": [{"name": "name"},
                                                             {"name": "dob", "type": "date", "date_format": "%Q"}]}}),
    config_case("missing-section", r"the configuration has no 'ingest' section", config={}),
    config_case("missing-output", r"output: Field required", conf_text="spark: {}\n"),
    config_case("set-yaml", r"--set block\.lsh=\[1,: not a YAML value",
                config={"ingest": SOURCE}, args=("--set", "block.lsh=[1,")),
    config_case("set-no-equals", r"--set expects key=value, got 'block\.mode'",
                config={"ingest": SOURCE}, args=("--set", "block.mode")),
    config_case("set-into-a-value", r"spark\.master: Input should be a valid string",
                config={"ingest": SOURCE}, args=("--set", "spark.master.x=1")),
    config_case("set-unknown-key", r"ingest\.nope: unknown key", config={"ingest": SOURCE},
                args=("--set", "ingest.nope=1")),
    config_case("conf-missing", r"configuration file not found: .*absent\.yaml", config={"ingest": SOURCE},
                args=("--conf", "{dir}/absent.yaml")),
    config_case("duplicate-source", r"ingest\.sources: source names must be unique", config={"ingest": {
        **SOURCE, "sources": SOURCE["sources"] * 2}}),
    config_case("block-unknown-column", r"block\.tokenizer\.columns.*nope", job="block",
                config={"ingest": SOURCE, "block": {"tokenizer": {"columns": ["nope"]}}}),
]
