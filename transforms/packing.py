"""Fixed-width numeric vectors packed into Arrow binary values, and back, without copies.

Engines move signatures and token sets between tasks as plain binary values (Spark has
no unsigned integers and no fixed-size lists); these helpers convert between that form,
numpy arrays, and the list types of the published data contracts.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def pack_rows(matrix: np.ndarray) -> pa.BinaryArray:
    """One binary value per row of a 2-d array (its bytes, little-endian)."""
    matrix = np.ascontiguousarray(matrix)
    n, width = matrix.shape[0], matrix.shape[1] * matrix.itemsize
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    return pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(matrix)])


def pack_ragged(values: np.ndarray, offsets: np.ndarray) -> pa.BinaryArray:
    """One binary value per row ``values[offsets[i]:offsets[i+1]]``."""
    values = np.ascontiguousarray(values)
    byte_offsets = (np.asarray(offsets, dtype=np.int64) * values.itemsize).astype(np.int32)
    return pa.Array.from_buffers(pa.binary(), len(offsets) - 1,
                                 [None, pa.py_buffer(byte_offsets), pa.py_buffer(values)])


def unpack_ragged(packed: pa.Array, dtype) -> tuple[np.ndarray, np.ndarray]:
    """(values, element offsets) of binary values holding ``dtype`` numbers."""
    if isinstance(packed, pa.ChunkedArray):
        packed = packed.combine_chunks()
    if packed.type == pa.large_binary():
        packed = packed.cast(pa.binary())
    itemsize = np.dtype(dtype).itemsize
    _, offsets, data = packed.buffers()[:3]
    offs = np.frombuffer(offsets, np.int32, len(packed) + 1, packed.offset * 4).astype(np.int64)
    raw = np.frombuffer(data, np.uint8, offs[-1] - offs[0], offs[0]) if data is not None else np.zeros(0, np.uint8)
    return raw.view(dtype), (offs - offs[0]) // itemsize


def unpack_rows(packed: pa.Array, dtype, width: int) -> np.ndarray:
    """2-d array (rows, width) of binary values each holding ``width`` ``dtype`` numbers."""
    values, _ = unpack_ragged(packed, dtype)
    return values.reshape(-1, width)


def to_list_array(packed: pa.Array, to: pa.DataType) -> pa.Array:
    """Packed binary -> a ``fixed_size_list`` or ``list`` Arrow array of ``to.value_type``."""
    values, offsets = unpack_ragged(packed, to.value_type.to_pandas_dtype())
    flat = pa.array(values, to.value_type)
    if pa.types.is_fixed_size_list(to):
        return pa.FixedSizeListArray.from_arrays(flat, to.list_size)
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), flat)


def from_list_array(lists: pa.Array, dtype) -> pa.BinaryArray:
    """A ``list``/``fixed_size_list`` Arrow array -> packed binary values."""
    if isinstance(lists, pa.ChunkedArray):
        lists = lists.combine_chunks()
    offsets = np.asarray(lists.offsets if not pa.types.is_fixed_size_list(lists.type)
                         else np.arange(len(lists) + 1) * lists.type.list_size, dtype=np.int64)
    values = lists.flatten().to_numpy(zero_copy_only=False).astype(dtype, copy=False)
    return pack_ragged(values, offsets - offsets[0])
