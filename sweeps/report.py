"""From an invocation's recorded runs to its paper table and figures, laid out as its spec says.

The spec is read back from the parent run's `spec.yaml` artifact, so `sweeps table` renders exactly
the sweep that ran — also for a user's spec file that has since moved or changed.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from search_spaces import SweepSpec
from search_spaces.search import SearchParam
from search_spaces.spec import load_text
from sweeps import schema, tracking
from sweeps.figures import log_figures, plot_sweep
from sweeps.table_formats import write_tables
from sweeps.tables import (CaptionFacts, ResultTable, SearchRanking, SweepRuns, TableError, epoch_best_metric,
                           load_sweep_runs, log_to_parent, ranked_children, resolve_metric, search_ranking,
                           table_from_runs)
from transfer_core.config import parse_value

log = logging.getLogger(__name__)


def recorded_spec(runs: SweepRuns) -> SweepSpec:
    """The spec the invocation ran with (the parent's spec.yaml artifact)."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = runs.client.download_artifacts(runs.parent.run_id, schema.ARTIFACT_SPEC, tmp)
        except Exception as exc:  # MLflow raises several types for a missing artifact
            location = runs.client.get_run(runs.parent.run_id).info.artifact_uri or ""
            if location.startswith("mlflow-artifacts:") and not str(runs.tracking_uri).startswith("http"):
                raise TableError(
                    f"the artifacts of parent run {runs.parent.run_id} ({location}) are served by the MLflow server "
                    f"that recorded them, and {runs.tracking_uri} is a database, not that server: pass its "
                    "--tracking-uri http://HOST:PORT, or serve this copy with its artifacts folder "
                    "(`mlflow server --backend-store-uri ... --artifacts-destination FOLDER`; docs/cluster.md §7)"
                ) from exc
            gone = tracking.artifacts_not_here(runs.client.get_run(runs.parent.run_id), str(runs.tracking_uri))
            if gone is not None:   # a store moved without its artifacts: not "never recorded"
                raise TableError(gone) from exc
            folder = folder_not_here(runs.client.get_experiment(runs.experiment_id).artifact_location or "")
            if folder is not None:
                raise TableError(
                    f"the artifacts of parent run {runs.parent.run_id} ({location}) are in {folder}, a folder this "
                    "machine does not have: the store was moved or copied from where it recorded them (a sqlite "
                    "store's runs keep the absolute path of the mlartifacts folder beside it), or its MLflow server "
                    "was started with --no-serve-artifacts, whose clients write artifacts straight to that path on "
                    "their own disk. Put that artifacts folder at that path (a copy, a mount or a symlink), or read "
                    "the store where it was recorded (docs/cluster.md §7)"
                ) from exc
            raise TableError(f"parent run {runs.parent.run_id} has no {schema.ARTIFACT_SPEC} artifact; "
                             "it was not recorded by `sweeps run`") from exc
        text = Path(path).read_text(encoding="utf-8")
    return load_text(text, source=f"run {runs.parent.run_id}/{schema.ARTIFACT_SPEC}", recorded=True)


def folder_not_here(location: str) -> Path | None:
    """The folder of an artifact location that is a path on a disk (file:/PATH, or a bare path: an MLflow server
    started with --no-serve-artifacts) where this machine has no such folder; None for any other location (a
    server's mlflow-artifacts:/, s3://, ...) or a folder that is here."""
    from urllib.parse import urlparse

    from mlflow.utils.file_utils import local_file_uri_to_path

    scheme = urlparse(location).scheme
    if not location or (scheme and scheme != "file" and len(scheme) > 1):   # a one-letter scheme: a Windows drive
        return None
    folder = Path(local_file_uri_to_path(location))
    return None if folder.exists() else folder


def under_spec_labels(runs: SweepRuns, spec: SweepSpec) -> SweepRuns:
    """`runs` with each child's arm as `spec` labels it: runs of a grid over a list value, recorded under the label
    versions before wrote ("milestones=(3,)", `Arm.recorded_as`), are its row "milestones=[3]"."""
    renamed = {arm.recorded_as: arm.label for arm in spec.arms if arm.recorded_as is not None}
    if not renamed or runs.children.empty:
        return runs
    return dataclasses.replace(runs, children=runs.children.assign(arm=runs.children["arm"].replace(renamed)))


def sweep_table(runs: SweepRuns, spec: SweepSpec, metric: str | None = None) -> ResultTable:
    """The spec's layout: arms in declared order, its baseline and metrics; `metric` replaces the first."""
    metrics = list(spec.table.metrics)
    primary = resolve_metric(metric, metrics[0]) if metric else metrics[0]   # "mca": the spec's rule's MCA
    extra = [m for m in metrics if m != primary]
    paper = []
    if spec.table.paper:
        # the paper's figures of the data sets this invocation ran on (a spec gives RAF-DB and AffectNet; a run
        # on the synthetic faces, or on RAF-DB alone, has no column for the others): a row per arm given, in
        # the spec's order, under the metric they were reported as
        columns = ([d for d in runs.parent.tags.get(schema.TAG_DATA, "").split(",") if d]
                   or list(dict.fromkeys(runs.children["data"])))
        for arm, values in spec.table.paper.items():
            shown = {c: v for c, v in values.items() if c in columns}
            if len(shown) < len(values):
                log.info("paper figure(s) of %s for %s not shown: this invocation ran on %s", arm,
                         ", ".join(c for c in values if c not in shown), ", ".join(columns) or "nothing")
            if shown:
                paper.append({"label": f"Paper ({arm})", "values": shown, "arm": arm,
                              "metric": spec.table.paper_metric or spec.table.metrics[0]})
    rows, notes, select_on, select_mode = list(spec.labels), None, None, "max"
    if spec.kind == "search":
        # a search's rows are its trials: the best is the one its ranking chooses, under every metric shown
        ranking = search_ranking(spec.metric)
        runs = dataclasses.replace(runs, children=ranked_children(runs, ranking))
        rows, notes = search_rows(runs.children, spec.search.space, ranking, shown=[primary, *extra])
        select_on, select_mode = ranking.column, ranking.mode
    return table_from_runs(runs, metric=primary, rows=rows, baseline=spec.table.baseline,
                           paper=paper, extra_metrics=extra, select_on=select_on, select_mode=select_mode,
                           row_notes=notes)


def search_rows(children: pd.DataFrame, space: Mapping[str, SearchParam],
                ranking: SearchRanking = search_ranking("val_acc"),
                shown: Sequence[str] = ("best_val_acc",)) -> tuple[list[str], dict[str, str]]:
    """A search's trials as rows, best first by `ranking` (completed ones; then the pruned, failed and
    unfinished, as recorded), each noted with the values it tried: a trial id alone tells a reader nothing.
    A ranking value that is no column of the table (`shown`: its metrics), e.g. a search's lowest validation
    loss ("val. loss 0.6123"; the caption says what ranked them), is noted too: the order would otherwise be
    read off nothing on the page. `children` holds the ranking's column (`ranked_children`)."""
    if children.empty:
        return [], {}
    names = short_names(space)
    first = children.drop_duplicates("arm")
    done = (children[children["status"] == schema.STATUS_COMPLETED].groupby("arm")[ranking.column]
            .agg(ranking.mode))
    ranked = list(done.sort_values(ascending=ranking.mode == "min", kind="stable", na_position="last").index)
    rows = ranked + [a for a in first["arm"] if a not in done.index]
    notes = {}
    for row in first.itertuples(index=False):
        params = dict(zip(first.columns, row))
        tried = ", ".join(f"{names[k]} {value_text(params.get(f'params.{k}'))}" for k in space
                          if params.get(f"params.{k}") is not None)
        value = done.get(params["arm"]) if ranking.column not in shown else None
        if value is not None and not math.isnan(value):
            tried += ("; " if tried else "") + f"{ranking.short} {schema.metric_text(ranking.column, value)}"
        if tried:
            notes[params["arm"]] = tried
    return rows, notes


def short_names(keys) -> dict[str, str]:
    """Dotted keys by their last part (optim.lr: lr), or whole where two end alike."""
    names = {k: k.rsplit(".", 1)[-1] for k in keys}
    return names if len(set(names.values())) == len(names) else {k: k for k in keys}


def value_text(raw: Any) -> str:
    """A sampled value as MLflow stores it (a string), short: 0.000316227766 -> 0.000316."""
    value = parse_value(str(raw))
    return f"{value:.3g}" if isinstance(value, float) else str(value)


CURVE_METRICS = ("val_acc", "test_acc")


def curve_metrics(spec: SweepSpec) -> tuple[str, ...]:
    """The per-epoch metrics whose learning curves an invocation's figures draw: validation and test accuracy,
    and where another, the one a search optimised (val_loss: what chose its trials) and those a table column
    is the best epoch of (best_val_loss: val_loss, as in `sweeps best`'s spec of such a search)."""
    chosen_by = [search_ranking(spec.metric).metric] if spec.kind == "search" else []
    columns = [epoch_best_metric(m) for m in spec.table.metrics if epoch_best_metric(m)]
    return tuple(dict.fromkeys([*CURVE_METRICS, *chosen_by, *columns]))


def caption_facts(runs: SweepRuns, spec: SweepSpec) -> CaptionFacts:
    facts = CaptionFacts.from_runs(runs, title=spec.title, caption=spec.caption)
    # a search's rows are its trials, not arms of the spec
    return dataclasses.replace(facts, row_header="Trial") if spec.kind == "search" else facts


def publish(sweep: str, tracking_uri: str, parent_run_id: str, out_dir: str | Path,
            attention: bool = True, status: str | None = None) -> list[Path]:
    """Write every table format and figure of one invocation to `out_dir` and log them to its parent run.
    `status`: the invocation's, where its parent is not tagged with it yet: sweeps.runner draws a completed
    invocation's report before it marks the parent completed (a report cut short is then drawn again by the
    next run), and read as tagged, `running`, every caption said "The sweep is still running"."""
    runs = load_sweep_runs(sweep, tracking_uri=tracking_uri, parent_run_id=parent_run_id)
    if status is not None and status != runs.parent.status:
        runs = dataclasses.replace(runs, parent=dataclasses.replace(runs.parent, status=status))
    spec = recorded_spec(runs)
    runs = under_spec_labels(runs, spec)
    table = sweep_table(runs, spec)
    out = Path(out_dir)
    tables = write_tables(table, out / "tables", caption_facts=caption_facts(runs, spec), stem=sweep)
    log_to_parent(runs, tables, "tables")
    figures = plot_sweep(runs, out / "figures", table=table, attention=attention,
                         rows=table.rows if spec.kind == "table" else None, curve_metrics=curve_metrics(spec))
    log_figures(runs, figures, "figures")
    return [*tables, *figures]

