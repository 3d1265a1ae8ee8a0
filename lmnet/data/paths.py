"""The one rule for paths read from data files: they stay inside their dataset root.

A dataset index (Pix3D's ``pix3d.json``, CUB's ``images.txt``, a CMR ``.mat`` ``rel_path``) names
files relative to a root folder. Such a name is data, not trusted configuration: an absolute path,
a ``..`` that climbs out of the root, a drive letter or a symlink that points outside it must never
be opened. :func:`resolve_inside` is the only place a loader turns such a name into a path.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from lmnet.errors import DataError

__all__ = ["resolve_inside", "PathOutsideRootError"]


class PathOutsideRootError(DataError):
    """A path read from a data file is not a relative path inside its dataset root."""


def resolve_inside(root, rel, *, source, field: str, backslashes: bool = False) -> Path:
    """``root / rel`` for a name ``rel`` read from a data file, refused unless it stays inside ``root``.

    ``source`` is the file the name came from and ``field`` the entry or key that held it (e.g.
    ``"entry 17: img"``); both appear in the error. ``rel`` must be a non-empty string, relative
    (no leading ``/``, no drive), without NUL bytes, and must resolve — following symlinks — to a
    path under ``root`` (also resolved). With ``backslashes=True`` a ``\\`` separates folders (the
    Pascal3D+ ``rel_path`` convention); otherwise a backslash is refused, so a Windows-style
    ``..\\..`` cannot slip through on either platform. Nothing is opened; the file need not exist.
    Raises :class:`PathOutsideRootError` (a :class:`~lmnet.errors.DataError`, exit code 2).
    """
    where = f"{source}: {field}"
    if not isinstance(rel, str):
        raise PathOutsideRootError(f"{where} must be a relative path (a string), got {type(rel).__name__} {rel!r}")
    if not rel.strip():
        raise PathOutsideRootError(f"{where} is empty; expected a relative path inside {root}")
    if "\x00" in rel:
        raise PathOutsideRootError(f"{where} {rel!r} contains a NUL byte")
    name = rel.replace("\\", "/") if backslashes else rel
    if not backslashes and "\\" in name:
        raise PathOutsideRootError(f"{where} {rel!r} contains a backslash; expected '/'-separated folders")
    posix = PurePosixPath(name)
    if posix.is_absolute() or (len(name) > 1 and name[1] == ":") or ".." in posix.parts:
        raise PathOutsideRootError(f"{where} {rel!r} is not a relative path inside the dataset root {root}")
    root_resolved = os.path.realpath(root)
    target = os.path.realpath(os.path.join(root_resolved, *posix.parts))
    if target != root_resolved and not target.startswith(os.path.join(root_resolved, "")):
        raise PathOutsideRootError(f"{where} {rel!r} resolves to {target}, outside the dataset root {root_resolved}")
    return Path(root).joinpath(*posix.parts)
