"""The training engine: schedules, early stop, exact resume, honest selection, safe checkpoints."""

import dataclasses
import logging
import math

import pytest
import torch

from transfer_core.config import ConfigError, DataConfig, ModelConfig, OptimConfig, TrialConfig
from transfer_core.engine import (History, StateError, build_optimizer, fit, load_state, lr_factor, save_state,
                                  selected_model_state)
from transfer_core.models import build_model

TINY = TrialConfig(
    model=ModelConfig(stem="small", stem_width=16, image_size=32, embed_dim=32, depth=1, num_heads=2),
    data=DataConfig(synthetic_per_class=12, augment="light"),
    optim=OptimConfig(optimizer="adamw", lr=1e-3, schedule="cosine", epochs=3, batch_size=16),
    device="cpu", num_threads=1, seed=3)


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("TRANSFER_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def _comparable(history: History) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in ("epoch_time_s", "train_images_per_s")}
            for r in history.records]


def test_lr_factor_piecewise_drops_by_gamma_at_milestones():
    cfg = OptimConfig(milestones=(15, 30), gamma=0.1)
    assert [lr_factor(cfg, e) for e in (0, 14, 15, 29, 30, 39)] == pytest.approx([1, 1, .1, .1, .01, .01])


def test_lr_factor_cosine_decays_to_zero_after_warmup():
    cfg = OptimConfig(schedule="cosine", epochs=10, warmup_epochs=2)
    assert lr_factor(cfg, 0) == pytest.approx(1 / 3) and lr_factor(cfg, 1) == pytest.approx(2 / 3)
    assert lr_factor(cfg, 2) == pytest.approx(1.0) and lr_factor(cfg, 10) == pytest.approx(0.0)


def test_fit_records_every_epoch_with_validation_and_test_metrics():
    history = fit(TINY)
    assert [r["epoch"] for r in history.records] == [1, 2, 3]
    for key in ("train_loss", "val_acc", "val_mca", "test_acc", "test_mca", "lr", "test_confusion"):
        assert key in history.records[0]
    assert len(history.class_names) == 7


def test_fit_on_epoch_returning_true_stops_training():
    history = fit(TINY, on_epoch=lambda record, state: record["epoch"] == 2)
    assert len(history.records) == 2 and history.stopped_early


def test_fit_resumed_from_a_state_matches_the_uninterrupted_run():
    full = fit(TINY)
    saved = {}

    def stop_after_first(record, state):
        saved["state"] = state()
        return True

    fit(TINY, on_epoch=stop_after_first)
    resumed = fit(TINY, resume_from=saved["state"])
    assert _comparable(resumed) == _comparable(full)


def test_fit_state_kept_from_an_earlier_epoch_is_not_changed_by_later_training():
    """state() is a checkpoint of its epoch: a caller that keeps one (resumes later, or from an
    earlier epoch) must not find the optimizer's moments and the history of later epochs in it."""
    config = dataclasses.replace(TINY, optim=dataclasses.replace(TINY.optim, epochs=4))
    full = fit(config)
    states = []
    fit(config, on_epoch=lambda record, state: states.append(state()) and False)
    kept = states[1]
    assert [r["epoch"] for r in kept["history"]["records"]] == [1, 2]
    resumed = fit(config, resume_from=kept)
    assert _comparable(resumed) == _comparable(full)


