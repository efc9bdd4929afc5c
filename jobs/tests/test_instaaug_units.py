"""instaaug kind, in process: sampled transformations, the entropy term, the warp, data, config."""

import math

import numpy as np
import pytest

from ladder_jobs.config import ConfigError, resolve_config
from ladder_jobs.kinds import instaaug
from ladder_jobs.kinds.instaaug.data import N_CLASSES, make_splits

# Tests marked `torch` import it (and instaaug.model) inside, so the numpy-only ones run without it.


def cfg(**overrides):
    return {**instaaug.DEFAULTS, **instaaug.PRESETS["xs"], **overrides}


def _random_augmenter(torch, config, seed=0):
    """An augmenter whose ranges really depend on the input (the zero-initialised output layer
    would give every input the same box)."""
    from ladder_jobs.kinds.instaaug.model import Augmenter, max_ranges

    torch.manual_seed(seed)
    aug = Augmenter(4, max_ranges(config), config["init_range"]).double()
    with torch.no_grad():
        aug.out.weight.normal_(0, 3.0)
    return aug


@pytest.mark.torch
def test_sampled_transforms_stay_within_the_predicted_ranges():
    import torch

    from ladder_jobs.kinds.instaaug.model import Model, max_ranges, sample

    c = cfg()
    aug = _random_augmenter(torch, c)
    x = torch.rand(64, 1, 16, 16, dtype=torch.float64)
    lo, hi = aug(x)
    assert (hi - lo).std(0).min() > 1e-3  # input-dependent: the boxes differ between inputs
    cap = max_ranges(c).double()
    assert (lo <= 0).all() and (hi >= 0).all() and (lo >= -cap).all() and (hi <= cap).all()
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        t = sample(lo, hi, torch.rand(lo.shape, generator=g, dtype=torch.float64))
        assert ((t >= lo) & (t <= hi)).all()
    # the corners of the unit cube reach the ends of the box, so the whole range is used
    assert torch.equal(sample(lo, hi, torch.zeros_like(lo)), lo)
    assert torch.allclose(sample(lo, hi, torch.ones_like(lo)), hi)
    # aug=fixed draws from the same input-independent box for every input
    m = Model(cfg(aug="fixed"), N_CLASSES)
    flo, fhi = m.ranges(x.float())
    half = torch.tensor([math.radians(45.0), 0.15, 0.1, 0.1, 0.2])
    assert torch.allclose(fhi, half.expand(64, -1)) and torch.allclose(flo, -fhi)
    none_lo, none_hi = Model(cfg(aug="none"), N_CLASSES).ranges(x.float())
    assert not none_lo.any() and not none_hi.any()


@pytest.mark.torch
def test_entropy_gradient_matches_closed_form_and_finite_differences():
    import torch

    from ladder_jobs.kinds.instaaug.model import entropy, max_ranges, ranges_from_logits

    c = cfg()
    cap = max_ranges(c).double()
    g = torch.Generator().manual_seed(1)
    logits = (2 * torch.randn(6, 10, generator=g, dtype=torch.float64)).requires_grad_()
    lo, hi = ranges_from_logits(logits, cap)
    (grad,) = torch.autograd.grad(entropy(lo, hi), logits)
    # closed form: H = mean_i sum_d log(m_d s(b_id) + m_d s(a_id)), d/da = m_d s(a)(1 - s(a)) / (B w)
    a, b = logits.detach().chunk(2, dim=1)
    sa, sb = torch.sigmoid(a), torch.sigmoid(b)
    w = cap * (sa + sb)
    expected = torch.cat([cap * sa * (1 - sa), cap * sb * (1 - sb)], 1) / (6 * w.repeat(1, 2))
    assert torch.allclose(grad, expected, rtol=1e-10, atol=1e-12)

    # and through the module's weights, against central finite differences of the whole term
    aug = _random_augmenter(torch, c, seed=2)
    x = torch.rand(5, 1, 16, 16, dtype=torch.float64, generator=g)
    weight = aug.net[0].weight
    (auto,) = torch.autograd.grad(entropy(*aug(x)), weight)
    eps = 1e-6
    for flat in (0, 7, 20, 35):
        idx = np.unravel_index(flat, weight.shape)
        with torch.no_grad():
            weight[idx] += eps
            up = float(entropy(*aug(x)))
            weight[idx] -= 2 * eps
            down = float(entropy(*aug(x)))
            weight[idx] += eps
        assert float(auto[idx]) == pytest.approx((up - down) / (2 * eps), rel=1e-5, abs=1e-8)


