"""The synthetic kind end to end, as the executor runs it: a subprocess with LADDER_* env."""

import json
import signal
import subprocess
import sys
import time

import pytest
from conftest import JOBS_DIR, TOKEN, job_env, read_points, run_job, write_config

from ladder_jobs.kinds import synthetic
from ladder_jobs.kinds.synthetic import DEFAULTS, final_loss, point_values


# Literal values, printed once from this module. reference_points() below shares code with the job,
# so only these catch a change of the curve, the noise or the seed derivation (any such change
# breaks resume across versions, and the TypeScript simulated executor's copy of the kind).
PINNED_SEEDS = {(0, 1, 0): 4964578127960768432, (0, 2, 0): 15415986080105920549, (7, 30, 1): 16180708618567282836}
PINNED_OFFLINE = {("loss", 1): 7.33470333459071, ("loss", 25): 3.786467629615122, ("val_loss", 10): 4.440545710895204,
                  ("val_loss", 25): 3.8241483335967477}  # {"preset": "xs", "steps": 25}
PINNED_ONLINE = {("loss", 1): 7.031508119515788, ("loss", 30): 2.998422121910914,
                 ("val_loss", 30): 3.0470182542316233}  # {"steps": 30}
PINNED_RESUME = {("loss", 1): 7.030460385150843, ("loss", 30): 3.001309696927945,
                 ("val_loss", 20): 3.2542282457481764}  # {"steps": 30, "seed": 7}
PINNED_FAIL = {("loss", 20): 3.199371328551319, ("val_loss", 20): 3.2665702730386856}  # {"steps": 20}


def assert_pinned(points: dict, pinned: dict) -> None:
    for key, value in pinned.items():
        assert points[key] == pytest.approx(value, rel=1e-12, abs=0), key  # libm may differ in the last bit


def reference_points(config: dict) -> dict:
    """{(name, step): value} of an uninterrupted run, computed in process."""
    full = {**DEFAULTS, **config}
    lf = final_loss(full)
    return {(n, s): v for s in range(1, full["steps"] + 1) for n, v in point_values(full, s, lf).items()}


def run_synthetic(tmp_path, config, **env):
    return run_job(["run", "--kind", "synthetic", "--config", str(write_config(tmp_path, config))], job_env(tmp_path, **env))


def test_scaling_law_and_variant_ranking():
    def lf(**kw):
        return final_loss({**DEFAULTS, **kw})

    assert lf() == pytest.approx(1.5 + 50.0 * 1e6**-0.3)
    scales = [1e5, 1e6, 1e7, 1e8]
    assert [lf(scale=n) for n in scales] == sorted((lf(scale=n) for n in scales), reverse=True)
    variants = [{"lr": 3e-4}, {"lr": 1e-3}, {"lr": 3e-3, "width": 1024}, {"lr": 1e-5}, {"width": 64}]
    rankings = {tuple(sorted(range(len(variants)), key=lambda i: lf(scale=n, **variants[i]))) for n in scales}
    assert len(rankings) == 1  # the same order at every scale
    assert len({lf(**v) for v in variants}) == len(variants)  # and the knobs matter


def test_noise_is_seeded_and_stable():
    a = reference_points({"seed": 3})
    assert a == reference_points({"seed": 3})
    assert a != reference_points({"seed": 4})
    assert reference_points({"noise": 0.0})[("loss", 50)] == pytest.approx(
        final_loss(DEFAULTS) + (10.0 - final_loss(DEFAULTS)) * 51**-0.7
    )
    # pinned so a change of the RNG derivation (which would break resume across versions) shows
    for parts, seed in PINNED_SEEDS.items():
        assert synthetic.stable_seed(*parts) == seed, parts


def test_offline_run(tmp_path):
    r = run_synthetic(tmp_path, {"preset": "xs", "steps": 25})
    assert r.returncode == 0, r.stderr
    points = read_points(tmp_path / "out" / "metrics.jsonl")
    expected = reference_points({"scale": 1e5, "steps": 25})
    assert points == expected
    assert_pinned(points, PINNED_OFFLINE)
    assert sorted(s for (n, s) in points if n == "val_loss") == [10, 20, 25]
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["config"] == {**DEFAULTS, "scale": 1e5, "steps": 25}
    assert result["metrics"] == {
        "loss": expected[("loss", 25)],
        "val_loss": expected[("val_loss", 25)],
        "final_loss_noiseless": final_loss(result["config"]),
        "steps": 25.0,
    }
    assert result["metrics"]["final_loss_noiseless"] == pytest.approx(1.5 + 50.0 * 1e5**-0.3, rel=1e-12)
    assert result["meta"]["preset"] == "xs" and result["meta"]["attempt"] == 1
    ckpt = json.loads((tmp_path / "ckpt" / "ckpt-00000025.json").read_text())
    assert ckpt["config"] == result["config"] and ckpt["state"]["step"] == 25


