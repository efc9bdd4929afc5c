"""Quark in the `rlhf` kind (quark.py): binning, reward tokens and the loss against independent
numpy computations, the training step's wiring, and the job end to end (determinism, SIGTERM
resume, a reward gain over the same run's SFT policy)."""

import json

import numpy as np
import pytest
from conftest import job_env, logged_step, read_points, run_job, stop_with_sigterm, write_config

from ladder_jobs.kinds.rlhf import DEFAULTS
from ladder_jobs.kinds.rlhf import quark
from ladder_jobs.kinds.rlhf import task

# Small enough for seconds on 2 busy cores, big enough that the reward model has a spread for
# Quark to climb (rm_lr, rm_steps) and Quark has steps to climb it: SFT 1-30, RM 31-90, Quark 91-105.
TINY = {"preset": "xs", "method": "quark", "d_model": 32, "n_layers": 1, "max_digits": 4, "max_filler": 4,
        "batch_size": 32, "sft_steps": 30, "rm_steps": 60, "rm_lr": 3e-3, "rm_pairs": 256, "rm_heldout": 128,
        "rl_steps": 15, "rl_lr": 1e-3, "quark_grad_steps": 2, "n_eval": 64, "checkpoint_every": 10}
FIRST_RL, LAST = 91, 105
# Lu et al.'s formulation with a pool kept across steps: the checkpoint must carry pool and token rows.
TOKENS = {"quark_best_only": False, "quark_clear_pool": False}
TIMING = ("samples_per_s", "peak_mem_mb")


