"""sweeps.tables: loading an invocation's runs from MLflow and building the ResultTable.

The fixture sweep is written with MlflowClient exactly as schema.py describes it: a parent run with
its tags and child runs (arm x data x seed) with status tags, params, per-epoch and summary metrics.
It is mid-sweep on purpose: some cells are running, one failed, one has a single seed.
"""

from __future__ import annotations

import dataclasses
import io
import json
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

from sweeps import schema as S
from sweeps import table_formats as TF
from sweeps import tables as T

SWEEP = "components"
ROWS = ["Baseline", "+ Local CNNs", "+ MAD", "+ ViT"]
DATA = ["rafdb", "affectnet"]
SEEDS = [0, 1, 2]
PAPER = {"rafdb": 90.91, "affectnet": None}
# (arm, data) -> per-seed (status, sel_test_acc); sel_test_mca = acc - 0.05, best_test_acc = acc + 0.01
CELLS = {
    ("Baseline", "rafdb"): [("completed", 0.800), ("completed", 0.810), ("completed", 0.820)],
    ("+ Local CNNs", "rafdb"): [("completed", 0.830), ("completed", 0.845), ("completed", 0.850)],
    ("+ MAD", "rafdb"): [("completed", 0.840), ("completed", 0.850), ("completed", 0.855)],
    ("+ ViT", "rafdb"): [("completed", 0.845), ("running", 0.70), ("running", 0.71)],
    ("Baseline", "affectnet"): [("completed", 0.600), ("completed", 0.610), ("completed", 0.605)],
    ("+ Local CNNs", "affectnet"): [("completed", 0.620), ("completed", 0.615), ("completed", 0.630)],
    ("+ MAD", "affectnet"): [("completed", 0.640), ("completed", 0.630), ("running", 0.50)],
    ("+ ViT", "affectnet"): [("failed", 0.30)],
}
ARM_PARAMS = {"Baseline": {"model.local_branch": "False", "model.encoder": "False"},
              "+ Local CNNs": {"model.local_branch": "True", "model.drop_variant": "none", "model.encoder": "False"},
              "+ MAD": {"model.local_branch": "True", "model.drop_variant": "mad", "model.encoder": "False"},
              "+ ViT": {"model.local_branch": "True", "model.drop_variant": "mad", "model.encoder": "True"}}
PARENT_TAGS = {S.TAG_ROLE: S.ROLE_PARENT, S.TAG_SWEEP: SWEEP, S.TAG_KIND: "table", S.TAG_SPEC_HASH: "spec0123",
               S.TAG_PROFILE: "quick", S.TAG_DATA: ",".join(DATA), S.TAG_SYNTHETIC: "true",
               S.TAG_DATA_FINGERPRINT: json.dumps({"rafdb": "fp-raf", "affectnet": "fp-aff"}),
               S.TAG_SEEDS: json.dumps(SEEDS), S.TAG_GIT_COMMIT: "abc1234",
               S.TAG_VERSIONS: json.dumps({"torch": "2.14.1", "mlflow": "3.17.2"}), S.TAG_STATUS: S.STATUS_RUNNING}


def create_store(uri: str, artifact_root: Path, sweep: str = SWEEP) -> tuple[MlflowClient, str]:
    client = MlflowClient(tracking_uri=uri)
    return client, client.create_experiment(sweep, artifact_location=str(artifact_root))


def record_sweep(client: MlflowClient, exp_id: str, *, cells=CELLS, start: int | None = None,
                 parent_tags=PARENT_TAGS, epochs: int = 3, artifacts: dict | None = None,
                 selected_artifacts: dict | None = None) -> str:
    """Write one invocation; returns the parent run id. artifacts: arm -> local dir logged under model/;
    selected_artifacts: under model_selected/."""
    start = start or int(time.time() * 1000)
    parent = client.create_run(exp_id, run_name=f"{SWEEP}@test", start_time=start, tags=dict(parent_tags))
    pid = parent.info.run_id
    for k, ((arm, data), seeds) in enumerate(cells.items()):
        for seed, (status, acc) in enumerate(seeds):
            tags = {S.TAG_PARENT: pid, S.TAG_ROLE: S.ROLE_CELL, S.TAG_SWEEP: SWEEP, S.TAG_ARM: arm,
                    S.TAG_DATA: data, S.TAG_SEED: str(seed), S.TAG_CELL_ID: f"cell-{k}-{seed}",
                    S.TAG_TRIAL_ID: f"trial-{k}-{seed}", S.TAG_STATUS: status,
                    S.TAG_DATA_FINGERPRINT: f"fp-{data}", S.TAG_SYNTHETIC: "true"}
            run = client.create_run(exp_id, run_name=f"{SWEEP}/{arm}/seed{seed}/{data}",
                                    start_time=start + 1 + k * 10 + seed, tags=tags)
            rid = run.info.run_id
            done = epochs if status == "completed" else epochs - 1
            metrics = [Metric("val_acc", acc * (0.7 + 0.3 * e / epochs), 0, e) for e in range(1, done + 1)]
            metrics += [Metric("test_acc", acc * (0.7 + 0.3 * e / epochs), 0, e) for e in range(1, done + 1)]
            metrics += [Metric("sel_test_acc", acc, 0, done), Metric("sel_test_mca", acc - 0.05, 0, done),
                        Metric("best_test_acc", acc + 0.01, 0, done), Metric("epochs_done", done, 0, done),
                        Metric("best_val_acc", acc + 0.02, 0, done)]
            params = [Param(k_, v) for k_, v in {**ARM_PARAMS[arm], "seed": str(seed)}.items()]
            client.log_batch(rid, metrics=metrics, params=params)
            if status == "completed" and artifacts and arm in artifacts:
                client.log_artifacts(rid, str(artifacts[arm]), S.ARTIFACT_MODEL_DIR)
            if status == "completed" and selected_artifacts and arm in selected_artifacts:
                client.log_artifacts(rid, str(selected_artifacts[arm]), S.ARTIFACT_SELECTED_MODEL_DIR)
            if status != "running":
                client.set_terminated(rid, "FINISHED" if status == "completed" else "FAILED")
    return pid


_SHARED: dict[str, object] = {}  # made once per test session, also when other modules import these fixtures


@pytest.fixture(scope="session")
def template_db(tmp_path_factory) -> Path:
    """An empty, migrated MLflow sqlite store; copying it saves each test the ~4 s of migrations."""
    if "template" not in _SHARED:
        path = tmp_path_factory.mktemp("template") / "mlflow.db"
        MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
        _SHARED["template"] = path
    return _SHARED["template"]


@pytest.fixture
def store(tracking_uri, template_db, tmp_path):
    """A fresh store at the `tracking_uri` fixture's path, with the client and an experiment for SWEEP."""
    shutil.copy(template_db, tracking_uri[len("sqlite:///"):])
    return create_store(tracking_uri, tmp_path / "artifacts")


@pytest.fixture(scope="session")
def recorded(template_db, tmp_path_factory):
    """One store holding the fixture sweep, shared by the tests of every module (they only add artifacts)."""
    if "recorded" not in _SHARED:
        root = tmp_path_factory.mktemp("recorded")
        shutil.copy(template_db, root / "mlflow.db")
        uri = f"sqlite:///{root / 'mlflow.db'}"
        client, exp = create_store(uri, root / "artifacts")
        record_sweep(client, exp)
        _SHARED["recorded"] = uri
    return _SHARED["recorded"]


def layout(**kw):
    return {"rows": ROWS, "baseline": "Baseline", "extra_metrics": ["mca"], "paper": PAPER, **kw}


# --------------------------------------------------------------------------- load_sweep_runs

