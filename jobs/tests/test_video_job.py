"""The `video` kind end to end, as the executor runs it: a subprocess with LADDER_* env, offline."""

import json

import pytest
from conftest import job_env, logged_step, read_points, run_job, stop_with_sigterm, write_config

# Tests marked `torch` run a torch kind; the bad-config ones stop before torch is imported.

# The xs preset, shrunk so that one run takes seconds on 2 busy cores.
TINY = {"preset": "xs", "enc_width": 4, "d_model": 16, "n_heads": 2, "n_layers": 1, "batch_size": 6,
        "n_train": 40, "n_test": 12, "eval_batch_size": 6, "steps": 10, "eval_every": 5, "checkpoint_every": 3,
        "step_sleep": 0.2}
TIMING = ("clips_per_s",)  # depends on wall time, not on the computation
TASKS = ("direction", "speed", "order", "count", "overall")


def run_video(tmp_path, config, timeout=120):
    return run_job(["run", "--kind", "video", "--config", str(write_config(tmp_path, config))], job_env(tmp_path),
                   timeout=timeout)


def curve(tmp_path) -> dict:
    return {k: v for k, v in read_points(tmp_path / "out" / "metrics.jsonl").items() if k[0] not in TIMING}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run of the config the resume test interrupts."""
    tmp = tmp_path_factory.mktemp("ref")
    r = run_video(tmp, TINY)
    assert r.returncode == 0, r.stderr
    return tmp


@pytest.mark.torch
def test_offline_run_writes_result_with_both_samplings(reference):
    result = json.loads((reference / "out" / "result.json").read_text())
    m = result["metrics"]
    for mode in ("fps", "uniform"):
        for task in TASKS:
            assert 0.0 <= m[f"acc_{mode}_{task}"] <= 1.0
        assert m[f"acc_{mode}_overall"] == pytest.approx(sum(m[f"acc_{mode}_{t}"] for t in TASKS[:4]) / 4)
        assert m[f"video_tps_{mode}"] > 0
    # fps sampling at 2 fps, 4 tokens a frame: 8 tokens per second of video (a few capped clips aside)
    assert m["video_tps_fps"] == pytest.approx(8.0, abs=0.6)
    assert m["n_params"] > 0 and m["clips_per_s"] > 0 and m["steps"] == 10
    assert result["config"]["train_sampling"] == "fps" and result["config"]["d_model"] == 16  # full config
    assert result["meta"]["preset"] == "xs"
    points = read_points(reference / "out" / "metrics.jsonl")
    assert sorted(s for (n, s) in points if n == "train_loss") == list(range(1, 11))
    assert sorted(s for (n, s) in points if n == "acc_uniform_overall") == [5, 10]
    assert all(v == pytest.approx(8.0, abs=1.0) for (n, _), v in points.items() if n == "video_tps")


@pytest.mark.torch
def test_same_seed_same_numbers(reference, tmp_path):
    r = run_video(tmp_path, TINY)
    assert r.returncode == 0, r.stderr
    assert curve(tmp_path) == curve(reference)  # exact, not approx


@pytest.mark.torch
def test_sigterm_checkpoint_resume_same_curve(reference, tmp_path):
    cfg_path = write_config(tmp_path, TINY)
    env = job_env(tmp_path)
    # step 4 logged: after the step-3 checkpoint, before the end
    stopped_at = stop_with_sigterm("video", cfg_path, env, logged_step(tmp_path / "out", 4))
    assert 4 <= stopped_at < 10
    r = run_job(["run", "--kind", "video", "--config", str(cfg_path)], env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert f"resuming video from checkpoint at step {stopped_at}" in r.stderr
    assert curve(tmp_path) == curve(reference)
    assert json.loads((tmp_path / "out" / "result.json").read_text())["meta"]["resumed_from_step"] == stopped_at


@pytest.mark.torch
def test_uniform_perceiver_transformer_run(tmp_path):
    cfg = {**TINY, "train_sampling": "uniform", "resampler": "perceiver", "temporal": "transformer",
           "tokens_per_frame": 1, "steps": 2,
           "eval_every": 0, "step_sleep": 0.0}
    r = run_video(tmp_path, cfg)
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "out" / "result.json").read_text())["metrics"]
    assert 0 <= m["acc_fps_overall"] <= 1 and 0 <= m["acc_uniform_overall"] <= 1
    assert m["video_tps_fps"] == pytest.approx(2.0, abs=0.2)  # 1 token a frame at 2 fps
    # uniform: 12 frames whatever the duration (4-8 s) -> 1.5..3 tokens per second of video
    points = read_points(tmp_path / "out" / "metrics.jsonl")
    assert all(1.4 < v < 3.1 for (n, _), v in points.items() if n == "video_tps")


@pytest.mark.parametrize("override,needle", [({"no_such_key": 1}, "no_such_key"), ({"train_sampling": "random"},
                                             "train_sampling"), ({"tokens_per_frame": 2.5}, "tokens_per_frame")])
def test_bad_config_exits_2(tmp_path, override, needle):
    r = run_video(tmp_path, {**TINY, **override})
    assert r.returncode == 2, r.stderr
    assert needle in r.stderr
