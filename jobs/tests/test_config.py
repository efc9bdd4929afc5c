import json

import pytest
from conftest import job_env, run_job, write_config

from ladder_jobs.config import ConfigError, parse_config_text, resolve_config
from ladder_jobs.kinds import synthetic

D, P = synthetic.DEFAULTS, synthetic.PRESETS


def resolve(raw):
    return resolve_config("synthetic", D, P, raw)


def test_defaults_then_preset_then_overrides():
    config, preset = resolve({"preset": "xs", "steps": 7})
    assert preset == "xs"
    assert config["scale"] == 1e5  # from the preset
    assert config["steps"] == 7  # override
    assert config["noise"] == D["noise"]  # default
    assert "preset" not in config  # the resolved values alone define the run
    assert set(config) == set(D)
    # an override beats the preset
    assert resolve({"preset": "l", "scale": 3e3})[0]["scale"] == 3e3
    assert [resolve({"preset": p})[0]["scale"] for p in ("xs", "s", "m", "l")] == [1e5, 1e6, 1e7, 1e8]


def test_no_preset_is_defaults():
    config, preset = resolve({})
    assert config == D and preset is None
    assert config is not D  # a copy: a job mutating its config must not change the defaults


def test_unknown_key_names_key_and_kind():
    with pytest.raises(ConfigError, match=r"key 'stpes' is not a config key of kind 'synthetic' \(known: .*steps"):
        resolve({"stpes": 10})


@pytest.mark.parametrize(
    "key,value,expected",
    [
        ("steps", "10", "int"),
        ("steps", True, "int"),  # bool is not int
        ("steps", 10.5, "int"),
        ("noise", False, "float"),
        ("noise", "0.1", "float"),
    ],
)
def test_wrong_type_names_key_and_type(key, value, expected):
    with pytest.raises(ConfigError) as e:
        resolve({key: value})
    assert f"key '{key}'" in str(e.value) and f"expects {expected}" in str(e.value)


def test_int_accepted_for_float():
    config, _ = resolve({"scale": 1000000, "noise": 0})
    assert config["scale"] == 1e6 and type(config["scale"]) is float
    assert type(config["noise"]) is float


def test_unknown_preset_and_bad_preset_type():
    with pytest.raises(ConfigError, match=r"unknown preset 'xxl'.*known: xs, s, m, l"):
        resolve({"preset": "xxl"})
    with pytest.raises(ConfigError, match="'preset' expects str"):
        resolve({"preset": 3})


def test_non_json_constants_and_non_objects_rejected():
    with pytest.raises(ConfigError, match="NaN"):
        parse_config_text('{"noise": NaN}')
    with pytest.raises(ConfigError, match="JSON object"):
        parse_config_text("[1, 2]")
    with pytest.raises(ConfigError, match="not valid JSON"):
        parse_config_text("{steps: 3}")


def test_cli_unknown_key_exits_2_with_one_line(tmp_path):
    r = run_job(["run", "--kind", "synthetic", "--config", str(write_config(tmp_path, {"stpes": 3}))], job_env(tmp_path))
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0
    assert r.stderr.startswith("config error: key 'stpes' is not a config key of kind 'synthetic'")
    assert not (tmp_path / "out").exists()  # nothing ran


def test_cli_wrong_type_and_range_exit_2(tmp_path):
    env = job_env(tmp_path)
    r = run_job(["run", "--kind", "synthetic", "--config", str(write_config(tmp_path, {"width": 1.5}))], env)
    assert r.returncode == 2 and "key 'width'" in r.stderr and "expects int" in r.stderr
    r = run_job(["run", "--kind", "synthetic", "--config", str(write_config(tmp_path, {"steps": 0}))], env)
    assert r.returncode == 2 and "key 'steps'" in r.stderr
    r = run_job(["run", "--kind", "synthetic", "--config", str(tmp_path / "missing.json")], env)
    assert r.returncode == 2 and "cannot read config file" in r.stderr


def test_cli_unknown_kind_exits_2(tmp_path):
    r = run_job(["run", "--kind", "nope", "--config", str(write_config(tmp_path, {}))], job_env(tmp_path))
    assert r.returncode == 2
    assert r.stderr.strip().startswith("unknown kind 'nope' (known: ")
    assert "synthetic" in r.stderr


def test_cli_kinds_and_config(tmp_path):
    r = run_job(["kinds"], job_env(tmp_path))
    assert r.returncode == 0
    listed = dict(line.split(None, 1) for line in r.stdout.splitlines())
    assert listed["synthetic"] == synthetic.HELP
    listing = json.loads(run_job(["kinds", "--json"], job_env(tmp_path)).stdout)
    assert listing["synthetic"]["presets"]["m"] == {"scale": 1e7}
    r = run_job(["config", "--kind", "synthetic", "--config", str(write_config(tmp_path, {"preset": "m", "seed": 4}))], job_env(tmp_path))
    assert r.returncode == 0
    assert json.loads(r.stdout) == {**D, "scale": 1e7, "seed": 4}


def test_cli_bad_environment_exits_2(tmp_path):
    cfg = str(write_config(tmp_path, {"steps": 2}))
    r = run_job(["run", "--kind", "synthetic", "--config", cfg], job_env(tmp_path, LADDER_ATTEMPT="two"))
    assert r.returncode == 2 and "LADDER_ATTEMPT" in r.stderr
    r = run_job(["run", "--kind", "synthetic", "--config", cfg], job_env(tmp_path, LADDER_INGEST_URL="http://127.0.0.1:9"))
    assert r.returncode == 2 and "LADDER_TRIAL_ID" in r.stderr
