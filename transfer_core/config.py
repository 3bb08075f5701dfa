"""Typed, frozen configuration of one training run.

A run is a `TrialConfig`: what is trained (`ModelConfig`), on what (`DataConfig`), how
(`OptimConfig`), plus seed and device. Defaults are the released TransFER configuration
(reference/transfer.md): `build_model(ModelConfig())` is the 65.22 M-parameter model.

Sweeps and MLflow speak in flat dotted dicts ("model.num_lanets": 2); `to_flat` / `from_flat`
convert both ways, and `from_flat` rejects unknown keys and wrong types with a message that
names the key, the value and what would be right.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Mapping


class ConfigError(ValueError):
    """A configuration value or key is invalid; the message names it and what would be right."""


def _check(condition: bool, key: str, value: Any, expected: str) -> None:
    if not condition:
        raise ConfigError(f"{key}={value!r} is invalid: expected {expected}")


def _check_choice(key: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:   # a misspelling (`weight_decay_on: al`) is named with the choice it is close to
        close = difflib.get_close_matches(value.lower(), choices, n=1) if isinstance(value, str) else []   # MAD
        raise ConfigError(f"{key}={value!r} is invalid: expected one of {', '.join(choices)}"
                          + (f". Did you mean {close[0]!r}?" if close else ""))


# each stem's output stride: model.image_size must be a multiple of it (check_stem_stride; the stems declare
# the same); a table's cells are checked when they are planned, before a sweep spends anything
STEM_STRIDES = {"ir50": 8, "resnet18": 16, "small": 4}
STEMS = tuple(STEM_STRIDES)


def check_stem_stride(model: "ModelConfig") -> None:
    """ConfigError unless the stem's stride divides model.image_size. Not in ModelConfig's own checks: a
    spec's layers are applied in turn, and a base layer's image size may be meant for the stem an arm
    chooses after it."""
    stride = STEM_STRIDES[model.stem]
    _check(model.image_size % stride == 0, "model.image_size", model.image_size,
           f"a multiple of {stride}, the stride of model.stem={model.stem!r}")


# the keys check_drop_counts reads: the counts first (an error names the highest layer that set one of them)
DROP_COUNT_KEYS = ("model.mad_drop_maps", "model.msad_drop_heads", "model.num_lanets", "model.num_heads",
                   "model.drop_variant", "model.local_branch", "model.msad_mode", "model.encoder")


def _up_to(most: int) -> str:
    return "1" if most <= 1 else f"an integer from 1 to {most}"


def check_drop_counts(model: "ModelConfig") -> None:
    """ConfigError unless model.mad_drop_maps and model.msad_drop_heads have a meaning in `model`. A count
    other than 1 must leave a map and a head standing (all B maps dropped zero the fused map M, the max over them,
    and with it the sample's features; all heads dropped leave a block only its residual) and needs the one
    variant that drops a count: MAD on the LANet maps, MSAD mode head. Not in ModelConfig's own checks, as
    check_stem_stride: a spec's base may set a count for the B or the heads its arms set after it.
    1, the release's (and the default), is always allowed: at B = 1 or one head it drops the only one, as
    the release would (the num_lanets sweep's B = 1 row)."""
    maps = model.mad_drop_maps
    if maps != 1:
        _check(model.local_branch, "model.mad_drop_maps", maps,
               "1 with model.local_branch=false: there are no LANet maps to drop (set model.local_branch=true, "
               "or remove it)")
        _check(model.drop_variant == "mad", "model.mad_drop_maps", maps,
               f"1 with model.drop_variant={model.drop_variant!r}: only MAD drops a number of maps per sample "
               "(Dropout, DropBlock and Spatial Dropout drop each pixel, block or map independently with "
               "model.drop_rate; none drops nothing): set model.drop_variant=mad, or remove it")
        _check(maps < model.num_lanets, "model.mad_drop_maps", maps,
               f"{_up_to(model.num_lanets - 1)} with model.num_lanets={model.num_lanets}: "
               f"dropping all {model.num_lanets} maps zeroes the fused map M and every feature of the sample")
    heads = model.msad_drop_heads
    if heads != 1:
        _check(model.encoder, "model.msad_drop_heads", heads,
               "1 with model.encoder=false: there are no attention heads to drop (set model.encoder=true, or remove it)")
        _check(model.msad_mode == "head", "model.msad_drop_heads", heads,
               f"1 with model.msad_mode={model.msad_mode!r}: only mode head drops heads ('released_token' is the "
               "release's HeadDropOut, which zeroes one token and never a head; 'none' drops nothing): set "
               "model.msad_mode=head, or remove it")
        _check(heads < model.num_heads, "model.msad_drop_heads", heads,
               f"{_up_to(model.num_heads - 1)} with model.num_heads={model.num_heads}: "
               f"dropping all {model.num_heads} heads leaves each encoder block only its residual")


DROP_VARIANTS = ("none", "dropout", "dropblock", "spatial_dropout", "mad")
MSAD_MODES = ("head", "released_token", "none")


@dataclass(frozen=True)
class ModelConfig:
    """The TransFER network. Defaults: the authors' released configuration."""

    stem: str = "ir50"                  # ir50 (stages 1-3) | resnet18 (layers 1-3) | small (CPU profiles)
    stem_width: int = 64                # first-stage width of the small stem (ir50/resnet18 ignore it)
    stem_checkpoint: str | None = None  # face.evoLVe IR-50 MS1M weights (local path), ir50 only
    image_size: int = 112               # input side in pixels; tokens = (image_size / stem stride)^2
    num_classes: int = 7                # RAF-DB: 7, FERPlus: 8, AffectNet: 7 or 8
    # local branch: B LANets, fused by an element-wise max, reweighting the stem features
    local_branch: bool = True           # False: no LANets (the "baseline" of the paper's Table 1)
    num_lanets: int = 2                 # B
    lanet_ratio: int = 16               # LANet bottleneck C -> C/ratio
    drop_variant: str = "mad"           # dropping on the local branch: none|dropout|dropblock|spatial_dropout|mad
    drop_rate: float = 0.6              # p1 for MAD; the drop probability of the other variants
    mad_drop_maps: int = 1              # maps MAD zeroes in a dropped sample, distinct, fewer than B (release: 1)
    dropblock_size: int = 3             # block side for dropblock (odd: torchvision centres a block on a pixel)
    # encoder: 1x1 projection to tokens, CLS + learnable positions, pre-norm blocks
    encoder: bool = True                # False: global average pooling + linear head
    encoder_checkpoint: str | None = None   # timm's legacy ImageNet ViT-S weights (vit_small_p16_224-15ec54c9.pth,
                                        # local path) for the encoder; not read where encoder is false (a sweep
                                        # none of whose cells has an encoder refuses it)
    embed_dim: int = 768
    depth: int = 8
    num_heads: int = 8                  # head_dim = embed_dim / num_heads = 96
    mlp_ratio: float = 3.0
    msad_mode: str = "head"             # head (paper) | released_token (authors' code) | none
    msad_rate: float = 0.3              # p2
    msad_drop_heads: int = 1            # heads MSAD (mode head) zeroes in a dropped sample, distinct, fewer than
                                        # num_heads (paper and release: 1; the paper: more brought no improvement)

    def __post_init__(self) -> None:
        _check_choice("model.stem", self.stem, STEMS)
        _check(self.stem_width >= 8, "model.stem_width", self.stem_width, "an integer >= 8")
        _check(self.image_size >= 16, "model.image_size", self.image_size, "an integer >= 16")
        _check(self.num_classes >= 2, "model.num_classes", self.num_classes, "an integer >= 2")
        _check(self.num_lanets >= 1, "model.num_lanets", self.num_lanets, "an integer >= 1")
        _check(self.lanet_ratio >= 1, "model.lanet_ratio", self.lanet_ratio, "an integer >= 1")
        _check_choice("model.drop_variant", self.drop_variant, DROP_VARIANTS)
        _check(0.0 <= self.drop_rate <= 1.0, "model.drop_rate", self.drop_rate, "a number in [0, 1]")
        _check(self.mad_drop_maps >= 1, "model.mad_drop_maps", self.mad_drop_maps, "an integer >= 1")
        _check(self.dropblock_size >= 1 and self.dropblock_size % 2 == 1, "model.dropblock_size",
               self.dropblock_size, "an odd integer >= 1 (torchvision's DropBlock centres each block on a pixel)")
        _check(self.embed_dim >= 1, "model.embed_dim", self.embed_dim, "an integer >= 1")
        _check(self.depth >= 1, "model.depth", self.depth, "an integer >= 1")
        _check(self.num_heads >= 1 and self.embed_dim % self.num_heads == 0, "model.num_heads",
               self.num_heads, f"a divisor of model.embed_dim={self.embed_dim}")
        _check(self.mlp_ratio > 0, "model.mlp_ratio", self.mlp_ratio, "a number > 0")
        _check_choice("model.msad_mode", self.msad_mode, MSAD_MODES)
        _check(0.0 <= self.msad_rate <= 1.0, "model.msad_rate", self.msad_rate, "a number in [0, 1]")
        _check(self.msad_drop_heads >= 1, "model.msad_drop_heads", self.msad_drop_heads, "an integer >= 1")
        if self.stem_checkpoint is not None and self.stem != "ir50":
            raise ConfigError(f"model.stem_checkpoint is set but model.stem={self.stem!r}: "
                              "only the ir50 stem loads a face.evoLVe checkpoint")


DATASETS = ("synthetic", "rafdb", "ferplus", "affectnet", "fer2013", "imagefolder")
AUGMENTS = ("released", "apvit", "light", "none")
NORMALIZATIONS = ("imagenet", "half")
SAMPLERS = ("shuffle", "balanced", "auto")
FERPLUS_RULES = ("majority", "argmax")
# RAF-DB's image folders under Image/: the official 100x100 alignment (TransFER's), or APViT's MTCNN
# realignment, which reported accuracies differ by (reference/datasets.md §1)
RAFDB_IMAGE_SETS = ("aligned", "aligned_224")
# How an image file carrying an EXIF orientation is read: its pixels as stored (torchvision's ImageFolder and the FER
# repositories' loaders read them so), or turned and mirrored as the tag says (as a viewer shows it)
EXIF_ORIENTATIONS = ("stored", "applied")


@dataclass(frozen=True)
class DataConfig:
    """Which data set, where, and how it is split, sampled and augmented."""

    dataset: str = "synthetic"          # synthetic | rafdb | ferplus | affectnet | fer2013 | imagefolder
    root: str | None = None             # the data set's folder (its official layout); None for synthetic
    val_fraction: float = 0.1           # validation split carved from train, stratified, deterministic
    split_seed: int = 0                 # seed of that carving (independent of the trial seed)
    augment: str = "released"           # released (TransFER port) | apvit | light | none
    normalize: str = "imagenet"         # imagenet (the port's) | half (face.evoLVe's mean = std = 0.5)
    sampler: str = "auto"               # shuffle | balanced (inverse frequency) | auto (balanced for AffectNet)
    epoch_samples: int | None = None    # samples per epoch for the balanced sampler (None: train size); not
                                        # with shuffle, which draws each image once an epoch
    ferplus_rule: str = "majority"      # majority (official) | argmax
    affectnet_classes: int = 7          # 7 (codes 0-6) or 8 (0-7)
    rafdb_images: str = "aligned"       # RAF-DB's Image/ folder: aligned (official) | aligned_224 (APViT's)
    exif_orientation: str = "stored"    # image files' EXIF orientation: stored (pixels as stored, torchvision's
                                        # reading) | applied (turned as a viewer shows them)
    synthetic_per_class: int = 200      # synthetic set: training images per class (test: a quarter)
    synthetic_seed: int = 0             # synthetic set: generator seed (its identity, not the trial's)
    cache_dir: str | None = None        # decoded-cache folder (None: $TRANSFER_CACHE or ~/.cache/transfer-sweeps)
    num_workers: int = 0                # DataLoader workers (0: augment in the training process)

    def __post_init__(self) -> None:
        _check_choice("data.dataset", self.dataset, DATASETS)
        _check(0.0 <= self.val_fraction < 1.0, "data.val_fraction", self.val_fraction, "a number in [0, 1)")
        _check_choice("data.augment", self.augment, AUGMENTS)
        _check_choice("data.normalize", self.normalize, NORMALIZATIONS)
        _check_choice("data.sampler", self.sampler, SAMPLERS)
        _check(self.epoch_samples is None or self.epoch_samples >= 1, "data.epoch_samples",
               self.epoch_samples, "null or an integer >= 1")
        _check_choice("data.ferplus_rule", self.ferplus_rule, FERPLUS_RULES)
        _check(self.affectnet_classes in (7, 8), "data.affectnet_classes", self.affectnet_classes, "7 or 8")
        _check_choice("data.rafdb_images", self.rafdb_images, RAFDB_IMAGE_SETS)
        _check_choice("data.exif_orientation", self.exif_orientation, EXIF_ORIENTATIONS)
        _check(self.synthetic_per_class >= 4, "data.synthetic_per_class", self.synthetic_per_class,
               "an integer >= 4")
        _check(self.num_workers >= 0, "data.num_workers", self.num_workers, "an integer >= 0")
        if self.dataset != "synthetic" and not self.root:
            raise ConfigError(f"data.root is required for data.dataset={self.dataset!r}: "
                              "the folder that holds the data set in its official layout")
        if self.epoch_samples is not None and self.sampler == "shuffle":   # it would be ignored without a word
            raise ConfigError(f"data.epoch_samples={self.epoch_samples!r} is set but data.sampler='shuffle', which "
                              "draws each training image once an epoch: only the balanced sampler takes "
                              "epoch_samples (data.sampler=balanced, or auto on AffectNet)")


def sampler_kind(cfg: DataConfig) -> str:
    """The sampler `cfg` trains with: "shuffle" or "balanced" (data.sampler auto: balanced for AffectNet only).
    Only the balanced one reads data.epoch_samples."""
    if cfg.sampler == "auto":
        return "balanced" if cfg.dataset == "affectnet" else "shuffle"
    return cfg.sampler


OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("piecewise", "cosine", "constant")
WEIGHT_DECAY_SCOPES = ("weights", "all")


@dataclass(frozen=True)
class OptimConfig:
    """Optimiser and schedule. Defaults: the released recipe (SGD 0.9, piecewise 1e-4 -> 1e-6), except
    weight_decay_on, which keeps what runs recorded before it existed computed (ADDED_KEYS)."""

    optimizer: str = "sgd"              # sgd (momentum) | adamw
    lr: float = 1e-4
    momentum: float = 0.9               # sgd only
    weight_decay: float = 1e-4
    weight_decay_on: str = "weights"    # weights: not norms, biases, PReLU, pos/CLS (timm's rule) | all: every
                                        # parameter, as the release's ppcls L2 regulariser (the paper profile)
    schedule: str = "piecewise"         # piecewise (x gamma at milestones) | cosine (to 0) | constant
    milestones: tuple[int, ...] = (15, 30)
    gamma: float = 0.1
    warmup_epochs: int = 0              # linear warm-up before the schedule; fewer than epochs
    epochs: int = 40
    batch_size: int = 64
    grad_clip: float | None = None      # max grad norm; None: no clipping

    def __post_init__(self) -> None:
        _check_choice("optim.optimizer", self.optimizer, OPTIMIZERS)
        _check(self.lr > 0, "optim.lr", self.lr, "a number > 0")
        _check(0.0 <= self.momentum < 1.0, "optim.momentum", self.momentum, "a number in [0, 1)")
        _check(self.weight_decay >= 0, "optim.weight_decay", self.weight_decay, "a number >= 0")
        _check_choice("optim.weight_decay_on", self.weight_decay_on, WEIGHT_DECAY_SCOPES)
        _check_choice("optim.schedule", self.schedule, SCHEDULES)
        _check(all(m >= 1 for m in self.milestones) and list(self.milestones) == sorted(self.milestones),
               "optim.milestones", self.milestones, "increasing epochs >= 1")
        _check(0 < self.gamma <= 1, "optim.gamma", self.gamma, "a number in (0, 1]")
        _check(self.warmup_epochs >= 0, "optim.warmup_epochs", self.warmup_epochs, "an integer >= 0")
        _check(self.epochs >= 1, "optim.epochs", self.epochs, "an integer >= 1")
        _check(self.warmup_epochs < self.epochs, "optim.warmup_epochs", self.warmup_epochs,
               f"fewer than optim.epochs={self.epochs}: with as many, every epoch is warm-up, so the learning rate "
               "never reaches optim.lr and optim.schedule never starts")
        _check(self.schedule != "piecewise" or all(m > self.warmup_epochs for m in self.milestones),
               "optim.milestones", self.milestones,
               f"epochs after optim.warmup_epochs={self.warmup_epochs}: a milestone within the warm-up is passed "
               "unseen, and the learning rate goes from the warm-up straight to optim.gamma times it, never at optim.lr")
        _check(self.batch_size >= 1, "optim.batch_size", self.batch_size, "an integer >= 1")
        _check(self.grad_clip is None or self.grad_clip > 0, "optim.grad_clip", self.grad_clip,
               "null or a number > 0")


DEVICES = ("auto", "cpu", "cuda")
AMP_MODES = ("auto", "bf16", "off")
COMPILE_MODES = ("off", "default", "reduce-overhead")


# torch.manual_seed takes up to 2**64 - 1, and the tables' CSV and Parquet hold a seed as an int64
MAX_SEED = 2**63 - 1


@dataclass(frozen=True)
class TrialConfig:
    """One training run: model, data, optimisation, seed and where it runs."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    seed: int = 0
    device: str = "auto"                # auto (cuda if available) | cpu | cuda
    amp: str = "auto"                   # auto (bf16 autocast on CUDA) | bf16 | off
    channels_last: bool = True          # on CUDA only
    num_threads: int | None = None      # torch intra-op threads (None: torch's default)
    deterministic: bool = False         # torch.use_deterministic_algorithms (CPU results are reproducible anyway)
    # torch.compile of the training step: off | default | reduce-overhead (+ CUDA graphs). Placement, like
    # the thread count: the same training, not bit-identical (inductor draws the dropout and MAD masks from
    # its own RNG). ~70-90 s of compiling per trial on an H200; pays off only for long runs (bench/RESULTS.md 6)
    compile: str = "off"

    def __post_init__(self) -> None:
        _check(isinstance(self.seed, int) and not isinstance(self.seed, bool) and 0 <= self.seed <= MAX_SEED,
               "seed", self.seed, f"an integer from 0 to {MAX_SEED} (2**63 - 1)")
        _check_choice("device", self.device, DEVICES)
        _check_choice("amp", self.amp, AMP_MODES)
        _check_choice("compile", self.compile, COMPILE_MODES)
        _check(self.num_threads is None or self.num_threads >= 1, "num_threads", self.num_threads,
               "null or an integer >= 1")


# --------------------------------------------------------------------------- flat dicts

def to_flat(config: Any, prefix: str = "") -> dict[str, Any]:
    """A (nested) config dataclass as a flat dict with dotted keys; tuples become lists."""
    flat: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            flat.update(to_flat(value, key + "."))
        else:
            flat[key] = list(value) if isinstance(value, tuple) else value
    return flat


# every key whose value is one of a few words: what a message says of a value YAML made into no word
CHOICES: dict[str, tuple[str, ...]] = {
    "model.stem": STEMS, "model.drop_variant": DROP_VARIANTS, "model.msad_mode": MSAD_MODES,
    "data.dataset": DATASETS, "data.augment": AUGMENTS, "data.normalize": NORMALIZATIONS, "data.sampler": SAMPLERS,
    "data.ferplus_rule": FERPLUS_RULES, "data.rafdb_images": RAFDB_IMAGE_SETS,
    "data.exif_orientation": EXIF_ORIENTATIONS, "optim.optimizer": OPTIMIZERS,
    "optim.weight_decay_on": WEIGHT_DECAY_SCOPES, "optim.schedule": SCHEDULES, "device": DEVICES, "amp": AMP_MODES,
    "compile": COMPILE_MODES}


def not_a_word_text(key: str, value: Any) -> str:
    """What YAML made of an unquoted word given to a key of words (`amp: on` is True, `data.augment: null` None),
    the key's choices, and the one meant where it is plain (`amp: off` is False: 'off'; `null` or `no`: 'none');
    '' for a key of no choices or a value that is no boolean or null."""
    choices = CHOICES.get(key)
    if choices is None or not (value is None or isinstance(value, bool)):
        return ""
    made = ("YAML reads an unquoted null, ~ or empty value as null, no value at all" if value is None else
            f"YAML reads an unquoted {'on, yes or true' if value else 'off, no or false'} as the boolean {value}")
    meant = ("off" if value is False and "off" in choices else
             "none" if value is not True and "none" in choices else None)
    return (f"{made}: {key} is one of {', '.join(choices)}, quoted where YAML would read it otherwise"
            + (f". Did you mean '{meant}'" + (f" (quoted: {key}: \"{meant}\")" if meant == "off" else "") + "?"
               if meant else ""))


def config_keys(cls: type = None) -> tuple[str, ...]:
    """Every valid dotted key of a config class (TrialConfig by default)."""
    return tuple(to_flat((cls or TrialConfig)()).keys())


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _coerce(key: str, value: Any, annotation: Any) -> Any:
    """Check `value` against a field annotation; accept ints for floats and lists for tuples only."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(key, value, inner[0])
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            example = f"[{value}]" if isinstance(value, str) and "," in value else "[15, 30]"
            raise ConfigError(f"{key}={value!r} is invalid: expected a list, e.g. {key}={example}")
        return tuple(_coerce(f"{key}[{i}]", v, args[0]) for i, v in enumerate(value))
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}={value!r} is invalid: expected true or false")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{key}={value!r} is invalid: expected an integer")
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{key}={value!r} is invalid: expected a number")
    if annotation is str:
        if isinstance(value, str):
            return value
        said = not_a_word_text(key, value)
        raise ConfigError(f"{key}={value!r} is invalid: " + (said or "expected a string"))
    return value


