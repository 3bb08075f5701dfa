"""Optuna pruners inside Ray Tune: a registry of pruner specs and a searcher/scheduler bridge.

Why a bridge: Ray Tune 2.60's `OptunaSearch` hard-codes `NopPruner` (ray/tune/search/optuna/optuna_search.py:405)
and nothing in Ray calls `should_prune()`. A Tune searcher cannot stop a trial; only a `TrialScheduler` can
(it answers CONTINUE or STOP). And a trial a scheduler stops reaches `OptunaSearch.on_trial_complete` with its
last result, so Optuna records it as COMPLETE with a partial value (optuna_search.py:553-569), and TPE learns
from it as if it were final.

So, two linked objects:
- `PrunableOptunaSearch` installs the pruner on the study and tells Optuna PRUNED for trials the scheduler
  stopped. It holds all bridge state, because Tune checkpoints the searcher (tune_controller.py:352) but not
  the scheduler, which comes back from `tuner.pkl` as it was before `fit()`.
- `OptunaPruningScheduler` reports each result to the trial's Optuna trial at the number of epochs the trial
  has completed (1-based, as Tune, MLflow's metric steps and our tables count them: the result's `epochs_done`,
  else Tune's `training_iteration`, which counts the same until an attempt starts over; `schema.step_of`),
  asks `should_prune()` and answers STOP when it says so. A step is the resource spent, as successive halving
  and Hyperband mean it: `min_resource: 1` decides after the first epoch, as ASHA's grace period 1 does.
  (Optuna's own framework integrations report 0-based epoch indices; with those, no rung of successive
  halving can be earlier than the second epoch: bench/RESULTS.md §3 measured what that cost.)

Both are pickled together in `tuner.pkl`, so they stay one pair after `tune.Tuner.restore`; Tune then refreshes
the searcher in place (`__dict__.update`, optuna_search.py:638-642) from its latest checkpoint. A trial that
errored was told FAIL, which Optuna cannot undo: when `resume_errored=True` brings it back, it continues in a new
Optuna trial with the same params and intermediate values (`resumed_from_trial`), and the FAIL record stays.
A trial that errors is tagged so (`errored_at_step`, by the scheduler's `on_trial_error`, at each failure), and the
tpe and gp samplers read the FAIL of one that failed after every retry as the study's worst (`FailureAwareTPESampler`,
`PrunedAwareGPSampler`): Optuna's read no FAIL trial, so a configuration that crashed each time was drawn again and
again.
"""

from __future__ import annotations

import copy
import difflib
import inspect
import logging
import math
import os
import re
import types
import typing
import warnings
from typing import Any, Callable, Mapping

import optuna
from optuna.pruners import BasePruner
from optuna.trial import TrialState
from ray.tune.schedulers import FIFOScheduler, TrialScheduler
from ray.tune.search.optuna import OptunaSearch

from sweeps.schema import FINAL_STEP_KEY, step_of
from transfer_core.registry import Registry, RegistryError

logger = logging.getLogger(__name__)

TUNE_TRIAL_ID_ATTR = "tune_trial_id"  # Optuna user attribute: which Tune trial an Optuna trial belongs to
RESUMED_FROM_ATTR = "resumed_from_trial"  # Optuna user attribute: number of the FAIL trial it continues
NAN_VALUE_ATTR = "nan_value_at_step"  # Optuna user attribute: the step whose metric was NaN, where it ended
ERRORED_ATTR = "errored_at_step"  # Optuna user attribute: the steps a trial had reported at its latest error


