"""The ssl training loop, checkpointing and evaluation.

One run has two training phases on one global step counter (so a single checkpoint series
covers both, and SIGTERM works the same in either):

    steps 1 .. steps                    pre-train the method's model        -> pretrain_loss
    steps+1 .. steps+approx_steps       supervised model, same architecture -> approx_loss
                                        (its frozen encoder, probed like the SSL encoder,
                                        estimates the approximation error for every method:
                                        trained WITHOUT augmentation, since it measures how
                                        well the architecture can fit the pre-training labels,
                                        and augmentation only regularises that fit)

then evaluation on frozen features: linear probes (full-shot; 1/5/30-shot averaged over
seeded draws) and the risk decomposition (risk.py), full-shot and at risk_fewshot_k shots.

Determinism: the batch indices and augmentations of a step come from a CPU generator
seeded with (seed, phase, step), not from one running stream, so a resumed run sees the
same batches as an uninterrupted one; model, optimiser and global RNG states are in the
checkpoint. On CPU the same seed gives the same numbers; CUDA kernels need not.
"""

from __future__ import annotations

import functools
import time

import numpy as np
import torch

from ladder_jobs.kinds.ssl import risk
from ladder_jobs.kinds.ssl.data import fewshot_indices, make_splits
from ladder_jobs.kinds.ssl.model import SSLModel, augment, error_rate, fit_probe
from ladder_jobs.seeding import stable_seed, torch_seed
from ladder_jobs.torch_utils import (autocast_ctx, n_params, pick_device, require_finite_losses, resume_or_start, snapshot,
                                     warmup_frac_cosine_lr)

FEWSHOT_K = (1, 5, 30)  # shots per class of the reported few-shot probe accuracies
PHASE_ID = {"pretrain": 1, "approx": 2}  # salts the per-step RNG of each phase
EVAL_BATCH = 1024  # images per forward pass when extracting features


def build(config: dict, n_classes: int, device: torch.device):
    """(model, approx model, their optimisers), initialised from the seed."""
    torch.manual_seed(config["seed"])
    model = SSLModel(config["method"], config["width"], config["depth"], config["proj_dim"], n_classes).to(device)
    # its own seed: the approximation estimator depends on the architecture only, so every
    # method of a seed gets the same one (the same approx_error, comparable decompositions)
    torch.manual_seed(torch_seed(config["seed"], PHASE_ID["approx"]))
    approx = SSLModel("supervised", config["width"], config["depth"], config["proj_dim"], n_classes).to(device)

    def adamw(m):
        return torch.optim.AdamW(m.parameters(), lr=config["lr"], weight_decay=config["weight_decay"])

    return model, approx, adamw(model), adamw(approx)


@torch.no_grad()
def features(encoder: torch.nn.Module, x: torch.Tensor, autocast) -> torch.Tensor:
    encoder.eval()
    out = []
    for i in range(0, x.shape[0], EVAL_BATCH):
        with autocast():
            out.append(encoder(x[i : i + EVAL_BATCH]).float())
    encoder.train()
    return torch.cat(out)  # (N, d)


@torch.no_grad()
def classify(model: SSLModel, x: torch.Tensor, autocast) -> torch.Tensor:
    model.eval()
    out = []
    for i in range(0, x.shape[0], EVAL_BATCH):
        with autocast():
            out.append(model.head(model.encoder(x[i : i + EVAL_BATCH])).float().argmax(1))
    model.train()
    return torch.cat(out)


