"""A run's outputs as a notebook reads them: manifests, configuration, datasets, ground truth.

Every job writes its datasets and a ``manifest.json`` under ``<output>/<job>/``; the
manifest holds the whole configuration of the run. ``RunOutputs`` finds that directory,
reads its datasets into pandas with pyarrow (no Spark), and loads the ground truth through
``sigil.transforms.pairs``, the code the jobs score against, so a notebook's truth pairs
are the jobs' own.

Paths are taken as the jobs take them, which run from the repository root: an absolute
path or a URI as it is, a relative one from the repository root (the nearest directory at
or above the working directory holding ``pyproject.toml``, else the working directory).

Example
-------
>>> run = RunOutputs(default="out/demo")  # or $SIGIL_OUTPUT  # doctest: +SKIP
>>> run.manifest("block")["metrics"]["pair_completeness"]  # doctest: +SKIP
0.9998
>>> cands = run.read("block/candidates", ["id_a", "id_b", "jaccard"])  # doctest: +SKIP
>>> truth = run.truth()  # KEYS, oriented like the candidates  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.dataset as ds

from sigil.schemas.config import SigilConfig
from sigil.transforms.pairs import KEYS, entity_of, entity_pairs, read_pairs

#: the environment variable naming the run directory a notebook opens
ENV = "SIGIL_OUTPUT"


def repo_root(start: Path | None = None) -> Path:
    """The nearest directory at or above ``start`` (default: the working directory)
    holding ``pyproject.toml``, else ``start``."""
    start = (start or Path.cwd()).resolve()
    return next((d for d in (start, *start.parents) if (d / "pyproject.toml").is_file()), start)


def among(pairs: pd.DataFrame, other: pd.DataFrame | None) -> np.ndarray:
    """Whether each pair of ``pairs`` is one of ``other``'s, by ``KEYS`` (both oriented).

    Parameters
    ----------
    pairs, other : pandas.DataFrame
        Pairs with ``KEYS`` columns, e.g. candidates and ``RunOutputs.truth()``; ``other``
        None (no truth) has no pair.

    Returns
    -------
    numpy.ndarray
        bool, one per row of ``pairs``.

    Example
    -------
    >>> pairs = pd.DataFrame([["s", "1", "s", "2"], ["s", "1", "s", "3"]], columns=KEYS)
    >>> among(pairs, pairs.iloc[:1]).tolist()
    [True, False]
    """
    if other is None:
        return np.zeros(len(pairs), bool)
    return pd.MultiIndex.from_frame(pairs[KEYS]).isin(pd.MultiIndex.from_frame(other[KEYS]))


class RunOutputs:
    """The outputs of one run: the directory ``<output>`` that its jobs wrote under.

    Parameters
    ----------
    path : str or os.PathLike, optional
        The run directory; default ``$SIGIL_OUTPUT``, else ``default``. Relative paths are
        taken from the repository root.
    default : str
        The run directory when neither ``path`` nor ``$SIGIL_OUTPUT`` is given.

    Example
    -------
    >>> import tempfile
    >>> run = RunOutputs(tempfile.mkdtemp())
    >>> run.manifest("block"), run.has("block/candidates")
    ({}, False)
    >>> run.read("block/candidates", ["id_a", "id_b"]).columns.tolist()
    ['id_a', 'id_b']
    """

    def __init__(self, path: str | os.PathLike | None = None, default: str = "out/demo"):
        self.root = repo_root()
        self.path = Path(self.resolve(path if path is not None else os.environ.get(ENV) or default))

    def __repr__(self) -> str:
        return f"RunOutputs({str(self.path)!r})"

    def resolve(self, path: str | os.PathLike) -> str:
        """A path as the jobs use it: a URI or an absolute path as it is, a relative path
        from the repository root (``~`` expanded)."""
        path = os.fspath(path)
        if "://" in path:
            return path
        return str(self.root / Path(path).expanduser())  # an absolute right side replaces the root

    def json(self, name: str) -> dict:
        """The JSON file ``name`` under the run (e.g. ``match/model.json``)."""
        return json.loads((self.path / name).read_text())

    def manifest(self, job: str) -> dict:
        """The manifest of ``job`` (e.g. ``"block"``), or ``{}`` when the job has not run here."""
        file = self.path / job / "manifest.json"
        return json.loads(file.read_text()) if file.is_file() else {}

    @property
    def config(self) -> SigilConfig:
        """The configuration of the latest job run here, as its manifest recorded it."""
        files = list(self.path.glob("*/manifest.json"))
        if not files:
            raise FileNotFoundError(f"no job manifest under {self.path}: not the output of a sigil run "
                                    f"(set {ENV} to one)")
        manifests = {f: json.loads(f.read_text()) for f in files}
        latest = max(files, key=lambda f: (manifests[f].get("started", ""), f.stat().st_mtime))  # started: seconds
        return SigilConfig.model_validate(manifests[latest]["config"])

    def dataset(self, dataset: str | os.PathLike) -> ds.Dataset | None:
        """The Parquet dataset ``dataset`` (a name under the run such as
        ``"block/candidates"``, or an absolute path), or None when it holds no file."""
        return ds.dataset(self.path / dataset, format="parquet") if self.has(dataset) else None

    def has(self, dataset: str | os.PathLike) -> bool:
        """Whether the dataset ``dataset`` (as for ``dataset``) holds at least one Parquet file."""
        path = self.path / dataset
        return path.is_file() or (path.is_dir() and any(path.rglob("*.parquet")))

    def read(self, dataset: str | os.PathLike, columns: list[str] | None = None, filter=None) -> pd.DataFrame:
        """The dataset ``dataset`` (as for ``dataset``) as a DataFrame.

        Parameters
        ----------
        dataset : str or os.PathLike
            A name under the run, e.g. ``"block/candidates"``, or an absolute path.
        columns : list of str, optional
            The columns to read; those the dataset lacks are left out (e.g. ``tokens``,
            kept only by some runs).
        filter : pyarrow.dataset.Expression, optional
            Rows to read, e.g. ``ds.field("id").isin(ids)``.

        Returns
        -------
        pandas.DataFrame
            The rows; an empty frame with ``columns`` when the dataset is absent or empty.
        """
        found = self.dataset(dataset)
        if found is None:
            return pd.DataFrame(columns=columns or [])
        if columns is not None:
            columns = [c for c in columns if c in found.schema.names]
        return found.to_table(columns=columns, filter=filter).to_pandas()

    def records_path(self) -> str:
        """The ingested records that the run's blocking read: ``block.input`` when configured,
        else ``<run>/ingest/records``."""
        config = self.config
        given = config.block.input if config.block else None
        return self.resolve(given) if given else str(self.path / "ingest" / "records")

    def records(self, columns: list[str] | None = None, filter=None) -> pd.DataFrame:
        """``read`` of the run's records (``records_path``)."""
        return self.read(self.records_path(), columns, filter)

    def sources(self) -> list[str]:
        """The sources of the run's records, sorted, as the jobs list them (from the records,
        else from the configured ``ingest.sources``)."""
        records = self.dataset(self.records_path())
        if records is not None:
            return sorted(pc.unique(records.to_table(columns=["source"])["source"]).to_pylist())
        config = self.config
        return sorted(s.name for s in config.ingest.sources) if config.ingest else []

    def truth(self) -> pd.DataFrame | None:
        """The ground-truth pairs (``KEYS``, oriented like candidates, each once) that the
        jobs scored the run against, or None when it had none.

        From the ``truth.path`` file (pairs without source columns name the single source in
        ``dedupe`` mode, the first and second in ``link`` mode), or from ``truth.id_regex``
        over the run's records (``records_path``): the same rules as the jobs', by the same
        code (``sigil.transforms.pairs``). A truth file not found on this machine (a run
        written elsewhere) gives None with a warning.

        Returns
        -------
        pandas.DataFrame or None
            Columns ``KEYS`` (strings).
        """
        config = self.config
        truth, mode = config.truth, config.er_mode()
        if truth is None:
            return None
        if truth.id_regex is not None:
            records = self.dataset(self.records_path())
            if records is None:
                raise FileNotFoundError(f"truth.id_regex needs the run's records; none at {self.records_path()}")
            records = records.to_table(columns=["source", "id"])
            pairs = entity_pairs(records.append_column("entity", entity_of(records["id"], truth.id_regex)), mode)
        else:
            path = self.resolve(truth.path)
            if "://" not in path and not Path(path).exists():
                warnings.warn(f"truth file {path} not found here: no truth pairs", stacklevel=2)
                return None
            pairs = read_pairs(path, truth.format, mode, self.sources(), truth.id_columns)
        return pairs.select(KEYS).to_pandas()

