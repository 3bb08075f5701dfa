"""Specifications of sweeps.pruning: pruner specs, and the bridge that lets an Optuna pruner stop Tune trials.

Unit tests drive the scheduler with a stand-in trial (only `trial_id` is read); integration tests run a real
Tuner on synthetic learning curves (score = quality * iteration, no training) and compare its decisions with
the same reports replayed into a plain Optuna study.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import warnings
from types import SimpleNamespace

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from sweeps.schema import FINAL_STEP_KEY
from sweeps.pruning import (
    ERRORED_ATTR, NAN_VALUE_ATTR, _FailedAsPruned, _PrunedAsCompleted, FailureAwareTPESampler, PRUNERS, RESUMED_FROM_ATTR, TUNE_TRIAL_ID_ATTR, OptunaPruningScheduler, PrunableOptunaSearch,
    PrunerSpecError, make_optuna_search, make_pruner, never_prunes, pruner_arguments, with_defaults)

optuna.logging.set_verbosity(optuna.logging.WARNING)
pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")

ITERATIONS = 6
CONTINUE, STOP = "CONTINUE", "STOP"


# ------------------------------------------------------------------------------------------------ make_pruner

BUILDS = {
    "median": ({"n_startup_trials": 2, "n_warmup_steps": 1}, optuna.pruners.MedianPruner,
               {"_n_startup_trials": 2, "_n_warmup_steps": 1, "_percentile": 50.0}),
    "percentile": ({"percentile": 25.0, "n_startup_trials": 3, "n_min_trials": 2}, optuna.pruners.PercentilePruner,
                   {"_percentile": 25.0, "_n_startup_trials": 3, "_n_min_trials": 2}),
    "successive_halving": ({"min_resource": 2, "reduction_factor": 3}, optuna.pruners.SuccessiveHalvingPruner,
                           {"_min_resource": 2, "_reduction_factor": 3}),
    "hyperband": ({"min_resource": 1, "max_resource": 9, "reduction_factor": 3}, optuna.pruners.HyperbandPruner,
                  {"_min_resource": 1, "_max_resource": 9, "_reduction_factor": 3}),
    "patient": ({"patience": 2, "min_delta": 0.1, "wrapped": {"type": "median", "n_warmup_steps": 4}},
                optuna.pruners.PatientPruner, {"_patience": 2, "_min_delta": 0.1}),
    "wilcoxon": ({"p_threshold": 0.05, "n_startup_steps": 3}, optuna.pruners.WilcoxonPruner,
                 {"_p_threshold": 0.05, "_n_startup_steps": 3}),
    "threshold": ({"lower": 0.1, "n_warmup_steps": 2}, optuna.pruners.ThresholdPruner,
                  {"_lower": 0.1, "_upper": float("inf"), "_n_warmup_steps": 2}),
    "none": ({}, optuna.pruners.NopPruner, {}),
}


def test_pruners_registry_has_the_documented_entries():
    assert set(PRUNERS.names()) == set(BUILDS)


def test_readme_lists_the_registries_pruners_and_samplers_with_their_defaults():
    import re
    from pathlib import Path

    from search_spaces.search import SAMPLERS, SearchConfig

    readme = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text().split())
    pruners = re.search(r"`pruner` is (.*?), with Optuna's arguments", readme).group(1)
    samplers = re.search(r"`sampler` is (.*?)\. ", readme).group(1)
    assert re.findall(r"`(\w+)`", pruners) == list(PRUNERS.names())
    assert re.findall(r"`(\w+)`", samplers) == list(SAMPLERS)
    defaults = SearchConfig.__dataclass_fields__
    assert f"`{defaults['pruner'].default_factory()['type']}` (default)" in pruners
    assert f"`{defaults['sampler'].default}` (default)" in samplers


@pytest.mark.parametrize("name", sorted(BUILDS))
def test_make_pruner_builds_the_registered_class_with_the_arguments(name):
    args, cls, attributes = BUILDS[name]
    pruner = make_pruner({"type": name, **args})
    assert type(pruner) is cls
    assert {key: getattr(pruner, key) for key in attributes} == attributes


@pytest.mark.parametrize("spec", ({"type": "patient", "patience": 1, "wrapped": {"type": "median"}},
                                  {"type": "wilcoxon"}))
def test_make_pruner_builds_optunas_experimental_pruners_without_a_python_warning(spec):
    # `sweeps show` printed "pruning.py:204: ExperimentalWarning: WilcoxonPruner is experimental" (twice for the
    # patient one): a warning into our source that the user can do nothing about
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_pruner(spec)


def test_make_pruner_patient_wraps_the_nested_spec():
    pruner = make_pruner({"type": "patient", "patience": 1, "wrapped": {"type": "median", "n_warmup_steps": 4}})
    assert type(pruner._wrapped_pruner) is optuna.pruners.MedianPruner
    assert pruner._wrapped_pruner._n_warmup_steps == 4


def test_pruner_arguments_follow_the_pruner_signature():
    assert pruner_arguments("median") == ("n_startup_trials", "n_warmup_steps", "interval_steps", "n_min_trials")
    assert pruner_arguments("patient") == ("wrapped", "patience", "min_delta")
    assert pruner_arguments("none") == ()


def test_make_pruner_unknown_type_suggests_and_lists_valid_types():
    with pytest.raises(PrunerSpecError, match=r"^unknown pruner 'medain'\. Did you mean 'median'\? "
                                              r"Valid: median, percentile, successive_halving, hyperband, "
                                              r"patient, wilcoxon, threshold, none$"):
        make_pruner({"type": "medain"})


def test_make_pruner_missing_type_lists_valid_types():
    with pytest.raises(PrunerSpecError, match=r"^pruner spec needs a 'type' key\. Valid types: median, "):
        make_pruner({"n_startup_trials": 2})


def test_make_pruner_unknown_argument_names_it_and_lists_valid_ones():
    with pytest.raises(PrunerSpecError, match=r"^pruner 'median' got unknown argument 'n_startup'\. Did you mean "
                                              r"'n_startup_trials'\? Valid: n_startup_trials, n_warmup_steps, "
                                              r"interval_steps, n_min_trials$"):
        make_pruner({"type": "median", "n_startup": 2})


def test_make_pruner_bad_value_wraps_optunas_error_naming_pruner_and_argument():
    with pytest.raises(PrunerSpecError, match=r"^pruner 'percentile', argument 'percentile': Percentile must be "
                                              r"between 0 and 100 inclusive, but got percentile=150\.$") as info:
        make_pruner({"type": "percentile", "percentile": 150})
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value.__cause__, ValueError)


@pytest.mark.parametrize("args, message", [
    ({"reduction_factor": 1}, r"argument 'reduction_factor': reduction_factor=1 is invalid: expected an integer "
                              r">= 2$"),
    ({"min_resource": 0}, r"argument 'min_resource': min_resource=0 is invalid: expected an integer >= 1$"),
    ({"max_resource": 0}, r"argument 'max_resource': max_resource=0 is invalid: expected an integer >= "
                          r"min_resource \(1\), or 'auto'$"),
    ({"min_resource": 5, "max_resource": 2}, r"argument 'max_resource': max_resource=2 is invalid: expected an "
                                             r"integer >= min_resource \(5\), or 'auto'$"),
])
def test_make_pruner_hyperband_refuses_at_build_what_would_fail_or_never_prune_mid_sweep(args, message):
    # Optuna's HyperbandPruner checks these only in its first prune(): a ZeroDivisionError or a math domain
    # error raised by the scheduler after a trial's first epoch (the sweep dies), or no bracket at all
    with pytest.raises(PrunerSpecError, match=r"^pruner 'hyperband', " + message):
        make_pruner({"type": "hyperband", **args})


@pytest.mark.parametrize("args", [{"type": "threshold", "lower": float("nan")},
                                  {"type": "threshold", "upper": float("nan")},
                                  {"type": "patient", "wrapped": {"type": "median"}, "patience": 2,
                                   "min_delta": float("nan")}])
def test_make_pruner_refuses_nan_which_compares_false_with_everything_and_never_prunes(args):
    key = next(k for k, v in args.items() if isinstance(v, float))
    with pytest.raises(PrunerSpecError, match=rf"^pruner '{args['type']}', argument '{key}': NaN is not a number "
                                              r"to compare with; give a number, or leave the argument out$"):
        make_pruner(args)


def test_make_pruner_wrong_type_names_the_expected_type():
    with pytest.raises(PrunerSpecError, match=r"^pruner 'median', argument 'n_warmup_steps': expected int, "
                                              r"got str '2'$"):
        make_pruner({"type": "median", "n_warmup_steps": "2"})


def test_make_pruner_missing_required_argument_is_named():
    with pytest.raises(PrunerSpecError, match=r"^pruner 'patient' needs argument 'patience'\. "
                                              r"Valid: wrapped, patience, min_delta$"):
        make_pruner({"type": "patient", "wrapped": {"type": "median"}})


def test_make_pruner_error_in_wrapped_spec_names_the_outer_pruner():
    with pytest.raises(PrunerSpecError, match=r"^pruner 'patient', argument 'wrapped': pruner 'median', argument "
                                              r"'n_warmup_steps': Number of warmup steps cannot be negative"):
        make_pruner({"type": "patient", "patience": 1, "wrapped": {"type": "median", "n_warmup_steps": -1}})


# ------------------------------------------------------------------------------------------- bridge (units)

SPACE = {"quality": FloatDistribution(0.0, 2.0)}


def _pair(pruner=None, **kwargs):
    searcher = PrunableOptunaSearch(space=SPACE, metric="score", mode="max", pruner=pruner, **kwargs)
    return searcher, OptunaPruningScheduler(searcher)


def _feed(scheduler, trial_id, values, **extra):
    """Results with training_iteration 1, 2, ...; the scheduler's decisions."""
    trial = SimpleNamespace(trial_id=trial_id)
    return [scheduler.on_trial_result(None, trial, {"score": v, "training_iteration": i, **extra})
            for i, v in enumerate(values, start=1)]