class _WithoutGreenletNote(logging.Filter):
    """Optuna's GP logs, as its first fit imports its optimiser (optuna/_gp/batched_lbfgsb.py), a warning that the
    optional greenlet package is unavailable and that it optimises sequentially: nothing a researcher can act on
    (greenlet is not in our stack; the GP's timings in the README are without it), said in every gp search's log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("The 'greenlet' package is unavailable")


GP_OPTIMIZER_LOGGER = "optuna._gp.batched_lbfgsb"   # the logger Optuna's note comes from (its module's name)
if not any(isinstance(f, _WithoutGreenletNote) for f in logging.getLogger(GP_OPTIMIZER_LOGGER).filters):
    logging.getLogger(GP_OPTIMIZER_LOGGER).addFilter(_WithoutGreenletNote())   # before a GP fit imports the module


class PrunerSpecError(ValueError):
    """A pruner spec that names an unknown pruner or argument, or a value the pruner refuses."""


# ----------------------------------------------------------------------------------------------- registry

PrunerFactory = Callable[..., BasePruner]
PRUNERS: Registry[PrunerFactory] = Registry("pruner")

PRUNERS.register("median")(optuna.pruners.MedianPruner)
PRUNERS.register("percentile")(optuna.pruners.PercentilePruner)
PRUNERS.register("successive_halving")(optuna.pruners.SuccessiveHalvingPruner)


@PRUNERS.register("hyperband")
def _hyperband(min_resource: int = 1, max_resource: str | int = "auto", reduction_factor: int = 3,
               bootstrap_count: int = 0) -> optuna.pruners.HyperbandPruner:
    """HyperbandPruner, its arguments checked now. Optuna checks them only in the first prune(), after a
    trial's first epoch: reduction_factor 1 or min_resource 0 raise ZeroDivisionError there, max_resource 0 a
    math domain error (raised by the scheduler, they end the sweep), and max_resource < min_resource leaves no
    bracket, so nothing is ever pruned (optuna/pruners/_hyperband.py, _try_initialization)."""
    def refuse(argument: str, value: Any, expected: str) -> PrunerSpecError:
        return PrunerSpecError(f"pruner 'hyperband', argument {argument!r}: {argument}={value!r} is invalid: "
                               f"expected {expected}")

    if min_resource < 1:
        raise refuse("min_resource", min_resource, "an integer >= 1")
    if reduction_factor < 2:
        raise refuse("reduction_factor", reduction_factor, "an integer >= 2")
    if max_resource != "auto" and (not isinstance(max_resource, int) or isinstance(max_resource, bool)
                                   or max_resource < min_resource):
        raise refuse("max_resource", max_resource, f"an integer >= min_resource ({min_resource}), or 'auto'")
    return optuna.pruners.HyperbandPruner(min_resource=min_resource, max_resource=max_resource,
                                          reduction_factor=reduction_factor, bootstrap_count=bootstrap_count)


@PRUNERS.register("patient")
def _patient(wrapped: Mapping[str, Any] | None = None, *, patience: int,
             min_delta: float = 0.0) -> optuna.pruners.PatientPruner:
    """PatientPruner around another pruner given as a nested spec (`wrapped: {type: median}`)."""
    try:
        inner = make_pruner(wrapped) if wrapped is not None else None
    except PrunerSpecError as exc:
        raise PrunerSpecError(f"pruner 'patient', argument 'wrapped': {exc}") from exc
    return optuna.pruners.PatientPruner(inner, patience=patience, min_delta=min_delta)


# Limitation: WilcoxonPruner pairs values by step and treats a step as a problem *instance* id (a CV fold, an
# evaluation seed), testing the trial against the best one instance by instance (optuna/pruners/_wilcoxon.py).
# Our steps are epochs, so it compares learning curves point by point: only meaningful when each report is one
# instance's score. Needs scipy.
PRUNERS.register("wilcoxon")(optuna.pruners.WilcoxonPruner)
PRUNERS.register("threshold")(optuna.pruners.ThresholdPruner)
PRUNERS.register("none")(optuna.pruners.NopPruner)


def _factory(name: object) -> PrunerFactory:
    if not isinstance(name, str):
        raise PrunerSpecError(f"pruner type must be a string, got {type(name).__name__} {name!r}. "
                              f"Valid: {', '.join(PRUNERS.names())}")
    try:
        return PRUNERS.get(name)
    except RegistryError as exc:
        raise PrunerSpecError(str(exc)) from None


def _parameters(factory: PrunerFactory) -> dict[str, inspect.Parameter]:
    return {p.name: p for p in inspect.signature(factory).parameters.values()
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def pruner_arguments(name: str) -> tuple[str, ...]:
    """The arguments pruner `name` accepts in a spec (besides `type`), in signature order."""
    return tuple(_parameters(_factory(name)))


def _type_hints(factory: PrunerFactory) -> dict[str, Any]:
    try:
        return typing.get_type_hints(factory.__init__ if isinstance(factory, type) else factory)
    except Exception:  # an annotation that does not evaluate: leave type checks to the pruner
        return {}


def _accepts(hint: Any, value: Any) -> bool:
    """Whether `value` fits a simple annotation (int, float, str, None, unions, Mapping, classes)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(arg, value) for arg in typing.get_args(hint))
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    hint = origin or hint
    if hint is type(None) or hint is None:
        return value is None
    if isinstance(value, bool) and hint in (int, float):
        return False
    if hint is float:
        return isinstance(value, (int, float))
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True


