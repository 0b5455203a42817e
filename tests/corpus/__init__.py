"""The bad-input corpus: small inputs, bad configurations and faults, each with the outcome
sigil promises (tests/test_corpus.py runs them all).

Each module here lists ``CASES`` for one kind of reader: ``records`` (ingest), ``graphs``
(graph-ingest, communities' queries), ``configs`` (configuration files and --set),
``outputs`` (output locations), ``pairs`` (truth and labels). A later job's readers add a
module of their own.
"""
