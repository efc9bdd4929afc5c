"""synthetic: a TEST job. Emits a noisy closed-form learning curve; trains nothing.

Orchestration, capacity and end-to-end tests use it: it starts in milliseconds, needs no GPU,
and behaves like a real trial (per-step metrics, checkpoints, resume, SIGTERM, crashes).

The final loss of a variant follows a scaling law in the scale N (model size):

    L_final(N) = (c + a * N**(-alpha)) * lr_factor(lr) * width_factor(width)

The variant factors do not depend on N, so variants rank the same way at every scale (a
sweep's promotion from small to large rungs is then "correct" by construction). Per step s:

    loss(s) = L_final + (L0 - L_final) * (1 + s)**(-0.7) + noise * gauss

The noise of step s comes from an RNG seeded with a stable mix of (seed, s), not from one
RNG stream, so a run that was killed and resumed emits exactly the values an uninterrupted
run would (and the checkpoint needs no RNG state beyond the seed).
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass

from ladder_jobs.config import KindConfig, setting
from ladder_jobs.seeding import stable_seed

HELP = "test job: noisy closed-form learning curve, no training"


# The TypeScript side relies on these key names; keep them.
@dataclass(frozen=True)
class Config(KindConfig, kind="synthetic"):
    # scaling law of the variant: L_final(N) = c + a * N**(-alpha), times the variant factors
    scale: float = setting(1e6, gt=0)  # N, the model size this rung stands for
    alpha: float = setting(0.3, ge=0)  # scaling exponent
    a: float = setting(50.0, ge=0)  # reducible-loss coefficient
    c: float = setting(1.5, ge=0)  # irreducible loss
    # variant knobs: shift the curve deterministically, the same way at every scale
    lr: float = setting(3e-4, gt=0)  # loss x (1 + 0.1 * |log10(lr / 3e-4)|): 3e-4 is the best lr
    width: int = setting(256, gt=0)  # small effect, wider is slightly better: x (1 + 0.05 * (sqrt(256 / width) - 1))
    # run
    steps: int = setting(50, gt=0)  # number of steps (metric steps are 1..steps)
    noise: float = setting(0.01, ge=0)  # std of the Gaussian noise added to each point
    seed: int = 0  # noise seed; same seed -> same values, resumed or not
    checkpoint_every: int = setting(10, ge=0)  # steps between checkpoints (0: only on stop, crash and at the end)
    # test knobs
    step_sleep: float = setting(0.0, ge=0)  # seconds slept per step, so a test can cancel or kill a running job
    fail_attempts: int = setting(0, ge=0)  # while LADDER_ATTEMPT <= this, exit 1 after half the steps (after checkpointing)


# The dict view of the declaration, for callers that merge overrides into it (tests, scripts).
DEFAULTS = Config.defaults()
validate = Config.validate

PRESETS = {
    "xs": {"scale": 1e5},
    "s": {"scale": 1e6},
    "m": {"scale": 1e7},
    "l": {"scale": 1e8},
}

INITIAL_LOSS = 10.0  # L0, roughly ln(vocab) where a language model starts
CURVE_EXPONENT = 0.7  # how fast the curve approaches L_final
VAL_GAP = 0.05  # val_loss sits slightly above loss
VAL_EVERY = 10  # val_loss every this many steps, and at the last step
LR_REF = 3e-4
WIDTH_REF = 256


def final_loss(config: dict) -> float:
    """L_final of the variant at its scale: the noiseless loss the curve converges to."""
    base = config["c"] + config["a"] * config["scale"] ** (-config["alpha"])
    lr_factor = 1.0 + 0.1 * abs(math.log10(config["lr"] / LR_REF))
    width_factor = 1.0 + 0.05 * (math.sqrt(WIDTH_REF / config["width"]) - 1.0)
    return base * lr_factor * width_factor


def _gauss(seed: int, step: int, stream: int) -> float:
    return random.Random(stable_seed(seed, step, stream)).gauss(0.0, 1.0)


def point_values(config: dict, step: int, l_final: float) -> dict:
    """The metric values of one step: a pure function of (config, step)."""
    l0 = max(INITIAL_LOSS, l_final)
    clean = l_final + (l0 - l_final) * (1.0 + step) ** (-CURVE_EXPONENT)
    values = {"loss": clean + config["noise"] * _gauss(config["seed"], step, 0)}
    if step % VAL_EVERY == 0 or step == config["steps"]:
        values["val_loss"] = clean + VAL_GAP + config["noise"] * _gauss(config["seed"], step, 1)
    return values


class SimulatedCrash(RuntimeError):
    pass


def run(config: dict, ctx) -> None:
    steps = config["steps"]
    l_final = final_loss(config)
    # state: the completed step and the last values (for the result when resuming at the end);
    # the RNG needs no state since each step derives its own from (seed, step).
    state = {"step": 0, "loss": None, "val_loss": None}
    resumed = ctx.load_checkpoint()
    if resumed is not None:
        state = resumed[0]
    crash_at = max(1, steps // 2) if ctx.attempt <= config["fail_attempts"] else None

    for step in range(state["step"] + 1, steps + 1):
        if ctx.stop_requested():
            ctx.stop(state, state["step"])  # checkpoints the completed step, exits 143
        if config["step_sleep"]:
            time.sleep(config["step_sleep"])
        values = point_values(config, step, l_final)
        ctx.log_many(step, values)
        state = {"step": step, "loss": values["loss"], "val_loss": values.get("val_loss", state["val_loss"])}
        if crash_at is not None and step >= crash_at:
            ctx.save_checkpoint(state, step)  # the retry resumes from here
            raise SimulatedCrash(
                f"simulated crash at step {step} (attempt {ctx.attempt} <= fail_attempts {config['fail_attempts']})"
            )
        if config["checkpoint_every"] and step % config["checkpoint_every"] == 0:
            ctx.save_checkpoint(state, step)

    ctx.save_checkpoint(state, steps)  # a retry after a failed result push need not redo steps
    ctx.report_result(
        {
            "loss": state["loss"],
            "val_loss": state["val_loss"],
            "final_loss_noiseless": l_final,
            "steps": steps,
        }
    )
