"""Same config and seed, same numbers: trial identity and reuse rest on it.

Each case runs twice as separate processes (as the executor would on one machine), with
different PYTHONHASHSEEDs so that anything ordered by string hashing shows, and compares every
metric point and the result exactly. The configs are the smallest that still exercise each
kind's model and data path; one run takes seconds.
"""

import json

import pytest
from conftest import job_env, read_points, run_job, write_config

# Values that measure wall time or the process, not the computation.
TIMING = {"tokens_per_s", "peak_mem_mb", "samples_per_s", "eval_s", "clips_per_s"}

TTT = {"preset": "xs", "d_model": 32, "seq_len": 64, "batch_size": 4, "steps": 3, "eval_interval": 3,
       "val_batches": 1, "corpus_bytes": 300_000, "checkpoint_every": 0}
SSL = {"preset": "xs", "n_pretrain": 200, "n_test": 100, "steps": 4, "approx_steps": 4, "batch_size": 32,
       "probe_iters": 10, "fewshot_draws": 1, "checkpoint_every": 0}
VIDEO = {"preset": "xs", "enc_width": 4, "d_model": 16, "n_heads": 2, "n_layers": 1, "batch_size": 6, "n_train": 24,
         "n_test": 12, "eval_batch_size": 6, "steps": 3, "checkpoint_every": 0}
RLHF = {"preset": "xs", "d_model": 32, "n_layers": 1, "max_digits": 4, "max_filler": 4, "batch_size": 16,
        "sft_steps": 4, "rm_steps": 3, "rm_pairs": 64, "rm_heldout": 32, "rl_steps": 2, "n_eval": 32, "bon_n": 2,
        "checkpoint_every": 0}

CASES = [
    ("synthetic", {"preset": "xs", "steps": 20}),
    # every TTT layer and every data source at least once; ttt_mlp (the fragile one) on all three
    ("ttt", {**TTT, "layer": "ttt_mlp", "data": "recall"}),
    ("ttt", {**TTT, "layer": "ttt_mlp", "data": "markov"}),
    ("ttt", {**TTT, "layer": "ttt_mlp", "data": "text"}),
    ("ttt", {**TTT, "layer": "ttt_linear", "data": "recall"}),
    ("ttt", {**TTT, "layer": "transformer", "data": "markov"}),
    ("ttt", {**TTT, "layer": "decay_linear_attn", "data": "text"}),
    ("ssl", {**SSL, "dataset": "digits"}),
    ("ssl", {**SSL, "dataset": "shapes", "method": "simclr_asym"}),
    ("video", {**VIDEO, "resampler": "perceiver", "temporal": "transformer", "tokens_per_frame": 1}),
    ("video", VIDEO),
    ("rlhf", {**RLHF, "method": "ppo"}),
    ("rlhf", {**RLHF, "method": "expert_iteration"}),
]


def case_id(case) -> str:
    kind, cfg = case
    keys = ("layer", "data", "dataset", "method", "resampler")
    return "-".join([kind, *(str(cfg[k]) for k in keys if k in cfg)])


def run_once(tmp_path, kind: str, config: dict, hash_seed: str) -> tuple[dict, dict]:
    env = job_env(tmp_path, PYTHONHASHSEED=hash_seed, OMP_NUM_THREADS="1")
    r = run_job(["run", "--kind", kind, "--config", str(write_config(tmp_path, config))], env, timeout=180)
    assert r.returncode == 0, r.stderr
    points = {k: v for k, v in read_points(tmp_path / "out" / "metrics.jsonl").items() if k[0] not in TIMING}
    result = json.loads((tmp_path / "out" / "result.json").read_text())["metrics"]
    return points, {k: v for k, v in result.items() if k not in TIMING}


@pytest.mark.torch
@pytest.mark.parametrize("case", [c for c in CASES if c[0] != "synthetic"], ids=case_id)
def test_two_runs_give_identical_metrics(tmp_path, case):
    kind, config = case
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    points_a, result_a = run_once(tmp_path / "a", kind, config, "1")
    points_b, result_b = run_once(tmp_path / "b", kind, config, "2")
    assert points_a and result_a
    differing = sorted(k for k in points_a.keys() | points_b.keys() if points_a.get(k) != points_b.get(k))
    assert not differing, f"{len(differing)} points differ, first: {differing[:5]}"
    assert result_a == result_b  # exact: not approx


def test_synthetic_two_runs_give_identical_metrics(tmp_path):
    (kind, config), = [c for c in CASES if c[0] == "synthetic"]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert run_once(tmp_path / "a", kind, config, "1") == run_once(tmp_path / "b", kind, config, "2")