def test_load_sweep_runs_one_row_per_child(recorded):
    runs = T.load_sweep_runs(SWEEP, tracking_uri=recorded)
    assert len(runs.children) == sum(len(v) for v in CELLS.values())
    assert set(runs.children["arm"]) == set(ROWS)
    assert runs.children["seed"].dtype.kind == "i"
    assert runs.parent.tags[S.TAG_PROFILE] == "quick"


def test_load_sweep_runs_params_stay_strings(recorded):
    runs = T.load_sweep_runs(SWEEP, tracking_uri=recorded)
    assert set(runs.children["params.model.encoder"]) == {"True", "False"}


def test_load_sweep_runs_statuses_from_tags(recorded):
    counts = T.load_sweep_runs(SWEEP, tracking_uri=recorded).children["status"].value_counts().to_dict()
    assert counts == {"completed": 18, "running": 3, "failed": 1}


def test_load_sweep_runs_takes_latest_parent(store, tracking_uri):
    client, exp = store
    old = record_sweep(client, exp, cells={("Baseline", "rafdb"): [("completed", 0.5)]}, start=1_000_000)
    new = record_sweep(client, exp, cells={("Baseline", "rafdb"): [("completed", 0.9)]}, start=2_000_000)
    assert T.load_sweep_runs(SWEEP, tracking_uri=tracking_uri).parent.run_id == new
    chosen = T.load_sweep_runs(SWEEP, tracking_uri=tracking_uri, parent_run_id=old[:8])
    assert chosen.children["sel_test_acc"].tolist() == [0.5]


def test_load_sweep_runs_unknown_sweep_lists_recorded(store, tracking_uri):
    with pytest.raises(T.TableError, match=r"no sweep 'nope' recorded .*recorded: components"):
        T.load_sweep_runs("nope", tracking_uri=tracking_uri)


def test_load_sweep_runs_without_parent(store, tracking_uri):
    with pytest.raises(T.TableError, match="has no recorded invocation"):
        T.load_sweep_runs(SWEEP, tracking_uri=tracking_uri)


def test_load_sweep_runs_unknown_parent_lists_invocations(store, tracking_uri):
    client, exp = store
    pid = record_sweep(client, exp, cells={})
    with pytest.raises(T.TableError, match=f"'ffff' is not an invocation .*{pid}"):
        T.load_sweep_runs(SWEEP, tracking_uri=tracking_uri, parent_run_id="ffff")


def test_load_sweep_runs_unknown_parent_lists_an_invocation_whose_driver_is_gone_as_interrupted(store, tracking_uri):
    # it read "(running)" for a driver killed without a word, which `sweeps status` calls interrupted
    import socket

    client, exp = store
    gone = json.dumps({"host": socket.gethostname(), "pid": 999999999, "start": None})   # a pid no process has
    pid = record_sweep(client, exp, cells={}, parent_tags={**PARENT_TAGS, S.TAG_STATUS: S.STATUS_RUNNING,
                                                            S.TAG_DRIVER: gone})
    with pytest.raises(T.TableError, match=rf"'ffff' is not an invocation .*{pid} \S+ \(interrupted\)"):
        T.load_sweep_runs(SWEEP, tracking_uri=tracking_uri, parent_run_id="ffff")


def test_load_sweep_runs_prefix_of_several_parents_lists_those_it_matches(store, tracking_uri):
    # it read "run '5' matches several an invocation of sweep ...", then listed every invocation
    client, exp = store
    by_first: dict[str, list[str]] = {}
    while not any(len(ids) > 1 for ids in by_first.values()):   # 17 at most: two share a first hex digit
        pid = record_sweep(client, exp, cells={})
        by_first.setdefault(pid[0], []).append(pid)
    (prefix, matched), = [(first, ids) for first, ids in by_first.items() if len(ids) > 1]
    others = [pid for first, ids in by_first.items() if first != prefix for pid in ids]
    with pytest.raises(T.TableError, match=rf"run '{prefix}' matches 2 invocations of sweep 'components' \(give "
                                           rf"more of its id\): ") as caught:
        T.load_sweep_runs(SWEEP, tracking_uri=tracking_uri, parent_run_id=prefix)
    assert all(pid in str(caught.value) for pid in matched), str(caught.value)
    assert not any(pid in str(caught.value) for pid in others), str(caught.value)


def test_load_sweep_runs_running_child_of_interrupted_parent_is_interrupted(store, tracking_uri):
    client, exp = store
    record_sweep(client, exp, cells={("Baseline", "rafdb"): [("running", 0.5)]},
                 parent_tags={**PARENT_TAGS, S.TAG_STATUS: S.STATUS_INTERRUPTED})
    children = T.load_sweep_runs(SWEEP, tracking_uri=tracking_uri).children
    assert children["status"].tolist() == [S.STATUS_INTERRUPTED]


def test_a_table_continued_with_fewer_seeds_leaves_the_other_seeds_runs_out_and_says_so(store, tracking_uri):
    # `sweeps resume --seeds 1` of a 2-seed invocation: one row averaged seeds 0 and 1, another seed 0 alone,
    # under a caption saying "Seeds: 0"
    client, exp = store
    record_sweep(client, exp, cells={("Baseline", "rafdb"): [("completed", 0.80), ("completed", 0.90)],
                                     ("+ MAD", "rafdb"): [("completed", 0.85)]},
                 parent_tags={**PARENT_TAGS, S.TAG_DATA: "rafdb", S.TAG_SEEDS: json.dumps([0]),
                              S.TAG_STATUS: S.STATUS_COMPLETED})
    runs = T.load_sweep_runs(SWEEP, tracking_uri=tracking_uri)
    assert sorted(runs.children["seed"]) == [0, 0] and runs.seeds_left_out == (1,)
    table = T.table_from_runs(runs, rows=["Baseline", "+ MAD"])
    assert table.cells[("Baseline", "rafdb", "sel_test_acc")].values == {0: 0.80}
    caption = TF.caption_text(table, T.CaptionFacts.from_runs(runs))
    assert "Seeds: 0;" in caption and "Runs of seed 1 recorded under this invocation are left out" in caption


def test_a_runs_history_keeps_each_epochs_latest_value(store, tracking_uri):
    # an epoch re-trained and measured otherwise is logged again, later (tracking.EpochLog): that one counts
    client, exp = store
    record_sweep(client, exp, cells={("Baseline", "rafdb"): [("completed", 0.80)]},
                 parent_tags={**PARENT_TAGS, S.TAG_DATA: "rafdb", S.TAG_SEEDS: json.dumps([0])})
    runs = T.load_sweep_runs(SWEEP, tracking_uri=tracking_uri)
    run_id = runs.children["run_id"][0]
    client.log_batch(run_id, metrics=[Metric("val_acc", 0.99, 5, 2)])
    history = runs.history("val_acc")
    assert history["step"].tolist() == [1, 2, 3] and history["value"][1] == 0.99


def test_load_sweep_runs_tells_a_final_accuracy_recorded_nan_a_divergence_from_one_not_recorded(store, tracking_uri):
    from mlflow.entities import Metric

    client, exp = store
    pid = record_sweep(client, exp, cells={("+ MAD", "rafdb"): [("completed", 0.8), ("completed", 0.82)]})
    runs = T.load_sweep_runs(SWEEP, tracking_uri=tracking_uri, parent_run_id=pid)
    assert runs.children["diverged_epoch"].isna().all(), "the fixture records no final_test_acc: nothing diverged"
    diverged = runs.children[runs.children["seed"] == 1]["run_id"].iloc[0]
    client.log_batch(diverged, metrics=[Metric("final_test_acc", float("nan"), 0, 3)])
    runs = T.load_sweep_runs(SWEEP, tracking_uri=tracking_uri, parent_run_id=pid)
    assert runs.children.set_index("seed")["diverged_epoch"].fillna(-1).to_dict() == {0: -1, 1: 3}


