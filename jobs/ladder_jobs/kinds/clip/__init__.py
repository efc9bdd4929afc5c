"""clip: language supervision vs image-only contrastive pre-training, on a synthetic world.

The controlled comparison of "Is a Caption Worth a Thousand Images?" (Nguyen et al.): CLIP's
captions help only when the pre-training set is large enough and its captions are descriptive
with low variability. One trial pre-trains the same image encoder either with CLIP (paired
captions, symmetric InfoNCE, learnable temperature) or with SimCLR (images only), for the same
number of steps and batch size, then probes the frozen encoder linearly (full-shot and
few-shot) on downstream tasks of the same world: the pre-training class (shape x texture),
each of its attributes, and the attributes the classes ignore (shade, size, position).

The knobs are exactly the paper's factors: n_pretrain (the scale key), descriptiveness,
variability, label_noise (and nondescriptive_frac, so caption_filter has something to drop);
its prescriptions are caption_filter and caption_rewrite. `continuous` and `distractors` make
the world rich enough for data size to matter (binned continuous attributes, rotation, clutter);
they are off by default so earlier configs keep their numbers, and examples/clip.yaml turns them
on for the ladder that shows the crossing. See data.py for the world, model.py
for the losses, train.py for the loop. Torch (and numpy) are imported only inside run().
"""

from __future__ import annotations

from dataclasses import dataclass

from ladder_jobs.config import KindConfig, setting

HELP = "CLIP vs SimCLR pre-training on a synthetic image-caption world (caption descriptiveness/variability/noise)"

# The world's attributes and their values (data.py renders and captions them). Here, not in
# data.py, so Config can check ranges without numpy.
ATTRS = {
    "shape": ("disk", "square", "triangle", "cross"),
    "texture": ("solid", "stripes", "checker"),
    "shade": ("dark", "mid", "bright"),
    "size": ("small", "large"),
    "position": ("top_left", "top_right", "bottom_left", "bottom_right"),
}
MAX_VARIABILITY = 8  # synonyms per word and style tokens: the largest `variability`
MAX_DISTRACTORS = 4
MAX_PIXELS = 2_000_000_000  # images x pixels over all splits (8 GB of float32): a bound on hostile sizes

METHODS = ("clip", "simclr")
DEVICES = ("auto", "cpu", "cuda")
_NEGATIVE = "must be >= 2 (a contrastive batch needs a negative)"


