"""Small torch helpers shared by the torch job kinds (imported only by them, so `synthetic`
and the CLI keep working without torch): device choice, the lr schedule, parameter counts,
and checkpoints that resume a run on the same curve."""
from __future__ import annotations

import math
import os
import resource
from typing import Any, Mapping

import torch

from ladder_jobs.checkpoint import CheckpointStore


class NonFiniteLoss(FloatingPointError):
    """A loss went NaN/inf. The metrics client would drop the point with a warning (JSON cannot
    carry it) and the result would silently lack the metric, so the run fails here instead."""


def require_finite_losses(step: int, values: Mapping[str, float]) -> None:
    """Raise NonFiniteLoss if a value whose name contains 'loss' is NaN or infinite."""
    bad = {k: v for k, v in values.items() if "loss" in k and not math.isfinite(v)}
    if bad:
        raise NonFiniteLoss(f"non-finite loss at step {step}: " + ", ".join(f"{k}={v}" for k, v in sorted(bad.items())))


def pick_device(choice: str) -> torch.device:
    """`auto` takes CUDA when torch sees it; `cuda` without a device is an error, not a silent CPU run."""
    if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise RuntimeError("device=cuda but torch sees no CUDA device")
        return torch.device("cuda")
    return torch.device("cpu")


def training_device(choice: str) -> torch.device:
    """pick_device, then the numerics policy of a training run: on CPU the same numbers twice and
    across a resume (deterministic algorithms); on CUDA speed (TF32; cuBLAS/SDPA kernels are not
    all deterministic, so bitwise resume is only promised on CPU)."""
    device = pick_device(choice)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True)
    else:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return device


def warmup_cosine(step: int, total: int, lr: float, warmup: int, floor: float = 0.0) -> float:
    """The lr of 1-based `step` of `total`: linear warm-up over `warmup` steps, then a cosine from
    lr down to floor * lr at the last step."""
    if step <= warmup:
        return lr * step / max(1, warmup)
    frac = min(1.0, (step - warmup) / max(1, total - warmup))
    return lr * (floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * frac)))


def warmup_cosine_lr(cfg: Mapping[str, Any], step: int) -> float:
    """warmup_cosine for configs with `lr`, `warmup` (steps) and `steps`, decaying to lr / 10."""
    return warmup_cosine(step, cfg["steps"], cfg["lr"], cfg["warmup"], floor=0.1)


def warmup_frac_cosine_lr(cfg: Mapping[str, Any], step: int, total: int) -> float:
    """warmup_cosine for configs with `lr` and `warmup_frac` (of `total`), decaying to zero."""
    return warmup_cosine(step, total, cfg["lr"], max(1, int(cfg["warmup_frac"] * total)))


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def autocast_ctx(device: torch.device):
    """bf16 autocast on CUDA; a no-op on CPU (torch 1.13's CPU autocast is bf16-only and slow)."""
    if device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return torch.autocast(device_type="cpu", enabled=False)


def peak_mem_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _torch_load(f) -> Any:
    # weights_only=False: torch >= 2.6 defaults to True, which refuses the envelope's plain Python
    # objects; the files are this trial's own, in its own checkpoint dir. torch < 1.13 lacks the flag.
    try:
        return torch.load(f, map_location="cpu", weights_only=False)
    except TypeError:
        return torch.load(f, map_location="cpu")


def torch_checkpoint_store(directory: str | os.PathLike) -> CheckpointStore:
    """A checkpoint store for states holding tensors."""
    return CheckpointStore(directory, suffix=".pt", save=lambda state, f: torch.save(state, f), load=_torch_load)


def snapshot(device: torch.device, **parts: Any) -> dict:
    """The state_dict of each part (modules, optimizers) by name, plus the RNG states: what a
    checkpoint needs to resume the same curve. Add the run's own counters to the dict."""
    state = {name: part.state_dict() for name, part in parts.items()}
    state["rng"] = torch.get_rng_state()
    state["cuda_rng"] = torch.cuda.get_rng_state() if device.type == "cuda" else None
    return state


def restore(state: Mapping[str, Any], device: torch.device, **parts: Any) -> None:
    """The inverse of `snapshot`."""
    for name, part in parts.items():
        part.load_state_dict(state[name])
    torch.set_rng_state(state["rng"])
    if device.type == "cuda" and state.get("cuda_rng") is not None:
        torch.cuda.set_rng_state(state["cuda_rng"])


def resume_or_start(ctx, device: torch.device, **parts: Any) -> tuple[dict | None, int]:
    """Keep ctx's checkpoints as torch files and resume from the newest one, if any: restores the
    parts (named as in `snapshot`) and the RNGs, returns (state, its step); (None, 0) on a fresh start."""
    ctx.use_checkpoints(torch_checkpoint_store(ctx.env.checkpoint_dir))
    resumed = ctx.load_checkpoint()
    if resumed is None:
        return None, 0
    state, step = resumed
    restore(state, device, **parts)
    return state, step


def training_state(model: torch.nn.Module, opt: torch.optim.Optimizer, device: torch.device) -> dict:
    """snapshot() of one model and its optimizer."""
    return snapshot(device, model=model, opt=opt)


def restore_training_state(state: dict, model: torch.nn.Module, opt: torch.optim.Optimizer, device: torch.device) -> None:
    """The inverse of `training_state`."""
    restore(state, device, model=model, opt=opt)
