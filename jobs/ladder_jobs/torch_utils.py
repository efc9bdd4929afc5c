"""Small torch helpers shared by the torch job kinds (imported only by them, so `synthetic`
and the CLI keep working without torch)."""
import math
import resource

import torch


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