@dataclass(frozen=True)
class Config(KindConfig, kind="clip"):
    # the world (data.py)
    image_size: int = setting(16, gt=0)  # side of the square grey image
    n_pretrain: int = setting(2000, gt=0)  # image-caption pairs to pre-train on (the scale key)
    descriptiveness: int = setting(5, ge=0, le=len(ATTRS))  # true attributes each caption names, 0..5
    nondescriptive_frac: float = setting(0.0, ge=0.0, lt=1.0)  # fraction of captions naming no attribute at all (style word only)
    variability: int = setting(1, ge=1, le=MAX_VARIABILITY)  # distinct phrasings of one caption content, 1..8
    label_noise: float = setting(0.0, ge=0.0, le=1.0)  # fraction of captions describing another image's attributes
    n_val: int = setting(512, gt=0)  # held-out pairs for val_loss (the pre-training objective)
    n_probe: int = setting(1000, gt=0)  # labelled images the downstream probes train on (few-shot draws from them)
    n_test: int = setting(1000, gt=0)  # labelled images the probes are tested on
    continuous: bool = setting(False)  # position, size and shade drawn within their caption's bin, plus rotation
    distractors: int = setting(0, ge=0, le=MAX_DISTRACTORS)  # small clutter objects per image, 0..4, that no caption names
    data_seed: int = setting(0, ge=0)  # the world; `seed` below drives init, batches and augmentation
    # method
    method: str = setting("clip", choices=METHODS)  # clip | simclr
    caption_filter: int = setting(0, ge=0)  # clip: train only on pairs whose caption names >= this many attributes
    caption_rewrite: bool = setting(False)  # clip: rewrite every caption to one canonical phrasing
    clip_augment: bool = setting(True)  # clip: augment its one image view as simclr does its two
    temperature: float = setting(0.1, gt=0)  # simclr's fixed temperature; clip's initial one (then learned)
    proj_dim: int = setting(64, gt=0)  # output of the projection heads (image and text)
    text_dim: int = setting(64, gt=0)  # clip: token embedding width of the text encoder
    # image encoder (the ssl kind's): `depth` stages of two 3x3 convs, width doubling up to 4x
    width: int = setting(16, gt=0)
    depth: int = setting(2, gt=0)
    # augmentation (ssl.model.augment)
    aug_scale: float = setting(0.25, ge=0.0, lt=1.0)  # crop zoom: scale drawn from [1 - aug_scale, 1]
    aug_translate: float = setting(0.1, ge=0)  # shift as a fraction of half the image side
    aug_rotate: float = setting(10.0, ge=0)  # degrees
    aug_jitter: float = setting(0.2, ge=0.0, lt=1.0)  # intensity gain/bias jitter
    aug_noise: float = setting(0.03, ge=0)  # std of added pixel noise
    # optimisation (AdamW, linear warm-up then cosine to lr / 10)
    steps: int = setting(200, gt=0)
    batch_size: int = setting(128, gt=0)
    lr: float = setting(3e-3, gt=0)
    weight_decay: float = setting(1e-4, ge=0)
    warmup: int = setting(10, ge=0)  # warm-up steps
    seed: int = setting(0, ge=0)
    # evaluation: logistic-regression probes on frozen encoder features (float64 L-BFGS, CPU)
    probe_l2: float = setting(1e-3, ge=0)
    probe_iters: int = setting(100, gt=0)
    fewshot_k: int = setting(5, gt=0)  # shots per class of fewshot_acc
    fewshot_draws: int = setting(3, gt=0)  # seeded draws averaged per task
    eval_every: int = setting(50, ge=0)  # steps between val_loss points (0: only at the end)
    # run
    checkpoint_every: int = setting(50, ge=0)  # steps between checkpoints (0: only on stop and at the end)
    log_every: int = setting(1, gt=0)  # steps between pushed training points
    device: str = setting("auto", choices=DEVICES)  # auto | cpu | cuda
    # test knob
    step_sleep: float = setting(0.0, ge=0)  # seconds slept per step, so a test can SIGTERM a running job

    def check(self) -> None:
        for key in ("n_pretrain", "n_val", "batch_size"):
            if getattr(self, key) < 2:
                self.bad(key, _NEGATIVE)
        if self.caption_filter > self.descriptiveness:
            self.bad("caption_filter", f"drops every caption: captions name at most descriptiveness="
                     f"{self.descriptiveness} attributes")
        if self.image_size < 8 or self.image_size % 4 or self.image_size > 256:
            self.bad("image_size", "must be a multiple of 4 in 8..256")
        if 2 ** (self.depth - 1) > self.image_size // 2:
            self.bad("depth", "halves the image too often for image_size")
        images = self.n_pretrain + self.n_val + self.n_probe + self.n_test
        if images * self.image_size ** 2 > MAX_PIXELS:
            self.bad("n_pretrain", f"with n_val, n_probe, n_test and image_size makes over {MAX_PIXELS} pixels")


# The dict view of the declaration, for callers that merge overrides into it (tests, scripts).
DEFAULTS = Config.defaults()
validate = Config.validate

PRESETS = {
    # xs, s: CPU-sized (xs: about a minute on 2 shared CPU cores, s: several); m, l: GPU-sized
    "xs": {"width": 16, "depth": 2, "image_size": 16, "n_pretrain": 2000, "steps": 200, "batch_size": 128},
    "s": {"width": 24, "depth": 3, "image_size": 16, "n_pretrain": 8000, "steps": 500, "batch_size": 128},
    "m": {"width": 64, "depth": 3, "image_size": 32, "n_pretrain": 50000, "steps": 3000, "batch_size": 256,
          "n_probe": 3000, "n_test": 3000, "checkpoint_every": 250, "eval_every": 250},
    "l": {"width": 128, "depth": 4, "image_size": 32, "n_pretrain": 200000, "steps": 10000, "batch_size": 512,
          "n_probe": 5000, "n_test": 5000, "n_val": 2048, "checkpoint_every": 500, "eval_every": 500,
          "log_every": 10},
}


def run(config: dict, ctx) -> None:
    from ladder_jobs.kinds.clip.train import run as _run  # torch is imported here, not at listing time

    _run(config, ctx)
