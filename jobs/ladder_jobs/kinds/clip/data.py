"""The seeded synthetic image–caption world (numpy only, seeded by data_seed).

An image is rendered from five attributes (ATTRS): shape, texture, shade (foreground
intensity: the images are grey, as the shared Encoder expects), size and position, plus
nuisance (jitter of position/size/shade, background level, pixel noise). Two knobs make the
world rich enough that the number of pre-training pairs matters (at 288 discrete attribute
combinations, 1000 pairs already cover every one):

  continuous          shade, size and position are drawn uniformly within their value's bin
                      (the caption, like the downstream label, names only the bin) and the
                      object is rotated by up to 30 degrees, a nuisance no caption names
  distractors d       d small objects of random shape, texture, shade and place under the
                      main one: clutter the captions never mention, by which CLIP can tell
                      apart (memorise) the pairs of a small set without learning the object

The pre-training
"classes" are shape x texture (CLASS_ATTRS); shade, size and position are attributes the
classes ignore. Downstream tasks (TASKS) ask for the class and for every single attribute,
so a probe shows what a representation kept of both kinds.

A caption is tokens, not English: a style token, then one word per named attribute.

  descriptiveness k   a caption names exactly k of its image's true attributes (a seeded
                      random subset per caption); `nondescriptive_frac` of captions name none
  variability v       the number of phrasings of any one content: phrasing p in [0, v) uses
                      style token p and the p-th synonym of every word, in the p-th word
                      order, so one content has exactly v distinct token sequences
  label_noise         this fraction of captions describe another image's attributes
                      (its content; the phrasing is drawn as usual)

The paper's prescriptions act on the captions after that:
  caption_filter m    CLIP keeps only the pairs whose caption names >= m attributes
  caption_rewrite     every caption rewritten to phrasing 0 (canonical: variability 1)
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from ladder_jobs.kinds.clip import ATTRS, MAX_VARIABILITY

ATTR_NAMES = tuple(ATTRS)
N_ATTRS = len(ATTRS)
CLASS_ATTRS = ("shape", "texture")
TASKS = ("class",) + ATTR_NAMES  # class = shape x texture, 12-way
CLASS_TASKS = ("class",) + CLASS_ATTRS  # tasks the pre-training classes are built from
OTHER_TASKS = tuple(a for a in ATTR_NAMES if a not in CLASS_ATTRS)

# token ids: 0 pads; 1..MAX_VARIABILITY are style tokens; then the words
PAD = 0
_WORD0 = 1 + MAX_VARIABILITY
_VALUE_OFFSET = np.cumsum([0] + [len(v) for v in ATTRS.values()])[:-1]  # first value id of each attribute
VOCAB_SIZE = _WORD0 + int(sum(len(v) for v in ATTRS.values())) * MAX_VARIABILITY
CAPTION_LEN = 1 + N_ATTRS
# phrasing p orders the named attributes as the p-th of these permutations (a fixed table, so
# phrasings do not change between versions of numpy)
_ORDERS = np.array(list(itertools.permutations(range(N_ATTRS)))[:: 120 // MAX_VARIABILITY][:MAX_VARIABILITY])

_SHADE = (0.45, 0.7, 0.95)
_HALF_EXTENT = (0.32, 0.55)
_CENTRE = ((-0.4, -0.4), (0.4, -0.4), (-0.4, 0.4), (0.4, 0.4))  # (x, y), y down


def word_token(attr: int, value: int, synonym: int) -> int:
    return _WORD0 + (int(_VALUE_OFFSET[attr]) + value) * MAX_VARIABILITY + synonym


def sample_attributes(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, N_ATTRS) int64, every attribute uniform and independent."""
    return np.stack([rng.integers(0, len(v), n) for v in ATTRS.values()], 1).astype(np.int64)


# continuous world: each binned attribute is drawn uniformly within its value's bin (the caption
# and the downstream label name the bin), so a value is a range of renderings, not one
_SHADE_BINS = ((0.4, 0.6), (0.6, 0.8), (0.8, 1.0))
_HALF_BINS = ((0.26, 0.42), (0.42, 0.6))
_CENTRE_RANGE = (0.08, 0.55)  # |x|, |y| of the centre within its quadrant
_MAX_ROTATE = 30.0  # degrees of rotation, a nuisance no caption names
_DISTRACTOR_HALF = (0.14, 0.24)  # clutter is smaller than any main object


