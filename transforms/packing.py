"""Fixed-width numeric vectors packed into Arrow binary values, and back, without copies.

Engines move signatures and token sets between tasks as plain binary values (Spark has
no unsigned integers and no fixed-size lists); these helpers convert between that form,
numpy arrays, and the list types of the published data contracts.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def pack_rows(matrix: np.ndarray) -> pa.BinaryArray:
    """One binary value per row of a 2-d array: the row's bytes, in machine (little-endian) order.

    Parameters
    ----------
    matrix : numpy.ndarray
        Shape ``(n, width)``, any fixed-width numeric dtype.

    Returns
    -------
    pyarrow.BinaryArray
        n values of ``width * itemsize`` bytes each; the buffer is shared, not copied,
        when ``matrix`` is C-contiguous.

    Examples
    --------
    >>> import numpy as np
    >>> pack_rows(np.array([[1, 2], [3, 4]], np.uint16)).to_pylist()
    [b'\\x01\\x00\\x02\\x00', b'\\x03\\x00\\x04\\x00']
    """
    matrix = np.ascontiguousarray(matrix)
    n, width = matrix.shape[0], matrix.shape[1] * matrix.itemsize
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    return pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(matrix)])


def pack_ragged(values: np.ndarray, offsets: np.ndarray) -> pa.BinaryArray:
    """One binary value per row ``values[offsets[i]:offsets[i+1]]``.

    Parameters
    ----------
    values : numpy.ndarray
        All rows' numbers, concatenated.
    offsets : numpy.ndarray
        ``rows + 1`` element positions into ``values``, from 0.

    Returns
    -------
    pyarrow.BinaryArray
        One value per row (empty for an empty row), sharing ``values``' buffer.

    Examples
    --------
    >>> import numpy as np
    >>> packed = pack_ragged(np.array([7, 8, 9], np.uint8), np.array([0, 2, 2, 3]))
    >>> packed.to_pylist()
    [b'\\x07\\x08', b'', b'\\t']
    """
    values = np.ascontiguousarray(values)
    byte_offsets = (np.asarray(offsets, dtype=np.int64) * values.itemsize).astype(np.int32)
    return pa.Array.from_buffers(pa.binary(), len(offsets) - 1,
                                 [None, pa.py_buffer(byte_offsets), pa.py_buffer(values)])


def unpack_ragged(packed: pa.Array, dtype) -> tuple[np.ndarray, np.ndarray]:
    """The numbers held by packed binary values, and where each value starts.

    Parameters
    ----------
    packed : pyarrow.Array or pyarrow.ChunkedArray
        Binary (or large binary) values, each holding whole ``dtype`` numbers.
    dtype : numpy.dtype or type
        The numbers' dtype.

    Returns
    -------
    values : numpy.ndarray
        All numbers, concatenated (a view of the Arrow buffer where possible).
    offsets : numpy.ndarray
        int64, ``len(packed) + 1`` element positions: value i holds
        ``values[offsets[i]:offsets[i+1]]``.

    Examples
    --------
    >>> import numpy as np
    >>> values, offsets = unpack_ragged(pack_ragged(np.array([5, 6, 7], np.uint32), np.array([0, 1, 3])), np.uint32)
    >>> values.tolist(), offsets.tolist()
    ([5, 6, 7], [0, 1, 3])
    """
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
    """A 2-d array of binary values each holding ``width`` numbers: ``pack_rows`` undone.

    Parameters
    ----------
    packed : pyarrow.Array or pyarrow.ChunkedArray
        Binary values of ``width * itemsize`` bytes each.
    dtype : numpy.dtype or type
        The numbers' dtype.
    width : int
        Numbers per value.

    Returns
    -------
    numpy.ndarray
        Shape ``(len(packed), width)``.

    Examples
    --------
    >>> import numpy as np
    >>> sig = np.array([[1, 2, 3], [4, 5, 6]], np.uint32)
    >>> unpack_rows(pack_rows(sig), np.uint32, 3).tolist()
    [[1, 2, 3], [4, 5, 6]]
    """
    values, _ = unpack_ragged(packed, dtype)
    return values.reshape(-1, width)


def to_list_array(packed: pa.Array, to: pa.DataType) -> pa.Array:
    """Packed binary values as the list type of a data contract.

    Parameters
    ----------
    packed : pyarrow.Array or pyarrow.ChunkedArray
        Binary values holding numbers of ``to.value_type``.
    to : pyarrow.DataType
        A ``fixed_size_list`` (every value then holds ``list_size`` numbers) or ``list``
        type.

    Returns
    -------
    pyarrow.Array
        One list per value.

    Examples
    --------
    >>> import numpy as np
    >>> import pyarrow as pa
    >>> packed = pack_rows(np.array([[1, 2], [3, 4]], np.uint32))
    >>> to_list_array(packed, pa.list_(pa.uint32(), 2)).to_pylist()
    [[1, 2], [3, 4]]
    """
    values, offsets = unpack_ragged(packed, to.value_type.to_pandas_dtype())
    flat = pa.array(values, to.value_type)
    if pa.types.is_fixed_size_list(to):
        return pa.FixedSizeListArray.from_arrays(flat, to.list_size)
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), flat)


def from_list_array(lists: pa.Array, dtype) -> pa.BinaryArray:
    """A ``list`` or ``fixed_size_list`` Arrow array as packed binary values.

    Parameters
    ----------
    lists : pyarrow.Array or pyarrow.ChunkedArray
        Lists of numbers, without null lists or null elements.
    dtype : numpy.dtype or type
        The dtype the numbers are packed as.

    Returns
    -------
    pyarrow.BinaryArray
        One value per list.

    Examples
    --------
    >>> import numpy as np
    >>> import pyarrow as pa
    >>> packed = from_list_array(pa.array([[1, 2], [], [3]], pa.list_(pa.int64())), np.uint8)
    >>> packed.to_pylist()
    [b'\\x01\\x02', b'', b'\\x03']
    """
    if isinstance(lists, pa.ChunkedArray):
        lists = lists.combine_chunks()
    offsets = np.asarray(lists.offsets if not pa.types.is_fixed_size_list(lists.type)
                         else np.arange(len(lists) + 1) * lists.type.list_size, dtype=np.int64)
    values = lists.flatten().to_numpy(zero_copy_only=False).astype(dtype, copy=False)
    return pack_ragged(values, offsets - offsets[0])


def to_contract(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """Cast a batch from an engine's types (Spark's, Beam's) to the dataset's: binary-packed unsigned vectors
    become fixed-size or variable lists of unsigned ints, other columns are cast, and a
    nullable column the batch lacks is written as nulls."""
    columns = []
    for field in schema:
        if field.nullable and field.name not in batch.schema.names:
            columns.append(pa.nulls(batch.num_rows, field.type))
            continue
        col = batch.column(field.name)
        if pa.types.is_binary(col.type) and (pa.types.is_fixed_size_list(field.type) or pa.types.is_list(field.type)):
            col = to_list_array(col, field.type)
        columns.append(col.cast(field.type) if col.type != field.type else col)
    return pa.RecordBatch.from_arrays(columns, schema=schema)
