"""Sequence mixers and the LM wrapper for the `ttt` kind (nanoGPT spirit: one file, no magic).

Mixers (config key `layer`):
    ttt_linear    TTT layer, inner model f(x) = x + LN(x W + b)                  (paper: TTT-Linear)
    ttt_mlp       TTT layer, inner model f(x) = x + LN(GELU(x W1 + b1) W2 + b2)  (paper: TTT-MLP, 4x hidden)
    transformer   causal softmax attention with RoPE (SDPA when torch has it)
    decay_linear_attn  linear attention with a scalar decay, S_t = a_t S_{t-1} + k_t^T v_t, o_t = q_t S_t,
                  a_t in (0, 1) per head and token (RetNet / GLA class; NOT Mamba: no selective
                  state-space parameters); its state is d_head x d_head per head, as TTT-Linear's W.
                  It was called `gated_linear`, a name that read like the paper's Mamba baseline.

Block parts (as the authors' Llama-style code by default): `norm` rmsnorm | layernorm, `mlp`
swiglu | gelu. `backbone` mamba | transformer applies to the TTT mixers: the Mamba backbone (the
paper's headline results) adds a causal depthwise conv before the mixer (its own residual), makes
Q and K share a projection told apart by two causal convs, and gates the mixer's output with
GELU_tanh(x W_g). `rope`: the TTT layer rotates Q and K at positions t % mini_batch, as the
authors' code. `learn_token_idx`: the authors' learnable offset on the 1/(i+1) step scale.

TTT in one paragraph (Sun et al., "Learning to (Learn at Test Time)"). The hidden state of a head
is the weights W of an inner model f. For each token x_t the layer takes a gradient step on the
self-supervised reconstruction loss
    l(W; x_t) = || f(theta_K x_t; W) - theta_V x_t ||^2            (a sum of squares, no 1/2)
and outputs z_t = f(theta_Q x_t; W_t). With mini-batch TTT of size b, every gradient inside a
mini-batch is taken at the weights W_0 the mini-batch started with:
    W_t = W_0 - sum_{s <= t, s in mini-batch} eta_s grad l(W_0; x_s),
and the next mini-batch starts from W_b. eta_s = eta_base * sigmoid(theta_lr . x_s) / d_head is
learned and input dependent (the / d_head, as in the authors' code, keeps the step size of W
independent of the head width). The initial W_0 (and b_0, the inner LN's gamma/beta) are
parameters of the outer model, trained by backprop through the whole inner loop.

Dual form (what `ttt_linear_scan` / `ttt_mlp_scan` compute). Because all gradients of a
mini-batch are taken at W_0, a gradient is an outer product x_s^T G_s (G_s = dl/dZ_s at the
pre-activation Z_s = x_s W_0 + b_0), so for a query q_t
    q_t W_t = q_t W_0 - sum_{s<=t} eta_s (q_t . x_s) G_s = q_t W_0 - (M * tril(Q X^T)) G,
with M[t, s] = eta_s for s <= t: per-token weights are never materialised, only b x b matrices.
TTT-MLP uses the same identity for BOTH layers (exact, not an approximation): the first layer's
gradients G1 are taken at W1_0, so Z1_bar = Q W1_0 - (M * tril(Q X1^T)) G1 + b1_0 - M G1 gives
the query's hidden pre-activation under the per-token W1_t; the second layer then uses the dual
form with keys X2 = GELU(X1 W1_0 + b1_0) and queries GELU(Z1_bar). tests/test_ttt_layers.py
checks both against a token-by-token primal implementation (autograd, float64).

Deviations from the authors' code (documented, deliberate for a small harness): byte vocab
with a tied head; the step size's eta_base halved to our loss convention (see ETA_BASE); the
exact (erf) GELU inside TTT-MLP where they use the tanh form; fused projections. With inner_mean
(the default, as the authors' code) token t of a mini-batch steps by the MEAN of the gradients
so far, eta_s / (i_t + 1) (plus the learned offset); the tests cover the mean, the plain sum and
the offset.

Shapes: B batch, T time, D d_model, H heads, K = D / H head width, b mini-batch size.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

LAYERS = ("ttt_linear", "ttt_mlp", "transformer", "decay_linear_attn")
# eta_base when the config says 0: the paper's 1.0 / 0.1, halved because the authors' code
# differentiates 1/2 ||.||^2 and we keep the equations' ||.||^2 (so Theorem 1's eta = 1/2 holds).
ETA_BASE = {"ttt_linear": 0.5, "ttt_mlp": 0.05}
LN_EPS = 1e-6  # inner LayerNorm epsilon (the same in the dual form and in the reference primal)
INIT_STD = 0.02  # GPT-2 style init for projections and W_0


# -----------------------------------------------------------------------------
# TTT: inner LayerNorm and its closed-form backward


def ln_fwd(z: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """LayerNorm over the last dim; gamma, beta broadcast (H, 1, K) against (B, H, n, K)."""
    mu = z.mean(-1, keepdim=True)
    var = z.var(-1, keepdim=True, unbiased=False)
    return gamma * (z - mu) / torch.sqrt(var + LN_EPS) + beta


def ln_l2_bwd(z: torch.Tensor, target: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """d/dz of ||LN(z) - target||^2 (sum over the last dim), in closed form.

    The dual form needs the gradient w.r.t. the pre-LN activation as a plain tensor (not via
    autograd, which would only give it summed over the mini-batch). With y = gamma * zh + beta,
    zh = (z - mu) / sigma: g = gamma * 2 (y - target), dz = (g - mean(g) - zh * mean(g * zh)) / sigma.
    """
    k = z.shape[-1]
    mu = z.mean(-1, keepdim=True)
    sigma = torch.sqrt(z.var(-1, keepdim=True, unbiased=False) + LN_EPS)
    zh = (z - mu) / sigma
    g = gamma * 2.0 * (gamma * zh + beta - target)
    return (k * g - g.sum(-1, keepdim=True) - zh * (g * zh).sum(-1, keepdim=True)) / (k * sigma)


def _gelu(z: torch.Tensor) -> torch.Tensor:
    """The exact (erf) GELU, z Phi(z), written out instead of F.gelu.

    torch 1.13's CPU kernel for F.gelu's backward (Debian's python3-torch) reads a grad_output
    whose memory layout differs from the input's wrongly: it returns garbage (values up to 1e28,
    different from run to run). Inside the dual form the gradient reaching GELU(X1 W1 + b1)
    arrives transposed (through X2^T in the W2 update and in Q X2^T), so TTT-MLP got
    non-deterministic, sometimes non-finite gradients in float32. The composite has only
    elementwise ops whose backward is layout-safe, and it is the same function.
    """
    return z * (0.5 * (1.0 + torch.erf(z / math.sqrt(2.0))))


def _gelu_grad(z: torch.Tensor) -> torch.Tensor:
    """d GELU(z) / dz for the exact (erf) GELU: Phi(z) + z phi(z)."""
    return 0.5 * (1.0 + torch.erf(z / math.sqrt(2.0))) + z * torch.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)


def token_scale(n: int, mean: bool, token_offset: torch.Tensor | None, dtype, device) -> torch.Tensor:
    """(n,) scale of token i's step within its mini-batch: 1/(i+1) with mean, else 1; plus the
    learned offset when given, clamped at 0 (as the authors' `token_idx + learnable_token_idx`)."""
    base = torch.ones(n, dtype=dtype, device=device)
    if mean:
        base = base / torch.arange(1, n + 1, dtype=dtype, device=device)
    if token_offset is None:
        return base
    return torch.clamp_min(base + token_offset[:n].to(dtype), 0.0)


def _eta_matrix(eta: torch.Tensor, mean: bool, token_offset: torch.Tensor | None = None) -> torch.Tensor:
    """(..., n) per-token step sizes -> (..., n, n) with M[t, s] = eta_s * scale_{i_t} for s <= t, else 0.

    mean=True: scale_i = 1/(i+1), i.e. W_t = W_0 - mean_{s<=t} eta_s grad l(W_0; x_s): the step is the
    mean of the gradients seen so far, not their sum. Without it the last tokens of a mini-batch
    take b times larger steps than the first. token_offset (the authors' learnable_token_idx, one
    per position in the mini-batch, zero at init) is added to that scale and learned.
    The last row M[n-1, :] is what the carried state W_b takes.
    """
    n = eta.shape[-1]
    scale = token_scale(n, mean, token_offset, eta.dtype, eta.device)
    mask = torch.ones(n, n, dtype=eta.dtype, device=eta.device).tril() * scale.unsqueeze(-1)
    return eta.unsqueeze(-2) * mask


def _chunks(t: int, b: int):
    """[start, end) of mini-batches; the last one may be shorter (the math does not care)."""
    return [(s, min(s + b, t)) for s in range(0, t, b)]


def ttt_linear_scan(xq, xk, xv, eta, w0, b0, ln_w, ln_b, mini_batch: int, use_ln: bool = True, mean: bool = False,
                    token_offset: torch.Tensor | None = None):
    """TTT-Linear over a sequence, mini-batch gradient descent in the dual form.

    xq, xk, xv: (B, H, T, K); eta: (B, H, T); w0: (H, K, K); b0: (H, 1, K) or None;
    ln_w, ln_b: (H, 1, K). use_ln=False drops the residual and the LN: f(x) = x W (+ b).
    mean=True divides the step of token t by its index i_t + 1 in the mini-batch; token_offset (b,)
    is added to that scale (see _eta_matrix). Returns z: (B, H, T, K).
    """
    B, H, T, K = xq.shape
    assert xk.shape == xv.shape == (B, H, T, K) and eta.shape == (B, H, T), (xk.shape, eta.shape)
    assert w0.shape == (H, K, K), w0.shape
    w = w0.unsqueeze(0).expand(B, H, K, K)  # per-sequence state, starts at the learned W_0
    b = None if b0 is None else b0.unsqueeze(0).expand(B, H, 1, K)
    outs = []
    for s, e in _chunks(T, mini_batch):
        q, x, v, et = xq[:, :, s:e], xk[:, :, s:e], xv[:, :, s:e], eta[:, :, s:e]  # (B,H,n,K), (B,H,n)
        z = x @ w if b is None else x @ w + b  # (B,H,n,K) keys' pre-activations at W_0
        if use_ln:
            g = ln_l2_bwd(z, v - x, ln_w, ln_b)  # residual: f(x) = x + LN(z) must hit v, so LN(z) hits v - x
        else:
            g = 2.0 * (z - v)
        m = _eta_matrix(et, mean, token_offset)  # (B,H,n,n)
        attn = (q @ x.transpose(-1, -2)) * m  # (B,H,n,n): eta_s (q_t . x_s) for s <= t
        zq = q @ w - attn @ g  # (B,H,n,K) = q_t W_t without forming W_t
        if b is not None:
            zq = zq + b - m @ g  # b_t = b_0 - sum_{s<=t} eta_s G_s
        outs.append(q + ln_fwd(zq, ln_w, ln_b) if use_ln else zq)
        eg = m[..., -1, :].unsqueeze(-1) * g  # (B,H,n,K): the last token's steps, eta_s (/ n if mean)
        w = w - x.transpose(-1, -2) @ eg  # W_b: the next mini-batch starts here
        if b is not None:
            b = b - eg.sum(-2, keepdim=True)
    return torch.cat(outs, dim=2)


def ttt_mlp_scan(xq, xk, xv, eta, w1, b1, w2, b2, ln_w, ln_b, mini_batch: int, use_ln: bool = True, mean: bool = False,
                 token_offset: torch.Tensor | None = None):
    """TTT-MLP: inner f(x) = x + LN(GELU(x W1 + b1) W2 + b2), dual form for both layers.

    xq, xk, xv: (B, H, T, K); eta: (B, H, T); w1: (H, K, F); b1: (H, 1, F); w2: (H, F, K);
    b2: (H, 1, K). Returns (B, H, T, K).
    """
    B, H, T, K = xq.shape
    Fh = w1.shape[-1]
    assert w1.shape == (H, K, Fh) and w2.shape == (H, Fh, K) and eta.shape == (B, H, T)
    w1, w2 = w1.unsqueeze(0).expand(B, H, K, Fh), w2.unsqueeze(0).expand(B, H, Fh, K)
    b1, b2 = b1.unsqueeze(0).expand(B, H, 1, Fh), b2.unsqueeze(0).expand(B, H, 1, K)
    outs = []
    for s, e in _chunks(T, mini_batch):
        q, x1, v, et = xq[:, :, s:e], xk[:, :, s:e], xv[:, :, s:e], eta[:, :, s:e]
        z1 = x1 @ w1 + b1  # (B,H,n,F)
        x2 = _gelu(z1)
        z2 = x2 @ w2 + b2  # (B,H,n,K)
        g2 = ln_l2_bwd(z2, v - x1, ln_w, ln_b) if use_ln else 2.0 * (z2 - v)  # dl/dz2
        g1 = (g2 @ w2.transpose(-1, -2)) * _gelu_grad(z1)  # dl/dz1, backprop through W2_0
        m = _eta_matrix(et, mean, token_offset)
        z1q = q @ w1 - ((q @ x1.transpose(-1, -2)) * m) @ g1 + b1 - m @ g1  # q_t W1_t + b1_t
        x2q = _gelu(z1q)
        z2q = x2q @ w2 - ((x2q @ x2.transpose(-1, -2)) * m) @ g2 + b2 - m @ g2  # (B,H,n,K)
        outs.append(q + ln_fwd(z2q, ln_w, ln_b) if use_ln else z2q)
        last = m[..., -1, :].unsqueeze(-1)  # (B,H,n,1)
        eg1, eg2 = last * g1, last * g2
        w1 = w1 - x1.transpose(-1, -2) @ eg1
        b1 = b1 - eg1.sum(-2, keepdim=True)
        w2 = w2 - x2.transpose(-1, -2) @ eg2
        b2 = b2 - eg2.sum(-2, keepdim=True)
    return torch.cat(outs, dim=2)


def rope_mini_batch(x: torch.Tensor, mini_batch: int, base: float = 10000.0) -> torch.Tensor:
    """Rotary embedding on (B, H, T, K) at positions t % mini_batch, as the TTT layer of the
    authors' code (`position_ids % mini_batch_size`): a mini-batch's tokens are ordered among
    themselves, while the order across mini-batches is already carried by the inner weights.

    Interleaved convention: the pair (x[2j], x[2j+1]) turns by pos * base^(-2j/K). The authors'
    PyTorch port gets the same rotation from rotate-half between permute_qk / undo_permute_qk
    (to match their JAX weights).
    """
    B, H, T, K = x.shape
    inv = 1.0 / (base ** (torch.arange(0, K, 2, device=x.device, dtype=torch.float32) / K))  # (K/2,)
    pos = (torch.arange(T, device=x.device) % mini_batch).to(torch.float32)
    ang = pos[:, None] * inv[None]  # (T, K/2)
    cos, sin = ang.cos().to(x.dtype), ang.sin().to(x.dtype)
    x0, x1 = x[..., 0::2], x[..., 1::2]  # (B,H,T,K/2)
    return torch.stack([x0 * cos - x1 * sin, x0 * sin + x1 * cos], dim=-1).flatten(-2)


def _gelu_tanh(z: torch.Tensor) -> torch.Tensor:
    """GELU, tanh approximation (the authors' output gate uses it to match their JAX code), written
    out elementwise for the same torch 1.13 F.gelu-backward reason as _gelu."""
    return 0.5 * z * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (z + 0.044715 * z * z * z)))


