"""Encoder, heads, the contrastive losses and the augmentations.

Methods:
  simclr       loss on g(f(x1)), g(f(x2)) with an MLP projection head g on BOTH views
               (NT-Xent: 2N-2 negatives per anchor, both views as anchors).
  simclr_asym  the contrastive ISSL prescription of "Improving Self-Supervised Learning by
               Characterizing Idealized Representations" (Dubois et al., 2022): the critic is
               s(x, x') = <f(x), h(f(x'))>, the head h on ONE side only. A linear probe reads
               f(x) linearly, and this critic is linear in f(x), so the loss asks for exactly
               what the probe needs: the augmentation-equivalence class (the "ideal" target)
               linearly predictable from f(x). A symmetric head only makes g(f(x)) so, and
               throws away information in f. h maps back to the representation's dimension;
               both directions (view 1 as anchor, then view 2) are averaged.
  supervised   same encoder + a linear classifier, cross-entropy on one augmented view.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def _gn(c: int) -> nn.GroupNorm:
    # GroupNorm, not BatchNorm: no batch statistics, so train and eval features agree and
    # contrastive batches cannot "cheat" through BN's cross-sample information.
    return nn.GroupNorm(min(8, c), c)


class Encoder(nn.Module):
    """`depth` stages of two 3x3 convs; stage i has width * 2**min(i, 2) channels and all but
    the first halve the resolution. Average pooling to 2x2 (not 1x1) and flattening gives the
    representation (4 * last channels): global pooling throws away where strokes are, which
    digits need, and a shallow net has too small a receptive field to recover it."""

    def __init__(self, width: int, depth: int, in_ch: int = 1):
        super().__init__()
        layers, c_in = [], in_ch
        for i in range(depth):
            c = width * 2 ** min(i, 2)
            layers += [nn.Conv2d(c_in, c, 3, stride=1 if i == 0 else 2, padding=1), _gn(c), nn.ReLU(inplace=True),
                       nn.Conv2d(c, c, 3, padding=1), _gn(c), nn.ReLU(inplace=True)]
            c_in = c
        self.net = nn.Sequential(*layers)
        self.out_dim = 4 * c_in

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.dim() == 4 and x.shape[1] == 1, x.shape  # (B, 1, H, W)
        h = self.net(x)  # (B, C, H / 2**(depth-1), W / 2**(depth-1))
        assert h.shape[-1] >= 2, h.shape
        return F.adaptive_avg_pool2d(h, 2).flatten(1)  # (B, 4C)


def mlp(d_in: int, d_hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_hidden), nn.ReLU(inplace=True), nn.Linear(d_hidden, d_out))


class SSLModel(nn.Module):
    """Encoder + the head its method needs: proj (simclr), asym (simclr_asym) or classifier."""

    def __init__(self, method: str, width: int, depth: int, proj_dim: int, n_classes: int):
        super().__init__()
        self.method = method
        self.encoder = Encoder(width, depth)
        d = self.encoder.out_dim
        if method == "simclr":
            self.head = mlp(d, d, proj_dim)
        elif method == "simclr_asym":
            self.head = mlp(d, d, d)  # back to the representation's space: compared with f(x)
        elif method == "supervised":
            self.head = nn.Linear(d, n_classes)
        else:
            raise ValueError(method)

    def loss(self, x1: torch.Tensor, x2: torch.Tensor | None, y: torch.Tensor | None, temperature: float):
        if self.method == "supervised":
            return F.cross_entropy(self.head(self.encoder(x1)).float(), y)
        b = x1.shape[0]
        f = self.encoder(torch.cat([x1, x2]))  # one pass for both views: (2B, d)
        if self.method == "simclr":
            z = self.head(f)  # (2B, proj_dim)
            return nt_xent(z[:b], z[b:], temperature)
        f1, f2 = f[:b], f[b:]
        h = self.head(f)
        h1, h2 = h[:b], h[b:]
        return 0.5 * (info_nce(f1, h2, temperature) + info_nce(f2, h1, temperature))


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's loss. z1, z2: (B, D) projections of two views; row i of each is a positive
    pair. Each of the 2B anchors classifies its partner among the other 2B - 1 embeddings."""
    assert z1.shape == z2.shape and z1.dim() == 2
    b = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)  # (2B, D), float32 even under autocast
    logits = z @ z.t() / temperature  # (2B, 2B) cosine similarities
    logits = logits.masked_fill(torch.eye(2 * b, dtype=torch.bool, device=z.device), float("-inf"))
    target = torch.cat([torch.arange(b, 2 * b), torch.arange(0, b)]).to(z.device)  # partner index
    return F.cross_entropy(logits, target)


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """One-directional InfoNCE: anchor a[i] picks its positive b[i] among all of b (B-way)."""
    assert a.shape == b.shape and a.dim() == 2
    logits = F.normalize(a.float(), dim=1) @ F.normalize(b.float(), dim=1).t() / temperature  # (B, B)
    return F.cross_entropy(logits, torch.arange(a.shape[0], device=a.device))


def augment(x: torch.Tensor, g: torch.Generator, cfg: dict) -> torch.Tensor:
    """A random view of each image: crop-zoom, translate, rotate (one affine warp), then
    intensity jitter and pixel noise. x: (B, 1, H, W). Random numbers come from the CPU
    generator g (seeded per step by the caller), so views are the same on any device and
    after a resume."""
    n = x.shape[0]
    u = torch.rand(n, 6, generator=g)  # CPU, (B, 6) uniforms
    noise = torch.randn(x.shape, generator=g)
    scale = 1.0 - cfg["aug_scale"] * u[:, 0]  # < 1 zooms in: a random crop, resized back
    angle = (2 * u[:, 1] - 1) * math.radians(cfg["aug_rotate"])
    tx, ty = [(2 * u[:, i] - 1) * cfg["aug_translate"] for i in (2, 3)]
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)  # (B, 2, 3)
    theta = theta.to(x.device, x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    # border padding: the background is not always 0 (shapes), so do not invent black edges
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    j = cfg["aug_jitter"]
    gain = (1 + j * (2 * u[:, 4] - 1)).view(n, 1, 1, 1).to(x.device, x.dtype)
    bias = (j / 3 * (2 * u[:, 5] - 1)).view(n, 1, 1, 1).to(x.device, x.dtype)
    return out * gain + bias + cfg["aug_noise"] * noise.to(x.device, x.dtype)


# -- linear probe ----------------------------------------------------------------------------


def fit_probe(feats: torch.Tensor, y: torch.Tensor, n_classes: int, l2: float, iters: int):
    """Multinomial logistic regression on frozen features, float64 full-batch L-BFGS on CPU
    (deterministic, no sklearn needed on the GPU image). Features are standardised with the
    training set's statistics. Returns predict(feats) -> labels."""
    feats, y = feats.double().cpu(), y.cpu()
    mean, std = feats.mean(0), feats.std(0, unbiased=False).clamp_min(1e-6)
    xs = (feats - mean) / std  # (N, d)
    w = torch.zeros(xs.shape[1], n_classes, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(n_classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, bias], lr=1.0, max_iter=iters, history_size=20,
                            tolerance_grad=1e-9, tolerance_change=1e-12, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(xs @ w + bias, y) + 0.5 * l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    w, bias = w.detach(), bias.detach()

    def predict(f: torch.Tensor) -> torch.Tensor:
        return (((f.double().cpu() - mean) / std) @ w + bias).argmax(1)

    return predict


def error_rate(pred: torch.Tensor, y: torch.Tensor) -> float:
    assert pred.shape == y.shape
    return float((pred != y.cpu()).double().mean())
