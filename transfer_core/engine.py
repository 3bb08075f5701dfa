"""Training and evaluation of one TrialConfig: `fit(config, on_epoch=..., resume_from=...)`.

Functions, not script code (torchvision's reference is the model). The orchestration layer hooks in
through `on_epoch(record, state)`: it reports the epoch's metrics, saves `state()` as a checkpoint,
and may return True to stop (a pruner's decision). `state()` is a plain dict of tensors and python
values (loadable with `torch.load(..., weights_only=True)`) holding model, optimizer, scheduler, all
RNG states, the epoch and the history, so that `fit(config, resume_from=state)` continues to the same
result as an uninterrupted run on the CPU. It also keeps the weights of the epoch chosen on validation
when that is not its own epoch (`selected_model_state`): the model that scores `sel_test_acc`.

Model selection is explicit (DESIGN.md "Honest evaluation"): `sel_*` is the test score at the epoch
with the best validation accuracy; `best_test_*` is the best test epoch as the FER literature reports.
"""

from __future__ import annotations

import logging
import math
import os
import random
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from transfer_core.config import PLACEMENT_KEYS, ConfigError, OptimConfig, TrialConfig, from_flat, to_flat
from transfer_core.metrics import accuracy, confusion_matrix, mean_class_accuracy

log = logging.getLogger(__name__)

STATE_FORMAT = 1
EpochCallback = Callable[[dict, Callable[[], dict]], "bool | None"]


class StateError(ValueError):
    """A checkpoint/state dict cannot be resumed from; the message says why."""


# --------------------------------------------------------------------------- history

@dataclass
class History:
    """Per-epoch records (1-based `epoch`) plus the selection summaries derived from them."""

    records: list[dict] = field(default_factory=list)
    class_names: tuple[str, ...] = ()
    stopped_early: bool = False
    diverged_epoch: int | None = None   # the epoch whose losses were not finite, where training stopped

    def summary(self) -> dict[str, float]:
        """best_val_acc, sel_epoch, sel_test_acc/mca, best_test_acc/mca/epoch, final_test_acc, epochs_done;
        and diverged_epoch where the last epoch diverged (`diverged`: `fit` stops there), the explicit record
        of a divergence that readers (tables, figures) need not infer from scores recorded NaN.

        Only epochs whose training and weights are numbers (finite losses: `sound`) are chosen: weights
        gone NaN predict class 0 for every image (argmax of NaNs), which scored class 0's share of a split as
        if it were an accuracy, and could be chosen over real epochs. Without a sound epoch the scores are NaN
        (a table's cell: no value), sel_epoch and best_test_epoch the last."""
        if not self.records:
            return {"epochs_done": 0}
        nan = float("nan")
        scored = [r for r in self.records if sound(r)]
        with_val = [r for r in scored if "val_acc" in r]
        # earliest epoch among equals: ties go to the shorter training
        sel = (max(with_val, key=lambda r: (r["val_acc"], -r["epoch"])) if with_val
               else scored[-1] if scored else self.records[-1])
        best = max(scored, key=lambda r: (r["test_acc"], -r["epoch"])) if scored else self.records[-1]
        last = self.records[-1]
        out = {
            "sel_epoch": sel["epoch"],
            "sel_test_acc": sel["test_acc"] if scored else nan,
            "sel_test_mca": sel["test_mca"] if scored else nan,
            "best_test_acc": best["test_acc"] if scored else nan,
            "best_test_mca": best["test_mca"] if scored else nan,
            "best_test_epoch": best["epoch"],
            "final_test_acc": last["test_acc"] if sound(last) else nan,
            "epochs_done": last["epoch"],
        }
        if diverged(last):
            out["diverged_epoch"] = last["epoch"]
        if with_val:
            out["best_val_acc"] = sel["val_acc"]
        elif "val_acc" in last:
            out["best_val_acc"] = nan
        return out

    def selected_record(self) -> dict:
        """The record of the epoch chosen on validation (the last one without a validation split)."""
        epoch = self.summary()["sel_epoch"]
        return next(r for r in self.records if r["epoch"] == epoch)

    def to_dict(self) -> dict:
        return {"records": self.records, "class_names": list(self.class_names),
                "stopped_early": self.stopped_early, "diverged_epoch": self.diverged_epoch,
                "summary": self.summary()}