def _optuna_trial(searcher, trial_id):
    return searcher._ot_trials[trial_id]._cached_frozen_trial


def test_searcher_installs_the_pruner_on_its_study():
    pruner = optuna.pruners.MedianPruner()
    searcher, _ = _pair(pruner)
    assert searcher.study.pruner is pruner


def test_searcher_installs_the_pruner_when_space_and_metric_come_from_tune_config():
    pruner = optuna.pruners.MedianPruner()
    searcher = PrunableOptunaSearch(pruner=pruner)
    searcher.set_search_properties("score", "max", {"quality": SPACE["quality"]})
    assert searcher.study.pruner is pruner and searcher.metric == "score"


def test_scheduler_stops_when_the_pruner_says_so_and_remembers_the_step():
    searcher, scheduler = _pair(optuna.pruners.ThresholdPruner(lower=0.5))
    searcher.suggest("t")
    assert _feed(scheduler, "t", [1.0, 0.9, 0.2]) == [CONTINUE, CONTINUE, STOP]
    assert scheduler.pruned_trials() == {"t": 3}  # stopped after its third epoch
    assert scheduler.was_pruned("t") and not scheduler.was_pruned("other")


def test_scheduler_reports_at_the_number_of_epochs_done():
    """Step = training_iteration (1-based, as Tune and MLflow count), the resource successive halving means."""
    searcher, scheduler = _pair()
    searcher.suggest("t")
    _feed(scheduler, "t", [1.0, 2.0])
    assert _optuna_trial(searcher, "t").intermediate_values == {1: 1.0, 2: 2.0}


def test_successive_halving_with_min_resource_1_decides_after_the_first_epoch():
    searcher, scheduler = _pair(optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=2))
    searcher.suggest("strong")
    assert _feed(scheduler, "strong", [0.9]) == [CONTINUE]
    searcher.suggest("weak")
    assert _feed(scheduler, "weak", [0.1]) == [STOP]
    assert scheduler.pruned_trials() == {"weak": 1}


