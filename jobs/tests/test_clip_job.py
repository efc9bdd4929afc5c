"""clip kind end to end, as the executor runs it: a subprocess in offline mode."""

import json

import pytest
from conftest import checkpoint_written, job_env, read_points, run_job, stop_with_sigterm, write_config

from ladder_jobs.kinds import clip

# xs cut down so a run takes seconds: the protocol, not the accuracy, is under test here.
# Some captions name nothing and are filtered out, so the filter's path is exercised too.
TINY = {
    "preset": "xs",
    "device": "cpu",
    "n_pretrain": 256,
    "n_val": 96,
    "n_probe": 200,
    "n_test": 200,
    "descriptiveness": 3,
    "variability": 2,
    "label_noise": 0.1,
    "nondescriptive_frac": 0.2,
    "caption_filter": 1,
    "continuous": True,  # the rich world (binned continuous attributes, clutter) end to end
    "distractors": 1,
    "steps": 24,
    "batch_size": 48,
    "width": 8,
    "checkpoint_every": 8,
    "eval_every": 8,
    "probe_iters": 25,
    "fewshot_draws": 1,
}
TIMING = {"samples_per_s", "eval_s"}  # wall-clock metrics: not expected to repeat
TASK_METRICS = {f"{p}_{t}" for p in ("probe_acc", "fewshot_acc")
                for t in ("class", "shape", "texture", "shade", "size", "position", "class_tasks", "other_tasks")}


def run_clip(tmp_path, config, timeout=180):
    cfg = write_config(tmp_path, config)
    return run_job(["run", "--kind", "clip", "--config", str(cfg)], job_env(tmp_path), timeout=timeout)


def result_of(tmp_path):
    return json.loads((tmp_path / "out" / "result.json").read_text())


def curve(tmp_path):
    points = read_points(tmp_path / "out" / "metrics.jsonl")  # also: a repeated point repeats its value
    return {k: v for k, v in points.items() if k[0] not in TIMING}


def without_timing(metrics):
    return {k: v for k, v in metrics.items() if k not in TIMING}


@pytest.mark.torch
def test_clip_run_then_sigterm_and_resume_give_the_same_numbers(tmp_path):
    # ref: an uninterrupted run. cut: the same config and seed (step_sleep only slows it down),
    # SIGTERMed mid-training, then resumed. Equal curves and results show both that a seed
    # determines the numbers on CPU and that resuming does not change them.
    ref, cut = tmp_path / "ref", tmp_path / "cut"
    ref.mkdir(), cut.mkdir()
    r = run_clip(ref, TINY)
    assert r.returncode == 0, r.stderr
    res = result_of(ref)
    m = res["metrics"]
    assert {"probe_acc", "fewshot_acc", "val_loss", "train_loss", "temperature", "n_pairs"} | TASK_METRICS <= set(m)
    resolved = {**clip.DEFAULTS, **clip.PRESETS["xs"], **{k: v for k, v in TINY.items() if k != "preset"}}
    assert res["config"] == resolved and res["meta"]["preset"] == "xs"
    assert m["n_pairs"] < 256  # the filter dropped the non-descriptive captions' pairs
    # it was learned (a margin, not !=: the initial value itself comes back through float32)
    assert abs(m["temperature"] - clip.DEFAULTS["temperature"]) > 1e-5
    assert all(0.0 <= m[k] <= 1.0 for k in TASK_METRICS)
    points = curve(ref)
    assert sorted(s for (n, s) in points if n == "train_loss") == list(range(1, 25))
    assert sorted(s for (n, s) in points if n == "val_loss") == [8, 16, 24]
    assert ("probe_acc", 24) in points

    config = {**TINY, "step_sleep": 0.1}
    # mid-training
    stopped_at = stop_with_sigterm("clip", write_config(cut, config), job_env(cut), checkpoint_written(cut / "ckpt", 8), 120)
    assert 8 <= stopped_at < 24

    r = run_clip(cut, config)
    assert r.returncode == 0, r.stderr
    res_cut = result_of(cut)
    assert res_cut["meta"]["resumed_from_step"] == stopped_at
    assert curve(cut) == points
    assert without_timing(res_cut["metrics"]) == without_timing(m)


@pytest.mark.torch
def test_simclr_runs_on_every_image_with_its_fixed_temperature(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    config = {**TINY, "method": "simclr", "steps": 8}
    r = run_clip(a, config)
    assert r.returncode == 0, r.stderr
    m = result_of(a)["metrics"]
    assert m["n_pairs"] == 256  # captions (and their filter) play no part
    assert m["temperature"] == clip.DEFAULTS["temperature"]
    assert TASK_METRICS <= set(m)
    # the encoder is the same size as clip's: the comparison is of objectives, not architectures
    r = run_clip(b, {**TINY, "steps": 8})
    assert r.returncode == 0, r.stderr
    m_clip = result_of(b)["metrics"]
    assert m_clip["n_params"] == m["n_params"] and m_clip["n_params_total"] > m["n_params_total"]


@pytest.mark.parametrize(
    "bad, key",
    [({"no_such_key": 1}, "no_such_key"), ({"width": "wide"}, "width"), ({"descriptiveness": 9}, "descriptiveness")],
)
def test_bad_config_exits_2(tmp_path, bad, key):
    r = run_clip(tmp_path, {"preset": "xs", **bad}, timeout=60)
    assert r.returncode == 2, r.stderr
    assert key in r.stderr
    assert not (tmp_path / "out" / "result.json").exists()