def test_load_sweep_runs_reads_the_epoch_a_run_recorded_diverging_at_and_a_training_loss_gone_nan_of_older_runs(
        store, tracking_uri):
    # a training whose loss went NaN with its evaluation losses finite kept a finite final_test_acc: the table
    # and the curves read it as a run trained to its end, though it stopped where it diverged
    from mlflow.entities import Metric

    client, exp = store
    pid = record_sweep(client, exp, cells={("+ MAD", "rafdb"): [("completed", 0.8), ("completed", 0.82),
                                                                ("completed", 0.81)]})
    by_seed = T.load_sweep_runs(SWEEP, tracking_uri=tracking_uri, parent_run_id=pid).children.set_index("seed")
    client.log_batch(by_seed.loc[1, "run_id"], metrics=[Metric(S.DIVERGED_EPOCH_KEY, 2, 0, 2)])
    client.log_batch(by_seed.loc[2, "run_id"], metrics=[Metric("train_loss", 0.9, 0, 2),
                                                        Metric("train_loss", float("inf"), 0, 3)])
    children = T.load_sweep_runs(SWEEP, tracking_uri=tracking_uri, parent_run_id=pid).children
    assert children.set_index("seed")["diverged_epoch"].fillna(-1).to_dict() == {0: -1, 1: 2, 2: 3}
    assert T._diverged_runs(children) == {by_seed.loc[1, "run_id"]: 2, by_seed.loc[2, "run_id"]: 3}


def test_a_run_found_diverged_by_its_training_loss_alone_is_captioned_so_not_as_one_whose_last_epoch_has_no_value(
        store, tracking_uri):
    # a run recorded before an epoch whose training loss was not finite went unscored: its evaluation gave
    # numbers there (final_test_acc 0.81), yet the caption said "its last epoch's accuracy has no value" and
    # --explain "of its epochs before", as of a run whose weights scored nothing at its last epoch
    client, exp = store
    pid = record_sweep(client, exp, cells={("+ MAD", "rafdb"): [("completed", 0.8), ("completed", 0.82),
                                                                ("completed", 0.81)]},
                       parent_tags={**PARENT_TAGS, S.TAG_DATA: "rafdb", S.TAG_SEEDS: json.dumps([0, 1, 2])})
    by_seed = T.load_sweep_runs(SWEEP, tracking_uri=tracking_uri, parent_run_id=pid).children.set_index("seed")
    client.log_batch(by_seed.loc[0, "run_id"], metrics=[Metric("final_test_acc", 0.8, 0, 3)])
    client.log_batch(by_seed.loc[1, "run_id"], metrics=[Metric(S.DIVERGED_EPOCH_KEY, 3, 0, 3),   # today's record
                                                        Metric("final_test_acc", float("nan"), 0, 3)])
    client.log_batch(by_seed.loc[2, "run_id"], metrics=[Metric("final_test_acc", 0.81, 0, 3),    # an older run's
                                                        Metric("train_loss", 0.9, 0, 2),
                                                        Metric("train_loss", float("nan"), 0, 3)])
    runs = T.load_sweep_runs(SWEEP, tracking_uri=tracking_uri, parent_run_id=pid)
    t = T.table_from_runs(runs, rows=["+ MAD"], extra_metrics=["final_test_acc"])
    assert t.diverged_late == {("+ MAD", "rafdb"): ((1, 3),)}
    assert t.diverged_scored == {("+ MAD", "rafdb"): ((2, 3),)}
    caption = TF.caption_text(t, T.CaptionFacts())
    assert ("Training diverged (losses not finite) after epochs with a value, and stopped: + MAD (seed 1 at epoch "
            "3); such a run is scored on its epochs before (its last epoch's accuracy has no value).") in caption
    assert ("Training diverged and stopped, its training loss not finite while its evaluation still gave numbers: "
            "+ MAD (seed 2 at epoch 3); recorded before such an epoch went unscored, such a run was scored on that "
            "epoch too (its last epoch's accuracy is that epoch's).") in caption
    assert t.cell("+ MAD", "rafdb", "final_test_acc").values == {0: 0.8, 2: 0.81}
    record = TF.explain(t, "+ MAD")
    assert ("seed 2: 81.00  run {}  config cell-0-2  (its training loss was not finite at epoch 3, its last, whose "
            "evaluation still gave numbers: recorded before such an epoch went unscored, this value may be of that "
            "epoch)").format(by_seed.loc[2, "run_id"]) in record
    assert "seed 1: 82.00  run {}  config cell-0-1  (its training diverged at epoch 3: of its epochs before)".format(
        by_seed.loc[1, "run_id"]) in record


# --------------------------------------------------------------------------- build_table

def frame(cells: dict) -> pd.DataFrame:
    """A children frame without MLflow: (arm, data) -> {seed: value or a status string}."""
    recs = []
    for (arm, data), seeds in cells.items():
        for seed, v in seeds.items():
            status = v if isinstance(v, str) else "completed"
            acc = float("nan") if isinstance(v, str) else v
            recs.append({"run_id": f"r-{arm}-{data}-{seed}", "arm": arm, "data": data, "seed": seed,
                         "status": status, "cell_id": f"c-{arm}-{seed}", "data_fingerprint": f"fp-{data}",
                         "start_time": len(recs), "sel_test_acc": acc, "sel_test_mca": acc - 0.1,
                         "best_test_acc": acc + 0.01, "best_test_mca": acc - 0.09, "best_val_acc": acc + 0.02})
    return pd.DataFrame(recs)


def test_build_table_cell_mean_std_n(recorded):
    table = T.table_from_runs(T.load_sweep_runs(SWEEP, tracking_uri=recorded), **layout())
    cell = table.cell("Baseline", "rafdb")
    assert (cell.n, cell.summary.mean, cell.summary.std) == (3, pytest.approx(0.81), pytest.approx(0.01))
    assert cell.run_ids.keys() == {0, 1, 2}
    assert table.cell("Baseline", "rafdb", "sel_test_mca").summary.mean == pytest.approx(0.76)


def test_build_table_counts_unfinished(recorded):
    table = T.table_from_runs(T.load_sweep_runs(SWEEP, tracking_uri=recorded), **layout())
    vit = table.cell("+ ViT", "rafdb")
    assert (vit.n, vit.counts["running"], vit.state) == (1, 2, "partial")
    assert table.cell("+ ViT", "affectnet").state == "failed"
    assert table.in_progress


def test_build_table_cell_ids_follow_seed_order():
    cell = T.build_table(frame({("A", "d"): {2: 0.8, 0: 0.9}})).cell("A", "d")  # seed 2 started first
    assert list(cell.values) == [0, 2]
    assert cell.cell_ids == ("c-A-0", "c-A-2")


def test_build_table_best_per_column():
    t = T.build_table(frame({("A", "d"): {0: 0.8, 1: 0.81}, ("B", "d"): {0: 0.9, 1: 0.95}}), rows=["A", "B"])
    assert [t.cell(r, "d").best for r in "AB"] == [False, True]


def test_build_table_equal_means_are_all_best_whatever_their_float_rounding():
    # (131 + 135) / 2 and (132 + 134) / 2 of 525 test images: the same 25.33 %, different last bits
    a, b = T.stats.describe([131 / 525, 135 / 525]).mean, T.stats.describe([132 / 525, 134 / 525]).mean
    assert a != b
    t = T.build_table(frame({("A", "d"): {0: 131 / 525, 1: 135 / 525}, ("B", "d"): {0: 132 / 525, 1: 134 / 525}}),
                      rows=["A", "B"])
    assert t.cell("A", "d").best and t.cell("B", "d").best


