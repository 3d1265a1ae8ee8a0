"""argparse value types that refuse out-of-range numbers with a one-line usage error (exit code 2)."""

from __future__ import annotations

import argparse


def _int_at_least(low: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value

    parse.__name__ = f"int >= {low}"
    return parse


positive_int = _int_at_least(1)
"""``>= 1`` (batch sizes, attempts)."""
non_negative_int = _int_at_least(0)
"""``>= 0`` (limits where 0 = all, worker counts, sample counts)."""


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def int_in_range(low: int, high: int):
    """An argparse type: a whole number in ``low..high`` (both included)."""
    at_least = _int_at_least(low)

    def parse(text: str) -> int:
        value = at_least(text)
        if value > high:
            raise argparse.ArgumentTypeError(f"must be <= {high}, got {value}")
        return value

    parse.__name__ = f"int in {low}..{high}"
    return parse


def parse_ratios(text: str) -> tuple[float, ...]:
    """``--ratios`` (``train,val,test`` such as ``0.6,0.2,0.2``) as numbers; a word that is not a
    number is a :class:`~lmnet.errors.DataError` (:func:`lmnet.data.splits.make_splits` checks the
    count, finiteness and sum, with its own one-line error)."""
    from lmnet.errors import DataError

    try:
        return tuple(float(x) for x in text.split(","))
    except ValueError:
        raise DataError(f"--ratios expects three numbers like 0.6,0.2,0.2, got {text!r}") from None
