"""clip kind, in process: the symmetric InfoNCE, strict config, and the world's data knobs."""

import math
from collections import defaultdict

import numpy as np
import pytest

from ladder_jobs.config import ConfigError, resolve_config
from ladder_jobs.kinds import clip
from ladder_jobs.kinds.clip.data import (CAPTION_LEN, N_ATTRS, PAD, make_captions, make_world, rewrite,
                                         sample_attributes, word_token)

# Tests marked `torch` import it (and clip.model) inside, so the numpy-only ones run without it.


def cfg(**overrides):
    return {**clip.DEFAULTS, **clip.PRESETS["xs"], **overrides}


# -- the loss -------------------------------------------------------------------------------


def _hand_clip_loss(img, txt, logit_scale):
    """Symmetric InfoNCE written out: cosine logits scaled by e^s; image->text rows and
    text->image columns each a cross-entropy against the diagonal."""
    a = img / np.linalg.norm(img, axis=1, keepdims=True)
    b = txt / np.linalg.norm(txt, axis=1, keepdims=True)
    logits = math.exp(logit_scale) * a @ b.T
    n = logits.shape[0]

    def ce_rows(m):
        return np.mean([np.log(np.exp(m[i]).sum()) - m[i, i] for i in range(n)])

    return 0.5 * (ce_rows(logits) + ce_rows(logits.T))


@pytest.mark.torch
def test_symmetric_info_nce_matches_hand_computation():
    import torch

    from ladder_jobs.kinds.clip.model import clip_loss

    rng = np.random.default_rng(3)
    img, txt = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    s = math.log(1 / 0.3)
    expected = _hand_clip_loss(img, txt, s)
    got = clip_loss(torch.tensor(img), torch.tensor(txt), torch.tensor(s))
    assert float(got) == pytest.approx(expected, rel=1e-6)
    # a matrix where the image->text and text->image halves differ, so dropping either half
    # (or averaging one twice) would change the value
    rows_only = np.mean([np.log(np.exp(r).sum()) - r[i] for i, r in enumerate(
        math.exp(s) * (img / np.linalg.norm(img, axis=1, keepdims=True))
        @ (txt / np.linalg.norm(txt, axis=1, keepdims=True)).T)])
    assert abs(rows_only - expected) > 1e-3  # the hand matrix is one where the halves differ


@pytest.mark.torch
def test_learnable_temperature_gets_the_hand_gradient():
    import torch

    from ladder_jobs.kinds.clip.model import clip_loss

    rng = np.random.default_rng(4)
    img, txt = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    s = torch.tensor(1.2, dtype=torch.float64, requires_grad=True)
    clip_loss(torch.tensor(img), torch.tensor(txt), s).backward()
    h = 1e-5
    numeric = (_hand_clip_loss(img, txt, 1.2 + h) - _hand_clip_loss(img, txt, 1.2 - h)) / (2 * h)
    assert float(s.grad) == pytest.approx(numeric, rel=1e-4)


@pytest.mark.torch
def test_models_share_the_image_encoder_and_only_clip_has_text_and_temperature():
    from ladder_jobs.kinds.clip.model import ContrastiveModel

    c = ContrastiveModel("clip", 8, 2, 16, 16, 0.1)
    s = ContrastiveModel("simclr", 8, 2, 16, 16, 0.1)
    assert c.encoder.out_dim == s.encoder.out_dim
    assert sum(p.numel() for p in c.encoder.parameters()) == sum(p.numel() for p in s.encoder.parameters())
    assert hasattr(c, "text") and not hasattr(s, "text")
    assert c.temperature() == pytest.approx(0.1)
    with pytest.raises(ValueError):
        ContrastiveModel("byol", 8, 2, 16, 16, 0.1)


# -- strict config --------------------------------------------------------------------------


def test_unknown_key_and_wrong_type_name_the_key():
    with pytest.raises(ConfigError, match="no_such_key"):
        resolve_config("clip", clip.DEFAULTS, clip.PRESETS, {"no_such_key": 1})
    with pytest.raises(ConfigError, match="variability"):
        resolve_config("clip", clip.DEFAULTS, clip.PRESETS, {"variability": "high"})
    with pytest.raises(ConfigError, match="caption_rewrite"):
        resolve_config("clip", clip.DEFAULTS, clip.PRESETS, {"caption_rewrite": "yes"})
    with pytest.raises(ConfigError, match="continuous"):
        resolve_config("clip", clip.DEFAULTS, clip.PRESETS, {"continuous": 1})