def run(config: dict, ctx) -> None:
    device = pick_device(config["device"])
    use_cuda = device.type == "cuda"
    autocast = functools.partial(autocast_ctx, device)

    splits = make_splits(config)
    x_pre = torch.from_numpy(splits.x_pre).to(device)  # (P, 1, H, W)
    y_pre = torch.from_numpy(splits.y_pre).to(device)  # (P,)
    x_test = torch.from_numpy(splits.x_test).to(device)
    y_test = torch.from_numpy(splits.y_test)
    n_pre = x_pre.shape[0]
    batch = min(config["batch_size"], n_pre)

    model, approx, opt, opt_a = build(config, splits.n_classes, device)
    steps = config["steps"]
    approx_steps = steps if config["approx_steps"] == -1 else config["approx_steps"]
    total_steps = steps + approx_steps

    state_extra = {"pretrain_loss": None, "approx_loss": None, "samples": 0, "seconds": 0.0}

    parts = {"model": model, "opt": opt, "approx": approx, "opt_approx": opt_a}

    def make_state(step: int) -> dict:
        return {"step": step, **snapshot(device, **parts), **state_extra}

    state, start = resume_or_start(ctx, device, **parts)
    if state is not None:
        for k in state_extra:
            state_extra[k] = state[k]

    model.train()
    approx.train()
    for gstep in range(start + 1, total_steps + 1):
        if ctx.stop_requested():
            ctx.stop(make_state(gstep - 1), gstep - 1)  # checkpoints the completed step, exits 143
        phase = "pretrain" if gstep <= steps else "approx"
        local, n_phase = (gstep, steps) if phase == "pretrain" else (gstep - steps, approx_steps)
        m, o = (model, opt) if phase == "pretrain" else (approx, opt_a)
        for group in o.param_groups:
            group["lr"] = warmup_frac_cosine_lr(config, local, n_phase)

        t0 = time.perf_counter()
        g = torch.Generator().manual_seed(torch_seed(config["seed"], PHASE_ID[phase], local))
        idx = torch.randperm(n_pre, generator=g)[:batch].to(device)  # no repeats: a repeat is a false negative
        x = x_pre[idx]  # (B, 1, H, W)
        x1 = augment(x, g, config) if phase == "pretrain" else x
        x2 = None if m.method == "supervised" else augment(x, g, config)
        with autocast():
            loss = m.loss(x1, x2, y_pre[idx], config["temperature"])
        o.zero_grad(set_to_none=True)
        loss.backward()
        o.step()
        loss_value = float(loss.detach())
        if use_cuda:
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        if config["step_sleep"]:
            time.sleep(config["step_sleep"])  # test knob; outside the timed part
        require_finite_losses(local, {f"{phase}_loss": loss_value})

        if phase == "pretrain":
            state_extra["pretrain_loss"] = loss_value
            state_extra["samples"] += batch
            state_extra["seconds"] += dt
            if local % config["log_every"] == 0 or local == steps:
                ctx.log_many(local, {"pretrain_loss": loss_value, "samples_per_s": batch / max(dt, 1e-9)})
        else:
            state_extra["approx_loss"] = loss_value
            if local % config["log_every"] == 0 or local == approx_steps:
                ctx.log_many(local, {"approx_loss": loss_value})
        if config["checkpoint_every"] and gstep % config["checkpoint_every"] == 0 and gstep < total_steps:
            ctx.save_checkpoint(make_state(gstep), gstep)

    if start < total_steps:
        ctx.save_checkpoint(make_state(total_steps), total_steps)  # a retry need not train again

    def check_stop():
        if ctx.stop_requested():  # evaluation is re-run from the final checkpoint
            ctx.stop(make_state(total_steps), total_steps)

    t_eval = time.perf_counter()
    metrics = evaluate(config, splits, model, approx, x_pre, y_pre, x_test, y_test, autocast, check_stop)
    eval_s = time.perf_counter() - t_eval
    ctx.log_many(steps, metrics)

    metrics.update(
        {
            "pretrain_loss": state_extra["pretrain_loss"],
            "samples_per_s": state_extra["samples"] / max(state_extra["seconds"], 1e-9),
            "n_params": n_params(model.encoder),
            "n_params_total": n_params(model),  # encoder + the method's head
            "n_pretrain": int(n_pre),
            "n_test": int(x_test.shape[0]),
            "rep_dim": int(model.encoder.out_dim),
            "steps": steps,
            "approx_steps": approx_steps,
            "eval_s": round(eval_s, 3),
        }
    )
    metrics["approx_loss"] = state_extra["approx_loss"]
    ctx.report_result(metrics, meta={"device": str(device), "torch": torch.__version__})


