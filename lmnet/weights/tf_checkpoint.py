"""Read TensorFlow V2 checkpoints ("tensor bundles") without TensorFlow.

A V2 checkpoint with prefix ``P`` is ``P.index`` plus data shards ``P.data-00000-of-0000N``
(``P.meta`` holds the graph and is not needed). Format details: ``docs/tf_checkpoint_format.md``.

- ``P.index`` is a LevelDB-format table (the SSTable of TensorFlow's ``lib/io/table``): data blocks
  of prefix-compressed ``(key, value)`` entries with restart points, an index block mapping the last
  key of each data block to its ``BlockHandle`` (varint offset, varint size), a metaindex block and a
  48-byte footer (two handles, padding, the little-endian magic ``0xdb4775248b80fb57``). Every block
  is followed by a 1-byte compression type (0 = none) and the masked CRC-32C of block + type byte.
- The entry of key ``""`` is a ``BundleHeaderProto`` (num_shards, endianness, version); every other
  key is a variable name whose value is a ``BundleEntryProto`` (dtype, shape, shard_id, offset,
  size, masked CRC-32C of the tensor bytes). Tensors are raw, C order, in the header's byte order.

:func:`read_checkpoint` returns ``{name: np.ndarray}`` for the requested variables after checking
every block and tensor checksum. Problems raise :class:`~lmnet.errors.CorruptFileError` (or
:class:`~lmnet.errors.DataError` for missing files) naming the file, the variable and the cause.
"""

from __future__ import annotations

import contextlib
import struct
from pathlib import Path
from typing import Iterable

import numpy as np

from lmnet.errors import CorruptFileError, DataError
from lmnet.weights.crc32c import crc32c, unmask

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48
BLOCK_TRAILER_SIZE = 5
# TensorFlow DataType enum → NumPy dtype (the numeric types a checkpoint of weights can hold).
DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 5: np.int16, 6: np.int8, 9: np.int64,
          10: np.bool_, 17: np.uint16, 19: np.float16, 22: np.uint32, 23: np.uint64}
DTYPE_NAMES = {7: "string", 8: "complex64", 14: "bfloat16", 18: "complex128", 20: "resource", 21: "variant"}


# -- protobuf wire format (only what these two messages use) --------------------------------------
def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 10 bytes")


def parse_fields(buf: bytes) -> list[tuple[int, int, object]]:
    """Protobuf message bytes → ``[(field_number, wire_type, value)]``: varints as int, fixed32 /
    fixed64 as int, length-delimited as bytes (groups are not used by these messages)."""
    out, pos = [], 0
    while pos < len(buf):
        tag, pos = _varint(buf, pos)
        field, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            if pos + 8 > len(buf):
                raise ValueError("truncated fixed64")
            value, pos = struct.unpack_from("<Q", buf, pos)[0], pos + 8
        elif wire == 2:
            n, pos = _varint(buf, pos)
            if pos + n > len(buf):
                raise ValueError("truncated length-delimited field")
            value, pos = bytes(buf[pos:pos + n]), pos + n
        elif wire == 5:
            if pos + 4 > len(buf):
                raise ValueError("truncated fixed32")
            value, pos = struct.unpack_from("<I", buf, pos)[0], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        out.append((field, wire, value))
    return out


def _signed64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def parse_header(buf: bytes) -> dict:
    """``BundleHeaderProto`` → ``{"num_shards", "endianness" (0 little, 1 big), "version"}``."""
    h = {"num_shards": 0, "endianness": 0, "version": 0}
    for field, _, value in parse_fields(buf):
        if field == 1:
            h["num_shards"] = int(value)
        elif field == 2:
            h["endianness"] = int(value)
        elif field == 3:
            h["version"] = next((int(v) for f, _, v in parse_fields(value) if f == 1), 0)
    return h


def parse_entry(buf: bytes) -> dict:
    """``BundleEntryProto`` → ``{"dtype", "shape", "shard_id", "offset", "size", "crc32c", "slices"}``."""
    e = {"dtype": 0, "shape": [], "shard_id": 0, "offset": 0, "size": 0, "crc32c": None, "slices": 0}
    for field, _, value in parse_fields(buf):
        if field == 1:
            e["dtype"] = int(value)
        elif field == 2:  # TensorShapeProto: repeated Dim dim = 2 {int64 size = 1}; unknown_rank = 3
            for f, _, v in parse_fields(value):
                if f == 2:
                    e["shape"].append(next((_signed64(int(s)) for g, _, s in parse_fields(v) if g == 1), 0))
        elif field in (3, 4, 5):
            e[{3: "shard_id", 4: "offset", 5: "size"}[field]] = int(value)
        elif field == 6:
            e["crc32c"] = int(value)
        elif field == 7:
            e["slices"] += 1
    return e