def test_a_trial_is_never_stopped_at_its_last_epoch_and_ends_complete_with_its_result():
    # with optim.epochs on a rung (3 epochs; successive halving's rungs 1, 3, 9) the pruner's check after
    # the last epoch stopped trials that had trained to the end: counted pruned, their result set aside
    searcher, scheduler = _pair(optuna.pruners.ThresholdPruner(lower=0.5))
    searcher.suggest("done")
    assert _feed(scheduler, "done", [0.9, 0.8, 0.2], epochs_planned=3) == [CONTINUE, CONTINUE, CONTINUE]
    searcher.on_trial_complete("done", {"score": 0.2, "training_iteration": 3})
    assert not scheduler.was_pruned("done")
    assert [(t.state, t.value) for t in searcher.study.trials] == [(TrialState.COMPLETE, 0.2)]
    searcher.suggest("early")
    assert _feed(scheduler, "early", [0.9, 0.2], epochs_planned=3) == [CONTINUE, STOP], "earlier it still prunes"


def _stops_a_trial(spec, epochs: int, num_samples: int) -> bool:
    """Whether the bridge stops a trial of a search where every trial is strong but the last, which is
    weak and worsening: the trial each pruner should stop, if it can stop any."""
    searcher, scheduler = _pair(make_pruner(spec))
    for i in range(num_samples):
        weak = i == num_samples - 1
        values = [0.1 - 0.01 * e if weak else 0.5 + 0.01 * e for e in range(epochs)]
        searcher.suggest(f"t{i}")
        if STOP in _feed(scheduler, f"t{i}", values, epochs_planned=epochs):
            return True
        searcher.on_trial_complete(f"t{i}", {"score": values[-1], "training_iteration": epochs})
    return False


@pytest.mark.parametrize("spec, epochs, never", [
    ({"type": "median", "n_warmup_steps": 4}, 4, True),
    ({"type": "median", "n_warmup_steps": 3}, 4, False),
    ({"type": "median", "n_startup_trials": 6}, 4, True),
    ({"type": "median", "n_startup_trials": 5}, 4, False),
    ({"type": "percentile", "percentile": 50.0, "n_startup_trials": 0, "n_min_trials": 6}, 4, True),
    ({"type": "percentile", "percentile": 50.0, "n_startup_trials": 0, "n_min_trials": 5}, 4, False),
    ({"type": "successive_halving", "min_resource": 2, "reduction_factor": 2, "min_early_stopping_rate": 1}, 4, True),
    ({"type": "successive_halving", "min_resource": 3, "reduction_factor": 2}, 4, False),
    ({"type": "threshold", "lower": 0.3, "n_warmup_steps": 4}, 4, True),
    ({"type": "threshold", "lower": 0.3, "n_warmup_steps": 3}, 4, False),
    ({"type": "patient", "patience": 2}, 4, True),
    ({"type": "patient", "patience": 1}, 4, False),
    ({"type": "patient", "patience": 1, "wrapped": {"type": "median", "n_warmup_steps": 5}}, 4, True),
    ({"type": "hyperband", "min_resource": 4}, 4, True),
    ({"type": "median", "n_startup_trials": 0}, 1, True),
])
def test_never_prunes_says_so_exactly_for_the_pruners_the_bridge_lets_stop_no_trial(spec, epochs, never):
    # a search of 6 trials; the scheduler asks the pruner after epochs 1 .. epochs - 1 only
    assert (never_prunes(spec, epochs, 6) is not None) == never
    assert _stops_a_trial(spec, epochs, 6) == (not never)


def test_never_prunes_names_the_argument_and_what_would_do():
    why = never_prunes({"type": "median", "n_startup_trials": 3, "n_warmup_steps": 12}, 12, 16)
    assert why == ("n_warmup_steps=12 lets it stop a trial from epoch 12 on, and a trial of 12 epochs is done "
                   "after epoch 12: give n_warmup_steps <= 11")
    assert never_prunes({"type": "none"}, 12, 16) is None, "no pruner is no pruner: nothing to warn of"


def test_scheduler_ignores_results_without_the_metric():
    searcher, scheduler = _pair(optuna.pruners.ThresholdPruner(lower=0.5))
    searcher.suggest("t")
    trial = SimpleNamespace(trial_id="t")
    assert scheduler.on_trial_result(None, trial, {"loss": 0.0, "training_iteration": 1}) == CONTINUE
    assert _optuna_trial(searcher, "t").intermediate_values == {}


def test_scheduler_continues_trials_unknown_to_the_study():
    _, scheduler = _pair(optuna.pruners.ThresholdPruner(lower=0.5))
    assert _feed(scheduler, "never-suggested", [0.0]) == [CONTINUE]
    assert scheduler.pruned_trials() == {}


def test_scheduler_is_disabled_for_multi_objective_studies():
    searcher = PrunableOptunaSearch(space=SPACE, metric=["score", "cost"], mode=["max", "min"],
                                    pruner=optuna.pruners.ThresholdPruner(lower=0.5))
    scheduler = OptunaPruningScheduler(searcher)
    searcher.suggest("t")
    assert _feed(scheduler, "t", [0.0, 0.0], cost=1.0) == [CONTINUE, CONTINUE]


def test_scheduler_rejects_a_different_metric_in_tune_config():
    _, scheduler = _pair()
    with pytest.raises(ValueError, match=r"prunes on the searcher's metric 'score', but TuneConfig names 'loss'"):
        scheduler.set_search_properties("loss", "min")


def test_searcher_does_not_report_a_step_twice():
    searcher, scheduler = _pair()
    searcher.suggest("t")
    _feed(scheduler, "t", [1.0])
    searcher.on_trial_result("t", {"score": 5.0, "training_iteration": 1})  # Tune passes CONTINUEd results on
    assert _optuna_trial(searcher, "t").intermediate_values == {1: 1.0}


