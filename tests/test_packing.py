import numpy as np
import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from sigil.transforms.packing import (from_list_array, pack_ragged, pack_rows, to_list_array, unpack_ragged,
                                      unpack_rows)


@given(st.lists(st.lists(st.integers(0, 2**64 - 1), max_size=6), max_size=8))
def test_ragged_round_trip(groups):
    values = np.array([v for g in groups for v in g], dtype=np.uint64)
    offsets = np.cumsum([0] + [len(g) for g in groups])
    packed = pack_ragged(values, offsets)
    for arr in (packed, packed.slice(1) if len(groups) else packed):
        vals, offs = unpack_ragged(arr, np.uint64)
        start = len(groups) - len(arr)
        assert [vals[offs[i]:offs[i + 1]].tolist() for i in range(len(arr))] == groups[start:]
    lists = to_list_array(packed, pa.list_(pa.uint64()))
    assert lists.to_pylist() == groups
    assert from_list_array(lists, np.uint64).equals(packed)


def test_rows_round_trip_to_fixed_size_lists():
    m = np.arange(12, dtype=np.uint32).reshape(3, 4)
    packed = pack_rows(m)
    assert np.array_equal(unpack_rows(packed, np.uint32, 4), m)
    assert np.array_equal(unpack_rows(packed.slice(1), np.uint32, 4), m[1:])
    fixed = to_list_array(packed, pa.list_(pa.uint32(), 4))
    assert fixed.type == pa.list_(pa.uint32(), 4) and fixed.to_pylist() == m.tolist()