def _masks(shape, u, v):
    """The shape masks, (chunk, size, size) bool, in the object's own (u, v) frame."""
    r = np.sqrt(u * u + v * v)
    masks = np.stack([
        r <= 1.0,  # disk
        np.maximum(abs(u), abs(v)) <= 0.85,  # square
        (v <= 0.75) & (abs(u) <= (v + 1.0) * 0.55),  # triangle, apex up
        ((abs(u) <= 0.33) & (abs(v) <= 1.0)) | ((abs(v) <= 0.33) & (abs(u) <= 1.0)),  # cross
    ])  # (4, chunk, size, size)
    return masks[shape, np.arange(len(shape))]


def _objects(attrs, rng, continuous: bool):
    """Per-object rendering parameters: centre (n, 2), half extent, foreground, angle (rad)."""
    n = attrs.shape[0]
    _, _, shade, sz, pos = attrs.T
    if not continuous:  # the discrete world: each value one rendering, up to small jitter
        centre = np.array(_CENTRE)[pos] + rng.uniform(-0.08, 0.08, (n, 2))
        half = np.array(_HALF_EXTENT)[sz] * rng.uniform(0.92, 1.08, n)
        fg = np.array(_SHADE)[shade] + rng.uniform(-0.04, 0.04, n)
        return centre, half, fg, np.zeros(n)
    sign = np.sign(np.array(_CENTRE)[pos])
    centre = sign * rng.uniform(*_CENTRE_RANGE, (n, 2))
    lo, hi = np.array(_HALF_BINS)[sz].T
    half = rng.uniform(lo, hi)
    lo, hi = np.array(_SHADE_BINS)[shade].T
    fg = rng.uniform(lo, hi)
    angle = np.radians(rng.uniform(-_MAX_ROTATE, _MAX_ROTATE, n))
    return centre, half, fg, angle