@pytest.mark.parametrize("bad, key", [
    ({"method": "byol"}, "method"),
    ({"descriptiveness": 6}, "descriptiveness"),
    ({"descriptiveness": -1}, "descriptiveness"),
    ({"variability": 0}, "variability"),
    ({"variability": 9}, "variability"),
    ({"label_noise": 1.5}, "label_noise"),
    ({"nondescriptive_frac": 1.0}, "nondescriptive_frac"),
    ({"descriptiveness": 2, "caption_filter": 3}, "caption_filter"),
    ({"batch_size": 1}, "batch_size"),
    ({"image_size": 18}, "image_size"),
    ({"distractors": 5}, "distractors"),
    ({"distractors": -1}, "distractors"),
    ({"n_pretrain": 10**9}, "n_pretrain"),  # a hostile size is refused before anything is allocated
])
def test_validate_names_the_bad_key(bad, key):
    clip.validate(cfg())  # the preset itself is valid
    with pytest.raises(ConfigError, match=f"'{key}'"):
        clip.validate(cfg(**bad))


# Every range rule the kind has ever had, each with a value just past its bound (and one just
# inside, below): the typed Config must keep enforcing all of them, naming the key.
_POSITIVE = ("image_size", "n_pretrain", "n_val", "n_probe", "n_test", "width", "depth", "steps", "batch_size",
             "proj_dim", "text_dim", "probe_iters", "fewshot_k", "fewshot_draws", "log_every", "temperature", "lr")
_NON_NEGATIVE = ("caption_filter", "aug_scale", "aug_translate", "aug_rotate", "aug_jitter", "aug_noise",
                 "weight_decay", "warmup", "probe_l2", "eval_every", "checkpoint_every", "data_seed", "seed",
                 "step_sleep")


def _just_below(key, bound):
    return bound - 1 if isinstance(clip.DEFAULTS[key], int) else bound - 1e-9


@pytest.mark.parametrize("bad, key", [
    *[({k: _just_below(k, 1 if isinstance(clip.DEFAULTS[k], int) else 1e-9)}, k) for k in _POSITIVE],
    *[({k: _just_below(k, 0)}, k) for k in _NON_NEGATIVE],
    ({"device": "tpu"}, "device"),
    ({"n_pretrain": 1}, "n_pretrain"),
    ({"n_val": 1}, "n_val"),
    ({"label_noise": -0.1}, "label_noise"),
    ({"nondescriptive_frac": -0.1}, "nondescriptive_frac"),
    ({"image_size": 4, "depth": 1}, "image_size"),
    ({"image_size": 260}, "image_size"),
    ({"image_size": 8, "depth": 4}, "depth"),
    ({"aug_scale": 1.0}, "aug_scale"),
    ({"aug_jitter": 1.0}, "aug_jitter"),
    ({"n_pretrain": 2000, "n_test": 10**7, "image_size": 16}, "n_pretrain"),
])
def test_every_range_rule_names_its_key(bad, key):
    with pytest.raises(ConfigError, match=f"key '{key}' of kind 'clip'"):
        clip.validate(cfg(**bad))


@pytest.mark.parametrize("edge", [
    {"descriptiveness": 0, "caption_filter": 0}, {"descriptiveness": 5, "caption_filter": 5},
    {"variability": 1}, {"variability": 8}, {"distractors": 0}, {"distractors": 4},
    {"label_noise": 0.0}, {"label_noise": 1.0}, {"nondescriptive_frac": 0.0}, {"nondescriptive_frac": 0.99},
    {"n_pretrain": 2, "n_val": 2, "batch_size": 2}, {"image_size": 8, "depth": 3}, {"image_size": 256},
    {"aug_scale": 0.0, "aug_jitter": 0.0, "aug_translate": 0.0, "aug_rotate": 0.0, "aug_noise": 0.0},
    {"aug_scale": 0.999, "aug_jitter": 0.999}, {"warmup": 0, "eval_every": 0, "checkpoint_every": 0},
    {"weight_decay": 0.0, "probe_l2": 0.0, "step_sleep": 0.0, "seed": 0, "data_seed": 0},
    {"method": "simclr", "device": "cuda"},
])
def test_values_on_the_bounds_stay_valid(edge):
    clip.validate(cfg(**edge))


