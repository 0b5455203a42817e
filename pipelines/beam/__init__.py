"""The Beam building blocks the pipelines share, each module named for what it holds.

``engine`` (refusing settings Beam cannot honour; running on the configured runner and
reading back its counters), ``pairs`` (Arrow tables sharded as Spark partitions them,
distinct pairs, rids, truth counting). Pipelines import these, ``transforms/`` and
``schemas/``; no module here imports a pipeline.
"""
