"""The Spark building blocks the jobs share, each module named for what it holds.

``session`` (the session factory and its Hadoop filesystem), ``io`` (Parquet with exact
Arrow schemas, written by the tasks), ``parse`` (input files parsed by parallel tasks),
``lookup`` (records held by the Python workers, found by key), ``pairs`` (record pairs:
ground truth, labels, joins with the records, quality), ``buckets`` (LSH buckets and their
statistics), ``components`` (distributed connected components), ``expectations`` (data
quality of written datasets). Jobs import these, ``transforms/`` and ``schemas/``; no
module here imports a job.
"""
