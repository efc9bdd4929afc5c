"""GPU throughput benchmark of the `ttt` kind's mixers: tokens/s and model FLOP utilisation.

    cd jobs && python bench_gpu.py [--contexts 2048 8192] [--steps 4] [--tokens 16384] [--json out.json]
    cd jobs && python bench_gpu.py --tiny      # checks the script on the CPU; its numbers mean nothing

For each context length, trains (forward + backward + AdamW step, bf16 autocast) a 125M-class
byte-level LM (12 layers x 768, 12 heads: the `l` preset's shape, the kind's default block:
RMSNorm + SwiGLU, Mamba backbone for the TTT mixers) with each mixer at a fixed number of tokens
per step, and prints a table, then the same rows as one JSON object (last line of stdout).

Equal parameter count: the Transformer is the reference; every other model gets the block-MLP
hidden width (`mlp_hidden`, a multiple of 8) that brings its count closest to the reference's,
so TTT-MLP's inner weights are paid for by a narrower block MLP. The table shows each count and
its difference from the reference (well under 1% at the 125M shape).

FLOPs per token are counted analytically (a matmul of m x k by k x n is 2mkn), training = forward
x 3: every nn.Linear 2 x its weights, the tied head 2 d V, the causal convs 2 k d each; mixers per
layer: causal attention 2 T d (QK^T and AV over T/2 keys on average); TTT dual form per head of
width K and mini-batch b: TTT-Linear 6K^2 + 6bK, TTT-MLP 56K^2 + 30bK (hidden 4K); decay linear
attention (chunk C = 64) 4K^2 + 4CK. MFU = FLOP/s / peak (989 TFLOP/s: H100/H200 SXM bf16 dense).
The "vs tf" column is tokens/s over the Transformer's at the same context, measured in the same
run. The TTT mixers are plain PyTorch with a Python loop over T/b mini-batches (no fused kernel
as in the paper's systems work), so on a GPU they are launch-bound: the paper's "TTT-Linear faster
than a Transformer at 8k" is about its kernels, which this harness does not have.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

PEAK_TFLOPS = 989.0  # H100 / H200 SXM, bf16 dense
LAYERS = ("transformer", "ttt_linear", "ttt_mlp", "decay_linear_attn")
DEFAULT_LAYERS = ("transformer", "ttt_linear", "ttt_mlp")
REFERENCE = "transformer"
VOCAB = 256
DLA_CHUNK = 64  # decay_linear_attn_scan's default chunk


def base_config(tiny: bool, backbone: str) -> dict:
    from ladder_jobs.kinds.ttt import DEFAULTS, PRESETS

    cfg = dict(DEFAULTS, **PRESETS["l"], backbone=backbone)
    if tiny:
        cfg.update(d_model=64, n_layers=2, n_heads=4)
    return cfg


def count_params(cfg: dict) -> int:
    from ladder_jobs.kinds.ttt.model import LM
    from ladder_jobs.torch_utils import n_params

    return n_params(LM(cfg))


def match_params(cfg: dict, target: int) -> tuple[int, int]:
    """The multiple of 8 for `mlp_hidden` whose model is closest to `target` parameters, and its count.
    A model's count is affine in mlp_hidden, so two probes give the line."""
    from ladder_jobs.kinds.ttt.model import mlp_hidden

    h0 = mlp_hidden(cfg)
    n0, n1 = count_params(dict(cfg, mlp_hidden=h0)), count_params(dict(cfg, mlp_hidden=h0 + 8))
    slope = (n1 - n0) / 8
    best = None
    guess = h0 + (target - n0) / slope
    for h in {max(8, 8 * math.floor(guess / 8)), max(8, 8 * math.ceil(guess / 8))}:
        n = n0 + round(slope * (h - h0))
        if best is None or abs(n - target) < abs(best[1] - target):
            best = (h, n)
    return best


def flops_per_token(model, cfg: dict, T: int) -> float:
    """Training FLOPs per token (forward x 3), from the model's own layers plus the mixers' counts."""
    import torch.nn as nn

    from ladder_jobs.kinds.ttt.model import CausalConv

    d, L, H, b = cfg["d_model"], cfg["n_layers"], cfg["n_heads"], cfg["mini_batch"]
    K = d // H
    dense = sum(2 * m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear))
    dense += sum(2 * m.conv.weight.numel() for m in model.modules() if isinstance(m, CausalConv))
    dense += 2 * d * VOCAB  # tied head
    mixer = {
        "transformer": 2 * T * d,
        "ttt_linear": H * (6 * K * K + 6 * b * K),
        "ttt_mlp": H * (56 * K * K + 30 * b * K),
        "decay_linear_attn": H * (4 * K * K + 4 * DLA_CHUNK * K),
    }[cfg["layer"]]
    return 3.0 * (dense + L * mixer)


