"""CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as TensorFlow and LevelDB use it, in NumPy.

:func:`crc32c` is the standard checksum (init ``0xFFFFFFFF``, final xor ``0xFFFFFFFF``;
``crc32c(b"123456789") == 0xE3069283``). :func:`mask` / :func:`unmask` are LevelDB's masking
(``rotate right 15 + 0xA282EAD8``), which TensorFlow stores for tensor-bundle data and table blocks.

Speed without a C extension: the buffer is cut into ``K`` equal chunks whose CRC registers advance
together, one byte per step vectorised over the chunks; the chunk registers are then combined
pairwise (``reg(A‖B) = Z_|B|·reg(A) ⊕ reg(B)``, ``Z_n`` the GF(2) matrix of advancing a register over
``n`` zero bytes), and the rest of the bytes run through the plain byte loop.
"""

from __future__ import annotations

import functools

import numpy as np

POLY = 0x82F63B78
_MASK_DELTA = 0xA282EAD8


def _table() -> np.ndarray:
    t = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        t = np.where(t & 1, (t >> 1) ^ np.uint32(POLY), t >> 1).astype(np.uint32)
    return t


TABLE = _table()
_TABLE_LIST = [int(x) for x in TABLE]


def _update_scalar(reg: int, data: bytes | memoryview) -> int:
    t = _TABLE_LIST
    for b in bytes(data):
        reg = t[(reg ^ b) & 0xFF] ^ (reg >> 8)
    return reg


def _apply(matrix: np.ndarray, regs: np.ndarray) -> np.ndarray:
    """GF(2) matrix (32 columns as uint32: column i = image of bit i) applied to uint32 registers."""
    out = np.zeros_like(regs)
    for i in range(32):
        out ^= ((regs >> np.uint32(i)) & np.uint32(1)) * matrix[i]
    return out


def _compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Matrix of ``a ∘ b`` (apply ``b`` first)."""
    return _apply(a, b)


@functools.lru_cache(maxsize=64)
def _zeros_operator(n: int) -> np.ndarray:
    """The matrix advancing a register over ``n`` zero bytes (repeated squaring of the 1-byte map)."""
    one = np.array([_update_scalar(1 << i, b"\0") for i in range(32)], dtype=np.uint32)
    result = np.array([1 << i for i in range(32)], dtype=np.uint32)  # identity
    while n:
        if n & 1:
            result = _compose(one, result)
        one = _compose(one, one)
        n >>= 1
    return result


def _register(data: np.ndarray, reg: int) -> int:
    """Advance register ``reg`` over ``data`` (uint8, 1-D)."""
    n = data.size
    k = 1
    while k * 2 * 256 <= n and k < 65536:
        k *= 2
    if k < 64:
        return _update_scalar(reg, data.tobytes())
    length = n // k
    chunks = np.ascontiguousarray(data[:k * length].reshape(k, length).T)  # (length, k)
    regs = np.zeros(k, dtype=np.uint32)
    regs[0] = reg  # the init value enters through the first chunk only (linearity)
    for row in chunks:
        regs = TABLE[(regs ^ row) & 0xFF] ^ (regs >> np.uint32(8))
    span = length
    while regs.size > 1:
        z = _zeros_operator(span)
        regs = _apply(z, regs[0::2]) ^ regs[1::2]
        span *= 2
    return _update_scalar(int(regs[0]), data[k * length:].tobytes())


def crc32c(data, crc: int = 0) -> int:
    """CRC-32C of ``data`` (bytes-like or uint8 array); ``crc`` continues a previous checksum."""
    arr = np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8) if not isinstance(data, np.ndarray) \
        else data.reshape(-1).view(np.uint8)
    return _register(arr, (crc ^ 0xFFFFFFFF) & 0xFFFFFFFF) ^ 0xFFFFFFFF


def mask(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def unmask(masked: int) -> int:
    rot = (masked - _MASK_DELTA) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF
