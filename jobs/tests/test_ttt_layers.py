"""Math of the `ttt` kind's mixers, in float64 on the CPU, against independent references.

The references are written token by token with autograd, straight from the paper's definitions,
so they share no code with the dual form they check (only the inner LayerNorm's forward).
"""

import math

import pytest
from conftest import require_torch

torch = require_torch()  # every test here needs it

import numpy as np  # noqa: E402

from ladder_jobs.kinds.ttt.model import (  # noqa: E402
    LM,
    CausalConv,
    RMSNorm,
    SwiGLU,
    TTTLayer,
    decay_linear_attn_scan,
    ln_fwd,
    ln_l2_bwd,
    mlp_hidden,
    rope_mini_batch,
    ttt_linear_scan,
    ttt_mlp_scan,
)

TOL = 1e-6
DT = torch.float64
# test_lm_is_causal_and_trains: Adam steps on one batch of 2 x 23 random next tokens; the loss must
# fall by TRAIN_DROP nats (lr=0, or gradients that do not reach the parameters, leave it at ln 256)
TRAIN_LR, TRAIN_STEPS, TRAIN_DROP = 1e-2, 25, 1.0


def rand(*shape, scale=1.0, seed=None):
    g = torch.Generator().manual_seed(seed) if seed is not None else None
    return torch.randn(*shape, dtype=DT, generator=g) * scale


def inputs(B=2, H=2, T=20, K=6, seed=0):
    torch.manual_seed(seed)
    xq, xk, xv = rand(B, H, T, K), rand(B, H, T, K), rand(B, H, T, K)
    eta = 0.05 + 0.2 * torch.rand(B, H, T, dtype=DT)  # input-dependent step sizes, as sigmoid(theta_lr x) gives
    ln_w, ln_b = 1.0 + 0.3 * rand(H, 1, K), 0.3 * rand(H, 1, K)
    return xq, xk, xv, eta, ln_w, ln_b


def primal(f, params, xq, xk, xv, eta, mini_batch, use_ln, ln_w, ln_b, mean=False, scale=None):
    """Mini-batch TTT as the paper defines it, one token at a time, per-token weights explicit.

    f(x, params) is f_res. Within a mini-batch every gradient is taken at the weights the
    mini-batch started with; W_t = W_start - sum_{s<=t} eta_s grad l(W_start; x_s) (with mean:
    that sum divided by i_t + 1, the number of tokens so far; with scale, a list: that sum times
    scale[i_t]); the output is the inner model at W_t applied to the query.
    """
    B, H, T, K = xq.shape
    out = torch.zeros_like(xq)
    for bi in range(B):
        for h in range(H):
            w = [p[h].clone() for p in params]
            for start in range(0, T, mini_batch):
                base, acc = [p.clone() for p in w], [torch.zeros_like(p) for p in w]
                for t in range(start, min(start + mini_batch, T)):
                    leaf = [p.clone().requires_grad_(True) for p in base]
                    z = f(xk[bi, h, t : t + 1], leaf)
                    pred = xk[bi, h, t : t + 1] + ln_fwd(z, ln_w[h], ln_b[h]) if use_ln else z
                    loss = ((pred - xv[bi, h, t : t + 1]) ** 2).sum()
                    grads = torch.autograd.grad(loss, leaf)
                    acc = [a + eta[bi, h, t] * g for a, g in zip(acc, grads)]
                    i = t - start
                    factor = scale[i] if scale is not None else 1.0 / (i + 1 if mean else 1)
                    cur = [p - a * factor for p, a in zip(base, acc)]
                    zq = f(xq[bi, h, t : t + 1], cur)
                    out[bi, h, t] = (xq[bi, h, t : t + 1] + ln_fwd(zq, ln_w[h], ln_b[h]) if use_ln else zq)[0]
                w = cur  # the next mini-batch starts from W_b
    return out


def f_linear(x, p):
    return x @ p[0] + p[1]


def f_mlp(x, p):
    return torch.nn.functional.gelu(x @ p[0] + p[1]) @ p[2] + p[3]


