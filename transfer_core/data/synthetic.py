"""The synthetic face set: the project's embedded default data set (no download).

Cartoon faces drawn with vectorised numpy (whole batches of images at once, no per-pixel loops)
at 64x64 RGB, then resized to the requested size and cached like any other data set. Classes and
their order are RAF-DB's: 0 Surprise, 1 Fear, 2 Disgust, 3 Happiness, 4 Sadness, 5 Anger, 6 Neutral.

An expression is a combination of local cues, not one tell-tale region:

| class     | brows            | eyes      | mouth                     | nose wrinkle | cheeks |
|-----------|------------------|-----------|---------------------------|--------------|--------|
| Surprise  | raised, level    | wide      | open, round, narrow       | -            | -      |
| Fear      | raised, inner up | wide      | half open, stretched wide | -            | -      |
| Disgust   | lowered          | narrowed  | slightly open, downturned | strong       | slight |
| Happiness | level            | narrowed  | smile, a little open      | -            | raised |
| Sadness   | inner up         | narrowed  | frown, closed             | -            | -      |
| Anger     | lowered, inner down (V) | normal | pressed, downturned    | some         | -      |
| Neutral   | level            | normal    | closed, straight          | -            | -      |

so classes overlap (surprise/fear share raised brows and open eyes and mouth; anger/disgust share
lowered brows and a wrinkled nose). Each image draws an identity (face shape, skin tone, eye
spacing and size, mouth size, hair), an expression intensity in [0.8, 1] plus per-cue jitter, a
pose (in-plane rotation up to 30 degrees about the face centre, scale 0.95-1.25, a shift of up to
1/8 of the image width each way), a muted background colour, a lighting gradient and pixel noise;
20 % of images get an occluder in face coordinates: a bar over eyes and brows (40 %), a patch over
the mouth (40 %) or a random patch (20 %), so that a model that relies on one region fails where it
is hidden. All ranges are in RANGES and GAIN below.

Calibration (GENERATOR_VERSION 3). The set must be learnable by the `quick` profile's small CNN +
Transformer within a CPU minute, but not by a template. With version 2 (faces at 0.85-1.1 scale
with thin cues, saturated random backgrounds) that model sat at chance (loss ln 7) for several
epochs: the expression cues were a few percent of the pooled features, swamped by background and
skin colour, and the encoder's CLS token carries little per-image signal at initialisation, so
AdamW mostly random-walked. Version 3 makes the faces fill the frame, thickens and enlarges the
cues (brows, eyes, mouth, wrinkles, blush), mutes the background, and narrows intensity, jitter and
occlusion; the large pose jitter is what keeps it non-trivial: it costs a linear model on pixels
much more than a network that pools translation-equivariant features.

Train holds `per_class` images per class and test a quarter of that (at least 4), each split from
its own seed stream of `np.random.default_rng([seed, split, GENERATOR_VERSION])`, so a given
(seed, per_class) always gives the same arrays. Measured at 32 px, 300 per class, seed 0 (test: 75
per class, chance 14 %; bench/synthetic_baselines.py, bench/RESULTS_synthetic.md): logistic
regression on raw pixels 44 %; the quick profile's CNN-only Baseline 48-54 % and its full model
67-69 % after 12 epochs (seeds 0 and 1). Generating the default size (1,400 + 350 images) takes
about 2 s on one CPU core.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from transfer_core.config import DataConfig
from transfer_core.data.base import DATASETS, Layout, Source, SplitPlan

log = logging.getLogger(__name__)

CLASS_NAMES = ("Surprise", "Fear", "Disgust", "Happiness", "Sadness", "Anger", "Neutral")
NATIVE_SIZE = 64
GENERATOR_VERSION = 3
OCCLUSION_RATE = 0.2
INTENSITY = (0.8, 1.0)                 # expression intensity range (0: neutral face, 1: the prototype)
_CHUNK = 512                            # images rendered at once (fixed: part of the determinism)

# expression cues: brow_raise, brow_tilt (+ inner end up), eye_open, mouth_curve (+ smile),
# mouth_open, mouth_width, nose_wrinkle, cheek_raise
_NEUTRAL = np.array([0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0], dtype=np.float32)
_PROTOTYPES = np.array([
    [1.0, 0.0, 1.5, 0.0, 1.0, 0.8, 0.0, 0.0],      # Surprise
    [0.7, 0.7, 1.4, -0.3, 0.5, 1.25, 0.0, 0.0],    # Fear
    [-0.5, -0.3, 0.7, -0.5, 0.2, 1.0, 1.0, 0.4],   # Disgust
    [0.0, 0.0, 0.75, 1.0, 0.35, 1.2, 0.0, 1.0],    # Happiness
    [-0.2, 0.9, 0.7, -0.9, 0.0, 0.95, 0.0, 0.0],   # Sadness
    [-1.0, -0.9, 0.95, -0.3, 0.1, 0.85, 0.5, 0.0], # Anger
    [0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0],      # Neutral
], dtype=np.float32)
_CUE_JITTER = np.array([0.105, 0.105, 0.077, 0.105, 0.063, 0.0525, 0.105, 0.105], dtype=np.float32)
# uniform ranges of the identity and nuisance draws (face units: the image spans [-1, 1])
RANGES = {
    "face_w": (0.55, 0.70), "face_h": (0.70, 0.86),
    "eye_x": (0.20, 0.28), "eye_y": (-0.17, -0.09), "eye_a": (0.11, 0.15), "eye_b": (0.07, 0.085),
    "mouth_y": (0.36, 0.46), "mouth_w": (0.22, 0.30), "brow_t": (0.05, 0.065),
    "bg": (0.35, 0.65),                 # background colour, per channel (muted)
    "angle": (-30.0, 30.0),             # degrees of in-plane rotation about the face centre
    "scale": (0.95, 1.25), "shift": (-0.25, 0.25),
    "light": (0.0, 0.25), "brightness": (0.75, 1.15), "noise": (0.03, 0.08),
}
# how far (face units) one unit of a cue moves or opens a part
GAIN = {"brow_raise": 0.26, "brow_tilt_in": 0.20, "brow_tilt_out": 0.05, "mouth_curve": 0.24, "mouth_open": 0.22,
        "blush": 0.9, "blush_width": 0.02, "wrinkle_t": 0.014}


def n_test_per_class(per_class: int) -> int:
    return max(4, per_class // 4)


def _soft(d: np.ndarray, aa: np.ndarray) -> np.ndarray:
    """Anti-aliased coverage of a shape from its signed distance d (negative inside)."""
    return np.clip(0.5 - d / aa, 0.0, 1.0)


def _paint(img: np.ndarray, alpha: np.ndarray, colour: np.ndarray) -> None:
    """img (n, 3, H, W) <- alpha (n, H, W) blend of colour (n, 3), in place, inside alpha's bounding box."""
    rows = np.flatnonzero(alpha.any(axis=(0, 2)))
    cols = np.flatnonzero(alpha.any(axis=(0, 1)))
    if len(rows) == 0:
        return
    window = (slice(None), slice(None), slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    target = img[window]                                              # (n, 3, h, w) view
    diff = colour[:, :, None, None] - target
    diff *= alpha[:, None, rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    target += diff


def _col(x: np.ndarray) -> np.ndarray:
    return x[:, None, None]             # (n,) -> (n, 1, 1) to broadcast over (n, H, W)


def _ellipse(u, v, cu, cv, a, b):
    """Approximate signed distance to an axis-aligned ellipse (face units)."""
    r = np.sqrt(((u - cu) / a) ** 2 + ((v - cv) / b) ** 2)
    return (r - 1.0) * np.minimum(a, b)


def _segment(u, v, u0, v0, u1, v1, thickness):
    du, dv = u1 - u0, v1 - v0
    t = np.clip(((u - u0) * du + (v - v0) * dv) / (du * du + dv * dv + 1e-8), 0.0, 1.0)
    return np.sqrt((u - u0 - t * du) ** 2 + (v - v0 - t * dv) ** 2) - thickness


def _draw_params(rng: np.random.Generator, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Every random choice of every image, drawn up front (small arrays, (n,) or (n, k))."""
    n = len(labels)
    u = lambda lo, hi, *shape: rng.uniform(lo, hi, size=(n, *shape)).astype(np.float32)  # noqa: E731
    intensity = u(*INTENSITY)
    cues = _NEUTRAL + intensity[:, None] * (_PROTOTYPES[labels] - _NEUTRAL)
    cues = cues + rng.normal(size=(n, len(_NEUTRAL))).astype(np.float32) * _CUE_JITTER
    tone = u(0.0, 1.0)
    light, dark = np.array([0.96, 0.80, 0.68], np.float32), np.array([0.36, 0.23, 0.16], np.float32)
    skin = light + tone[:, None] * (dark - light) + rng.normal(0, 0.03, size=(n, 3)).astype(np.float32)
    occluded = rng.uniform(size=n) < OCCLUSION_RATE
    r = lambda name, *shape: u(*RANGES[name], *shape)  # noqa: E731
    return {
        "cues": cues, "skin": np.clip(skin, 0.05, 1.0),
        "face_w": r("face_w"), "face_h": r("face_h"),
        "eye_x": r("eye_x"), "eye_y": r("eye_y"), "eye_a": r("eye_a"), "eye_b": r("eye_b"),
        "mouth_y": r("mouth_y"), "mouth_w": r("mouth_w"), "brow_t": r("brow_t"),
        "hair": rng.uniform(size=n) < 0.7, "hair_col": u(0.02, 0.45, 3) * u(0.3, 1.0)[:, None],
        "brow_col": u(0.02, 0.3, 3), "iris_col": u(0.0, 0.35, 3), "lip_col": u(0.45, 0.8, 3) * np.array(
            [1.0, 0.45, 0.45], np.float32),
        "bg": r("bg", 3),
        "angle": np.radians(r("angle")), "scale": r("scale"), "tx": r("shift"), "ty": r("shift"),
        "light": r("light"), "light_dir": u(0.0, 2 * math.pi), "brightness": r("brightness"),
        "noise": r("noise"),
        "occluded": occluded, "occ_kind": rng.choice(3, size=n, p=[0.4, 0.4, 0.2]),
        "occ_col": u(0.0, 1.0, 3), "occ_u": u(-0.35, 0.35), "occ_v": u(-0.4, 0.45), "occ_size": u(0.18, 0.28),
    }


def _render(p: dict[str, np.ndarray], rng: np.random.Generator, size: int = NATIVE_SIZE) -> np.ndarray:
    """Render the images described by p as uint8 (n, size, size, 3)."""
    n = len(p["cues"])
    coords = (np.arange(size, dtype=np.float32) + 0.5) / (size / 2) - 1.0
    X, Y = coords[None, None, :], coords[None, :, None]               # (1, 1, W), (1, H, 1)
    c, s, sc = _col(np.cos(p["angle"])), _col(np.sin(p["angle"])), _col(p["scale"])
    dx, dy = X - _col(p["tx"]), Y - _col(p["ty"])
    u = (c * dx + s * dy) / sc                                         # (n, H, W) face coordinates
    v = (-s * dx + c * dy) / sc
    aa = 2.5 / size / sc                                               # ~1 pixel in face units
    cue = {k: _col(p["cues"][:, i]) for i, k in enumerate(
        ("brow_raise", "brow_tilt", "eye_open", "mouth_curve", "mouth_open", "mouth_width", "wrinkle", "cheek"))}

    img = np.broadcast_to(p["bg"][:, :, None, None], (n, 3, size, size)).copy()
    fw, fh = _col(p["face_w"]), _col(p["face_h"])
    hair = _soft(_ellipse(u, v, 0.0, -0.45, fw * 1.08, fh * 0.62), aa) * _col(p["hair"].astype(np.float32))
    _paint(img, hair, p["hair_col"])
    _paint(img, _soft(_ellipse(u, v, 0.0, 0.05, fw, fh), aa), p["skin"])

    # cheeks: soft blush blobs, stronger with cheek raise
    blush = np.clip(p["skin"] * np.array([1.15, 0.85, 0.85], np.float32) + 0.08, 0, 1)
    cheek = np.clip(cue["cheek"], 0.0, 1.2) * GAIN["blush"]
    for side in (-1.0, 1.0):
        d2 = (u - side * (_col(p["eye_x"]) + 0.05)) ** 2 + (v - 0.17) ** 2
        _paint(img, cheek * np.exp(-d2 / GAIN["blush_width"]), blush)

    # eyes: sclera ellipse whose height is the openness, iris inside it
    ex, ey, ea = _col(p["eye_x"]), _col(p["eye_y"]), _col(p["eye_a"])
    eb = _col(p["eye_b"]) * np.clip(cue["eye_open"], 0.25, 2.0)
    white = np.full((n, 3), 0.95, np.float32)
    for side in (-1.0, 1.0):
        sclera = _soft(_ellipse(u, v, side * ex, ey, ea, eb), aa)
        _paint(img, sclera, white)
        iris = _soft(np.sqrt((u - side * ex) ** 2 + (v - ey) ** 2) - 0.045, aa)
        _paint(img, iris * sclera, p["iris_col"])

    # brows: thick segments; raise moves both ends up, tilt moves the inner end up (+) or down (-)
    by = ey - _col(p["eye_b"]) - 0.09 - GAIN["brow_raise"] * cue["brow_raise"]
    for side in (-1.0, 1.0):
        d = _segment(u, v, side * 0.07, by - GAIN["brow_tilt_in"] * cue["brow_tilt"], side * (ex + ea + 0.03),
                     by + GAIN["brow_tilt_out"] * cue["brow_tilt"], _col(p["brow_t"]))
        _paint(img, _soft(d, aa), p["brow_col"])

    # nose, and its wrinkles (horizontal creases on the bridge)
    shade = p["skin"] * 0.6
    _paint(img, _soft(_segment(u, v, 0.0, -0.02, 0.0, 0.19, 0.012), aa) * 0.6, shade)
    for side in (-1.0, 1.0):
        _paint(img, _soft(_ellipse(u, v, side * 0.045, 0.22, 0.03, 0.018), aa) * 0.8, shade)
    wrinkle = np.clip(cue["wrinkle"], 0.0, 1.0)
    for k, vv in enumerate((-0.01, 0.04, 0.09)):
        w = 0.05 + 0.02 * k
        _paint(img, _soft(_segment(u, v, -w, vv, w, vv, GAIN["wrinkle_t"]), aa) * wrinkle, p["skin"] * 0.45)

    # mouth: a curved lip line (corners up for a smile), opened into a dark interior
    mw = _col(p["mouth_w"]) * np.clip(cue["mouth_width"], 0.6, 1.5)
    q2 = np.clip((u / mw) ** 2, 0.0, 1.0)
    yc = _col(p["mouth_y"]) + GAIN["mouth_curve"] * cue["mouth_curve"] * (1.0 - q2)
    half = GAIN["mouth_open"] * np.clip(cue["mouth_open"], 0.0, 1.3) * np.sqrt(1.0 - q2)
    outside = np.abs(u) - mw
    _paint(img, _soft(np.maximum(np.abs(v - yc) - half - 0.022, outside), aa), p["lip_col"])
    inner = np.full((n, 3), 0.08, np.float32)
    _paint(img, _soft(np.maximum(np.abs(v - yc) - half + 0.004, outside + 0.01), aa), inner)

    # occluders, in face coordinates so that they follow the pose
    kind, occ = _col(p["occ_kind"]), _col(p["occluded"].astype(np.float32))
    eyes_bar = np.maximum(np.abs(u) - 0.6, np.abs(v - (ey - 0.11)) - 0.21)
    mouth_patch = np.maximum(np.abs(u) - 0.36, np.abs(v - _col(p["mouth_y"])) - 0.17)
    size_ = _col(p["occ_size"])
    patch = np.maximum(np.abs(u - _col(p["occ_u"])) - size_, np.abs(v - _col(p["occ_v"])) - size_)
    d = np.where(kind == 0, eyes_bar, np.where(kind == 1, mouth_patch, patch))
    _paint(img, _soft(d, aa) * occ, p["occ_col"])

    # lighting gradient, brightness, sensor noise
    phi = p["light_dir"]
    gradient = 1.0 + _col(p["light"]) * (_col(np.cos(phi)) * X + _col(np.sin(phi)) * Y)
    img *= (gradient * _col(p["brightness"]))[:, None]
    img += rng.standard_normal(size=img.shape, dtype=np.float32) * p["noise"][:, None, None, None]
    out = np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return out.transpose(0, 2, 3, 1)                                   # (n, H, W, 3)


def _start(seed: int, per_class: int, split: str) -> tuple[np.random.Generator, np.ndarray]:
    """The split's random stream and its labels (the stream's first draw)."""
    count = per_class if split == "train" else n_test_per_class(per_class)
    rng = np.random.default_rng([seed, 0 if split == "train" else 1, GENERATOR_VERSION])
    labels = rng.permutation(np.repeat(np.arange(len(CLASS_NAMES), dtype=np.int64), count))
    return rng, labels


def generate(seed: int, per_class: int, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """The synthetic `split` ("train" or "test") at native size: uint8 (N, 64, 64, 3), int64 (N,)."""
    if split not in ("train", "test"):
        raise ValueError(f"split={split!r}: expected 'train' or 'test'")
    rng, labels = _start(seed, per_class, split)
    params = _draw_params(rng, labels)
    images = np.empty((len(labels), NATIVE_SIZE, NATIVE_SIZE, 3), dtype=np.uint8)
    for start in range(0, len(labels), _CHUNK):
        chunk = {k: v[start:start + _CHUNK] for k, v in params.items()}
        images[start:start + _CHUNK] = _render(chunk, rng)
    return images, labels


def resize_batch(images: np.ndarray, image_size: int) -> np.ndarray:
    """uint8 (N, H, W, 3) -> uint8 (N, S, S, 3), bilinear with antialiasing, in chunks."""
    if images.shape[1:3] == (image_size, image_size):
        return images
    import torch    # here, not at the top: a cache hit (a sweep's driver) needs no torch
    import torch.nn.functional as F

    out = np.empty((len(images), image_size, image_size, 3), dtype=np.uint8)
    for start in range(0, len(images), 1024):
        x = torch.from_numpy(images[start:start + 1024]).permute(0, 3, 1, 2).float()  # (n, 3, H, W)
        y = F.interpolate(x, size=(image_size, image_size), mode="bilinear", antialias=True, align_corners=False)
        out[start:start + 1024] = y.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return out


@DATASETS.register("synthetic")
class SyntheticSource(Source):
    """Synthetic faces from (cfg.synthetic_seed, cfg.synthetic_per_class); see the module docstring."""

    name = "synthetic"
    version = 1

    def class_names(self, cfg: DataConfig) -> tuple[str, ...]:
        return CLASS_NAMES

    def scan(self, cfg: DataConfig) -> Layout:
        plans = {split: SplitPlan(labels=_start(cfg.synthetic_seed, cfg.synthetic_per_class, split)[1],
                                  origins=[]) for split in ("train", "test")}
        return Layout(dataset=self.name, root=None, class_names=CLASS_NAMES, splits=plans,
                      params={"seed": cfg.synthetic_seed, "per_class": cfg.synthetic_per_class,
                              "native_size": NATIVE_SIZE, "generator_version": GENERATOR_VERSION},
                      info={"synthetic": True})

    def decode(self, layout: Layout, image_size: int, outs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        masks = {}
        for split, out in outs.items():
            images, labels = generate(layout.params["seed"], layout.params["per_class"], split)
            if not np.array_equal(labels, layout.splits[split].labels):
                raise RuntimeError("synthetic labels differ between scan and generation")  # a bug
            out[:] = resize_batch(images, image_size)
            masks[split] = np.ones(len(labels), dtype=bool)
        return masks
