"""Offline datasets and their deterministic splits (numpy only, seeded by data_seed).

Splits, following the risk-decomposition paper (where ImageNet-train is both the
pre-training data and the probe's training data):

    pretrain  (n_pretrain)  the encoder pre-trains on all of it (labels unused by SSL); the
                            full-shot probe trains on it with labels; few-shot probes draw
                            their labels from its `fit` part
        fit                  probe-train part of the pre-training data
        heldout              the probe-generalization probe is tested here: data the
                             encoder saw, the probe did not. heldout=test_size (the paper's
                             estimator): as many images as the test set, so the probe
                             generalization and encoder generalization terms are measured
                             on equally large samples; capped at half the pre-training set
                             so the probe keeps data to fit. heldout=frac: heldout_frac of it
    test      (n_test)      never seen by the encoder nor any probe

Datasets:
    digits  scikit-learn's 1797 8x8 digits (ship with the package), bilinearly upsampled
    shapes  6 shape classes rendered on the fly, with nuisance factors: position, scale,
            rotation, foreground intensity, background level, pixel noise
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SHAPES = ("disk", "square", "triangle", "ring", "cross", "bar")


@dataclass
class Splits:
    x_pre: np.ndarray  # (P, 1, H, W) float32 in roughly [0, 1]
    y_pre: np.ndarray  # (P,) int64
    heldout: np.ndarray  # (P,) bool: the held-out part of the pre-training set
    x_test: np.ndarray  # (T, 1, H, W)
    y_test: np.ndarray  # (T,)
    n_classes: int

    @property
    def fit(self) -> np.ndarray:
        return ~self.heldout


def _upsample(x: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize (N, h, w) -> (N, size, size), align-corners style, in numpy."""
    n, h, w = x.shape
    ys = np.linspace(0, h - 1, size)
    xs = np.linspace(0, w - 1, size)
    y0 = np.floor(ys).astype(int).clip(0, h - 2)
    x0 = np.floor(xs).astype(int).clip(0, w - 2)
    fy = (ys - y0)[None, :, None]
    fx = (xs - x0)[None, None, :]
    a = x[:, y0][:, :, x0]
    b = x[:, y0][:, :, x0 + 1]
    c = x[:, y0 + 1][:, :, x0]
    d = x[:, y0 + 1][:, :, x0 + 1]
    return (a * (1 - fy) * (1 - fx) + b * (1 - fy) * fx + c * fy * (1 - fx) + d * fy * fx).astype(np.float32)


def render_shapes(n: int, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n seeded shape images (n, size, size) float32 and labels (n,) in [0, 6)."""
    y = rng.integers(0, len(SHAPES), n)
    cx, cy = rng.uniform(-0.45, 0.45, (2, n))  # centre, in [-1, 1] image coordinates
    scale = rng.uniform(0.3, 0.55, n)  # half-extent of the shape
    theta = rng.uniform(0, 2 * np.pi, n)  # rotation (shapes are told apart by form, not angle)
    fg = rng.uniform(0.5, 1.0, n)  # foreground intensity ("colour")
    bg = rng.uniform(0.0, 0.3, n)  # background level
    sigma = rng.uniform(0.0, 0.1, n)  # pixel noise
    noise = rng.standard_normal((n, size, size)).astype(np.float32)
    out = np.empty((n, size, size), np.float32)
    grid = (np.arange(size) + 0.5) / size * 2 - 1
    gy, gx = np.meshgrid(grid, grid, indexing="ij")  # (size, size)
    for lo in range(0, n, 4096):  # chunks keep the (chunk, size, size) temporaries small
        sl = slice(lo, min(n, lo + 4096))
        dx = (gx[None] - cx[sl, None, None]) / scale[sl, None, None]
        dy = (gy[None] - cy[sl, None, None]) / scale[sl, None, None]
        c, s = np.cos(theta[sl])[:, None, None], np.sin(theta[sl])[:, None, None]
        u, v = c * dx + s * dy, -s * dx + c * dy  # shape-local coordinates
        r = np.sqrt(u * u + v * v)
        masks = np.stack(
            [
                r <= 1.0,  # disk
                np.maximum(abs(u), abs(v)) <= 0.8,  # square
                (v >= -0.7) & (abs(u) <= (0.9 - v) * 0.6),  # triangle
                (r <= 1.0) & (r >= 0.55),  # ring
                ((abs(u) <= 0.3) & (abs(v) <= 1.0)) | ((abs(v) <= 0.3) & (abs(u) <= 1.0)),  # cross
                (abs(u) <= 1.0) & (abs(v) <= 0.3),  # bar
            ]
        )  # (6, chunk, size, size)
        m = masks[y[sl], np.arange(sl.stop - sl.start)].astype(np.float32)
        out[sl] = bg[sl, None, None] + (fg[sl] - bg[sl])[:, None, None] * m + sigma[sl, None, None] * noise[sl]
    return out, y.astype(np.int64)


def make_splits(config: dict) -> Splits:
    rng = np.random.default_rng(config["data_seed"])
    size = config["image_size"]
    if config["dataset"] == "digits":
        from sklearn.datasets import load_digits  # ships its data; no download

        d = load_digits()
        x = _upsample(d.images.astype(np.float32) / 16.0, size)
        y = d.target.astype(np.int64)
        order = rng.permutation(len(y))
        n_test = min(config["n_test"], len(y) // 5)
        n_pre = min(config["n_pretrain"], len(y) - n_test)
        test, pre = order[:n_test], order[n_test : n_test + n_pre]
        x_pre, y_pre, x_test, y_test = x[pre], y[pre], x[test], y[test]
        n_classes = 10
    elif config["dataset"] == "shapes":
        n_pre, n_test = config["n_pretrain"], config["n_test"]
        x, y = render_shapes(n_pre + n_test, size, rng)
        x_pre, y_pre, x_test, y_test = x[:n_pre], y[:n_pre], x[n_pre:], y[n_pre:]
        n_classes = len(SHAPES)
    else:
        raise ValueError(f"unknown dataset {config['dataset']}")
    heldout = np.zeros(len(y_pre), bool)
    n_heldout = heldout_size(config["heldout"], config["heldout_frac"], len(y_pre), len(y_test))
    heldout[rng.permutation(len(y_pre))[:n_heldout]] = True
    splits = Splits(x_pre[:, None], y_pre, heldout, x_test[:, None], y_test, n_classes)
    assert splits.x_pre.shape == (len(y_pre), 1, size, size) and splits.x_test.shape[1:] == (1, size, size)
    assert splits.fit.sum() > 0 and splits.heldout.sum() > 0
    return splits


def heldout_size(mode: str, frac: float, n_pre: int, n_test: int) -> int:
    """How many pre-training images the probe-generalization probe is tested on."""
    if mode == "test_size":
        return max(1, min(n_test, n_pre // 2))
    if mode == "frac":
        return max(1, int(round(frac * n_pre)))
    raise ValueError(f"unknown heldout mode {mode!r}")


def fewshot_indices(y: np.ndarray, pool: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k labelled examples per class drawn from the indices `pool` (fewer if a class is short)."""
    picks = []
    for c in np.unique(y[pool]):
        members = pool[y[pool] == c]
        picks.append(rng.choice(members, size=min(k, len(members)), replace=False))
    return np.sort(np.concatenate(picks))
