"""ssl kind, in process: risk decomposition, contrastive losses, data, augmentation, probe."""

import math

import numpy as np
import pytest

from ladder_jobs.config import ConfigError, resolve_config
from ladder_jobs.kinds import ssl
from ladder_jobs.kinds.ssl import risk
from ladder_jobs.kinds.ssl.data import fewshot_indices, heldout_size, make_splits

# Tests marked `torch` import it (and ssl.model) inside, so the numpy-only ones here run without it.


def cfg(**overrides):
    return {**ssl.DEFAULTS, **ssl.PRESETS["xs"], **overrides}


# -- risk decomposition ---------------------------------------------------------------------


def test_decomposition_hand_numbers():
    parts = risk.decompose(e_sup_train=0.05, e_probe_train=0.12, e_probe_ho=0.2, e_test=0.31)
    assert parts["approx_error"] == pytest.approx(0.05)
    assert parts["usability_error"] == pytest.approx(0.07)
    assert parts["probe_gen_error"] == pytest.approx(0.08)
    assert parts["encoder_gen_error"] == pytest.approx(0.11)
    assert parts["total_error"] == 0.31
    assert abs(sum(parts[k] for k in risk.COMPONENTS) - parts["total_error"]) < 1e-9


def test_decomposition_adds_up_on_random_error_rates():
    rng = np.random.default_rng(0)
    for _ in range(1000):  # rates with awkward binary expansions, negative components included
        e = rng.integers(0, 997, 4) / 997
        parts = risk.decompose(*map(float, e))
        assert abs(sum(parts[k] for k in risk.COMPONENTS) - parts["total_error"]) < 1e-9


def test_decomposition_check_fails_when_it_does_not_add_up():
    parts = risk.decompose(0.1, 0.2, 0.3, 0.4)
    parts["probe_gen_error"] += 1e-6
    with pytest.raises(AssertionError):
        risk.check(parts)
    with pytest.raises(AssertionError):
        risk.decompose(0.1, 0.2, 0.3, 1.5)  # not an error rate


# -- losses ---------------------------------------------------------------------------------


def _ce(logits_row, target):
    m = max(v for v in logits_row if v != -math.inf)
    lse = m + math.log(sum(math.exp(v - m) for v in logits_row if v != -math.inf))
    return lse - logits_row[target]


@pytest.mark.torch
def test_nt_xent_matches_hand_computation():
    import torch

    from ladder_jobs.kinds.ssl.model import nt_xent

    z1 = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    z2 = torch.tensor([[3.0, 4.0], [-1.0, 1.0]])
    t = 0.5
    # by hand: unit vectors u = [(1,0), (0,1), (.6,.8), (-1/sqrt2, 1/sqrt2)]; anchor i's positive
    # is (i + 2) % 4; the anchor itself is excluded from the softmax
    u = [(1.0, 0.0), (0.0, 1.0), (0.6, 0.8), (-1 / math.sqrt(2), 1 / math.sqrt(2))]
    losses = []
    for i in range(4):
        row = [(-math.inf if j == i else (u[i][0] * u[j][0] + u[i][1] * u[j][1]) / t) for j in range(4)]
        losses.append(_ce(row, (i + 2) % 4))
    expected = sum(losses) / 4
    assert float(nt_xent(z1, z2, t)) == pytest.approx(expected, rel=1e-6)
    assert expected == pytest.approx(0.649522, abs=1e-5)  # pinned: the loop above, printed once


@pytest.mark.torch
def test_info_nce_matches_hand_computation():
    import torch

    from ladder_jobs.kinds.ssl.model import info_nce

    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    b = torch.tensor([[1.0, 1.0], [0.0, -3.0]])
    t = 0.1
    s = 1 / math.sqrt(2)
    # cos(a_i, b_j): [[s, 0], [s, -1]]; targets: 0, 1
    expected = 0.5 * (_ce([s / t, 0.0], 0) + _ce([s / t, -1 / t], 1))
    assert float(info_nce(a, b, t)) == pytest.approx(expected, rel=1e-6)