def test_build_table_best_is_among_the_cells_with_every_seed_while_any_has_them():
    # a higher mean over fewer seeds (one still training) is not the column's best
    cells = {("A", "d"): {0: 0.80, 1: 0.82}, ("B", "d"): {0: 0.90, 1: "running"}}
    t = T.build_table(frame(cells), rows=["A", "B"], seeds=[0, 1])
    assert t.cell("A", "d").best and not t.cell("B", "d").best
    assert t.cell("B", "d").test is None, "an incomplete cell beside complete ones is not tested either"
    only_partial = T.build_table(frame({("B", "d"): {0: 0.90, 1: "running"}}), rows=["B"], seeds=[0, 1])
    assert only_partial.cell("B", "d").best, "a column without a complete cell still has a best"


def test_build_table_tie_when_not_significant_after_holm():
    # B - A over seeds: +0.05, -0.03, +0.04 -> p ~ 0.5: tied; C - A: large and consistent: not tied
    t = T.build_table(frame({("A", "d"): {0: 0.90, 1: 0.92, 2: 0.91}, ("B", "d"): {0: 0.85, 1: 0.95, 2: 0.87},
                             ("C", "d"): {0: 0.70, 1: 0.71, 2: 0.705}}), rows=["A", "B", "C"])
    assert t.cell("A", "d").best
    assert t.cell("B", "d").tied and not t.cell("C", "d").tied
    assert t.n_comparisons == 2
    p_b, p_c = t.cell("B", "d").test.p, t.cell("C", "d").test.p  # Holm: C (smaller) x 2, B x 1, monotone
    assert t.cell("C", "d").p_holm == pytest.approx(2 * p_c)
    assert t.cell("B", "d").p_holm == pytest.approx(max(p_b, 2 * p_c))


@pytest.mark.parametrize("rows", [["Base", "B", "D", "E"], ["Base", "B", "E", "D"]])
def test_a_cell_is_tied_with_the_best_only_if_it_ties_with_every_best_whatever_the_rows_order(rows):
    # D and E share the best mean; B was tested against the first of them in row order: tied with D
    # (p 0.225), while a constant 1-point gap below E (p 0) made it no tie in the other order
    t = T.build_table(frame({("Base", "d"): {0: .80, 1: .81, 2: .82}, ("B", "d"): {0: .84, 1: .84, 2: .84},
                             ("D", "d"): {0: .85, 1: .84, 2: .86}, ("E", "d"): {0: .85, 1: .85, 2: .85}}), rows=rows)
    assert t.cell("D", "d").best and t.cell("E", "d").best
    assert not t.cell("B", "d").tied and t.cell("B", "d").test.p == 0.0


def test_build_table_holm_family_spans_columns():
    cells = {("A", "x"): {0: 0.9, 1: 0.92, 2: 0.94}, ("B", "x"): {0: 0.85, 1: 0.88, 2: 0.9},
             ("A", "y"): {0: 0.9, 1: 0.92, 2: 0.94}, ("B", "y"): {0: 0.85, 1: 0.88, 2: 0.9}}
    t = T.build_table(frame(cells), rows=["A", "B"])
    raw = t.cell("B", "x").test.p
    assert t.n_comparisons == 2
    assert t.cell("B", "x").p_holm == pytest.approx(min(1.0, 2 * raw))


def test_build_table_single_seed_is_not_tested():
    t = T.build_table(frame({("A", "d"): {0: 0.9, 1: 0.91}, ("B", "d"): {0: 0.85}}), rows=["A", "B"],
                      seeds=[0, 1, 2])   # no complete cell: every cell competes
    b = t.cell("B", "d")
    assert (b.tied, b.p_holm, b.summary.std) == (False, None, None)
    assert "no test" in b.test.note


def test_build_table_delta_vs_baseline_with_ci():
    t = T.build_table(frame({("A", "d"): {0: 0.80, 1: 0.81, 2: 0.82}, ("B", "d"): {0: 0.84, 1: 0.85, 2: 0.855}}),
                      rows=["A", "B"], baseline="A")
    d = t.deltas[("B", "d")]
    assert d.delta == pytest.approx((0.04 + 0.04 + 0.035) / 3)
    assert d.low < d.delta < d.high
    assert ("A", "d") not in t.deltas


def test_build_table_best_test_metric_is_labelled_as_such():
    t = T.build_table(frame({("A", "d"): {0: 0.8}}), metric="best_test_acc")
    assert "best test-epoch" in t.metric_label and "as commonly reported" in t.metric_label
    assert "selected on the validation split" in T.build_table(frame({("A", "d"): {0: 0.8}})).metric_label


def test_build_table_mca_alias_follows_selection_rule():
    t = T.build_table(frame({("A", "d"): {0: 0.8}}), metric="best_test_acc", extra_metrics=["mca"])
    assert t.metrics == ["best_test_acc", "best_test_mca"]


def test_build_table_appends_undeclared_arms():
    t = T.build_table(frame({("A", "d"): {0: 0.8}, ("Z", "d"): {0: 0.7}}), rows=["A"])
    assert t.rows == ["A", "Z"]


def test_build_table_declared_row_without_runs_is_pending_while_running():
    t = T.build_table(frame({("A", "d"): {0: 0.8}}), rows=["A", "B"], in_progress=True)
    assert TF.cell_text(t, t.cell("B", "d")) == "pending"


def test_build_table_unknown_metric_lists_valid():
    with pytest.raises(T.TableError, match="unknown table metric 'acc_top5'; valid: .*sel_test_acc"):
        T.build_table(frame({("A", "d"): {0: 0.8}}), metric="acc_top5")


def test_an_unknown_metric_asked_of_a_sweeps_table_lists_the_acc_and_mca_aliases_where_they_apply():
    with pytest.raises(T.TableError, match=r"unknown table metric 'accuracy'; valid: .*sel_test_acc.*; "
                                           r"or acc \(here sel_test_acc\), mca \(here sel_test_mca\)$"):
        T.resolve_metric("accuracy", primary="sel_test_acc")
    with pytest.raises(T.TableError, match=r"; or acc \(here final_test_acc\)$"):   # no final_test_mca
        T.resolve_metric("accuracy", primary="final_test_acc")


def test_build_table_unknown_baseline_lists_rows():
    with pytest.raises(T.TableError, match="baseline 'X' is not a row; rows: A"):
        T.build_table(frame({("A", "d"): {0: 0.8}}), baseline="X")


def test_build_table_paper_for_unknown_column():
    with pytest.raises(T.TableError, match="paper figure for unknown column"):
        T.build_table(frame({("A", "d"): {0: 0.8}}), paper={"rafdb": 90.91})


def test_build_table_paper_accepts_label_and_values():
    t = T.build_table(frame({("A", "d"): {0: 0.8}}), paper={"label": "TransFER [paper]", "values": {"d": 90.9}})
    assert t.papers == [T.PaperRow("TransFER [paper]", {"d": 90.9})]


# --------------------------------------------------------------------------- cell text and explain

def test_cell_text_formats():
    t = T.build_table(frame({("A", "d"): {0: 0.8, 1: 0.81, 2: 0.82}, ("B", "d"): {0: 0.9, 1: "running", 2: "failed"},
                             ("C", "d"): {0: "running", 1: "running"}, ("D", "d"): {0: "pruned"}}),
                      rows=["A", "B", "C", "D", "E"])
    assert [TF.cell_text(t, t.cell(r, "d")) for r in "ABCDE"] == [
        "81.00 ± 1.00", "90.00 (1/3 done, 1 failed)", "running (0/3 done)", "pruned (0/3 done)", "—"]
    assert TF.cell_text(t, t.cell("A", "d"), decimals=1) == "81.0 ± 1.0"