def _same_weights(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_state_keeps_the_weights_of_the_epoch_chosen_on_validation_which_score_sel_test_acc(validation_scores):
    config = dataclasses.replace(TINY, optim=dataclasses.replace(TINY.optim, epochs=4))
    validation_scores([0.5, 0.9, 0.6, 0.7])
    states = []
    fit(config, on_epoch=lambda record, state: states.append(state()) and False)
    assert "selected_model" not in states[1], "epoch 2 is its own choice: `model` holds its weights"
    assert selected_model_state(states[1]) is states[1]["model"]
    last = states[3]
    assert History(records=last["history"]["records"]).summary()["sel_epoch"] == 2
    assert last["selected_epoch"] == 2
    assert _same_weights(selected_model_state(last), states[1]["model"])
    assert not _same_weights(last["model"], states[1]["model"])


def test_a_resumed_fit_keeps_the_chosen_weights_and_a_state_saved_before_they_were_kept_gives_none(
        validation_scores, tmp_path):
    config = dataclasses.replace(TINY, optim=dataclasses.replace(TINY.optim, epochs=4))
    validation_scores([0.5, 0.9, 0.6, 0.7])
    states = []
    fit(config, on_epoch=lambda record, state: states.append(state()) or record["epoch"] == 3)
    at_3 = load_state(save_state(states[2], tmp_path / "state.pt"))   # through a file, as a trial resumes
    validation_scores([0.7])   # the resumed fit evaluates epoch 4 only
    resumed = []
    fit(config, resume_from=at_3, on_epoch=lambda record, state: resumed.append(state()) and False)
    assert _same_weights(selected_model_state(resumed[-1]), states[1]["model"])

    old = {k: v for k, v in at_3.items() if k not in ("selected_model", "selected_epoch")}
    validation_scores([0.7])
    resumed = []
    fit(config, resume_from=old, on_epoch=lambda record, state: resumed.append(state()) and False)
    assert selected_model_state(old) is None and selected_model_state(resumed[-1]) is None, \
        "epoch 2's weights are gone: none, rather than another epoch's under its name"
    validation_scores([0.95])   # a later epoch chosen: its weights are at hand again
    resumed = []
    fit(config, resume_from=old, on_epoch=lambda record, state: resumed.append(state()) and False)
    assert selected_model_state(resumed[-1]) is resumed[-1]["model"]


def test_without_validation_every_state_is_its_own_choice_and_keeps_no_second_copy():
    config = dataclasses.replace(TINY, data=dataclasses.replace(TINY.data, val_fraction=0.0))
    states = []
    fit(config, on_epoch=lambda record, state: states.append(state()) and False)
    assert all("selected_model" not in s and selected_model_state(s) is s["model"] for s in states)


def test_fit_resume_refuses_a_state_of_another_config():
    saved = {}
    fit(TINY, on_epoch=lambda r, state: saved.setdefault("s", state()) is not None)
    other = dataclasses.replace(TINY, seed=4)
    with pytest.raises(StateError, match=r"saved for another config; differing keys: seed"):
        fit(other, resume_from=saved["s"])


def test_a_state_saved_before_weight_decay_on_existed_resumes_a_config_that_decays_weights_only():
    saved = {}
    fit(TINY, on_epoch=lambda r, state: saved.setdefault("s", state()) is not None)
    del saved["s"]["config"]["optim.weight_decay_on"]
    assert len(fit(TINY, resume_from=saved["s"]).records) == TINY.optim.epochs


@pytest.mark.parametrize("scope", ["weights", "all"])
def test_weight_decay_on_weights_spares_norms_biases_and_tokens_and_on_all_decays_every_parameter(scope):
    # "all" is the release's ppcls L2 regulariser, which no parameter of the port opts out of
    model = build_model(TINY.model)
    optimizer = build_optimizer(model, dataclasses.replace(TINY.optim, weight_decay=0.05, weight_decay_on=scope))
    decay = {id(p): g["weight_decay"] for g in optimizer.param_groups for p in g["params"]}
    named = dict(model.named_parameters())
    assert len(decay) == len(named)
    spared = {n for n, p in named.items() if decay[id(p)] == 0.0}
    if scope == "all":
        assert spared == set()
    else:
        assert {"encoder.pos_embed", "encoder.cls_token"} <= spared
        assert spared == {n for n, p in named.items() if p.ndim <= 1} | model.no_weight_decay()


def test_deterministic_holds_for_its_fit_only_and_leaves_the_process_setting_as_it_was():
    # a reused Tune actor trains cells in turn: a deterministic cell must not make the next one so
    assert not torch.are_deterministic_algorithms_enabled()
    seen = []
    fit(dataclasses.replace(TINY, deterministic=True, optim=dataclasses.replace(TINY.optim, epochs=1)),
        on_epoch=lambda r, state: seen.append(torch.are_deterministic_algorithms_enabled()))
    assert seen == [True] and not torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)     # a caller's own setting is not turned off either
    try:
        fit(dataclasses.replace(TINY, optim=dataclasses.replace(TINY.optim, epochs=1)))
        assert torch.are_deterministic_algorithms_enabled() and not torch.is_deterministic_algorithms_warn_only_enabled()
    finally:
        torch.use_deterministic_algorithms(False)


