"""ssl: self-supervised representation learning, evaluated with the SSL risk decomposition.

One trial = pre-train an encoder (SimCLR, SimCLR with the asymmetric projection head of
"Improving SSL by characterizing idealized representations", or supervised), train a
supervised model of the same architecture (the approximation-error estimator), then probe
the frozen encoder linearly (full-shot and 1/5/30-shot) and split its test error into
approximation + representation usability + probe generalization + encoder generalization
("Evaluating Self-Supervised Learning via Risk Decomposition"). See risk.py for the
estimators, data.py for the splits, train.py for the loop.

Config keys live in DEFAULTS (commented); presets xs..l grow width, depth, image size and
the number of pre-training samples. Torch is imported only inside run().
"""

from __future__ import annotations

from ladder_jobs.config import ConfigError

HELP = "self-supervised vision (simclr / simclr_asym / supervised) with the SSL risk decomposition"

DEFAULTS = {
    # data (ships offline: scikit-learn digits upsampled, or seeded synthetic shapes)
    "dataset": "digits",  # digits | shapes
    "image_size": 16,  # side of the square grey image the encoder sees (digits are 8x8, upsampled)
    "n_pretrain": 1000,  # pre-training set size (digits: capped at what the 1797 images allow)
    "n_test": 500,  # test set size (digits: capped at a fifth of the data)
    "heldout_frac": 0.2,  # part of the pre-training set the probe-generalization probe is tested on
    "data_seed": 0,  # dataset generation and splits; `seed` below drives init, batches, augmentation
    # method
    "method": "simclr",  # simclr | simclr_asym | supervised
    "temperature": 0.2,  # InfoNCE temperature
    "proj_dim": 64,  # output of simclr's projection head (simclr_asym maps back to the representation)
    # encoder: a small CNN, `depth` stages of two 3x3 convs; channels double per stage up to 4x
    "width": 16,  # channels of the first stage
    "depth": 2,  # stages; every stage after the first halves the resolution
    # augmentation (both views; method=supervised uses one view; the approximation estimator none)
    "aug_scale": 0.25,  # crop zoom: scale drawn from [1 - aug_scale, 1]
    "aug_translate": 0.15,  # shift as a fraction of half the image side
    "aug_rotate": 15.0,  # degrees, uniform in [-aug_rotate, aug_rotate]
    "aug_jitter": 0.3,  # intensity: x * U[1 - j, 1 + j] + U[-j/3, j/3]
    "aug_noise": 0.05,  # std of added Gaussian pixel noise
    # optimisation (AdamW, linear warm-up then cosine to zero)
    "steps": 150,  # pre-training steps
    "approx_steps": -1,  # steps of the supervised approximation estimator (no augmentation); -1: = steps
    "batch_size": 128,
    "lr": 5e-3,
    "weight_decay": 1e-4,
    "warmup_frac": 0.05,  # fraction of the steps spent warming the lr up
    "seed": 0,
    # evaluation: linear probes on frozen features (float64 L-BFGS on CPU, deterministic)
    "probe_l2": 1e-3,  # L2 penalty of the logistic-regression probe (on standardised features)
    "probe_iters": 100,  # L-BFGS iterations per probe
    "fewshot_draws": 3,  # seeded draws averaged for each few-shot probe
    "risk_fewshot_k": 5,  # shots per class of the few-shot risk decomposition (*_Nshot metrics)
    # run
    "checkpoint_every": 50,  # steps between checkpoints (0: only on stop and at the end)
    "log_every": 1,  # steps between pushed training points
    "device": "auto",  # auto | cpu | cuda
    # test knob
    "step_sleep": 0.0,  # seconds slept per training step, so a test can SIGTERM a running job
}

PRESETS = {
    # the scale ladder: width, depth, image size and pre-training samples grow together
    "xs": {"width": 16, "depth": 2, "image_size": 16, "n_pretrain": 1000, "steps": 150, "batch_size": 128},
    # xs, s: CPU-sized (xs: ~30 s on 2 idle cores, s: a few minutes); m, l: GPU-sized
    # (32 px images; m is hours on 2 CPU cores)
    "s": {"width": 24, "depth": 3, "image_size": 16, "n_pretrain": 3000, "steps": 300, "batch_size": 128},
    "m": {"width": 64, "depth": 3, "image_size": 32, "n_pretrain": 20000, "steps": 3000, "batch_size": 256},
    "l": {
        "width": 128,
        "depth": 4,
        "image_size": 32,
        "n_pretrain": 100000,
        "n_test": 5000,
        "steps": 10000,
        "batch_size": 512,
        "checkpoint_every": 500,
        "log_every": 10,
    },
}

DATASETS = ("digits", "shapes")
METHODS = ("simclr", "simclr_asym", "supervised")
DEVICES = ("auto", "cpu", "cuda")


def validate(config: dict) -> None:
    def bad(key: str, why: str) -> ConfigError:
        return ConfigError(f"key '{key}' of kind 'ssl' {why}, got {config[key]!r}")

    for key, allowed in (("dataset", DATASETS), ("method", METHODS), ("device", DEVICES)):
        if config[key] not in allowed:
            raise bad(key, f"must be one of {', '.join(allowed)}")
    for key in ("image_size", "n_pretrain", "n_test", "width", "depth", "steps", "batch_size", "proj_dim",
                "probe_iters", "fewshot_draws", "risk_fewshot_k", "log_every", "temperature", "lr"):
        if config[key] <= 0:
            raise bad(key, "must be > 0")
    for key in ("aug_scale", "aug_translate", "aug_rotate", "aug_jitter", "aug_noise", "weight_decay",
                "probe_l2", "checkpoint_every", "data_seed", "seed", "step_sleep"):
        if config[key] < 0:
            raise bad(key, "must be >= 0")
    if config["image_size"] < 8 or config["image_size"] % 4:
        raise bad("image_size", "must be a multiple of 4 and >= 8")
    if 2 ** (config["depth"] - 1) > config["image_size"] // 2:
        raise bad("depth", "halves the image too often for image_size")
    if not 0.0 < config["heldout_frac"] < 1.0:
        raise bad("heldout_frac", "must be in (0, 1)")
    if not 0.0 <= config["warmup_frac"] < 1.0:
        raise bad("warmup_frac", "must be in [0, 1)")
    if config["aug_scale"] >= 1.0 or config["aug_jitter"] >= 1.0:
        raise ConfigError("keys 'aug_scale' and 'aug_jitter' of kind 'ssl' must be < 1")
    if config["approx_steps"] != -1 and config["approx_steps"] <= 0:
        raise bad("approx_steps", "must be > 0 or -1 (same as steps)")


def run(config: dict, ctx) -> None:
    from ladder_jobs.kinds.ssl.train import run as _run  # torch is imported here, not at listing time

    _run(config, ctx)