def test_ln_l2_bwd_matches_autograd():
    z, target, gamma, beta = rand(3, 5, 7), rand(3, 5, 7), 1 + rand(1, 7) * 0.3, rand(1, 7) * 0.3
    zz = z.clone().requires_grad_(True)
    ((ln_fwd(zz, gamma, beta) - target) ** 2).sum().backward()
    assert torch.allclose(ln_l2_bwd(z, target, gamma, beta), zz.grad, atol=1e-10)


@pytest.mark.parametrize("mini_batch", [1, 4, 8, 20])  # 8 leaves a short last mini-batch (T = 20)
@pytest.mark.parametrize("use_ln,mean", [(True, True), (True, False), (False, False)])
def test_ttt_linear_dual_equals_primal(mini_batch, use_ln, mean):
    xq, xk, xv, eta, ln_w, ln_b = inputs()
    H, K = xq.shape[1], xq.shape[3]
    w0, b0 = rand(H, K, K, scale=0.3), rand(H, 1, K, scale=0.3)
    dual = ttt_linear_scan(xq, xk, xv, eta, w0, b0, ln_w, ln_b, mini_batch, use_ln=use_ln, mean=mean)
    ref = primal(f_linear, [w0, b0], xq, xk, xv, eta, mini_batch, use_ln, ln_w, ln_b, mean=mean)
    assert dual.shape == ref.shape
    assert (dual - ref).abs().max().item() < TOL


@pytest.mark.parametrize("mini_batch,mean", [(1, False), (8, False), (8, True), (5, True)])
def test_ttt_mlp_dual_equals_primal(mini_batch, mean):
    xq, xk, xv, eta, ln_w, ln_b = inputs(T=16, K=4, seed=1)
    H, K = xq.shape[1], xq.shape[3]
    w1, b1 = rand(H, K, 4 * K, scale=0.4), rand(H, 1, 4 * K, scale=0.3)
    w2, b2 = rand(H, 4 * K, K, scale=0.4), rand(H, 1, K, scale=0.3)
    dual = ttt_mlp_scan(xq, xk, xv, eta, w1, b1, w2, b2, ln_w, ln_b, mini_batch, mean=mean)
    ref = primal(f_mlp, [w1, b1, w2, b2], xq, xk, xv, eta, mini_batch, True, ln_w, ln_b, mean=mean)
    assert (dual - ref).abs().max().item() < TOL


def test_ttt_mlp_float32_gradients_match_float64():
    # The training dtype. The dual form hands GELU's backward a transposed gradient, which torch
    # 1.13's CPU F.gelu backward garbled (values up to 1e28, different each run): the job's
    # TTT-MLP runs were not reproducible and could end with a NaN val_loss. Scales as in the LM.
    B, H, T, K = 4, 4, 32, 8
    grads = {}
    for dt in (torch.float32, DT):
        g = torch.Generator().manual_seed(1)
        xq, xk, xv = (0.1 * torch.randn(B, H, T, K, generator=g).to(dt) for _ in range(3))
        params = [0.02 * torch.randn(H, K, 4 * K, generator=g).to(dt), torch.zeros(H, 1, 4 * K, dtype=dt),
                  0.02 * torch.randn(H, 4 * K, K, generator=g).to(dt), torch.zeros(H, 1, K, dtype=dt),
                  torch.ones(H, 1, K, dtype=dt), torch.zeros(H, 1, K, dtype=dt)]
        for p in (xk, *params):
            p.requires_grad_(True)
        eta = torch.full((B, H, T), 0.05 * 0.5 / K, dtype=dt)
        target = torch.randn(B, H, T, K, generator=g).to(dt)
        (ttt_mlp_scan(xq, xk, xv, eta, *params, 16, mean=True) * target).sum().backward()
        grads[dt] = [p.grad.double() for p in (xk, *params)]
    for g32, g64 in zip(grads[torch.float32], grads[DT]):
        assert ((g32 - g64).abs().max() / g64.abs().max()).item() < 1e-3