def evaluate(config, splits, model, approx, x_pre, y_pre, x_test, y_test, autocast, check_stop) -> dict:
    """Probe accuracies and the risk decomposition (full-shot and at risk_fewshot_k shots)."""
    y_pre_cpu = y_pre.cpu()
    n_classes = splits.n_classes
    fit_idx = np.flatnonzero(splits.fit)
    ho_idx = np.flatnonzero(splits.heldout)

    def probe(f_train, y_train):
        return fit_probe(f_train, y_train, n_classes, config["probe_l2"], config["probe_iters"])

    # approximation: the supervised model of the same architecture, on its own training data
    e_head_train = error_rate(classify(approx, x_pre, autocast).cpu(), y_pre_cpu)
    sup_test_acc = 1.0 - error_rate(classify(approx, x_test, autocast).cpu(), y_test)
    if config["approx_estimator"] == "probe":
        # the paper's estimator: the SSL encoder's probe, refitted on the supervised encoder's
        # frozen features, so usability (a difference of the two) compares encoders, not fits
        f_sup = features(approx.encoder, x_pre, autocast).cpu()
        e_sup_train = error_rate(probe(f_sup, y_pre_cpu)(f_sup), y_pre_cpu)
        del f_sup
    else:
        e_sup_train = e_head_train
    check_stop()

    f_pre = features(model.encoder, x_pre, autocast).cpu()  # (P, d)
    f_test = features(model.encoder, x_test, autocast).cpu()  # (T, d)
    assert f_pre.shape[1] == model.encoder.out_dim and torch.isfinite(f_pre).all()
    check_stop()

    full = probe(f_pre, y_pre_cpu)  # the downstream full-shot probe: all pre-training labels
    e_probe_train = error_rate(full(f_pre), y_pre_cpu)  # usability: its own training error
    e_test_full = error_rate(full(f_test), y_test)
    check_stop()
    fit = probe(f_pre[fit_idx], y_pre_cpu[fit_idx])  # without the held-out split ...
    e_probe_ho = error_rate(fit(f_pre[ho_idx]), y_pre_cpu[ho_idx])  # ... tested on it
    check_stop()

    metrics = {"probe_acc_full": 1.0 - e_test_full, "supervised_test_acc": sup_test_acc,
               "supervised_train_error": e_sup_train, "supervised_head_train_error": e_head_train,
               "probe_train_error": e_probe_train, "probe_heldout_error": e_probe_ho,
               "n_heldout": int(len(ho_idx))}
    metrics.update(risk.decompose(e_sup_train, e_probe_train, e_probe_ho, e_test_full))

    k_risk = config["risk_fewshot_k"]
    for k in sorted(set(FEWSHOT_K) | {k_risk}):
        errs_ho, errs_test = [], []
        for draw in range(config["fewshot_draws"]):
            rng = np.random.default_rng(stable_seed(config["seed"], 1000 + k, draw))
            idx = fewshot_indices(splits.y_pre, fit_idx, k, rng)  # k per class from the fit part
            p = probe(f_pre[idx], y_pre_cpu[idx])
            errs_ho.append(error_rate(p(f_pre[ho_idx]), y_pre_cpu[ho_idx]))
            errs_test.append(error_rate(p(f_test), y_test))
            check_stop()
        e_ho, e_test = float(np.mean(errs_ho)), float(np.mean(errs_test))
        if k in FEWSHOT_K:
            metrics[f"probe_acc_{k}shot"] = 1.0 - e_test
        if k == k_risk:
            parts = risk.decompose(e_sup_train, e_probe_train, e_ho, e_test)
            metrics.update({f"{name}_{k}shot": v for name, v in parts.items()})
            risk.check(metrics, suffix=f"_{k}shot")
    risk.check(metrics)
    return metrics