def test_num_threads_holds_for_its_fit_only_and_leaves_the_callers_thread_count_also_when_fit_raises():
    # a researcher calling fit in a notebook had their process's torch thread count changed for good
    before = torch.get_num_threads()
    mine = 3 if before != 3 else 2
    torch.set_num_threads(mine)
    try:
        seen = []
        fit(dataclasses.replace(TINY, num_threads=1, optim=dataclasses.replace(TINY.optim, epochs=1)),
            on_epoch=lambda r, state: seen.append(torch.get_num_threads()))
        assert seen == [1] and torch.get_num_threads() == mine

        def fails(record, state):
            raise RuntimeError("stop")

        with pytest.raises(RuntimeError, match="stop"):
            fit(dataclasses.replace(TINY, num_threads=1), on_epoch=fails)
        assert torch.get_num_threads() == mine
    finally:
        torch.set_num_threads(before)


def test_fit_resume_refuses_a_state_missing_a_section_and_names_it():
    saved = {}
    fit(TINY, on_epoch=lambda r, state: saved.setdefault("s", state()) is not None)
    del saved["s"]["rng"]
    with pytest.raises(StateError, match=r"the state lacks rng: it is damaged"):
        fit(TINY, resume_from=saved["s"])


class _CountingCompile:
    """Stands in for torch.compile: the same module, with its calls counted by batch size."""

    def __init__(self):
        self.modes, self.batches = [], []

    def __call__(self, module, mode=None):
        self.modes.append(mode)

        def compiled(x):
            self.batches.append(len(x))
            return module(x)
        return compiled


