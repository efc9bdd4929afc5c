"""A seeded synthetic dataset where the right invariance depends on the input (numpy only).

Two groups of 16x16-ish grey images, told apart by what they show (and by their background
level, so the augmentation module can see which group an image is in):

    group A  "orientation": one long bar; the class is its orientation (0, 45, 90 or 135
             degrees, +-8 degrees jitter). Rotating an A image by more than ~22 degrees turns
             it into another class, so rotation must stay small for A.
    group B  "shape": disk, square, triangle or ring at a uniformly random rotation; the class
             is the shape, which no rotation changes, so wide rotation only helps B (it shows
             the classifier views its small training set lacks).

Labels: A classes 0..3, B classes 4..7. Any input-independent rotation range is wrong for one
group: wide destroys A's labels, narrow gives B no invariance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_PER_GROUP = 4
N_CLASSES = 2 * N_PER_GROUP
GROUPS = ("A", "B")


@dataclass
class Splits:
    x_train: np.ndarray  # (N, 1, H, W) float32
    y_train: np.ndarray  # (N,) int64 in [0, 8)
    g_train: np.ndarray  # (N,) int64: 0 = group A, 1 = group B
    x_test: np.ndarray
    y_test: np.ndarray
    g_test: np.ndarray


def render(n: int, size: int, group_b_frac: float, rng: np.random.Generator):
    """n images (n, size, size) float32, labels (n,), groups (n,)."""
    group = (rng.uniform(size=n) < group_b_frac).astype(np.int64)
    k = rng.integers(0, N_PER_GROUP, n)
    jitter = np.radians(rng.uniform(-8.0, 8.0, n))
    theta = np.where(group == 0, k * np.pi / 4 + jitter, rng.uniform(0, 2 * np.pi, n))
    cx, cy = rng.uniform(-0.15, 0.15, (2, n))
    scale = np.where(group == 0, rng.uniform(0.75, 0.9, n), rng.uniform(0.45, 0.65, n))
    fg = rng.uniform(0.7, 1.0, n)
    bg = np.where(group == 0, rng.uniform(0.0, 0.15, n), rng.uniform(0.25, 0.4, n))
    noise = rng.standard_normal((n, size, size)).astype(np.float32)
    which = np.where(group == 0, 0, 1 + k)
    grid = (np.arange(size) + 0.5) / size * 2 - 1
    gy, gx = np.meshgrid(grid, grid, indexing="ij")
    x = np.empty((n, size, size), np.float32)
    for lo in range(0, n, 4096):  # chunks keep the (5, chunk, size, size) masks small
        sl = slice(lo, min(n, lo + 4096))
        dx = (gx[None] - cx[sl, None, None]) / scale[sl, None, None]
        dy = (gy[None] - cy[sl, None, None]) / scale[sl, None, None]
        c, s = np.cos(theta[sl])[:, None, None], np.sin(theta[sl])[:, None, None]
        u, v = c * dx + s * dy, -s * dx + c * dy  # shape-local coordinates
        r = np.sqrt(u * u + v * v)
        masks = np.stack([
            (abs(u) <= 1.0) & (abs(v) <= 0.2),  # A: the bar, long along u
            r <= 1.0,  # B: disk
            np.maximum(abs(u), abs(v)) <= 0.8,  # B: square
            (v >= -0.7) & (abs(u) <= (0.9 - v) * 0.6),  # B: triangle
            (r <= 1.0) & (r >= 0.55),  # B: ring
        ])  # (5, chunk, size, size)
        m = masks[which[sl], np.arange(sl.stop - sl.start)].astype(np.float32)
        x[sl] = bg[sl, None, None] + (fg[sl] - bg[sl])[:, None, None] * m + 0.03 * noise[sl]
    y = np.where(group == 0, k, N_PER_GROUP + k)
    return x, y.astype(np.int64), group


def make_splits(config: dict) -> Splits:
    rng = np.random.default_rng(config["data_seed"])
    n_train, n_test = config["n_train"], config["n_test"]
    x, y, g = render(n_train + n_test, config["image_size"], config["group_b_frac"], rng)
    x = x[:, None]
    return Splits(x[:n_train], y[:n_train], g[:n_train], x[n_train:], y[n_train:], g[n_train:])