def rank_bins(rewards, k):
    """Bins from ranks counted by comparison (no sort): rank = how many rewards beat it, ties broken
    by pool order; chunks of n // k, the rest in the worst bin."""
    r = np.asarray(rewards, dtype=float)
    n = len(r)
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    beats = (r[j] > r[i]) | ((r[j] == r[i]) & (j < i))
    return np.minimum(beats.sum(1) // (n // k), k - 1)


@pytest.mark.parametrize("n,k", [(8, 4), (11, 4), (30, 7), (5, 5)])
def test_quantile_bins_match_ranks(n, k):
    rewards = np.random.default_rng(n * k).normal(size=n)
    bins = quark.quantile_bins(rewards, k)
    assert bins.tolist() == rank_bins(rewards, k).tolist()
    # AlpacaFarm's chunk sizes: n // k each, the remainder in the worst chunk
    assert np.bincount(bins, minlength=k).tolist() == [n // k] * (k - 1) + [n // k + n % k]
    # best bin = the top n // k rewards
    assert set(np.flatnonzero(bins == 0)) == set(np.argsort(-rewards)[: n // k])


def test_quantile_bins_ties_and_too_small_pool():
    # sorted best first: 3 (idx 1), 3 (idx 2), 2, 1, 0 -> chunks of 2, the last takes 3
    assert quark.quantile_bins(np.array([1.0, 3.0, 3.0, 2.0, 0.0]), 2).tolist() == [1, 0, 0, 1, 1]
    assert quark.quantile_bins(np.array([5.0, 5.0, 5.0, 5.0]), 2).tolist() == [0, 0, 1, 1]  # pool order
    with pytest.raises(ValueError, match="cannot fill 4 quantiles"):
        quark.quantile_bins(np.zeros(3), 4)


def test_condition_puts_the_bin_token_in_bos_slot():
    prompts = task.sample_prompts(np.random.default_rng(0), 12, 5).tokens
    bins = np.arange(12) % 4
    out = quark.condition(prompts, bins)
    want = prompts.copy()
    for row, b in enumerate(bins):
        col = list(prompts[row]).index(task.BOS)
        want[row, col] = task.VOCAB + b
    assert np.array_equal(out, want)
    assert np.array_equal(prompts, task.sample_prompts(np.random.default_rng(0), 12, 5).tokens)  # input untouched
    with pytest.raises(ValueError, match="exactly one BOS"):
        quark.condition(np.full((1, 8), task.PAD), [0])


def test_quark_loss_against_numpy():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    B, R, V = 3, 5, 7
    logits, ref_logits = rng.normal(size=(B, R, V)), rng.normal(size=(B, R, V))
    targets = rng.integers(0, V, size=(B, R))
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], dtype=float)

    def log_softmax(x):
        x = x - x.max(-1, keepdims=True)
        return x - np.log(np.exp(x).sum(-1, keepdims=True))

    lp, rlp = log_softmax(logits), log_softmax(ref_logits)
    nll = -np.take_along_axis(lp, targets[..., None], -1)[..., 0]
    kl = (np.exp(lp) * (lp - rlp)).sum(-1)
    ent = -(np.exp(lp) * lp).sum(-1)
    avg = lambda x: (x * mask).sum() / mask.sum()  # noqa: E731
    T = lambda a: torch.tensor(a, dtype=torch.float64)  # noqa: E731
    loss, got_nll, got_kl, got_ent = quark.quark_loss(T(logits), T(ref_logits), torch.tensor(targets), T(mask),
                                                      kl_coef=0.3, entropy_coef=0.2)
    assert got_nll.item() == pytest.approx(avg(nll), rel=1e-5)
    assert got_kl.item() == pytest.approx(avg(kl), rel=1e-5)
    assert got_ent.item() == pytest.approx(avg(ent), rel=1e-5)
    assert loss.item() == pytest.approx(avg(nll + 0.3 * kl - 0.2 * ent), rel=1e-5)


def test_reward_token_rows_leave_the_other_tokens_bitwise_alone():
    torch = pytest.importorskip("torch")
    from ladder_jobs.kinds.rlhf.model import Policy

    cfg = dict(DEFAULTS, d_model=16, n_layers=1, n_heads=2)
    torch.manual_seed(0)
    policy = Policy(cfg, task.VOCAB, 20)
    seq = torch.as_tensor(np.random.default_rng(1).integers(0, task.VOCAB, size=(4, 20)))
    before = policy(seq)[0]
    keys = set(policy.state_dict())
    policy.trunk.add_reward_tokens(3, torch.Generator().manual_seed(7))
    assert torch.equal(policy(seq)[0], before)  # no reward token in the input: the same numbers
    assert set(policy.state_dict()) - keys == {"trunk.reward_tok.weight"}
    # AlpacaFarm's init: the mean of the old rows plus N(0, 1) jitter scaled by their std
    w = policy.trunk.tok.weight.detach().numpy()
    noise = torch.randn(3, 16, generator=torch.Generator().manual_seed(7)).numpy()
    want = w.mean(0) + noise * w.std(0, ddof=1)
    assert np.allclose(policy.trunk.reward_tok.weight.detach().numpy(), want, atol=1e-6)
    # a reward token is read from its own row, and different bins condition differently
    cond = [torch.as_tensor(quark.condition(np.array([[0, 0, 1, 14, 4, 5, 2]]), [b])) for b in range(3)]
    outs = [policy(c)[0] for c in cond]
    assert not torch.equal(outs[0], outs[1]) and not torch.equal(outs[1], outs[2])
    emb = policy.trunk.reward_tok.weight
    outs[0].sum().backward()
    assert emb.grad[0].abs().sum() > 0 and emb.grad[1:].abs().sum() == 0


@pytest.mark.torch
@pytest.mark.parametrize("extra", [{}, TOKENS], ids=["best_quantile", "all_quantiles"])
def test_training_batches_are_the_pools_quantiles(extra):
    """In-process: record what the policy and the SFT reference are fed in a Quark step, and check it
    against bins computed here from the pool's rewards."""
    import torch
    from ladder_jobs.kinds.rlhf.train import Run

    cfg = {**DEFAULTS, **{k: v for k, v in TINY.items() if k != "preset"}, "sft_steps": 2, "rm_steps": 2, **extra}
    run = Run(cfg, torch.device("cpu"))
    for n in range(1, 5):
        run.step(n)
    fed = {"policy": [], "ref": []}
    hooks = [m.register_forward_hook(lambda mod, inp, out, key=key: fed[key].append(inp[0].clone()))
             for key, m in (("policy", run.policy), ("ref", run.ref))]
    stats = run.step(5)
    for h in hooks:
        h.remove()
    pool = run.quark_pool
    P, B = run.n_prompt, cfg["batch_size"]
    assert len(pool) == B * cfg["quark_rollout_factor"] == stats["pool_size"]
    bins = rank_bins(pool.rewards, cfg["quark_bins"])
    assert stats["best_bin_reward"] == pytest.approx(pool.rewards[bins == 0].mean())
    train_inputs = [x for x in fed["policy"] if x.shape[0] == B]  # sampling feeds the whole rollout batch
    assert len(train_inputs) == cfg["quark_grad_steps"]
    key = {(pool.prompts[i].tobytes(), pool.responses[i].tobytes()): i for i in range(len(pool))}
    ref_inputs = [x for x in fed["ref"] if x.shape[0] == B]
    assert len(ref_inputs) == cfg["quark_grad_steps"]
    for x, ref_x in zip(train_inputs, ref_inputs):
        x, ref_x = x.numpy(), ref_x.numpy()
        assert np.array_equal(x[:, P:], ref_x[:, P:])
        assert (ref_x[:, :P] == task.BOS).sum(1).tolist() == [1] * B  # the reference never sees a token
        as_key = lambda r: (ref_x[r, :P].astype(np.int8).tobytes(), ref_x[r, P:].astype(np.int8).tobytes())  # noqa: E731
        rows = [key[as_key(r)] for r in range(B)]
        if extra:  # every quantile, each behind its own token in BOS's slot
            got = x[:, :P][x[:, :P] >= task.VOCAB] - task.VOCAB
            assert got.tolist() == bins[rows].tolist()
            assert len(set(bins[rows])) > 1
        else:  # the best quantile only, plain prompts
            assert set(bins[rows]) == {0} and np.array_equal(x, ref_x)
    assert len(set(rows)) == min(B, int((bins == 0).sum()) if not extra else B)  # a shuffled pass, no repeats
    # evaluation samples the policy behind the best bin's token (<reward_0>), or on plain prompts
    fed["policy"].clear()
    hook = run.policy.register_forward_hook(lambda mod, inp, out: fed["policy"].append(inp[0].clone()))
    res = run.evaluate()
    hook.remove()
    prompts_seen = np.concatenate([x[:, :P].numpy() for x in fed["policy"]])
    start = task.VOCAB if extra else task.BOS
    assert (prompts_seen == start).sum(1).tolist() == [1] * len(prompts_seen)
    assert len(prompts_seen) >= cfg["n_eval"] and res["kl_to_sft"] != 0


# -- the job end to end ------------------------------------------------------------------------

def env(tmp_path, **extra):
    return job_env(tmp_path, OMP_NUM_THREADS="1", **extra)


def run_quark(tmp_path, config, **extra_env):
    return run_job(["run", "--kind", "rlhf", "--config", str(write_config(tmp_path, config))], env(tmp_path, **extra_env),
                   timeout=240)


def points(tmp_path) -> dict:
    return {k: v for k, v in read_points(tmp_path / "out" / "metrics.jsonl").items() if k[0] not in TIMING}


def metrics(tmp_path) -> dict:
    m = json.loads((tmp_path / "out" / "result.json").read_text())["metrics"]
    return {k: v for k, v in m.items() if k not in TIMING}


@pytest.fixture(scope="module")
def tokens_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tokens")
    r = run_quark(tmp, {**TINY, **TOKENS, "step_sleep": 0.05}, PYTHONHASHSEED="1")
    assert r.returncode == 0, r.stderr
    return tmp


@pytest.mark.torch
def test_same_config_twice_same_curve(tokens_run, tmp_path):
    r = run_quark(tmp_path, {**TINY, **TOKENS, "step_sleep": 0.05}, PYTHONHASHSEED="2")
    assert r.returncode == 0, r.stderr
    assert points(tmp_path) == points(tokens_run)
    assert metrics(tmp_path) == metrics(tokens_run)
    pts = points(tokens_run)
    assert [pts[("pool_size", s)] for s in (FIRST_RL, FIRST_RL + 1, LAST)] == [64, 128, 64 * 15]  # kept, growing
    assert metrics(tokens_run)["steps"] == LAST


@pytest.mark.torch
def test_sigterm_checkpoint_resume_same_curve(tokens_run, tmp_path):
    stop_after = FIRST_RL + 4  # inside Quark: the pool and the reward-token rows must survive
    cfg_path = write_config(tmp_path, {**TINY, **TOKENS, "step_sleep": 0.05})
    e = env(tmp_path)
    stopped_at = stop_with_sigterm("rlhf", cfg_path, e, logged_step(tmp_path / "out", stop_after), 180)
    assert stop_after <= stopped_at < LAST
    r = run_job(["run", "--kind", "rlhf", "--config", str(cfg_path)], e, timeout=240)
    assert r.returncode == 0, r.stderr
    assert f"resuming rlhf from checkpoint at step {stopped_at}" in r.stderr
    assert points(tmp_path) == points(tokens_run)
    assert metrics(tmp_path) == metrics(tokens_run)


@pytest.mark.torch
def test_quark_raises_the_reward_over_the_same_runs_sft(tmp_path):
    """AlpacaFarm's default Quark on the tiny config: at evaluation its outputs score higher with the
    reward model than the same run's SFT outputs on the same instructions, by at least half the
    gap between the SFT rollouts' best quantile and their mean (the most one round of filtering
    could buy)."""
    r = run_quark(tmp_path, TINY)
    assert r.returncode == 0, r.stderr
    m, pts = metrics(tmp_path), points(tmp_path)
    gap = pts[("best_bin_reward", FIRST_RL)] - pts[("mean_reward", FIRST_RL)]
    assert gap > 0
    assert m["mean_reward"] - m["ref_mean_reward"] > 0.5 * gap, (m["mean_reward"], m["ref_mean_reward"], gap)
    assert m["kl_to_sft"] > 0


@pytest.mark.parametrize("override,needle", [
    ({"quark_bins": 1}, "quark_bins"), ({"quark_bins": 65}, "quark_bins"), ({"quark_kl_coef": -0.1}, "quark_kl_coef"),
    ({"quark_entropy_coef": "0"}, "quark_entropy_coef"), ({"quark_clear_pool": 1}, "quark_clear_pool"),
    ({"quark_best_only": "yes"}, "quark_best_only"), ({"quark_rollout_factor": 0}, "quark_rollout_factor"),
    ({"quark_grad_steps": 1.5}, "quark_grad_steps"), ({"batch_size": 2, "quark_bins": 8}, "quark_bins"),
    ({"quark_pool": "keep"}, "quark_pool")])
def test_bad_quark_config_exits_2(tmp_path, override, needle):
    r = run_quark(tmp_path, {**TINY, **override})
    assert r.returncode == 2, r.stderr
    assert needle in r.stderr
