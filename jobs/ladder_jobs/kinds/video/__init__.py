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

from dataclasses import dataclass

from ladder_jobs.config import KindConfig, setting

HELP = "synthetic video classification: fps vs uniform frame sampling, perceiver vs pool resampler (torch)"

SAMPLINGS = ("fps", "uniform")
RESAMPLERS = ("perceiver", "pool")
TEMPORALS = ("gru", "transformer")
DEVICES = ("auto", "cpu", "cuda")

# Defaults are the xs rung (a CPU run of ~30 s); the presets below are the scale axis.
@dataclass(frozen=True)
class Config(KindConfig, kind="video"):
    # data (generated on the fly from the seeds: no downloads)
    canvas: int = 32  # frame side in pixels (a multiple of 4: the encoder halves it twice)
    native_fps: int = setting(8, gt=0)  # frame rate the clips are "recorded" at
    min_duration_s: float = setting(4.0, gt=0)  # clip durations are uniform in [min, max] seconds
    max_duration_s: float = 8.0
    noise: float = setting(0.1, ge=0)  # std of the Gaussian pixel noise
    n_train: int = setting(2000, gt=0)  # training clips (the data half of the scale axis); batches draw from them
    n_test: int = setting(400, gt=0)  # test clips, each evaluated under both samplings
    data_seed: int = setting(0, ge=0)  # which clips; `seed` below drives init and batch order
    # frame sampling (the design axis)
    train_sampling: str = setting("fps", choices=SAMPLINGS)  # fps | uniform; the test set is evaluated with both
    sample_fps: float = setting(2.0, gt=0)  # fps sampling: frames per second of video (4-8 s -> 8-16 frames)
    max_frames: int = setting(16, gt=0)  # fps sampling cap: longer clips get max_frames spread evenly
    uniform_frames: int = setting(12, gt=0)  # uniform sampling: frames per clip, any duration (12 = the fps mean)
    # model
    enc_width: int = setting(16, gt=0)  # channels of the frame CNN's first conv (second: 2x)
    d_model: int = setting(64, gt=0)  # token width
    tokens_per_frame: int = setting(4, gt=0)  # k tokens a frame after the resampler (pool: a perfect square)
    resampler: str = setting("pool", choices=RESAMPLERS)  # pool (average pooling to a sqrt(k) grid) | perceiver (learned latents, cross-attention; slow to start at xs)
    temporal: str = setting("gru", choices=TEMPORALS)  # gru (over frames, a frame = its k tokens concatenated) | transformer (over all tokens, [CLS])
    n_layers: int = setting(2, gt=0)  # temporal layers (GRU layers or transformer blocks)
    n_heads: int = setting(4, gt=0)  # attention heads (temporal model and perceiver); must divide d_model
    dropout: float = setting(0.0, ge=0.0, lt=1.0)
    # optimisation (AdamW, linear warmup then cosine to lr / 10)
    steps: int = setting(200, gt=0)
    batch_size: int = setting(32, gt=0)  # clips per step
    lr: float = setting(2e-3, gt=0)
    weight_decay: float = setting(0.05, ge=0)
    warmup: int = setting(20, ge=0)  # steps
    grad_clip: float = setting(1.0, ge=0)  # max grad norm; 0 = off
    seed: int = setting(0, ge=0)
    # run
    eval_every: int = setting(0, ge=0)  # steps between test evaluations (both samplings); 0 = only at the end
    eval_batch_size: int = setting(100, gt=0)
    checkpoint_every: int = setting(100, ge=0)  # steps between checkpoints (0: only on stop and at the end)
    device: str = setting("auto", choices=DEVICES)  # auto (cuda if available) | cpu | cuda; bf16 autocast on cuda
    step_sleep: float = setting(0.0, ge=0)  # test knob: seconds slept per step, so a test can SIGTERM a running job

    def check(self) -> None:
        if self.canvas < 16 or self.canvas % 4:
            self.bad("canvas", "must be a multiple of 4 and >= 16")
        if self.native_fps < 2:
            self.bad("native_fps", "must be >= 2 (events last half a second)")
        if self.max_duration_s < self.min_duration_s:
            self.bad("max_duration_s", "must be >= min_duration_s")
        fps = self.native_fps
        half = math.ceil(0.5 * fps)
        if round(self.min_duration_s * fps) < 3 * max(half, int(0.9 * fps)) + 2 * half:
            self.bad("min_duration_s", "is too short for three blinks and their gaps")
        if self.sample_fps > fps:
            self.bad("sample_fps", "must be <= native_fps")
        if self.d_model % self.n_heads:
            self.bad("n_heads", "must divide d_model")
        if self.resampler == "pool":
            g = math.isqrt(self.tokens_per_frame)
            if g * g != self.tokens_per_frame or g > self.canvas // 4:
                self.bad("tokens_per_frame", f"must be a square <= {(self.canvas // 4) ** 2} for resampler 'pool'")


# The dict view of the declaration, for callers that merge overrides into it (tests, scripts).
DEFAULTS = Config.defaults()
validate = Config.validate

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


def run(config: dict, ctx) -> None:
    from ladder_jobs.kinds.video.train import train  # torch is imported here, not at listing time

    train(config, ctx)