def test_searcher_tells_pruned_not_complete_for_a_stopped_trial():
    searcher, scheduler = _pair(optuna.pruners.ThresholdPruner(lower=0.5))
    searcher.suggest("t")
    _feed(scheduler, "t", [1.0, 0.2])
    searcher.on_trial_complete("t", result={"score": 0.2, "training_iteration": 2})
    (trial,) = searcher.study.trials
    assert trial.state == TrialState.PRUNED and trial.value == 0.2  # Optuna keeps the last intermediate value


def test_a_trial_whose_metric_ends_nan_is_told_pruned_below_every_trial_with_a_value_not_complete():
    # a training that diverged reports its val_acc as NaN (sweeps.trainable): told COMPLETE, Optuna refused
    # the NaN and the trial stayed RUNNING for good; reported as the class share NaN weights score, TPE
    # learnt that number as the trial's value
    nan = float("nan")
    searcher, scheduler = _pair(optuna.pruners.ThresholdPruner(lower=0.5))
    searcher.suggest("weak")
    _feed(scheduler, "weak", [0.6, 0.55, 0.55], epochs_planned=3)
    searcher.on_trial_complete("weak", {"score": 0.55, "training_iteration": 3})
    searcher.suggest("diverged")   # diverged in its second epoch of 3: its last (the trainable says so)
    assert _feed(scheduler, "diverged", [0.9, nan], epochs_planned=2) == [CONTINUE, CONTINUE]
    searcher.on_trial_complete("diverged", {"score": nan, "training_iteration": 2})
    weak, diverged = searcher.study.trials
    assert (diverged.state, diverged.value, diverged.user_attrs[NAN_VALUE_ATTR]) == (TrialState.PRUNED, None, 2)
    assert diverged.intermediate_values[1] == 0.9 and math.isnan(diverged.intermediate_values[2]), \
        "TPE ranks a pruned trial by its last intermediate value, a NaN as the worst"
    assert searcher.study.best_trial.number == weak.number and not scheduler.was_pruned("diverged")


def test_searcher_reopens_a_failed_trial_when_tune_resumes_it():
    searcher, scheduler = _pair()
    params = searcher.suggest("t")
    _feed(scheduler, "t", [1.0, 2.0])
    searcher.on_trial_complete("t", error=True)  # what Tune does when the trial errors
    scheduler.on_trial_add(None, SimpleNamespace(trial_id="t"))  # Tuner.restore(resume_errored=True)
    _feed(scheduler, "t", [1.0, 2.0, 3.0])
    scheduler.on_trial_complete(None, SimpleNamespace(trial_id="t"), {"score": 3.0})
    failed, resumed = searcher.study.trials
    assert failed.state == TrialState.FAIL
    assert (resumed.state, resumed.value, resumed.params) == (TrialState.COMPLETE, 3.0, params)
    assert resumed.intermediate_values == {1: 1.0, 2: 2.0, 3: 3.0}
    assert resumed.user_attrs == {TUNE_TRIAL_ID_ATTR: "t", RESUMED_FROM_ATTR: failed.number}


def test_make_optuna_search_returns_a_linked_pair_with_a_seeded_tpe_sampler():
    searcher, scheduler = make_optuna_search(SPACE, "score", "max", {"type": "median"}, seed=3, n_startup_trials=4)
    assert scheduler.searcher is searcher
    assert type(searcher.pruner) is optuna.pruners.MedianPruner and searcher.study.pruner is searcher.pruner
    sampler = searcher.study.sampler
    assert type(sampler) is FailureAwareTPESampler and sampler._n_startup_trials == 4
    again, _ = make_optuna_search(SPACE, "score", "max", seed=3)
    assert again.suggest("a") == make_optuna_search(SPACE, "score", "max", seed=3)[0].suggest("a")


def test_make_optuna_search_keeps_the_study_in_sqlite(tmp_path):
    searcher, _ = make_optuna_search(SPACE, "score", "max", storage=tmp_path / "optuna.db", study_name="s")
    searcher.suggest("a")
    stored = optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    assert [t.user_attrs[TUNE_TRIAL_ID_ATTR] for t in stored.trials] == ["a"]


def test_make_optuna_search_unknown_sampler_lists_valid_ones():
    with pytest.raises(ValueError, match=r"^unknown sampler 'tpee'\. Did you mean 'tpe'\? Valid: tpe, random, gp, qmc$"):
        make_optuna_search(SPACE, "score", "max", sampler="tpee")


# every kind of parameter a spec's space has (float log / step, int / step / log, categorical), as Ray hands them
MIXED = {"lr": FloatDistribution(1e-5, 1e-2, log=True), "rate": FloatDistribution(0.0, 1.0, step=0.25),
         "depth": IntDistribution(1, 8), "width": IntDistribution(32, 128, step=32),
         "heads": IntDistribution(1, 16, log=True), "b": CategoricalDistribution([1, 2, 4, 8])}


def _score(params: dict) -> float:
    return (1.0 - abs(math.log10(params["lr"]) + 3.0) / 3.0 + 0.2 * params["rate"] - 0.01 * params["depth"]
            + params["width"] / 640 + 0.05 * (params["b"] == 4))