def test_offline_default_dirs(tmp_path):
    env = job_env(tmp_path)
    del env["LADDER_OUTPUT_DIR"], env["LADDER_CHECKPOINT_DIR"]
    cfg = write_config(tmp_path, {"steps": 3})
    r = run_job(["run", "--kind", "synthetic", "--config", str(cfg)], env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "ladder-output" / "result.json").exists()
    assert (tmp_path / "ladder-output" / "metrics.jsonl").exists()
    assert (tmp_path / "ladder-output" / "checkpoints" / "ckpt-00000003.json").exists()


def test_online_run(ingest, tmp_path):
    ingest.script = [503]  # the first push fails once; the job retries and loses nothing
    r = run_synthetic(
        tmp_path,
        {"steps": 30},
        LADDER_INGEST_URL=ingest.url,
        LADDER_TRIAL_ID="tr-9",
        LADDER_INGEST_TOKEN=TOKEN,
    )
    assert r.returncode == 0, r.stderr
    assert TOKEN not in r.stdout + r.stderr
    delivered = {(p["name"], p["step"]): p["value"] for p in ingest.delivered_points()}
    assert delivered == reference_points({"steps": 30})
    assert_pinned(delivered, PINNED_ONLINE)
    assert len(ingest.ok("/metrics")) < len(delivered)  # batched
    assert ingest.requests[-1]["path"] == "/trials/tr-9/result"  # the result comes last
    body = ingest.requests[-1]["body"]
    assert body["config"] == {**DEFAULTS, "steps": 30} and body["meta"]["trial_id"] == "tr-9"
    assert set(body["metrics"]) == {"loss", "val_loss", "final_loss_noiseless", "steps"}
    assert not (tmp_path / "out" / "metrics.jsonl").exists()


def test_result_rejected_means_no_exit_0(ingest, tmp_path):
    ingest.script = [200, 401]  # points accepted, result refused: not a success
    r = run_synthetic(tmp_path, {"steps": 3}, LADDER_INGEST_URL=ingest.url, LADDER_TRIAL_ID="t", LADDER_INGEST_TOKEN=TOKEN)
    assert r.returncode == 1
    assert "HTTP 401" in r.stderr and TOKEN not in r.stderr


def test_sigterm_checkpoints_exits_143_and_resume_matches(tmp_path):
    config = {"steps": 30, "step_sleep": 0.02, "checkpoint_every": 100, "seed": 7}
    cfg = write_config(tmp_path, config)
    env = job_env(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ladder_jobs", "run", "--kind", "synthetic", "--config", str(cfg)],
        env=env, cwd=JOBS_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    metrics_file = tmp_path / "out" / "metrics.jsonl"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:  # wait until it is mid-run
        if metrics_file.exists() and len(metrics_file.read_text().splitlines()) >= 5:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=15)
    assert proc.returncode == 143, err
    ckpts = sorted((tmp_path / "ckpt").glob("ckpt-*.json"))
    assert len(ckpts) == 1  # written on stop, not by checkpoint_every
    stopped_at = json.loads(ckpts[0].read_text())["step"]
    assert 5 <= stopped_at < 30
    assert not (tmp_path / "out" / "result.json").exists()

    r = run_job(["run", "--kind", "synthetic", "--config", str(cfg)], {**env, "LADDER_ATTEMPT": "2"})
    assert r.returncode == 0, r.stderr
    assert f"resuming synthetic from checkpoint at step {stopped_at}" in r.stderr
    # union of both attempts == an uninterrupted run, value for value
    assert read_points(metrics_file) == reference_points(config)
    assert_pinned(read_points(metrics_file), PINNED_RESUME)
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["meta"]["resumed_from_step"] == stopped_at and result["meta"]["attempt"] == 2

    fresh = tmp_path / "fresh"
    fresh.mkdir()
    r = run_synthetic(fresh, {**config, "step_sleep": 0.0})
    assert r.returncode == 0
    assert read_points(fresh / "out" / "metrics.jsonl") == read_points(metrics_file)
    assert json.loads((fresh / "out" / "result.json").read_text())["metrics"] == result["metrics"]


def test_fail_attempts_crash_then_resume(tmp_path):
    config = {"steps": 20, "fail_attempts": 1, "checkpoint_every": 0}
    cfg = write_config(tmp_path, config)
    env = job_env(tmp_path, LADDER_ATTEMPT="1")
    r = run_job(["run", "--kind", "synthetic", "--config", str(cfg)], env)
    assert r.returncode == 1
    assert "simulated crash at step 10" in r.stderr
    assert [p.name for p in (tmp_path / "ckpt").iterdir()] == ["ckpt-00000010.json"]
    assert not (tmp_path / "out" / "result.json").exists()

    r = run_job(["run", "--kind", "synthetic", "--config", str(cfg)], {**env, "LADDER_ATTEMPT": "2"})
    assert r.returncode == 0, r.stderr
    assert read_points(tmp_path / "out" / "metrics.jsonl") == reference_points(config)
    assert_pinned(read_points(tmp_path / "out" / "metrics.jsonl"), PINNED_FAIL)
    assert json.loads((tmp_path / "out" / "result.json").read_text())["meta"]["resumed_from_step"] == 10