# -- the table (.index) ---------------------------------------------------------------------------
def _handle(buf: bytes, pos: int) -> tuple[tuple[int, int], int]:
    offset, pos = _varint(buf, pos)
    size, pos = _varint(buf, pos)
    return (offset, size), pos


def _block(data: bytes, handle: tuple[int, int], path: Path) -> bytes:
    offset, size = handle
    end = offset + size + BLOCK_TRAILER_SIZE
    if end > len(data):
        raise CorruptFileError(path, f"truncated: a block ends at byte {end}, the file has {len(data)}")
    contents, kind = data[offset:offset + size], data[offset + size]
    stored = struct.unpack_from("<I", data, offset + size + 1)[0]
    if crc32c(data[offset:offset + size + 1]) != unmask(stored):
        raise CorruptFileError(path, f"corrupt: checksum mismatch in the block at byte {offset}")
    if kind != 0:
        raise CorruptFileError(path, f"block at byte {offset} uses compression type {kind}; only "
                                     "uncompressed tables (what TensorFlow writes for checkpoints) are supported")
    return contents


def _entries(block: bytes) -> Iterable[tuple[bytes, bytes]]:
    if len(block) < 4:
        raise ValueError("block shorter than its restart count")
    n_restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    limit = len(block) - 4 - 4 * n_restarts
    if limit < 0:
        raise ValueError("restart array larger than the block")
    pos, key = 0, b""
    while pos < limit:
        shared, pos = _varint(block, pos)
        non_shared, pos = _varint(block, pos)
        value_len, pos = _varint(block, pos)
        if shared > len(key) or pos + non_shared + value_len > limit:
            raise ValueError("entry runs past the block")
        key = key[:shared] + block[pos:pos + non_shared]
        pos += non_shared
        yield key, block[pos:pos + value_len]
        pos += value_len


def read_index(index_path: str | Path) -> tuple[dict, dict[str, dict]]:
    """``P.index`` → ``(header, {variable name: entry})`` (see :func:`parse_header`, :func:`parse_entry`)."""
    path = Path(index_path)
    data = path.read_bytes()
    if len(data) < FOOTER_SIZE:
        raise CorruptFileError(path, f"truncated: {len(data)} bytes, shorter than the {FOOTER_SIZE}-byte table footer")
    footer = data[-FOOTER_SIZE:]
    if struct.unpack_from("<Q", footer, FOOTER_SIZE - 8)[0] != TABLE_MAGIC:
        raise CorruptFileError(path, "not a TensorFlow V2 checkpoint index (no table magic at the end of the file; "
                                     "truncated, or another format)")
    try:
        _, pos = _handle(footer, 0)  # metaindex (empty in checkpoints)
        index_handle, _ = _handle(footer, pos)
        header, entries = None, {}
        for _, value in _entries(_block(data, index_handle, path)):
            block_handle, _ = _handle(value, 0)
            for key, val in _entries(_block(data, block_handle, path)):
                if key == b"":
                    header = parse_header(val)
                else:
                    entries[key.decode("utf-8")] = parse_entry(val)
    except ValueError as exc:
        raise CorruptFileError(path, f"corrupt table: {exc}") from None
    if header is None:
        raise CorruptFileError(path, "no bundle header entry (the empty key): not a TensorFlow V2 checkpoint")
    return header, entries


# -- checkpoint paths ------------------------------------------------------------------------------
def resolve_prefix(path: str | Path) -> Path:
    """A checkpoint prefix from a prefix (``.../best``), its ``.index`` file, or a folder holding one
    (a ``checkpoint`` state file is followed; an experiment folder's ``best/`` sub-folder is used)."""
    path = Path(path)
    if path.suffix == ".index" and path.is_file():
        return path.with_suffix("")
    if path.is_dir():
        if (path / "best").is_dir():
            path = path / "best"
        state = path / "checkpoint"
        if state.is_file():
            for line in state.read_text(errors="replace").splitlines():
                if line.strip().startswith("model_checkpoint_path:"):
                    name = Path(line.split(":", 1)[1].strip().strip('"'))
                    for cand in (name, path / name, path / name.name):  # saved paths are often absolute
                        if Path(f"{cand}.index").is_file():
                            return cand
                        if cand.is_file():
                            _v1_error(cand)
        indexes = sorted(path.glob("*.index"))
        if len(indexes) == 1:
            return indexes[0].with_suffix("")
        if len(indexes) > 1:
            raise DataError(f"{path} holds several checkpoints ({', '.join(p.name for p in indexes)}): pass the "
                            f"prefix of one, e.g. {indexes[0].with_suffix('')}")
        v1 = [p for p in path.iterdir() if p.is_file() and ".ckpt" in p.name and ".meta" not in p.name]
        if v1:
            _v1_error(v1[0])
        raise DataError(f"{path}: no TensorFlow checkpoint in it (expected <prefix>.index and <prefix>.data-*)")
    if Path(f"{path}.index").is_file():
        return path
    if path.is_file():
        _v1_error(path)
    raise DataError(f"TensorFlow checkpoint {path} not found: expected {path}.index (or a folder holding one)")