def test_explain_shows_reproducibility_record(recorded):
    runs = T.load_sweep_runs(SWEEP, tracking_uri=recorded)
    table = T.table_from_runs(runs, **layout())
    text = TF.explain(table, "+ MAD", runs)
    mad = runs.children[(runs.children["arm"] == "+ MAD") & (runs.children["status"] == "completed")]
    for rid in mad["run_id"]:
        assert rid in text
    for fact in ("abc1234", "torch=2.14.1", "fp-raf", "cell-2-0", "model.drop_variant=mad", "Δ vs Baseline",
                 "running", runs.parent.run_id):
        assert fact in text, fact


def test_explain_names_the_config_an_arm_trained_with_not_its_label_param():
    # a cell's run records its arm as a param (for the MLflow UI's charts), which is no config key
    from types import SimpleNamespace

    import pandas as pd

    children = pd.DataFrame({"arm": ["A", "A"], "params.arm": ["A", "A"], "params.model.drop_variant": ["mad", "mad"],
                             "params.seed": ["0", "1"]})
    assert TF._arm_config(SimpleNamespace(children=children), "A") == {"model.drop_variant": "mad"}


def test_explain_unknown_row_lists_rows(recorded):
    table = T.table_from_runs(T.load_sweep_runs(SWEEP, tracking_uri=recorded), **layout())
    with pytest.raises(T.TableError, match=r"unknown row 'x'; rows: Baseline, \+ Local CNNs"):
        TF.explain(table, "x")


def test_explain_takes_a_row_as_the_table_prints_it_and_names_a_misspelled_one(recorded):
    # `--explain "trial 02fdd8ea (mlp_ratio 2, lr 0.000638)"`, the label as a search's table prints it: "unknown row"
    table = T.table_from_runs(T.load_sweep_runs(SWEEP, tracking_uri=recorded), **layout())
    table = dataclasses.replace(table, row_notes={"Baseline": "mlp_ratio 2, lr 0.0006"})
    for printed in ("Baseline (mlp_ratio 2, lr 0.0006)", r"Baseline (mlp\_ratio 2, lr 0.0006)"):   # \_: Markdown's
        assert TF.explain(table, printed).startswith("Row 'Baseline' of sweep")
    with pytest.raises(T.TableError, match=r"unknown row 'Baselin'; rows: Baseline, .*\. Did you mean 'Baseline'\?$"):
        TF.explain(table, "Baselin")


def test_explain_takes_a_row_as_every_format_prints_it(recorded):
    # Markdown, stdout's format, prints `&` as `&amp;` and `~ < >` after a backslash (LaTeX: `\textasciitilde{}`,
    # HTML: `&lt;`): a label or note holding one, copied from the table, was an unknown row
    table = T.table_from_runs(T.load_sweep_runs(SWEEP, tracking_uri=recorded), **layout())
    table = dataclasses.replace(table, row_notes={"Baseline": "MAD & MSAD, p~0.5, <ir50>, 'tuned'"})
    for printed in (r"Baseline (MAD &amp; MSAD, p\~0.5, \<ir50\>, 'tuned')",
                    r"Baseline (MAD \& MSAD, p\textasciitilde{}0.5, \textless{}ir50\textgreater{}, ‘tuned')",
                    "Baseline (MAD &amp; MSAD, p~0.5, &lt;ir50&gt;, &#x27;tuned&#x27;)"):
        assert TF.explain(table, printed).startswith("Row 'Baseline' of sweep"), printed
    text = table.row_text("Baseline")
    for escape in (TF._markdown_escape, TF.latex_escape, TF.html.escape):
        assert TF.explain(table, escape(text)).startswith("Row 'Baseline' of sweep"), escape
    # a label as typed comes first: `a\_b` is the row so labelled, not a_b as Markdown prints it
    both = T.build_table(frame({("a_b", "d"): {0: 0.8}, ("a\\_b", "d"): {0: 0.7}, ("A & B", "d"): {0: 0.6}}),
                         metric="sel_test_acc")
    assert TF.explain(both, "a\\_b").startswith("Row 'a\\\\_b'")
    assert TF.explain(both, "a_b").startswith("Row 'a_b'")
    assert TF.explain(both, "A &amp; B").startswith("Row 'A & B'")


def test_build_table_of_a_search_marks_the_trial_chosen_on_validation_best_under_every_metric():
    # a search's rows are its trials: bolding the highest test accuracy would choose a trial on the test set
    children = frame({("trial a", "d"): {0: 0.80}, ("trial b", "d"): {0: 0.90}, ("trial c", "d"): {0: 0.80}})
    children.loc[children["arm"] == "trial a", "best_val_acc"] = 0.95   # a: the best on validation, b: on test
    t = T.build_table(children, metric="best_val_acc", extra_metrics=["sel_test_acc"], select_on="best_val_acc")
    for m in ("best_val_acc", "sel_test_acc"):
        assert [t.cell(r, "d", m).best for r in ("trial a", "trial b", "trial c")] == [True, False, False], m
    # trial c's test accuracy prints as trial a's: not bold for it, it was not chosen
    assert TF.printed_best(t, 2) == {("trial a", "d", "best_val_acc"), ("trial a", "d", "sel_test_acc")}
    assert "Bold: the trial chosen on validation (best validation accuracy), in every column; the test set " \
           "chooses no trial." in TF.caption_text(t, T.CaptionFacts())


def test_build_table_of_a_search_whose_trials_tie_on_validation_bolds_both_and_says_they_tie():
    # validation cannot choose between two trials with the same best_val_acc (a few hundred validation images
    # make such ties common): both are bold, and the caption names them rather than "the trial chosen"
    children = frame({("trial a", "d"): {0: 0.80}, ("trial b", "d"): {0: 0.90}, ("trial c", "d"): {0: 0.85}})
    children.loc[children["arm"].isin(["trial a", "trial c"]), "best_val_acc"] = 0.95
    t = T.build_table(children, metric="best_val_acc", extra_metrics=["sel_test_acc"], select_on="best_val_acc")
    assert {r for (r, _, _) in TF.printed_best(t, 2)} == {"trial a", "trial c"}
    caption = TF.caption_text(t, T.CaptionFacts())
    assert "the trial chosen" not in caption
    assert "Bold: the 2 trials tied on validation (best validation accuracy): trial a and trial c, in every " \
           "column; validation does not choose between them, and the test set chooses no trial." in caption


def test_sweep_table_of_a_search_chooses_its_best_trial_on_validation():
    from search_spaces.spec import load_text
    from sweeps.report import sweep_table

    spec = load_text("name: s\nkind: search\nsearch:\n  space:\n    model.depth: [1, 2]\n")
    children = frame({("trial a", "d"): {0: 0.80}, ("trial b", "d"): {0: 0.90}})
    children.loc[children["arm"] == "trial a", "best_val_acc"] = 0.95
    parent = T.ParentRun("p", "s", S.STATUS_COMPLETED, 0, {S.TAG_DATA: "d", S.TAG_SEEDS: "[0]"})
    t = sweep_table(T.SweepRuns("s", "sqlite://", "0", parent, children), spec)
    assert t.metrics == ["best_val_acc", "sel_test_acc"] and t.select_on == "best_val_acc"
    assert t.cell("trial a", "d", "sel_test_acc").best and not t.cell("trial b", "d", "sel_test_acc").best


class HistoryClient:
    """A client serving each run's per-epoch history of one metric: run_id -> values by epoch."""

    def __init__(self, metric: str, values: dict):
        self.metric, self.values = metric, values

    def get_metric_history(self, run_id, key):
        from mlflow.entities import Metric

        assert key == self.metric, f"only {self.metric}'s history is read, not {key}'s"
        return [Metric(key, v, 1000 + step, step) for step, v in enumerate(self.values.get(run_id, []), start=1)]


