"""Policy and reward model: one tiny causal Transformer trunk, two heads.

    Trunk       token + learned position embeddings, n_layers pre-norm blocks (causal
                multi-head attention, GELU MLP), final LayerNorm. Written out (no
                nn.TransformerEncoder) so it runs the same on torch 1.13 CPU and 2.x CUDA.
    Policy      trunk -> lm_head (next token) and value_head (PPO's critic when it shares the
                policy trunk: the `value_model: shared` option, not AlpacaFarm's choice). Quark
                with reward tokens adds input-embedding rows to its trunk (quark.py says why
                input rows only).
    RewardModel trunk -> scalar read at the response's EOS (Bradley-Terry score r(x, y)),
                initialised from the SFT policy's trunk as in AlpacaFarm.
    ValueModel  trunk -> scalar per position: PPO's critic as AlpacaFarm builds it, a separate
                model whose trunk starts from the reward model's and whose head starts at zero.

Sequences are [prompt (P) | response (R)], T = P + R, no padding mask: prompts are left-padded
and responses right-padded with PAD, and the model simply sees PAD as a token (fixed shapes keep
the code and the batching trivial). Shapes: B batch, T time, D d_model, H heads, V vocab.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ladder_jobs.kinds.rlhf.task import EOS, PAD

INIT_STD = 0.02


class Block(nn.Module):
    def __init__(self, d: int, h: int):
        super().__init__()
        assert d % h == 0, "n_heads must divide d_model"
        self.h = h
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        B, T, D = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(D, dim=-1)
        q, k, v = (t.view(B, T, self.h, D // self.h).transpose(1, 2) for t in (q, k, v))  # (B,H,T,K)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(D // self.h)  # (B,H,T,T)
        att = att.masked_fill(mask, float("-inf")).softmax(-1)
        x = x + self.proj((att @ v).transpose(1, 2).reshape(B, T, D))
        return x + self.mlp(self.ln2(x))


class Trunk(nn.Module):
    def __init__(self, vocab: int, d: int, n_layers: int, n_heads: int, max_len: int):
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, d), nn.Embedding(max_len, d)
        self.blocks = nn.ModuleList(Block(d, n_heads) for _ in range(n_layers))
        self.ln = nn.LayerNorm(d)
        self.register_buffer("causal", torch.triu(torch.ones(max_len, max_len, dtype=torch.bool), 1), persistent=False)
        self.apply(_init)
        self.reward_tok = None  # Quark's reward tokens, ids vocab.. (add_reward_tokens); absent otherwise

    @torch.no_grad()
    def add_reward_tokens(self, k: int, gen: torch.Generator) -> None:
        """k input-embedding rows for ids vocab .. vocab+k-1, each the mean of the existing rows plus
        Gaussian jitter of their per-dimension std (AlpacaFarm's stable_resize_token_embeddings with
        jitter_new_embeddings, as its Quark policy is built). Noise drawn on the CPU from gen."""
        w = self.tok.weight.detach().float().cpu()
        rows = w.mean(0, keepdim=True) + torch.randn(k, w.shape[1], generator=gen) * w.std(0, keepdim=True)
        # from_pretrained: no default init, which would draw from the global RNG
        self.reward_tok = nn.Embedding.from_pretrained(rows.to(self.tok.weight.device), freeze=False)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        T = idx.shape[1]
        if self.reward_tok is None:  # the path of every model without reward tokens, unchanged
            tok = self.tok(idx)
        else:
            tok = F.embedding(idx, torch.cat([self.tok.weight, self.reward_tok.weight]))
        x = tok + self.pos(torch.arange(T, device=idx.device))  # (B,T,D)
        for b in self.blocks:
            x = b(x, self.causal[:T, :T])
        return self.ln(x)


def _init(m: nn.Module) -> None:
    if isinstance(m, (nn.Linear, nn.Embedding)):
        nn.init.normal_(m.weight, std=INIT_STD)
    if isinstance(m, nn.Linear) and m.bias is not None:
        nn.init.zeros_(m.bias)


class Policy(nn.Module):
    def __init__(self, cfg: dict, vocab: int, max_len: int):
        super().__init__()
        self.trunk = Trunk(vocab, cfg["d_model"], cfg["n_layers"], cfg["n_heads"], max_len)
        self.lm_head = nn.Linear(cfg["d_model"], vocab, bias=False)
        self.value_head = nn.Linear(cfg["d_model"], 1)
        self.apply(_init)

    def forward(self, idx: torch.Tensor):
        h = self.trunk(idx)  # (B,T,D)
        return self.lm_head(h), self.value_head(h).squeeze(-1)  # (B,T,V), (B,T)


class RewardModel(nn.Module):
    def __init__(self, cfg: dict, vocab: int, max_len: int):
        super().__init__()
        self.trunk = Trunk(vocab, cfg["d_model"], cfg["n_layers"], cfg["n_heads"], max_len)
        self.head = nn.Linear(cfg["d_model"], 1)
        self.apply(_init)

    def forward(self, seq: torch.Tensor, P: int) -> torch.Tensor:
        """seq (B, T) = [prompt | response] -> r (B,): the hidden state at the response's first EOS
        (its last token when it has none) has seen the whole prompt and response."""
        h = self.trunk(seq)  # (B,T,D)
        resp = seq[:, P:]
        has = (resp == EOS).any(1)
        last = torch.where(has, (resp == EOS).int().argmax(1), torch.full_like(has, resp.shape[1] - 1, dtype=torch.long))
        return self.head(h[torch.arange(len(seq), device=seq.device), P + last]).squeeze(-1)


class ValueModel(nn.Module):
    def __init__(self, rm: RewardModel):
        super().__init__()
        self.trunk = copy.deepcopy(rm.trunk).requires_grad_(True)
        self.head = nn.Linear(rm.head.in_features, 1)
        nn.init.zeros_(self.head.weight)  # AlpacaFarm: a zero head, so V starts at 0 everywhere
        nn.init.zeros_(self.head.bias)

    def forward(self, seq: torch.Tensor, P: int) -> torch.Tensor:
        """V(x, y_<t) for every response token t: (B, R), aligned with response_logprobs."""
        return self.head(self.trunk(seq)).squeeze(-1)[:, P - 1 : -1].float()


def response_mask(resp: torch.Tensor) -> torch.Tensor:
    """(B, R) float: 1 up to and including the first EOS, 0 after it (the PAD tail)."""
    is_eos = (resp == EOS).long()
    return ((torch.cumsum(is_eos, 1) - is_eos) == 0).float()


def response_logprobs(model: Policy, seq: torch.Tensor, P: int):
    """Per-token log pi(y_t | x, y_<t) and values V(x, y_<t) of the response part: (B, R), (B, R)."""
    logits, values = model(seq)
    logits, values = logits[:, P - 1 : -1], values[:, P - 1 : -1]  # position t predicts token t+1
    logp = F.log_softmax(logits.float(), -1).gather(-1, seq[:, P:].unsqueeze(-1)).squeeze(-1)
    return logp, values.float()


@torch.no_grad()
def sample(model: Policy, prompts: torch.Tensor, R: int, gen: torch.Generator, temperature: float = 1.0) -> torch.Tensor:
    """Autoregressive sampling (B, P) -> responses (B, R), PAD after the first EOS.

    Gumbel-max with noise drawn on the CPU from `gen`: the same samples on any device and after
    a resume (the generator is seeded from (seed, step)). No KV cache: T is ~20 tokens.
    """
    was_training = model.training
    model.eval()
    B, P = prompts.shape
    gumbel = -torch.log(-torch.log(torch.rand(B, R, model.lm_head.out_features, generator=gen).clamp_(1e-10, 1.0)))
    gumbel = gumbel.to(prompts.device)
    seq = prompts
    done = torch.zeros(B, dtype=torch.bool, device=prompts.device)
    for t in range(R):
        logits, _ = model(seq)
        tok = (logits[:, -1].float() / temperature + gumbel[:, t]).argmax(-1)
        tok = torch.where(done, torch.full_like(tok, PAD), tok)
        done = done | (tok == EOS)
        seq = torch.cat([seq, tok[:, None]], 1)
    model.train(was_training)
    return seq[:, P:]