class CausalConv(nn.Module):
    """Depthwise causal conv over time on (B, T, D): output t sees inputs t-k+1 .. t."""

    def __init__(self, d_model: int, kernel: int):
        super().__init__()
        self.conv = nn.Conv1d(d_model, d_model, kernel, groups=d_model, padding=kernel - 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T = x.shape[1]
        return self.conv(x.transpose(1, 2))[..., :T].transpose(1, 2)  # left padding only: drop the tail


class TTTLayer(nn.Module):
    """Multi-head TTT mixer: projections theta_Q, theta_K, theta_V, theta_lr, the inner scan, post-norm, out-proj.

    mamba=True is the authors' Mamba-backbone layer: Q and K share one projection and are told apart
    by two causal depthwise convs (conv_q, conv_k), and the post-normed output is multiplied by a
    gate GELU_tanh(x W_g) before the out-projection. rope: rotary on Q and K at in-mini-batch
    positions. learn_token_idx: a learned offset per mini-batch position added to the 1/(i+1)
    step scale.
    """

    def __init__(self, d_model: int, n_heads: int, inner: str = "linear", mini_batch: int = 16, eta_base: float = 1.0,
                 mean: bool = True, mamba: bool = False, rope: bool = False, learn_token_idx: bool = False,
                 conv_kernel: int = 4):
        super().__init__()
        assert d_model % n_heads == 0 and inner in ("linear", "mlp")
        self.h, self.k, self.inner, self.mini_batch, self.eta_base = n_heads, d_model // n_heads, inner, mini_batch, eta_base
        self.mean, self.mamba, self.rope = mean, mamba, rope
        H, K = self.h, self.k
        if mamba:
            self.qv = nn.Linear(d_model, 2 * d_model, bias=False)
            self.conv_q, self.conv_k = CausalConv(d_model, conv_kernel), CausalConv(d_model, conv_kernel)
        else:
            self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.lr_proj = nn.Linear(d_model, H)  # theta_lr: one learned step size per head and token
        if inner == "linear":
            self.w1 = nn.Parameter(torch.randn(H, K, K) * INIT_STD)
            self.b1 = nn.Parameter(torch.zeros(H, 1, K))
        else:
            self.w1 = nn.Parameter(torch.randn(H, K, 4 * K) * INIT_STD)
            self.b1 = nn.Parameter(torch.zeros(H, 1, 4 * K))
            self.w2 = nn.Parameter(torch.randn(H, 4 * K, K) * INIT_STD)
            self.b2 = nn.Parameter(torch.zeros(H, 1, K))
        self.ln_w = nn.Parameter(torch.ones(H, 1, K))  # inner LN (per head), learned as part of W_0's model
        self.ln_b = nn.Parameter(torch.zeros(H, 1, K))
        self.post_norm = nn.LayerNorm(d_model)
        self.proj = nn.Linear(d_model, d_model, bias=False)
        # created last, so that without them the parameters are drawn from the RNG as before they existed
        self.token_offset = nn.Parameter(torch.zeros(mini_batch)) if learn_token_idx else None
        self.out_gate = nn.Linear(d_model, d_model, bias=False) if mamba else None

    def _qkv(self, x: torch.Tensor):
        B, T, D = x.shape
        if self.mamba:
            xq, v = self.qv(x).chunk(2, dim=-1)  # (B,T,D) each
            q, k = self.conv_q(xq), self.conv_k(xq)
        else:
            q, k, v = self.qkv(x).chunk(3, dim=-1)
        return [t.reshape(B, T, self.h, self.k).transpose(1, 2) for t in (q, k, v)]  # 3 x (B,H,T,K)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, D = x.shape
        q, k, v = self._qkv(x)
        eta = self.eta_base * torch.sigmoid(self.lr_proj(x)).transpose(1, 2) / self.k  # (B,H,T)
        # The inner loop runs in float32 even under bf16 autocast: W accumulates T/b updates, and
        # bf16's 8-bit mantissa would swamp small steps against a large W.
        with _no_autocast(x):
            q, k, v, eta = _f32(q), _f32(k), _f32(v), _f32(eta)
            if self.rope:
                q, k = rope_mini_batch(q, self.mini_batch), rope_mini_batch(k, self.mini_batch)
            if self.inner == "linear":
                z = ttt_linear_scan(q, k, v, eta, self.w1, self.b1, self.ln_w, self.ln_b, self.mini_batch, mean=self.mean,
                                    token_offset=self.token_offset)
            else:
                z = ttt_mlp_scan(q, k, v, eta, self.w1, self.b1, self.w2, self.b2, self.ln_w, self.ln_b, self.mini_batch,
                                 mean=self.mean, token_offset=self.token_offset)
        z = self.post_norm(z.transpose(1, 2).reshape(B, T, D).to(x.dtype))  # (B,T,D)
        if self.out_gate is not None:
            z = _gelu_tanh(self.out_gate(x)) * z
        return self.proj(z)


# -----------------------------------------------------------------------------
# baselines


def _no_autocast(x: torch.Tensor):
    if x.is_cuda:
        return torch.autocast(device_type="cuda", enabled=False)
    return torch.autocast(device_type="cpu", enabled=False)


def _f32(t: torch.Tensor) -> torch.Tensor:
    """Half precision -> float32; float32 / float64 stay as they are (the tests run in float64)."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


def decay_linear_attn_scan(q, k, v, log_a, chunk: int = 64):
    """Chunked form of S_t = a_t S_{t-1} + k_t^T v_t, o_t = q_t S_t (S_0 = 0), a_t = exp(log_a_t).

    q, k, v: (B, H, T, K); log_a: (B, H, T), <= 0. Within a chunk, with c_t = sum_{r<=t} log_a_r,
    o_t = exp(c_t) q_t S_in + sum_{s<=t} exp(c_t - c_s) (q_t . k_s) v_s; every exponent is <= 0,
    so nothing overflows however strong the decay. Returns (B, H, T, K).
    """
    B, H, T, K = q.shape
    assert log_a.shape == (B, H, T)
    state = q.new_zeros(B, H, K, K)
    outs = []
    for s, e in _chunks(T, chunk):
        qc, kc, vc = q[:, :, s:e], k[:, :, s:e], v[:, :, s:e]
        c = torch.cumsum(log_a[:, :, s:e], dim=-1)  # (B,H,n)
        n = e - s
        causal = torch.ones(n, n, dtype=torch.bool, device=q.device).tril()
        diff = (c.unsqueeze(-1) - c.unsqueeze(-2)).masked_fill(~causal, float("-inf"))  # (B,H,n,n)
        decay = torch.exp(diff)  # exp(c_t - c_s) for s <= t, 0 above the diagonal
        o = ((qc @ kc.transpose(-1, -2)) * decay) @ vc + torch.exp(c).unsqueeze(-1) * (qc @ state)
        outs.append(o)
        tail = torch.exp(c[:, :, -1:] - c).unsqueeze(-1)  # (B,H,n,1): decay from s to the chunk's end
        state = torch.exp(c[:, :, -1]).unsqueeze(-1).unsqueeze(-1) * state + kc.transpose(-1, -2) @ (tail * vc)
    return torch.cat(outs, dim=2)


class DecayLinearAttention(nn.Module):
    """Linear attention with a scalar decay per head and token (RetNet / GLA class); not Mamba: no
    selective state-space parameters, no conv, no output gate."""

    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        self.h, self.k = n_heads, d_model // n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.gate = nn.Linear(d_model, n_heads)
        # a_t = sigmoid(gate): bias 3 starts at a ~ 0.95, a memory of ~20 tokens that training can lengthen
        nn.init.constant_(self.gate.bias, 3.0)
        self.gate.keep_bias = True  # LM._init zeroes every other bias
        self.post_norm = nn.LayerNorm(d_model)
        self.proj = nn.Linear(d_model, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, D = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.h, self.k).permute(2, 0, 3, 1, 4)  # (B,H,T,K)
        log_a = F.logsigmoid(self.gate(x)).transpose(1, 2)  # (B,H,T)
        with _no_autocast(x):  # the state sums T outer products: keep it in float32
            z = decay_linear_attn_scan(_f32(q), _f32(k) / math.sqrt(self.k), _f32(v), _f32(log_a))
        return self.proj(self.post_norm(z.transpose(1, 2).reshape(B, T, D).to(x.dtype)))


def _rope(x: torch.Tensor) -> torch.Tensor:
    """Rotary position embedding on (B, H, T, K), K even, base 10000 (rotate-half convention)."""
    B, H, T, K = x.shape
    inv = 1.0 / (10000 ** (torch.arange(0, K, 2, device=x.device, dtype=torch.float32) / K))  # (K/2,)
    ang = torch.arange(T, device=x.device, dtype=torch.float32)[:, None] * inv[None]  # (T, K/2)
    cos, sin = ang.cos().repeat(1, 2).to(x.dtype), ang.sin().repeat(1, 2).to(x.dtype)  # (T, K)
    x1, x2 = x[..., : K // 2], x[..., K // 2 :]
    return x * cos + torch.cat([-x2, x1], dim=-1) * sin


class CausalSelfAttention(nn.Module):
    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        self.h, self.k = n_heads, d_model // n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.proj = nn.Linear(d_model, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, D = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.h, self.k).permute(2, 0, 3, 1, 4)  # (B,H,T,K)
        q, k = _rope(q), _rope(k)
        if hasattr(F, "scaled_dot_product_attention"):  # torch >= 2.0: flash / memory-efficient kernels
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:  # torch 1.13: the textbook version, O(T^2) memory
            att = (q @ k.transpose(-1, -2)) / math.sqrt(self.k)  # (B,H,T,T)
            mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
            y = att.masked_fill(~mask, float("-inf")).softmax(-1) @ v
        return self.proj(y.transpose(1, 2).reshape(B, T, D))


# -----------------------------------------------------------------------------
# the language model


class RMSNorm(nn.Module):
    """x / rms(x) * weight over the last dim, at least in float32 (the Llama / authors' RMSNorm, eps 1e-6)."""

    def __init__(self, d: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = _f32(x)
        return self.weight * (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype)


class SwiGLU(nn.Module):
    """Llama's MLP: w_down(SiLU(w_gate x) * w_up x), no biases."""

    def __init__(self, d: int, hidden: int):
        super().__init__()
        self.w_gate = nn.Linear(d, hidden, bias=False)
        self.w_up = nn.Linear(d, hidden, bias=False)
        self.w_down = nn.Linear(hidden, d, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = self.w_gate(x)
        return self.w_down(g * torch.sigmoid(g) * self.w_up(x))  # SiLU written out: layout-safe backward on torch 1.13


def mlp_hidden(cfg: dict) -> int:
    """The block MLP's hidden width: `mlp_hidden` when set, else mlp_ratio * d_model for the GELU
    MLP and 2/3 of that for SwiGLU (three matrices instead of two: the same parameters), rounded
    up to a multiple of 8 (Llama's rule; 2048 at d_model 768 as the authors' 125M)."""
    if cfg.get("mlp_hidden"):
        return cfg["mlp_hidden"]
    width = cfg["mlp_ratio"] * cfg["d_model"]
    return width if cfg.get("mlp", "gelu") == "gelu" else 8 * math.ceil(2 * width / 3 / 8)


def make_norm(cfg: dict, d: int) -> nn.Module:
    return RMSNorm(d) if cfg.get("norm", "layernorm") == "rmsnorm" else nn.LayerNorm(d)


def is_ttt(layer: str) -> bool:
    return layer in ("ttt_linear", "ttt_mlp")


class Block(nn.Module):
    """Pre-norm residual block: [x += conv(norm(x))] x += mixer(norm(x)); x += mlp(norm(x)).

    The bracketed causal conv is the Mamba backbone's (authors' `pre_conv`); it and the mixer's
    Mamba parts (shared Q/K with two convs, output gate) apply to the TTT mixers only: the
    baselines are their own architectures.
    """

    def __init__(self, cfg: dict):
        super().__init__()
        d, h = cfg["d_model"], cfg["n_heads"]
        layer = cfg["layer"]
        mamba = is_ttt(layer) and cfg.get("backbone", "transformer") == "mamba"
        if is_ttt(layer):
            inner = "linear" if layer == "ttt_linear" else "mlp"
            self.mixer = TTTLayer(d, h, inner, cfg["mini_batch"], cfg["inner_lr"] or ETA_BASE[layer], cfg["inner_mean"],
                                  mamba=mamba, rope=cfg.get("rope", False), learn_token_idx=cfg.get("learn_token_idx", False),
                                  conv_kernel=cfg.get("conv_kernel", 4))
        elif layer == "transformer":
            self.mixer = CausalSelfAttention(d, h)
        elif layer == "decay_linear_attn":
            self.mixer = DecayLinearAttention(d, h)
        else:
            raise ValueError(f"unknown layer {layer!r} (known: {', '.join(LAYERS)})")
        self.ln1, self.ln2 = make_norm(cfg, d), make_norm(cfg, d)
        hidden = mlp_hidden(cfg)
        if cfg.get("mlp", "gelu") == "swiglu":
            self.mlp = SwiGLU(d, hidden)
        else:
            self.mlp = nn.Sequential(nn.Linear(d, hidden), nn.GELU(), nn.Linear(hidden, d))
        if mamba:
            self.conv_norm, self.conv = make_norm(cfg, d), CausalConv(d, cfg.get("conv_kernel", 4))
        else:
            self.conv = None

    def forward(self, x):
        if self.conv is not None:
            x = x + self.conv(self.conv_norm(x))
        x = x + self.mixer(self.ln1(x))
        return x + self.mlp(self.ln2(x))


# Residual-branch output projections, whose init is scaled down by depth (GPT-2). lr_proj is here
# only because an earlier suffix rule ("proj.weight") caught it; kept so earlier runs reproduce
# (the authors initialise it at plain INIT_STD).
RESIDUAL_OUT = ("mixer.proj.weight", "mixer.lr_proj.weight", "mlp.2.weight", "mlp.w_down.weight")


class LM(nn.Module):
    """Token embedding -> n_layers x Block -> norm -> tied LM head. vocab 256 (bytes)."""

    def __init__(self, cfg: dict, vocab_size: int = 256):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, cfg["d_model"])
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg["n_layers"]))
        self.ln_f = make_norm(cfg, cfg["d_model"])
        self.apply(self._init)
        for name, p in self.named_parameters():
            if name.endswith(RESIDUAL_OUT):
                nn.init.normal_(p, 0.0, INIT_STD / math.sqrt(2 * cfg["n_layers"]))

    @staticmethod
    def _init(m):
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, INIT_STD)
            if m.bias is not None and not getattr(m, "keep_bias", False):
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, 0.0, INIT_STD)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """idx (B, T) int64 -> logits (B, T, vocab)."""
        x = self.embed(idx)  # (B,T,D)
        for blk in self.blocks:
            x = blk(x)
        return self.ln_f(x) @ self.embed.weight.t()  # tied head
