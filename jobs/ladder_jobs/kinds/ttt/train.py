"""Training loop of the `ttt` kind: AdamW, warmup + cosine, eval with loss by position, checkpoints.

Resume is exact on CPU: the checkpoint holds the model, the optimizer, the torch RNG states and
the step; the batches are a function of (seed, step) (data.py) and the learning rate a function
of the step, so the steps after a resume compute the same numbers as an uninterrupted run.
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F

from ladder_jobs.torch_utils import (autocast_ctx, n_params, peak_mem_mb, require_finite_losses,
                                     resume_or_start, snapshot, training_device, warmup_cosine_lr)
from ladder_jobs.kinds.ttt.data import Data
from ladder_jobs.kinds.ttt.model import LM


def make_optimizer(model: torch.nn.Module, cfg: dict) -> torch.optim.Optimizer:
    # Matrices (and the TTT initial weights W_0) decay; biases, norms' gains and eta's bias do not.
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg["lr"], betas=(0.9, 0.95))



@torch.no_grad()
def evaluate(model, val, device) -> torch.Tensor:
    """Mean validation loss per token position, (T,) float64 on the CPU."""
    model.eval()
    total, count = None, 0
    for x, y in val:
        x, y = x.to(device), y.to(device)
        with autocast_ctx(device):
            logits = model(x)  # (B,T,V)
        nll = F.cross_entropy(logits.float().transpose(1, 2), y, reduction="none")  # (B,T)
        s = nll.double().sum(0).cpu()
        total = s if total is None else total + s
        count += x.shape[0]
    model.train()
    return total / count


def bucket_losses(per_pos: torch.Tensor, n_buckets: int) -> dict:
    """{'val_loss_pos_0_63': ..., ...}: mean loss over evenly split position ranges."""
    T = per_pos.shape[0]
    edges = [round(i * T / n_buckets) for i in range(n_buckets + 1)]
    return {f"val_loss_pos_{a}_{b - 1}": float(per_pos[a:b].mean()) for a, b in zip(edges[:-1], edges[1:])}


def train(cfg: dict, ctx) -> None:
    device = training_device(cfg["device"])
    torch.manual_seed(cfg["seed"])
    model = LM(cfg).to(device)
    opt = make_optimizer(model, cfg)
    data = Data(cfg)
    val = data.val_batches(cfg["val_batches"])

    train_time, train_tokens, result = 0.0, 0, None
    state, start = resume_or_start(ctx, device, model=model, opt=opt)
    if state is not None:
        train_time, train_tokens, result = state["train_time"], state["train_tokens"], state["result"]
        if result is not None:  # finished before; only the result push failed: push it again
            ctx.report_result(result, meta={"device": str(device)})
            return

    def state_at(step: int) -> dict:
        return {
            **snapshot(device, model=model, opt=opt),
            "step": step,
            "train_time": train_time,
            "train_tokens": train_tokens,
            "result": result,
        }

    steps, B, T = cfg["steps"], cfg["batch_size"], cfg["seq_len"]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    window_time, window_tokens = 0.0, 0  # throughput since the last eval
    values = {}
    for step in range(start + 1, steps + 1):
        if ctx.stop_requested():
            ctx.stop(state_at(step - 1), step - 1)  # checkpoint the completed step, exit 143
        t0 = time.perf_counter()
        for group in opt.param_groups:
            group["lr"] = warmup_cosine_lr(cfg, step)
        x, y = data.get_batch(step)  # (B,T), (B,T)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with autocast_ctx(device):
            logits = model(x)  # (B,T,V)
        loss = F.cross_entropy(logits.float().reshape(B * T, -1), y.reshape(B * T))
        loss.backward()
        if cfg["grad_clip"] > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["grad_clip"])
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss_value = loss.item()  # syncs the device, so the timing below is honest
        dt = time.perf_counter() - t0
        train_time, train_tokens = train_time + dt, train_tokens + B * T
        window_time, window_tokens = window_time + dt, window_tokens + B * T

        values = {"train_loss": loss_value}
        if step % cfg["eval_interval"] == 0 or step == steps:
            per_pos = evaluate(model, val, device)
            val_loss = float(per_pos.mean())
            values.update(
                val_loss=val_loss,
                val_ppl=math.exp(min(val_loss, 50.0)),
                tokens_per_s=window_tokens / max(window_time, 1e-9),
                peak_mem_mb=peak_mem_mb(device),
            )
            window_time, window_tokens = 0.0, 0
            if step == steps:  # the paper's "loss keeps falling with more context" plot
                values.update(bucket_losses(per_pos, cfg["pos_buckets"]))
        require_finite_losses(step, values)
        ctx.log_many(step, values)
        if cfg["step_sleep"]:
            time.sleep(cfg["step_sleep"])
        if cfg["checkpoint_every"] and step % cfg["checkpoint_every"] == 0 and step < steps:
            ctx.save_checkpoint(state_at(step), step)

    result = {k: v for k, v in values.items() if k != "tokens_per_s"}
    result.update(
        tokens_per_s=train_tokens / max(train_time, 1e-9),
        n_params=n_params(model),
        steps=steps,
        train_tokens=train_tokens,
    )
    ctx.save_checkpoint(state_at(steps), steps)  # a retry after a failed result push need not retrain
    ctx.report_result(result, meta={"device": str(device), "torch": torch.__version__})