@pytest.mark.torch
@pytest.mark.parametrize("loss", ["nt_xent", "info_nce"])
def test_contrastive_loss_lower_for_aligned_than_shuffled_pairs(loss):
    import torch

    from ladder_jobs.kinds.ssl.model import info_nce, nt_xent

    fn = {"nt_xent": nt_xent, "info_nce": info_nce}[loss]
    g = torch.Generator().manual_seed(0)
    z1 = torch.randn(32, 16, generator=g)
    z2 = z1 + 0.1 * torch.randn(32, 16, generator=g)
    shuffled = z2[torch.randperm(32, generator=g)]
    assert float(fn(z1, z2, 0.2)) < float(fn(z1, shuffled, 0.2)) - 1.0


@pytest.mark.torch
def test_model_losses_are_finite_and_differentiable():
    import torch

    from ladder_jobs.kinds.ssl.model import SSLModel

    x = torch.rand(8, 1, 16, 16)
    y = torch.arange(8) % 4
    for method in ssl.METHODS:
        torch.manual_seed(0)
        m = SSLModel(method, width=4, depth=2, proj_dim=8, n_classes=4)
        loss = m.loss(x, x.flip(-1), y, 0.2)
        loss.backward()
        assert torch.isfinite(loss) and m.encoder.net[0].weight.grad is not None
        assert m.encoder(x).shape == (8, m.encoder.out_dim)


# -- data, augmentation, probe --------------------------------------------------------------


@pytest.mark.parametrize("dataset", ["digits", "shapes"])
def test_splits_are_deterministic_and_shaped(dataset):
    c = cfg(dataset=dataset, n_pretrain=300, n_test=100)
    a, b = make_splits(c), make_splits(c)
    assert np.array_equal(a.x_pre, b.x_pre) and np.array_equal(a.heldout, b.heldout)
    assert np.array_equal(a.y_test, b.y_test)
    other = make_splits({**c, "data_seed": 1})
    assert not np.array_equal(a.y_pre, other.y_pre)
    assert a.x_pre.shape == (300, 1, 16, 16) and a.x_test.shape == (100, 1, 16, 16)
    assert a.heldout.sum() == 100  # the paper's estimator: as many as the test set
    assert make_splits({**c, "heldout": "frac"}).heldout.sum() == 60  # 20% of 300
    assert len(np.unique(a.y_pre)) == a.n_classes
    if dataset == "digits":  # pre-training and test images are different images
        pre = {r.tobytes() for r in a.x_pre}
        assert not any(r.tobytes() in pre for r in a.x_test)
    idx = fewshot_indices(a.y_pre, np.flatnonzero(a.fit), 5, np.random.default_rng(0))
    assert not a.heldout[idx].any()
    assert all(np.sum(a.y_pre[idx] == k) == 5 for k in range(a.n_classes))


@pytest.mark.torch
def test_augment_is_seeded_and_keeps_shape():
    import torch

    from ladder_jobs.kinds.ssl.model import augment

    x = torch.rand(4, 1, 16, 16)
    v1 = augment(x, torch.Generator().manual_seed(3), cfg())
    v2 = augment(x, torch.Generator().manual_seed(3), cfg())
    v3 = augment(x, torch.Generator().manual_seed(4), cfg())
    assert v1.shape == x.shape and torch.equal(v1, v2) and not torch.equal(v1, v3)
    zero = cfg(aug_scale=0.0, aug_translate=0.0, aug_rotate=0.0, aug_jitter=0.0, aug_noise=0.0)
    assert torch.allclose(augment(x, torch.Generator().manual_seed(3), zero), x, atol=1e-5)


@pytest.mark.torch
def test_probe_fits_separable_data():
    import torch

    from ladder_jobs.kinds.ssl.model import error_rate, fit_probe

    g = torch.Generator().manual_seed(0)
    centers = 5 * torch.randn(3, 8, generator=g)
    y = torch.arange(300) % 3
    f = centers[y] + torch.randn(300, 8, generator=g)
    predict = fit_probe(f, y, 3, l2=1e-3, iters=100)
    assert error_rate(predict(f), y) < 0.02


# -- config ---------------------------------------------------------------------------------


