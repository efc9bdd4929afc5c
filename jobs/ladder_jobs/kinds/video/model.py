"""Video classifier: per-frame CNN -> token resampler -> temporal model -> one head per task.

    video (B, T, H, W), lengths (B,)
      -> only the sum(lengths) real frames go through the encoder: (N, 1, H, W) -> (N, P, D),
         P = (H/4)^2 spatial tokens with a learned 2-D position embedding
      -> resampler to k = tokens_per_frame tokens per frame: (N, k, D)
           perceiver: k learned latent queries cross-attend to the P tokens (+ an MLP), as in the
                      Perceiver resampler of Flamingo / Apollo's token resampler
           pool:      average pooling of the (H/4, W/4) map to a sqrt(k) x sqrt(k) grid
      -> scattered back to (B, T, k, D), then the temporal model:
           gru:         a frame's k tokens concatenated -> D, a GRU over the T frames; the output
                        at each clip's last real frame (causal, so padding never reaches it)
           transformer: + frame-index and token-slot embeddings, flattened to (B, T*k, D), a
                        [CLS] token prepended, padded frames masked out of attention (pre-norm
                        blocks) -> [CLS]. Slow to start at the xs budget: the CLS read-out is an
                        average over T*k tokens, and the 5x5 sprite is a small part of each.
      -> LayerNorm -> a linear head per task.
Frame order is all the model knows about time: no timestamps, so with uniform sampling the
seconds between two frames are not observable (the point of the sampling axis).
The perceiver resampler likewise starts slowly at xs (its read-out of a mostly empty frame is
near-constant at init); pool is the default, perceiver an axis for the larger presets.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class FrameEncoder(nn.Module):
    """Two stride-2 3x3 convs and a 1x1 projection: (N, 1, H, W) -> (N, D, H/4, W/4).
    The image gets two coordinate channels (CoordConv): direction and speed are about WHERE the
    sprite is, and a conv alone is translation-equivariant, so a perceiver latent pooling its
    tokens by content would lose the position. GroupNorm, not BatchNorm: no statistics across
    clips or padded frames."""

    def __init__(self, width: int, d_model: int, canvas: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, width, 3, stride=2, padding=1), nn.GroupNorm(min(8, width), width), nn.GELU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.GroupNorm(min(8, 2 * width), 2 * width), nn.GELU(),
            nn.Conv2d(2 * width, d_model, 1),
        )
        self.side = canvas // 4
        ramp = torch.linspace(-1.0, 1.0, canvas)
        self.register_buffer("coords", torch.stack(torch.meshgrid(ramp, ramp, indexing="ij"))[None], persistent=False)
        self.pos = nn.Parameter(torch.randn(1, d_model, self.side, self.side) * 0.02)  # where a token is

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.dim() == 4 and x.shape[1] == 1, x.shape  # (N, 1, H, W)
        x = torch.cat([x, self.coords.expand(x.shape[0], -1, -1, -1).to(x.dtype)], 1)  # (N, 3, H, W): y, x ramps
        h = self.net(x) + self.pos  # (N, D, H/4, W/4)
        assert h.shape[-1] == self.side, h.shape
        return h  # kept as a map: the pool resampler needs the grid


class MLP(nn.Module):
    def __init__(self, d: int, mult: int = 4, dropout: float = 0.0):
        super().__init__()
        self.fc1, self.fc2, self.drop = nn.Linear(d, mult * d), nn.Linear(mult * d, d), nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(F.gelu(self.fc1(x))))


class PerceiverResampler(nn.Module):
    """k learned latents read the frame's P tokens by cross-attention: (N, D, s, s) -> (N, k, D).
    The token budget k is free (any k >= 1), and the latents choose what to keep."""

    def __init__(self, d_model: int, n_heads: int, k: int, dropout: float = 0.0):
        super().__init__()
        self.latents = nn.Parameter(torch.randn(k, d_model))  # unit scale: non-uniform attention from step 0
        self.norm_kv, self.norm_q, self.norm_mlp = nn.LayerNorm(d_model), nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attn = nn.MultiheadAttention(d_model, n_heads, dropout=dropout, batch_first=True)
        self.mlp = MLP(d_model, dropout=dropout)

    def forward(self, fmap: torch.Tensor) -> torch.Tensor:
        N, D = fmap.shape[:2]
        kv = self.norm_kv(fmap.flatten(2).transpose(1, 2))  # (N, P, D)
        q = self.latents.unsqueeze(0).expand(N, -1, -1)  # (N, k, D)
        # no residual from the queries: they are the same for every frame and would drown the
        # small part of the read-out that depends on the frame (a 5x5 sprite among 64 tokens)
        z = self.attn(self.norm_q(q), kv, kv, need_weights=False)[0]  # (N, k, D)
        return z + self.mlp(self.norm_mlp(z))


class PoolResampler(nn.Module):
    """Average pooling of the token map to a sqrt(k) x sqrt(k) grid: (N, D, s, s) -> (N, k, D).
    No parameters: the baseline the Perceiver has to beat at the same token budget."""

    def __init__(self, k: int):
        super().__init__()
        self.g = math.isqrt(k)
        assert self.g * self.g == k, "pool needs a square tokens_per_frame"

    def forward(self, fmap: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(fmap, self.g).flatten(2).transpose(1, 2)  # (N, k, D)


class Block(nn.Module):
    """Pre-norm transformer block; key_padding_mask (B, L) is True where a token is padding."""

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attn = nn.MultiheadAttention(d_model, n_heads, dropout=dropout, batch_first=True)
        self.mlp = MLP(d_model, dropout=dropout)

    def forward(self, x: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.attn(h, h, h, key_padding_mask=pad, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class VideoClassifier(nn.Module):
    def __init__(self, cfg: dict, tasks: dict):
        super().__init__()
        D, k = cfg["d_model"], cfg["tokens_per_frame"]
        self.k, self.max_frames = k, max(cfg["max_frames"], cfg["uniform_frames"])
        self.encoder = FrameEncoder(cfg["enc_width"], D, cfg["canvas"])
        if cfg["resampler"] == "perceiver":
            self.resampler = PerceiverResampler(D, cfg["n_heads"], k, cfg["dropout"])
        elif cfg["resampler"] == "pool":
            self.resampler = PoolResampler(k)
        else:
            raise ValueError(f"unknown resampler {cfg['resampler']!r}")
        self.frame_pos = nn.Parameter(torch.randn(self.max_frames, 1, D) * 0.5)  # which frame (index, not time)
        self.slot_pos = nn.Parameter(torch.randn(1, k, D) * 0.5)  # which of the k tokens of a frame
        self.cls = nn.Parameter(torch.randn(1, 1, D) * 0.02)
        self.temporal = cfg["temporal"]
        if self.temporal == "transformer":
            self.blocks = nn.ModuleList(Block(D, cfg["n_heads"], cfg["dropout"]) for _ in range(cfg["n_layers"]))
        elif self.temporal == "gru":
            # a frame's k tokens, concatenated (keeps which token said what), projected to D
            self.frame_in = nn.Sequential(nn.LayerNorm(k * D), nn.Linear(k * D, D))
            self.gru = nn.GRU(D, D, num_layers=cfg["n_layers"], batch_first=True,
                              dropout=cfg["dropout"] if cfg["n_layers"] > 1 else 0.0)
        else:
            raise ValueError(f"unknown temporal model {cfg['temporal']!r}")
        self.norm = nn.LayerNorm(D)
        self.heads = nn.ModuleDict({t: nn.Linear(D, n) for t, n in tasks.items()})

    def frame_tokens(self, frames: torch.Tensor) -> torch.Tensor:
        """(N, H, W) real frames -> (N, k, D) tokens."""
        z = self.resampler(self.encoder(frames.unsqueeze(1)))
        assert z.shape[1:] == (self.k, self.cls.shape[-1]), z.shape
        return z

    def forward(self, video: torch.Tensor, lengths: torch.Tensor) -> dict:
        B, T = video.shape[:2]
        assert video.dim() == 4 and lengths.shape == (B,) and T <= self.max_frames, (video.shape, lengths.shape)
        valid = torch.arange(T, device=video.device)[None, :] < lengths[:, None]  # (B, T)
        z = self.frame_tokens(video[valid])  # (N, k, D): padded frames never reach the encoder
        tokens = z.new_zeros(B, T, self.k, z.shape[-1])
        tokens[valid] = z  # (B, T, k, D)
        if self.temporal == "gru":
            # causal: the output at a clip's last real frame never saw its padding
            h, _ = self.gru(self.frame_in(tokens.flatten(2)))  # (B, T, D)
            h = self.norm(h[torch.arange(B, device=video.device), lengths - 1])  # (B, D)
            return {t: head(h) for t, head in self.heads.items()}
        tokens = tokens + self.frame_pos[:T] + self.slot_pos
        x = torch.cat([self.cls.expand(B, -1, -1).to(tokens.dtype), tokens.flatten(1, 2)], 1)  # (B, 1+T*k, D)
        pad = torch.cat([valid.new_zeros(B, 1), ~valid.repeat_interleave(self.k, dim=1)], 1)  # (B, 1+T*k)
        for block in self.blocks:
            x = block(x, pad)
        h = self.norm(x[:, 0])  # (B, D): [CLS]
        return {t: head(h) for t, head in self.heads.items()}  # task -> (B, classes)