def _search(sampler: str, seed: int, trials: int, *, stop_after: int | None = None, tmp_path=None, lower: float = 0.29,
            score=_score, pruner: dict | None = None, fails=lambda config: False) -> tuple:
    """The configs a search of `trials` trials draws, one at a time, each fed a curve of its `score` over 3 steps
    (the threshold pruner, or `pruner`, stops those under `lower` after their first step); stopped after `stop_after` trials and
    continued in a new searcher from its checkpoint, as Tune restores one (OptunaSearch.save / restore). A config
    `fails` says so of fails in its first epoch after every retry, as Tune tells it (on_trial_error, then error).
    Returns (configs, study)."""
    pair = lambda: make_optuna_search(MIXED, "score", "max", pruner or {"type": "threshold", "lower": lower},  # noqa
                                      sampler=sampler, seed=seed, n_startup_trials=2)
    searcher, scheduler = pair()
    configs = []
    for i in range(trials):
        if i == stop_after:
            searcher.save(str(tmp_path / "searcher.pkl"))
            searcher, scheduler = pair()
            searcher.restore(str(tmp_path / "searcher.pkl"))
        config = searcher.suggest(f"t{i}")
        configs.append(config)
        if fails(config):
            scheduler.on_trial_error(None, SimpleNamespace(trial_id=f"t{i}"))
            searcher.on_trial_complete(f"t{i}", error=True)
            continue
        for step in (1, 2, 3):
            result = {"score": score(config) * step / 3, "training_iteration": step, FINAL_STEP_KEY: 3}
            if scheduler.on_trial_result(None, SimpleNamespace(trial_id=f"t{i}"), result) == STOP:
                break
        searcher.on_trial_complete(f"t{i}", result)
    return configs, searcher.study


def _repeated(configs: list[dict]) -> list[tuple[int, int]]:
    """Pairs of configs alike in every discrete parameter and within 1% in the continuous ones."""
    def alike(a, b):
        return all(math.isclose(a[k], b[k], rel_tol=0.01) if isinstance(a[k], float) else a[k] == b[k] for k in a)
    return [(i, j) for i in range(len(configs)) for j in range(i + 1, len(configs)) if alike(configs[i], configs[j])]


@pytest.mark.parametrize("sampler, cls, attributes", [
    ("gp", optuna.samplers.GPSampler, {"_n_startup_trials": 4}),
    ("qmc", optuna.samplers.QMCSampler, {"_qmc_type": "sobol", "_scramble": True, "_seed": 3})])
def test_make_optuna_search_builds_optunas_gp_and_qmc_samplers_seeded_and_without_a_python_warning(
        sampler, cls, attributes):
    # QMCSampler is experimental: "ExperimentalWarning: QMCSampler is experimental" into our source, which a
    # user can do nothing about (as the patient and wilcoxon pruners'). Unscrambled, its sequence ignores the seed
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        searcher, _ = make_optuna_search(MIXED, "score", "max", {"type": "median"}, sampler=sampler, seed=3,
                                         n_startup_trials=4)
    built = searcher.study.sampler
    assert isinstance(built, cls) and {key: getattr(built, key) for key in attributes} == attributes
    assert type(built._independent_sampler) is optuna.samplers.RandomSampler


@pytest.mark.parametrize("sampler", ["gp", "qmc"])
def test_a_gp_or_qmc_search_draws_what_its_seed_decides_within_every_kind_of_parameter(sampler):
    # a search's seed makes it reproducible: one seed, one sequence of configurations (the GP's past its 2 random
    # startup trials; the QMC's past its random first), whatever pruned trials among them
    configs, study = _search(sampler, 3, 5)
    assert configs == _search(sampler, 3, 5)[0]
    assert configs[:3] != _search(sampler, 4, 3)[0]
    assert all(MIXED[k]._contains(MIXED[k].to_internal_repr(v)) for c in configs for k, v in c.items())
    assert {t.state for t in study.trials} == {TrialState.COMPLETE, TrialState.PRUNED}, "the pruner stopped some"
    if sampler == "gp":   # a GP drew (Optuna keeps its draw in a system attr), fitted to the completed trials alone
        assert any(key.startswith("gp:relative_params") for t in study.trials for key in t.system_attrs)


@pytest.mark.parametrize("sampler", ["gp", "qmc"])
def test_a_gp_or_qmc_search_stopped_and_continued_from_its_checkpoint_draws_what_one_never_stopped_draws(
        sampler, tmp_path):
    # a search continued (`sweeps resume`, or a rerun with more num_samples) is its searcher restored from Tune's
    # checkpoint, its study and sampler in it: the GP's RNG and kernel cache, the QMC's place in its sequence
    assert _search(sampler, 3, 6, stop_after=3, tmp_path=tmp_path)[0] == _search(sampler, 3, 6)[0]


def test_a_gp_search_learns_from_the_trials_its_pruner_stopped_and_draws_none_of_them_again():
    # Optuna's GPSampler reads completed trials alone: with no new one, it proposed the point it had just proposed,
    # and the pruner stopped it again (trials 4 to 8 of this search, one config)
    configs, study = _search("gp", 3, 8, lower=0.36)
    assert [t.state for t in study.trials].count(TrialState.PRUNED) >= 4
    assert _repeated(configs) == []
    _, study = _search("gp", 3, 4, lower=10.0)   # every trial pruned: the GP's space was read from completed ones
    assert [any(k.startswith("gp:relative_params") for k in t.system_attrs) for t in study.trials] == [
        False, False, True, True], "past its 2 random trials, each drawn by a GP fitted to the pruned ones"


def test_a_gp_search_learns_from_its_diverged_trials_and_draws_none_of_them_again():
    # a diverged trial (its metric NaN) is told PRUNED with no value: GPSampler redrew it; here it is the worst
    configs, study = _search("gp", 3, 6, pruner={"type": "none"},
                             score=lambda c: _score(c) if c["lr"] < 3e-3 or c["depth"] > 6 else math.nan)
    diverged = [t for t in study.trials if NAN_VALUE_ATTR in t.user_attrs]
    assert diverged and all(t.state == TrialState.PRUNED for t in diverged)
    assert _repeated(configs) == []


def test_a_gp_search_learns_from_a_configuration_that_fails_after_every_retry_and_does_not_redraw_it():
    # a trial that crashes after every retry (out of memory at the largest depth, where the score is best) is told
    # FAIL, which Optuna's GPSampler does not read: it drew depth 8 in 6 of these 12 trials, the last 6 in a row,
    # each failing (and 64 of 96 over seeds 3-10); here a failed trial is the study's worst (1 of 12; 17 of 96)
    configs, study = _search("gp", 3, 12, pruner={"type": "none"}, score=lambda c: _score(c) + 0.1 * c["depth"],
                             fails=lambda c: c["depth"] == 8)
    failed = [t for t in study.trials if t.state == TrialState.FAIL]
    assert failed and all(t.user_attrs[ERRORED_ATTR] == 0 for t in failed), "failed before its first epoch"
    assert len(failed) <= 2, [c["depth"] for c in configs]


