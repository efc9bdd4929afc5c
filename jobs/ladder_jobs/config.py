"""Config resolution: defaults <- preset <- overrides.

A config file is a JSON object. It may name a preset of the kind:

    {"preset": "xs", "steps": 100}

Each kind declares a Config dataclass (below: every key with its default, whose type is the
key's type, and its range rules) and PRESETS (name -> overrides); older kinds a flat DEFAULTS
dict and a validate(). Resolution is strict because a typo in a sweep must fail loudly
(exit 2, never retried) instead of silently running the default: unknown keys, wrong types
and values out of range raise ConfigError naming the key.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any, ClassVar, Mapping, NoReturn

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


# ---------------------------------------------------------------------------------------------
# Typed kind configs: one dataclass per kind, one validation path for all of them.
#
#     @dataclass(frozen=True)
#     class Config(KindConfig, kind="mykind"):
#         steps: int = setting(100, gt=0)  # training steps
#         device: str = setting("auto", choices=("auto", "cpu", "cuda"))
#
#         def check(self) -> None:  # rules that involve several keys
#             if self.warmup > self.steps:
#                 self.bad("warmup", "must be <= steps")
#
# The fields are the declaration (`kinds --json` lists their defaults); a field's rules and
# the cross-key `check()` are the only range checks, so a kind states each rule once and every
# kind words its errors the same way. Resolution stays dict-based (defaults <- preset <-
# overrides, above) so a kind that still declares DEFAULTS + validate() resolves unchanged.

_RULES = ("gt", "ge", "lt", "le")


def setting(default: Any, *, choices: tuple | None = None, gt: Any = None, ge: Any = None, lt: Any = None,
            le: Any = None) -> Any:
    """A config field with its default and its range rules (checked by KindConfig.validate)."""
    if isinstance(default, (list, dict)):
        raise TypeError("config defaults are scalars (a mutable default would be shared between configs)")
    rules = {"choices": choices, "gt": gt, "ge": ge, "lt": lt, "le": le}
    return dataclasses.field(default=default, metadata={k: v for k, v in rules.items() if v is not None})


def _num(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _range_text(rules: Mapping[str, Any], is_int: bool) -> str:
    lower = ("gt", rules["gt"]) if "gt" in rules else ("ge", rules["ge"]) if "ge" in rules else None
    upper = ("lt", rules["lt"]) if "lt" in rules else ("le", rules["le"]) if "le" in rules else None
    if lower and upper:
        if is_int and lower[0] == "ge" and upper[0] == "le":
            return f"must be in {_num(lower[1])}..{_num(upper[1])}"
        left = "(" if lower[0] == "gt" else "["
        right = ")" if upper[0] == "lt" else "]"
        return f"must be in {left}{_num(lower[1])}, {_num(upper[1])}{right}"
    op, bound = lower or upper  # type: ignore[misc]
    return f"must be {({'gt': '>', 'ge': '>=', 'lt': '<', 'le': '<='})[op]} {_num(bound)}"


def _breaks(rules: Mapping[str, Any], value: Any) -> bool:
    return (("gt" in rules and not value > rules["gt"]) or ("ge" in rules and not value >= rules["ge"])
            or ("lt" in rules and not value < rules["lt"]) or ("le" in rules and not value <= rules["le"]))


class KindConfig:
    """Base of a kind's typed config (a dataclass). Subclass with `kind="name"`."""

    KIND: ClassVar[str] = ""

    def __init_subclass__(cls, kind: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if kind:
            cls.KIND = kind

    @classmethod
    def defaults(cls) -> dict:
        """The declaration: every key with its default (the default's type is the key's type)."""
        return {f.name: f.default for f in dataclasses.fields(cls)}  # type: ignore[arg-type]

    @classmethod
    def validate(cls, config: Mapping[str, Any]) -> "KindConfig":
        """Check a resolved config (types, each field's rules, then `check()`); ConfigError names the key."""
        fields = dataclasses.fields(cls)  # type: ignore[arg-type]
        known = {f.name for f in fields}
        for key in config:
            if key not in known:
                raise ConfigError(f"key '{key}' is not a config key of kind '{cls.KIND}' (known: {', '.join(sorted(known))})")
        values = {}
        for f in fields:
            if f.name not in config:
                raise ConfigError(f"key '{f.name}' of kind '{cls.KIND}' is missing")
            value = _check_value(cls.KIND, f.name, config[f.name], f.default)
            choices = f.metadata.get("choices")
            if choices is not None and value not in choices:
                raise cls._error(f.name, f"must be one of {', '.join(choices)}", value)
            if any(r in f.metadata for r in _RULES) and _breaks(f.metadata, value):
                raise cls._error(f.name, _range_text(f.metadata, isinstance(f.default, int)), value)
            values[f.name] = value
        instance = cls(**values)  # type: ignore[call-arg]
        instance.check()
        return instance

    def check(self) -> None:
        """Rules that involve several keys (or read oddly as a bound); call self.bad(key, why)."""

    @classmethod
    def _error(cls, key: str, why: str, value: Any) -> ConfigError:
        return ConfigError(f"key '{key}' of kind '{cls.KIND}' {why}, got {value!r}")

    def bad(self, key: str, why: str) -> NoReturn:
        raise self._error(key, why, getattr(self, key))

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)  # type: ignore[call-overload]


def kind_tables(kind: Any) -> tuple[dict, Mapping[str, Mapping[str, Any]]]:
    """(defaults, presets) of a kind module: from its Config, or its DEFAULTS dict (older kinds)."""
    config_cls = getattr(kind, "Config", None)
    defaults = config_cls.defaults() if config_cls is not None else dict(kind.DEFAULTS)
    return defaults, kind.PRESETS


def resolve_kind(name: str, kind: Any, raw: Mapping[str, Any]) -> tuple[dict, str | None]:
    """The one path from a parsed config file to a kind's checked config (plain dict) and preset."""
    defaults, presets = kind_tables(kind)
    resolved, preset = resolve_config(name, defaults, presets, raw)
    config_cls = getattr(kind, "Config", None)
    if config_cls is not None:
        config_cls.validate(resolved)
    elif hasattr(kind, "validate"):
        kind.validate(resolved)
    return resolved, preset