def test_batch_gd_linear_ttt_is_causal_linear_attention():
    # Paper, Theorem 1: f(x) = x W, W_0 = 0, eta = 1/2, batch GD (one mini-batch = the whole
    # sequence), no LN, no residual -> z_t = sum_{s<=t} (q_t . k_s) v_s.
    B, H, T, K = 2, 3, 24, 5
    xq, xk, xv = rand(B, H, T, K, seed=2), rand(B, H, T, K, seed=3), rand(B, H, T, K, seed=4)
    eta = torch.full((B, H, T), 0.5, dtype=DT)
    z = ttt_linear_scan(xq, xk, xv, eta, torch.zeros(H, K, K, dtype=DT), None, None, None, T, use_ln=False)
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    linear_attention = ((xq @ xk.transpose(-1, -2)) * mask) @ xv
    assert (z - linear_attention).abs().max().item() < TOL
    # and it is not a coincidence of the inputs: a smaller mini-batch is no longer linear attention
    z_mb = ttt_linear_scan(xq, xk, xv, eta, torch.zeros(H, K, K, dtype=DT), None, None, None, 8, use_ln=False)
    assert (z_mb - linear_attention).abs().max().item() > 1e-3


@pytest.mark.parametrize("inner", ["linear", "mlp"])
def test_one_inner_step_lowers_inner_loss(inner):
    # Two identical mini-batches of keys/values; queries = keys; eta > 0 on the first, 0 on the
    # second. The second mini-batch's outputs are then f(k; W_b), the inner model after one
    # mini-batch step, and with eta = 0 everywhere they are f(k; W_0): compare the two losses.
    B, H, b, K = 16, 2, 16, 8
    xk, xv = rand(B, H, b, K, seed=5), rand(B, H, b, K, seed=6)
    ln_w, ln_b = torch.ones(H, 1, K, dtype=DT), torch.zeros(H, 1, K, dtype=DT)
    x2, v2 = torch.cat([xk, xk], 2), torch.cat([xv, xv], 2)
    step = torch.cat([torch.full((B, H, b), 0.5 / K, dtype=DT), torch.zeros(B, H, b, dtype=DT)], 2)
    if inner == "linear":
        params = (rand(H, K, K, scale=0.3, seed=7), torch.zeros(H, 1, K, dtype=DT))
        scan = lambda eta: ttt_linear_scan(x2, x2, v2, eta, *params, ln_w, ln_b, b)  # noqa: E731
    else:
        w1, w2 = rand(H, K, 4 * K, scale=0.3, seed=7), rand(H, 4 * K, K, scale=0.3, seed=8)
        z1, z2 = torch.zeros(H, 1, 4 * K, dtype=DT), torch.zeros(H, 1, K, dtype=DT)
        step = step * 0.2  # the paper's smaller eta_base for TTT-MLP
        scan = lambda eta: ttt_mlp_scan(x2, x2, v2, eta, w1, z1, w2, z2, ln_w, ln_b, b)  # noqa: E731
    before = ((scan(torch.zeros_like(step))[:, :, b:] - xv) ** 2).sum(-1).mean((1, 2))  # (B,) per sequence
    after = ((scan(step)[:, :, b:] - xv) ** 2).sum(-1).mean((1, 2))
    assert after.mean() < before.mean() * 0.99, (after.mean(), before.mean())
    assert (after < before).float().mean() >= 0.9  # on average, and for nearly every sequence


def test_decay_linear_attn_chunked_equals_recurrence():
    B, H, T, K = 2, 2, 37, 4
    q, k, v = rand(B, H, T, K, seed=9), rand(B, H, T, K, seed=10), rand(B, H, T, K, seed=11)
    log_a = torch.nn.functional.logsigmoid(rand(B, H, T, seed=12) * 3)
    out = decay_linear_attn_scan(q, k, v, log_a, chunk=8)
    state = torch.zeros(B, H, K, K, dtype=DT)
    for t in range(T):  # S_t = a_t S_{t-1} + k_t^T v_t, o_t = q_t S_t
        state = log_a[:, :, t, None, None].exp() * state + k[:, :, t, :, None] * v[:, :, t, None, :]
        assert (out[:, :, t] - (q[:, :, t, None, :] @ state)[:, :, 0]).abs().max() < TOL