def test_a_failed_trial_continued_or_never_run_is_no_data_to_the_samplers():
    # resumed (resume_errored): its FAIL record is an attempt of the trial that continues; drawn but never run
    # (forget_trials tells FAIL without on_trial_error): nothing was learnt of its configuration
    searcher, scheduler = _pair()
    for trial_id in ("resumed", "never_run", "crashed"):
        searcher.suggest(trial_id)
    _feed(scheduler, "resumed", [1.0])
    scheduler.on_trial_error(None, SimpleNamespace(trial_id="resumed"))
    searcher.on_trial_complete("resumed", error=True)
    scheduler.on_trial_add(None, SimpleNamespace(trial_id="resumed"))
    searcher.on_trial_complete("never_run", error=True)
    _feed(scheduler, "crashed", [0.5, 0.25])
    scheduler.on_trial_error(None, SimpleNamespace(trial_id="crashed"))
    searcher.on_trial_complete("crashed", error=True)
    _feed(scheduler, "resumed", [1.0, 2.0])
    scheduler.on_trial_complete(None, SimpleNamespace(trial_id="resumed"), {"score": 2.0})
    failed_resumed, never_run, crashed, resumed = searcher.study.trials
    assert [t.state for t in (failed_resumed, never_run, crashed)] == [TrialState.FAIL] * 3
    assert crashed.user_attrs[ERRORED_ATTR] == 2 and ERRORED_ATTR not in resumed.user_attrs
    as_gp = _PrunedAsCompleted(searcher.study)._get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    assert [(t.number, t.value) for t in as_gp] == [(crashed.number, 2.0), (resumed.number, 2.0)], \
        "the crashed one at the study's worst value (the only other is the resumed one's 2.0)"
    as_tpe = _FailedAsPruned(searcher.study)._get_trials(deepcopy=False, states=(TrialState.COMPLETE,
                                                                                 TrialState.PRUNED))
    assert [(t.number, t.state, t.intermediate_values) for t in as_tpe] == [
        (crashed.number, TrialState.PRUNED, {}), (resumed.number, TrialState.COMPLETE, {1: 1.0, 2: 2.0})]


def test_a_trial_that_errored_and_completed_on_a_retry_is_read_by_the_samplers_at_its_own_value():
    # Tune calls the scheduler's on_trial_error at each failure, a retried one's too (tune_controller._requeue_trial):
    # the tag stays on a trial that then completes, and no sampler reads it as a failure
    searcher, scheduler = _pair()
    searcher.suggest("retried")
    _feed(scheduler, "retried", [1.0])
    scheduler.on_trial_error(None, SimpleNamespace(trial_id="retried"))   # retried: the searcher is told nothing
    _feed(scheduler, "retried", [1.0, 3.0])
    scheduler.on_trial_complete(None, SimpleNamespace(trial_id="retried"), {"score": 3.0})
    searcher.on_trial_complete("retried", {"score": 3.0})   # as Tune tells both
    (trial,) = searcher.study.trials
    assert trial.state == TrialState.COMPLETE and trial.user_attrs[ERRORED_ATTR] == 1
    as_gp = _PrunedAsCompleted(searcher.study)._get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    as_tpe = _FailedAsPruned(searcher.study)._get_trials(deepcopy=False, states=(TrialState.COMPLETE,
                                                                                 TrialState.PRUNED))
    assert [(t.state, t.value) for t in as_gp] == [(t.state, t.value) for t in as_tpe] == [(TrialState.COMPLETE, 3.0)]


