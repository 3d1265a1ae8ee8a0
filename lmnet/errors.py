"""Exceptions the user is meant to read. The CLI prints them without a traceback."""


class LmnetError(Exception):
    """Base class: the message names the file, key or value and says what was expected."""


class ConfigError(LmnetError, ValueError):
    """A config dict has an unknown key, a wrong type or a bad value."""


class DataError(LmnetError):
    """A dataset file is missing or corrupt; the message names the file."""


class CorruptFileError(DataError):
    """A file exists but cannot be used (truncated PNG, wrong npy shape, NaNs, bad metadata line)."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class DownloadError(LmnetError):
    """A download failed or an archive is unsafe to extract."""