@pytest.mark.parametrize("metric, chosen, caption", [
    ("val_loss", "trial b", "chosen on validation (lowest validation loss)"),
    ("val_mca", "trial a", "chosen on validation (best validation mean class accuracy)"),
    ("val_acc", "trial c", "chosen on validation (best validation accuracy)")])
def test_a_search_table_ranks_and_bolds_its_trials_by_the_best_epoch_of_the_metric_it_optimised(
        metric, chosen, caption):
    # a search that minimised val_loss was ranked, and its best trial chosen, by best_val_acc
    from search_spaces.spec import load_text
    from sweeps.report import sweep_table
    from sweeps.table_formats import caption_text

    spec = load_text(f"name: s\nkind: search\nmetric: {metric}\nsearch:\n  space:\n    model.depth: [1, 2]\n")
    children = frame({("trial a", "d"): {0: 0.80}, ("trial b", "d"): {0: 0.70}, ("trial c", "d"): {0: 0.90},
                      ("trial d", "d"): {0: "pruned"}})
    per_epoch = {"val_loss": {"r-trial a-d-0": [1.2, 0.9, 1.0], "r-trial b-d-0": [1.1, 0.6, 0.8],
                              "r-trial c-d-0": [1.0, 0.7], "r-trial d-d-0": [0.1]},   # pruned: never chosen
                 "val_mca": {"r-trial a-d-0": [0.5, 0.75, 0.7], "r-trial b-d-0": [0.6, 0.7],
                             "r-trial c-d-0": [0.72, float("nan")]}}.get(metric, {})
    parent = T.ParentRun("p", "s", S.STATUS_COMPLETED, 0, {S.TAG_DATA: "d", S.TAG_SEEDS: "[0]"})
    runs = T.SweepRuns("s", "sqlite://", "0", parent, children, client=HistoryClient(metric, per_epoch))
    t = sweep_table(runs, spec)
    ranked = {"val_loss": ["trial b", "trial c", "trial a"], "val_mca": ["trial a", "trial c", "trial b"],
              "val_acc": ["trial c", "trial a", "trial b"]}[metric]
    assert t.rows == ranked + ["trial d"]
    assert [r for r in t.rows if t.cell(r, "d", "sel_test_acc").best] == [chosen]
    assert caption in caption_text(t, T.CaptionFacts())
    # the table's columns are the best epoch of what the search optimised (its ranking) and the test accuracy
    assert t.metrics == {"val_loss": ["sel_test_acc", "best_val_loss"], "val_mca": ["best_val_mca", "sel_test_acc"],
                         "val_acc": ["best_val_acc", "sel_test_acc"]}[metric]
    # a column shows the value each trial is ranked by: its row needs no note of it (a spec whose table.metrics
    # leave it out gets one: test_a_search_table_lists_its_trials_best_on_validation_first_...)
    assert t.row_text(chosen) == chosen
    assert t.row_text("trial d") == "trial d", "pruned: not ranked, no value"


def test_a_search_on_a_loss_shows_that_loss_in_its_table_by_default_lowest_bold():
    # a search that minimised val_loss got the columns of an accuracy search (Val. acc., Acc.): the loss it was
    # ranked by only in the row notes, and its bold trial the one with the LOWER validation accuracy
    from search_spaces.spec import load_text
    from sweeps.report import sweep_table

    loss = load_text("name: s\nkind: search\nmetric: val_loss\nsearch:\n  space:\n    model.depth: [1, 2]\n")
    assert loss.table.metrics == ("sel_test_acc", "best_val_loss"), "a loss after an accuracy, as `sweeps best` writes"
    train = load_text("name: s\nkind: search\nmetric: train_loss\nsearch:\n  space:\n    model.depth: [1, 2]\n")
    assert train.table.metrics == ("sel_test_acc", "best_train_loss")
    accuracy = load_text("name: s\nkind: search\nsearch:\n  space:\n    model.depth: [1, 2]\n")
    assert accuracy.table.metrics == ("best_val_acc", "sel_test_acc"), "an accuracy search's columns as before"
    given = load_text("name: s\nkind: search\nmetric: val_loss\nsearch:\n  space:\n    model.depth: [1, 2]\n"
                      "table: {metrics: [best_val_acc]}\n")
    assert given.table.metrics == ("best_val_acc",), "table.metrics, where given, decide"
    children = frame({("trial a", "d"): {0: 0.80}, ("trial b", "d"): {0: 0.70}, ("trial c", "d"): {0: 0.75}})
    per_epoch = {"r-trial a-d-0": [1.2, 0.9], "r-trial b-d-0": [1.1, 0.6], "r-trial c-d-0": [0.6, 0.7]}
    parent = T.ParentRun("p", "s", S.STATUS_COMPLETED, 0, {S.TAG_DATA: "d", S.TAG_SEEDS: "[0]"})
    runs = T.SweepRuns("s", "sqlite://", "0", parent, children, client=HistoryClient("val_loss", per_epoch))
    t = sweep_table(runs, loss)
    assert (t.select_on, t.rows) == ("best_val_loss", ["trial b", "trial c", "trial a"])
    markdown = TF.render(t, "markdown")
    assert "| Arm | d: Acc. | d: Val. loss |" in markdown
    # lowest bold, and trials tied on it bold together
    assert "| trial b | **70.00** | **0.6000** |" in markdown
    assert "| trial c | **75.00** | **0.6000** |" in markdown
    assert "| trial a | 80.00 | 0.9000 |" in markdown
    # --metric still picks the first column; the search's loss stays beside it
    assert sweep_table(runs, loss, "best_val_acc").metrics == ["best_val_acc", "sel_test_acc", "best_val_loss"]


def test_acc_and_mca_name_the_counterpart_of_a_searchs_own_first_column():
    # `sweeps table --metric acc` of a train_acc search named best_val_acc while its first column was that; with
    # its own, best_train_acc, first it was "no counterpart"
    assert T.resolve_metric("acc", "best_train_acc") == "best_train_acc"
    assert (T.resolve_metric("acc", "best_val_mca"), T.resolve_metric("mca", "best_val_mca")) == (
        "best_val_acc", "best_val_mca")
    assert T.resolve_metric("mca", "sel_test_acc") == "sel_test_mca"
    with pytest.raises(T.TableError, match=r"metric 'mca' has no counterpart for 'best_train_acc'"):
        T.resolve_metric("mca", "best_train_acc")


def test_a_table_shows_each_cells_lowest_validation_loss_beside_an_accuracy_and_bolds_the_lowest():
    # `sweeps best` of a search that minimised val_loss: its table showed best_val_acc, not what chose the trials
    children = frame({("A", "d"): {0: 0.80, 1: 0.82}, ("B", "d"): {0: 0.85, 1: 0.83}})
    per_epoch = {"r-A-d-0": [1.0, 0.5, 0.7], "r-A-d-1": [0.9, 0.6], "r-B-d-0": [0.8, float("nan")],
                 "r-B-d-1": [0.9, float("inf"), 0.7]}   # a diverged epoch's loss is no lowest one
    parent = T.ParentRun("p", "s", S.STATUS_COMPLETED, 0, {S.TAG_DATA: "d", S.TAG_SEEDS: "[0, 1]"})
    runs = T.SweepRuns("s", "sqlite://", "0", parent, children, client=HistoryClient("val_loss", per_epoch))
    t = T.table_from_runs(runs, metric="sel_test_acc", extra_metrics=["best_val_loss"])
    assert t.cell("A", "d", "best_val_loss").values == {0: 0.5, 1: 0.6}
    assert TF.cell_text(t, t.cell("A", "d", "best_val_loss")) == "0.5500 ± 0.0707", "a loss, not a percentage"
    assert TF.cell_text(t, t.cell("B", "d", "best_val_loss")) == "0.7500 ± 0.0707"
    assert ("A", "d", "best_val_loss") in TF.printed_best(t, 2) and ("B", "d", "sel_test_acc") in TF.printed_best(t, 2)
    assert "Val. loss: lowest validation loss (a loss, not a percentage)" in TF.caption_text(t, T.CaptionFacts())
    assert "| **0.5500 ± 0.0707** |" in TF.render(t, "markdown")
    # a loss in fields of its own, not in the *_pct ones (a percentage): test_a_loss_is_recorded_in_..._fields
    record, = [r for r in TF.cell_records(t, provenance=True) if (r["row"], r["metric"]) == ("A", "best_val_loss")]
    assert record["mean_loss"] == pytest.approx(0.55) and record["values_loss"] == [0.5, 0.6]
    assert "seed 1: 0.6000  run r-A-d-1" in TF.explain(t, "A")
    with pytest.raises(T.TableError, match=r"best_val_loss is a loss: a table's first metric is an accuracy"):
        T.table_from_runs(runs, metric="best_val_loss")