def test_presets_are_valid():
    for name in ("xs", "s", "m", "l"):
        clip.validate(cfg(**clip.PRESETS[name]))


# -- the data knobs -------------------------------------------------------------------------


def _words(tokens_row):
    return [int(t) for t in tokens_row[1:] if t != PAD]


@pytest.mark.parametrize("k", range(N_ATTRS + 1))
def test_descriptiveness_k_names_exactly_k_true_attributes(k):
    rng = np.random.default_rng(k)
    attrs = sample_attributes(400, rng)
    caps = make_captions(attrs, cfg(descriptiveness=k, variability=3), rng)
    assert (caps.descriptiveness == k).all()
    assert (caps.content == attrs).all()  # no label noise: every caption describes its own image
    for i in range(len(attrs)):
        p = int(caps.phrasing[i])
        named = np.flatnonzero(caps.named[i])
        assert sorted(_words(caps.tokens[i])) == sorted(word_token(a, int(attrs[i, a]), p) for a in named)
    assert caps.tokens.shape == (400, CAPTION_LEN)
    if 0 < k < N_ATTRS:  # the named subset varies between captions, each attribute named about k/5 of the time
        frac = caps.named.mean(0)
        assert np.all(np.abs(frac - k / N_ATTRS) < 0.12), frac


@pytest.mark.parametrize("v", [1, 3, 8])
def test_variability_v_gives_exactly_v_phrasings_per_content(v):
    rng = np.random.default_rng(10 + v)
    attrs = sample_attributes(6000, rng)
    caps = make_captions(attrs, cfg(descriptiveness=1, variability=v), rng)
    phrasings = defaultdict(set)
    for i in range(len(attrs)):
        a = int(np.flatnonzero(caps.named[i])[0])
        phrasings[(a, int(attrs[i, a]))].add(tuple(caps.tokens[i]))
    # 18 contents at k=1, ~330 captions each: every phrasing of every content shows up
    assert len(phrasings) == sum(len(x) for x in clip.ATTRS.values())
    assert all(len(s) == v for s in phrasings.values()), sorted(len(s) for s in phrasings.values())
    # the words themselves differ between phrasings (not only the style token), so a model must
    # learn that the synonyms mean the same thing
    bags = defaultdict(set)
    for i in range(len(attrs)):
        a = int(np.flatnonzero(caps.named[i])[0])
        bags[(a, int(attrs[i, a]))].add(tuple(sorted(_words(caps.tokens[i]))))
    assert all(len(s) == v for s in bags.values())


def test_rewrite_keeps_content_and_leaves_one_phrasing():
    rng = np.random.default_rng(5)
    attrs = sample_attributes(2000, rng)
    caps = make_captions(attrs, cfg(descriptiveness=2, variability=8), rng)
    canon = rewrite(caps)
    assert (canon.named == caps.named).all() and (canon.content == caps.content).all()
    by_content = defaultdict(set)
    for i in range(len(attrs)):
        key = tuple((a, int(attrs[i, a])) for a in np.flatnonzero(caps.named[i]))
        by_content[key].add(tuple(canon.tokens[i]))
    assert all(len(s) == 1 for s in by_content.values())
    assert len({tuple(t) for t in caps.tokens}) > len({tuple(t) for t in canon.tokens})


def test_label_noise_fraction_describes_other_images():
    rng = np.random.default_rng(6)
    n, noise = 4000, 0.3
    attrs = sample_attributes(n, rng)
    caps = make_captions(attrs, cfg(label_noise=noise), rng)
    assert abs(caps.noisy.mean() - noise) < 4 * math.sqrt(noise * (1 - noise) / n)
    assert (caps.content[~caps.noisy] == attrs[~caps.noisy]).all()
    # a noisy caption takes another image's attributes; all five agree by chance 1 time in 288
    differs = (caps.content[caps.noisy] != attrs[caps.noisy]).any(1)
    assert differs.mean() > 0.97
    clean = make_captions(attrs, cfg(label_noise=0.0), np.random.default_rng(6))
    assert not clean.noisy.any()