def sound(record: Mapping[str, Any]) -> bool:
    """Whether an epoch is scored: its losses, training and evaluation, are finite. NaN weights give NaN logits,
    and predict class 0 for every image: the accuracies of such an epoch are no scores. An epoch whose training
    loss was not finite is not scored either, whatever its evaluation gave: its training diverged, and `fit`
    stops there as at any divergence (scored, it read as a run that trained to the end)."""
    return all(math.isfinite(record.get(key, 0.0)) for key in ("train_loss", "val_loss", "test_loss"))


def diverged(record: Mapping[str, Any]) -> bool:
    """Whether training diverged in this epoch (a loss not finite: not `sound`): `fit` stops after it, since
    weights gone NaN never come back, and no later epoch would score anything."""
    return not sound(record)


def ends_training(record: Mapping[str, Any], epochs: int) -> bool:
    """Whether `fit` trains no epoch after this one by itself: the last, or one that diverged."""
    return record["epoch"] >= epochs or diverged(record)


# --------------------------------------------------------------------------- set-up helpers

def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device='cuda' but torch sees no CUDA device: use device='cpu' or 'auto'")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rng_state() -> dict:
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping) -> None:
    torch.set_rng_state(state["torch"])
    np_s = state["numpy"]
    np.random.set_state(("MT19937", np_s["keys"].numpy().astype(np.uint32), np_s["pos"],
                         np_s["has_gauss"], np_s["cached_gaussian"]))
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def lr_factor(cfg: OptimConfig, epoch: int) -> float:
    """Multiplier of cfg.lr for 0-based `epoch`: linear warm-up, then the schedule."""
    if epoch < cfg.warmup_epochs:
        return (epoch + 1) / (cfg.warmup_epochs + 1)
    if cfg.schedule == "piecewise":
        return cfg.gamma ** sum(epoch >= m for m in cfg.milestones)
    if cfg.schedule == "cosine":
        span = max(1, cfg.epochs - cfg.warmup_epochs)
        return 0.5 * (1.0 + math.cos(math.pi * (epoch - cfg.warmup_epochs) / span))
    return 1.0