def unknown_key_message(key: str, valid: typing.Iterable[str]) -> str:
    """'unknown key X; did you mean Y? valid keys: ...' — shared by every loader."""
    valid = list(valid)
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"unknown key {key!r}.{hint} Valid keys: {', '.join(valid)}"


def from_flat(flat: Mapping[str, Any], base: TrialConfig | None = None) -> TrialConfig:
    """A TrialConfig from dotted keys over `base` (defaults if None). Unknown keys are errors."""
    base = base or TrialConfig()
    valid = config_keys()
    sections: dict[str, dict[str, Any]] = {}
    top: dict[str, Any] = {}
    for key, value in flat.items():
        if key not in valid:
            raise ConfigError(unknown_key_message(key, valid))
        if "." in key:
            section, name = key.split(".", 1)
            sections.setdefault(section, {})[name] = value
        else:
            top[key] = value
    changes: dict[str, Any] = {}
    for section, values in sections.items():
        current = getattr(base, section)
        hints = _field_types(type(current))
        typed = {n: _coerce(f"{section}.{n}", v, hints[n]) for n, v in values.items()}
        changes[section] = dataclasses.replace(current, **typed)
    hints = _field_types(TrialConfig)
    changes.update({n: _coerce(n, v, hints[n]) for n, v in top.items()})
    return dataclasses.replace(base, **changes)


