"""Paper tables from the recorded MLflow runs of a sweep: runs -> DataFrame -> ResultTable -> text.

    runs  = load_sweep_runs("components")                      # latest invocation (or parent_run_id=)
    table = table_from_runs(runs, rows=[...], baseline="Baseline", extra_metrics=["mca"])
    tex   = render(table, "latex", caption_facts=CaptionFacts.from_runs(runs, title=..., caption=...))

Layout is passed in as plain arguments (row order = the spec's arm labels, columns = data names),
so this module does not depend on `search_spaces`. Each cell is mean ± std (ddof=1) over the
completed seeds of one arm on one data set, with n; the best mean of each column's complete cells (of
all its cells while none is complete) is bold, equal means all; cells not
significantly different from it (paired t-test over matched seeds, Holm-corrected across the whole
table) carry a dagger; Δ vs the baseline row comes with a paired 95 % CI. Unfinished cells say so
("2/3 done", "running", "pending"), so a table can be rendered while the sweep still runs.

Model selection is explicit (DESIGN.md, "Honest evaluation"): the default metric `sel_test_acc` is
test accuracy at the epoch chosen on the validation split; `best_test_acc` (the best test epoch, as
much of the literature reports) is available and labelled as such. The names of tags, metrics and
artifacts come from `sweeps.schema`.

This module holds the data model and the numbers; the text (cell and caption text, the LaTeX,
Markdown, CSV, HTML and Parquet formats, `write_tables`, `explain`) is in `sweeps.table_formats`.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from search_spaces.spec import metric_mode
from sweeps import schema as S
from sweeps import stats
from sweeps.envvars import temporarily_set
from sweeps.tracking import client_for, json_tag, latest_per_step, parent_status, ran_last_first, search_all

log = logging.getLogger(__name__)


class TableError(Exception):
    """A sweep, invocation, row, column or metric that does not exist; the message lists valid ones."""


# --------------------------------------------------------------------------- metrics and labels

# metric -> (column header, what it is: the model-selection rule stated plainly)
METRIC_LABELS: dict[str, tuple[str, str]] = {
    "sel_test_acc": ("Acc.", "test accuracy at the epoch selected on the validation split"),
    "sel_test_mca": ("MCA", "test mean class accuracy at the epoch selected on the validation split"),
    "best_test_acc": ("Acc. (best test ep.)",
                      "best test-epoch accuracy, as commonly reported (epoch chosen on the test set)"),
    "best_test_mca": ("MCA (best test ep.)",
                      "best test-epoch mean class accuracy, as commonly reported (epoch chosen on the test set)"),
    "final_test_acc": ("Acc. (last ep.)", "test accuracy at the last epoch"),
    "best_val_acc": ("Val. acc.", "best validation accuracy"),
    # the best epoch of a per-epoch metric a search may optimise, read from each run's history (`ranked_children`)
    "best_val_mca": ("Val. MCA", "best validation mean class accuracy"),
    "best_val_loss": ("Val. loss", "lowest validation loss (a loss, not a percentage)"),
    "best_train_acc": ("Train acc.", "best training accuracy"),
    "best_train_loss": ("Train loss", "lowest training loss (a loss, not a percentage)"),
}
TABLE_METRICS = tuple(m for m in S.SUMMARY_METRICS if m in METRIC_LABELS)
# table metrics no run records as a summary: each run's best epoch of a per-epoch metric (`epoch_best_metric`), as
# a search optimising it ranks its trials; shown after a table's first metric (a loss is no percentage to draw
# bars of, or to give Δ and the paper's figures in)
EPOCH_BEST_METRICS = ("best_val_mca", "best_val_loss", "best_train_acc", "best_train_loss")


def is_fraction(metric: str) -> bool:
    """An accuracy, shown in percent; else a loss, shown as it is."""
    return metric.endswith(("_acc", "_mca"))


def epoch_best_metric(metric: str) -> str | None:
    """The per-epoch metric whose best epoch table metric `metric` is (val_loss for best_val_loss), None for a
    summary the runs record."""
    return metric[len("best_"):] if metric in EPOCH_BEST_METRICS else None
DATA_LABELS = {"synthetic": "Synthetic", "rafdb": "RAF-DB", "ferplus": "FERPlus", "affectnet": "AffectNet",
               "fer2013": "FER2013", "imagefolder": "Image folder"}
_RUNNING = (S.STATUS_RUNNING, S.STATUS_INTERRUPTED)
_PROGRESS_ENV = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"


def resolve_metric(name: str, primary: str | None = None) -> str:
    """A table metric by name; "acc"/"mca" mean the one with the primary metric's selection rule."""
    def counterpart(alias: str) -> str:   # "mca" of sel_test_acc: sel_test_mca
        return f"{primary.rsplit('_', 1)[0]}_{alias}"

    shown = TABLE_METRICS + EPOCH_BEST_METRICS   # a search's first column may be best_train_acc, best_val_mca
    if name in ("acc", "mca") and primary is not None:
        if counterpart(name) in shown:
            return counterpart(name)
        raise TableError(f"metric {name!r} has no counterpart for {primary!r}; valid: {', '.join(TABLE_METRICS)}")
    if name not in shown:
        usable = [a for a in ("acc", "mca") if primary is not None and counterpart(a) in shown]
        aliases = f"; or {', '.join(f'{a} (here {counterpart(a)})' for a in usable)}" if usable else ""
        raise TableError(f"unknown table metric {name!r}; valid: {', '.join(TABLE_METRICS + EPOCH_BEST_METRICS)}"
                         f"{aliases}")
    return name


def metric_description(metric: str) -> str:
    return METRIC_LABELS[resolve_metric(metric)][1]