def test_a_loss_is_recorded_in_csv_and_parquet_fields_of_its_own_and_an_accuracy_in_its_pct_ones(tmp_path):
    # a loss was written in mean_pct, std_pct and values_pct: a script reading them as percentages read a
    # validation loss of 0.55 as 0.55 % accuracy
    import csv as csv_module

    children = frame({("A", "d"): {0: 0.80, 1: 0.82}, ("B", "d"): {0: 0.85, 1: 0.83}})
    per_epoch = {"r-A-d-0": [1.0, 0.5], "r-A-d-1": [0.9, 0.6], "r-B-d-0": [0.8], "r-B-d-1": [0.7]}
    parent = T.ParentRun("p", "s", S.STATUS_COMPLETED, 0, {S.TAG_DATA: "d", S.TAG_SEEDS: "[0, 1]"})
    runs = T.SweepRuns("s", "sqlite://", "0", parent, children, client=HistoryClient("val_loss", per_epoch))
    t = T.table_from_runs(runs, metric="sel_test_acc", extra_metrics=["best_val_loss"])
    rows = {(r["row"], r["metric"]): r for r in csv_module.DictReader(io.StringIO(TF.render(t, "csv")))}
    loss, acc = rows[("A", "best_val_loss")], rows[("A", "sel_test_acc")]
    assert (loss["mean_loss"], loss["std_loss"], loss["mean_pct"], loss["std_pct"]) == ("0.55", "0.0707107", "", "")
    assert (acc["mean_pct"], acc["std_pct"], acc["mean_loss"], acc["std_loss"]) == ("81", "1.41421", "", "")
    path = tmp_path / "t.parquet"
    path.write_bytes(TF.render(t, "parquet"))
    records = pd.read_parquet(path).set_index(["row", "metric"])
    loss, acc = records.loc[("A", "best_val_loss")], records.loc[("A", "sel_test_acc")]
    assert list(loss["values_loss"]) == [0.5, 0.6] and loss["values_pct"] is None and pd.isna(loss["mean_pct"])
    assert list(acc["values_pct"]) == [80.0, 82.0] and acc["values_loss"] is None and pd.isna(acc["mean_loss"])
    assert loss["mean_loss"] == pytest.approx(0.55) and acc["mean_pct"] == pytest.approx(81.0)


def loss_search_runs(per_epoch=None, metric="val_loss"):
    """A search that minimised `metric` (three trials and a pruned one) with its runs' per-epoch history of it."""
    children = frame({("trial a", "d"): {0: 0.80}, ("trial b", "d"): {0: 0.70}, ("trial c", "d"): {0: 0.75},
                      ("trial d", "d"): {0: "pruned"}})
    per_epoch = {"r-trial a-d-0": [1.2, 0.9], "r-trial b-d-0": [1.1, 0.6], "r-trial c-d-0": [0.7, 0.8],
                 "r-trial d-d-0": [1.5]} if per_epoch is None else per_epoch
    parent = T.ParentRun("p", "s", S.STATUS_COMPLETED, 0, {S.TAG_DATA: "d", S.TAG_SEEDS: "[0]"})
    return T.SweepRuns("s", "sqlite://", "0", parent, children, client=HistoryClient(metric, per_epoch))


def test_a_search_on_a_loss_tabled_first_by_that_loss_bolds_the_lowest_in_every_format(tmp_path):
    # `sweeps table SEARCH --metric best_val_loss` of a search that minimised val_loss was refused: "best_val_loss
    # is a loss: a table's first metric is an accuracy", though a search's table has no Δ and no paper figures
    import csv as csv_module

    from search_spaces.spec import load_text
    from sweeps.report import sweep_table

    spec = load_text("name: s\nkind: search\nmetric: val_loss\nsearch:\n  space:\n    model.depth: [1, 2]\n")
    t = sweep_table(loss_search_runs(), spec, "best_val_loss")
    assert (t.metrics, t.rows) == (["best_val_loss", "sel_test_acc"], ["trial b", "trial c", "trial a", "trial d"])
    assert [r for r in t.rows if t.cell(r, "d").best] == ["trial b"], "the lowest loss, the trial chosen"
    markdown = TF.render(t, "markdown")
    assert "| Arm | d: Val. loss | d: Acc. |" in markdown
    assert "| trial b | **0.6000** | **70.00** |" in markdown
    assert "| trial a | 0.9000 | 80.00 |" in markdown
    caption = TF.caption_text(t, T.CaptionFacts())
    assert "Metric: lowest validation loss (a loss, not a percentage)." in caption and "Metric (%)" not in caption
    assert "Also: Acc.: test accuracy at the epoch selected on the validation split." in caption
    assert r"trial b & \textbf{0.6000} & \textbf{70.00} \\" in TF.render(t, "latex")
    assert "<td><b>0.6000</b></td>" in TF.render(t, "html")
    rows = {(r["row"], r["metric"]): r for r in csv_module.DictReader(io.StringIO(TF.render(t, "csv")))}
    b = rows[("trial b", "best_val_loss")]
    assert (b["mean_loss"], b["mean_pct"], b["bold"], b["delta_pct"]) == ("0.6", "", "True", "")
    path = tmp_path / "t.parquet"
    path.write_bytes(TF.render(t, "parquet"))
    record = pd.read_parquet(path).set_index(["row", "metric"]).loc[("trial b", "best_val_loss")]
    assert (record["mean_loss"], record["bold"], list(record["values_loss"])) == (pytest.approx(0.6), True, [0.6])
    assert pd.isna(record["mean_pct"]) and "Metric: lowest validation loss" in record["caption"]


def test_a_loss_first_is_refused_where_the_table_gives_it_a_delta_or_bars_naming_the_metrics_that_may_be_first():
    # a table of arms: its first metric's bars, Δ in percentage points and the paper's figures are of an accuracy
    runs = loss_search_runs()
    with pytest.raises(T.TableError, match=r"best_val_loss is a loss: a table's first metric is an accuracy.*give a "
                                           r"first metric of best_val_acc, sel_test_acc, sel_test_mca, best_test_acc, "
                                           r"best_test_mca, final_test_acc, best_val_mca, best_train_acc"):
        T.table_from_runs(runs, metric="best_val_loss")
    # a search given a baseline (no spec can give one: build_table's own callers) would take Δ of a loss in pp
    with pytest.raises(T.TableError, match=r"best_val_loss is a loss, and this search's table has a Δ against the "
                                           r"baseline in percentage points under its first metric: give a first metric"):
        T.table_from_runs(runs, metric="best_val_loss", select_on="best_val_loss", select_mode="min",
                          baseline="trial a")


