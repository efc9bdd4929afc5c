"""GPU throughput benchmark of the `ttt` kind's mixers: tokens/s and model FLOP utilisation.

    cd jobs && python bench_gpu.py [--contexts 2048 8192] [--steps 4] [--tokens 16384]

For each context length, trains (forward + backward + AdamW step, bf16 autocast) a 125M-class
byte-level LM (12 layers x 768, 12 heads: the `l` preset's shape) with each mixer at a fixed
number of tokens per step, and prints a table. The models have the same parameter count up to
the mixers' small extras (TTT-MLP's inner MLP weights, the lr / gate projections); the table
shows each count.

FLOPs are counted analytically per token (a matmul of m x k by k x n is 2mkn), forward x 3 for
training: dense weights 2N; causal attention 2 T d per layer (QK^T and AV over T/2 keys on
average); the TTT dual form per head of width K and mini-batch b: TTT-Linear 6K^2 + 6bK,
TTT-MLP 48K^2 + 30bK; gated linear (chunk C = 64) 4K^2 + 4CK. MFU = FLOP/s / 989 TFLOP/s (H200
bf16 dense peak). Note the TTT mixers here are plain PyTorch with a Python loop over T/b
mini-batches (no fused kernel as in the paper's systems work), so they are launch-bound.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

PEAK_FLOPS = 989e12  # H200 SXM, bf16 dense
BASE = {"d_model": 768, "n_layers": 12, "n_heads": 12, "mlp_ratio": 4, "mini_batch": 16, "inner_lr": 0.0, "inner_mean": True}
LAYERS = ("transformer", "ttt_linear", "ttt_mlp", "gated_linear")
VOCAB = 256
GLA_CHUNK = 64


def flops_per_token(layer: str, cfg: dict, T: int) -> float:
    """Training FLOPs per token (forward x 3)."""
    d, L, H, b = cfg["d_model"], cfg["n_layers"], cfg["n_heads"], cfg["mini_batch"]
    K = d // H
    dense = L * 2 * (4 * d * d + 2 * cfg["mlp_ratio"] * d * d) + 2 * d * VOCAB  # projections, MLPs, head
    mixer = {
        "transformer": 2 * T * d,
        "ttt_linear": H * (6 * K * K + 6 * b * K),
        "ttt_mlp": H * (48 * K * K + 30 * b * K),
        "gated_linear": H * (4 * K * K + 4 * GLA_CHUNK * K),
    }[layer]
    return 3.0 * (dense + L * mixer)


def bench(layer: str, T: int, tokens: int, steps: int, warmup: int, base: dict = BASE, device: str = "cuda"):
    import torch
    import torch.nn.functional as F

    from ladder_jobs.kinds.ttt.model import LM

    cfg = dict(base, layer=layer)
    cuda = device == "cuda"
    torch.manual_seed(0)
    model = LM(cfg).to(device)
    try:
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)  # torch >= 2.0
    except (TypeError, RuntimeError):
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    B = max(1, tokens // T)
    x = torch.randint(0, VOCAB, (B, T), device=device)
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    if cuda:
        torch.cuda.reset_peak_memory_stats()

    def step():
        amp = torch.autocast(device_type="cuda", dtype=torch.bfloat16) if cuda else torch.autocast("cpu", enabled=False)
        with amp:
            logits = model(x)
        loss = F.cross_entropy(logits.float().view(B * T, -1), x.view(-1))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(warmup):
        step()
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    dt = (time.perf_counter() - t0) / steps
    tps = B * T / dt
    mfu = flops_per_token(layer, cfg, T) * tps / PEAK_FLOPS
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")
    del model, opt
    if cuda:
        torch.cuda.empty_cache()
    return B, tps, mfu, peak, dt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--contexts", type=int, nargs="+", default=[2048, 8192])
    ap.add_argument("--layers", nargs="+", default=list(LAYERS), choices=LAYERS)
    ap.add_argument("--tokens", type=int, default=16384, help="tokens per step (batch = tokens / context)")
    ap.add_argument("--steps", type=int, default=4, help="timed steps per cell")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--smoke", action="store_true", help="check the script on the CPU: tiny model, context 128")
    args = ap.parse_args()
    try:
        import torch
    except ImportError:
        print("bench_gpu.py: torch is not installed; this benchmark needs torch with CUDA", file=sys.stderr)
        return 2
    base, device = BASE, "cuda"
    if args.smoke:  # exercises every code path but the CUDA calls; the numbers mean nothing
        base, device = dict(BASE, d_model=64, n_layers=2, n_heads=4), "cpu"
        args.contexts, args.tokens, args.steps, args.warmup = [128], 256, 1, 1
    elif not torch.cuda.is_available():
        print("bench_gpu.py: no CUDA device visible; this benchmark needs a GPU (H200: bf16 peak 989 TFLOP/s)", file=sys.stderr)
        return 2
    from ladder_jobs.kinds.ttt.model import LM, n_params

    counts = {layer: n_params(LM(dict(base, layer=layer))) for layer in args.layers}
    name = torch.cuda.get_device_name(0) if device == "cuda" else "CPU smoke run"
    print(f"# {name}, torch {torch.__version__}, bf16 autocast, "
          f"{args.tokens} tokens/step, fwd+bwd+AdamW, {args.steps} timed steps", flush=True)
    print(f"{'context':>7} {'layer':<13} {'params':>8} {'batch':>5} {'tokens/s':>10} {'MFU':>6} {'step s':>7} {'peak GiB':>8}", flush=True)
    for T in args.contexts:
        for layer in args.layers:
            try:
                B, tps, mfu, peak, dt = bench(layer, T, args.tokens, args.steps, args.warmup, base, device)
                print(f"{T:>7} {layer:<13} {counts[layer] / 1e6:>7.1f}M {B:>5} {tps:>10.0f} {100 * mfu:>5.1f}% {dt:>7.3f} {peak:>8.1f}", flush=True)
            except torch.cuda.OutOfMemoryError if hasattr(torch.cuda, "OutOfMemoryError") else RuntimeError as e:
                print(f"{T:>7} {layer:<13} {counts[layer] / 1e6:>7.1f}M  OOM: {str(e)[:60]}", flush=True)
                torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
