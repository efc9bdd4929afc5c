"""instaaug: learned input-specific augmentation (InstaAug, Miao et al., ICML 2023).

One trial = train a classifier (method=supervised) or a SimCLR encoder (method=simclr, two
views of each image) on a seeded synthetic dataset whose right invariance differs between two
input groups (data.py), with augmentation aug=none, fixed (one input-independent range per
transformation) or instaaug (a module predicts each input's ranges, trained end to end with the
entropy regulariser; model.py). Reports test accuracy overall and per group (simclr: of a
linear probe on the frozen encoder) and the transformation ranges per group, so a user can see
whether the learned ranges differ where they should (rotation: small for group A, wide for B).

Config keys live in DEFAULTS (commented); presets xs..l grow the network, the data and the
steps. Torch is imported only inside run().
"""

from __future__ import annotations

from dataclasses import dataclass

from ladder_jobs.config import KindConfig, setting

HELP = "learned input-specific augmentation (none / fixed / instaaug) for supervised or simclr training (torch)"

METHODS = ("supervised", "simclr")
AUGS = ("none", "fixed", "instaaug")
DEVICES = ("auto", "cpu", "cuda")
MAX_IMAGES = 1_000_000  # n_train + n_test: the rendered set lives in memory


@dataclass(frozen=True)
class Config(KindConfig, kind="instaaug"):
    # data: seeded synthetic images, group A (class = bar orientation) and B (class = shape)
    image_size: int = setting(16, gt=0)  # side of the square grey image
    n_train: int = setting(512, gt=0)  # training images (few enough that invariance matters for B)
    n_test: int = setting(1024, gt=0)
    group_b_frac: float = setting(0.5, gt=0.0, lt=1.0)  # share of group B images
    data_seed: int = setting(0, ge=0)  # dataset generation; `seed` below drives init, batches, sampled transforms
    # method and augmentation
    method: str = setting("supervised", choices=METHODS)  # supervised | simclr (NT-Xent on two augmented views, then a linear probe)
    aug: str = setting("instaaug", choices=AUGS)  # none | fixed | instaaug
    temperature: float = setting(0.2, gt=0)  # simclr's NT-Xent temperature
    proj_dim: int = setting(32, gt=0)  # simclr's projection head output
    # aug=fixed: the usual input-independent box, symmetric around the identity (half-ranges)
    fixed_rotate: float = setting(45.0, ge=0.0, le=180.0)  # degrees
    fixed_scale: float = setting(0.15, ge=0)  # log zoom
    fixed_translate: float = setting(0.1, ge=0)  # fraction of half the image side
    fixed_gain: float = setting(0.2, ge=0)  # log intensity gain
    # aug=instaaug: caps of the learned half-ranges (same units), where they start, the module
    max_rotate: float = setting(180.0, gt=0.0, le=180.0)
    max_scale: float = setting(0.4, gt=0)
    max_translate: float = setting(0.25, gt=0)
    max_gain: float = setting(0.5, gt=0)
    init_range: float = setting(0.2, gt=0.0, lt=1.0)  # every half-range starts at this fraction of its cap, in (0, 1)
    entropy_weight: float = setting(0.1, ge=0)  # lambda of the -lambda * H regulariser
    # lambda ramps up linearly from 0 over this fraction of the steps: at full lambda from the
    # start, ranges widen before the classifier has learnt anything that augmentation could
    # break, and a range at its cap (sigmoid saturated) cannot come back down
    entropy_warmup_frac: float = setting(0.3, ge=0.0, lt=1.0)
    aug_width: int = setting(8, gt=0)  # channels of the augmentation module's first conv
    aug_lr: float = setting(3e-3, gt=0)  # its learning rate (same schedule as the model's)
    # encoder: the ssl kind's CNN, `depth` stages of two 3x3 convs
    width: int = setting(16, gt=0)
    depth: int = setting(2, gt=0)
    # optimisation (AdamW, linear warm-up then cosine to zero)
    steps: int = setting(400, gt=0)
    batch_size: int = setting(64, gt=0)
    lr: float = setting(3e-3, gt=0)
    weight_decay: float = setting(1e-4, ge=0)
    warmup_frac: float = setting(0.05, ge=0.0, lt=1.0)
    seed: int = setting(0, ge=0)
    # evaluation of simclr: a linear probe on the frozen encoder (float64 L-BFGS on CPU)
    probe_l2: float = setting(1e-3, ge=0)
    probe_iters: int = setting(100, gt=0)
    # run
    checkpoint_every: int = setting(100, ge=0)  # steps between checkpoints (0: only on stop and at the end)
    log_every: int = setting(1, gt=0)  # steps between pushed training points
    device: str = setting("auto", choices=DEVICES)  # auto | cpu | cuda
    # test knob
    step_sleep: float = setting(0.0, ge=0)  # seconds slept per training step, so a test can SIGTERM a running job

    def check(self) -> None:
        if self.image_size < 8 or self.image_size % 4 or self.image_size > 128:
            self.bad("image_size", "must be a multiple of 4 in [8, 128]")
        if 2 ** (self.depth - 1) > self.image_size // 2:
            self.bad("depth", "halves the image too often for image_size")
        if self.n_train + self.n_test > MAX_IMAGES:
            self.bad("n_train", f"plus n_test must be at most {MAX_IMAGES}")
        if self.method == "simclr" and self.n_train < 2:
            self.bad("n_train", "must be >= 2 for simclr (a batch needs negatives)")


# The dict view of the declaration, for callers that merge overrides into it (tests, scripts).
DEFAULTS = Config.defaults()
validate = Config.validate

PRESETS = {
    # xs, s: CPU-sized (xs: well under a minute on 2 idle cores); m, l: GPU-sized
    "xs": {"width": 16, "depth": 2, "image_size": 16, "n_train": 512, "steps": 400, "batch_size": 64},
    "s": {"width": 24, "depth": 2, "image_size": 16, "n_train": 4096, "steps": 1500, "batch_size": 128},
    "m": {"width": 48, "depth": 3, "image_size": 32, "n_train": 20000, "n_test": 4096, "steps": 5000,
          "batch_size": 256, "aug_width": 16},
    "l": {"width": 96, "depth": 3, "image_size": 32, "n_train": 100000, "n_test": 10000, "steps": 20000,
          "batch_size": 512, "aug_width": 32, "checkpoint_every": 1000, "log_every": 10},
}


def run(config: dict, ctx) -> None:
    from ladder_jobs.kinds.instaaug.train import run as _run  # torch is imported here, not at listing time

    _run(config, ctx)
