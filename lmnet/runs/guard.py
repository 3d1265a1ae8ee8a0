"""One guard for the folders lmnet writes: run folders (``lmnet train``, ``import-weights``,
``pretrained download``) and inference outputs (``lmnet infer --out``).

Whose folder it is. A folder is lmnet's only if it holds lmnet's marker: a run folder's
``config.json`` holding an object with a ``"kind"`` (:func:`inspect_run_folder`), an inference
output's ``index.csv`` (:mod:`lmnet.runs.predictions`). A missing or empty folder may be written; a
non-empty folder without the marker is refused, naming what it holds, and nothing in it is deleted
(not with ``--force`` / ``--overwrite`` either). A path that is a file is refused before any work.

What ``--force`` / ``--overwrite`` remove. Exactly the files lmnet's layout names in a folder that
carries the marker (for a run folder :func:`run_files`), nothing else; then the new outputs are
written, so a folder never holds one writer's weights beside another's history.

One writer at a time. :func:`lock_folder` holds ``<folder>/.lmnet.lock`` while a command writes
the folder: created with ``O_CREAT | O_EXCL`` (atomic on local file systems and NFS v3+), holding
the process id, the host, the process's start time (Linux), the command and the time. A second
writer is refused (:class:`~lmnet.errors.FolderInUseError`) naming the holder. A lock whose process
is gone (same host; the pid is not running, or runs a later process than the one that wrote the lock)
is stale: it is taken over with a note on stderr. A lock of another host is never judged stale (its
processes cannot be seen from here): the message says which file to delete. The lock is released on
return, on exceptions and on Ctrl-C; a SIGKILL leaves it behind, stale.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import re
import secrets
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from lmnet.errors import ConfigError, FolderInUseError
from lmnet.runs.folder import CHECKPOINT_DIR, CONFIG_FILE, CURVE_FILE, HISTORY_FILE, read_run_config

LOCK_FILE = ".lmnet.lock"
# a lock file without readable content is a writer between its create and its write, unless older
UNREADABLE_LOCK_GRACE_S = 10.0

# what lmnet writes into a run folder (lmnet.runs.folder, lmnet.eval.report), relative paths
RUN_LAYOUT = (CONFIG_FILE, HISTORY_FILE, CURVE_FILE, f"{CHECKPOINT_DIR}/best.pt", f"{CHECKPOINT_DIR}/last.pt")
_EVAL_REPORT = re.compile(r"^eval_.+\.(csv|md)$")
_TEMPORARY = re.compile(r"^\..+\.tmp$")  # lmnet.atomic_io's temporaries (a killed write)


# --------------------------------------------------------------------------------------------
# whose folder it is
# --------------------------------------------------------------------------------------------
def require_folder_path(path: str | Path, what: str) -> Path:
    """``path`` as a Path; raises ConfigError when it (or a folder above it) is a file."""
    path = Path(path)
    for p in (path, *path.parents):
        if p.exists() or p.is_symlink():
            if p.is_dir():
                break
            raise ConfigError(f"{what} {path} is a file, expected a folder" if p == path else
                              f"{what} {path} cannot be a folder: {p} is a file")
    return path


def entries(folder: str | Path) -> list[str]:
    """Sorted names in ``folder`` except lmnet's lock file; ``[]`` for a missing folder."""
    folder = Path(folder)
    return sorted(p.name for p in folder.iterdir() if p.name != LOCK_FILE) if folder.is_dir() else []


def listing(names: Sequence[str], limit: int = 5) -> str:
    """``a, b, c`` (and ``... (N in all)`` past ``limit``) for a one-line message."""
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def require_distinct(folders: dict[str, str | Path | None]) -> None:
    """Raise ConfigError when two of ``folders`` (option name → folder) are the same folder or one
    lies inside the other (``--out`` and ``--ae-out``: one run would be written over the other)."""
    given = [(name, Path(f), Path(os.path.abspath(f))) for name, f in folders.items() if f is not None]
    for i, (name_a, a, ra) in enumerate(given):
        for name_b, b, rb in given[i + 1:]:
            ra_real, rb_real = Path(os.path.realpath(ra)), Path(os.path.realpath(rb))
            if ra_real == rb_real:
                raise ConfigError(f"{name_a} {a} and {name_b} {b} are the same folder: each run needs its own")
            if ra_real in rb_real.parents or rb_real in ra_real.parents:
                raise ConfigError(f"{name_a} {a} and {name_b} {b} lie inside one another: each run needs a "
                                  "folder of its own")