@dataclass(frozen=True)
class SearchRanking:
    """How a search's trials are ranked, in its table and by `sweeps best`: by the best epoch of the metric the
    search optimised (val_acc: best_val_acc, which chooses the epoch sel_test_acc is read at). A metric not
    recorded per run as a summary is taken from each run's history (`ranked_children`)."""

    column: str          # a children-frame column: best_val_acc, or best_<metric>
    description: str     # for captions and messages
    short: str = ""      # after a trial's values in its row, where no column shows the ranking's value

    @property
    def metric(self) -> str:
        """The per-epoch metric whose best epoch it is (val_acc for best_val_acc)."""
        return self.column[len("best_"):]

    @property
    def mode(self) -> str:
        """max | min: as the metric improves (a loss down)."""
        return metric_mode(self.metric)

    @property
    def on(self) -> str:
        """The split it is measured on, as captions say it."""
        return "validation" if self.metric.startswith("val_") else "the training split"


_SEARCH_RANKINGS = {   # a search metric -> its ranking (S.EPOCH_METRICS and SUMMARY_METRICS a search may use)
    "val_acc": SearchRanking("best_val_acc", "best validation accuracy", "val. acc."),
    "val_mca": SearchRanking("best_val_mca", "best validation mean class accuracy", "val. MCA"),
    "val_loss": SearchRanking("best_val_loss", "lowest validation loss", "val. loss"),
    "train_acc": SearchRanking("best_train_acc", "best training accuracy", "train acc."),
    "train_loss": SearchRanking("best_train_loss", "lowest training loss", "train loss"),
}
_SEARCH_RANKINGS["best_val_acc"] = _SEARCH_RANKINGS["val_acc"]


def search_ranking(metric: str) -> SearchRanking:
    """The ranking of a search that optimised `metric`; best validation accuracy for one that cannot rank
    (a timing or an epoch count, which a spec recorded by an earlier version may name)."""
    return _SEARCH_RANKINGS.get(metric, _SEARCH_RANKINGS["val_acc"])


def ranking_by_column(column: str) -> SearchRanking | None:
    """The ranking whose column `column` is (a table's select_on), None for another."""
    return next((r for r in _SEARCH_RANKINGS.values() if r.column == column), None)


def ranked_children(runs: SweepRuns, ranking: SearchRanking) -> pd.DataFrame:
    """The children frame with the ranking's column: the best epoch of its metric in each run's history where
    runs record it only per epoch (NaN for a run without one)."""
    children = runs.children
    if ranking.column in children.columns:
        return children
    children = children.copy()
    if children.empty or runs.client is None:
        children[ranking.column] = math.nan
        return children
    history = runs.history(ranking.metric)
    # a diverged epoch's: none. A Series as the mask: an empty list (no run logged the metric) selects no columns
    history = history[history["value"].astype(float).map(math.isfinite).astype(bool)]
    best = history.groupby("run_id")["value"].agg(ranking.mode)
    children[ranking.column] = children["run_id"].map(best).astype(float)
    return children


# --------------------------------------------------------------------------- loading runs

@dataclass(frozen=True)
class ParentRun:
    run_id: str
    run_name: str
    status: str           # the sweeps.status tag (running|completed|interrupted|failed)
    start_time: int       # ms since the epoch
    tags: Mapping[str, str]

    def json_tag(self, key: str, default: Any) -> Any:
        return json_tag(self.tags, key, default)


@dataclass
class SweepRuns:
    """One invocation of a sweep: its parent run and a DataFrame with one row per child (cell) run."""

    sweep: str
    tracking_uri: str
    experiment_id: str
    parent: ParentRun
    children: pd.DataFrame              # the runs of the invocation's seeds (its latest continuation's)
    client: Any = field(repr=False, default=None)
    seeds_left_out: tuple[int, ...] = ()   # seeds of runs recorded under it but not among those: continued
                                           # with fewer --seeds, the table would average seeds it does not name
    _histories: dict[str, pd.DataFrame] = field(repr=False, default_factory=dict)

    def history(self, metric: str) -> pd.DataFrame:
        """Per-epoch values of `metric` for every child: columns run_id, arm, data, seed, status, step, value."""
        if metric not in self._histories:
            frames = []
            for row in self.children.itertuples():
                points = latest_per_step(self.client.get_metric_history(row.run_id, metric))
                frames.append(pd.DataFrame({"run_id": row.run_id, "arm": row.arm, "data": row.data,
                                            "seed": row.seed, "status": row.status,
                                            "step": [step for step, _ in points],
                                            "value": [value for _, value in points]}))
            cols = ["run_id", "arm", "data", "seed", "status", "step", "value"]
            self._histories[metric] = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)
        return self._histories[metric]

    def download(self, run_id: str, path: str, dst: str | Path) -> Path:
        """A child's (or the parent's) artifact, downloaded under `dst` (without a progress bar)."""
        Path(dst).mkdir(parents=True, exist_ok=True)
        with temporarily_set(_PROGRESS_ENV, "false"):   # a library must not draw on the terminal
            return Path(self.client.download_artifacts(run_id, path, str(dst)))


def _child_status(run, parent_status: str) -> str:
    status = run.data.tags.get(S.TAG_STATUS)
    if status is None:  # a child that never set its tag: fall back on MLflow's own status
        status = {"RUNNING": S.STATUS_RUNNING, "SCHEDULED": S.STATUS_RUNNING,
                  "FINISHED": S.STATUS_COMPLETED}.get(run.info.status, S.STATUS_FAILED)
    if status == S.STATUS_RUNNING and run.info.status in ("FAILED", "KILLED"):
        return S.STATUS_INTERRUPTED  # nobody is training it any more
    return S.seen_under(status, parent_status)


