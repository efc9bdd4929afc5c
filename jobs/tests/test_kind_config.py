"""The typed kind configs: one declaration (dataclass fields with their rules) and one
validation path that names the bad key, for every kind and for a kind still on DEFAULTS."""

import dataclasses
import importlib
import types
from dataclasses import dataclass

import pytest

from ladder_jobs.config import ConfigError, KindConfig, kind_tables, resolve_kind, setting
from ladder_jobs.kinds import KINDS


@dataclass(frozen=True)
class Toy(KindConfig, kind="toy"):
    steps: int = setting(10, gt=0)  # a comment survives as documentation only
    lr: float = setting(0.1, gt=0.0, le=1.0)
    frac: float = setting(0.5, ge=0.0, lt=1.0)
    depth: int = setting(3, ge=1, le=8)
    mode: str = setting("a", choices=("a", "b"))
    flag: bool = True
    seed: int = 0

    def check(self) -> None:
        if self.depth > self.steps:
            self.bad("depth", "must be <= steps")


TOY = types.SimpleNamespace(Config=Toy, PRESETS={"big": {"steps": 100}}, HELP="toy")


def resolve(raw):
    return resolve_kind("toy", TOY, raw)


def test_defaults_preset_overrides_through_the_dataclass():
    config, preset = resolve({"preset": "big", "lr": 1})
    assert preset == "big"
    assert config == {"steps": 100, "lr": 1.0, "frac": 0.5, "depth": 3, "mode": "a", "flag": True, "seed": 0}
    assert isinstance(config["lr"], float)  # an int where a float is declared is coerced
    assert kind_tables(TOY) == (Toy.defaults(), TOY.PRESETS)


@pytest.mark.parametrize("raw, message", [
    ({"stpes": 1}, r"key 'stpes' is not a config key of kind 'toy' \(known: depth, flag, frac, lr, mode, seed, steps\)"),
    ({"steps": 1.5}, r"key 'steps' of kind 'toy' expects int, got float \(1.5\)"),
    ({"flag": 1}, r"key 'flag' of kind 'toy' expects bool"),
    ({"steps": 0}, r"key 'steps' of kind 'toy' must be > 0, got 0$"),
    ({"lr": 1.5}, r"key 'lr' of kind 'toy' must be in \(0, 1\], got 1.5$"),
    ({"lr": 0}, r"key 'lr' of kind 'toy' must be in \(0, 1\], got 0.0$"),
    ({"frac": 1.0}, r"key 'frac' of kind 'toy' must be in \[0, 1\), got 1.0$"),
    ({"depth": 9}, r"key 'depth' of kind 'toy' must be in 1..8, got 9$"),
    ({"depth": 0}, r"key 'depth' of kind 'toy' must be in 1..8, got 0$"),
    ({"mode": "c"}, r"key 'mode' of kind 'toy' must be one of a, b, got 'c'$"),
    ({"depth": 5, "steps": 4}, r"key 'depth' of kind 'toy' must be <= steps, got 5$"),
])
def test_bad_values_name_the_key(raw, message):
    with pytest.raises(ConfigError, match=message):
        resolve(raw)


def test_bounds_are_inclusive_or_not_as_declared():
    for ok in ({"lr": 1.0}, {"frac": 0.0}, {"depth": 1}, {"depth": 3, "steps": 3}, {"mode": "b"}):
        resolve(ok)


def test_validate_checks_a_dict_given_directly():
    assert Toy.validate(Toy.defaults()).steps == 10
    with pytest.raises(ConfigError, match="key 'seed' of kind 'toy' is missing"):
        Toy.validate({k: v for k, v in Toy.defaults().items() if k != "seed"})
    with pytest.raises(ConfigError, match="key 'extra' is not a config key"):
        Toy.validate({**Toy.defaults(), "extra": 1})
    with pytest.raises(ConfigError, match="key 'steps' of kind 'toy' expects int"):
        Toy.validate({**Toy.defaults(), "steps": "10"})


def test_a_kind_still_on_defaults_and_validate_resolves_the_same_way():
    seen = []

    def validate(config):
        seen.append(config)
        if config["steps"] > 5:
            raise ConfigError("key 'steps' of kind 'old' must be <= 5")

    old = types.SimpleNamespace(DEFAULTS={"steps": 1}, PRESETS={}, validate=validate)
    assert resolve_kind("old", old, {"steps": 2}) == ({"steps": 2}, None) and seen == [{"steps": 2}]
    with pytest.raises(ConfigError, match="key 'steps' of kind 'old' must be <= 5"):
        resolve_kind("old", old, {"steps": 6})
    with pytest.raises(ConfigError, match="key 'nope' is not a config key of kind 'old'"):
        resolve_kind("old", old, {"nope": 1})
    assert kind_tables(old) == ({"steps": 1}, {})


def test_mutable_defaults_are_refused():
    with pytest.raises(TypeError, match="scalars"):
        setting([1, 2])


@pytest.mark.parametrize("name", sorted(KINDS))
def test_every_kind_declares_one_config_and_its_presets_pass_it(name):
    kind = importlib.import_module(KINDS[name])
    defaults, presets = kind_tables(kind)
    if hasattr(kind, "Config"):
        assert dataclasses.is_dataclass(kind.Config) and kind.Config.KIND == name
        assert kind.DEFAULTS == defaults  # the module's dict view is the dataclass, not a second table
        for f in dataclasses.fields(kind.Config):  # the annotation is the default's type
            assert f.type in (type(f.default), type(f.default).__name__), f.name
    for preset in [None, *presets]:
        resolve_kind(name, kind, {} if preset is None else {"preset": preset})
