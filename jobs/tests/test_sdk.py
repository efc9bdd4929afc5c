"""The SDK (ladder_jobs.init / Run) in real subprocesses: offline files, the HTTP protocol against
a local ingest server, SIGTERM + resume, and the exit codes; plus the examples in examples/byo."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from urllib.parse import unquote

import pytest

from conftest import JOBS_DIR, TOKEN, job_env, read_points, write_config

EXAMPLES = JOBS_DIR.parent / "examples" / "byo"

SCRIPT = textwrap.dedent(
    """
    import sys, time
    import ladder_jobs as ladder
    run = ladder.init(config={"steps": 6, "lr": 0.5, "sleep": 0.0, "crash": False, "finish": True},
                      flush_points=2, flush_interval_s=0.05, retry_base_s=0.01, retry_deadline_s=5)
    state = run.load_checkpoint()
    total = state["total"] if state else 0.0
    print(f"start_step={run.start_step}", flush=True)
    for step in range(run.start_step, run.config["steps"]):
        total += run.config["lr"]
        run.log({"loss": 1.0 / (step + 1), "total": total}, step=step)
        if step == 2:
            run.save_checkpoint({"total": total}, step)
            open(run.config.get("marker", "/dev/null"), "a").close()
        if run.config["crash"] and step == 3:
            raise ValueError("boom")
        if run.should_stop():
            run.save_checkpoint({"total": total}, step)
            run.stop()
        time.sleep(run.config["sleep"])
    if run.config["finish"]:
        run.finish({"val_loss": 1.0 / run.config["steps"], "total": total})
    """
)


def start(tmp_path: Path, config: dict | None = None, **env: str) -> subprocess.Popen:
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    extra = dict(env)
    if config is not None:
        extra["LADDER_CONFIG"] = str(write_config(tmp_path, config))
    return subprocess.Popen(
        [sys.executable, str(script)], env=job_env(tmp_path, **extra), cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def run_script(tmp_path: Path, config: dict | None = None, **env: str) -> tuple[int, str, str]:
    p = start(tmp_path, config, **env)
    out, err = p.communicate(timeout=60)
    return p.returncode, out, err


def test_offline_writes_metrics_and_result_with_the_trial_config(tmp_path):
    code, out, err = run_script(tmp_path, {"steps": 4, "lr": 0.25, "seed": 7})
    assert code == 0, err
    points = read_points(tmp_path / "out" / "metrics.jsonl")
    assert sorted(s for (n, s) in points if n == "loss") == [0, 1, 2, 3]
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["metrics"] == {"val_loss": 0.25, "total": 1.0}
    # The file's keys override the script's defaults; defaults it does not name stay.
    assert result["config"] == {"steps": 4, "lr": 0.25, "seed": 7, "sleep": 0.0, "crash": False, "finish": True}
    assert result["meta"]["kind"] == "command"


def test_online_batches_retries_and_posts_the_result_with_the_token(tmp_path, ingest):
    ingest.script = [503, 200, 429]  # the first and third requests fail: retried, not lost
    code, out, err = run_script(
        tmp_path, {"steps": 5}, LADDER_INGEST_URL=ingest.url, LADDER_TRIAL_ID="sw-r0 v0/s0", LADDER_INGEST_TOKEN=TOKEN
    )
    assert code == 0, err
    points = ingest.delivered_points()
    assert {(p["name"], p["step"]) for p in points} == {(n, s) for n in ("loss", "total") for s in range(5)}
    assert all(len(r["body"]["points"]) <= 2 for r in ingest.ok("/metrics")), "batches respect flush_points"
    results = ingest.ok("/result")
    assert len(results) == 1 and results[0]["body"]["metrics"]["val_loss"] == 0.2
    assert all(r["path"].startswith("/trials/sw-r0%20v0%2Fs0/") for r in ingest.requests), "trial id is URL-quoted"
    assert all(r["headers"]["authorization"] == f"Bearer {TOKEN}" for r in ingest.requests)
    assert TOKEN not in out + err
    assert not (tmp_path / "out" / "result.json").exists()


def test_a_refused_push_exits_1_with_the_reason(tmp_path, ingest):
    ingest.script = [401] * 50
    code, _, err = run_script(tmp_path, {"steps": 3}, LADDER_INGEST_URL=ingest.url, LADDER_TRIAL_ID="t", LADDER_INGEST_TOKEN=TOKEN)
    assert code == 1
    assert "HTTP 401" in err and TOKEN not in err


def test_sigterm_checkpoints_exits_143_and_the_retry_resumes(tmp_path):
    marker = tmp_path / "reached-step-2"
    config = {"steps": 400, "sleep": 0.01, "marker": str(marker)}
    p = start(tmp_path, config)
    deadline = time.monotonic() + 60
    while not marker.exists():  # the event: step 2 was checkpointed
        assert p.poll() is None, p.communicate()[1]
        assert time.monotonic() < deadline, "the script never reached step 2"
        time.sleep(0.02)
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 143, err
    assert "stopped (SIGTERM)" in err
    stopped_at = max(s for (n, s) in read_points(tmp_path / "out" / "metrics.jsonl") if n == "loss")
    assert stopped_at < 399

    code, out2, err2 = run_script(tmp_path, config, LADDER_ATTEMPT="2")
    assert code == 0, err2
    assert f"start_step={stopped_at + 1}" in out2
    points = read_points(tmp_path / "out" / "metrics.jsonl")
    assert sorted(s for (n, s) in points if n == "loss") == list(range(400)), "no step lost or skipped"
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    # The running total survived the restart through the checkpoint: 400 steps of lr 0.5.
    assert result["metrics"]["total"] == pytest.approx(200.0)
    assert result["meta"]["resumed_from_step"] == stopped_at


def test_bad_config_file_and_bad_environment_exit_2(tmp_path):
    (tmp_path / "bad.json").write_text("[1, 2]")
    code, _, err = run_script(tmp_path, None, LADDER_CONFIG=str(tmp_path / "bad.json"))
    assert code == 2 and "must hold a JSON object" in err
    code, _, err = run_script(tmp_path, None, LADDER_CONFIG=str(tmp_path / "missing.json"))
    assert code == 2 and "cannot read LADDER_CONFIG" in err
    code, _, err = run_script(tmp_path, {"steps": 2}, LADDER_ATTEMPT="zero")
    assert code == 2 and "LADDER_ATTEMPT" in err


def test_a_checkpoint_of_another_config_exits_2(tmp_path):
    assert run_script(tmp_path, {"steps": 4})[0] == 0
    code, _, err = run_script(tmp_path, {"steps": 4, "lr": 0.1})
    assert code == 2 and "another kind or config" in err


def test_a_crash_exits_1_and_delivers_the_points_logged_before_it(tmp_path, ingest):
    code, _, err = run_script(tmp_path, {"steps": 6, "crash": True}, LADDER_INGEST_URL=ingest.url, LADDER_TRIAL_ID="t")
    assert code == 1 and "ValueError: boom" in err
    assert "without run.finish" not in err, "a crash is reported as the crash"
    assert {s for (n, s) in ((p["name"], p["step"]) for p in ingest.delivered_points()) if n == "loss"} == {0, 1, 2, 3}
    assert not ingest.ok("/result")


def test_ending_without_finish_says_so(tmp_path):
    code, _, err = run_script(tmp_path, {"steps": 2, "finish": False})
    assert "ended without run.finish" in err
    assert not (tmp_path / "out" / "result.json").exists()


# -- examples/byo ---------------------------------------------------------------


def test_shell_example_speaks_the_http_protocol(tmp_path, ingest):
    config = write_config(tmp_path, {"rate": 0.3, "steps": 3, "size": 100, "seed": 1})
    env = job_env(tmp_path, LADDER_INGEST_URL=ingest.url, LADDER_TRIAL_ID="t 1", LADDER_INGEST_TOKEN=TOKEN, LADDER_CONFIG=str(config))
    ingest.script = [503]  # one transient failure: retried
    p = subprocess.run(["sh", "job.sh", "0.3", "3", "100", "1"], cwd=EXAMPLES / "shell", env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert sorted(pt["step"] for pt in ingest.delivered_points()) == [0, 1, 2]
    [result] = ingest.ok("/result")
    assert result["body"]["config"] == {"rate": 0.3, "steps": 3, "size": 100, "seed": 1}
    assert result["body"]["metrics"]["loss"] == ingest.delivered_points()[-1]["value"]
    assert all(r["headers"]["authorization"] == f"Bearer {TOKEN}" for r in ingest.requests)
    assert TOKEN not in p.stdout + p.stderr
    assert all(unquote(r["path"]).startswith("/trials/t 1/") for r in ingest.requests), "trial id percent-encoded"


def test_shell_example_offline_and_bad_arguments(tmp_path):
    env = job_env(tmp_path)
    p = subprocess.run(["sh", "job.sh", "0.1", "4", "10", "0"], cwd=EXAMPLES / "shell", env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert sorted(s for (_, s) in read_points(tmp_path / "out" / "metrics.jsonl")) == [0, 1, 2, 3]
    assert json.loads((tmp_path / "out" / "result.json").read_text())["metrics"]["loss"] > 0
    bad = subprocess.run(["sh", "job.sh", "0.1; rm -rf /", "4", "10", "0"], cwd=EXAMPLES / "shell", env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "bad arguments" in bad.stderr


@pytest.mark.torch
def test_digits_example_trains_resumes_and_reports(tmp_path):
    config = {"lr": 0.01, "hidden": 16, "steps": 60, "batch_size": 32, "checkpoint_every": 20, "seed": 0}
    args = [f"--{k}={v}" for k, v in config.items()]
    env = job_env(tmp_path, LADDER_CONFIG=str(write_config(tmp_path, config)))
    p = subprocess.run([sys.executable, "train.py", *args], cwd=EXAMPLES / "digits", env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["config"] == config
    assert 0 < result["metrics"]["val_loss"] < 2.31, "better than chance (ln 10)"
    assert (tmp_path / "ckpt" / "ckpt-00000059.pt").exists(), "torch checkpoints"
    # A second attempt finds the final checkpoint and only re-reports: same result.
    p2 = subprocess.run([sys.executable, "train.py", *args], cwd=EXAMPLES / "digits", env={**env, "LADDER_ATTEMPT": "2"}, capture_output=True, text=True, timeout=120)
    assert p2.returncode == 0, p2.stderr
    again = json.loads((tmp_path / "out" / "result.json").read_text())
    assert again["metrics"]["val_loss"] == pytest.approx(result["metrics"]["val_loss"])
    assert again["meta"]["resumed_from_step"] == 59