def _children_frame(runs: list, parent_status: str) -> pd.DataFrame:
    records = []
    for run in runs:
        tags = run.data.tags
        seed = tags.get(S.TAG_SEED, run.data.params.get("seed"))
        rec = {"run_id": run.info.run_id, "run_name": run.info.run_name,
               "arm": tags.get(S.TAG_ARM, ""), "data": tags.get(S.TAG_DATA, ""),
               "seed": int(seed) if seed not in (None, "") else -1,
               "status": _child_status(run, parent_status), "cell_id": tags.get(S.TAG_CELL_ID, ""),
               "trial_id": tags.get(S.TAG_TRIAL_ID, ""), "data_fingerprint": tags.get(S.TAG_DATA_FINGERPRINT, ""),
               "data_fingerprint_earlier": tags.get(S.TAG_DATA_FINGERPRINT_EARLIER, ""),
               "node_id": tags.get(S.TAG_NODE_ID, ""), "pruned_step": tags.get(S.TAG_PRUNED_STEP, ""),
               "mlflow_status": run.info.status, "start_time": run.info.start_time, "end_time": run.info.end_time}
        for m in S.SUMMARY_METRICS:
            rec[m] = run.data.metrics.get(m, math.nan)
        rec["diverged_epoch"] = _diverged_epoch(run.data.metrics, rec["epochs_done"])
        rec.update({f"params.{k}": v for k, v in run.data.params.items()})
        records.append(rec)
    base = ["run_id", "run_name", "arm", "data", "seed", "status", "cell_id", "trial_id", "data_fingerprint",
            "data_fingerprint_earlier", "node_id", "pruned_step", "mlflow_status", "start_time", "end_time",
            *S.SUMMARY_METRICS, "diverged_epoch"]
    frame = pd.DataFrame.from_records(records, columns=None if records else base)
    return frame.sort_values(["start_time", "run_id"], ignore_index=True) if records else frame


def _diverged_epoch(metrics: Mapping[str, float], epochs_done: float) -> float:
    """The epoch a run's training diverged at, NaN where it did not: as the trainable records it
    (S.DIVERGED_EPOCH_KEY); for a run recorded before it did, its last epoch where that epoch's weights scored
    nothing (final_test_acc recorded NaN, not missing: `engine.History.summary`), after sound epochs or before
    any, or its training loss, the latest logged, was not finite (`S.recorded_finite`: a training that diverged
    with evaluation losses still finite was scored then, and read as one that trained to the end)."""
    recorded = metrics.get(S.DIVERGED_EPOCH_KEY)
    if recorded is not None and math.isfinite(recorded):
        return float(recorded)
    final, train_loss = metrics.get("final_test_acc"), metrics.get("train_loss")
    if (final is not None and math.isnan(final)) or (train_loss is not None and not S.recorded_finite(train_loss)):
        return epochs_done
    return math.nan


def unrecorded_sweep(client, uri: str, sweep: str, as_typed: str | None = None,
                     uri_to_repeat: str | None = None) -> str:
    """The message for a sweep `uri` holds no experiment of: a close recorded name, and every recorded one.
    `as_typed`: the sweep as the user named it, which the command that starts it names (a spec file's path:
    its spec's name is no shipped sweep); `uri_to_repeat`: the --tracking-uri that command repeats
    (`tracking.tracking_uri_to_repeat`), without which it records into ./mlflow.db, not the store read.
    A name that is neither a shipped sweep nor a spec file is said to be none, with the shipped names and the
    closest name of either kind: `sweeps run` of it, which the message for a sweep not run yet names, is refused."""
    import difflib
    import shlex

    from search_spaces.spec import misnamed_spec_file, names_a_file, shipped_names

    names = sorted(e.name for e in client.search_experiments() if e.name != "Default")
    typed = as_typed or sweep
    if not names_a_file(typed) and typed not in shipped_names() and not misnamed_spec_file(typed):
        shipped = shipped_names()
        close = difflib.get_close_matches(typed, list(dict.fromkeys([*names, *shipped])), n=1)
        # "start it with `sweeps run nosuch`", which `sweeps run` refuses as an unknown sweep
        return (f"no sweep {sweep!r} recorded in {uri}, and {typed!r} is no sweep: neither a shipped sweep nor a "
                f"spec file." + (f" Did you mean {close[0]!r}?" if close else "")
                + f" Shipped: {', '.join(shipped)} (or give a spec file's path, *.yaml); recorded: "
                f"{', '.join(names) or 'none'}. A sweep started from a spec file is read by its spec's name in the "
                "store that recorded it: is it another store (--tracking-uri, or MLFLOW_TRACKING_URI)?")
    close = difflib.get_close_matches(sweep, names, n=1)
    start = ["sweeps", "run", as_typed or sweep] + (["--tracking-uri", uri_to_repeat] if uri_to_repeat else [])
    # a spec file named amiss (mine.ymal, or mine for mine.yaml): `sweeps run` of it as typed fails too
    hint = misnamed_spec_file(as_typed or sweep)
    if hint:
        return (f"no sweep {sweep!r} recorded in {uri}" + (f". Did you mean {close[0]!r}?" if close else ".")
                + f" {hint} Recorded: {', '.join(names) or 'none'}")
    return (f"no sweep {sweep!r} recorded in {uri}" + (f". Did you mean {close[0]!r}?" if close else "")
            + f" (start it with `{shlex.join(start)}`); recorded: {', '.join(names) or 'none'}")


