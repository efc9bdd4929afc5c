"""ssl: self-supervised representation learning, evaluated with the SSL risk decomposition.

One trial = pre-train an encoder (SimCLR, SimCLR with the asymmetric projection head of
"Improving SSL by characterizing idealized representations", or supervised), train a
supervised model of the same architecture (its frozen encoder, probed like the SSL one,
estimates the approximation error), then probe the frozen encoder linearly (full-shot and
1/5/30-shot) and split its test error into
approximation + representation usability + probe generalization + encoder generalization
("Evaluating Self-Supervised Learning via Risk Decomposition"). See risk.py for the
estimators, data.py for the splits, train.py for the loop.

Config keys live in Config (commented, with their ranges); presets xs..l grow width, depth, image size and
the number of pre-training samples. Torch is imported only inside run().
"""

from __future__ import annotations

from dataclasses import dataclass

from ladder_jobs.config import KindConfig, setting

HELP = "self-supervised vision (simclr / simclr_asym / supervised) with the SSL risk decomposition"

DATASETS = ("digits", "shapes")
METHODS = ("simclr", "simclr_asym", "supervised")
HELDOUT = ("test_size", "frac")
APPROX_ESTIMATORS = ("probe", "head")
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class Config(KindConfig, kind="ssl"):
    # data (ships offline: scikit-learn digits upsampled, or seeded synthetic shapes)
    dataset: str = setting("digits", choices=DATASETS)  # digits | shapes
    image_size: int = setting(16, gt=0)  # side of the square grey image the encoder sees (digits are 8x8, upsampled)
    n_pretrain: int = setting(1000, gt=0)  # pre-training set size (digits: capped at what the 1797 images allow)
    n_test: int = setting(500, gt=0)  # test set size (digits: capped at a fifth of the data)
    # the probe-generalization probe is tested on a held-out part of the pre-training set:
    # "test_size" (the paper's estimator) makes it as large as the test set (at most half the
    # pre-training set); "frac" (Ladder's earlier choice) makes it heldout_frac of it
    heldout: str = setting("test_size", choices=HELDOUT)  # test_size | frac
    heldout_frac: float = setting(0.2, gt=0.0, lt=1.0)  # used when heldout = frac
    data_seed: int = setting(0, ge=0)  # dataset generation and splits; `seed` below drives init, batches, augmentation
    # method
    method: str = setting("simclr", choices=METHODS)  # simclr | simclr_asym | supervised
    temperature: float = setting(0.2, gt=0)  # InfoNCE temperature
    proj_dim: int = setting(64, gt=0)  # output of simclr's projection head (simclr_asym maps back to the representation)
    # encoder: a small CNN, `depth` stages of two 3x3 convs; channels double per stage up to 4x
    width: int = setting(16, gt=0)  # channels of the first stage
    depth: int = setting(2, gt=0)  # stages; every stage after the first halves the resolution
    # augmentation (both views; method=supervised uses one view; the approximation estimator none)
    aug_scale: float = setting(0.25, ge=0.0, lt=1.0)  # crop zoom: scale drawn from [1 - aug_scale, 1]
    aug_translate: float = setting(0.15, ge=0)  # shift as a fraction of half the image side
    aug_rotate: float = setting(15.0, ge=0)  # degrees, uniform in [-aug_rotate, aug_rotate]
    aug_jitter: float = setting(0.3, ge=0.0, lt=1.0)  # intensity: x * U[1 - j, 1 + j] + U[-j/3, j/3]
    aug_noise: float = setting(0.05, ge=0)  # std of added Gaussian pixel noise
    # optimisation (AdamW, linear warm-up then cosine to zero)
    steps: int = setting(150, gt=0)  # pre-training steps
    approx_steps: int = -1  # steps of the supervised approximation estimator (no augmentation); -1: = steps
    # how the approximation error is read off that supervised model: "probe" (the paper's) fits
    # the same linear probe as the SSL encoder gets on its frozen encoder, so approximation and
    # usability come from one fitting procedure; "head" (Ladder's earlier choice) uses the
    # training error of its end-to-end classifier head
    approx_estimator: str = setting("probe", choices=APPROX_ESTIMATORS)  # probe | head
    batch_size: int = setting(128, gt=0)
    lr: float = setting(5e-3, gt=0)
    weight_decay: float = setting(1e-4, ge=0)
    warmup_frac: float = setting(0.05, ge=0.0, lt=1.0)  # fraction of the steps spent warming the lr up
    seed: int = setting(0, ge=0)
    # evaluation: linear probes on frozen features (float64 L-BFGS on CPU, deterministic)
    probe_l2: float = setting(1e-3, ge=0)  # L2 penalty of the logistic-regression probe (on standardised features)
    probe_iters: int = setting(100, gt=0)  # L-BFGS iterations per probe
    fewshot_draws: int = setting(3, gt=0)  # seeded draws averaged for each few-shot probe
    risk_fewshot_k: int = setting(5, gt=0)  # shots per class of the few-shot risk decomposition (*_Nshot metrics)
    # run
    checkpoint_every: int = setting(50, ge=0)  # steps between checkpoints (0: only on stop and at the end)
    log_every: int = setting(1, gt=0)  # steps between pushed training points
    device: str = setting("auto", choices=DEVICES)  # auto | cpu | cuda
    # test knob
    step_sleep: float = setting(0.0, ge=0)  # seconds slept per training step, so a test can SIGTERM a running job

    def check(self) -> None:
        if self.image_size < 8 or self.image_size % 4:
            self.bad("image_size", "must be a multiple of 4 and >= 8")
        if 2 ** (self.depth - 1) > self.image_size // 2:
            self.bad("depth", "halves the image too often for image_size")
        if self.approx_steps != -1 and self.approx_steps <= 0:
            self.bad("approx_steps", "must be > 0 or -1 (same as steps)")


# The dict view of the declaration, for callers that merge overrides into it (tests, scripts).
DEFAULTS = Config.defaults()
validate = Config.validate

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


def run(config: dict, ctx) -> None:
    from ladder_jobs.kinds.ssl.train import run as _run  # torch is imported here, not at listing time

    _run(config, ctx)