def bench(cfg: dict, T: int, tokens: int, steps: int, warmup: int, device: str, peak_flops: float) -> dict:
    import torch
    import torch.nn.functional as F

    from ladder_jobs.kinds.ttt.model import LM

    cuda = device == "cuda"
    torch.manual_seed(0)
    model = LM(cfg).to(device)
    try:
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=cuda)  # fused: torch >= 2.0, CUDA only
    except (TypeError, RuntimeError):
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    B = max(1, tokens // T)
    x = torch.randint(0, VOCAB, (B, T), device=device)
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    if cuda:
        torch.cuda.reset_peak_memory_stats()

    def step():
        with torch.autocast(device_type=device, dtype=torch.bfloat16):
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
    fpt = flops_per_token(model, cfg, T)
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else None
    del model, opt
    if cuda:
        torch.cuda.empty_cache()
    return {"batch": B, "tokens_per_s": tps, "mfu": fpt * tps / peak_flops, "step_s": dt, "peak_gib": peak,
            "flops_per_token": fpt}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--contexts", type=int, nargs="+", default=[2048, 8192])
    ap.add_argument("--layers", nargs="+", default=list(DEFAULT_LAYERS), choices=LAYERS)
    ap.add_argument("--backbone", default="mamba", choices=("mamba", "transformer"), help="of the TTT mixers")
    ap.add_argument("--tokens", type=int, default=16384, help="tokens per step (batch = tokens / context)")
    ap.add_argument("--steps", type=int, default=4, help="timed steps per cell")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--peak-tflops", type=float, default=PEAK_TFLOPS, help="the chip's bf16 dense peak, for MFU")
    ap.add_argument("--json", metavar="PATH", help="also write the JSON object here")
    ap.add_argument("--tiny", action="store_true",
                    help="check the script on the CPU: 2 x 64 model, contexts 64 and 128; the numbers mean nothing")
    args = ap.parse_args()
    for name in ("tokens", "steps"):
        if getattr(args, name) <= 0:
            ap.error(f"--{name} must be > 0")
    if any(t <= 0 or t > 1 << 20 for t in args.contexts):
        ap.error("--contexts must be in 1 .. 1048576")
    try:
        import torch
    except ImportError:
        print("bench_gpu.py: torch is not installed; this benchmark needs torch with CUDA", file=sys.stderr)
        return 2
    device = "cuda"
    if args.tiny:
        device = "cpu"
        args.contexts, args.tokens, args.steps, args.warmup = [64, 128], 256, 1, 1
    elif not torch.cuda.is_available():
        print("bench_gpu.py: no CUDA device visible; this benchmark needs a GPU (or --tiny to check it on the CPU)",
              file=sys.stderr)
        return 2

    from ladder_jobs.kinds.ttt.model import mlp_hidden

    base = base_config(args.tiny, args.backbone)
    layers = list(dict.fromkeys([REFERENCE, *args.layers]))  # the reference is always measured
    target = count_params(dict(base, layer=REFERENCE))
    cfgs = {}
    for layer in layers:
        cfg = dict(base, layer=layer)
        if layer != REFERENCE:
            cfg["mlp_hidden"], _ = match_params(cfg, target)
        cfgs[layer] = cfg
    counts = {layer: count_params(cfg) for layer, cfg in cfgs.items()}

    name = torch.cuda.get_device_name(0) if device == "cuda" else "CPU (--tiny: checks the script, numbers mean nothing)"
    print(f"# {name}, torch {torch.__version__}, bf16 autocast, {args.tokens} tokens/step, fwd+bwd+AdamW, "
          f"{args.steps} timed steps, TTT backbone {args.backbone}, MFU against {args.peak_tflops:g} TFLOP/s", flush=True)
    print(f"{'context':>7} {'layer':<17} {'params':>9} {'vs ref':>7} {'mlp_h':>5} {'batch':>5} {'tokens/s':>10} "
          f"{'vs tf':>6} {'MFU':>6} {'step s':>7} {'peak GiB':>8}", flush=True)
    rows = []
    for T in args.contexts:
        ref_tps = None
        for layer in layers:
            cfg = cfgs[layer]
            row = {"context": T, "layer": layer, "backbone": args.backbone if layer.startswith("ttt_") else None,
                   "params": counts[layer], "params_vs_ref": counts[layer] / target - 1, "mlp_hidden": mlp_hidden(cfg)}
            try:
                row.update(bench(cfg, T, args.tokens, args.steps, args.warmup, device, args.peak_tflops * 1e12))
            except RuntimeError as e:  # CUDA OOM is a RuntimeError subclass on every torch version
                if "out of memory" not in str(e):
                    raise
                row["error"] = "OOM"
                if device == "cuda":
                    torch.cuda.empty_cache()
            if layer == REFERENCE and "tokens_per_s" in row:
                ref_tps = row["tokens_per_s"]
            row["vs_transformer"] = row["tokens_per_s"] / ref_tps if ref_tps and "tokens_per_s" in row else None
            rows.append(row)
            head = (f"{T:>7} {layer:<17} {counts[layer] / 1e6:>8.2f}M {100 * row['params_vs_ref']:>+6.2f}% "
                    f"{row['mlp_hidden']:>5} ")
            if "error" in row:
                print(head + "  OOM", flush=True)
                continue
            vs = f"{row['vs_transformer']:.2f}" if row["vs_transformer"] else "-"
            peak = f"{row['peak_gib']:.1f}" if row["peak_gib"] is not None else "-"
            print(head + f"{row['batch']:>5} {row['tokens_per_s']:>10.0f} {vs:>6} {100 * row['mfu']:>5.1f}% "
                  f"{row['step_s']:>7.3f} {peak:>8}", flush=True)
    out = {"device": name, "torch": torch.__version__, "tokens_per_step": args.tokens, "steps": args.steps,
           "peak_tflops": args.peak_tflops, "backbone": args.backbone, "reference_params": target, "rows": rows}
    text = json.dumps(out, allow_nan=False)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
