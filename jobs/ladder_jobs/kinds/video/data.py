"""Synthetic videos with temporal labels, and the two frame samplers (numpy only, no torch).

A clip is a *spec* (a few numbers drawn from an RNG seeded by (data_seed, split, index)); its
frames are rendered on demand, only at the native frame indices a sampler picks, so a long
clip costs what the model sees, not what it lasts. Everything is a pure function of the spec
and the frame index (the pixel noise too), so a frame looks the same whichever sampler asks.

Canvas (grey, 0 background, `canvas` x `canvas`, clips `min_duration_s`..`max_duration_s` long
at `native_fps`):
  * the main object: an asymmetric 5x5 sprite (one of 3) moving in a straight line along one
    axis at a constant speed, turning by 90 degrees every few frames (a nuisance: its
    orientation says nothing about where it goes). It is drawn last, so it occludes the rest.
  * event A (top-left 4x4 patch) and event B (top-right 4x4 patch) each light up once, for
    0.5-1 s, never overlapping.
  * a blinker (bottom-centre 3x3 patch) lights up 1, 2 or 3 times, for 0.5-0.9 s each, with
    gaps of at least 0.5 s.
Tasks (all need more than one frame):
  direction  4 classes: right, left, down, up (the sign and axis of the displacement)
  speed      2 classes: slow / fast, in pixels per SECOND; telling them apart needs the time
             between frames, which fps sampling keeps fixed and uniform sampling does not
  order      2 classes: A lit before B (0) or after (1)
  count      3 classes: the blinker lit 1 / 2 / 3 times
Events last >= 0.5 s and gaps are >= 0.5 s, so fps sampling at >= 2 fps never misses one or
merges two; uniform sampling of a long clip can (the stride exceeds 0.5 s): that and the
speed ambiguity are the effects the frame-sampling axis measures (Apollo, Zohar et al. 2024).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

TASKS = {"direction": 4, "speed": 2, "order": 2, "count": 3}  # task -> number of classes
DIRECTIONS = ((1, 0), (-1, 0), (0, 1), (0, -1))  # (dx, dy) per direction class; y grows downwards
SAMPLINGS = ("fps", "uniform")
SPRITE = 5  # side of the main object
EVENT = 4  # side of the event A / B patches
BLINK = 3  # side of the blinker patch
SLOW = (0.30, 0.45)  # slow speeds, as a fraction of the top speed that still fits the canvas
FAST = (0.75, 1.00)  # fast speeds: the gap between the ranges makes the label unambiguous
SPLITS = {"train": 0, "test": 1}

# three asymmetric sprites (no rotation maps one onto itself), drawn with value 1.0
_SPRITES = [
    np.array(s, dtype=np.float32)
    for s in (
        [[1, 1, 1, 1, 1], [1, 0, 0, 0, 0], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0], [1, 0, 0, 0, 0]],  # F
        [[1, 0, 0, 0, 0], [1, 0, 0, 0, 0], [1, 0, 0, 0, 0], [1, 0, 0, 0, 0], [1, 1, 1, 1, 1]],  # L
        [[1, 1, 1, 1, 0], [1, 0, 0, 1, 0], [1, 1, 1, 1, 0], [1, 0, 0, 0, 0], [1, 0, 0, 0, 1]],  # R-ish
    )
]


@dataclass(frozen=True)
class Clip:
    n_native: int  # frames at the native rate
    fps: int  # native frame rate
    direction: int  # class index into DIRECTIONS
    speed: float  # pixels per second
    fast: int  # speed class
    x0: float  # top-left of the sprite at frame 0
    y0: float
    sprite: int
    rot_period: int  # native frames between 90-degree turns
    rot_sign: int  # +1 / -1
    event_a: tuple  # [start, end) native frames
    event_b: tuple
    blinks: tuple  # ((start, end), ...)
    noise_seed: int

    @property
    def duration_s(self) -> float:
        return self.n_native / self.fps

    @property
    def labels(self) -> dict:
        return {
            "direction": self.direction,
            "speed": self.fast,
            "order": int(self.event_b[0] < self.event_a[0]),
            "count": len(self.blinks) - 1,
        }

    def position(self, f: int) -> tuple[int, int]:
        """Integer top-left of the sprite at native frame f."""
        dx, dy = DIRECTIONS[self.direction]
        t = f / self.fps
        return int(round(self.x0 + dx * self.speed * t)), int(round(self.y0 + dy * self.speed * t))


def _place(rng: np.random.Generator, n: int, lengths: list[int], min_gap: int) -> list[tuple[int, int]]:
    """Non-overlapping [start, end) intervals of the given lengths, in order, inside [0, n),
    at least min_gap apart: the slack is split at random between the n+1 gaps."""
    slack = n - sum(lengths) - min_gap * (len(lengths) - 1)
    assert slack >= 0, (n, lengths, min_gap)
    cuts = np.sort(rng.integers(0, slack + 1, size=len(lengths)))
    out, t = [], 0
    for i, length in enumerate(lengths):
        start = t + int(cuts[i]) - (int(cuts[i - 1]) if i else 0)
        out.append((start, start + length))
        t = start + length + min_gap
    assert out[-1][1] <= n
    return out


def make_clip(cfg: dict, split: str, index: int) -> Clip:
    """The spec of clip `index` of a split: a pure function of (data_seed, split, index)."""
    rng = np.random.default_rng([cfg["data_seed"], SPLITS[split], index])
    fps, canvas = cfg["native_fps"], cfg["canvas"]
    lo, hi = round(cfg["min_duration_s"] * fps), round(cfg["max_duration_s"] * fps)
    n = int(rng.integers(lo, hi + 1))
    half = math.ceil(0.5 * fps)  # shortest event and gap: half a second
    # main object: the top speed is the one that crosses the free canvas in the longest clip
    room = canvas - SPRITE
    v_top = room / cfg["max_duration_s"]
    direction = int(rng.integers(4))
    fast = int(rng.integers(2))
    speed = float(rng.uniform(*(FAST if fast else SLOW))) * v_top
    travel = speed * (n - 1) / fps
    dx, dy = DIRECTIONS[direction]
    along = rng.uniform(0, room - travel)  # start so that the whole path stays on the canvas
    along = along if (dx + dy) > 0 else room - along
    across = rng.uniform(0, room)
    x0, y0 = (along, across) if dx else (across, along)
    # events A and B, once each, in a random order
    la, lb = (int(rng.integers(half, 2 * half + 1)) for _ in range(2))
    first, second = _place(rng, n, [la, lb], min_gap=1)
    a, b = (first, second) if rng.integers(2) == 0 else (second, first)
    # the blinker: 1..3 appearances
    k = int(rng.integers(1, 4))
    long_blink = max(half, int(0.9 * fps))  # 0.5-0.9 s
    blinks = _place(rng, n, [int(rng.integers(half, long_blink + 1)) for _ in range(k)], min_gap=half)
    return Clip(
        n_native=n, fps=fps, direction=direction, speed=speed, fast=fast, x0=float(x0), y0=float(y0),
        sprite=int(rng.integers(len(_SPRITES))), rot_period=int(rng.integers(half, 3 * half + 1)),
        rot_sign=1 if rng.integers(2) else -1, event_a=tuple(a), event_b=tuple(b),
        blinks=tuple(tuple(x) for x in blinks), noise_seed=int(rng.integers(2**31)),
    )


NOISE_BANK = 1024  # noise images shared by all clips (a fresh RNG per frame costs more than the model)


def noise_bank(canvas: int, data_seed: int) -> np.ndarray:
    """(NOISE_BANK, canvas, canvas) standard-normal float32 images."""
    return np.random.default_rng([data_seed, 99]).standard_normal((NOISE_BANK, canvas, canvas), dtype=np.float32)


def render(clip: Clip, frames: np.ndarray, canvas: int, noise: float, bank: np.ndarray | None = None) -> np.ndarray:
    """(len(frames), canvas, canvas) float32 images at the given native frame indices."""
    out = np.zeros((len(frames), canvas, canvas), dtype=np.float32)
    c = canvas // 2
    for i, f in enumerate(frames):
        f = int(f)
        assert 0 <= f < clip.n_native, (f, clip.n_native)
        img = out[i]
        if noise > 0:  # picked by (clip, frame): the same frame gets the same noise in any sampling
            assert bank is not None and bank.shape[1:] == img.shape
            img += noise * bank[(clip.noise_seed + 7919 * f) % len(bank)]
        if clip.event_a[0] <= f < clip.event_a[1]:
            img[1 : 1 + EVENT, 1 : 1 + EVENT] += 0.8
        if clip.event_b[0] <= f < clip.event_b[1]:
            img[1 : 1 + EVENT, canvas - 1 - EVENT : canvas - 1] += 0.8
        if any(s <= f < e for s, e in clip.blinks):
            img[canvas - 1 - BLINK : canvas - 1, c - 1 : c - 1 + BLINK] += 0.6
        x, y = clip.position(f)
        sprite = np.rot90(_SPRITES[clip.sprite], k=clip.rot_sign * (f // clip.rot_period))
        patch = img[y : y + SPRITE, x : x + SPRITE]
        patch[sprite > 0] = 1.0  # occludes whatever is under it (the noise too)
    return out


def sample_frames(n_native: int, native_fps: int, mode: str, sample_fps: float, max_frames: int,
                  uniform_frames: int) -> np.ndarray:
    """Native frame indices the model sees.

    fps:     one frame every native_fps / sample_fps native frames from the start, so a longer
             clip gives more frames; past max_frames it falls back to max_frames spread evenly
             (the cap a real system needs; the default durations never reach it).
    uniform: uniform_frames frames at the centres of equal segments, whatever the duration, so
             the time between frames grows with the clip.
    """
    if mode == "fps":
        stride = native_fps / sample_fps
        n = math.ceil(n_native / stride - 1e-9)
        if n <= max_frames:
            idx = np.floor(np.arange(n) * stride + 1e-9).astype(np.int64)
        else:
            idx = np.floor((np.arange(max_frames) + 0.5) * n_native / max_frames).astype(np.int64)
    elif mode == "uniform":
        idx = np.floor((np.arange(uniform_frames) + 0.5) * n_native / uniform_frames).astype(np.int64)
    else:
        raise ValueError(f"unknown sampling {mode!r}")
    assert len(idx) >= 1 and idx[0] >= 0 and idx[-1] < n_native and np.all(np.diff(idx) >= 0), idx
    return idx


class VideoData:
    """Clip specs of both splits, and padded batches of rendered, sampled frames."""

    def __init__(self, cfg: dict):
        self.cfg = cfg
        self.bank = noise_bank(cfg["canvas"], cfg["data_seed"])
        self._train: dict[int, Clip] = {}  # specs made on first use: the l preset has 150k clips
        self.test = [make_clip(cfg, "test", i) for i in range(cfg["n_test"])]

    def train_clip(self, i: int) -> Clip:
        if i not in self._train:
            self._train[i] = make_clip(self.cfg, "train", i)
        return self._train[i]

    def frames_of(self, clip: Clip, mode: str) -> np.ndarray:
        c = self.cfg
        return sample_frames(clip.n_native, c["native_fps"], mode, c["sample_fps"], c["max_frames"], c["uniform_frames"])

    def batch(self, clips: list[Clip], mode: str) -> dict:
        """video (B, T, H, W) float32 zero-padded to the longest, lengths (B,), labels {task: (B,)},
        video_tokens: frames seen per second of video, summed (times tokens_per_frame later)."""
        idx = [self.frames_of(c, mode) for c in clips]
        T, H = max(len(i) for i in idx), self.cfg["canvas"]
        video = np.zeros((len(clips), T, H, H), dtype=np.float32)
        for b, (clip, fr) in enumerate(zip(clips, idx)):
            video[b, : len(fr)] = render(clip, fr, H, self.cfg["noise"], self.bank)
        return {
            "video": video,
            "lengths": np.array([len(i) for i in idx], dtype=np.int64),
            "labels": {t: np.array([c.labels[t] for c in clips], dtype=np.int64) for t in TASKS},
            "frames_per_video_s": float(sum(len(i) / c.duration_s for i, c in zip(idx, clips))),
        }

    def train_batch(self, step: int) -> dict:
        """The batch of a training step: a function of (seed, step), so a resume replays it."""
        rng = np.random.default_rng([self.cfg["seed"], 2, step])
        pick = rng.integers(0, self.cfg["n_train"], size=self.cfg["batch_size"])
        return self.batch([self.train_clip(int(i)) for i in pick], self.cfg["train_sampling"])

    def test_batches(self, mode: str, batch_size: int):
        for s in range(0, len(self.test), batch_size):
            yield self.batch(self.test[s : s + batch_size], mode)
