"""ssl kind end to end, as the executor runs it: a subprocess in offline mode."""

import json

import pytest
from conftest import checkpoint_written, job_env, read_points, run_job, stop_with_sigterm, write_config

from ladder_jobs.kinds import ssl
from ladder_jobs.kinds.ssl import risk

# Tests marked `torch` run a torch kind; the bad-config ones stop before torch is imported.

# xs, cut down so a run takes seconds: the protocol, not the accuracy, is under test here
TINY = {
    "preset": "xs",
    "n_pretrain": 300,
    "n_test": 200,
    "steps": 30,
    "approx_steps": 30,
    "batch_size": 64,
    "checkpoint_every": 10,
    "probe_iters": 40,
    "fewshot_draws": 2,
}
TIMING = {"samples_per_s", "eval_s"}  # wall-clock metrics: not expected to repeat
EXPECTED_METRICS = {
    "pretrain_loss", "samples_per_s", "n_params", "n_pretrain",
    "probe_acc_full", "probe_acc_1shot", "probe_acc_5shot", "probe_acc_30shot",
    "approx_error", "usability_error", "probe_gen_error", "encoder_gen_error", "total_error",
}


def run_ssl(tmp_path, config, timeout=120):
    cfg = write_config(tmp_path, config)
    return run_job(["run", "--kind", "ssl", "--config", str(cfg)], job_env(tmp_path), timeout=timeout)


def result_of(tmp_path):
    return json.loads((tmp_path / "out" / "result.json").read_text())


def curve(tmp_path):
    points = read_points(tmp_path / "out" / "metrics.jsonl")  # also: a repeated point repeats its value
    return {k: v for k, v in points.items() if k[0] not in TIMING}


def assert_adds_up(metrics, suffix=""):
    total = sum(metrics[c + suffix] for c in risk.COMPONENTS)
    assert abs(total - metrics["total_error" + suffix]) < 1e-9


@pytest.mark.torch
def test_offline_run_then_sigterm_and_resume_give_the_same_numbers(tmp_path):
    # ref: an uninterrupted run. cut: the same config and seed (step_sleep only slows it down),
    # SIGTERMed mid pre-training, then resumed. Equal curves and results show both that a seed
    # determines the numbers and that resuming does not change them.
    ref, cut = tmp_path / "ref", tmp_path / "cut"
    ref.mkdir(), cut.mkdir()
    r = run_ssl(ref, TINY)
    assert r.returncode == 0, r.stderr
    res = result_of(ref)
    m = res["metrics"]
    assert EXPECTED_METRICS <= set(m)
    resolved = {**ssl.DEFAULTS, **ssl.PRESETS["xs"], **{k: v for k, v in TINY.items() if k != "preset"}}
    assert res["config"] == resolved and res["meta"]["preset"] == "xs"
    assert m["n_pretrain"] == 300 and m["n_params"] > 0
    assert_adds_up(m)
    assert_adds_up(m, "_5shot")
    assert m["total_error"] == pytest.approx(1 - m["probe_acc_full"])
    assert m["total_error_5shot"] == pytest.approx(1 - m["probe_acc_5shot"])
    assert m["probe_acc_full"] > 0.3  # 10 classes: chance is 0.1
    points = curve(ref)
    assert sorted(s for (n, s) in points if n == "pretrain_loss") == list(range(1, 31))
    assert ("probe_acc_full", 30) in points and ("encoder_gen_error", 30) in points
    # every checkpoint carries the resolved config
    import torch

    ckpts = sorted((ref / "ckpt").glob("ckpt-*.pt"))
    assert ckpts and ckpts[-1].name == "ckpt-00000060.pt"
    assert torch.load(ckpts[-1], map_location="cpu")["config"] == resolved

    config = {**TINY, "step_sleep": 0.05}
    # mid pre-training
    stopped_at = stop_with_sigterm("ssl", write_config(cut, config), job_env(cut), checkpoint_written(cut / "ckpt", 10))
    assert 10 <= stopped_at < 60

    r = run_ssl(cut, config)
    assert r.returncode == 0, r.stderr
    res_cut = result_of(cut)
    assert res_cut["meta"]["resumed_from_step"] == stopped_at
    assert curve(cut) == points
    m_cut = res_cut["metrics"]
    assert {k: v for k, v in m_cut.items() if k not in TIMING} == {k: v for k, v in m.items() if k not in TIMING}


@pytest.mark.torch
def test_supervised_baseline_beats_chance_on_digits(tmp_path):
    r = run_ssl(tmp_path, {**TINY, "method": "supervised", "steps": 60, "approx_steps": 60, "n_pretrain": 600})
    assert r.returncode == 0, r.stderr
    m = result_of(tmp_path)["metrics"]
    assert m["supervised_test_acc"] > 0.7  # chance is 0.1
    assert m["probe_acc_full"] > 0.7
    assert_adds_up(m)


@pytest.mark.parametrize(
    "bad, key",
    [({"no_such_key": 1}, "no_such_key"), ({"width": "wide"}, "width"), ({"method": "byol"}, "method")],
)
def test_bad_config_exits_2(tmp_path, bad, key):
    r = run_ssl(tmp_path, {"preset": "xs", **bad})
    assert r.returncode == 2, r.stderr
    assert key in r.stderr
    assert not (tmp_path / "out" / "result.json").exists()