@dataclass(frozen=True)
class RunFolder:
    """What :func:`inspect_run_folder` found. ``kind``: ``config.json``'s kind, None for a missing
    or empty folder; ``files``: lmnet's run files present (paths relative to the folder);
    ``imported``: its ``config.json`` records a ``source`` (written by an import, not a training)."""

    path: Path
    kind: str | None
    files: tuple[str, ...] = ()
    imported: bool = False

    def has(self, relative: str) -> bool:
        return relative in self.files

    @property
    def holds_run(self) -> bool:
        """Weights or a history: something a new writer would destroy or mix with."""
        return any(self.has(f) for f in (f"{CHECKPOINT_DIR}/best.pt", f"{CHECKPOINT_DIR}/last.pt", HISTORY_FILE))

    @property
    def trained(self) -> bool:
        """A training run's weights or history, not an imported run's ``best.pt``."""
        return self.has(f"{CHECKPOINT_DIR}/last.pt") or self.has(HISTORY_FILE) or (self.holds_run and not self.imported)


def run_files(folder: str | Path) -> list[str]:
    """The files of :data:`RUN_LAYOUT`, eval reports and atomic-write temporaries present in
    ``folder`` (and its ``checkpoints/``), relative paths: exactly what ``--force`` removes."""
    folder = Path(folder)
    found = [rel for rel in RUN_LAYOUT if (folder / rel).is_file()]
    found += [n for n in entries(folder) if (folder / n).is_file() and (_EVAL_REPORT.match(n) or _TEMPORARY.match(n))]
    found += [f"{CHECKPOINT_DIR}/{n}" for n in entries(folder / CHECKPOINT_DIR)
              if _TEMPORARY.match(n) and (folder / CHECKPOINT_DIR / n).is_file()]
    return found


def inspect_run_folder(path: str | Path, what: str = "run_dir") -> RunFolder:
    """The run folder at ``path``; raises ConfigError for a file or a non-empty folder without
    lmnet's marker (``config.json`` with a kind), CorruptFileError for an unreadable ``config.json``."""
    path = require_folder_path(path, what)
    names = entries(path)
    if not names:
        return RunFolder(path, None)
    config = read_run_config(path) if (path / CONFIG_FILE).is_file() else {}
    kind = config.get("kind")
    if not isinstance(kind, str) or not kind:
        why = f"its {CONFIG_FILE} has no \"kind\"" if (path / CONFIG_FILE).is_file() else f"no {CONFIG_FILE}"
        raise ConfigError(f"{what} {path} is not empty and is not an lmnet run folder ({why}): it holds "
                          f"{listing(names)}; choose a new or empty folder")
    return RunFolder(path, kind, tuple(run_files(path)), imported="source" in config)


def clear_run_folder(folder: RunFolder) -> list[str]:
    """Delete the run files of ``folder`` (:func:`run_files`; ``config.json`` last, so that a kill
    midway leaves a folder that is still marked as lmnet's) and ``checkpoints/`` when that leaves it
    empty. Other files stay. Returns the removed relative paths."""
    removed = [rel for rel in run_files(folder.path) if rel != CONFIG_FILE]
    removed += [CONFIG_FILE] if (folder.path / CONFIG_FILE).is_file() else []
    for rel in removed:
        (folder.path / rel).unlink()
    ckpt_dir = folder.path / CHECKPOINT_DIR
    if ckpt_dir.is_dir() and not any(ckpt_dir.iterdir()):
        ckpt_dir.rmdir()
    return removed