def load_sweep_runs(sweep: str, *, tracking_uri: str | None = None, parent_run_id: str | None = None,
                    as_typed: str | None = None, uri_to_repeat: str | None = None) -> SweepRuns:
    """The parent run of the invocation of `sweep` run last (`ran_last_first`; or `parent_run_id`, a unique
    prefix is enough) and its child runs. Raises TableError naming what exists when something does not.
    `as_typed`, `uri_to_repeat`: the sweep as the user named it (a spec file's path) and the --tracking-uri
    to repeat (`tracking.tracking_uri_to_repeat`), for the command such an error names."""
    import mlflow

    uri = tracking_uri or mlflow.get_tracking_uri()
    client = client_for(uri)
    from sweeps.host_locks import runs_starting

    exp = client.get_experiment_by_name(sweep)
    # a run makes its experiment as it begins (a request away, to a server), not told to start it a second time
    if exp is None and not runs_starting(uri, sweep):
        raise TableError(unrecorded_sweep(client, uri, sweep, as_typed, uri_to_repeat))
    parents = [] if exp is None else ran_last_first(search_all(
        client, [exp.experiment_id], f"tags.`{S.TAG_ROLE}` = '{S.ROLE_PARENT}' and tags.`{S.TAG_SWEEP}` = '{sweep}'",
        order_by=["attributes.start_time DESC"]))
    if not parents:
        starting = runs_starting(uri, sweep)   # a run makes its parent once its data are decoded and Ray has started
        raise TableError(f"sweep {sweep!r} has no recorded invocation (no parent run) in {uri}"
                         + (f" yet: `sweeps run` process {', '.join(map(str, starting))} on this host is starting it "
                            "(its run, with its cells, is made once its data are decoded and Ray has started)"
                            if starting else ""))
    run = invocation_named(parents, parent_run_id, sweep) if parent_run_id else parents[0]
    parent = ParentRun(run.info.run_id, run.info.run_name, parent_status(run.data.tags),
                       run.info.start_time, dict(run.data.tags))
    children = search_all(client, [exp.experiment_id],
                           f"tags.`{S.TAG_PARENT}` = '{parent.run_id}' and tags.`{S.TAG_ROLE}` = '{S.ROLE_CELL}'")
    frame = _children_frame(children, parent.status)
    # a table's seeds (a search's trials are not seeds of a cell: each is a row of its own)
    seeds = parent.json_tag(S.TAG_SEEDS, []) if parent.tags.get(S.TAG_KIND) == "table" else []
    left_out = frame[(frame["seed"] >= 0) & ~frame["seed"].isin(seeds)] if seeds and len(frame) else frame.iloc[:0]
    return SweepRuns(sweep, uri, exp.experiment_id, parent, frame.drop(left_out.index).reset_index(drop=True),
                     client, seeds_left_out=tuple(sorted(int(s) for s in set(left_out["seed"]))))


def invocation_named(parents: Sequence, run_id: str, sweep: str):
    """The one of a sweep's invocations (parent runs, the one run last first) whose id starts with `run_id`
    (--run of `sweeps table`, `plot`, `best` and `status`); TableError naming the ones it matches, or every
    one where it matches none."""
    chosen = [p for p in parents if p.info.run_id.startswith(run_id)]
    if len(chosen) != 1:   # the ones it matches, or else every one
        listing = "; ".join(f"{p.info.run_id} {p.info.run_name} ({parent_status(p.data.tags)})"
                            for p in chosen or parents)
        raise TableError(f"run {run_id!r} matches {len(chosen)} invocations of sweep {sweep!r} (give more "
                         f"of its id): {listing}" if chosen else
                         f"run {run_id!r} is not an invocation of sweep {sweep!r}; "
                         f"invocations, the one run last first: {listing}")
    return chosen[0]


def log_to_parent(runs: SweepRuns, paths: Sequence[str | Path], artifact_path: str = "tables") -> None:
    """Log files as artifacts of the invocation's parent run (tables/, figures/)."""
    for p in paths:
        runs.client.log_artifact(runs.parent.run_id, str(p), artifact_path)


# --------------------------------------------------------------------------- the table model

@dataclass
class Cell:
    """One arm on one data set under one metric: the completed seeds and what is still missing."""

    row: str
    column: str
    metric: str
    values: dict[int, float]            # seed -> value (completed runs only): fractions, or a loss (is_fraction)
    run_ids: dict[int, str]             # seed -> run id of the completed run
    cell_ids: tuple[str, ...]           # config hashes of the completed runs, in seed order
    data_fingerprints: tuple[str, ...]
    n_expected: int
    counts: dict[str, int]              # status -> number of runs (all statuses)
    summary: stats.Summary
    best: bool = False
    tied: bool = False                  # not significantly different from the column's best
    test: stats.PairedTest | None = None  # against the column's best
    p_holm: float | None = None
    # seed -> run id of each completed run without this metric (NaN: no validation split, a diverged training)
    no_value_run_ids: dict[int, str] = field(default_factory=dict)
    # the seeds among those whose training diverged (losses not finite): a result, not a run still to come
    diverged_seeds: tuple[int, ...] = ()

    @property
    def n(self) -> int:
        return self.summary.n

    @property
    def no_value(self) -> int:
        """Completed runs without this metric."""
        return len(self.no_value_run_ids)

    @property
    def unfinished(self) -> int:
        return sum(self.counts.get(s, 0) for s in _RUNNING)

    @property
    def diverged(self) -> int:
        """Completed runs without this metric as their training diverged."""
        return len(self.diverged_seeds)

    @property
    def every_seed_ended(self) -> bool:
        """Every seed's run completed, with this metric's value or without: none is still to come."""
        return not self.unfinished and self.n + self.no_value >= self.n_expected

    @property
    def every_seed_accounted(self) -> bool:
        """No seed still to come in this invocation: each has a completed run (with this metric's value or
        without), or a failed or pruned one (a failed seed is trained again when the sweep is continued)."""
        ended = self.counts.get(S.STATUS_FAILED, 0) + self.counts.get(S.STATUS_PRUNED, 0)
        return not self.unfinished and self.n + self.no_value + ended >= self.n_expected

    @property
    def state(self) -> str:
        """complete | diverged | partial | running | interrupted | pruned | failed | no value | missing.

        diverged: every seed finished, but the training of some diverged before they had this metric's value
        (and others may lack it for another reason: "n=1, 1 without a value, 1 diverged", no seed still to come):
        the mean is of the others alone (which the diverged ones might have pulled down), so the cell is not
        compared with cells of every seed (`contenders_of`); no value: its runs completed, but none recorded
        this metric (no validation split for best_val_acc, a diverged training); missing: no run at all."""
        if self.n and self.n >= self.n_expected and not self.unfinished:
            return "complete"
        if self.n and self.diverged and self.every_seed_ended:
            return "diverged"
        if self.n:
            return "partial"
        for s in (S.STATUS_RUNNING, S.STATUS_INTERRUPTED, S.STATUS_PRUNED, S.STATUS_FAILED):
            if self.counts.get(s):
                return s
        return "no value" if self.no_value else "missing"