def _hint_name(hint: Any) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_hint_name(arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return "None"
    hint = typing.get_origin(hint) or hint
    return getattr(hint, "__name__", str(hint))


def _did_you_mean(name: str, valid: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(name, valid, n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def with_defaults(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A pruner spec with every argument its pruner takes, as given or at the pruner's default: the pruner
    it builds (`{type: median}` and `{type: median, n_startup_trials: 5}` build one), a nested spec (`patient`'s
    `wrapped`) filled too. A spec of a type no longer registered is as given: nothing is known of its defaults."""
    try:
        params = _parameters(_factory(spec.get("type")))
    except PrunerSpecError:
        return dict(spec)
    filled = {"type": spec["type"], **{p.name: p.default for p in params.values() if p.default is not p.empty},
              **{k: v for k, v in spec.items() if k != "type"}}
    if isinstance(filled.get("wrapped"), Mapping):
        filled["wrapped"] = with_defaults(filled["wrapped"])
    return filled


def make_pruner(spec: Mapping[str, Any]) -> BasePruner:
    """Build an Optuna pruner from a spec like `{"type": "median", "n_startup_trials": 2}`.

    Everything is checked here, before a sweep starts: the type, each argument's name and type, required
    arguments, and the pruner's own range checks (Optuna's ValueError/TypeError, re-raised as
    `PrunerSpecError` naming the pruner and the argument).
    """
    if not isinstance(spec, Mapping):
        raise PrunerSpecError(f"pruner spec must be a mapping with a 'type' key, got {type(spec).__name__}")
    if "type" not in spec:
        raise PrunerSpecError(f"pruner spec needs a 'type' key. Valid types: {', '.join(PRUNERS.names())}")
    name = spec["type"]
    factory = _factory(name)
    params = _parameters(factory)
    valid = tuple(params)
    kwargs = {key: value for key, value in spec.items() if key != "type"}
    for key in kwargs:
        if key not in params:
            listed = f"Valid: {', '.join(valid)}" if valid else "It takes no arguments."
            raise PrunerSpecError(f"pruner {name!r} got unknown argument {key!r}."
                                  f"{_did_you_mean(str(key), valid)} {listed}")
    missing = [p for p in params.values() if p.default is p.empty and p.name not in kwargs]
    if missing:
        raise PrunerSpecError(f"pruner {name!r} needs argument {missing[0].name!r}. Valid: {', '.join(valid)}")
    hints = _type_hints(factory)
    for key, value in kwargs.items():
        if key in hints and not _accepts(hints[key], value):
            raise PrunerSpecError(f"pruner {name!r}, argument {key!r}: expected {_hint_name(hints[key])}, "
                                  f"got {type(value).__name__} {value!r}")
        if isinstance(value, float) and math.isnan(value):   # every comparison with it is false: never prunes
            raise PrunerSpecError(f"pruner {name!r}, argument {key!r}: NaN is not a number to compare with; "
                                  "give a number, or leave the argument out")
    try:
        with warnings.catch_warnings():   # "PatientPruner/WilcoxonPruner is experimental": nothing for a user to do
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return factory(**kwargs)
    except PrunerSpecError:
        raise
    except (ValueError, TypeError) as exc:
        named = [p for p in valid if re.search(rf"\b{re.escape(p)}\b", str(exc))]
        where = (f", argument {named[0]!r}" if len(named) == 1
                 else f", arguments {', '.join(map(repr, named))}" if named else "")
        raise PrunerSpecError(f"pruner {name!r}{where}: {exc}") from exc


def never_prunes(spec: Mapping[str, Any], epochs: int, num_samples: int) -> str | None:
    """Why a pruner built from a valid `spec` can stop no trial of a search of `num_samples` trials of
    `epochs` epochs each, or None (it may, or it is `none`, which says so itself). The scheduler asks it
    after epochs 1 .. epochs - 1 (`OptunaPruningScheduler`: a trial that trained its last epoch is done),
    so a pruner whose first decision comes later runs every trial to its end, as no pruner would."""
    name = spec["type"]
    if name == "none":
        return None
    last = epochs - 1
    if last < 1:
        return f"a trial of {epochs} epoch has nothing left to stop after its first report"
    args = {p.name: p.default for p in _parameters(_factory(name)).values() if p.default is not p.empty}
    args.update({k: v for k, v in spec.items() if k != "type"})
    if name in ("median", "percentile", "threshold") and args.get("n_warmup_steps", 0) > last:
        return (f"n_warmup_steps={args['n_warmup_steps']} lets it stop a trial from epoch "
                f"{args['n_warmup_steps']} on, and a trial of {epochs} epochs is done after epoch {last + 1}: "
                f"give n_warmup_steps <= {last}")
    for waits in ("n_startup_trials", "n_min_trials"):
        if name in ("median", "percentile") and args.get(waits, 0) >= num_samples:
            return (f"{waits}={args[waits]} waits for {args[waits]} completed trials before it stops one, and the "
                    f"search runs {num_samples} in all: give {waits} < {num_samples}")
    if name in ("successive_halving", "hyperband") and isinstance(args.get("min_resource"), int):
        first = args["min_resource"] * args.get("reduction_factor", 4) ** args.get("min_early_stopping_rate", 0)
        if first > last:
            return (f"its first rung is at epoch {first} (min_resource x reduction_factor ^ "
                    f"min_early_stopping_rate), and a trial of {epochs} epochs is done after epoch {last + 1}: "
                    f"give a first rung <= {last}")
    if name == "patient":
        if args["patience"] + 2 > last:
            return (f"patience={args['patience']} waits for {args['patience'] + 2} epochs before it can stop a "
                    f"trial, and a trial of {epochs} epochs is done after epoch {last + 1}: give patience "
                    f"<= {last - 2}" if last >= 2 else f"patience={args['patience']} waits for more epochs than a "
                    f"trial of {epochs} epochs has")
        wrapped = args.get("wrapped")
        inner = never_prunes(wrapped, epochs, num_samples) if wrapped is not None else None
        if inner is not None:
            return f"its wrapped pruner {wrapped.get('type')!r} never stops one: {inner}"
    return None


# ----------------------------------------------------------------------------------------------- searcher

class PrunableOptunaSearch(OptunaSearch):
    """`OptunaSearch` with a pruner on its study, and PRUNED (not COMPLETE) for trials the scheduler stopped,
    and for trials that end with their metric NaN (a training that diverged: `_mark_nan_value`).

    Everything else is OptunaSearch: sampler, seed, space (dict, Optuna distributions or define-by-run),
    points_to_evaluate, evaluated_rewards, storage, study_name. Pair it with `OptunaPruningScheduler(self)`;
    used alone it records intermediate values but prunes nothing (a searcher cannot stop a trial).

    Intermediate values are reported once per step (epochs done: `step_of`) by whichever of searcher and
    scheduler sees a result first (the scheduler, when paired), so there is no double reporting.
    """

    def __init__(self, space: Any = None, metric: str | list[str] | None = None,
                 mode: str | list[str] | None = None, points_to_evaluate: list[dict] | None = None,
                 sampler: optuna.samplers.BaseSampler | None = None, study_name: str | None = None,
                 storage: optuna.storages.BaseStorage | None = None, seed: int | None = None,
                 evaluated_rewards: list | None = None, *, pruner: BasePruner | None = None) -> None:
        if pruner is not None and not isinstance(pruner, BasePruner):
            raise TypeError(f"pruner must be an optuna.pruners.BasePruner (see make_pruner), "
                            f"got {type(pruner).__name__}")
        # Set before OptunaSearch.__init__, which calls _setup_study when a space is given.
        self._pruner: BasePruner = pruner if pruner is not None else optuna.pruners.NopPruner()
        self._pruned_at: dict[str, int] = {}  # Tune trial id -> step (epochs done) at which it was pruned
        self._last_step: dict[str, int] = {}  # Tune trial id -> last step reported to Optuna
        self._resumed: set[str] = set()  # trials reopened after an errored run was resumed
        self._failed: set[str] = set()  # trials told FAIL
        super().__init__(space=space, metric=metric, mode=mode, points_to_evaluate=points_to_evaluate,
                         sampler=sampler, study_name=study_name, storage=storage, seed=seed,
                         evaluated_rewards=evaluated_rewards)

    # -- public queries
    @property
    def pruner(self) -> BasePruner:
        return self._pruner

    @property
    def study(self) -> optuna.Study | None:
        """The Optuna study (None until the search space is known)."""
        return self._ot_study

    @property
    def multi_objective(self) -> bool:
        """Optuna's report/should_prune raise for multi-objective studies: no pruning then."""
        return isinstance(self._metric, (list, tuple))

    def pruned_trials(self) -> dict[str, int]:
        """Tune trial id -> step (epochs completed) at which the pruner stopped it."""
        return dict(self._pruned_at)

    def was_pruned(self, trial_id: str) -> bool:
        return trial_id in self._pruned_at

    # -- study set-up
    def _setup_study(self, mode: str | list) -> None:
        points, rewards = self._points_to_evaluate, self._evaluated_rewards
        if points and self._stored_study_has_trials():
            # A persistent study being reopened (Tuner.restore sets up the study again before the
            # checkpoint is loaded): its points were enqueued the first time; do not queue them twice.
            logger.info("study %r already has trials: points_to_evaluate not enqueued again", self._study_name)
            self._points_to_evaluate, self._evaluated_rewards = [], None
        try:
            super()._setup_study(mode)
        finally:
            self._points_to_evaluate, self._evaluated_rewards = points, rewards
        self._ot_study.pruner = self._pruner  # Ray passed NopPruner; Study.pruner is a plain attribute
        if self.multi_objective and not isinstance(self._pruner, optuna.pruners.NopPruner):
            logger.warning("multi-objective study: Optuna cannot prune it, %s is ignored",
                           type(self._pruner).__name__)

    def _stored_study_has_trials(self) -> bool:
        if self._storage is None:
            return False  # in-memory: every _setup_study starts a new study
        if self._study_name not in optuna.study.get_all_study_names(self._storage):
            return False
        study = optuna.load_study(study_name=self._study_name, storage=self._storage)
        return len(study.get_trials(deepcopy=False)) > 0

    def suggest(self, trial_id: str) -> dict | None:
        new = trial_id not in self._ot_trials
        config = super().suggest(trial_id)
        if new and trial_id in self._ot_trials:
            self._ot_trials[trial_id].set_user_attr(TUNE_TRIAL_ID_ATTR, trial_id)
        return config

    # -- results (called by the scheduler first, then by Tune for results the scheduler did not stop)
    def report_result(self, trial_id: str, result: Mapping[str, Any]) -> int | None:
        """Report `result[metric]` at step `step_of(result)`; the step, or None if nothing new.

        Nothing is reported for multi-objective studies, trials unknown or already finished, results without
        the metric or a step, and steps at or before the last one reported (a repeated final result, a trial
        resumed from an older checkpoint or started over: Optuna would ignore them with a warning, and the
        pruner judged those epochs already).
        """
        ot_trial = self._ot_trials.get(trial_id)
        step = step_of(result)
        if (self.multi_objective or ot_trial is None or trial_id in self._completed_trials
                or self._metric not in result or step is None):
            return None
        if step < 1 or step <= self._last_step.get(trial_id, 0):
            return None
        ot_trial.report(float(result[self._metric]), step)
        self._last_step[trial_id] = step
        return step

    def should_prune(self, trial_id: str) -> bool:
        """The pruner's verdict on the trial's latest reported step."""
        if self.multi_objective or trial_id not in self._ot_trials or trial_id in self._completed_trials:
            return False
        return self._ot_trials[trial_id].should_prune()

    def mark_pruned(self, trial_id: str, step: int) -> None:
        self._pruned_at[trial_id] = step

    def mark_errored(self, trial_id: str) -> None:
        """Tag the trial `ERRORED_ATTR` (the steps it had reported): it failed (the paired scheduler's
        `on_trial_error`, which Tune calls at each failure: before each retry, and once more after the last, just
        before it tells this searcher error). Read on a FAIL trial alone, one that failed after every retry, which
        the samplers read as the study's worst (`_PrunedAsCompleted`, `_FailedAsPruned`); a retried trial that then
        ends otherwise keeps the tag, unread. A FAIL without it, a trial drawn but never run
        (`tune_state.ExtendedSearch.forget_trials`), stays no data."""
        ot_trial = self._ot_trials.get(trial_id)
        if ot_trial is not None and trial_id not in self._completed_trials:
            ot_trial.set_user_attr(ERRORED_ATTR, self._last_step.get(trial_id, 0))

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self.report_result(trial_id, result)  # a no-op when the paired scheduler has reported this step

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id in self._completed_trials:
            if trial_id not in self._resumed:  # resumed ones may be completed by the scheduler first
                logger.warning("Received additional completion for trial %s, but it already finished", trial_id)
            return
        ot_trial = self._ot_trials.get(trial_id)
        if ot_trial is None:
            logger.warning("trial %s is unknown to the Optuna study; its completion is not recorded", trial_id)
            return
        if trial_id in self._pruned_at:
            values, state = None, TrialState.PRUNED  # Optuna keeps the last intermediate value as its value
        elif not error and self._mark_nan_value(trial_id, result):
            values, state = None, TrialState.PRUNED
        else:
            if not result:
                values = None
            elif self.multi_objective:
                values = [result.get(m) for m in self._metric]
                values = None if any(v is None for v in values) else values
            else:
                values = result.get(self._metric)
            state = TrialState.COMPLETE
            if values is None:
                state = TrialState.FAIL if error else TrialState.PRUNED
        try:
            self._ot_study.tell(ot_trial, values, state=state)
        except Exception as exc:  # e.g. a NaN final value; as OptunaSearch does
            logger.warning("Optuna refused the result of trial %s: %s", trial_id, exc)
        self._completed_trials.add(trial_id)
        if state == TrialState.FAIL:
            self._failed.add(trial_id)

    def _mark_nan_value(self, trial_id: str, result: Mapping[str, Any] | None) -> bool:
        """Whether a trial ends with its metric NaN (a training that diverged: sweeps.trainable reports no
        score of weights gone NaN); if so it is tagged `NAN_VALUE_ATTR` (its step), which tells it from a trial
        the pruner stopped, and `on_trial_complete` tells Optuna PRUNED, its NaN the last intermediate value.

        Optuna refuses NaN as a COMPLETE value ("The value nan is not acceptable"): Ray's OptunaSearch only
        logs that, and the trial stays RUNNING in the study for good. As FAIL, TPE would ignore it and draw
        around its parameters again. As PRUNED, TPE ranks it below every completed trial and, at its step,
        below every pruned one (a NaN intermediate value scores as the worst: optuna/samplers/_tpe/sampler.py,
        _get_pruned_trial_score), so the search learns those parameters failed without a made-up number,
        and `best_trial` passes it over."""
        if self.multi_objective or not result:
            return False
        value = result.get(self._metric)
        if not (isinstance(value, (int, float)) and math.isnan(value)):
            return False
        self.report_result(trial_id, result)   # its NaN, where the scheduler has not reported this step
        step = self._last_step.get(trial_id, 0)
        self._ot_trials[trial_id].set_user_attr(NAN_VALUE_ATTR, step)
        logger.warning("trial %s ended with %s NaN at step %d (a training that diverged): told Optuna PRUNED, "
                       "ranked below every trial with a value", trial_id, self._metric, step)
        return True

    # -- Tuner.restore(resume_errored=True)
    def resume_failed(self, trial_id: str) -> bool:
        """Give a resumed errored trial a live Optuna trial again; True if it did.

        The error was told to Optuna as FAIL, which is final. The resumed Tune trial (same trial id, from its
        checkpoint) gets a new RUNNING Optuna trial with the same params and intermediate values, tagged
        `resumed_from_trial`; the FAIL record stays as the failed attempt.
        """
        if trial_id not in self._failed or trial_id not in self._ot_trials:
            return False
        study = self._ot_study
        old = study._storage.get_trial(self._ot_trials[trial_id]._trial_id)
        template = optuna.trial.create_trial(
            state=TrialState.RUNNING, params=old.params, distributions=old.distributions,
            intermediate_values=old.intermediate_values,
            user_attrs={**{k: v for k, v in old.user_attrs.items() if k != ERRORED_ATTR},
                        TUNE_TRIAL_ID_ATTR: trial_id, RESUMED_FROM_ATTR: old.number})
        # What Study.ask does, minus popping a waiting (enqueued) trial (optuna/study/study.py:578-600).
        new_id = study._storage.create_new_trial(study._study_id, template_trial=template)
        self._ot_trials[trial_id] = optuna.trial.Trial(study, new_id)
        self._completed_trials.discard(trial_id)
        self._failed.discard(trial_id)
        self._resumed.add(trial_id)
        logger.info("trial %s resumed: Optuna trial %d continues failed trial %d", trial_id,
                    self._ot_trials[trial_id].number, old.number)
        return True

    def complete_resumed(self, trial_id: str, result: dict | None) -> None:
        """Finish a resumed trial: Tune's ConcurrencyLimiter forgot it when it errored and would not pass
        its completion on (ray/tune/search/concurrency_limiter.py:119)."""
        if trial_id in self._resumed and trial_id not in self._completed_trials:
            self.on_trial_complete(trial_id, result=result)


# ---------------------------------------------------------------------------------------------- scheduler

class OptunaPruningScheduler(FIFOScheduler):
    """A Tune scheduler that stops a trial when its study's Optuna pruner says so.

    On each result: report `result[metric]` at step `step_of(result)`, ask `should_prune()`, answer
    STOP (and remember the trial and step) or CONTINUE. Results without the metric, trials unknown to the
    study and multi-objective studies always get CONTINUE. Metric and mode are the searcher's (set on it
    directly or through `TuneConfig(metric, mode)`). Results are not buffered, so a trial stops at exactly
    the step the pruner decided.
    """

    _supports_buffered_results = False

    def __init__(self, searcher: PrunableOptunaSearch) -> None:
        if not isinstance(searcher, PrunableOptunaSearch):
            raise TypeError(f"OptunaPruningScheduler needs the PrunableOptunaSearch it prunes for, "
                            f"got {type(searcher).__name__}")
        super().__init__()
        self.searcher = searcher

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        ours = self.searcher.metric  # Tune sets the searcher's properties before the scheduler's
        if metric and ours and metric != ours:
            raise ValueError(f"OptunaPruningScheduler prunes on the searcher's metric {ours!r}, "
                             f"but TuneConfig names {metric!r}")
        return True

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        self.searcher.resume_failed(trial.trial_id)

    def on_trial_error(self, tune_controller: Any, trial: Any) -> None:
        # Tune calls it at each failure of a trial: before each retry (tune_controller._requeue_trial), and after
        # the last, just before it tells the searcher error (_process_trial_failure)
        self.searcher.mark_errored(trial.trial_id)

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        step = self.searcher.report_result(trial.trial_id, result)
        if step is None or step >= result.get(FINAL_STEP_KEY, math.inf):   # done training: nothing to save
            return TrialScheduler.CONTINUE
        if not self.searcher.should_prune(trial.trial_id):
            return TrialScheduler.CONTINUE
        self.searcher.mark_pruned(trial.trial_id, step)
        logger.info("trial %s pruned at step %d (%s = %s)", trial.trial_id, step, self.searcher.metric,
                    result[self.searcher.metric])
        return TrialScheduler.STOP

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict) -> None:
        self.searcher.complete_resumed(trial.trial_id, result)

    def pruned_trials(self) -> dict[str, int]:
        """Tune trial id -> step (epochs completed) at which it was pruned."""
        return self.searcher.pruned_trials()

    def was_pruned(self, trial_id: str) -> bool:
        return self.searcher.was_pruned(trial_id)

    def debug_string(self) -> str:
        return (f"Using OptunaPruningScheduler ({type(self.searcher.pruner).__name__}): "
                f"{len(self.searcher.pruned_trials())} pruned")


# ------------------------------------------------------------------------------------------- convenience

def _failed_for_good(study: optuna.Study, use_cache: bool) -> list:
    """The study's FAIL trials that failed after every retry (`ERRORED_ATTR`) and that no later trial continues
    (`resume_failed`: a trial resumed from its checkpoint is a later Optuna trial, tagged `RESUMED_FROM_ATTR`)."""
    every = study._get_trials(deepcopy=False, states=None, use_cache=use_cache)
    resumed = {t.user_attrs.get(RESUMED_FROM_ATTR) for t in every}
    return [t for t in every if t.state == TrialState.FAIL and ERRORED_ATTR in t.user_attrs
            and t.number not in resumed]


class _FailedAsPruned:
    """A study as TPESampler reads it, where each trial that failed for good (`_failed_for_good`) is PRUNED with no
    intermediate value: TPE ranks such a trial below every other pruned one, as the worst
    (optuna/samplers/_tpe/sampler.py, _get_pruned_trial_score), where it ignores a FAIL trial; everything else is
    the study's own."""

    def __init__(self, study: optuna.Study) -> None:
        self._study = study

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)

    def _get_trials(self, deepcopy: bool = True, states: Any = None, use_cache: bool = False) -> list:
        trials = self._study._get_trials(deepcopy=False, states=states, use_cache=use_cache)
        if states is None or TrialState.PRUNED not in states or len(self._study.directions) > 1:
            return copy.deepcopy(trials) if deepcopy else trials
        failed = []
        for t in _failed_for_good(self._study, use_cache) if TrialState.FAIL not in states else ():
            t = copy.copy(t)
            t.state, t.values, t.intermediate_values = TrialState.PRUNED, None, {}
            failed.append(t)
        seen = sorted(trials + failed, key=lambda t: t.number)
        return copy.deepcopy(seen) if deepcopy else seen


# Pickled by reference in Tune's searcher state (a continued tpe search unpickles it): keep its module and name
class FailureAwareTPESampler(optuna.samplers.TPESampler):
    """TPESampler that learns from the trials that failed after every retry. Optuna's reads COMPLETE and PRUNED
    trials only: a configuration whose training crashed each time (out of memory at a large model.num_lanets) was no
    data to it, so it drew it, or one beside it, again and again, each failing. Here such a trial is a pruned one
    with no value, which TPE ranks below every other (`_FailedAsPruned`), as it ranks a diverged one; its random
    start counts it too. A trial that failed but was continued (`resume_failed`), or was drawn but never run
    (`tune_state.ExtendedSearch.forget_trials`), stays no data."""

    def sample_relative(self, study: optuna.Study, trial: Any, search_space: dict) -> dict:
        return super().sample_relative(_FailedAsPruned(study), trial, search_space)

    def sample_independent(self, study: optuna.Study, trial: Any, param_name: str, param_distribution: Any) -> Any:
        return super().sample_independent(_FailedAsPruned(study), trial, param_name, param_distribution)


SAMPLERS: Registry[Callable[[int | None, int], optuna.samplers.BaseSampler]] = Registry("sampler")
SAMPLERS.register("tpe")(lambda seed, n_startup: FailureAwareTPESampler(seed=seed, n_startup_trials=n_startup))
SAMPLERS.register("random")(lambda seed, n_startup: optuna.samplers.RandomSampler(seed=seed))


class _PrunedAsCompleted:
    """A study as GPSampler.sample_relative reads it, where each PRUNED trial is COMPLETE at the value Optuna kept for
    it (its last intermediate value), or, where that was NaN (a training that diverged: `_mark_nan_value`), at the
    worst value of the study's trials (none: left out), and each trial that failed for good (`_failed_for_good`) is
    COMPLETE at that worst value too; everything else is the study's own."""

    def __init__(self, study: optuna.Study) -> None:
        self._study = study

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)

    def _get_trials(self, deepcopy: bool = True, states: Any = None, use_cache: bool = False) -> list:
        if states is None or TrialState.COMPLETE not in states or len(self._study.directions) > 1:
            return self._study._get_trials(deepcopy=deepcopy, states=states, use_cache=use_cache)
        trials = self._study._get_trials(deepcopy=False, states=(*states, TrialState.PRUNED), use_cache=use_cache)
        values = [t.value for t in trials if t.state != TrialState.RUNNING and t.value is not None]
        worst = (min if self._study.direction == optuna.study.StudyDirection.MAXIMIZE else max)(values, default=None)
        seen = []
        failed = _failed_for_good(self._study, use_cache) if TrialState.FAIL not in states else []
        for t in sorted(trials + failed, key=lambda t: t.number):
            if t.state in (TrialState.PRUNED, TrialState.FAIL):
                value = t.value if t.state == TrialState.PRUNED else None
                if value is None and worst is None:
                    continue
                t = copy.copy(t)
                t.values, t.state = [value if value is not None else worst], TrialState.COMPLETE
            seen.append(copy.deepcopy(t) if deepcopy else t)
        return seen


