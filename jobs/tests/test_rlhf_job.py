"""The `rlhf` kind end to end, as the executor runs it: a subprocess with LADDER_* env, offline."""

import json

import pytest
from conftest import job_env, logged_step, read_points, run_job, stop_with_sigterm, write_config

# Tests marked `torch` run a torch kind; the bad-config ones stop before torch is imported.

# The xs preset shrunk so that one run takes seconds on 2 busy cores (56 steps: SFT 1-30,
# RM 31-50, PPO 51-56, then evaluation).
TINY = {"preset": "xs", "method": "ppo", "d_model": 32, "n_layers": 1, "max_digits": 4, "max_filler": 4,
        "batch_size": 32, "sft_steps": 30, "rm_steps": 20, "rm_pairs": 256, "rm_heldout": 128, "rl_steps": 6,
        "n_eval": 64, "bon_n": 4, "ei_prompts": 64, "checkpoint_every": 10}
TIMING = ("samples_per_s", "peak_mem_mb")  # depend on wall time / the process, not the computation


def env(tmp_path):
    return job_env(tmp_path, OMP_NUM_THREADS="1")  # 2 shared cores: threads only contend


def run_rlhf(tmp_path, config, timeout=180):
    return run_job(["run", "--kind", "rlhf", "--config", str(write_config(tmp_path, config))], env(tmp_path), timeout=timeout)


def points(tmp_path) -> dict:
    return {k: v for k, v in read_points(tmp_path / "out" / "metrics.jsonl").items() if k[0] not in TIMING}