# What decides the decoded data a cell reads (transfer_core.data.load_splits: the data set, its reading and
# split, the image size): a sweep decodes each such data once, before any trial starts, so these keys can
# differ between a table's cells (arms, data sets) but not between a search's samples.
DECODE_KEYS = ("data.dataset", "data.root", "data.val_fraction", "data.split_seed", "data.ferplus_rule",
               "data.affectnet_classes", "data.rafdb_images", "data.exif_orientation", "data.synthetic_per_class",
               "data.synthetic_seed", "model.image_size")

# Keys that one data set alone reads (how it reads its own files, or how the synthetic faces are generated):
# key -> that data set, or the data sets (a tuple) that read it. Elsewhere they are never read.
DATASET_KEYS: dict[str, str | tuple[str, ...]] = {
    "data.ferplus_rule": "ferplus", "data.affectnet_classes": "affectnet", "data.rafdb_images": "rafdb",
    "data.synthetic_per_class": "synthetic", "data.synthetic_seed": "synthetic",
    "data.exif_orientation": ("rafdb", "ferplus", "affectnet", "imagefolder")}   # those read from image files

# Where and how fast a run executes, not what it computes: left out of a cell's identity so that a
# sweep resumed on another machine (other cache folder, thread count) still recognises its cells.
PLACEMENT_KEYS = ("data.cache_dir", "data.num_workers", "num_threads", "compile")