# Pickled by reference in Tune's searcher state (a continued gp search unpickles it): keep its module and name
class PrunedAwareGPSampler(optuna.samplers.GPSampler):
    """GPSampler that learns from pruned and failed trials too. Optuna's reads COMPLETE trials only (sample_relative):
    a trial the pruner stopped was no data to it, so with no new completed trial it proposed the same point again
    (seen with one trial at a time: three GP-drawn trials in a row at one config, each pruned), and a diverged one
    (told PRUNED) or one that failed after every retry (out of memory at one config: told FAIL) the same. Here a
    pruned trial is a completed one at the value it was stopped at (for an accuracy, below what it would have
    reached: the GP learns the pruner judged it weak), a diverged or failed one at the study's worst value, as TPE
    ranks them (_get_pruned_trial_score; `FailureAwareTPESampler`); its random start counts them too, as TPE's. A
    trial that failed but was continued (an errored one resumed continues in a new Optuna trial), or was drawn but
    never run, is still no data. Its search space is read from the pruned trials too (GPSampler's
    IntersectionSearchSpace reads completed ones: with every trial pruned, it drew each at random)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._intersection_search_space = optuna.search_space.IntersectionSearchSpace(include_pruned=True)

    def sample_relative(self, study: optuna.Study, trial: Any, search_space: dict) -> dict:
        return super().sample_relative(_PrunedAsCompleted(study), trial, search_space)


@SAMPLERS.register("gp")
def _gp(seed: int | None, n_startup: int) -> optuna.samplers.GPSampler:
    """GPSampler (Optuna's advice for budgets of tens of trials), pruned trials its data too
    (`PrunedAwareGPSampler`): at random (a RandomSampler of the same seed) until `n_startup` trials have ended,
    then a Gaussian process fitted to them, in the driver, at each suggestion; trials still running enter its
    acquisition (qLogEI) by their drawn params. Its state (RNG, the last GP's kernel parameters, which start the
    next fit) is a plain attribute pickled with the searcher, so a continued search restores it as TPE's. Not
    deterministic_objective (experimental, and training is noisy)."""
    return PrunedAwareGPSampler(seed=seed, n_startup_trials=n_startup)


@SAMPLERS.register("qmc")
def _qmc(seed: int | None, n_startup: int) -> optuna.samplers.QMCSampler:
    """QMCSampler: a Sobol sequence (space-filling, most evenly over 2^m of its draws), scrambled by the seed so the
    spec's seed decides it (unscrambled, Sobol ignores the seed and its first point is every parameter at its low
    bound). The study's first trial is drawn at random (a RandomSampler of the same seed); each later trial takes
    the sequence's next point, counted in the study's system attrs (pickled with it, so a continued search goes on
    where it stopped), whatever the trials' results or states. It has no startup trials (`n_startup` unused: the
    spec refuses search.n_startup_trials with it). Experimental in Optuna since 3.0: the ExperimentalWarning its
    constructor raises says nothing a user can act on."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.QMCSampler(qmc_type="sobol", scramble=True, seed=seed)