def build_optimizer(model: torch.nn.Module, cfg: OptimConfig, fused: bool = False) -> torch.optim.Optimizer:
    """SGD (momentum) or AdamW. With `weight_decay_on="weights"` no weight decay on norms, biases, PReLU and
    the parameters the model names (pos/CLS); with "all" on every parameter, as the release's ppcls
    config does (an L2 regulariser on the optimiser, and no parameter sets its own). Two groups either
    way, so that an optimiser state has one shape.

    fused: one CUDA kernel for the whole update (parameters on a CUDA device only). `fit` does not use it:
    it measured no faster on an H200 (bench/RESULTS.md section 6)."""
    skip = set(getattr(model, "no_weight_decay", lambda: set())())
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if name in skip or p.ndim <= 1 else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay},
              {"params": no_decay, "weight_decay": cfg.weight_decay if cfg.weight_decay_on == "all" else 0.0}]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, fused=fused or None)
    return torch.optim.AdamW(groups, lr=cfg.lr, fused=fused or None)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: OptimConfig) -> torch.optim.lr_scheduler.LambdaLR:
    """Stepped once per epoch."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: lr_factor(cfg, e))


def _autocast(device: torch.device, amp: str):
    enabled = amp == "bf16" or (amp == "auto" and device.type == "cuda")
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)


# --------------------------------------------------------------------------- one epoch

def evaluate(model: torch.nn.Module, loader, num_classes: int, device: torch.device,
             amp: str = "off", channels_last: bool = False) -> dict:
    """loss, acc, mca and the confusion matrix (numpy) over a whole split, in eval mode (MAD, MSAD and
    dropout off); the model is left in the mode it came in (a training loop that evaluates mid-epoch
    goes on training with its regularisers on)."""
    modes = [(m, m.training) for m in model.modules()]   # each module's: a frozen BatchNorm stays frozen
    model.eval()
    try:
        return _evaluate(model, loader, num_classes, device, amp, channels_last)
    finally:
        for module, training in modes:
            module.training = training


def _evaluate(model, loader, num_classes, device, amp, channels_last) -> dict:
    targets, predictions, n = [], [], 0
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    with torch.inference_mode():
        for x, y in loader:
            x = x.to(device, non_blocking=True)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            y = y.to(device, non_blocking=True)
            with _autocast(device, amp):
                logits = model(x)
            loss_sum += F.cross_entropy(logits.float(), y, reduction="sum").double()
            n += y.numel()
            targets.append(y)
            predictions.append(logits.argmax(dim=1))
    if n == 0:
        cm = np.zeros((num_classes, num_classes), dtype=np.int64)
        return {"loss": float("nan"), "acc": 0.0, "mca": 0.0, "confusion": cm}
    # one copy back at the end rather than one per batch (a per-batch read waits for the device)
    cm = confusion_matrix(torch.cat(targets).cpu().numpy(), torch.cat(predictions).cpu().numpy(), num_classes)
    loss_sum = float(loss_sum)
    return {"loss": loss_sum / n, "acc": accuracy(cm), "mca": mean_class_accuracy(cm), "confusion": cm}


def train_one_epoch(model, loader, optimizer, cfg: OptimConfig, device, amp="off",
                    channels_last=False, compiled=None) -> dict:
    """One pass over `loader`. Loss and hits are summed on the device and read once at the end: a read
    per step makes the host wait for the GPU at every step.

    compiled: torch.compile(model), used for full batches; the epoch's short last batch goes through
    `model` itself, so that one compiled graph (and one CUDA graph) serves the whole run."""
    model.train()
    full_batch = getattr(loader, "batch_size", None)     # None: the first batch's size
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    n = 0
    start = time.perf_counter()
    for x, y in loader:
        x = x.to(device, non_blocking=True)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        y = y.to(device, non_blocking=True)
        full_batch = full_batch or len(y)
        step_model = compiled if compiled is not None and len(y) == full_batch else model
        with _autocast(device, amp):
            logits = step_model(x)
        loss = F.cross_entropy(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        loss_sum += loss.detach().double() * y.numel()
        correct += (logits.argmax(dim=1) == y).sum()
        n += y.numel()
    train_loss, train_correct = float(loss_sum), int(correct)    # the epoch's one wait for the device
    seconds = time.perf_counter() - start
    return {"train_loss": train_loss / max(n, 1), "train_acc": train_correct / max(n, 1),
            "train_images_per_s": n / seconds if seconds > 0 else 0.0}


# --------------------------------------------------------------------------- fit

def check_single_sample_batches(config: TrialConfig, train_size: int) -> None:
    """ConfigError, before anything is trained, where a training batch would hold one sample and the stem's
    feature map is 1 x 1 (model.stem=resnet18 at model.image_size=16): BatchNorm in training mode cannot
    normalise a single value per channel, and torch would fail at that batch (a short last one: at the end
    of the first epoch) with a message that names no key."""
    from transfer_core.config import STEM_STRIDES
    from transfer_core.data.loaders import sampler_kind

    if config.model.image_size // STEM_STRIDES[config.model.stem] > 1:
        return
    per_epoch = (config.data.epoch_samples or train_size) if sampler_kind(config.data) == "balanced" else train_size
    batch = config.optim.batch_size
    if batch == 1 or per_epoch % batch == 1:   # the last batch (or the only one) holds one sample
        raise ConfigError(
            f"optim.batch_size={batch} leaves a training batch of 1 sample ({per_epoch} per epoch), and "
            f"model.stem={config.model.stem!r} at model.image_size={config.model.image_size} makes a 1 x 1 feature "
            "map, where BatchNorm cannot train on one sample: choose another optim.batch_size, or a larger "
            "model.image_size")


def fit(config: TrialConfig, on_epoch: EpochCallback | None = None,
        resume_from: Mapping[str, Any] | None = None, data=None) -> History:
    """Train `config` to its last epoch (or until `on_epoch` returns True) and return the history.

    data: a `transfer_core.data.DataSplits` already decoded (e.g. from Ray's object store);
    None decodes (or reads from cache) `config.data` here.

    `deterministic` and `num_threads` hold for this fit only: torch's process-wide settings are put back
    afterwards (also when it raises), so a process that trains several cells in turn (a reused Tune actor)
    trains each as a fresh one would, and a notebook that calls fit keeps its own thread count.
    """
    before = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    threads = torch.get_num_threads()
    if config.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        if config.num_threads is not None:
            torch.set_num_threads(config.num_threads)
        return _fit(config, on_epoch, resume_from, data)
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


def _fit(config: TrialConfig, on_epoch: EpochCallback | None, resume_from: Mapping[str, Any] | None,
         data) -> History:
    from transfer_core.data import build_eval_loader, build_train_loader, load_splits
    from transfer_core.models import build_model

    device = resolve_device(config.device)
    on_gpu = device.type == "cuda"   # cudnn.benchmark stays off: it cost a trial ~20 s (bench/RESULTS.md 6)
    amp = config.amp if on_gpu or config.amp == "bf16" else "off"
    channels_last = config.channels_last and on_gpu

    seed_everything(config.seed)
    if data is None:
        data = load_splits(config.data, config.model.image_size)
    num_classes = len(data.class_names)
    if num_classes != config.model.num_classes:
        raise ConfigError(f"model.num_classes={config.model.num_classes} but data set "
                          f"{data.dataset!r} has {num_classes} classes ({', '.join(data.class_names)}): "
                          f"set model.num_classes={num_classes}")

    check_single_sample_batches(config, len(data.train))

    model = build_model(config.model).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model, config.optim)
    scheduler = build_scheduler(optimizer, config.optim)
    compiled = None
    if config.compile != "off":              # training only: evaluation runs `model` itself
        compiled = torch.compile(model, mode=None if config.compile == "default" else config.compile)
    history = History(class_names=tuple(data.class_names))
    start_epoch = 0
    # the weights of the epoch chosen on validation, for the states handed to on_epoch (None: not known,
    # a state saved before states held them); kept only where there is an on_epoch to take states
    selected: Mapping[str, torch.Tensor] | None = None
    if resume_from is not None:
        start_epoch = _restore(resume_from, config, model, optimizer, scheduler, history)
        selected = selected_model_state(resume_from)
        log.info("resuming %s at epoch %d", config.model.stem, start_epoch + 1)
        if history.records and diverged(history.records[-1]):   # a state saved as it diverged: nothing to train
            history.diverged_epoch = history.records[-1]["epoch"]
            history.stopped_early = history.diverged_epoch < config.optim.epochs
            return history

    train_loader = build_train_loader(data.train, config.data, config.model.image_size,
                                      config.optim.batch_size, pin_memory=on_gpu)
    eval_batch = max(config.optim.batch_size, 128)
    val_loader = (build_eval_loader(data.val, config.data, config.model.image_size, eval_batch, on_gpu)
                  if len(data.val) else None)
    test_loader = build_eval_loader(data.test, config.data, config.model.image_size, eval_batch, on_gpu)

    for epoch in range(start_epoch, config.optim.epochs):
        t0 = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        record: dict[str, Any] = {"epoch": epoch + 1, "lr": lr}
        record.update(train_one_epoch(model, train_loader, optimizer, config.optim, device, amp, channels_last,
                                      compiled))
        scheduler.step()
        if val_loader is not None:
            val = evaluate(model, val_loader, num_classes, device, amp, channels_last)
            record.update(val_loss=val["loss"], val_acc=val["acc"], val_mca=val["mca"])
        test = evaluate(model, test_loader, num_classes, device, amp, channels_last)
        record.update(test_loss=test["loss"], test_acc=test["acc"], test_mca=test["mca"],
                      test_confusion=test["confusion"].tolist())
        record["epoch_time_s"] = time.perf_counter() - t0
        history.records.append(record)
        log.info("epoch %d/%d loss %.4f val %.4f test %.4f", epoch + 1, config.optim.epochs,
                 record["train_loss"], record.get("val_acc", float("nan")), record["test_acc"])
        if diverged(record):
            log.warning("training diverged at epoch %d of %d (lr %g): its losses are not finite (train %s, test %s), "
                        "so training stops here; the epochs before it stand. Lower optim.lr (or narrow a search's "
                        "range)", epoch + 1, config.optim.epochs, lr, record["train_loss"], record["test_loss"])
            history.diverged_epoch = epoch + 1
        if on_epoch is not None:
            # a copy on the model's device (a GPU copies there, fast), also without validation: an epoch that
            # diverges later is not chosen, and the one before it is
            if history.summary()["sel_epoch"] == epoch + 1:
                selected = {k: v.detach().clone() for k, v in model.state_dict().items()}
            snapshot = lambda: make_state(config, model, optimizer, scheduler, history, selected)  # noqa: E731
            if on_epoch(record, snapshot):
                history.stopped_early = epoch + 1 < config.optim.epochs
                break
        if history.diverged_epoch is not None:
            history.stopped_early = epoch + 1 < config.optim.epochs
            break
    return history


# --------------------------------------------------------------------------- state dicts

def _cpu_copy(value: Any) -> Any:
    """`value` with every tensor copied to the CPU, containers rebuilt: shares nothing with training."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, Mapping):
        return {k: _cpu_copy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_cpu_copy(v) for v in value)
    return value


STATE_SECTIONS = ("config", "epoch", "model", "optimizer", "scheduler", "rng", "history")


def make_state(config: TrialConfig, model, optimizer, scheduler, history: History,
               selected_model: Mapping[str, torch.Tensor] | None = None) -> dict:
    """Everything needed to continue after the last finished epoch; plain types only. A copy: training
    on after it was taken changes nothing in it (optimizer.state_dict() and the history are live views,
    updated in place by later steps and epochs).

    selected_model: the weights of the epoch chosen on validation (History.summary's sel_epoch), kept
    as `selected_model` with its `selected_epoch` when that is an earlier epoch than the state's (when
    it is the state's own, `model` holds them); read back with `selected_model_state`."""
    state = {
        "format": STATE_FORMAT,
        "config": to_flat(config),
        "epoch": history.records[-1]["epoch"] if history.records else 0,
        "model": _cpu_copy(model.state_dict()),
        "optimizer": _cpu_copy(optimizer.state_dict()),
        "scheduler": _cpu_copy(scheduler.state_dict()),
        "rng": _rng_state(),
        "history": {"records": [dict(r) for r in history.records], "class_names": list(history.class_names)},
    }
    chosen = history.summary().get("sel_epoch")
    if selected_model is not None and chosen is not None and chosen != state["epoch"]:
        state["selected_model"], state["selected_epoch"] = _cpu_copy(selected_model), chosen
    return state


def selected_model_state(state: Mapping[str, Any]) -> Mapping[str, torch.Tensor] | None:
    """The model weights of `state`'s epoch chosen on validation, those that score its `sel_test_acc`:
    `model` when that is the state's own epoch, else the `selected_model` kept beside it; None when no
    epoch is done, or the chosen epoch's weights were not kept (a state saved before states kept them,
    or resumed from one)."""
    records = state["history"]["records"]
    if not records:
        return None
    chosen = History(records=list(records)).summary()["sel_epoch"]
    if chosen == state["epoch"]:
        return state["model"]
    return state.get("selected_model") if state.get("selected_epoch") == chosen else None


def check_state_config(state: Mapping, config: TrialConfig) -> None:
    """StateError unless `state` was made by make_state for this training. Placement (workers,
    threads, cache folder, compile) may differ: the same training, run differently."""
    if state.get("format") != STATE_FORMAT:
        raise StateError(f"state format {state.get('format')!r} is not {STATE_FORMAT}: "
                         "it was not written by transfer_core.engine.make_state")
    missing = [k for k in STATE_SECTIONS if k not in state]
    if missing:
        raise StateError(f"the state lacks {', '.join(missing)}: it is damaged or was not written by "
                         "transfer_core.engine.make_state")
    try:
        saved = to_flat(from_flat(state["config"]))
    except (ConfigError, KeyError, TypeError, AttributeError) as exc:
        raise StateError(f"the state's config cannot be read ({exc}): it was saved by another version "
                         "of transfer_core or is damaged") from exc
    diff = sorted(k for k, v in to_flat(config).items() if k not in PLACEMENT_KEYS and saved.get(k) != v)
    if diff:
        raise StateError(f"the state was saved for another config; differing keys: {', '.join(diff)}")


def _restore(state: Mapping, config: TrialConfig, model, optimizer, scheduler, history: History) -> int:
    check_state_config(state, config)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    _set_rng_state(state["rng"])
    history.records[:] = list(state["history"]["records"])
    return int(state["epoch"])


def save_state(state: Mapping, path: str | os.PathLike, sync: bool = True) -> Path:
    """Write atomically (temp file + rename): a crash never leaves a half-written checkpoint.

    sync=False skips the fsync, for a file that is copied elsewhere at once (a trial's checkpoint folder,
    which Tune copies into storage): the copy is what must survive."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(dict(state), fh)
            fh.flush()
            if sync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_state(path: str | os.PathLike) -> dict:
    """Load a state saved by `save_state`; a truncated or foreign file is a StateError naming it."""
    path = Path(path)
    if not path.is_file():
        raise StateError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a corrupt/unsafe file
        raise StateError(f"checkpoint {path} cannot be read ({type(exc).__name__}: {exc}); "
                         "it is corrupt or not a transfer_core state") from exc
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise StateError(f"checkpoint {path} is not a transfer_core state (format {STATE_FORMAT})")
    return state
