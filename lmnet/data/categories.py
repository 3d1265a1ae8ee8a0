"""The 13 ShapeNet categories used by 3D-R2N2 and 3D-LMNet (synset id ↔ name)."""

from __future__ import annotations

from typing import Iterable

from lmnet.errors import ConfigError

SYNSET_TO_NAME: dict[str, str] = {
    "02691156": "airplane",
    "02828884": "bench",
    "02933112": "cabinet",
    "02958343": "car",
    "03001627": "chair",
    "03211117": "monitor",
    "03636649": "lamp",
    "03691459": "speaker",
    "04090263": "rifle",
    "04256520": "sofa",
    "04379243": "table",
    "04401088": "telephone",
    "04530566": "vessel",
}
NAME_TO_SYNSET: dict[str, str] = {v: k for k, v in SYNSET_TO_NAME.items()}
ALL_SYNSETS: tuple[str, ...] = tuple(sorted(SYNSET_TO_NAME))


def to_synset(category: str) -> str:
    """Accept a name (``chair``) or a synset id (``03001627``, or any other 8 digits: the categories of
    ``lmnet build-dataset``) and return the synset id."""
    c = str(category).strip().lower()
    if c in SYNSET_TO_NAME:
        return c
    if c in NAME_TO_SYNSET:
        return NAME_TO_SYNSET[c]
    if len(c) == 8 and c.isascii() and c.isdigit():  # another synset-like id (lmnet build-dataset's categories)
        return c
    valid = ", ".join(f"{n} ({s})" for s, n in sorted(SYNSET_TO_NAME.items()))
    raise ConfigError(f"unknown category {category!r}; expected one of: {valid}, or another 8-digit synset id")


def to_synsets(categories: Iterable[str] | str | None) -> list[str] | None:
    """Normalise a category filter: ``None``/``"all"`` → ``None``; ``"chair,car"`` or a list → synsets."""
    if categories is None:
        return None
    if isinstance(categories, str):
        if categories.strip().lower() in ("", "all"):
            return None
        categories = [c for c in categories.split(",") if c.strip()]
    return [to_synset(c) for c in categories]


def name_of(synset: str) -> str:
    return SYNSET_TO_NAME.get(synset, synset)