def render(attrs: np.ndarray, size: int, rng: np.random.Generator, continuous: bool = False,
           distractors: int = 0) -> np.ndarray:
    """Grey images (n, 1, size, size) float32 of the attribute rows: `distractors` small objects
    of random shape, texture, shade and place (clutter no caption names), then the main object
    over them."""
    n = attrs.shape[0]
    main = (attrs[:, 0], attrs[:, 1], *_objects(attrs, rng, continuous))
    bg = rng.uniform(0.0, 0.15, n)
    sigma = rng.uniform(0.0, 0.04, n)
    noise = rng.standard_normal((n, size, size)).astype(np.float32)
    # the clutter is drawn after the rest, so the same rng renders the same main object, background
    # and noise whatever `distractors` is (and distractors=0 is the world before they existed)
    layers = []
    for _ in range(distractors):
        d = sample_attributes(n, rng)
        centre = rng.uniform(-0.75, 0.75, (n, 2))
        half = rng.uniform(*_DISTRACTOR_HALF, n)
        fg = rng.uniform(0.4, 1.0, n)
        angle = np.radians(rng.uniform(-_MAX_ROTATE, _MAX_ROTATE, n)) if continuous else np.zeros(n)
        layers.append((d[:, 0], d[:, 1], centre, half, fg, angle))
    layers.append(main)
    pix = np.arange(size)
    grid = (pix + 0.5) / size * 2 - 1
    gy, gx = np.meshgrid(grid, grid, indexing="ij")
    py, px = np.meshgrid(pix, pix, indexing="ij")
    period = max(2, size // 8)  # texture in pixels: visible at 16 px, finer at larger sizes
    patterns = np.stack([
        np.ones((size, size)),  # solid
        (px // period) % 2 == 0,  # stripes
        ((px // period) + (py // period)) % 2 == 0,  # checker
    ]).astype(np.float32)
    out = np.empty((n, size, size), np.float32)
    for lo in range(0, n, 4096):  # chunks keep the (chunk, size, size) temporaries small
        sl = slice(lo, min(n, lo + 4096))
        img = np.broadcast_to(bg[sl, None, None], (sl.stop - sl.start, size, size)).astype(np.float32)
        for shp, tx, centre, half, fg, angle in layers:  # painter's order: the main object last
            dx = gx[None] - centre[sl, 0, None, None]
            dy = gy[None] - centre[sl, 1, None, None]
            c, s = np.cos(angle[sl])[:, None, None], np.sin(angle[sl])[:, None, None]
            h = half[sl, None, None]
            u, v = (c * dx + s * dy) / h, (c * dy - s * dx) / h
            m = _masks(shp[sl], u, v).astype(np.float32)
            # off-pattern pixels of a textured shape are 35% as bright: the shape stays whole
            paint = bg[sl, None, None] + (fg[sl] - bg[sl])[:, None, None] * (0.35 + 0.65 * patterns[tx[sl]])
            img = img * (1 - m) + paint * m
        out[sl] = img + sigma[sl, None, None] * noise[sl]
    return out[:, None]


@dataclass
class Captions:
    tokens: np.ndarray  # (n, CAPTION_LEN) int64, PAD-padded
    named: np.ndarray  # (n, N_ATTRS) bool: which attributes the caption names
    content: np.ndarray  # (n, N_ATTRS) int64: the attribute values it describes (its image's, or a noisy one's)
    phrasing: np.ndarray  # (n,) int64
    noisy: np.ndarray  # (n,) bool: describes another image

    @property
    def descriptiveness(self) -> np.ndarray:
        return self.named.sum(1)


def make_captions(attrs: np.ndarray, config: dict, rng: np.random.Generator) -> Captions:
    n = attrs.shape[0]
    k, v = config["descriptiveness"], config["variability"]
    noisy = rng.random(n) < config["label_noise"]
    # a noisy caption takes another image's attributes: a random shift, so never its own row
    other = (np.arange(n) + rng.integers(1, max(2, n), n)) % n
    content = np.where(noisy[:, None], attrs[other], attrs)
    # k named attributes per caption: the k smallest of random keys is a uniform k-subset
    keys = rng.random((n, N_ATTRS))
    ranks = keys.argsort(1).argsort(1)
    named = ranks < k
    named[rng.random(n) < config["nondescriptive_frac"]] = False
    phrasing = rng.integers(0, v, n)
    return Captions(tokenize(content, named, phrasing), named, content, phrasing, noisy)


def tokenize(content: np.ndarray, named: np.ndarray, phrasing: np.ndarray) -> np.ndarray:
    n = content.shape[0]
    tokens = np.full((n, CAPTION_LEN), PAD, np.int64)
    tokens[:, 0] = 1 + phrasing  # style token
    for i in range(n):
        p = int(phrasing[i])
        words = [word_token(a, int(content[i, a]), p) for a in _ORDERS[p] if named[i, a]]
        tokens[i, 1 : 1 + len(words)] = words
    return tokens


def rewrite(c: Captions) -> Captions:
    """The caption_rewrite prescription: the same content in the canonical phrasing 0."""
    zero = np.zeros_like(c.phrasing)
    return Captions(tokenize(c.content, c.named, zero), c.named, c.content, zero, c.noisy)


def task_labels(attrs: np.ndarray) -> dict[str, np.ndarray]:
    labels = {name: attrs[:, i] for i, name in enumerate(ATTR_NAMES)}
    labels["class"] = attrs[:, 0] * len(ATTRS["texture"]) + attrs[:, 1]
    return labels


def n_classes(task: str) -> int:
    return len(ATTRS["shape"]) * len(ATTRS["texture"]) if task == "class" else len(ATTRS[task])


@dataclass
class World:
    x_pre: np.ndarray  # (P, 1, H, W) pre-training images
    captions: Captions  # P captions (before the prescriptions)
    keep: np.ndarray  # (P,) bool: pairs CLIP trains on (caption_filter)
    clip_tokens: np.ndarray  # (P, CAPTION_LEN) what CLIP reads (caption_rewrite applied)
    x_val: np.ndarray  # validation pairs for val_loss, prescriptions applied as in training
    val_tokens: np.ndarray
    x_probe: np.ndarray  # labelled images of the downstream tasks: probe training ...
    y_probe: dict[str, np.ndarray]
    x_test: np.ndarray  # ... and test
    y_test: dict[str, np.ndarray]


def make_world(config: dict) -> World:
    """Every split from its own child of data_seed, so changing one size leaves the others'
    images as they were (a ladder over n_pretrain probes on the same downstream data)."""
    seeds = np.random.SeedSequence(config["data_seed"]).spawn(4)
    size = config["image_size"]

    def pairs(n: int, seed: np.random.SeedSequence):
        rng = np.random.default_rng(seed)
        attrs = sample_attributes(n, rng)
        x = render(attrs, size, rng, config["continuous"], config["distractors"])
        caps = make_captions(attrs, config, rng)
        keep = caps.descriptiveness >= config["caption_filter"]
        tokens = rewrite(caps).tokens if config["caption_rewrite"] else caps.tokens
        return x, caps, keep, tokens

    x_pre, caps, keep, tokens = pairs(config["n_pretrain"], seeds[0])
    x_val, _, keep_val, tokens_val = pairs(config["n_val"], seeds[1])

    def labelled(n: int, seed: np.random.SeedSequence):
        rng = np.random.default_rng(seed)
        attrs = sample_attributes(n, rng)
        return render(attrs, size, rng, config["continuous"], config["distractors"]), task_labels(attrs)

    x_probe, y_probe = labelled(config["n_probe"], seeds[2])
    x_test, y_test = labelled(config["n_test"], seeds[3])
    return World(x_pre, caps, keep, tokens, x_val[keep_val], tokens_val[keep_val], x_probe, y_probe, x_test, y_test)
