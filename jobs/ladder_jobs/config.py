"""Config resolution: defaults <- preset <- overrides.

A config file is a JSON object. It may name a preset of the kind:

    {"preset": "xs", "steps": 100}

Each kind declares DEFAULTS (a flat dict; the type of each default value is the type of
the key) and PRESETS (name -> overrides). Resolution is strict because a typo in a sweep
must fail loudly (exit 2, never retried) instead of silently running the default:
unknown keys and wrong types raise ConfigError naming the key.
"""

from __future__ import annotations

import json
import math
from typing import Any, Mapping

# The key a config uses to pick a preset. It is not part of the resolved config: the
# resolved values alone fully determine the run (the preset name goes to result meta).
PRESET_KEY = "preset"


class ConfigError(ValueError):
    """A config the job cannot run with. The CLI turns it into exit code 2."""


def _type_name(t: type) -> str:
    return {bool: "bool", int: "int", float: "float", str: "str", list: "list", dict: "object"}.get(
        t, t.__name__
    )


def _check_value(kind: str, key: str, value: Any, default: Any) -> Any:
    """Return value coerced to the type of default, or raise ConfigError."""
    expected = type(default)
    if default is None:
        return value  # untyped optional key: anything JSON can carry
    ok: bool
    if expected is bool:
        ok = isinstance(value, bool)
    elif expected is int:
        ok = isinstance(value, int) and not isinstance(value, bool)  # bool is not int
    elif expected is float:
        # int is accepted where a float is expected (JSON writes 1e6 as 1000000.0 or 1000000)
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok:
            value = float(value)
            if not math.isfinite(value):
                raise ConfigError(f"key '{key}' of kind '{kind}' must be a finite float, got {value}")
    else:
        ok = isinstance(value, expected)
    if not ok:
        raise ConfigError(
            f"key '{key}' of kind '{kind}' expects {_type_name(expected)}, "
            f"got {_type_name(type(value))} ({json.dumps(value)})"
        )
    return value


def _apply(kind: str, resolved: dict, overrides: Mapping[str, Any], defaults: Mapping[str, Any], where: str) -> None:
    for key, value in overrides.items():
        if key not in defaults:
            known = ", ".join(sorted(defaults))
            raise ConfigError(f"key '{key}' is not a config key of kind '{kind}'{where} (known: {known})")
        resolved[key] = _check_value(kind, key, value, defaults[key])


def resolve_config(
    kind: str,
    defaults: Mapping[str, Any],
    presets: Mapping[str, Mapping[str, Any]],
    raw: Mapping[str, Any],
) -> tuple[dict, str | None]:
    """Resolve raw (the parsed config file) against a kind's tables.

    Returns (resolved config as a plain dict, preset name or None).
    """
    if not isinstance(raw, Mapping):
        raise ConfigError(f"config must be a JSON object, got {_type_name(type(raw))}")
    overrides = dict(raw)
    preset = overrides.pop(PRESET_KEY, None)
    resolved = dict(defaults)
    if preset is not None:
        if not isinstance(preset, str):
            raise ConfigError(f"key '{PRESET_KEY}' expects str, got {_type_name(type(preset))}")
        if preset not in presets:
            known = ", ".join(presets) or "none"
            raise ConfigError(f"unknown preset '{preset}' of kind '{kind}' (known: {known})")
        _apply(kind, resolved, presets[preset], defaults, f" (in preset '{preset}')")
    _apply(kind, resolved, overrides, defaults, "")
    return resolved, preset


def _reject_constant(name: str) -> Any:
    # Python's json accepts NaN/Infinity, which no other JSON parser (nor Postgres) does.
    raise ConfigError(f"config contains {name}, which is not valid JSON")


def parse_config_text(text: str, source: str = "config") -> dict:
    try:
        raw = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{source} is not valid JSON: {e}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{source} must hold a JSON object, got {_type_name(type(raw))}")
    return raw


def load_config_file(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
    return parse_config_text(text, source=f"config file {path}")
