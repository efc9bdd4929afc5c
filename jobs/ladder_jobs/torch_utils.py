"""Small torch helpers shared by the torch job kinds (imported only by them, so `synthetic`
and the CLI keep working without torch)."""
import math
import resource
from typing import Mapping

import torch


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


def warmup_cosine_lr(cfg: dict, step: int) -> float:
    """Linear warmup over `warmup` steps, then cosine from lr down to lr / 10 at the last step."""
    if step <= cfg["warmup"]:
        return cfg["lr"] * step / max(1, cfg["warmup"])
    frac = (step - cfg["warmup"]) / max(1, cfg["steps"] - cfg["warmup"])
    return cfg["lr"] * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, frac))))


def autocast_ctx(device: torch.device):
    """bf16 autocast on CUDA; a no-op on CPU (torch 1.13's CPU autocast is bf16-only and slow)."""
    if device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return torch.autocast(device_type="cpu", enabled=False)


def peak_mem_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def training_state(model: torch.nn.Module, opt: torch.optim.Optimizer, device: torch.device) -> dict:
    """Model, optimizer and RNG states: what a checkpoint needs to resume the same curve."""
    return {
        "model": model.state_dict(),
        "opt": opt.state_dict(),
        "rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state() if device.type == "cuda" else None,
    }


def restore_training_state(state: dict, model: torch.nn.Module, opt: torch.optim.Optimizer, device: torch.device) -> None:
    """The inverse of `training_state`."""
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["opt"])
    torch.set_rng_state(state["rng"])
    if device.type == "cuda" and state.get("cuda_rng") is not None:
        torch.cuda.set_rng_state(state["cuda_rng"])