# --------------------------------------------------------------------------------------------
# one writer at a time
# --------------------------------------------------------------------------------------------
def _process_start(pid: int) -> str | None:
    """The start time of process ``pid`` in clock ticks since boot (Linux ``/proc``), else None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2:].split()
    return fields[19] if len(fields) > 19 else None


def _running(pid: int) -> bool:
    """Whether process ``pid`` exists (True when it cannot be told: never take a live lock)."""
    if os.name == "nt" or pid <= 0:
        return pid > 0  # os.kill(pid, 0) would terminate it on Windows
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: another user's process
        return True
    return True


def _read_lock(lock: Path) -> tuple[str, dict] | None:
    """``(raw text, holder)`` of ``lock``; None when it is gone; holder ``{}`` when unreadable."""
    try:
        raw = lock.read_bytes().decode("utf-8", "replace")
    except FileNotFoundError:
        return None
    try:
        holder = json.loads(raw)
    except json.JSONDecodeError:
        holder = {}
    return raw, holder if isinstance(holder, dict) and isinstance(holder.get("pid"), int) else {}


def _stale(lock: Path, holder: dict) -> bool:
    if not holder:
        try:
            return time.time() - lock.stat().st_mtime > UNREADABLE_LOCK_GRACE_S
        except FileNotFoundError:
            return True
    if holder.get("host") != socket.gethostname():
        return False
    pid = holder["pid"]
    if not _running(pid):
        return True
    start = _process_start(pid)
    return holder.get("pid_start") is not None and start is not None and start != holder["pid_start"]


def _describe(holder: dict) -> str:
    if not holder:
        return "a process that left an unreadable lock file"
    return (f"{holder.get('command', 'an lmnet command')} (process {holder['pid']} on {holder.get('host', '?')}, "
            f"since {holder.get('since', '?')})")


def _in_use(what: str, folder: Path, holder: dict) -> FolderInUseError:
    return FolderInUseError(f"{what} {folder} is in use by {_describe(holder)}: one writer at a time; wait for it "
                            f"or choose another folder (if no such process is running, delete {folder / LOCK_FILE})")


def _take_over(lock: Path, raw: str, holder: dict, folder: Path) -> None:
    """Move the stale ``lock`` aside (a rename: of two processes taking it over, one wins) unless
    it was replaced since it was read, in which case the new lock is put back."""
    aside = lock.with_name(f"{LOCK_FILE}.stale-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        os.rename(lock, aside)
    except FileNotFoundError:
        return
    if aside.read_bytes().decode("utf-8", "replace") != raw:  # a live lock written meanwhile: restore it
        with contextlib.suppress(OSError):  # FileExistsError: a third process holds it now
            os.link(aside, lock)
        aside.unlink()
        return
    aside.unlink()
    print(f"lmnet: note: took over the lock of {folder} left by {_describe(holder)}, which is no longer "
          "running; its outputs there may be incomplete", file=sys.stderr)


def _acquire(folder: Path, what: str, command: str) -> str:
    """Create ``folder/.lmnet.lock`` for this process; returns its token."""
    lock = folder / LOCK_FILE
    mine = {"pid": os.getpid(), "host": socket.gethostname(), "pid_start": _process_start(os.getpid()),
            "command": command, "since": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "token": secrets.token_hex(8)}
    for _ in range(5):
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            found = _read_lock(lock)
            if found is None:
                continue  # released meanwhile
            raw, holder = found
            if not _stale(lock, holder):
                raise _in_use(what, folder, holder) from None
            _take_over(lock, raw, holder, folder)
            continue
        except OSError as exc:  # a read-only folder, a full disk
            raise ConfigError(f"{what} {folder} cannot be written ({exc.strerror or exc})") from None
        with os.fdopen(fd, "w") as fh:
            fh.write(json.dumps(mine) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        return mine["token"]
    raise FolderInUseError(f"{what} {folder}: could not take its lock {lock} (other processes keep taking it)")


def _release(folder: Path, token: str) -> None:
    lock = folder / LOCK_FILE
    found = _read_lock(lock)
    if found is not None and found[1].get("token") == token:
        lock.unlink()


@contextlib.contextmanager
def lock_folder(path: str | Path, what: str, command: str) -> Iterator[Path]:
    """Hold ``path``'s lock (created with its parents when missing) while the block writes there.

    ``what`` names the folder in messages (``"run_dir"``, ``"--out"``), ``command`` the writer
    (``"lmnet train autoencoder"``). Raises FolderInUseError while another live process holds it,
    ConfigError when ``path`` is a file. A folder created here and left empty is removed again."""
    path = require_folder_path(path, what)
    created = not path.exists()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{what} {path} cannot be created ({exc.strerror or exc})") from None
    token = _acquire(path, what, command)
    try:
        yield path
    finally:
        _release(path, token)
        if created:
            with contextlib.suppress(OSError):
                path.rmdir()  # only when empty


@contextlib.contextmanager
def lock_folders(folders: dict[str, str | Path | None], command: str) -> Iterator[None]:
    """:func:`lock_folder` for each ``what → folder`` (None skipped), all held together."""
    with contextlib.ExitStack() as stack:
        for what, folder in folders.items():
            if folder is not None:
                stack.enter_context(lock_folder(folder, what, command))
        yield


def check_unlocked(path: str | Path, what: str) -> None:
    """Raise FolderInUseError when a live process holds ``path``'s lock (a cheap early refusal,
    before any work; :func:`lock_folder` is what excludes a second writer)."""
    lock = Path(path) / LOCK_FILE
    found = _read_lock(lock) if lock.is_file() else None
    if found is not None and not _stale(lock, found[1]):
        raise _in_use(what, Path(path), found[1])