@dataclass(frozen=True)
class Provenance:
    """Invocation-level reproducibility facts, from the parent run's tags."""

    sweep: str = ""
    parent_run_id: str = ""
    status: str = ""
    git_commit: str = ""
    versions: Mapping[str, str] = field(default_factory=dict)
    data_fingerprints: Mapping[str, str] = field(default_factory=dict)
    profile: str = ""
    synthetic: bool = False
    seeds: tuple[int, ...] = ()
    spec_hash: str = ""
    overrides: Mapping[str, Any] | None = field(default_factory=dict)   # the invocation's --set; None: not kept
    data_changed: Mapping[str, Sequence[str]] = field(default_factory=dict)   # data name -> fingerprints, where
                                        # the invocation went on after its data changed (--accept-changed-data)
    seeds_left_out: tuple[int, ...] = ()   # SweepRuns.seeds_left_out

    @classmethod
    def from_runs(cls, runs: SweepRuns) -> "Provenance":
        p = runs.parent
        return cls(runs.sweep, p.run_id, p.status, p.tags.get(S.TAG_GIT_COMMIT, ""),
                   p.json_tag(S.TAG_VERSIONS, {}), p.json_tag(S.TAG_DATA_FINGERPRINT, {}),
                   p.tags.get(S.TAG_PROFILE, ""), p.tags.get(S.TAG_SYNTHETIC, "").lower() == "true",
                   tuple(int(s) for s in p.json_tag(S.TAG_SEEDS, [])), p.tags.get(S.TAG_SPEC_HASH, ""),
                   p.json_tag(S.TAG_OVERRIDES, None), p.json_tag(S.TAG_DATA_CHANGED, {}), runs.seeds_left_out)


@dataclass(frozen=True)
class PaperRow:
    """A row of the paper's reported figures: column -> percent, and the arm they are the paper's figures of
    (None: a label alone, e.g. a method the table does not run)."""

    label: str
    values: Mapping[str, float | None]
    arm: str | None = None


@dataclass
class ResultTable:
    rows: list[str]
    columns: list[str]
    metrics: list[str]                  # the primary metric first
    cells: dict[tuple[str, str, str], Cell]
    deltas: dict[tuple[str, str], stats.DeltaCI]  # (row, column) -> Δ of the primary metric vs baseline
    baseline: str | None
    papers: list[PaperRow]              # the paper's reported figures, a row each (a spec's: one per arm given)
    column_labels: dict[str, str]
    n_expected: int
    alpha: float
    confidence: float
    n_comparisons: int                  # tests in the Holm family
    in_progress: bool
    provenance: Provenance = field(default_factory=Provenance)
    without_validation: list[str] = field(default_factory=list)   # columns whose runs had no validation split
    mixed_data: dict[str, tuple[str, ...]] = field(default_factory=dict)   # column -> the fingerprints of the
                                        # data its runs trained on, where more than one (--accept-changed-data)
    paper_metric: str = ""              # the metric the paper's figures are shown under (""; the primary);
                                        # one the table does not show: they are not shown
    select_on: str | None = None        # a search's: the validation metric that chose each column's best row
    row_notes: dict[str, str] = field(default_factory=dict)   # shown after a row's label (a search: the
                                                               # values its trial tried); not its identity
    diverged: dict[tuple[str, str], tuple[int, ...]] = field(default_factory=dict)   # (row, column) -> seeds of
                                        # its completed runs that diverged before any epoch was scored (no value)
    diverged_late: dict[tuple[str, str], tuple[tuple[int, int | None], ...]] = field(default_factory=dict)
                                        # (row, column) -> (seed, the epoch it diverged at, None: unknown) of its
                                        # completed runs that diverged after scored epochs: scored on those
    diverged_scored: dict[tuple[str, str], tuple[tuple[int, int | None], ...]] = field(default_factory=dict)
                                        # (row, column) -> (seed, epoch) of its completed runs whose training loss
                                        # was not finite at their last epoch while its evaluation gave numbers:
                                        # recorded before such an epoch went unscored (`engine.sound`), it was
                                        # scored with the others

    @property
    def metric(self) -> str:
        return self.metrics[0]

    @property
    def metric_label(self) -> str:
        return metric_description(self.metric)

    def paper_value(self, paper: PaperRow, column: str, metric: str) -> float | None:
        """A paper row's figure for a column, under the metric it was reported as (the spec's first)."""
        return paper.values.get(column) if metric == (self.paper_metric or self.metric) else None

    def paper_of(self, row: str) -> PaperRow | None:
        """The paper's figures that stand beside `row`: those of its arm, else the table's one paper row of
        no arm (a label alone), else None."""
        own = [p for p in self.papers if p.arm == row]
        if own:
            return own[0]
        armless = [p for p in self.papers if p.arm is None]
        return armless[0] if len(self.papers) == 1 and armless else None

    def row_text(self, row: str) -> str:
        """The row's label as printed: with its note, if any ("trial 1a2b3c4d (lr 0.0003, depth 2)")."""
        note = self.row_notes.get(row)
        return f"{row} ({note})" if note else row

    def cell(self, row: str, column: str, metric: str | None = None) -> Cell:
        return self.cells[(row, column, metric or self.metric)]

    def contenders(self, column: str, metric: str | None = None) -> list[Cell]:
        """The cells of a column that compete for its best: the complete ones, else every one with a value."""
        col = [self.cells[(r, column, metric or self.metric)] for r in self.rows]
        return contenders_of(col)

    def check_row(self, row: str) -> str:
        """The row `row` names: its label, or its label as a table prints it (a search's with its note, "trial
        1a2b3c4d (lr 0.0003, depth 2)", copied from any format: Markdown's and LaTeX's `mlp\\_ratio` too)."""
        if row in self.rows:
            return row
        unescaped = re.sub(r"\\([\\`*_{}\[\]()#+\-.!|&%$])", r"\1", row)
        printed = {self.row_text(r): r for r in self.rows}
        found = next((printed[t] for t in (row, unescaped) if t in printed), None)
        if found is None:
            close = difflib.get_close_matches(unescaped, [*self.rows, *printed], n=1)
            hint = f" Did you mean {printed.get(close[0], close[0])!r}?" if close else ""
            raise TableError(f"unknown row {row!r}; rows: {', '.join(self.rows)}" + (f".{hint}" if hint else ""))
        return found