# No "grid": GridSampler.after_trial calls study.stop(), which raises outside study.optimize
# (optuna/samplers/_grid.py:223, optuna/study/study.py:834). Grid sweeps use tune.grid_search.
# No "cmaes": CmaEsSampler needs the cmaes package, which the pinned stack does not install.


def make_optuna_search(space: Any = None, metric: str | None = None, mode: str | None = None,
                       pruner_spec: Mapping[str, Any] | None = None, *,
                       sampler: str | optuna.samplers.BaseSampler = "tpe", seed: int | None = None,
                       n_startup_trials: int = 10, points_to_evaluate: list[dict] | None = None,
                       storage: str | os.PathLike | None = None, study_name: str | None = None,
                       ) -> tuple[PrunableOptunaSearch, OptunaPruningScheduler]:
    """A linked (searcher, scheduler) pair for `TuneConfig(search_alg=..., scheduler=...)`.

    `sampler`: "tpe" (seeded, `n_startup_trials` random trials first), "random", "gp" (seeded, at random until
    `n_startup_trials` trials have ended), "qmc" (a scrambled Sobol sequence of the seed), or an Optuna sampler.
    `pruner_spec`: a `make_pruner` spec; None prunes nothing. `storage`: a sqlite file path or an RDB URL,
    with `study_name`, so the study lives outside Tune's searcher pickle. `space`/`metric`/`mode` may be
    left to `Tuner(param_space=...)` and `TuneConfig(metric, mode)`.
    """
    if mode is not None and mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
    if isinstance(sampler, optuna.samplers.BaseSampler):
        ot_sampler = sampler
    else:
        try:
            ot_sampler = SAMPLERS.get(sampler)(seed, n_startup_trials)
        except RegistryError as exc:
            raise ValueError(str(exc)) from None
    ot_storage = None
    if storage is not None:
        if not study_name:
            raise ValueError("a persistent Optuna storage needs a study_name")
        url = str(storage) if "://" in str(storage) else f"sqlite:///{os.path.abspath(storage)}"
        ot_storage = optuna.storages.RDBStorage(url)
    pruner = make_pruner(pruner_spec) if pruner_spec is not None else None
    searcher = PrunableOptunaSearch(space=space, metric=metric, mode=mode, points_to_evaluate=points_to_evaluate,
                                    sampler=ot_sampler, study_name=study_name, storage=ot_storage, pruner=pruner)
    return searcher, OptunaPruningScheduler(searcher)
