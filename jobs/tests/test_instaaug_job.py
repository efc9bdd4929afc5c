"""instaaug kind end to end, as the executor runs it: a subprocess in offline mode."""

import json

import pytest
from conftest import checkpoint_written, job_env, read_points, run_job, stop_with_sigterm, write_config

from ladder_jobs.kinds import instaaug

# Tests marked `torch` run a torch kind; the bad-config ones stop before torch is imported.

# xs, cut down so a run takes seconds: the protocol, not the accuracy, is under test here
TINY = {"preset": "xs", "n_train": 256, "n_test": 256, "steps": 30, "batch_size": 32, "checkpoint_every": 10,
        "width": 8, "device": "cpu"}
TIMING = {"samples_per_s", "eval_s"}  # wall-clock metrics: not expected to repeat
GROUP_METRICS = {f"{k}_group{g}" for g in "AB" for k in
                 ("acc", "range_rotate", "range_scale", "range_translate_x", "range_translate_y", "range_gain")}


def run_kind(tmp_path, config, timeout=180):  # a generous bound: the 2 cores are shared
    cfg = write_config(tmp_path, config)
    return run_job(["run", "--kind", "instaaug", "--config", str(cfg)], job_env(tmp_path), timeout=timeout)


def result_of(tmp_path):
    return json.loads((tmp_path / "out" / "result.json").read_text())


def curve(tmp_path):
    points = read_points(tmp_path / "out" / "metrics.jsonl")  # also: a repeated point repeats its value
    return {k: v for k, v in points.items() if k[0] not in TIMING}


@pytest.mark.torch
def test_run_then_sigterm_and_resume_give_the_same_numbers(tmp_path):
    # ref: an uninterrupted run. cut: the same config and seed (step_sleep only slows it down),
    # SIGTERMed mid-training, then resumed. Equal curves and results show both that a seed
    # determines the numbers on CPU and that resuming does not change them.
    ref, cut = tmp_path / "ref", tmp_path / "cut"
    ref.mkdir(), cut.mkdir()
    r = run_kind(ref, TINY)
    assert r.returncode == 0, r.stderr
    res = result_of(ref)
    m = res["metrics"]
    resolved = {**instaaug.DEFAULTS, **instaaug.PRESETS["xs"], **{k: v for k, v in TINY.items() if k != "preset"}}
    assert res["config"] == resolved and res["meta"]["preset"] == "xs"
    assert GROUP_METRICS | {"acc", "entropy", "train_loss"} <= set(m)
    assert 0.0 <= m["acc"] <= 1.0 and m["n_train"] == 256
    points = curve(ref)
    assert sorted(s for (n, s) in points if n == "train_loss") == list(range(1, 31))
    assert ("entropy", 30) in points and ("range_rotate_groupA", 30) in points

    config = {**TINY, "step_sleep": 0.05}
    stopped_at = stop_with_sigterm("instaaug", write_config(cut, config), job_env(cut), checkpoint_written(cut / "ckpt", 10))
    assert 10 <= stopped_at < 30

    r = run_kind(cut, config)
    assert r.returncode == 0, r.stderr
    res_cut = result_of(cut)
    assert res_cut["meta"]["resumed_from_step"] == stopped_at
    assert curve(cut) == points
    assert {k: v for k, v in res_cut["metrics"].items() if k not in TIMING} == \
        {k: v for k, v in m.items() if k not in TIMING}


@pytest.mark.torch
def test_learned_rotation_range_is_smaller_where_rotation_changes_the_class(tmp_path):
    # group A's class is an orientation, group B's a shape at any angle: the module must learn a
    # narrower rotation range for A. Both start at the same box (init_range of the cap).
    config = {**TINY, "n_train": 512, "steps": 250, "batch_size": 64, "checkpoint_every": 0, "log_every": 25,
              "method": "supervised", "aug": "instaaug"}
    r = run_kind(tmp_path, config)
    assert r.returncode == 0, r.stderr
    m = result_of(tmp_path)["metrics"]
    start = 2 * instaaug.DEFAULTS["init_range"] * instaaug.DEFAULTS["max_rotate"]  # width, degrees
    assert m["range_rotate_groupA"] < 0.6 * start  # A narrowed from where both started
    assert m["range_rotate_groupB"] > 1.5 * m["range_rotate_groupA"], m
    assert m["acc_groupA"] > 0.5 and m["acc_groupB"] > 0.5  # 4 classes per group: chance is 0.25


@pytest.mark.torch
@pytest.mark.parametrize("aug", ["none", "fixed"])
def test_simclr_with_input_independent_augmentation_runs_and_probes(tmp_path, aug):
    r = run_kind(tmp_path, {**TINY, "method": "simclr", "aug": aug, "steps": 10, "checkpoint_every": 0})
    assert r.returncode == 0, r.stderr
    m = result_of(tmp_path)["metrics"]
    assert GROUP_METRICS <= set(m) and "entropy" not in m
    half = {"none": 0.0, "fixed": 2 * instaaug.DEFAULTS["fixed_rotate"]}[aug]
    assert m["range_rotate_groupA"] == pytest.approx(half) and m["range_rotate_groupB"] == pytest.approx(half)
    assert m["acc"] > 0.2  # a probe on 8 classes, even on a barely trained encoder: chance is 0.125


@pytest.mark.parametrize(
    "bad, key",
    [({"no_such_key": 1}, "no_such_key"), ({"width": "wide"}, "width"), ({"aug": "learned"}, "aug"),
     ({"entropy_weight": -0.1}, "entropy_weight")],
)
def test_bad_config_exits_2(tmp_path, bad, key):
    r = run_kind(tmp_path, {"preset": "xs", **bad})
    assert r.returncode == 2, r.stderr
    assert key in r.stderr
    assert not (tmp_path / "out" / "result.json").exists()
