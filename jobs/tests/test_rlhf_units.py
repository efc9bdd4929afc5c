"""Units of the `rlhf` kind: the LC GLM, the length-bias story, best-of-n with the true reward."""

import numpy as np
import pytest

from ladder_jobs.kinds.rlhf import annotators as A
from ladder_jobs.kinds.rlhf import lc_eval
from ladder_jobs.kinds.rlhf import task as T


def test_glm_recovers_known_parameters():
    rng = np.random.default_rng(0)
    N = 20_000
    dlen = rng.normal(0, 3, N)  # length differences in tokens
    gamma = rng.normal(0, 1, N)  # instruction difficulty
    truth = np.array([0.4, 1.2, -0.7])  # theta, phi, psi
    X = lc_eval.glm_features(dlen, gamma)
    y = (rng.random(N) < 1 / (1 + np.exp(-X @ truth))).astype(float)
    coef, se = lc_eval.fit_logistic(X, y)
    # Fisher-information standard errors at this N are ~0.02-0.03; 4 SE is a ~1e-4 false-alarm rate.
    assert np.all(se < 0.05)
    assert np.all(np.abs(coef - truth) < 4 * se), (coef, se)
    # And the LC win rate is the model at zero length difference.
    out = lc_eval.lc_win_rate(y, dlen, gamma, np.arange(N) // 4, "length_controlled_noreg")
    assert out["lc_win_rate"] == pytest.approx(np.mean(1 / (1 + np.exp(-(coef[0] + coef[2] * gamma)))))


def test_l1_glm_shrinks_towards_zero_and_keeps_the_intercept_penalised():
    # Few annotations and a collinear length / difficulty pair: where the two fittings part ways.
    rng = np.random.default_rng(5)
    N = 60
    gamma = rng.normal(0, 1, N)
    dlen = 3 * gamma + rng.normal(0, 0.3, N)
    y = (rng.random(N) < 1 / (1 + np.exp(-(0.5 + gamma)))).astype(float)
    groups = np.arange(N)
    v1 = lc_eval.lc_win_rate(y, dlen, gamma, groups, "length_controlled_v1")
    noreg = lc_eval.lc_win_rate(y, dlen, gamma, groups, "length_controlled_noreg")
    assert v1["lc_C"] in lc_eval.CS and noreg["lc_C"] == float("inf")
    l1 = lambda f: abs(f["lc_theta"]) + abs(f["lc_phi"]) + abs(f["lc_psi"])
    assert l1(v1) < l1(noreg)
    with pytest.raises(ValueError, match="glm must be one of"):
        lc_eval.lc_win_rate(y, dlen, gamma, groups, "length_controlled_v2")


def test_difficulty_is_pooled_across_policies():
    keys = np.array([0, 0, 1, 1] * 2)
    y = np.array([1, 1, 0, 0, 0, 0, 1, 1], dtype=float)  # policy A wins instruction 0, policy B instruction 1
    gamma = lc_eval.difficulty(keys, y)
    assert np.allclose(gamma, 0)  # across both policies the instructions are equally hard
    own = lc_eval.difficulty(keys[:4], y[:4])
    assert own[0] == pytest.approx(np.log(2.5 / 0.5)) and own[2] == pytest.approx(-np.log(2.5 / 0.5))


def _noisy_outputs(prompts, rng, R, p_err=0.3, max_fill=3):
    """Correct answers with digits corrupted w.p. p_err and 0..max_fill filler: (N, R)."""
    demo = T.demonstrations(prompts, rng, max_fill, prompts.max_digits)
    out = np.zeros((len(prompts), R), dtype=np.int64)
    out[:, : demo.shape[1]] = demo
    digit = (out >= T.DIGIT0) & (out < T.DIGIT0 + 10)
    bad = digit & (rng.random(out.shape) < p_err)
    out[bad] = T.DIGIT0 + rng.integers(0, 10, size=bad.sum())
    return out


def test_length_bias_inflates_raw_win_rate_not_lc():
    rng = np.random.default_rng(1)
    md, R = 5, T.response_len(5, 8)
    pr = T.sample_prompts(rng, 1500, md)
    ref, pol = _noisy_outputs(pr, rng, R), _noisy_outputs(pr, rng, R)  # same policy quality
    verbose = T.add_filler(pol, rng.integers(0, 9, size=len(pr)), rng)  # same answers + filler
    q_r, q_v = T.quality(pr, ref), T.quality(pr, verbose)
    assert np.array_equal(q_v, T.quality(pr, pol))  # filler is not quality
    rates = {}
    for lb in (0.0, 1.0):
        pool = A.make_pool(4, lb, 1.0, 0.2, 4.0)
        y, idx = A.annotate_all(pool, q_v, q_r, T.lengths(verbose), T.lengths(ref), np.random.default_rng(2))
        rates[lb] = lc_eval.win_rates(y, idx, pr.group(), T.lengths(verbose), T.lengths(ref), q_v, q_r)
    raw_move = rates[1.0]["win_rate"] - rates[0.0]["win_rate"]
    lc_move = abs(rates[1.0]["lc_win_rate"] - rates[0.0]["lc_win_rate"])
    assert raw_move > 0.2, rates
    assert lc_move < 0.25 * raw_move, rates
    assert abs(rates[1.0]["lc_win_rate"] - rates[1.0]["true_win_rate"]) < 0.06, rates


def test_training_feedback_flips_a_quarter():
    rng = np.random.default_rng(3)
    pool = A.make_pool(4, 0.0, 0.05, 0.0, 4.0)  # near-deterministic judges, no length/position bias
    N = 20_000
    q_a, q_b = rng.random(N), rng.random(N)
    who = rng.integers(0, 4, N)
    y = A.annotate(pool, who, q_a, q_b, np.zeros(N), np.zeros(N), rng, flip_prob=0.25)
    agree = np.mean(y == (q_a > q_b))
    assert agree == pytest.approx(0.75, abs=0.02)


def test_quality_ignores_filler_and_scores_partial_answers():
    pr = T.Prompts(np.array([T.OPS.index("sort"), T.OPS.index("max")]), [[3, 1, 2], [4, 9]], 5)
    R = T.response_len(5, 4)
    resp = np.zeros((2, R), dtype=np.int64)
    d = lambda *xs: [T.DIGIT0 + x for x in xs]
    resp[0, :6] = d(1, 2) + [T.FILLERS[0]] + d(9) + [T.EOS, T.DIGIT0]  # 2 of 3 right; junk after EOS
    resp[1, :3] = d(9) + [T.FILLERS[1], T.EOS]
    assert T.quality(pr, resp).tolist() == pytest.approx([2 / 3, 1.0])
    assert T.lengths(resp).tolist() == [4, 2]


@pytest.mark.torch
def test_best_of_n_with_true_reward_improves_true_quality_monotonically():
    import torch

    from ladder_jobs.kinds.rlhf import DEFAULTS
    from ladder_jobs.kinds.rlhf.train import Run, np_rng, torch_gen

    torch.set_num_threads(1)
    cfg = dict(DEFAULTS, d_model=32, n_layers=1, max_digits=4, max_filler=3, sft_steps=60, batch_size=32, seed=0)
    run = Run(cfg, torch.device("cpu"))
    for s in range(1, cfg["sft_steps"] + 1):
        run.step(s)
    pr = T.sample_prompts(np_rng(cfg, 99), 192, cfg["max_digits"])
    means = []
    for n in (1, 2, 4, 8):
        out = run.best_of_n(run.policy, pr, n, torch_gen(cfg, 99, n), lambda p, r: T.quality(p, r))
        means.append(float(T.quality(pr, out).mean()))
    assert 0.05 < means[0] < 0.9, means  # an imperfect policy: room to improve
    assert all(b > a + 0.01 for a, b in zip(means, means[1:])), means


def test_win_rates_estimates_difficulty_over_the_pooled_policies():
    rng = np.random.default_rng(6)
    N, J = 200, 2
    idx = np.repeat(np.arange(N), J)
    groups = rng.integers(0, 10, N)
    len_m, len_r = rng.integers(2, 9, N), rng.integers(2, 9, N)
    y = (rng.random(N * J) < 0.6).astype(float)
    other = (rng.random(N * J) < 0.3 + 0.04 * groups[idx]).astype(float)  # a second policy, same instructions
    q = np.zeros(N)
    alone = lc_eval.win_rates(y, idx, groups, len_m, len_r, q, q)
    pooled = lc_eval.win_rates(y, idx, groups, len_m, len_r, q, q, pooled=[other])
    assert (alone["difficulty_policies"], pooled["difficulty_policies"]) == (1, 2)
    # the same GLM fitted by hand on gamma from both policies' labels per group
    gamma = np.empty(N * J)
    for g in np.unique(groups):
        m = groups[idx] == g
        wins, count = y[m].sum() + other[m].sum(), 2 * m.sum()
        gamma[m] = np.log((wins + 0.5) / (count - wins + 0.5))
    gamma -= gamma.mean()
    X = np.stack([np.ones(N * J), np.tanh((len_m - len_r)[idx] / np.std((len_m - len_r)[idx], ddof=1)), gamma], 1)
    coef, _ = lc_eval.fit_logistic(X, y)
    assert pooled["lc_psi_noreg"] == pytest.approx(coef[2], abs=1e-8)
    assert alone["lc_psi_noreg"] != pytest.approx(coef[2], abs=1e-3)
