"""Exceptions the user is meant to read. The CLI prints them without a traceback.

They survive process boundaries: they pickle (:meth:`object.__reduce__` keeps every argument), and
a DataLoader worker's error, which torch re-raises in the main process as
``SomeError("Caught SomeError in DataLoader worker process N.\\nOriginal Traceback ...")``, is
rebuilt with the original one-line message (the worker is kept in ``exc.where``), so 0 or N
workers give the same message and exit code.
"""

from __future__ import annotations


def _unwrap_worker_text(cls: type, text: str) -> tuple[str, str | None]:
    """``(message, where)``: the original message of a DataLoader worker's re-raised error text."""
    head = f"Caught {cls.__name__} in "
    if not text.startswith(head) or "\nOriginal Traceback" not in text:
        return text, None
    where = text[len("Caught " + cls.__name__ + " "):text.index(".\n")]
    marker = f"\n{cls.__module__}.{cls.__name__}: "
    i = text.rfind(marker)
    if i < 0:
        return text, None
    return text[i + len(marker):].rstrip("\n"), where


class LmnetError(Exception):
    """Base class: the message names the file, key or value and says what was expected."""

    where: str | None = None

    def __init__(self, *args):
        if len(args) == 1 and isinstance(args[0], str):
            message, where = _unwrap_worker_text(type(self), args[0])
            if where is not None:
                args, self.where = (message,), where
        super().__init__(*args)


class ConfigError(LmnetError, ValueError):
    """A config dict has an unknown key, a wrong type or a bad value."""


class DataError(LmnetError):
    """A dataset file is missing or corrupt; the message names the file."""


class CorruptFileError(DataError):
    """A file exists but cannot be used (truncated PNG, wrong npy shape, NaNs, bad metadata line).

    ``CorruptFileError(path, reason)``; a single argument is a whole message ``"<path>: <reason>"``
    (how pickling's and torch's re-raise rebuild it).
    """

    def __init__(self, path, reason: str | None = None):
        if reason is None:
            super().__init__(str(path))
            path, _, reason = str(self).partition(": ")
        else:
            super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason

    def __reduce__(self):
        return type(self), (self.path, self.reason)


class DownloadError(LmnetError):
    """A download failed or an archive is unsafe to extract."""


class ResourceLimitError(LmnetError):
    """What a command would compute is over a resource limit (pixels, samples, points, bytes); the
    message names the limit and the environment variable that raises it (:mod:`lmnet.envvars`)."""


class FolderInUseError(LmnetError):
    """Another process writes the folder (its lock file names it): one writer per folder."""


class NonFiniteError(LmnetError):
    """A loss, a gradient or a prediction is NaN or infinite; the message says where (epoch, step)."""


class Interrupted(LmnetError):
    """The user stopped a long job (Ctrl-C); the message says what was kept and how to continue."""

    def __init__(self, message: str, epochs_done: int | None = None):
        super().__init__(message)
        self.epochs_done = epochs_done

    def __reduce__(self):
        return type(self), (str(self), self.epochs_done)
