"""transforms/xxhash.py against Spark's own xxhash64."""

import random

import pyarrow as pa
from pyspark.sql import functions as F

from sigil.transforms.xxhash import xxhash64


def test_xxhash64_equals_sparks_on_unicode_nulls_and_every_length(spark):
    rng = random.Random(7)
    alphabet = "abcXYZ019 -_é漢🙂"  # 1- to 4-byte UTF-8 characters

    def column():
        return [None if rng.random() < 0.1 else "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 70)))
                for _ in range(2000)]

    a, b = column(), column()
    df = spark.createDataFrame(list(zip(a, b)), "a string, b string")
    want = [r[0] for r in df.select(F.xxhash64("a", "b")).collect()]  # driver-ok: a test of 2,000 rows
    assert xxhash64([pa.array(a, pa.string()), pa.array(b, pa.string())]).tolist() == want
    sliced = pa.array(a, pa.large_string()).slice(100, 50)  # an offset array reads the right bytes
    assert xxhash64([sliced]).tolist() == [r[0] for r in df.select(F.xxhash64("a")).collect()[100:150]]  # driver-ok


def test_xxhash64_of_longs_and_ints_equals_sparks(spark):
    rng = random.Random(3)
    rows = [(rng.randint(-2**63, 2**63 - 1), rng.randint(-2**31, 2**31 - 1)) for _ in range(500)] + [(0, 0), (-1, -1)]
    df = spark.createDataFrame(rows, "x long, k int")
    want = [r[0] for r in df.select(F.xxhash64("x", "k", F.lit(7))).collect()]  # driver-ok: a test of 502 rows
    x, k = (pa.array([r[i] for r in rows], t) for i, t in ((0, pa.int64()), (1, pa.int32())))
    assert xxhash64([x, k, pa.array([7] * len(rows), pa.int32())]).tolist() == want
