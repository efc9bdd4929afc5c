"""The `ttt` kind end to end, as the executor runs it: a subprocess with LADDER_* env, offline."""

import json
import signal
import subprocess
import sys
import time

import pytest
from conftest import JOBS_DIR, job_env, read_points, run_job, write_config

pytest.importorskip("torch")

# The xs preset, shrunk so that one run takes seconds on 2 busy cores.
TINY = {"preset": "xs", "d_model": 32, "seq_len": 64, "batch_size": 4, "steps": 8, "eval_interval": 4,
        "val_batches": 1, "corpus_bytes": 300_000, "checkpoint_every": 3}
# Values that depend on wall time or the process, not on the computation.
TIMING = ("tokens_per_s", "peak_mem_mb")


def run_ttt(tmp_path, config, timeout=120):
    return run_job(["run", "--kind", "ttt", "--config", str(write_config(tmp_path, config))], job_env(tmp_path), timeout=timeout)


def loss_points(tmp_path) -> dict:
    return {k: v for k, v in read_points(tmp_path / "out" / "metrics.jsonl").items() if k[0] not in TIMING}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run of the config the resume test interrupts (step_sleep lets it be killed)."""
    tmp = tmp_path_factory.mktemp("ref")
    r = run_ttt(tmp, {**TINY, "step_sleep": 0.25, "steps": 12})
    assert r.returncode == 0, r.stderr
    return tmp


def test_offline_run_writes_result(reference):
    result = json.loads((reference / "out" / "result.json").read_text())
    m = result["metrics"]
    buckets = ["val_loss_pos_0_15", "val_loss_pos_16_31", "val_loss_pos_32_47", "val_loss_pos_48_63"]
    for key in ["val_loss", "val_ppl", "tokens_per_s", "n_params", "peak_mem_mb", *buckets]:
        assert key in m, key
    assert m["val_ppl"] == pytest.approx(2.718281828 ** m["val_loss"])
    assert sum(m[b] for b in buckets) / 4 == pytest.approx(m["val_loss"])  # equal-width buckets
    assert 2.0 < m["val_loss"] < 5.6  # below ln(256) = 5.55: it learned something about bytes
    assert result["config"]["layer"] == "ttt_linear" and result["config"]["seq_len"] == 64  # full config
    assert result["meta"]["preset"] == "xs"
    points = read_points(reference / "out" / "metrics.jsonl")
    assert sorted(s for (n, s) in points if n == "train_loss") == list(range(1, 13))
    assert sorted(s for (n, s) in points if n == "val_loss") == [4, 8, 12]
    assert sorted(s for (n, s) in points if n.startswith("val_loss_pos_")) == [12] * 4


def test_same_seed_same_numbers(reference, tmp_path):
    r = run_ttt(tmp_path, {**TINY, "step_sleep": 0.25, "steps": 12})
    assert r.returncode == 0, r.stderr
    assert loss_points(tmp_path) == loss_points(reference)  # exact, not approx


def test_sigterm_checkpoint_resume_same_curve(reference, tmp_path):
    cfg_path = write_config(tmp_path, {**TINY, "step_sleep": 0.25, "steps": 12})
    env = job_env(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "ladder_jobs", "run", "--kind", "ttt", "--config", str(cfg_path)],
                            env=env, cwd=JOBS_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = tmp_path / "out" / "metrics.jsonl"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:  # offline points are written at once: wait for step 5, so the
        # stop lands after the step-3 checkpoint and before the end
        if metrics.exists() and any(json.loads(l)["step"] >= 5 for l in metrics.read_text().splitlines()):
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    stopped_at = max(int(p.name[5:13]) for p in (tmp_path / "ckpt").glob("ckpt-*.pt"))
    assert 5 <= stopped_at < 12
    r = run_job(["run", "--kind", "ttt", "--config", str(cfg_path)], env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert f"resuming ttt from checkpoint at step {stopped_at}" in r.stderr
    assert loss_points(tmp_path) == loss_points(reference)
    assert json.loads((tmp_path / "out" / "result.json").read_text())["meta"]["resumed_from_step"] == stopped_at


@pytest.mark.parametrize(
    "layer,data", [("ttt_mlp", "recall"), ("transformer", "markov"), ("gated_linear", "text")]
)
def test_other_layers_and_data_run(tmp_path, layer, data):
    r = run_ttt(tmp_path, {**TINY, "layer": layer, "data": data, "steps": 3, "eval_interval": 3})
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "out" / "result.json").read_text())["metrics"]
    assert 0 < m["val_loss"] < 6.0 and m["n_params"] > 0


@pytest.mark.parametrize(
    "override,needle",
    [({"no_such_key": 1}, "no_such_key"), ({"layer": "mamba"}, "layer"), ({"d_model": 1.5}, "d_model"),
     ({"n_heads": 3}, "n_heads")],
)
def test_bad_config_exits_2(tmp_path, override, needle):
    r = run_ttt(tmp_path, {**TINY, **override})
    assert r.returncode == 2, r.stderr
    assert needle in r.stderr
