"""Plain-dict configs, validated against defaults.

Every experiment is a dict. :func:`resolve_config` merges user overrides into a dict of defaults and
refuses anything it does not know, so that a typo never silently falls back to a default:

>>> resolve_config({"lr": 5e-4, "epochs": 10}, {"epochs": 3})
{'lr': 0.0005, 'epochs': 3}

Rules
- an unknown key raises :class:`~lmnet.errors.ConfigError` listing the valid keys;
- a value must have the type of its default (an ``int`` is accepted where a ``float`` is expected,
  a ``list`` and a ``tuple`` are interchangeable); a default of ``None`` accepts anything;
- nested dicts are validated recursively against the nested default.

:func:`parse_set_args` turns CLI ``--set key=value`` strings into overrides with
:func:`ast.literal_eval` (never ``eval``): ``lr=1e-4``, ``categories=['chair','car']``,
``name=run1`` (a bare word is taken as a string).
"""

from __future__ import annotations

import ast
import copy
import json
import math
from pathlib import Path
from typing import Any, Mapping

from lmnet.errors import ConfigError


def _type_ok(default: Any, value: Any) -> bool:
    if default is None or value is None:
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple))
    if isinstance(default, str):
        return isinstance(value, str)
    if isinstance(default, dict):
        return isinstance(value, Mapping)
    return isinstance(value, type(default))


def resolve_config(defaults: Mapping[str, Any], overrides: Mapping[str, Any] | None = None,
                   *, name: str = "config", _prefix: str = "") -> dict:
    """Return ``defaults`` updated with ``overrides`` after validating every key and type."""
    out = copy.deepcopy(dict(defaults))
    if overrides is None:
        return out
    if not isinstance(overrides, Mapping):
        raise ConfigError(f"{name}: expected a dict of settings, got {type(overrides).__name__}")
    for key, value in overrides.items():
        full = f"{_prefix}{key}"
        if key not in defaults:
            valid = ", ".join(sorted(defaults))
            raise ConfigError(f"{name}: unknown key {full!r}; valid keys are: {valid}")
        default = defaults[key]
        if not _type_ok(default, value):
            raise ConfigError(
                f"{name}: key {full!r} expects {type(default).__name__} "
                f"(default {default!r}), got {type(value).__name__} {value!r}"
            )
        if isinstance(default, dict) and default:
            out[key] = resolve_config(default, value, name=name, _prefix=f"{full}.")
        elif isinstance(default, float) and isinstance(value, int):
            out[key] = float(value)
        elif isinstance(default, tuple) and isinstance(value, list):
            out[key] = tuple(value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def check_choice(config: Mapping[str, Any], key: str, choices) -> None:
    """Raise a :class:`ConfigError` naming ``key`` when ``config[key]`` is not one of ``choices``."""
    if config[key] not in choices:
        raise ConfigError(f"config key {key!r} must be one of {sorted(choices)}, got {config[key]!r}")


def check_number(config: Mapping[str, Any], key: str, low: float | None = None, high: float | None = None, *,
                 low_open: bool = False, meaning: str = "", none_ok: bool = False) -> None:
    """Raise a :class:`ConfigError` naming ``key``, its value and the valid range unless
    ``config[key]`` is a finite number (not a bool) in the range: ``>= low`` (``> low`` with
    ``low_open``) and ``<= high``, either bound ``None`` for none. ``meaning`` (e.g. ``"a loss
    weight"``) is said in the message; ``none_ok``: ``None`` is accepted too."""
    v = config[key]
    if v is None and none_ok:
        return
    ok = (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
          and (low is None or (v > low if low_open else v >= low)) and (high is None or v <= high))
    if ok:
        return
    if low is not None and high is not None:
        where = f"in {'(' if low_open else '['}{low:g}, {high:g}]"
    elif low is not None:
        where = f"{'>' if low_open else '>='} {low:g}"
    else:
        where = f"<= {high:g}" if high is not None else ""
    what = f" ({meaning})" if meaning else ""
    alt = "None or " if none_ok else ""
    raise ConfigError(f"config key {key!r}{what} must be {alt}a finite number{' ' + where if where else ''}, got {v!r}")


def check_count(config: Mapping[str, Any], key: str, low: int = 0) -> None:
    """Raise a :class:`ConfigError` naming ``key`` and its value unless ``config[key]`` is an
    integer (not a bool) ``>= low``."""
    v = config[key]
    if isinstance(v, bool) or not isinstance(v, int) or v < low:
        raise ConfigError(f"config key {key!r} must be an integer >= {low}, got {v!r}")


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        low = text.strip().lower()
        if low in ("true", "false"):
            return low == "true"
        if low in ("none", "null"):
            return None
        return text


def parse_set_args(items: list[str] | None) -> dict:
    """``["a=1", "b.c=x"]`` → ``{"a": 1, "b": {"c": "x"}}`` (dots address nested dicts)."""
    out: dict = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, _, raw = item.partition("=")
        key = key.strip()
        if not key:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = _literal(raw)
    return out


def load_config_file(path: str | Path) -> dict:
    """Read a JSON config file (the format runs save next to their checkpoints)."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"config file {path} is a folder; expected a JSON file (e.g. {path / 'config.json'})")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {exc.start}): expected a JSON file") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read ({exc.strerror or exc})") from None
    return parse_json_object(text, f"config file {path}")


def parse_json_object(text: str, source: str, error: type[Exception] = ConfigError,
                      expected: str = "a JSON object") -> dict:
    """``text`` parsed as a JSON object. Invalid JSON, or JSON that is not an object, raises
    ``error`` with a message naming ``source`` (e.g. ``"split file a.json"``) and, for the latter,
    what was ``expected`` and what came."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{source} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise error(f"{source} must hold {expected}, got {type(data).__name__}")
    return data


def merge_overrides(base: dict, extra: dict) -> dict:
    """Deep-merge ``extra`` into a copy of ``base`` (for file config + ``--set`` overrides)."""
    out = copy.deepcopy(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge_overrides(out[k], v)
        else:
            out[k] = v
    return out
