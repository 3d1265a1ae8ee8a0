"""Write TensorFlow V2 checkpoints (tensor bundles) from NumPy arrays, without TensorFlow.

The inverse of :mod:`lmnet.weights.tf_checkpoint` (format: ``docs/tf_checkpoint_format.md``):
one data shard ``P.data-00000-of-00001`` with the tensors back to back, and ``P.index``, a table
with one data block (the header under key ``""``, then one ``BundleEntryProto`` per variable in
sorted key order), an empty metaindex block, an index block and the footer; every block carries
its masked CRC-32C, every entry the masked CRC-32C of its tensor. Plus the ``checkpoint`` state file
that ``tf.train.get_checkpoint_state`` reads.

It lets lmnet build checkpoints in the published format where TensorFlow is not installed (the
notebooks' published-model section, tests of the reader's error paths); TensorFlow itself reads
them (``tests/test_pretrained.py``).
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Mapping

import numpy as np

from lmnet import atomic_io
from lmnet.weights.crc32c import crc32c, mask
from lmnet.weights.tf_checkpoint import DTYPES, TABLE_MAGIC, shard_path

_ENUM_OF = {np.dtype(v): k for k, v in DTYPES.items()}


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field(number: int, value: int | bytes) -> bytes:
    if isinstance(value, bytes):
        return _varint(number << 3 | 2) + _varint(len(value)) + value
    return _varint(number << 3) + _varint(value)


def _entry(dtype: int, shape: tuple[int, ...], offset: int, size: int, crc: int) -> bytes:
    shape_msg = b"".join(_field(2, _field(1, int(d))) for d in shape)
    msg = _field(1, dtype) + _field(2, shape_msg)
    if offset:
        msg += _field(4, offset)
    if size:
        msg += _field(5, size)
    return msg + _varint(6 << 3 | 5) + struct.pack("<I", mask(crc))


def _block(entries: list[tuple[bytes, bytes]]) -> bytes:
    """Entries without key sharing and one restart point (valid for any LevelDB reader)."""
    body = b"".join(_varint(0) + _varint(len(k)) + _varint(len(v)) + k + v for k, v in entries)
    return body + struct.pack("<II", 0, 1)


def _with_trailer(block: bytes) -> bytes:
    return block + b"\x00" + struct.pack("<I", mask(crc32c(block + b"\x00")))


def write_checkpoint(prefix: str | Path, tensors: Mapping[str, np.ndarray]) -> Path:
    """Write ``tensors`` ``{name: array}`` (numeric dtypes) as the V2 checkpoint ``prefix``; returns it."""
    prefix = Path(prefix)
    data, entries, offset = [], [], 0
    for name in sorted(tensors, key=lambda n: n.encode("utf-8")):
        arr = np.array(tensors[name], order="C")  # (ascontiguousarray would make scalars 1-d)
        arr = arr.astype(arr.dtype.newbyteorder("<"))
        if arr.dtype.newbyteorder("=") not in _ENUM_OF:
            raise ValueError(f"tensor {name!r}: dtype {arr.dtype} cannot be stored in a checkpoint")
        raw = arr.tobytes()
        entries.append((name.encode("utf-8"), _entry(_ENUM_OF[arr.dtype.newbyteorder("=")], arr.shape, offset,
                                                     len(raw), crc32c(raw))))
        data.append(raw)
        offset += len(raw)
    header = _field(1, 1) + _field(3, _field(1, 1))  # num_shards 1, little endian (default), version producer 1
    table = bytearray()
    data_block = _with_trailer(_block([(b"", header)] + entries))
    data_handle = _varint(0) + _varint(len(data_block) - 5)
    table += data_block
    meta_block = _with_trailer(_block([]))
    meta_handle = _varint(len(table)) + _varint(len(meta_block) - 5)
    table += meta_block
    last_key = entries[-1][0] if entries else b""
    index_block = _with_trailer(_block([(last_key, data_handle)]))
    index_handle = _varint(len(table)) + _varint(len(index_block) - 5)
    table += index_block
    footer = (meta_handle + index_handle).ljust(40, b"\x00") + struct.pack("<Q", TABLE_MAGIC)
    table += footer
    atomic_io.write_bytes(shard_path(prefix, 0, 1), b"".join(data))
    atomic_io.write_bytes(Path(f"{prefix}.index"), bytes(table))
    atomic_io.write_text(prefix.parent / "checkpoint", f'model_checkpoint_path: "{prefix.name}"\n'
                                                       f'all_model_checkpoint_paths: "{prefix.name}"\n')
    return prefix
