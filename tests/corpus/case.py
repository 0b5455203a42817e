"""One corpus case: the files it writes, the configuration, the command, and the outcome."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Case:
    """A run of ``sigil <job> --conf <case>/conf.yaml`` in a fresh folder ``<case>``.

    ``files`` are written into the folder first (str as UTF-8, bytes as they are). In
    ``config`` (a YAML tree) and ``args``, ``{dir}`` stands for the folder; ``output``
    defaults to ``{dir}/out``. ``conf_text`` replaces the configuration file with raw text
    (for YAML that does not parse). ``before`` are jobs run first, which must succeed.

    The outcome: ``exit`` 0 with ``quarantined`` (reason prefix -> rows) and ``rows`` (the
    rows of the job's main output, when given), every input row accounted for (inputs =
    outputs + quarantined in the manifest); or ``exit`` 2 with one message matching the
    regular expression ``message`` and no traceback.
    """

    name: str
    job: str
    files: dict[str, str | bytes] = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    args: tuple[str, ...] = ()
    exit: int = 0
    message: str | None = None
    quarantined: dict[str, int] = field(default_factory=dict)
    rows: int | None = None
    before: tuple[str, ...] = ()
    conf_text: str | None = None

    def __post_init__(self):
        assert (self.exit == 2) == (self.message is not None), f"{self.name}: exit 2 goes with a message"
