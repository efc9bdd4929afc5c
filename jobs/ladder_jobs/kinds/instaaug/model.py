"""The augmentation module, its transforms and entropy, and the classifier/contrastive models.

InstaAug (Miao et al., "Learning Instance-Specific Augmentations by Capturing Local
Invariances", ICML 2023): an augmentation module maps each input x to a distribution over
transformations, here a uniform box over TRANSFORMS (one range [lo_d(x), hi_d(x)] per
dimension). A transformation is sampled by reparameterisation, t = lo + (hi - lo) * u with
u ~ U[0, 1]^D drawn outside the graph, and applied with one differentiable affine warp
(affine_grid / grid_sample) plus a gain, so the task loss trains the ranges end to end. The
task loss alone would shrink every range to nothing (no augmentation is the easiest input);
the paper's regulariser adds -lambda * H(p(t | x)), with the entropy of the uniform box

    H(x) = sum_d log(hi_d(x) - lo_d(x)),

averaged over the batch, so ranges stay wide wherever widening them costs little task loss:
the module learns the invariance each input has.

Ranges are bounded: lo_d = -max_d * sigmoid(a_d), hi_d = max_d * sigmoid(b_d), so the
identity is always inside the box, the width never reaches 0 (H stays finite) and never
exceeds 2 * max_d.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ladder_jobs.kinds.ssl.model import Encoder, nt_xent

# transformation dimensions, in the order of every (B, D) tensor here:
#   rotate     angle in radians
#   scale      log of the zoom (> 0 zooms in, a crop resized back)
#   translate_x, translate_y   shift, in units of half the image side
#   gain       log of the intensity gain (the "colour" of a grey image)
TRANSFORMS = ("rotate", "scale", "translate_x", "translate_y", "gain")


def max_ranges(config: dict) -> torch.Tensor:
    """(D,) caps max_d of the learned half-ranges, in the units above."""
    return torch.tensor([math.radians(config["max_rotate"]), config["max_scale"], config["max_translate"],
                         config["max_translate"], config["max_gain"]], dtype=torch.float32)


def fixed_ranges(config: dict) -> torch.Tensor:
    """(D,) half-ranges of the input-independent (aug=fixed) box, symmetric around identity."""
    return torch.tensor([math.radians(config["fixed_rotate"]), config["fixed_scale"], config["fixed_translate"],
                         config["fixed_translate"], config["fixed_gain"]], dtype=torch.float32)


class Augmenter(nn.Module):
    """x -> (lo, hi), each (B, D): a small CNN (two strided convs, global pooling, linear)."""

    def __init__(self, width: int, maxima: torch.Tensor, init_frac: float):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, width, 3, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(2), nn.Flatten(),
        )
        d = len(TRANSFORMS)
        self.out = nn.Linear(8 * width, 2 * d)
        # every input starts at the same box, init_frac of the caps: weights at zero would make the
        # first steps input-independent anyway, and a small start keeps A's labels intact early on
        nn.init.zeros_(self.out.weight)
        nn.init.constant_(self.out.bias, math.log(init_frac / (1 - init_frac)))
        self.register_buffer("maxima", maxima.clone())

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.out(self.net(x))
        # float32 at least (bf16 under autocast is too coarse for log-widths); float64 stays
        return ranges_from_logits(logits.to(torch.promote_types(logits.dtype, torch.float32)),
                                  self.maxima.to(torch.promote_types(logits.dtype, torch.float32)))


def ranges_from_logits(logits: torch.Tensor, maxima: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 2D) -> lo, hi (B, D): lo = -max * sigmoid(a), hi = max * sigmoid(b)."""
    a, b = logits.chunk(2, dim=1)
    return -maxima * torch.sigmoid(a), maxima * torch.sigmoid(b)


def entropy(lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """Differential entropy of the uniform box, sum_d log(hi_d - lo_d), averaged over the batch."""
    return torch.log(hi - lo).sum(1).mean()


def sample(lo: torch.Tensor, hi: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Reparameterised draw t = lo + (hi - lo) * u, u in [0, 1]: gradients reach lo and hi."""
    assert lo.shape == hi.shape == u.shape
    return lo + (hi - lo) * u


def apply(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Warp each image x[i] (B, 1, H, W) by its transformation t[i] (B, D), differentiably in t."""
    angle, log_s, tx, ty, log_g = t.float().unbind(1)
    inv = torch.exp(-log_s)  # the grid samples the source: zooming in by s samples 1/s of it
    cos, sin = torch.cos(angle) * inv, torch.sin(angle) * inv
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)  # (B, 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    # border padding: backgrounds are not black, so do not invent black corners
    out = F.grid_sample(x.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out * torch.exp(log_g).view(-1, 1, 1, 1)


class Model(nn.Module):
    """Encoder (the ssl kind's CNN) + a linear classifier (supervised) or an MLP projection
    head (simclr), and, for aug=instaaug, the augmentation module."""

    def __init__(self, config: dict, n_classes: int):
        super().__init__()
        self.method, self.aug = config["method"], config["aug"]
        self.encoder = Encoder(config["width"], config["depth"])
        d = self.encoder.out_dim
        if self.method == "supervised":
            self.head = nn.Linear(d, n_classes)
        else:
            self.head = nn.Sequential(nn.Linear(d, d), nn.ReLU(inplace=True), nn.Linear(d, config["proj_dim"]))
        self.register_buffer("fixed", fixed_ranges(config))
        self.augmenter = (Augmenter(config["aug_width"], max_ranges(config), config["init_range"])
                          if self.aug == "instaaug" else None)

    def ranges(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The box each input's transformations are drawn from: (lo, hi), each (B, D)."""
        if self.aug == "instaaug":
            return self.augmenter(x)
        half = self.fixed if self.aug == "fixed" else torch.zeros_like(self.fixed)
        half = half.to(x.device).expand(x.shape[0], -1)
        return -half, half

    def view(self, x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        return x if self.aug == "none" else apply(x, sample(lo, hi, u))

    def loss(self, x: torch.Tensor, y: torch.Tensor, u1: torch.Tensor, u2: torch.Tensor,
             temperature: float, entropy_weight: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(total loss, the batch's entropy). u1, u2: (B, D) uniforms of the two views (simclr)."""
        lo, hi = self.ranges(x)
        if self.method == "supervised":
            task = F.cross_entropy(self.head(self.encoder(self.view(x, lo, hi, u1))).float(), y)
        else:
            b = x.shape[0]
            z = self.head(self.encoder(torch.cat([self.view(x, lo, hi, u1), self.view(x, lo, hi, u2)])))
            task = nt_xent(z[:b], z[b:], temperature)
        if self.aug != "instaaug":
            return task, torch.zeros(())
        h = entropy(lo, hi)
        return task - entropy_weight * h, h.detach()