def test_nondescriptive_captions_and_the_filter_that_drops_them():
    w = make_world(cfg(n_pretrain=2000, n_val=200, n_probe=50, n_test=50, descriptiveness=3,
                       nondescriptive_frac=0.4, caption_filter=1))
    d = w.captions.descriptiveness
    assert set(np.unique(d)) == {0, 3}
    assert abs((d == 0).mean() - 0.4) < 0.05
    assert (w.keep == (d >= 1)).all()
    kept_all = make_world(cfg(n_pretrain=2000, n_val=200, n_probe=50, n_test=50, descriptiveness=3,
                              nondescriptive_frac=0.4, caption_filter=0))
    assert kept_all.keep.all() and kept_all.x_val.shape[0] == 200 and w.x_val.shape[0] < 200


def test_world_is_seeded_and_the_downstream_data_does_not_move_with_n_pretrain():
    small = cfg(n_pretrain=100, n_val=20, n_probe=60, n_test=60)
    a, b = make_world(small), make_world(small)
    assert np.array_equal(a.x_pre, b.x_pre) and np.array_equal(a.clip_tokens, b.clip_tokens)
    c = make_world({**small, "data_seed": 1})
    assert not np.array_equal(a.x_pre, c.x_pre)
    big = make_world({**small, "n_pretrain": 300})
    assert np.array_equal(a.x_probe, big.x_probe) and np.array_equal(a.x_test, big.x_test)
    assert all(np.array_equal(a.y_test[t], big.y_test[t]) for t in a.y_test)
    assert a.x_pre.shape == (100, 1, 16, 16) and np.isfinite(a.x_pre).all()
    # the world knobs reach every split's rendering, and leave its attributes (drawn first) alone
    for knob in ({"continuous": True}, {"distractors": 2}):
        w = make_world({**small, **knob})
        for x, y in ((w.x_pre, a.x_pre), (w.x_val, a.x_val), (w.x_probe, a.x_probe), (w.x_test, a.x_test)):
            assert not np.array_equal(x, y)
        assert all(np.array_equal(w.y_test[t], a.y_test[t]) and np.array_equal(w.y_probe[t], a.y_probe[t])
                   for t in a.y_test)


# -- the continuous world and its clutter ----------------------------------------------------


def test_continuous_world_draws_each_value_across_its_whole_bin():
    from ladder_jobs.kinds.clip.data import _CENTRE, _HALF_BINS, _SHADE_BINS, _objects

    attrs = sample_attributes(3000, np.random.default_rng(7))
    centre, half, fg, angle = _objects(attrs, np.random.default_rng(8), continuous=True)
    for values, bins, attr in ((fg, _SHADE_BINS, 2), (half, _HALF_BINS, 3)):
        for b, (lo, hi) in enumerate(bins):
            got = values[attrs[:, attr] == b]
            assert got.min() >= lo and got.max() <= hi  # the caption's word names the bin it lies in
            assert got.max() - got.min() > 0.9 * (hi - lo)  # a range of renderings, not one
    assert (np.sign(centre) == np.sign(np.array(_CENTRE)[attrs[:, 4]])).all()  # the named quadrant
    assert np.ptp(np.abs(centre)) > 0.4 and np.ptp(np.degrees(angle)) > 50
    # the discrete world keeps one rendering per value, up to a small jitter, and no rotation
    _, half_d, fg_d, angle_d = _objects(attrs, np.random.default_rng(8), continuous=False)
    assert np.ptp(fg_d[attrs[:, 2] == 0]) < 0.1 and not angle_d.any()


@pytest.mark.parametrize("continuous", [False, True])
def test_distractors_add_clutter_under_an_unchanged_main_object(continuous):
    from ladder_jobs.kinds.clip.data import render

    attrs = sample_attributes(200, np.random.default_rng(9))
    plain = render(attrs, 16, np.random.default_rng(10), continuous, 0)
    clutter = render(attrs, 16, np.random.default_rng(10), continuous, 3)
    assert np.array_equal(plain, render(attrs, 16, np.random.default_rng(10), continuous, 0))  # seeded
    changed = (plain != clutter).reshape(200, -1)
    assert changed.any(1).mean() > 0.9  # nearly every image got some clutter ...
    # ... but only around the main object: the brightest pixels of the plain image (its object's
    # on-pattern ones: 2%, as a small textured triangle has few) are painted last, over any clutter
    top = plain.reshape(200, -1) >= np.quantile(plain.reshape(200, -1), 0.98, axis=1, keepdims=True)
    assert not (changed & top).any()