def result(tmp_path) -> dict:
    return json.loads((tmp_path / "out" / "result.json").read_text())


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted PPO run of the config the resume test interrupts."""
    tmp = tmp_path_factory.mktemp("ref")
    r = run_rlhf(tmp, {**TINY, "step_sleep": 0.05})
    assert r.returncode == 0, r.stderr
    return tmp


@pytest.mark.torch
def test_offline_run_writes_result(reference):
    res = result(reference)
    m = res["metrics"]
    for key in ("win_rate", "lc_win_rate", "true_win_rate", "rm_acc", "rm_acc_true", "mean_reward", "kl_to_sft",
                "samples_per_s", "n_params", "true_quality", "ref_true_quality", "lc_theta", "lc_phi"):
        assert key in m, key
    for key in ("win_rate", "lc_win_rate", "true_win_rate", "rm_acc"):
        assert 0.0 <= m[key] <= 1.0
    assert m["n_params"] > 10_000 and m["steps"] == 56
    assert m["n_params_value"] == m["n_params_rm"]  # AlpacaFarm: a separate critic shaped like the RM
    # Bradley-Terry RM vs held-out noiseless (eval-pool) preferences: clearly better than a coin.
    assert m["rm_acc"] > 0.6
    assert res["config"]["method"] == "ppo" and res["config"]["d_model"] == 32 and res["config"]["flip_prob"] == 0.25
    assert res["meta"]["preset"] == "xs"
    pts = read_points(reference / "out" / "metrics.jsonl")
    assert sorted(s for (n, s) in pts if n == "sft_loss") == list(range(1, 31))
    assert sorted(s for (n, s) in pts if n == "rm_loss") == list(range(31, 51))
    assert sorted(s for (n, s) in pts if n == "kl_to_sft") == list(range(51, 57))
    assert {s for (n, s) in pts if n in ("rm_acc", "win_rate", "lc_win_rate")} == {50, 56}
    assert pts[("sft_loss", 30)] < pts[("sft_loss", 1)] - 0.5  # SFT learned something


@pytest.mark.torch
@pytest.mark.parametrize("stop_after", [42, 52])  # inside the RM phase; inside PPO (the separate critic's state)
def test_sigterm_checkpoint_resume_same_curve(reference, tmp_path, stop_after):
    cfg_path = write_config(tmp_path, {**TINY, "step_sleep": 0.05})
    e = env(tmp_path)
    stopped_at = stop_with_sigterm("rlhf", cfg_path, e, logged_step(tmp_path / "out", stop_after), 120)
    assert stop_after <= stopped_at < 56
    r = run_job(["run", "--kind", "rlhf", "--config", str(cfg_path)], e, timeout=180)
    assert r.returncode == 0, r.stderr
    assert f"resuming rlhf from checkpoint at step {stopped_at}" in r.stderr
    # Exactly the uninterrupted run's numbers (CPU determinism + resume): the whole curve and result.
    assert points(tmp_path) == points(reference)
    strip = lambda m: {k: v for k, v in m.items() if k not in TIMING}
    assert strip(result(tmp_path)["metrics"]) == strip(result(reference)["metrics"])
    assert result(tmp_path)["meta"]["resumed_from_step"] == stopped_at


# The earlier Ladder PPO, kept as options.
PPO_BEFORE = {"kl_clamp": False, "whiten_rewards": False, "value_model": "shared", "value_clip": 0.0,
              "penalize_no_stop": False, "kl_coef": 0.05, "gae_lambda": 0.95, "vf_coef": 0.5}


@pytest.mark.torch
@pytest.mark.parametrize("method,extra", [("sft", {}), ("best_of_n", {}), ("expert_iteration", {}),
                                          ("expert_iteration", {"ei_mode": "online", "ei_n": 4}), ("dpo", {}),
                                          ("ppo", PPO_BEFORE)])
def test_other_methods_run(tmp_path, method, extra):
    r = run_rlhf(tmp_path, {**TINY, "method": method, "rl_steps": 2, **extra})
    assert r.returncode == 0, r.stderr
    res = result(tmp_path)
    m = res["metrics"]
    trained = method in ("expert_iteration", "dpo", "ppo")
    assert m["steps"] == (52 if trained else 50)
    assert res["meta"]["lc_glm"] == "length_controlled_v1" and m["lc_win_rate"] == m["lc_win_rate_v1"]
    for glm in ("v1", "noreg", "minimal"):
        assert 0.0 <= m[f"lc_win_rate_{glm}"] <= 1.0
    assert m["difficulty_policies"] == (1 if method == "sft" else 2)
    pts = read_points(tmp_path / "out" / "metrics.jsonl")
    if method == "dpo":
        assert {s for (n, s) in pts if n == "dpo_loss"} == {51, 52}
        assert pts[("dpo_loss", 51)] == pytest.approx(0.693147, abs=1e-4)  # policy = reference: -log sigmoid(0)
    if method == "ppo":
        assert m["n_params_value"] == 0  # the shared value head
    if method == "expert_iteration":
        assert {s for (n, s) in pts if n == "ei_loss"} == {51, 52}
        assert (("kl_to_sft", 51) in pts) == (extra.get("ei_mode") == "online")  # offline samples once, from SFT
    if method == "sft":  # a fresh sample of the reference policy itself
        assert m["kl_to_sft"] == 0.0 and abs(m["true_win_rate"] - 0.5) < 0.15
    if method == "best_of_n":
        assert m["kl_to_sft"] == pytest.approx(1.386294 - 0.75, abs=1e-5)  # log 4 - 3/4


@pytest.mark.parametrize(
    "override,needle",
    [({"no_such_key": 1}, "no_such_key"), ({"method": "rloo"}, "method"), ({"d_model": 1.5}, "d_model"),
     ({"flip_prob": 0.7}, "flip_prob"), ({"n_heads": 5}, "n_heads"), ({"ei_mode": "both"}, "ei_mode"),
     ({"value_model": "tied"}, "value_model"), ({"lc_glm": "length_controlled_v2"}, "lc_glm"),
     ({"kl_clamp": 1}, "kl_clamp"), ({"n_eval": 5}, "n_eval"), ({"ei_n": 10_000}, "ei_n")],
)
def test_bad_config_exits_2(tmp_path, override, needle):
    r = run_rlhf(tmp_path, {**TINY, **override}, timeout=60)
    assert r.returncode == 2, r.stderr
    assert needle in r.stderr
