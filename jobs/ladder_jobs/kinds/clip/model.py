"""CLIP and SimCLR on the same image encoder (the ssl kind's Encoder).

  clip    image tower = Encoder + MLP projection; text tower = mean of token embeddings
          (an embedding bag: captions here are short bags of attribute words, and word order
          carries nothing the task needs) + MLP projection. Symmetric InfoNCE over the batch's
          image–caption pairs with a learnable temperature (CLIP's logit scale, capped at 100).
  simclr  the same Encoder + MLP projection, NT-Xent on two augmented views (ssl.model.nt_xent).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ladder_jobs.kinds.clip.data import PAD, VOCAB_SIZE
from ladder_jobs.kinds.ssl.model import Encoder, mlp, nt_xent

MAX_LOGIT_SCALE = math.log(100.0)  # CLIP's cap: a temperature below 0.01 only destabilises training


def clip_loss(img: torch.Tensor, txt: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE. img, txt: (B, D), row i of each is a pair. logits = exp(logit_scale)
    * cos(img_i, txt_j); the mean of the image->text and text->image cross-entropies."""
    assert img.shape == txt.shape and img.dim() == 2
    logits = logit_scale.float().exp() * F.normalize(img.float(), dim=1) @ F.normalize(txt.float(), dim=1).t()
    target = torch.arange(img.shape[0], device=img.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))


class TextEncoder(nn.Module):
    def __init__(self, dim: int, out_dim: int):
        super().__init__()
        self.embed = nn.Embedding(VOCAB_SIZE, dim, padding_idx=PAD)
        self.head = mlp(dim, dim, out_dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        assert tokens.dim() == 2, tokens.shape  # (B, L)
        mask = (tokens != PAD).unsqueeze(-1).float()  # (B, L, 1); the style token is never PAD
        bag = (self.embed(tokens) * mask).sum(1) / mask.sum(1).clamp_min(1.0)  # (B, dim)
        return self.head(bag)


class ContrastiveModel(nn.Module):
    def __init__(self, method: str, width: int, depth: int, proj_dim: int, text_dim: int, temperature: float):
        super().__init__()
        self.method = method
        self.encoder = Encoder(width, depth)
        d = self.encoder.out_dim
        self.head = mlp(d, d, proj_dim)
        if method == "clip":
            self.text = TextEncoder(text_dim, proj_dim)
            self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / temperature)))
        elif method != "simclr":
            raise ValueError(method)

    def temperature(self) -> float:
        return float(torch.exp(-self.logit_scale.detach())) if self.method == "clip" else float("nan")

    def clamp_scale(self) -> None:
        if self.method == "clip":
            with torch.no_grad():
                self.logit_scale.clamp_(0.0, MAX_LOGIT_SCALE)

    def loss(self, x1: torch.Tensor, x2_or_tokens: torch.Tensor, temperature: float) -> torch.Tensor:
        """clip: x1 images, x2_or_tokens captions. simclr: two views; `temperature` is fixed."""
        if self.method == "clip":
            return clip_loss(self.head(self.encoder(x1)), self.text(x2_or_tokens), self.logit_scale)
        b = x1.shape[0]
        z = self.head(self.encoder(torch.cat([x1, x2_or_tokens])))  # one pass for both views
        return nt_xent(z[:b], z[b:], temperature)