def _ordered(given: Sequence[str] | None, seen: Sequence[str], what: str) -> list[str]:
    """The declared order, with values recorded but not declared appended (never silently dropped)."""
    order = list(dict.fromkeys(given)) if given is not None else []
    extra = [v for v in dict.fromkeys(seen) if v not in order]
    if given is not None and extra:
        log.warning("%s recorded but not declared, appended: %s", what, ", ".join(extra))
    return order + extra


def build_table(children: pd.DataFrame, *, metric: str = "sel_test_acc", rows: Sequence[str] | None = None,
                columns: Sequence[str] | None = None, baseline: str | None = None,
                paper: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
                paper_label: str = "Paper (reported)",
                extra_metrics: Sequence[str] = (), seeds: Sequence[int] | None = None,
                column_labels: Mapping[str, str] | None = None, alpha: float = 0.05,
                confidence: float = 0.95, in_progress: bool = False,
                provenance: Provenance | None = None, select_on: str | None = None, select_mode: str = "max",
                row_notes: Mapping[str, str] | None = None) -> ResultTable:
    """A ResultTable from the children DataFrame of `load_sweep_runs` (or any frame with its columns).

    rows: arm labels in order (recorded arms not listed are appended); columns: data names (default:
    as recorded); seeds: the seeds every cell should have (default: every seed recorded);
    paper: column -> reported percent (or {"label": ..., "values": {...}, "metric": the metric of the table
    they are shown under, by default the primary one, "arm": the row they are the paper's figures of}, or a
    list of such rows, one metric for all); extra_metrics: metrics
    shown beside the primary one ("mca" means the primary's selection rule).
    select_on: for a search, whose rows are its trials: the column (`SearchRanking.column`: best_val_acc, or
    the best epoch of another metric the search optimised) that chooses each column's best row, best under
    every metric shown, its highest or, select_mode "min", lowest mean; the highest test accuracy among
    trials would be a trial chosen on the test set (DESIGN, Honest evaluation).
    row_notes: row -> text printed after its label (rows are still named by their label alone).
    """
    if not 0.0 < alpha < 1.0:
        raise TableError(f"alpha={alpha!r} is invalid: expected a number in (0, 1)")
    primary = resolve_metric(metric)
    metrics = list(dict.fromkeys([primary] + [resolve_metric(m, primary) for m in extra_metrics]))
    rows = _ordered(rows, children["arm"].tolist(), "arms")
    columns = _ordered(columns, children["data"].tolist(), "data sets")
    if not rows or not columns:
        raise TableError("the table has no rows or no columns: no runs recorded and no layout given")
    if baseline is not None and baseline not in rows:
        raise TableError(f"baseline {baseline!r} is not a row; rows: {', '.join(rows)}")
    papers, paper_metric = _paper_rows(paper, paper_label, metric, rows, columns)
    _check_first_metric(primary, select_on, baseline, paper_metric if papers else None)
    if select_on is not None and "test" in select_on:
        raise TableError(f"select_on={select_on!r} is measured on the test set: a search's best trial is chosen "
                         "on validation (best_val_acc) or the training split, never on the test set")
    missing = [c for c in ("run_id", "arm", "data", "seed", "status", "cell_id", "data_fingerprint", "start_time",
                           *metrics, *([select_on] if select_on else [])) if c not in children.columns]
    if missing:
        raise TableError(f"the runs frame lacks column(s) {', '.join(missing)}: build it with load_sweep_runs")
    seed_list = sorted(set(seeds) if seeds is not None else set(children["seed"].tolist()))
    n_expected = max(len(seed_list), 1)

    diverged_runs = _diverged_runs(children)
    cells: dict[tuple[str, str, str], Cell] = {}
    selection: dict[tuple[str, str], float] = {}   # (row, column) -> its mean of select_on
    for r in rows:
        for c in columns:
            sub = children[(children["arm"] == r) & (children["data"] == c)]
            counts = sub["status"].value_counts().to_dict()
            done = sub[sub["status"] == S.STATUS_COMPLETED].sort_values("start_time")
            if done["seed"].duplicated().any():
                log.warning("arm %r data %r has several completed runs per seed; using the latest", r, c)
                done = done.drop_duplicates("seed", keep="last")
            done = done.sort_values("seed")
            if select_on is not None and done[select_on].notna().any():
                selection[(r, c)] = float(done[select_on].mean())
            for m in metrics:
                ok = done[done[m].notna()]
                if len(ok) < len(done):
                    log.warning("arm %r data %r: %d completed run(s) lack metric %s", r, c, len(done) - len(ok), m)
                values = {int(s): float(v) for s, v in zip(ok["seed"], ok[m])}
                lacking = done[done[m].isna()]
                cells[(r, c, m)] = Cell(r, c, m, values, {int(s): r for s, r in zip(ok["seed"], ok["run_id"])},
                                        tuple(ok["cell_id"]), tuple(ok["data_fingerprint"]), n_expected,
                                        {str(k): int(v) for k, v in counts.items()},
                                        stats.describe(list(values.values())),
                                        no_value_run_ids={int(s): r for s, r in zip(lacking["seed"], lacking["run_id"])},
                                        diverged_seeds=tuple(int(s) for s, r in zip(lacking["seed"], lacking["run_id"])
                                                             if r in diverged_runs))

    # best per column (of its complete cells, if any), paired tests against it, Holm across the whole table
    family: list[Cell] = []
    for c in columns:
        for m in metrics:
            contenders = contenders_of([cells[(r, c, m)] for r in rows])
            if not contenders:
                continue
            if select_on is None:   # a loss's best is its lowest
                top = (min if metric_mode(m) == "min" else max)(x.summary.mean for x in contenders)
                bests = [x for x in contenders if _same_mean(x.summary.mean, top)]
            else:   # the rows chosen on validation, whatever their number under this metric
                chosen = (min if select_mode == "min" else max)(
                    (v for (r, col), v in selection.items() if col == c), default=None)
                bests = [x for x in contenders if (x.row, c) in selection
                         and _same_mean(selection[(x.row, c)], chosen)]
                if not bests:   # the chosen trial lacks this metric: no other takes its place
                    continue
            for x in contenders:   # an incomplete cell beside complete ones is neither best nor tested
                x.best = any(x is b for b in bests)
                if not x.best:   # against each best it ties with, the most telling (smallest p): "†, as good
                    # as the best" must hold for every one, whatever the rows' order
                    tests = [stats.paired_ttest(x.values, b.values) for b in bests]
                    x.test = min(tests, key=lambda t: (t.p is None, t.p if t.p is not None else 0.0))
                    if x.test.p is not None:
                        family.append(x)
    for x, p in zip(family, stats.holm([x.test.p for x in family])):
        x.p_holm = p
        x.tied = p >= alpha

    deltas: dict[tuple[str, str], stats.DeltaCI] = {}
    if baseline is not None:
        for r in rows:
            for c in columns:
                if r != baseline:
                    deltas[(r, c)] = stats.paired_delta_ci(cells[(r, c, primary)].values,
                                                           cells[(baseline, c, primary)].values, confidence)
    labels = {c: (column_labels or {}).get(c, DATA_LABELS.get(c, c)) for c in columns}
    # a run without validation records no best_val_acc: its sel_* numbers are of its last epoch. A run that
    # diverged before any epoch had finite losses records no score at all (sel_test_acc NaN too): it says
    # nothing of a validation split, and a column of such runs alone is no column "without validation"
    done = children[children["status"] == S.STATUS_COMPLETED]
    scored = done[done["sel_test_acc"].notna()] if "sel_test_acc" in done else done
    without_validation = [c for c in columns if "best_val_acc" in scored and len(scored[scored["data"] == c])
                          and scored[scored["data"] == c]["best_val_acc"].isna().all()]
    diverged = _diverged(children[children["arm"].isin(rows)])
    diverged_late: dict[tuple[str, str], list[tuple[int, int | None]]] = {}
    diverged_scored: dict[tuple[str, str], list[tuple[int, int | None]]] = {}
    for run in children[children["run_id"].isin(list(diverged_runs)) & children["arm"].isin(rows)].itertuples():
        if (run.arm, run.data) not in diverged or run.seed not in diverged[(run.arm, run.data)]:
            # its last epoch scored (final_test_acc a number): a run recorded before an epoch whose training loss
            # was not finite went unscored, found by that loss alone (`_diverged_epoch`)
            scored = not pd.isna(getattr(run, "final_test_acc", math.nan))
            (diverged_scored if scored else diverged_late).setdefault((run.arm, run.data), []).append(
                (int(run.seed), diverged_runs[run.run_id]))
    return ResultTable(rows, columns, metrics, cells, deltas, baseline, papers, labels, n_expected,
                       alpha, confidence, len(family), in_progress, provenance or Provenance(), without_validation,
                       paper_metric=paper_metric, select_on=select_on,
                       row_notes={r: n for r, n in (row_notes or {}).items() if r in rows and n},
                       diverged=diverged, diverged_late={k: tuple(sorted(v)) for k, v in diverged_late.items()},
                       diverged_scored={k: tuple(sorted(v)) for k, v in diverged_scored.items()},
                       mixed_data=_mixed_data(children[children["arm"].isin(rows)], columns,
                                              (provenance or Provenance()).data_changed))


