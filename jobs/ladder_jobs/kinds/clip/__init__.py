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

from ladder_jobs.config import ConfigError

HELP = "CLIP vs SimCLR pre-training on a synthetic image-caption world (caption descriptiveness/variability/noise)"

# The world's attributes and their values (data.py renders and captions them). Here, not in
# data.py, so validate() can check ranges without numpy.
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

DEFAULTS = {
    # the world (data.py)
    "image_size": 16,  # side of the square grey image
    "n_pretrain": 2000,  # image-caption pairs to pre-train on (the scale key)
    "descriptiveness": 5,  # true attributes each caption names, 0..5
    "nondescriptive_frac": 0.0,  # fraction of captions naming no attribute at all (style word only)
    "variability": 1,  # distinct phrasings of one caption content, 1..8
    "label_noise": 0.0,  # fraction of captions describing another image's attributes
    "n_val": 512,  # held-out pairs for val_loss (the pre-training objective)
    "n_probe": 1000,  # labelled images the downstream probes train on (few-shot draws from them)
    "n_test": 1000,  # labelled images the probes are tested on
    "continuous": False,  # position, size and shade drawn within their caption's bin, plus rotation
    "distractors": 0,  # small clutter objects per image, 0..4, that no caption names
    "data_seed": 0,  # the world; `seed` below drives init, batches and augmentation
    # method
    "method": "clip",  # clip | simclr
    "caption_filter": 0,  # clip: train only on pairs whose caption names >= this many attributes
    "caption_rewrite": False,  # clip: rewrite every caption to one canonical phrasing
    "clip_augment": True,  # clip: augment its one image view as simclr does its two
    "temperature": 0.1,  # simclr's fixed temperature; clip's initial one (then learned)
    "proj_dim": 64,  # output of the projection heads (image and text)
    "text_dim": 64,  # clip: token embedding width of the text encoder
    # image encoder (the ssl kind's): `depth` stages of two 3x3 convs, width doubling up to 4x
    "width": 16,
    "depth": 2,
    # augmentation (ssl.model.augment)
    "aug_scale": 0.25,  # crop zoom: scale drawn from [1 - aug_scale, 1]
    "aug_translate": 0.1,  # shift as a fraction of half the image side
    "aug_rotate": 10.0,  # degrees
    "aug_jitter": 0.2,  # intensity gain/bias jitter
    "aug_noise": 0.03,  # std of added pixel noise
    # optimisation (AdamW, linear warm-up then cosine to lr / 10)
    "steps": 200,
    "batch_size": 128,
    "lr": 3e-3,
    "weight_decay": 1e-4,
    "warmup": 10,  # warm-up steps
    "seed": 0,
    # evaluation: logistic-regression probes on frozen encoder features (float64 L-BFGS, CPU)
    "probe_l2": 1e-3,
    "probe_iters": 100,
    "fewshot_k": 5,  # shots per class of fewshot_acc
    "fewshot_draws": 3,  # seeded draws averaged per task
    "eval_every": 50,  # steps between val_loss points (0: only at the end)
    # run
    "checkpoint_every": 50,  # steps between checkpoints (0: only on stop and at the end)
    "log_every": 1,  # steps between pushed training points
    "device": "auto",  # auto | cpu | cuda
    # test knob
    "step_sleep": 0.0,  # seconds slept per step, so a test can SIGTERM a running job
}

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

METHODS = ("clip", "simclr")
DEVICES = ("auto", "cpu", "cuda")


def validate(config: dict) -> None:
    def bad(key: str, why: str) -> ConfigError:
        return ConfigError(f"key '{key}' of kind 'clip' {why}, got {config[key]!r}")

    for key, allowed in (("method", METHODS), ("device", DEVICES)):
        if config[key] not in allowed:
            raise bad(key, f"must be one of {', '.join(allowed)}")
    for key in ("image_size", "n_pretrain", "n_val", "n_probe", "n_test", "width", "depth", "steps", "batch_size",
                "proj_dim", "text_dim", "probe_iters", "fewshot_k", "fewshot_draws", "log_every", "temperature",
                "lr"):
        if config[key] <= 0:
            raise bad(key, "must be > 0")
    for key in ("caption_filter", "aug_scale", "aug_translate", "aug_rotate", "aug_jitter", "aug_noise",
                "weight_decay", "warmup", "probe_l2", "eval_every", "checkpoint_every", "data_seed", "seed",
                "step_sleep"):
        if config[key] < 0:
            raise bad(key, "must be >= 0")
    for key in ("n_pretrain", "n_val", "batch_size"):
        if config[key] < 2:
            raise bad(key, "must be >= 2 (a contrastive batch needs a negative)")
    if not 0 <= config["distractors"] <= MAX_DISTRACTORS:
        raise bad("distractors", f"must be in 0..{MAX_DISTRACTORS}")
    if not 0 <= config["descriptiveness"] <= len(ATTRS):
        raise bad("descriptiveness", f"must be in 0..{len(ATTRS)} (the attributes an image has)")
    if not 1 <= config["variability"] <= MAX_VARIABILITY:
        raise bad("variability", f"must be in 1..{MAX_VARIABILITY}")
    if not 0.0 <= config["label_noise"] <= 1.0:
        raise bad("label_noise", "must be in [0, 1]")
    if not 0.0 <= config["nondescriptive_frac"] < 1.0:
        raise bad("nondescriptive_frac", "must be in [0, 1)")
    if config["caption_filter"] > config["descriptiveness"]:
        raise bad("caption_filter", f"drops every caption: captions name at most descriptiveness="
                  f"{config['descriptiveness']} attributes")
    if config["image_size"] < 8 or config["image_size"] % 4 or config["image_size"] > 256:
        raise bad("image_size", "must be a multiple of 4 in 8..256")
    if 2 ** (config["depth"] - 1) > config["image_size"] // 2:
        raise bad("depth", "halves the image too often for image_size")
    if config["aug_scale"] >= 1.0 or config["aug_jitter"] >= 1.0:
        raise ConfigError("keys 'aug_scale' and 'aug_jitter' of kind 'clip' must be < 1")
    images = config["n_pretrain"] + config["n_val"] + config["n_probe"] + config["n_test"]
    if images * config["image_size"] ** 2 > MAX_PIXELS:
        raise bad("n_pretrain", f"with n_val, n_probe, n_test and image_size makes over {MAX_PIXELS} pixels")


def run(config: dict, ctx) -> None:
    from ladder_jobs.kinds.clip.train import run as _run  # torch is imported here, not at listing time

    _run(config, ctx)