@pytest.mark.torch
def test_regulariser_widens_ranges_and_task_loss_reaches_them():
    import torch

    from ladder_jobs.kinds.instaaug.model import Model

    torch.manual_seed(0)
    m = Model(cfg(), N_CLASSES)
    x, y = torch.rand(8, 1, 16, 16), torch.arange(8) % N_CLASSES
    u = torch.rand(8, 5)
    loss, h = m.loss(x, y, u, u, 0.2, 0.0)
    (g_task,) = torch.autograd.grad(loss, m.augmenter.out.bias)
    assert g_task.abs().sum() > 0  # the sampled warp is differentiable in the ranges
    loss_h, _ = m.loss(x, y, u, u, 0.2, 1.0)
    (g_both,) = torch.autograd.grad(loss_h, m.augmenter.out.bias)
    assert ((g_both - g_task) < 0).all()  # -H pushes every logit, hence every range, up


@pytest.mark.torch
def test_warp_is_identity_at_zero_and_a_quarter_turn_permutes_pixels():
    import torch

    from ladder_jobs.kinds.instaaug.model import apply

    x = torch.rand(3, 1, 16, 16)
    assert torch.allclose(apply(x, torch.zeros(3, 5)), x, atol=1e-6)
    quarter = apply(x, torch.tensor([[math.pi / 2, 0, 0, 0, 0]] * 3))
    assert any(torch.allclose(quarter, torch.rot90(x, k, dims=(2, 3)), atol=1e-5) for k in (1, -1))
    gain = apply(x, torch.tensor([[0, 0, 0, 0, math.log(1.5)]] * 3))
    assert torch.allclose(gain, 1.5 * x, atol=1e-6)
    # a zoom in (log scale > 0) of a centred disk makes it bigger
    grid = (torch.arange(16) + 0.5) / 16 * 2 - 1
    disk = ((grid[:, None] ** 2 + grid[None, :] ** 2) < 0.25).float().view(1, 1, 16, 16)
    assert apply(disk, torch.tensor([[0, math.log(1.5), 0, 0, 0]])).sum() > 1.5 * disk.sum()


# -- data and config -------------------------------------------------------------------------


def test_splits_are_deterministic_and_groups_carry_their_labels():
    c = cfg(n_train=300, n_test=200)
    a, b = make_splits(c), make_splits(c)
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.x_train, make_splits({**c, "data_seed": 1}).x_train)
    assert a.x_train.shape == (300, 1, 16, 16) and a.x_test.shape == (200, 1, 16, 16)
    for y, g in ((a.y_train, a.g_train), (a.y_test, a.g_test)):
        assert set(y[g == 0]) == {0, 1, 2, 3} and set(y[g == 1]) == {4, 5, 6, 7}
    assert 0.35 < a.g_train.mean() < 0.65


def test_presets_resolve_and_validate():
    for name in instaaug.PRESETS:
        resolved, preset = resolve_config("instaaug", instaaug.DEFAULTS, instaaug.PRESETS, {"preset": name})
        instaaug.validate(resolved)
        assert preset == name
    sizes = [instaaug.PRESETS[p]["n_train"] for p in ("xs", "s", "m", "l")]
    assert sizes == sorted(sizes) and len(set(sizes)) == 4


@pytest.mark.parametrize("bad, key", [
    ({"aug": "auto"}, "aug"), ({"method": "byol"}, "method"), ({"init_range": 1.0}, "init_range"),
    ({"max_rotate": 270.0}, "max_rotate"), ({"entropy_weight": -1.0}, "entropy_weight"),
    ({"n_train": 10**7}, "n_train"), ({"depth": 9}, "depth"), ({"group_b_frac": 0.0}, "group_b_frac"),
])
def test_validate_names_the_bad_key(bad, key):
    with pytest.raises(ConfigError, match=f"'{key}'"):
        instaaug.validate(cfg(**bad))


@pytest.mark.torch
def test_entropy_weight_ramps_up_then_holds():
    from ladder_jobs.kinds.instaaug.train import entropy_weight_at

    c = cfg(entropy_weight=0.1, entropy_warmup_frac=0.25)
    assert [entropy_weight_at(s, 400, c) for s in (1, 50, 100, 101, 400)] == pytest.approx(
        [0.1 / 100, 0.05, 0.1, 0.1, 0.1])
    assert entropy_weight_at(1, 400, {**c, "entropy_warmup_frac": 0.0}) == 0.1