def test_a_search_on_a_loss_whose_every_trial_failed_before_its_first_epoch_is_tabled_not_a_traceback():
    # `sweeps table` (and the report at the end of `sweeps run`) of a val_loss search whose trials all failed
    # before logging a val_loss ended in "KeyError: 'run_id'": the empty list that filtered out diverged epochs
    # selected no columns of the empty history
    from search_spaces.spec import load_text
    from sweeps.report import sweep_table

    spec = load_text("name: s\nkind: search\nmetric: val_loss\nsearch:\n  space:\n    model.depth: [1, 2]\n")
    runs = loss_search_runs(per_epoch={})
    runs = dataclasses.replace(runs, children=runs.children.assign(status="failed"))
    t = sweep_table(runs, spec)
    assert [TF.cell_text(t, t.cell(r, "d", "best_val_loss")) for r in t.rows] == ["failed"] * 4
    assert "No trial has a value: nothing is bold or tested." in TF.caption_text(t, T.CaptionFacts())


def test_a_search_table_lists_its_trials_best_on_validation_first_each_with_the_values_it_tried():
    # "trial 1a2b3c4d" alone tells a reader nothing; pruned trials come after the completed ones
    from search_spaces.spec import load_text
    from sweeps.report import sweep_table
    from sweeps.table_formats import cell_records, render

    spec = load_text("name: s\nkind: search\nsearch:\n  space:\n    model.depth: [1, 2]\n"
                     "    optim.lr: {type: float, low: 1.0e-5, high: 1.0e-2, log: true}\n")
    children = frame({("trial a", "d"): {0: "pruned"}, ("trial b", "d"): {0: 0.80}, ("trial c", "d"): {0: 0.90}})
    children["params.model.depth"] = ["1", "2", "1"]
    children["params.optim.lr"] = ["0.00031622776601683794", "0.001", "2e-05"]
    parent = T.ParentRun("p", "s", S.STATUS_COMPLETED, 0, {S.TAG_DATA: "d", S.TAG_SEEDS: "[0]"})
    t = sweep_table(T.SweepRuns("s", "sqlite://", "0", parent, children), spec)
    assert t.rows == ["trial c", "trial b", "trial a"]
    assert t.row_text("trial a") == "trial a (depth 1, lr 0.000316)"
    assert "| trial c (depth 1, lr 2e-05) | **" in render(t, "markdown")
    assert {r["row"]: r["row_note"] for r in cell_records(t)}["trial b"] == "depth 2, lr 0.001"
    # a search on validation loss: its ranking value follows the values tried
    loss = dataclasses.replace(spec, metric="val_loss", mode="min")
    children["best_val_loss"] = [float("nan"), 0.8, 0.5]
    t = sweep_table(T.SweepRuns("s", "sqlite://", "0", parent, children), loss)
    assert t.row_text("trial b") == "trial b (depth 2, lr 0.001; val. loss 0.8000)"


def test_a_one_seed_table_prints_no_n_in_its_cells_as_its_caption_says_one_seed_but_where_n_varies_it_does(tmp_path):
    # every cell of a search's table (`sweeps table tune`) said "80.00 (n=1)" beside a caption saying "one seed
    # per cell": the printed formats now leave the n out where every cell has its one seed; the records (CSV,
    # Parquet) keep their n and n_expected columns, numbers a script reads, not notes a reader repeats
    import csv as csv_module

    one = T.build_table(frame({("A", "d"): {0: 0.80}, ("B", "d"): {0: 0.90}}), rows=["A", "B"])
    assert "one seed per cell" in TF.caption_text(one, T.CaptionFacts())
    assert "| A | 80.00 |" in TF.render(one, "markdown") and "| B | **90.00** |" in TF.render(one, "markdown")
    assert r"A & 80.00 \\" in TF.render(one, "latex")
    assert "<td>80.00</td>" in TF.render(one, "html")
    for fmt in ("markdown", "latex", "html"):
        assert "n=1" not in TF.render(one, fmt), fmt
    rows = {r["row"]: r for r in csv_module.DictReader(io.StringIO(TF.render(one, "csv")))}
    assert (rows["A"]["n"], rows["A"]["n_expected"]) == ("1", "1")
    path = tmp_path / "t.parquet"
    path.write_bytes(TF.render(one, "parquet"))
    assert pd.read_parquet(path).set_index("row").loc["A", "n"] == 1
    # where n varies it is said: a two-seed table's cell of one seed, the other diverged
    children = frame({("A", "d"): {0: 0.80, 1: 0.82}, ("B", "d"): {0: 0.90, 1: 0.10}})
    children["diverged_epoch"] = [None, None, None, 3]
    children.loc[3, "sel_test_acc"] = float("nan")
    two = T.build_table(children, rows=["A", "B"])
    assert "| B | 90.00 (n=1, 1 diverged) |" in TF.render(two, "markdown")
    assert TF.cell_text(two, two.cell("A", "d")) == "81.00 ± 1.41"


def test_a_one_seed_tables_deltas_print_no_n_and_its_caption_says_they_are_single_runs_with_no_interval():
    # its cells lost their "(n=1)" to the caption's "one seed per cell", its Δ cells still read "+10.00 (n=1)",
    # the n saying why no interval follows, under a caption promising a mean over matched seeds [95 % t interval]
    one = T.build_table(frame({("A", "d"): {0: 0.80}, ("B", "d"): {0: 0.90}}), rows=["A", "B"], baseline="A")
    assert TF.delta_text(one, "B", "d") == "+10.00"
    caption = TF.caption_text(one, T.CaptionFacts())
    assert ("Δ: difference to A in percentage points of single runs (one seed per cell), with no interval."
            in caption)
    assert "confidence interval" not in caption and "mean over matched seeds" not in caption
    assert "| B | **90.00** | +10.00 |" in TF.render(one, "markdown")
    assert r"B & \textbf{90.00} & +10.00 \\" in TF.render(one, "latex")
    assert "<td>+10.00</td>" in TF.render(one, "html")
    assert "single runs (one seed per cell), with no interval" in TF.render(one, "html")
    for fmt in ("markdown", "latex", "html"):
        assert "n=1" not in TF.render(one, fmt), fmt
    import csv as csv_module

    rows = {r["row"]: r for r in csv_module.DictReader(io.StringIO(TF.render(one, "csv")))}
    assert rows["B"]["delta_n"] == "1", "the records keep their n: a number a script reads"
    # a table of more seeds whose Δ has one matched seed still says so: its caption promises an interval
    two = T.build_table(frame({("A", "d"): {0: 0.80, 1: "running"}, ("B", "d"): {0: 0.90, 1: 0.92}}),
                        rows=["A", "B"], seeds=[0, 1], baseline="A")
    assert TF.delta_text(two, "B", "d") == "+10.00 (n=1)"
    assert "mean over matched seeds [95 % t confidence interval]" in TF.caption_text(two, T.CaptionFacts())


def test_explain_takes_a_latex_row_label_printed_after_an_empty_group():
    # LaTeX prints a label starting [ or * after {} ("{}[B=2] MAD": else an optional argument of \\); copied from
    # the .tex, `--explain "{}[B=2] MAD"` was an unknown row
    t = T.build_table(frame({("[B=2] MAD", "d"): {0: 0.8}, ("*MAD", "d"): {0: 0.7}, ("x_y", "d"): {0: 0.6}}),
                      metric="sel_test_acc", rows=["[B=2] MAD", "*MAD", "x_y"])
    tex = TF.render(t, "latex")
    assert r"{}[B=2] MAD & " in tex and r"{}*MAD & " in tex
    assert TF.explain(t, "{}[B=2] MAD").startswith("Row '[B=2] MAD'")
    assert TF.explain(t, "{}*MAD").startswith("Row '*MAD'")
    assert TF.explain(t, "[B=2] MAD").startswith("Row '[B=2] MAD'"), "as typed, still"
    with pytest.raises(T.TableError, match="unknown row '{}x_y'"):
        TF.explain(t, "{}x_y")   # no label starting [ or * is printed so
