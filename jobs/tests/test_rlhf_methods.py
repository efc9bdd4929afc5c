"""The PPO and DPO pieces of the `rlhf` kind against hand computations, and the reference
defaults. Each expected number below was worked out by hand from the formula in the comment."""

import math

import pytest
from conftest import require_torch

torch = require_torch()

from ladder_jobs.kinds.rlhf import DEFAULTS  # noqa: E402
from ladder_jobs.kinds.rlhf import train as tr  # noqa: E402
from ladder_jobs.kinds.rlhf.model import RewardModel, ValueModel  # noqa: E402

T = lambda *rows: torch.tensor(rows, dtype=torch.float64)  # noqa: E731


def test_kl_is_clamped_per_token_and_score_lands_on_the_last_real_token():
    logp, ref = T([-1.0, -2.0, -0.5, -0.1]), T([-1.5, -1.0, -0.5, -0.1])
    mask, score = T([1, 1, 1, 0]), T(2.0)
    # log-ratios 0.5, -1.0, 0 (the 4th is padding); clamped: 0.5, 0, 0; kl_coef 0.1
    rewards, kl = tr.shape_rewards(logp, ref, score, mask, 0.1, kl_clamp=True)
    assert kl.tolist() == [[0.5, 0.0, 0.0, 0.0]]
    assert rewards.tolist()[0] == pytest.approx([-0.05, 0.0, 2.0, 0.0])
    rewards, kl = tr.shape_rewards(logp, ref, score, mask, 0.1, kl_clamp=False)  # the earlier behaviour
    assert kl.tolist() == [[0.5, -1.0, 0.0, 0.0]]
    assert rewards.tolist()[0] == pytest.approx([-0.05, 0.1, 2.0, 0.0])


def test_whitening_over_real_tokens():
    values, mask = T([1.0, 2.0, 3.0, 9.0]), T([1, 1, 1, 0])
    # mean 2, population variance 2/3: (v - 2) / sqrt(2/3) = -+ sqrt(1.5) = 1.2247449
    s = math.sqrt(1.5)
    assert tr.whiten(values, mask).tolist()[0] == pytest.approx([-s, 0.0, s, 0.0], abs=1e-7)
    # rewards keep their mean (AlpacaFarm's shift_mean=False)
    assert tr.whiten(values, mask, shift_mean=False).tolist()[0] == pytest.approx([2 - s, 2.0, 2 + s, 0.0], abs=1e-7)


def test_gae_with_lambda_one_is_return_minus_value():
    rewards, values, mask = T([0.0, 0.0, 1.0, 0.0]), T([0.5, 0.2, 0.1, 7.0]), T([1, 1, 1, 0])
    adv, ret = tr.advantages_and_returns(rewards, values, mask, lam=1.0)
    assert ret.tolist()[0] == pytest.approx([1.0, 1.0, 1.0, 0.0])  # gamma = lam = 1: the sum of future rewards
    assert adv.tolist()[0] == pytest.approx([0.5, 0.8, 0.9, 0.0])
    # lam 0.5: deltas -0.3, -0.1, 0.9 -> A2 = 0.9, A1 = -0.1 + 0.45 = 0.35, A0 = -0.3 + 0.175 = -0.125
    adv, _ = tr.advantages_and_returns(rewards, values, mask, lam=0.5)
    assert adv.tolist()[0] == pytest.approx([-0.125, 0.35, 0.9, 0.0])


def test_value_loss_is_clipped_around_the_old_values():
    new, old, ret, mask = T([1.0, 0.3, 5.0]), T([0.5, 0.0, 0.0]), T([2.0, -2.0, 0.0]), T([1, 1, 0])
    # token 0: (1-2)^2 = 1, clipped V 0.7 -> 1.69, max 1.69; token 1: (0.3+2)^2 = 5.29, clipped 0.2 -> 4.84,
    # max 5.29; 0.5 * mean(1.69, 5.29) = 1.745. Token 2 is padding.
    assert tr.value_loss(new, old, ret, mask, clip=0.2).item() == pytest.approx(1.745)
    assert tr.value_loss(new, old, ret, mask, clip=0.0).item() == pytest.approx((1.0 + 5.29) / 2)  # earlier: plain


def test_sequences_that_never_stop_get_the_penalty():
    score, stopped = T(0.7, 0.4), torch.tensor([True, False])
    assert tr.sequence_scores(score, stopped, True, -1.0).tolist() == [0.7, -1.0]
    assert tr.sequence_scores(score, stopped, False, -1.0).tolist() == [0.7, 0.4]


def test_policy_loss_clips_the_ratio():
    logp, old, adv, mask = T(math.log(1.5), math.log(0.5)), T(0.0, 0.0), T(1.0, -1.0), T(1, 1)
    # ratio 1.5 with A = 1: min(1.5, 1.2) = 1.2; ratio 0.5 with A = -1: min(-0.5, -0.8) = -0.8 -> -(1.2 - 0.8) / 2
    assert tr.policy_loss(logp, old, adv, mask, 0.2).item() == pytest.approx(-0.2)


def test_dpo_loss_by_hand():
    # pair 0: margin (-2 + 2.5) - (-3 + 2.5) = 1; pair 1: (-4 + 3) - (-1 + 1) = -1; beta 0.1
    loss, margin = tr.dpo_loss(T(-2.0, -4.0), T(-3.0, -1.0), T(-2.5, -3.0), T(-2.5, -1.0), beta=0.1)
    assert margin.tolist() == [1.0, -1.0]
    want = (math.log1p(math.exp(-0.1)) + math.log1p(math.exp(0.1))) / 2  # -log sigmoid(+-0.1)
    assert loss.item() == pytest.approx(want)


def test_value_model_starts_from_the_reward_model_with_a_zero_head():
    cfg = dict(DEFAULTS, d_model=16, n_layers=1, n_heads=2)
    torch.manual_seed(0)
    rm = RewardModel(cfg, 22, 20)
    value = ValueModel(rm)
    for (name, a), b in zip(rm.trunk.state_dict().items(), value.trunk.state_dict().values()):
        assert torch.equal(a, b), name
    seq = torch.randint(0, 22, (3, 20))
    assert torch.equal(value(seq, 8), torch.zeros(3, 12))
    with torch.no_grad():  # its own copy: training the critic must not move the frozen RM
        next(value.trunk.parameters()).add_(1.0)
    assert not torch.equal(next(value.trunk.parameters()), next(rm.trunk.parameters()))


def test_defaults_are_the_reference_choices():
    assert (DEFAULTS["gae_lambda"], DEFAULTS["kl_coef"], DEFAULTS["vf_coef"]) == (1.0, 0.0067, 0.1)
    assert DEFAULTS["kl_clamp"] and DEFAULTS["whiten_rewards"] and DEFAULTS["penalize_no_stop"]
    assert (DEFAULTS["value_model"], DEFAULTS["value_clip"], DEFAULTS["no_stop_reward"]) == ("separate", 0.2, -1.0)
    assert (DEFAULTS["ei_mode"], DEFAULTS["ei_n"]) == ("offline", 16)
    assert DEFAULTS["lc_glm"] == "length_controlled_v1"