def test_a_gp_search_does_not_log_optunas_note_that_greenlet_is_missing():
    # Optuna's GP, at its first fit, warned "The 'greenlet' package is unavailable, falling back to sequential
    # L-BFGS-B optimization..." into the sweep's log: greenlet is not in the stack, and there was nothing to do.
    # A fresh interpreter (the note is logged once, as the module is imported), greenlet unavailable whether or not
    # installed; Optuna's other messages from that module still come through
    script = (
        "import sys, logging; sys.modules['greenlet'] = None\n"
        "import tests.test_pruning as t\n"
        "optuna = t.optuna; optuna.logging.set_verbosity(optuna.logging.INFO)\n"
        "_, study = t._search('gp', 3, 3)\n"
        "assert any(k.startswith('gp:relative_params') for k in study.trials[-1].system_attrs), 'a GP drew it'\n"
        "logging.getLogger('optuna._gp.batched_lbfgsb').warning('another note')\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert done.returncode == 0, done.stderr
    assert "greenlet" not in done.stderr and "another note" in done.stderr


# ------------------------------------------------------------------------------------- bridge (real Tuner)

def _curve(quality):
    return [quality * i for i in range(1, ITERATIONS + 1)]


def _first_pruned_step(pruner, finished_qualities, quality):
    """Replay: finished curves into a fresh study, then the trial's curve until should_prune()."""
    study = optuna.create_study(direction="maximize", pruner=pruner)
    for q in finished_qualities:
        trial = study.ask()
        for step, value in enumerate(_curve(q), start=1):
            trial.report(value, step)
        study.tell(trial, _curve(q)[-1])
    trial = study.ask()
    for step, value in enumerate(_curve(quality), start=1):
        trial.report(value, step)
        if trial.should_prune():
            return step
    return None


def _learning_curve(crash_quality=None, interrupt_quality=None, marker_dir=None, driver_pid=None):
    """A trainable: score = quality * iteration, a checkpoint each iteration. With `marker_dir`, the trial of
    `crash_quality` raises once at iteration 4, and the trial of `interrupt_quality` interrupts the driver once
    at iteration 2 (SIGUSR1, which Tune handles like Ctrl+C) and waits to be stopped.

    Built inside a function so that cloudpickle ships it by value: Ray workers cannot import test modules.
    """

    def learning_curve(config):
        import signal
        import time

        from ray import tune

        quality, start = config["quality"], 0
        if checkpoint := tune.get_checkpoint():
            with checkpoint.as_directory() as d, open(os.path.join(d, "state.json")) as f:
                start = json.load(f)["iteration"]
        for iteration in range(start + 1, ITERATIONS + 1):
            marker = os.path.join(marker_dir, str(quality)) if marker_dir else None
            if marker and not os.path.exists(marker):
                if quality == crash_quality and iteration == 4:
                    open(marker, "w").close()
                    raise RuntimeError("simulated crash")
                if quality == interrupt_quality and iteration == 2:
                    open(marker, "w").close()
                    os.kill(driver_pid, signal.SIGUSR1)
                    time.sleep(60)
            with tempfile.TemporaryDirectory() as d:
                with open(os.path.join(d, "state.json"), "w") as f:
                    json.dump({"iteration": iteration}, f)
                tune.report({"score": quality * iteration}, checkpoint=tune.Checkpoint.from_directory(d))

    from ray import tune

    return tune.with_resources(learning_curve, {"cpu": 0.25})


def _tuner(trainable, searcher, scheduler, storage, name, num_samples):
    from ray import tune

    return tune.Tuner(
        trainable, param_space={"quality": tune.uniform(0.0, 2.0)},
        tune_config=tune.TuneConfig(metric="score", mode="max", search_alg=searcher, scheduler=scheduler,
                                    num_samples=num_samples, max_concurrent_trials=1, reuse_actors=True),
        run_config=tune.RunConfig(name=name, storage_path=str(storage), verbose=0,
                                  failure_config=tune.FailureConfig(max_failures=0)))


def _trials_by_tune_id(study):
    live = [t for t in study.get_trials() if t.state != TrialState.FAIL]
    by_id = {t.user_attrs[TUNE_TRIAL_ID_ATTR]: t for t in live}
    assert len(by_id) == len(live), "two live Optuna trials for one Tune trial"
    return by_id


@pytest.mark.slow
def test_bridge_stops_a_weak_trial_where_the_optuna_pruner_decides(ray_local, tmp_path):
    qualities = [1.0, 0.8, 0.1, 1.2]  # two start-up trials, a weak one, a strong one; run one at a time
    spec = {"type": "median", "n_startup_trials": 2, "n_warmup_steps": 2}
    expected_step = _first_pruned_step(make_pruner(spec), qualities[:2], 0.1)
    assert expected_step is not None and _first_pruned_step(make_pruner(spec), qualities[:2], 1.2) is None
    searcher, scheduler = make_optuna_search(pruner_spec=spec, points_to_evaluate=[{"quality": q} for q in qualities],
                                             seed=0)  # metric, mode and space come from the Tuner

    results = _tuner(_learning_curve(), searcher, scheduler, tmp_path, "bridge", len(qualities)).fit()

    iterations = {r.config["quality"]: r.metrics["training_iteration"] for r in results}
    assert iterations == {1.0: ITERATIONS, 0.8: ITERATIONS, 0.1: expected_step, 1.2: ITERATIONS}
    ids = {r.config["quality"]: r.metrics["trial_id"] for r in results}
    assert scheduler.pruned_trials() == {ids[0.1]: expected_step}
    optuna_trials = _trials_by_tune_id(searcher.study)
    assert optuna_trials[ids[0.1]].state == TrialState.PRUNED
    assert max(optuna_trials[ids[0.1]].intermediate_values) == expected_step
    strong = optuna_trials[ids[1.2]]
    assert (strong.state, strong.value) == (TrialState.COMPLETE, pytest.approx(1.2 * ITERATIONS))
    assert [t.state for t in searcher.study.trials].count(TrialState.COMPLETE) == 3


@pytest.mark.slow
def test_bridge_survives_tuner_restore_after_an_interrupted_run(ray_local, tmp_path):
    from ray import tune

    # One trial at a time: two start-up trials, a weak one (pruned), a strong one that crashes at iteration 4,
    # a weak one that interrupts the driver at iteration 2, and a strong one that only starts after restore.
    qualities = [1.0, 0.8, 0.1, 1.2, 0.05, 1.1]
    spec = {"type": "median", "n_startup_trials": 2, "n_warmup_steps": 2}
    storage = tmp_path / "optuna.db"
    searcher, scheduler = make_optuna_search(pruner_spec=spec, points_to_evaluate=[{"quality": q} for q in qualities],
                                             seed=0, storage=storage, study_name="restore")
    trainable = _learning_curve(crash_quality=1.2, interrupt_quality=0.05, marker_dir=str(tmp_path),
                                driver_pid=os.getpid())
    first = _tuner(trainable, searcher, scheduler, tmp_path, "restore", len(qualities)).fit()
    assert len(first.errors) == 1 and len(first) == 5  # interrupted before the last trial started

    # Re-passing param_space (as a driver re-injecting object refs does) makes Tune set up the study again.
    tuner = tune.Tuner.restore(str(tmp_path / "restore"), trainable, resume_errored=True,
                               param_space={"quality": tune.uniform(0.0, 2.0)})
    results = tuner.fit()

    assert not results.errors and len(results) == len(qualities)
    config = tuner._local_tuner._tune_config  # no public getter: the pair Tune actually ran after restore
    restored = config.search_alg
    assert config.scheduler.searcher is restored
    assert type(restored.study.pruner) is optuna.pruners.MedianPruner and restored.study.pruner is restored.pruner
    ids = {r.config["quality"]: r.metrics["trial_id"] for r in results}
    iterations = {r.config["quality"]: r.metrics["training_iteration"] for r in results}
    assert iterations == {1.0: 6, 0.8: 6, 0.1: 2, 1.2: 6, 0.05: 2, 1.1: 6}  # n_warmup_steps 2: epoch 2 at the earliest
    assert restored.pruned_trials() == {ids[0.1]: 2, ids[0.05]: 2}
    stored = optuna.load_study(study_name="restore", storage=f"sqlite:///{storage}")
    assert TrialState.WAITING not in [t.state for t in stored.trials]  # points_to_evaluate not queued twice
    by_id = _trials_by_tune_id(stored)
    assert set(by_id) == set(ids.values())  # one live Optuna trial per Tune trial
    assert [by_id[ids[q]].state for q in qualities] == [
        TrialState.COMPLETE, TrialState.COMPLETE, TrialState.PRUNED, TrialState.COMPLETE, TrialState.PRUNED,
        TrialState.COMPLETE]
    assert by_id[ids[1.2]].value == pytest.approx(1.2 * ITERATIONS)
    (crashed,) = [t for t in stored.trials if t.state == TrialState.FAIL]  # the crashed attempt, kept as such
    assert by_id[ids[1.2]].user_attrs[RESUMED_FROM_ATTR] == crashed.number
    assert crashed.user_attrs[ERRORED_ATTR] == 3, "Tune told the scheduler it failed for good, after 3 epochs"
    assert ERRORED_ATTR not in by_id[ids[1.2]].user_attrs, "continued: no sampler reads the crash as its value"


def test_the_search_space_reaches_optuna_with_every_step_it_declares(tmp_path):
    # an int step was dropped on the way (tune.randint): depth 2, 4, 6, 8 sampled odd depths too
    from ray.tune.search.optuna import OptunaSearch

    from sweeps.runner import RunOptions, _search_space, prepare

    spec = tmp_path / "stepped.yaml"
    spec.write_text("name: stepped\nkind: search\nprofile: smoke\nsearch:\n  num_samples: 2\n  space:\n"
                    "    model.depth: {type: int, low: 2, high: 8, step: 2}\n"
                    "    model.num_lanets: {type: int, low: 1, high: 4}\n"
                    "    model.drop_rate: {type: float, low: 0.1, high: 0.5, step: 0.1}\n"
                    "    optim.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}\n")
    prepared = prepare(str(spec), RunOptions(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
                                             storage=str(tmp_path / "rr")))
    space = OptunaSearch.convert_search_space(_search_space(prepared))
    assert space["model.depth"] == optuna.distributions.IntDistribution(2, 8, step=2)
    assert space["model.num_lanets"] == optuna.distributions.IntDistribution(1, 4)
    assert space["model.drop_rate"] == optuna.distributions.FloatDistribution(0.1, 0.5, step=0.1)
    assert space["optim.lr"] == optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)