def _check_first_metric(primary: str, select_on: str | None, baseline: str | None, paper_metric: str | None) -> None:
    """A loss first (`sweeps table SEARCH --metric best_val_loss`, lowest bold) only in a search's table: its rows
    are trials, bold the one chosen on validation, with no baseline and no paper figures. A table of arms
    has its first metric's bars, Δ in percentage points and the paper's figures, which a loss has none of."""
    if is_fraction(primary):
        return
    accuracies = ", ".join(m for m in TABLE_METRICS + EPOCH_BEST_METRICS if is_fraction(m))
    if select_on is None:
        raise TableError(f"{primary} is a loss: a table's first metric is an accuracy, in percent, which its bars, Δ "
                         f"and the paper's figures are of; show {primary} beside one (table.metrics: "
                         f"[sel_test_acc, {primary}]), or give a first metric of {accuracies}. A loss comes first "
                         "only in a search's table, whose rows are trials chosen on validation")
    why = ("a Δ against the baseline in percentage points" if baseline is not None else
           "the paper's figures, in percent" if paper_metric == primary else None)
    if why is not None:
        raise TableError(f"{primary} is a loss, and this search's table has {why} under its first metric: give a "
                         f"first metric of {accuracies}, and show {primary} beside it")


def _paper_rows(paper: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None, label: str, metric: str,
                rows: Sequence[str], columns: Sequence[str]) -> tuple[list[PaperRow], str]:
    """build_table's `paper` as PaperRows, and the metric they were reported as."""
    if not paper:
        return [], metric
    given = [paper] if isinstance(paper, Mapping) else list(paper)
    out, metrics = [], set()
    for one in given:
        if "values" not in one:   # column -> percent
            one = {"values": one}
        values = {k: (None if v is None else float(v)) for k, v in one["values"].items()}
        unknown = [k for k in values if k not in columns]
        if unknown:
            raise TableError(f"paper figure for unknown column(s) {', '.join(unknown)}; columns: {', '.join(columns)}")
        arm = one.get("arm")
        if arm is not None and arm not in rows:
            raise TableError(f"paper figures of arm {arm!r}, which is not a row; rows: {', '.join(rows)}")
        out.append(PaperRow(one.get("label", label), values, arm))
        metrics.add(one.get("metric", metric))
    if len(metrics) > 1:
        raise TableError(f"the paper's rows are of several metrics ({', '.join(sorted(metrics))}): one column "
                         "holds them, give one")
    return out, metrics.pop()