# the earlier harness' parts (GPT-2 block, no RoPE / offset in TTT), still selectable
OLD_PARTS = {"norm": "layernorm", "mlp": "gelu", "rope": False, "learn_token_idx": False}


@pytest.mark.parametrize("layer,extra", [
    ("ttt_linear", {"backbone": "mamba"}), ("ttt_linear", {"backbone": "transformer"}),
    ("ttt_mlp", {"backbone": "mamba"}), ("ttt_mlp", {"backbone": "transformer"}),
    ("ttt_linear", {"backbone": "transformer", **OLD_PARTS}),
    ("transformer", {}), ("decay_linear_attn", {}),
], ids=["ttt_linear-mamba", "ttt_linear-transformer", "ttt_mlp-mamba", "ttt_mlp-transformer", "ttt_linear-old-parts",
        "transformer", "decay_linear_attn"])
def test_lm_is_causal_and_trains(layer, extra):
    # Changing a future token must not change earlier logits (the Mamba backbone's convs included);
    # every parameter gets a gradient; and optimiser steps on one batch bring its next-token loss
    # well down from ln(256).
    from ladder_jobs.kinds.ttt import DEFAULTS

    cfg = dict(DEFAULTS, layer=layer, d_model=16, n_heads=2, n_layers=2, mini_batch=4, **extra)
    torch.manual_seed(0)
    model = LM(cfg).double()
    x = torch.randint(0, 256, (2, 24))
    x2 = x.clone()
    x2[:, 13] = (x2[:, 13] + 1) % 256
    a, b = model(x), model(x2)
    assert a.shape == (2, 24, 256)
    assert (a[:, :13] - b[:, :13]).abs().max() < 1e-9 and (a[:, 13:] - b[:, 13:]).abs().max() > 1e-6
    a.logsumexp(-1).mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, missing
    assert math.isfinite(a.sum().item())

    model.zero_grad(set_to_none=True)
    opt = torch.optim.Adam(model.parameters(), lr=TRAIN_LR)
    losses = []
    for _ in range(TRAIN_STEPS):
        loss = torch.nn.functional.cross_entropy(model(x[:, :-1]).reshape(-1, 256), x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert abs(losses[0] - math.log(256)) < 0.1, losses[0]  # starts untrained
    assert losses[-1] < losses[0] - TRAIN_DROP, losses  # and it learned (memorised) the batch


# -----------------------------------------------------------------------------
# fidelity to the authors' code: RoPE, learnable token index, Mamba backbone, Llama block parts


def rope_numpy(x: np.ndarray, mini_batch: int, base: float = 10000.0) -> np.ndarray:
    """By hand: the pair (x[2j], x[2j+1]) at position p = t % mini_batch turns by p * base^(-2j/K)."""
    out = np.empty_like(x)
    T, K = x.shape[-2], x.shape[-1]
    for t in range(T):
        p = t % mini_batch
        for j in range(K // 2):
            a = p * base ** (-2.0 * j / K)
            c, s = math.cos(a), math.sin(a)
            x0, x1 = x[..., t, 2 * j], x[..., t, 2 * j + 1]
            out[..., t, 2 * j], out[..., t, 2 * j + 1] = x0 * c - x1 * s, x0 * s + x1 * c
    return out


def test_rope_equals_hand_computation_at_mini_batch_positions():
    x = rand(2, 3, 21, 8, seed=20)
    got = rope_mini_batch(x, 8).numpy()
    assert np.abs(got - rope_numpy(x.numpy(), 8)).max() < 1e-6  # angles in float32, as the authors' code
    # positions restart every mini-batch: token 8 (position 0) is not rotated, token 9 is
    assert np.abs(got[:, :, 8] - x[:, :, 8].numpy()).max() < 1e-15
    assert np.abs(got[:, :, 9] - x[:, :, 9].numpy()).max() > 1e-3
    # a rotation: norms kept, and the same pair rotation as position 1 of the first mini-batch
    assert np.abs(np.linalg.norm(got, axis=-1) - np.linalg.norm(x.numpy(), axis=-1)).max() < 1e-6


@pytest.mark.parametrize("mamba", [False, True])
def test_ttt_layer_rotates_q_and_k_at_mini_batch_positions(mamba):
    # The layer's output, rebuilt outside it from its own weights with the hand-computed rotation
    # at positions t % b; a rotation at the global positions t gives a different output.
    B, T, D, H, b = 2, 12, 8, 2, 4
    torch.manual_seed(3)
    layer = TTTLayer(D, H, "linear", b, eta_base=0.5, mamba=mamba, rope=True, learn_token_idx=True).double()
    with torch.no_grad():
        layer.token_offset.copy_(0.1 * rand(b, seed=21))
    x = rand(B, T, D, seed=22)
    q, k, v = layer._qkv(x)
    eta = 0.5 * torch.sigmoid(layer.lr_proj(x)).transpose(1, 2) / (D // H)

    def rebuild(positions_mod):
        rq, rk = (torch.from_numpy(rope_numpy(t.detach().numpy(), positions_mod)) for t in (q, k))
        z = ttt_linear_scan(rq, rk, v, eta, layer.w1, layer.b1, layer.ln_w, layer.ln_b, b, mean=True,
                            token_offset=layer.token_offset)
        z = layer.post_norm(z.transpose(1, 2).reshape(B, T, D))
        if mamba:
            g = layer.out_gate(x)
            z = 0.5 * g * (1 + torch.tanh(math.sqrt(2 / math.pi) * (g + 0.044715 * g ** 3))) * z
        return layer.proj(z)

    out = layer(x)
    assert (out - rebuild(b)).abs().max().item() < 1e-6  # the layer's angles are float32, as the authors'

    assert (out - rebuild(10 ** 6)).abs().max().item() > 1e-4  # global positions: not what the layer does


def scales_by_hand(offset, n, mean=True):
    """The authors' token_idx: clamp_min(1/(i+1) + offset_i, 0), one per position in a mini-batch."""
    return [max((1.0 / (i + 1) if mean else 1.0) + float(offset[i]), 0.0) for i in range(n)]


@pytest.mark.parametrize("mini_batch", [4, 8])  # 8 leaves a short last mini-batch (T = 20)
def test_learnable_token_offset_scales_steps_as_by_hand(mini_batch):
    xq, xk, xv, eta, ln_w, ln_b = inputs(seed=4)
    H, K = xq.shape[1], xq.shape[3]
    w0, b0 = rand(H, K, K, scale=0.3, seed=23), rand(H, 1, K, scale=0.3, seed=24)
    offset = 0.2 * rand(mini_batch, seed=25)
    offset[2] = -0.9  # 1/3 - 0.9 < 0: clamped, that token takes no step
    dual = ttt_linear_scan(xq, xk, xv, eta, w0, b0, ln_w, ln_b, mini_batch, mean=True, token_offset=offset)
    ref = primal(f_linear, [w0, b0], xq, xk, xv, eta, mini_batch, True, ln_w, ln_b,
                 scale=scales_by_hand(offset, mini_batch))
    assert (dual - ref).abs().max().item() < TOL
    plain = ttt_linear_scan(xq, xk, xv, eta, w0, b0, ln_w, ln_b, mini_batch, mean=True)
    assert (dual - plain).abs().max().item() > 1e-3  # the offset does change the steps


def test_learnable_token_offset_ttt_mlp_and_sum_form():
    xq, xk, xv, eta, ln_w, ln_b = inputs(T=16, K=4, seed=6)
    H, K = xq.shape[1], xq.shape[3]
    w1, b1 = rand(H, K, 4 * K, scale=0.4, seed=26), rand(H, 1, 4 * K, scale=0.3, seed=27)
    w2, b2 = rand(H, 4 * K, K, scale=0.4, seed=28), rand(H, 1, K, scale=0.3, seed=29)
    offset = 0.3 * rand(8, seed=30)
    for mean in (True, False):
        dual = ttt_mlp_scan(xq, xk, xv, eta, w1, b1, w2, b2, ln_w, ln_b, 8, mean=mean, token_offset=offset)
        ref = primal(f_mlp, [w1, b1, w2, b2], xq, xk, xv, eta, 8, True, ln_w, ln_b, scale=scales_by_hand(offset, 8, mean))
        assert (dual - ref).abs().max().item() < TOL


def conv_numpy(conv: CausalConv, x: np.ndarray) -> np.ndarray:
    """By hand: out_t = bias + sum_j w[j] x_{t-k+1+j} per channel; inputs before the sequence are 0."""
    w, bias = conv.conv.weight.detach().numpy()[:, 0, :], conv.conv.bias.detach().numpy()
    k, T = w.shape[1], x.shape[1]
    out = np.zeros_like(x)
    for t in range(T):
        out[:, t] = bias + sum(w[:, j] * x[:, t - k + 1 + j] for j in range(k) if t - k + 1 + j >= 0)
    return out


def test_causal_conv_equals_hand_computation():
    torch.manual_seed(5)
    conv = CausalConv(3, 4).double()
    x = rand(2, 9, 3, seed=31)
    assert np.abs(conv(x).detach().numpy() - conv_numpy(conv, x.numpy())).max() < 1e-12


def test_mamba_layer_shares_the_qk_projection_through_two_convs():
    # The authors' share_qk: one projection P = x W_q; Q = conv_q(P), K = conv_k(P); V = x W_v.
    B, T, D, H = 2, 7, 8, 2
    torch.manual_seed(7)
    layer = TTTLayer(D, H, "linear", 4, mamba=True).double()
    x = rand(B, T, D, seed=34)
    w = layer.qv.weight.detach().numpy()  # (2D, D): rows [0, D) project Q/K, [D, 2D) project V
    p, v = x.numpy() @ w[:D].T, x.numpy() @ w[D:].T
    heads = lambda a: a.reshape(B, T, H, D // H).transpose(0, 2, 1, 3)  # noqa: E731
    want = [heads(conv_numpy(layer.conv_q, p)), heads(conv_numpy(layer.conv_k, p)), heads(v)]
    got = [t.detach().numpy() for t in layer._qkv(x)]
    for g, wt in zip(got, want):
        assert np.abs(g - wt).max() < 1e-12
    assert np.abs(got[0] - got[1]).max() > 1e-3  # the two convs differ, so Q and K do


def test_llama_block_parts_equal_hand_computation():
    torch.manual_seed(6)
    x = rand(2, 5, 16, seed=32)
    norm = RMSNorm(16).double()
    with torch.no_grad():
        norm.weight.copy_(1 + 0.3 * rand(16, seed=33))
    xn, gw = x.numpy(), norm.weight.detach().numpy()
    want = xn / np.sqrt((xn ** 2).mean(-1, keepdims=True) + 1e-6) * gw
    assert np.abs(norm(x).detach().numpy() - want).max() < 1e-12
    mlp = SwiGLU(16, 24).double()
    g, u, d = (m.weight.detach().numpy() for m in (mlp.w_gate, mlp.w_up, mlp.w_down))
    a = xn @ g.T
    want = (a / (1 + np.exp(-a)) * (xn @ u.T)) @ d.T
    assert np.abs(mlp(x).detach().numpy() - want).max() < 1e-12
    # the Llama width rule gives the authors' 125M intermediate size, with the GELU MLP's parameters
    assert mlp_hidden({"d_model": 768, "mlp_ratio": 4, "mlp": "swiglu"}) == 2048
    assert mlp_hidden({"d_model": 768, "mlp_ratio": 4, "mlp": "gelu"}) == 3072