def test_scheduler_steps_by_the_epochs_a_trial_trained_not_by_tunes_restored_iteration_count():
    # a search trial handed an unusable checkpoint starts over from epoch 1, while Tune's iteration count,
    # restored with that checkpoint, goes on: its first epochs again must not be judged at the later steps
    searcher, scheduler = _pair(optuna.pruners.ThresholdPruner(lower=0.5))
    searcher.suggest("t")
    trial = SimpleNamespace(trial_id="t")

    def result(score, iteration, epochs_done):
        return scheduler.on_trial_result(None, trial, {"score": score, "training_iteration": iteration,
                                                       "epochs_done": epochs_done})

    assert [result(0.9, 1, 1), result(0.8, 2, 2)] == [CONTINUE, CONTINUE]
    assert [result(0.1, 3, 1), result(0.3, 4, 2)] == [CONTINUE, CONTINUE], "epochs 1 and 2 were judged already"
    assert result(0.2, 5, 3) == STOP
    assert _optuna_trial(searcher, "t").intermediate_values == {1: 0.9, 2: 0.8, 3: 0.2}
    assert scheduler.pruned_trials() == {"t": 3}


def test_a_search_proposes_what_its_spec_seed_decides(tmp_path):
    # the sampler was seeded 0 whatever the spec's seed: seeds [1] trained other weights on the same configs
    from sweeps.runner import RunOptions, _search_space, _tune_configs, prepare

    def proposals(seed: int, name: str) -> list[dict]:
        spec = tmp_path / f"{name}.yaml"
        spec.write_text(f"name: {name}\nkind: search\nprofile: smoke\nseeds: [{seed}]\nsearch:\n  num_samples: 3\n"
                        "  space:\n    optim.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}\n")
        prepared = prepare(str(spec), RunOptions(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
                                                 storage=str(tmp_path / "rr")))
        searcher = _tune_configs(prepared, None, name)[0].search_alg
        searcher.set_search_properties("val_acc", "max", {"search": _search_space(prepared)})
        return [searcher.suggest(f"t{i}") for i in range(3)]

    assert proposals(0, "a") == proposals(0, "b"), "one seed, one sequence of configurations"
    assert proposals(1, "c") != proposals(0, "a")


def test_with_defaults_writes_out_every_argument_the_pruner_takes_nested_ones_too():
    # `{type: median}` and `{type: median, n_startup_trials: 5}` build one pruner: an invocation's spec read so
    # (invocations.trains_the_same) is continued whichever way it is written
    assert with_defaults({"type": "median"}) == with_defaults({"type": "median", "n_startup_trials": 5}) == {
        "type": "median", "n_startup_trials": 5, "n_warmup_steps": 0, "interval_steps": 1, "n_min_trials": 1}
    assert with_defaults({"type": "median", "n_startup_trials": 4})["n_startup_trials"] == 4
    assert (with_defaults({"type": "patient", "patience": 2, "wrapped": {"type": "median"}})
            == with_defaults({"type": "patient", "patience": 2, "min_delta": 0.0,
                              "wrapped": {"type": "median", "n_warmup_steps": 0}}))
    assert with_defaults({"type": "gone", "x": 1}) == {"type": "gone", "x": 1}, "no defaults known: as given"