def _counted_and_scores(children: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The completed runs a table counts (none superseded by a rerun of its cell), and the score metrics recorded:
    a run without any of them diverged before its first scored epoch."""
    scores = [m for m in ("sel_test_acc", "best_test_acc", "final_test_acc") if m in children.columns]
    done = children[(children["status"] == S.STATUS_COMPLETED) & ~children["run_id"].isin(superseded_runs(children))]
    return done, scores


def _diverged(children: pd.DataFrame) -> dict[tuple[str, str], tuple[int, ...]]:
    """(row, column) -> the seeds of the completed runs a cell counts whose training diverged before any epoch had
    finite losses: such a run records no score (`engine.History.summary`: sel_test_acc NaN), and its cell
    shows it only as "without a value", which a reader could not tell from a run that logged nothing. (A run
    lacking one of them alone, as one without validation lacks best_val_acc, did not diverge.)"""
    done, scores = _counted_and_scores(children)
    if not scores:
        return {}
    out: dict[tuple[str, str], tuple[int, ...]] = {}
    for (row, column), runs in done[done[scores].isna().all(axis=1)].groupby(["arm", "data"], sort=False):
        out[(row, column)] = tuple(sorted(int(s) for s in runs["seed"]))
    return out


def _diverged_runs(children: pd.DataFrame) -> dict[str, int | None]:
    """run id -> the epoch its training diverged at (None: not known), of the completed runs a table counts
    whose training diverged: before any epoch was scored (every score NaN, `_diverged`), or after some, at its
    last epoch (`diverged_epoch` of `load_sweep_runs`: final_test_acc recorded NaN, as that epoch's losses
    were not finite, beside the scores of the sound epochs before it)."""
    done, scores = _counted_and_scores(children)
    if not scores:
        return {}
    at = done["diverged_epoch"] if "diverged_epoch" in done.columns else pd.Series(math.nan, index=done.index)
    gone = done[scores].isna().all(axis=1) | at.notna()
    return {run_id: (None if pd.isna(e) else int(e)) for run_id, e in zip(done.loc[gone, "run_id"], at[gone])}


def _mixed_data(children: pd.DataFrame, columns: Sequence[str],
                changed: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    """Columns whose runs trained on more than one version of their data set, as the invocation went on
    with --accept-changed-data after it changed: its parent's record of that (`changed`), and the earlier
    fingerprints a resumed run keeps. Runs of one data set that differ in fingerprint are no sign of it:
    the fingerprint also covers how a cell reads the data (image size, the synthetic set's size)."""
    mixed = {c: list(changed.get(c, ())) for c in columns}
    runs = children[children["status"] != S.STATUS_PRUNED]
    for row in runs.itertuples():
        earlier = [f for f in str(getattr(row, "data_fingerprint_earlier", "") or "").split(",") if f]
        if earlier and row.data in mixed:
            mixed[row.data] = list(dict.fromkeys([*mixed[row.data], *earlier, *filter(None, [row.data_fingerprint])]))
    return {c: tuple(fps) for c, fps in mixed.items() if len(fps) > 1}


def superseded_runs(children: pd.DataFrame) -> set[str]:
    """Completed runs that a later-started completed run of the same arm, data set and seed supersedes:
    build_table counts the latest alone, and so must every figure drawn beside it."""
    done = children[children["status"] == S.STATUS_COMPLETED].sort_values("start_time")
    return set(done[done.duplicated(["arm", "data", "seed"], keep="last")]["run_id"])


def contenders_of(column: Sequence[Cell]) -> list[Cell]:
    """An incomplete cell beside complete ones competes for nothing: its mean is over fewer seeds."""
    with_value = [x for x in column if x.n]
    return [x for x in with_value if x.state == "complete"] or with_value


def _same_mean(a: float, b: float) -> bool:
    """Equal means, whatever the order the seeds were summed in: (131 + 135) / 2 and (132 + 134) / 2
    of 525 test images differ in their last bit."""
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def table_from_runs(runs: SweepRuns, **layout: Any) -> ResultTable:
    """build_table over one invocation: seeds, column order and provenance from the parent's tags."""
    # before any run's history is read: a loss first in a table of arms is refused at once
    _check_first_metric(resolve_metric(layout.get("metric", "sel_test_acc")), layout.get("select_on"),
                        layout.get("baseline"), None)
    for m in [layout.get("metric", "sel_test_acc"), *layout.get("extra_metrics", ())]:
        ranking = ranking_by_column(m) if epoch_best_metric(m) else None
        if ranking is not None:   # no run records it: each run's best epoch of it, from its history
            runs = dataclasses.replace(runs, children=ranked_children(runs, ranking))
    prov = Provenance.from_runs(runs)
    data_tag = runs.parent.tags.get(S.TAG_DATA, "")
    layout.setdefault("columns", [d for d in data_tag.split(",") if d] or None)
    layout.setdefault("seeds", list(prov.seeds) or None)
    layout.setdefault("in_progress", runs.parent.status == S.STATUS_RUNNING)
    return build_table(runs.children, provenance=prov, **layout)


@dataclass(frozen=True)
class CaptionFacts:
    """What the caption states: title and text from the spec, profile, data, synthetic, seeds."""

    title: str = ""
    caption: str = ""
    profile: str = ""
    data: tuple[str, ...] = ()
    synthetic: bool = False
    seeds: tuple[int, ...] = ()
    label: str = ""                     # LaTeX \label (default tab:<title slug>)
    row_header: str = "Arm"             # the header of the label column
    wide: bool = False                  # LaTeX: a table* across both columns of a two-column paper
    fit: bool = False                   # LaTeX: scaled down to the text width if wider (needs graphicx)
    overrides: Mapping[str, Any] = field(default_factory=dict)   # --set: above the spec and its arms

    @classmethod
    def from_runs(cls, runs: SweepRuns, *, title: str = "", caption: str = "") -> "CaptionFacts":
        prov = Provenance.from_runs(runs)
        data = tuple(d for d in runs.parent.tags.get(S.TAG_DATA, "").split(",") if d)
        return cls(title, caption, prov.profile, data, prov.synthetic, prov.seeds, f"tab:{runs.sweep}",
                   overrides=prov.overrides or {})