def test_presets_resolve_and_validate():
    for name in ssl.PRESETS:
        resolved, preset = resolve_config("ssl", ssl.DEFAULTS, ssl.PRESETS, {"preset": name})
        ssl.validate(resolved)
        assert preset == name
    sizes = [ssl.PRESETS[p]["n_pretrain"] for p in ("xs", "s", "m", "l")]
    assert sizes == sorted(sizes) and len(set(sizes)) == 4
    for bad in ({"method": "byol"}, {"dataset": "cifar"}, {"heldout_frac": 1.0}, {"depth": 9}, {"approx_steps": 0},
                {"heldout": "half"}, {"approx_estimator": "mlp"}):
        with pytest.raises(ConfigError):
            ssl.validate(cfg(**bad))


# -- the paper's estimators, against an independent computation -------------------------------


def test_heldout_size_follows_the_test_set_capped_at_half():
    assert heldout_size("test_size", 0.2, 1000, 359) == 359
    assert heldout_size("test_size", 0.2, 300, 500) == 150  # the probe keeps half to fit on
    assert heldout_size("frac", 0.2, 1000, 359) == 200
    # digits: the test set is capped at a fifth of the 1797 images
    s = make_splits(cfg(n_pretrain=1000, n_test=500))
    assert s.heldout.sum() == len(s.y_test) == 359


def _sklearn_error(f_train, y_train, f_eval, y_eval, l2):
    """fit_probe's objective, mean CE + l2/2 |W|^2 on standardised features (bias unpenalised),
    is sklearn's 1/2 |W|^2 + C * sum CE with C = 1 / (l2 * N)."""
    from sklearn.linear_model import LogisticRegression

    mean, std = f_train.mean(0), np.maximum(f_train.std(0), 1e-6)
    clf = LogisticRegression(C=1.0 / (l2 * len(y_train)), tol=1e-10, max_iter=10000)
    clf.fit((f_train - mean) / std, y_train)
    return float(np.mean(clf.predict((f_eval - mean) / std) != y_eval))


@pytest.mark.torch
def test_risk_estimators_match_sklearn_probes():
    import contextlib

    import torch

    from ladder_jobs.kinds.ssl.model import SSLModel
    from ladder_jobs.kinds.ssl.train import evaluate, features

    c = cfg(n_pretrain=300, n_test=120, width=4, probe_iters=500, fewshot_draws=1, probe_l2=1e-2)
    splits = make_splits(c)
    torch.manual_seed(0)
    model = SSLModel("simclr", 4, 2, 8, splits.n_classes)
    approx = SSLModel("supervised", 4, 2, 8, splits.n_classes)  # untrained: its head is at chance
    x_pre, y_pre = torch.from_numpy(splits.x_pre), torch.from_numpy(splits.y_pre)
    x_test, y_test = torch.from_numpy(splits.x_test), torch.from_numpy(splits.y_test)
    m = evaluate(c, splits, model, approx, x_pre, y_pre, x_test, y_test, contextlib.nullcontext, lambda: None)

    assert m["n_heldout"] == splits.heldout.sum() == 120
    nocast = contextlib.nullcontext
    f_sup = features(approx.encoder, x_pre, nocast).double().numpy()
    f_ssl = features(model.encoder, x_pre, nocast).double().numpy()
    y, ho = splits.y_pre, splits.heldout
    tol = 1.5 / len(y)  # one image may flip on a near-tie between two converged optimisers
    # approximation: the probe on the frozen supervised encoder, not its (untrained) head
    assert m["approx_error"] == pytest.approx(_sklearn_error(f_sup, y, f_sup, y, c["probe_l2"]), abs=tol)
    assert m["supervised_head_train_error"] > m["approx_error"] + 0.2
    assert m["usability_error"] == pytest.approx(
        _sklearn_error(f_ssl, y, f_ssl, y, c["probe_l2"]) - m["approx_error"], abs=tol)
    e_ho = _sklearn_error(f_ssl[~ho], y[~ho], f_ssl[ho], y[ho], c["probe_l2"])
    assert m["probe_heldout_error"] == pytest.approx(e_ho, abs=1.5 / ho.sum())

    head = evaluate({**c, "approx_estimator": "head"}, splits, model, approx, x_pre, y_pre, x_test, y_test,
                    nocast, lambda: None)
    assert head["approx_error"] == head["supervised_head_train_error"] == m["supervised_head_train_error"]