def test_fit_compiled_trains_full_batches_through_the_compiled_model_and_evaluates_eagerly(monkeypatch):
    spy = _CountingCompile()
    monkeypatch.setattr(torch, "compile", spy)
    history = fit(dataclasses.replace(TINY, compile="reduce-overhead", optim=dataclasses.replace(TINY.optim, epochs=2)))
    assert spy.modes == ["reduce-overhead"], "compiled once per fit, with the mode asked for"
    from transfer_core.data import load_splits

    train, batch = len(load_splits(TINY.data, TINY.model.image_size).train), TINY.optim.batch_size
    assert train % batch, "the split must end in a short batch for this test to mean anything"
    assert spy.batches == [batch] * (2 * (train // batch)), \
        "only full batches go through the compiled model (one graph for the whole run), every epoch"
    assert len(history.records) == 2


def test_fit_resume_accepts_other_placement_keys_and_matches_the_uninterrupted_run(monkeypatch, tmp_path):
    full = fit(TINY)
    saved = {}
    fit(TINY, on_epoch=lambda r, state: saved.setdefault("s", state()) is not None)
    monkeypatch.setattr(torch, "compile", lambda module, mode=None: module)
    moved = dataclasses.replace(TINY, compile="default",
                                data=dataclasses.replace(TINY.data, cache_dir=str(tmp_path / "elsewhere")))
    resumed = fit(moved, resume_from=saved["s"])
    assert _comparable(resumed) == _comparable(full)


def test_fit_with_torch_compile_really_compiles_trains_and_checkpoints_the_plain_model():
    config = dataclasses.replace(TINY, compile="default", optim=dataclasses.replace(TINY.optim, epochs=2))
    states = []
    history = fit(config, on_epoch=lambda record, state: states.append(state()) and False)
    assert [r["epoch"] for r in history.records] == [1, 2]
    assert all(0 < r["train_loss"] < 10 and 0 <= r["test_acc"] <= 1 for r in history.records)
    eager = fit(dataclasses.replace(config, compile="off"))
    assert history.records[0]["train_loss"] == pytest.approx(eager.records[0]["train_loss"], rel=0.05), \
        "the same training (inductor's own random masks: close, not equal)"
    from transfer_core.models import build_model

    assert not any("_orig_mod" in key for key in states[-1]["model"]), "checkpoints hold the plain module's keys"
    build_model(config.model).load_state_dict(states[-1]["model"])


def test_fit_class_count_mismatch_names_the_fix():
    config = dataclasses.replace(TINY, model=dataclasses.replace(TINY.model, num_classes=8))
    with pytest.raises(ConfigError, match=r"model.num_classes=8 but data set 'synthetic' has 7 classes.*"
                                          r"set model.num_classes=7"):
        fit(config)


def test_evaluate_runs_in_eval_mode_and_leaves_the_model_in_the_mode_it_came_in():
    """A caller's loop that evaluates between steps must not go on training with MAD/MSAD switched off."""
    from transfer_core.data import build_eval_loader, load_splits
    from transfer_core.engine import evaluate
    from transfer_core.models import build_model

    splits = load_splits(TINY.data, TINY.model.image_size)
    loader = build_eval_loader(splits.test, TINY.data, TINY.model.image_size, 64)
    model = build_model(TINY.model)
    modes = []
    model.register_forward_pre_hook(lambda module, args: modes.append(module.training))
    for training in (True, False):
        model.train(training)
        evaluate(model, loader, 7, torch.device("cpu"))
        assert model.training is training and all(m.training is training for m in model.modules())
    assert modes and not any(modes), "every evaluation forward runs in eval mode"


def test_history_selects_test_at_best_validation_epoch_not_best_test():
    history = History(records=[
        {"epoch": 1, "val_acc": 0.5, "test_acc": 0.9, "test_mca": 0.8},
        {"epoch": 2, "val_acc": 0.7, "test_acc": 0.6, "test_mca": 0.5},
        {"epoch": 3, "val_acc": 0.7, "test_acc": 0.65, "test_mca": 0.55}])
    summary = history.summary()
    assert summary["sel_epoch"] == 2 and summary["sel_test_acc"] == 0.6
    assert summary["best_test_acc"] == 0.9 and summary["best_test_epoch"] == 1
    assert summary["best_val_acc"] == 0.7 and summary["final_test_acc"] == 0.65


def test_history_chooses_no_epoch_whose_weights_went_nan():
    # NaN weights predict class 0 for every image (argmax of NaNs): their "accuracy" was class 0's share of the
    # split, and it won selection over the real epochs before it
    nan = float("nan")
    history = History(records=[
        {"epoch": 1, "val_loss": 1.9, "val_acc": 0.20, "test_loss": 1.9, "test_acc": 0.21, "test_mca": 0.20},
        {"epoch": 2, "val_loss": nan, "val_acc": 0.34, "test_loss": nan, "test_acc": 0.35, "test_mca": 1 / 7}])
    summary = history.summary()
    assert (summary["sel_epoch"], summary["sel_test_acc"], summary["best_val_acc"]) == (1, 0.21, 0.20)
    assert (summary["best_test_epoch"], summary["best_test_acc"]) == (1, 0.21)
    assert math.isnan(summary["final_test_acc"]) and summary["epochs_done"] == 2


def test_history_without_an_epoch_of_numbers_scores_nothing():
    nan = float("nan")
    summary = History(records=[{"epoch": 1, "val_loss": nan, "val_acc": 0.34, "test_loss": nan,
                                "test_acc": 0.35, "test_mca": 1 / 7}]).summary()
    assert all(math.isnan(summary[k]) for k in ("sel_test_acc", "sel_test_mca", "best_test_acc", "best_val_acc",
                                                "final_test_acc"))
    assert summary["sel_epoch"] == summary["best_test_epoch"] == 1


def test_a_training_that_diverges_stops_there_and_is_warned_of_naming_the_epoch_and_lr(caplog):
    config = dataclasses.replace(TINY, optim=dataclasses.replace(TINY.optim, optimizer="sgd", lr=1e30))
    with caplog.at_level(logging.WARNING, logger="transfer_core.engine"):
        history = fit(config)
    assert "training diverged at epoch 1 of 3 (lr 1e+30)" in caplog.text and "training stops here" in caplog.text
    assert math.isnan(history.summary()["sel_test_acc"]), "no epoch's weights are numbers: no score"
    assert (len(history.records), history.diverged_epoch, history.stopped_early) == (1, 1, True), \
        "NaN weights never come back: the epochs after would train nothing, 40 of them at paper scale"


def test_without_validation_an_epoch_before_a_divergence_keeps_its_weights_and_a_resume_trains_no_more(monkeypatch):
    # without validation each epoch was its own choice, so no copy was kept: after a divergence the epoch
    # chosen (the one before) had no weights, and the NaN ones stood for it; resumed, it trained a NaN epoch more
    from transfer_core import engine

    calls, real = [], engine.evaluate

    def nan_from_the_second(*args, **kwargs):
        out = real(*args, **kwargs)
        calls.append(1)
        return {**out, "loss": float("nan")} if len(calls) >= 2 else out

    monkeypatch.setattr(engine, "evaluate", nan_from_the_second)
    config = dataclasses.replace(TINY, data=dataclasses.replace(TINY.data, val_fraction=0.0))
    states = []
    history = fit(config, on_epoch=lambda record, state: states.append(state()))
    assert (history.diverged_epoch, history.summary()["sel_epoch"], len(states)) == (2, 1, 2)
    kept = selected_model_state(states[-1])
    assert kept is not None and all(torch.equal(kept[k], v) for k, v in states[0]["model"].items())
    monkeypatch.setattr(engine, "train_one_epoch", lambda *a, **k: pytest.fail("trained after the divergence"))
    again = fit(config, resume_from=states[-1])
    assert (len(again.records), again.diverged_epoch, again.stopped_early) == (2, 2, True)


def test_a_training_whose_train_loss_goes_nan_while_evaluation_stays_finite_diverged_there_and_scores_it_not(
        monkeypatch):
    # its evaluation losses were finite: the epoch was scored, and the run read as one trained to its end,
    # though fit stopped there as at any divergence
    from transfer_core import engine

    real = engine.train_one_epoch
    epochs = []

    def nan_loss_in_the_second(*args, **kwargs):
        epochs.append(1)
        out = real(*args, **kwargs)
        return {**out, "train_loss": float("nan")} if len(epochs) == 2 else out

    monkeypatch.setattr(engine, "train_one_epoch", nan_loss_in_the_second)
    history = fit(TINY)
    assert math.isfinite(history.records[-1]["test_loss"]) and math.isfinite(history.records[-1]["val_loss"])
    assert (len(history.records), history.diverged_epoch, history.stopped_early) == (2, 2, True)
    summary = history.summary()
    assert summary["diverged_epoch"] == 2 and math.isnan(summary["final_test_acc"])
    assert (summary["sel_epoch"], summary["best_test_epoch"]) == (1, 1), "the epoch that diverged is not chosen"
    assert "diverged_epoch" not in History(records=history.records[:1]).summary(), "only where it diverged"


def test_save_state_then_load_state_round_trips_with_weights_only(tmp_path):
    saved = {}
    fit(TINY, on_epoch=lambda r, state: saved.setdefault("s", state()) is not None)
    path = save_state(saved["s"], tmp_path / "ckpt" / "state.pt")
    loaded = load_state(path)
    assert loaded["epoch"] == 1
    assert all(torch.equal(loaded["model"][k], v) for k, v in saved["s"]["model"].items())


def test_save_state_failure_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    path = save_state({"format": 1, "epoch": 1}, tmp_path / "state.pt")
    before = path.read_bytes()

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError, match="No space left"):
        save_state({"format": 1, "epoch": 2}, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["state.pt"]


def test_load_state_truncated_file_is_a_clear_error(tmp_path):
    path = save_state({"format": 1, "epoch": 1, "x": torch.zeros(1000)}, tmp_path / "state.pt")
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(StateError, match=r"state.pt cannot be read .* corrupt or not a transfer_core state"):
        load_state(path)


def test_load_state_missing_file_names_it(tmp_path):
    with pytest.raises(StateError, match=r"checkpoint .*nothing.pt does not exist"):
        load_state(tmp_path / "nothing.pt")


def test_load_state_foreign_dict_is_refused(tmp_path):
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(StateError, match=r"foreign.pt is not a transfer_core state"):
        load_state(tmp_path / "foreign.pt")


def test_the_trial_path_does_not_import_torchvision():
    """torchvision costs ~1.3 s per fresh trial worker (it pulls in torch._dynamo); only the per-sample
    recipes, DropBlock and the ResNet-18 stem need it, and they import it themselves."""
    import subprocess
    import sys

    code = ("import sys, sweeps.trainable, transfer_core.data, transfer_core.models, transfer_core.engine\n"
            "print('torchvision' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"


@pytest.mark.parametrize("batch_size", [1, 34])
def test_a_training_batch_of_one_sample_on_a_one_by_one_feature_map_is_a_config_error_before_training(batch_size):
    """resnet18 at 16 px leaves a 1 x 1 map: BatchNorm cannot train on a batch of one (a short last batch: 35
    training images in batches of 34), which torch found only at that batch, naming no key."""
    config = dataclasses.replace(
        TINY, model=dataclasses.replace(TINY.model, stem="resnet18", image_size=16),
        data=dataclasses.replace(TINY.data, synthetic_per_class=6),
        optim=dataclasses.replace(TINY.optim, batch_size=batch_size, epochs=1))
    trained = []
    with pytest.raises(ConfigError, match=r"optim.batch_size=.*model.stem='resnet18'.*model.image_size=16"):
        fit(config, on_epoch=lambda record, state: trained.append(record))
    assert not trained
    fit(dataclasses.replace(config, optim=dataclasses.replace(config.optim, batch_size=8)))   # no batch of 1