# Keys added after cells were first recorded, with the value that computes what was computed before the
# key existed: at that value a key is left out of a cell's identity, so that earlier cells keep their hash
# (resume, tables), and a state saved without the key reads it as this value.
ADDED_KEYS = {"optim.weight_decay_on": "weights", "data.rafdb_images": "aligned",
              "model.encoder_checkpoint": None, "model.mad_drop_maps": 1, "model.msad_drop_heads": 1,
              "data.exif_orientation": "stored"}


def config_hash(config: TrialConfig, length: int = 12) -> str:
    """A stable short hash of what a config computes: the identity of a sweep cell."""
    flat = {k: v for k, v in to_flat(config).items()
            if k not in PLACEMENT_KEYS and not (k in ADDED_KEYS and v == ADDED_KEYS[k])}
    payload = json.dumps(flat, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:length]


def decode_key(config: TrialConfig, length: int = 12) -> str:
    """A short hash of what decides the decoded data a config reads (DECODE_KEYS): configs that differ only
    in how they train on it (augmentation, sampler, normalisation, model, optimiser) share one decoding."""
    flat = to_flat(config)
    payload = json.dumps({k: flat[k] for k in DECODE_KEYS}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:length]


def parse_value(text: str) -> Any:
    """A string from the command line or MLflow params back to a Python value (JSON, else the string)."""
    lowered = text.strip()
    if lowered in ("None", "null"):
        return None
    if lowered in ("True", "False"):
        return lowered == "True"
    try:
        return json.loads(lowered)
    except json.JSONDecodeError:
        return text