def _v1_error(path: Path):
    raise CorruptFileError(path, "a TensorFlow V1 checkpoint (one file, no .index): only V2 checkpoints "
                                 "(<prefix>.index + <prefix>.data-*) are supported; re-save it with TensorFlow "
                                 "(tf.compat.v1.train.Saver() writes V2)")


def shard_path(prefix: Path, shard: int, num_shards: int) -> Path:
    return Path(f"{prefix}.data-{shard:05d}-of-{num_shards:05d}")


# -- tensors ---------------------------------------------------------------------------------------
def read_checkpoint(path: str | Path, names: Iterable[str] | None = None,
                    shapes: dict[str, tuple[int, ...]] | None = None) -> dict[str, np.ndarray]:
    """Read variables of a V2 checkpoint → ``{name: array}`` (native byte order, the stored shape).

    ``names``: which variables (default: every one whose dtype is numeric). All missing names are
    listed in one error. ``shapes``: expected shapes checked before any data is read.
    """
    prefix = resolve_prefix(path)
    index_path = Path(f"{prefix}.index")
    header, entries = read_index(index_path)
    wanted = list(names) if names is not None else [n for n, e in entries.items() if e["dtype"] in DTYPES]
    missing = [n for n in wanted if n not in entries]
    if missing:
        raise CorruptFileError(index_path, f"{len(missing)} variable(s) missing from the checkpoint: "
                                           f"{', '.join(missing)} (it holds {len(entries)} variables)")
    for name, shape in (shapes or {}).items():
        got = tuple(entries[name]["shape"])
        if got != tuple(shape):
            raise CorruptFileError(index_path, f"variable {name!r} has shape {list(got)}, expected {list(shape)}")
    byte_order = ">" if header["endianness"] == 1 else "<"
    with contextlib.ExitStack() as stack:
        files: dict[int, object] = {}
        return {name: _read_tensor(name, entries[name], prefix, header, byte_order, files, stack, index_path)
                for name in wanted}


def _read_tensor(name: str, e: dict, prefix: Path, header: dict, byte_order: str, files: dict,
                 stack: contextlib.ExitStack, index_path: Path) -> np.ndarray:
    if e["slices"]:
        raise CorruptFileError(index_path, f"variable {name!r} is stored as partitioned slices (unsupported)")
    if e["dtype"] not in DTYPES:
        kind = DTYPE_NAMES.get(e["dtype"], f"enum {e['dtype']}")
        raise CorruptFileError(index_path, f"variable {name!r} has dtype {kind}, not a numeric tensor")
    if not 0 <= e["shard_id"] < max(header["num_shards"], 1):
        raise CorruptFileError(index_path, f"variable {name!r} names shard {e['shard_id']} of {header['num_shards']}")
    shard = shard_path(prefix, e["shard_id"], header["num_shards"])
    if e["shard_id"] not in files:
        if not shard.is_file():
            raise DataError(f"data file {shard} of checkpoint {prefix} does not exist")
        files[e["shard_id"]] = stack.enter_context(open(shard, "rb"))
    fh = files[e["shard_id"]]
    dtype = np.dtype(DTYPES[e["dtype"]]).newbyteorder(byte_order)
    count = int(np.prod(e["shape"], dtype=np.int64))
    if e["size"] != count * dtype.itemsize:
        raise CorruptFileError(index_path, f"variable {name!r}: {e['size']} bytes for shape {e['shape']} "
                                           f"of {dtype.name}")
    end = e["offset"] + e["size"]
    file_size = shard.stat().st_size
    if end > file_size:
        raise CorruptFileError(shard, f"truncated: variable {name!r} ends at byte {end}, the file has "
                                      f"{file_size} bytes")
    fh.seek(e["offset"])
    raw = fh.read(e["size"])
    if e["crc32c"] is not None and crc32c(raw) != unmask(e["crc32c"]):
        raise CorruptFileError(shard, f"corrupt: checksum (crc32c) mismatch for variable {name!r}")
    return np.frombuffer(raw, dtype=dtype).astype(dtype.newbyteorder("="), copy=True).reshape(e["shape"])


def list_variables(path: str | Path) -> dict[str, tuple[int, ...]]:
    """``{name: shape}`` of every variable of a V2 checkpoint (reads the index only)."""
    _, entries = read_index(Path(f"{resolve_prefix(path)}.index"))
    return {n: tuple(e["shape"]) for n, e in sorted(entries.items())}
