"""video: what drives video understanding, in miniature (Apollo's design questions).

Seeded synthetic clips (data.py: a moving, turning sprite that occludes two one-off events and
a blinker, 4-8 s at 8 native fps on a 32x32 canvas) with four temporal tasks: direction, speed
(px per second), order of two events, count of blinks. A per-frame CNN, a token resampler
(pool | perceiver, tokens_per_frame tokens a frame) and a temporal model over the frames
(gru | transformer, padding-masked) feed one head per task (model.py). train.py holds the loop.

    {"preset": "xs", "train_sampling": "uniform", "seed": 1}

Design axes: `train_sampling` (fps | uniform: the paper finds fps-trained models better even
when tested uniformly), `sample_fps`, `uniform_frames`, `tokens_per_frame`, `resampler`,
`temporal`, `enc_width`. Scale axis: presets xs < s < m < l (width, depth, training clips, steps).
Metrics pushed: train_loss (every step), video_tps (tokens per second of video the model saw
in the step), clips_per_s; with eval_every and at the end acc_{fps,uniform}_{task,overall}.
Result: those accuracies, video_tps_{fps,uniform} on the test set, clips_per_s, n_params.
"""

from __future__ import annotations

import math

from ladder_jobs.config import ConfigError

HELP = "synthetic video classification: fps vs uniform frame sampling, perceiver vs pool resampler (torch)"

SAMPLINGS = ("fps", "uniform")
RESAMPLERS = ("perceiver", "pool")
TEMPORALS = ("gru", "transformer")
DEVICES = ("auto", "cpu", "cuda")

# Defaults are the xs rung (a CPU run of ~30 s); the presets below are the scale axis.
DEFAULTS = {
    # data (generated on the fly from the seeds: no downloads)
    "canvas": 32,  # frame side in pixels (a multiple of 4: the encoder halves it twice)
    "native_fps": 8,  # frame rate the clips are "recorded" at
    "min_duration_s": 4.0,  # clip durations are uniform in [min, max] seconds
    "max_duration_s": 8.0,
    "noise": 0.1,  # std of the Gaussian pixel noise
    "n_train": 2000,  # training clips (the data half of the scale axis); batches draw from them
    "n_test": 400,  # test clips, each evaluated under both samplings
    "data_seed": 0,  # which clips; `seed` below drives init and batch order
    # frame sampling (the design axis)
    "train_sampling": "fps",  # fps | uniform; the test set is evaluated with both
    "sample_fps": 2.0,  # fps sampling: frames per second of video (4-8 s -> 8-16 frames)
    "max_frames": 16,  # fps sampling cap: longer clips get max_frames spread evenly
    "uniform_frames": 12,  # uniform sampling: frames per clip, any duration (12 = the fps mean)
    # model
    "enc_width": 16,  # channels of the frame CNN's first conv (second: 2x)
    "d_model": 64,  # token width
    "tokens_per_frame": 4,  # k tokens a frame after the resampler (pool: a perfect square)
    "resampler": "pool",  # pool (average pooling to a sqrt(k) grid) | perceiver (learned latents, cross-attention; slow to start at xs)
    "temporal": "gru",  # gru (over frames, a frame = its k tokens concatenated) | transformer (over all tokens, [CLS])
    "n_layers": 2,  # temporal layers (GRU layers or transformer blocks)
    "n_heads": 4,  # attention heads (temporal model and perceiver); must divide d_model
    "dropout": 0.0,
    # optimisation (AdamW, linear warmup then cosine to lr / 10)
    "steps": 200,
    "batch_size": 32,  # clips per step
    "lr": 2e-3,
    "weight_decay": 0.05,
    "warmup": 20,  # steps
    "grad_clip": 1.0,  # max grad norm; 0 = off
    "seed": 0,
    # run
    "eval_every": 0,  # steps between test evaluations (both samplings); 0 = only at the end
    "eval_batch_size": 100,
    "checkpoint_every": 100,  # steps between checkpoints (0: only on stop and at the end)
    "device": "auto",  # auto (cuda if available) | cpu | cuda; bf16 autocast on cuda
    "step_sleep": 0.0,  # test knob: seconds slept per step, so a test can SIGTERM a running job
}

PRESETS = {
    # scale axis: encoder width, token width, depth and training clips grow together
    "xs": {"enc_width": 16, "d_model": 64, "n_layers": 1, "n_train": 2000, "steps": 200, "batch_size": 32},
    "s": {"enc_width": 32, "d_model": 128, "n_layers": 2, "n_train": 8000, "steps": 1500, "batch_size": 64,
          "n_test": 1000, "checkpoint_every": 250},
    "m": {"enc_width": 64, "d_model": 256, "n_layers": 2, "n_heads": 8, "n_train": 40000, "steps": 4000,
          "batch_size": 128, "n_test": 2000, "lr": 1e-3, "warmup": 200, "checkpoint_every": 500, "eval_every": 1000},
    "l": {"enc_width": 96, "d_model": 384, "n_layers": 3, "n_heads": 8, "n_train": 150000, "steps": 10000,
          "batch_size": 256, "n_test": 4000, "lr": 6e-4, "warmup": 500, "checkpoint_every": 1000,
          "eval_every": 2000, "eval_batch_size": 500},
}


def validate(config: dict) -> None:
    def bad(key: str, why: str) -> ConfigError:
        return ConfigError(f"key '{key}' of kind 'video' {why}, got {config[key]!r}")

    for key, allowed in (("train_sampling", SAMPLINGS), ("resampler", RESAMPLERS), ("temporal", TEMPORALS), ("device", DEVICES)):
        if config[key] not in allowed:
            raise bad(key, f"must be one of {', '.join(allowed)}")
    for key in ("native_fps", "min_duration_s", "n_train", "n_test", "sample_fps", "max_frames", "uniform_frames",
                "enc_width", "d_model", "tokens_per_frame", "n_layers", "n_heads", "steps", "batch_size", "lr",
                "eval_batch_size"):
        if config[key] <= 0:
            raise bad(key, "must be > 0")
    for key in ("noise", "data_seed", "seed", "dropout", "weight_decay", "warmup", "grad_clip", "eval_every",
                "checkpoint_every", "step_sleep"):
        if config[key] < 0:
            raise bad(key, "must be >= 0")
    if config["canvas"] < 16 or config["canvas"] % 4:
        raise bad("canvas", "must be a multiple of 4 and >= 16")
    if config["native_fps"] < 2:
        raise bad("native_fps", "must be >= 2 (events last half a second)")
    if config["max_duration_s"] < config["min_duration_s"]:
        raise bad("max_duration_s", "must be >= min_duration_s")
    fps = config["native_fps"]
    half = math.ceil(0.5 * fps)
    if round(config["min_duration_s"] * fps) < 3 * max(half, int(0.9 * fps)) + 2 * half:
        raise bad("min_duration_s", "is too short for three blinks and their gaps")
    if config["sample_fps"] > fps:
        raise bad("sample_fps", "must be <= native_fps")
    if config["d_model"] % config["n_heads"]:
        raise bad("n_heads", "must divide d_model")
    if not config["dropout"] < 1:
        raise bad("dropout", "must be < 1")
    if config["resampler"] == "pool":
        g = math.isqrt(config["tokens_per_frame"])
        if g * g != config["tokens_per_frame"] or g > config["canvas"] // 4:
            raise bad("tokens_per_frame", f"must be a square <= {(config['canvas'] // 4) ** 2} for resampler 'pool'")


def run(config: dict, ctx) -> None:
    from ladder_jobs.kinds.video.train import train  # torch is imported here, not at listing time

    train(config, ctx)
