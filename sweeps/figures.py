"""Figures of a sweep, from its recorded runs: learning curves, ablation bars, and attention maps.

- `learning_curves`: one panel per data set, one line per arm: the mean over seeds of a per-epoch
  metric with a ±1 std band (the band needs two seeds at that epoch); dotted, without a band, where a seed
  whose training diverged has left it (× its last epoch with a value).
- `ablation_bars`: the table's primary metric as grouped bars (mean, ±std error bars, the per-seed
  values as dots, the paper's reported figure as a dashed line).
- `attention_grid`: the paper's Fig. 3: the fused LANet map M over the face, one row per expression
  class, one column per variant, from what the completed child runs logged for the weights of their
  epoch chosen on validation (model_selected/; model/ when that is the last epoch, or for runs that kept
  no other):
  the maps their trials computed (attention.npz, see transfer_core.attention), else their trained
  models (state_dict.pt + config.json).

Each figure is written as PNG and PDF (`<stem>.png`, `<stem>.pdf`), each file replaced whole (`sweeps.files`).
We draw on `matplotlib.figure.Figure` with the Agg canvas and never touch pyplot, so importing this module
changes no global backend.
`log_figures` puts the files under figures/ of the invocation's parent run.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import tempfile
import re
import textwrap
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from sweeps import host_locks
from sweeps import schema as S
from sweeps.files import replacing, write_whole
from sweeps.tables import (DATA_LABELS, METRIC_LABELS, ResultTable, SweepRuns, TableError, metric_description,
                           superseded_runs, table_from_runs)
from transfer_core.attention import attention_maps, class_examples, load_record

log = logging.getLogger(__name__)

FIGURE_SUFFIXES = (".png", ".pdf")
_CURVE_STATUSES = (S.STATUS_COMPLETED, S.STATUS_RUNNING, S.STATUS_INTERRUPTED)


class FigureError(Exception):
    """A figure cannot be drawn from what is recorded; the message says what is missing."""


def _new_figure(width: float, height: float, constrained: bool = True) -> Figure:
    fig = Figure(figsize=(width, height), constrained_layout=constrained)
    FigureCanvasAgg(fig)
    return fig


def _tall_enough_for_legend(fig: Figure, legend, above: float = 0.0, most: float | None = None,
                            in_columns: Callable[[int], Any] | None = None) -> None:
    """Make `fig` at least as tall as its `legend` (one entry per row of the table, beside the axes) needs, with
    `above` inches over and under it (a suptitle's): beyond ~20 rows the legend of a fixed-height figure ran past
    its top and bottom, its first and last entries cut off, and constrained layout gave up on the axes. `most`:
    inches the figure grows to at most, the legend made anew in as many columns as it then needs by `in_columns(n)`
    (which returns it; matplotlib lays a legend's columns out as it is made) (the bars' figure, already
    as wide as its rows: grown taller too, its pixels grew with the square of the rows, 1.8 billion (a 7 GB
    image drawn for 98 s) for a search of 1,000 trials)."""
    def drawn_height() -> float:
        with warnings.catch_warnings():   # "constrained_layout not applied": what this is here to mend
            warnings.simplefilter("ignore", UserWarning)
            fig.canvas.draw()
        return legend.get_window_extent().height / fig.dpi + 0.3 + 2 * above

    need = drawn_height()
    if most is not None and in_columns is not None and need > most:   # the entries' height shared among columns
        legend = in_columns(math.ceil((need - 0.3 - 2 * above) / (most - 0.3 - 2 * above)))
        need = drawn_height()
    if need > fig.get_figheight():
        fig.set_figheight(need)


_TOGETHER: list[contextlib.ExitStack] = []   # the files of `all_or_none`'s block, replaced as it ends


@contextlib.contextmanager
def all_or_none() -> Iterator[None]:
    """The figures saved in the block (`save_figure`) replace their files together as it ends, or none does: each is
    written whole to its temporary file as it is drawn (`files.replacing`), and renamed over its file only once every
    one is written. A disk that fills up part way (an OSError) leaves the folder as it was: one plot's figures beside
    an earlier plot's read as one set. Renaming needs no room on the disk."""
    with contextlib.ExitStack() as together:
        _TOGETHER.append(together)
        try:
            yield
        finally:
            _TOGETHER.pop()


def save_figure(fig: Figure, path_stem: str | Path) -> list[Path]:
    """Write `fig` as <stem>.png (150 dpi) and <stem>.pdf; returns both paths. Each replaces its file whole
    (`files.replacing`): a reader never finds one half written by another `sweeps plot`, or a report, at once;
    within `all_or_none`, as its block ends."""
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for suffix in FIGURE_SUFFIXES:
            path = stem.parent / (stem.name + suffix)
            if _TOGETHER:
                file = _TOGETHER[-1].enter_context(replacing(path))
                fig.savefig(file, format=suffix.lstrip("."), dpi=150)
                file.close()   # written now: nothing is left to write as the block ends, where a full disk would
            else:              # leave the figures replaced before it new and the others old (a network file
                               # system, NFS, says a full disk or quota only as the file is closed, not at flush)
                with replacing(path) as file:
                    fig.savefig(file, format=suffix.lstrip("."), dpi=150)
            paths.append(path)
    _warn_once_of_missing_glyphs(fig, stem, caught)
    return paths


_MISSING_GLYPH = re.compile(r"Glyph (\d+) .*missing from (?:current )?font")


def _warn_once_of_missing_glyphs(fig: Figure, stem: Path, caught: list) -> None:
    """matplotlib warns "Glyph 23398 (...) missing from font(s) DejaVu Sans." once per character, per back end
    and per text drawn: labels in CJK gave dozens of lines per figure. One warning per figure instead, naming
    the labels that draw as boxes; every other warning is passed on as it came."""
    missing = set()
    for w in caught:
        found = _MISSING_GLYPH.search(str(w.message))
        if found:
            missing.add(chr(int(found.group(1))))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if not missing:
        return
    from matplotlib.text import Text

    labels = sorted({t.get_text() for t in fig.findobj(Text) if missing & set(t.get_text())})
    log.warning("figure %s: the font has no glyph for %s in %s, which therefore draw as boxes: use ASCII labels "
                "(the spec's arm labels, or --set), or a font that has them (matplotlib's font.family, e.g. "
                "Noto Sans CJK)", stem.name, "".join(sorted(missing)), ", ".join(repr(t) for t in labels) or "the text")


def warm_up() -> None:
    """Ready matplotlib as save_figure uses it (font cache, text layout, the PNG and PDF back ends) on a
    throw-away figure: ~0.3 s that the first real figure would otherwise pay (sweeps.runner calls this
    from a background thread while a sweep's last trials run)."""
    import io

    fig = _new_figure(1, 1)
    fig.add_subplot(1, 1, 1).set_title("warm-up")
    for suffix in FIGURE_SUFFIXES:
        fig.savefig(io.BytesIO(), format=suffix.lstrip("."), dpi=150)


def _order(given: Sequence[str] | None, seen: Sequence[str]) -> list[str]:
    order = list(dict.fromkeys(given or []))
    return order + [v for v in dict.fromkeys(seen) if v not in order]


def _is_fraction(metric: str) -> bool:
    return metric.endswith(("_acc", "_mca"))


# --------------------------------------------------------------------------- learning curves

def learning_curves(runs: SweepRuns, metric: str = "val_acc", path_stem: str | Path = "learning_curves", *,
                    rows: Sequence[str] | None = None, columns: Sequence[str] | None = None) -> list[Path]:
    """Mean over completed seeds of a per-epoch metric per arm, with a ±1 std band; one panel per data set.

    A seed whose training diverged stops there (its diverged epoch logged NaN, drawn nowhere): a × marks its
    last epoch with a value, and from there the mean of the seeds left is dotted, without a band (averaged as
    one line, it jumped where the seed left, a change of seeds, not of training). This is how the table counts
    it: scored on its epochs before; a seed without any epoch of value is in neither.

    A still-running (or interrupted) cell is drawn dashed on its own, with its epochs so far: averaged in,
    it made the mean's seeds change at its last epoch, a jump no training made. Pruned and failed cells
    are left out, and so is a completed run a later one of its cell and seed supersedes, as in the table.
    A hollow circle marks each completed run's chosen epoch (sel_epoch, the one the tables'
    sel_* numbers and model_selected/ come from) at that run's own value: the mean hides that seeds differ.
    """
    if metric not in S.EPOCH_METRICS:
        raise FigureError(f"unknown per-epoch metric {metric!r}; valid: {', '.join(S.EPOCH_METRICS)}")
    hist = runs.history(metric)
    hist = hist[hist["status"].isin(_CURVE_STATUSES) & ~hist["run_id"].isin(superseded_runs(runs.children))]
    yet = " yet" if runs.parent.status == S.STATUS_RUNNING else ""   # a stopped or finished sweep's will not
    if hist.empty:
        raise FigureError(f"no run of sweep {runs.sweep!r} has recorded {metric!r}{yet}")
    # an epoch whose training diverged is logged as NaN: no value to draw (every arm's only epochs NaN drew an
    # empty frame around zero, with a legend of lines and chosen epochs drawn nowhere)
    # (a loss gone inf reads back from an SQL store as the largest float: drawn, it flattened every other line)
    finite = np.array([S.recorded_finite(v) for v in hist["value"].to_numpy(dtype=float)], dtype=bool)
    no_value = [a for a in dict.fromkeys(hist["arm"]) if a not in set(hist.loc[finite, "arm"])]
    if not finite.any():
        raise FigureError(f"no run of sweep {runs.sweep!r} has a finite {metric!r}: the training of every run "
                          "recorded diverged (losses not finite) from its first epoch")
    rows = _order(rows, hist["arm"].tolist())
    recorded = [d for d in runs.parent.tags.get(S.TAG_DATA, "").split(",") if d in set(hist["data"])]
    columns = _order(columns or recorded, hist["data"].tolist())   # the table's column order
    # completed runs whose training diverged (an epoch logged NaN, or recorded so: a training loss gone NaN with
    # evaluation losses finite left a loss curve, or lr, with no NaN): the mean loses their seed after their last value
    diverged = set(hist.loc[~finite & (hist["status"] == S.STATUS_COMPLETED), "run_id"])
    children = runs.children
    if "diverged_epoch" in children.columns:
        diverged |= set(children.loc[children["diverged_epoch"].notna() & (children["status"] == S.STATUS_COMPLETED),
                                     "run_id"])
    hist = hist[finite]
    scale = 100.0 if _is_fraction(metric) else 1.0
    fig = _new_figure(4.2 * len(columns) + 1.8, 3.4)
    axes = fig.subplots(1, len(columns), squeeze=False)[0]
    colors = _colors(len(rows))
    chosen = _chosen_epoch_points(runs, hist)
    unfinished = fewer = ended = False
    for ax, col in zip(axes, columns):
        for color, arm in zip(colors, rows):
            sub = hist[(hist["arm"] == arm) & (hist["data"] == col)]
            done = sub[sub["status"] == S.STATUS_COMPLETED]
            label = arm
            if not done.empty:
                g = done.groupby("step")["value"]
                steps = g.mean().index.to_numpy()
                mean, std = g.mean().to_numpy() * scale, g.std(ddof=1).to_numpy() * scale
                # the mean of every seed drawn: solid; where fewer have a value (a seed's training diverged
                # and stopped), dotted from the last step of all, as that mean's seeds changed, not the training
                full = g.count().to_numpy() == done["run_id"].nunique()
                ax.plot(steps, np.where(full, mean, np.nan), color=color, lw=1.6, label=label,
                        marker="o" if len(steps) == 1 else None, markersize=4)   # one epoch: a point, not nothing
                if not full.all():
                    tail = ~full | np.append(~full[1:], False)
                    ax.plot(steps, np.where(tail, mean, np.nan), color=color, lw=1.6, ls=":", gid=FEWER_SEEDS_GID)
                    fewer = True
                label = None
                ok = np.isfinite(std) & full
                if ok.any():
                    ax.fill_between(steps[ok], (mean - std)[ok], (mean + std)[ok], color=color, alpha=0.2, lw=0)
                for _, run in done[done["run_id"].isin(diverged)].groupby("run_id", sort=False):
                    last = run.sort_values("step").iloc[-1]   # its last epoch with a value
                    ax.scatter([last["step"]], [last["value"] * scale], s=36, marker="x", color=[color],
                               linewidths=1.4, zorder=4, gid=DIVERGED_GID)
                    ended = True
                marks = chosen[(chosen["arm"] == arm) & (chosen["data"] == col)]
                if not marks.empty:
                    ax.scatter(marks["step"].to_numpy(), marks["value"].to_numpy() * scale, s=28, facecolors="none",
                               edgecolors=[color], linewidths=1.2, zorder=3, gid=CHOSEN_EPOCH_GID)
            for _, run in sub[sub["status"] != S.STATUS_COMPLETED].groupby("run_id", sort=False):
                run = run.sort_values("step")
                ax.plot(run["step"].to_numpy(), run["value"].to_numpy() * scale, color=color, lw=1.0, ls="--",
                        label=label, marker="o" if len(run) == 1 else None, markersize=3)
                unfinished, label = True, None
        if not (hist["data"] == col).any():
            ax.text(0.5, 0.5, "no finite value:\ntraining diverged", ha="center", va="center", color="dimgray",
                    transform=ax.transAxes)
            ax.set_yticks([])
        ax.set_title(DATA_LABELS.get(col, col))
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if hist["step"].nunique() == 1:   # one epoch: the locator would put fractions around it
            ax.set_xticks(sorted(hist["step"].unique()))
        ax.set_ylabel(f"{metric}{' (%)' if scale == 100.0 else ''}")
        ax.grid(alpha=0.3)
    legend = {}
    for ax in axes:  # one entry per arm, whichever panel drew it: its mean's line where one has it
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if label not in legend or legend[label].get_linestyle() == "--":
                legend[label] = handle
    handles, labels = [legend[a] for a in rows if a in legend], [a for a in rows if a in legend]
    if no_value:   # in the legend still, saying why no line is theirs
        from matplotlib.lines import Line2D

        for arm in (a for a in rows if a in no_value):
            handles.append(Line2D([], [], ls="none"))
            labels.append(f"{arm}: no finite value\n(training diverged)")
    if not chosen.empty:
        from matplotlib.lines import Line2D

        handles.append(Line2D([], [], ls="none", marker="o", markersize=5, markerfacecolor="none",
                              markeredgecolor="0.3"))
        labels.append("a run's chosen\nepoch (sel_epoch)")
    if ended:
        from matplotlib.lines import Line2D

        handles.append(Line2D([], [], ls="none", marker="x", markersize=6, markeredgewidth=1.4, color="0.3"))
        labels.append("a run's last epoch\nwith a value: its\ntraining diverged")
    legend = fig.legend(handles, labels, loc="outside right center", fontsize=8, frameon=False)
    done = hist[hist["status"] == S.STATUS_COMPLETED]
    # a band needs two seeds of a line: with one (a one-seed sweep, a search's trials), "± std" named none drawn
    banded = not done.empty and done.groupby(["arm", "data"])["run_id"].nunique().max() > 1
    drawn = (f"no seed completed{yet}" if done.empty else "mean ± std over completed seeds" if banded else
             "each line one completed run (one seed: no std band)")
    title = (f"{runs.sweep}: {metric}, {drawn}"
             + ("; dotted: the mean of the seeds left, where fewer have a value" if fewer else "")
             + ("; dashed: a run not finished, its epochs so far" if unfinished else ""))
    width = 4.2 * len(columns) + 1.8   # wrapped to it (~0.07 in per character at 10 pt): a long one was clipped
    fig.suptitle(textwrap.fill(title, max(30, int(width / 0.075))), fontsize=10)
    _tall_enough_for_legend(fig, legend, above=0.2 * (textwrap.fill(title, max(30, int(width / 0.075))).count("\n") + 1))
    return save_figure(fig, path_stem)


CHOSEN_EPOCH_GID = "chosen_epoch"   # the gid of the chosen epochs' markers in a learning-curves figure
FEWER_SEEDS_GID = "fewer_seeds"     # ... of a mean's dotted part, over fewer seeds than the line's
DIVERGED_GID = "diverged"           # ... of the × at a diverged run's last epoch with a value


def _chosen_epoch_points(runs: SweepRuns, hist: pd.DataFrame) -> pd.DataFrame:
    """Each completed run's value at its sel_epoch: columns arm, data, step, value (none where a run has no
    sel_epoch, as one recorded before it was logged, or its history lacks that epoch). Without a validation
    split a run's sel_epoch is its last epoch (engine.History.summary), and is marked there."""
    done = hist[hist["status"] == S.STATUS_COMPLETED]
    if "sel_epoch" not in runs.children.columns or done.empty:
        return done.iloc[0:0][["arm", "data", "step", "value"]]
    sel = runs.children.set_index("run_id")["sel_epoch"]
    at = done[done["step"] == done["run_id"].map(sel)]
    return at.drop_duplicates("run_id", keep="last")[["arm", "data", "step", "value"]]


def _colors(n: int) -> list:
    """n distinct colours: tab10, tab20, else spread over a continuous map (tab20's cycle gave a search's
    trial k and trial k + 20 one colour, told apart nowhere in a legend)."""
    from matplotlib import colormaps

    if n > 20:
        return [colormaps["turbo"](i / (n - 1)) for i in range(n)]
    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i) for i in range(n)]


# --------------------------------------------------------------------------- ablation bars

BARS_MOST_HEIGHT = 12.0   # inches (1,800 pixels): a taller legend of the bars' rows is set in columns


def ablation_bars(table: ResultTable, path_stem: str | Path = "ablation_bars", metric: str | None = None) -> list[Path]:
    """Grouped bars of one of the table's metrics (the primary one by default): one group per data set, one
    bar per row.

    Error bars are ±1 std over seeds; dots are the per-seed values; incomplete cells are hatched;
    † marks cells tied with the column's best, as in the table; the paper's figure is a dashed line (over its
    arm's bar; a figure of no arm, across the column), drawn only under the metric it was reported as
    (`table.paper_metric`).
    A cell without a value says why in its slot (failed, running, not run), and every row is in the legend.
    """
    from matplotlib.patches import Patch

    metric = metric or table.metric
    means = {(r, c): table.cell(r, c, metric).summary.mean for r in table.rows for c in table.columns}
    if all(m is None for m in means.values()):
        raise FigureError("no cell of the table has a value yet: no run has completed with one (failed, pruned, "
                          "unfinished, or its training diverged)" if table.in_progress else
                          "no cell of the table has a value: no run completed with one (failed, pruned, "
                          "interrupted, or its training diverged)")
    width = 0.8 / len(table.rows)
    fig_width = max(4.0, 1.0 + 0.45 * len(table.rows) * len(table.columns)) + 2.0
    fig = _new_figure(fig_width, 3.6)
    ax = fig.subplots()
    colors = _colors(len(table.rows))
    lows = []
    empty: list[tuple[float, str]] = []   # (x, why) of the cells without a value
    for i, (row, color) in enumerate(zip(table.rows, colors)):
        for j, col in enumerate(table.columns):
            cell = table.cell(row, col, metric)
            x = j - 0.4 + width * (i + 0.5)
            if cell.summary.mean is None:
                state = cell.state
                empty.append((x, ("pending" if table.in_progress else "not run") if state == "missing" else state))
                continue
            mean, std = 100 * cell.summary.mean, 100 * (cell.summary.std or 0.0)
            incomplete = cell.state != "complete"
            # matplotlib draws hatching in the edge colour: an incomplete bar gets a white one to show it
            ax.bar(x, mean, width * 0.9, color=color,
                   edgecolor="black" if cell.best else "white" if incomplete else color,
                   linewidth=1.2 if cell.best else 0.6 if incomplete else 0.0, hatch="//" if incomplete else None,
                   yerr=std if cell.summary.std is not None else None, capsize=3, error_kw={"lw": 1})
            seeds = np.array([100 * v for v in cell.values.values()])
            ax.scatter(np.full(len(seeds), x), seeds, s=8, color="black", zorder=3)
            lows.append(min(mean - std, seeds.min()))
            if cell.tied:
                ax.text(x, mean + std, "†", ha="center", va="bottom", fontsize=9)
    # the paper's figures, each an arm's over that arm's bar (one arm's across the column read as every row's
    # target, while the table and the records give it to that row alone); a figure of no arm across the column
    drawn = []
    for paper in table.papers:
        own = paper.arm in table.rows
        for j, col in enumerate(table.columns):
            value = table.paper_value(paper, col, metric)
            if value is None:
                continue
            if own:   # the arm's bar: centred at j - 0.4 + width * (i + 0.5)
                lo = j - 0.4 + width * table.rows.index(paper.arm)
                hi = lo + width
            else:
                lo, hi = j - 0.45, j + 0.45
            label = None if drawn else (paper.label if len(table.papers) == 1 else "Paper (each arm's, as published)")
            ax.hlines(value, lo, hi, colors="black", linestyles="--", lw=1, label=label)
            drawn.append(value)
    lows += drawn   # a paper figure below the bars is on the axis too
    bottom = max(0.0, 5.0 * math.floor((min(lows) - 3.0) / 5.0))
    ax.set_ylim(bottom=bottom)
    for x, why in empty:
        ax.text(x, bottom, f" {why}", rotation=90, ha="center", va="bottom", fontsize=7, color="dimgray")
    ax.set_xticks(range(len(table.columns)), [table.column_labels[c] for c in table.columns])
    # every slot on the axis: autoscaling follows the bars alone, so the labels of cells without a bar after
    # the last one (a search's pruned trials, ranked last) fell outside it, over the legend
    ax.set_xlim(-0.5, len(table.columns) - 0.5)
    ax.set_ylabel(f"{METRIC_LABELS[metric][0]} (%)" + (f", axis from {bottom:g}" if bottom else ""))
    # wrapped to the axes (~0.07 in per character at 9 pt; the legend takes ~2 in): "best test-epoch accuracy, as
    # commonly reported (epoch chosen on the test set)" ran off the figure's left edge as "st-epoch accuracy, ..."
    ax.set_title(textwrap.fill(metric_description(metric), max(30, int((fig_width - 2.2) / 0.07))), fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    handles = [Patch(color=color, label=row) for row, color in zip(table.rows, colors)]
    handles += [h for h in ax.get_legend_handles_labels()[0]]   # the paper's line

    def legend_in(columns: int):
        return ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False,
                         ncols=columns)

    # the axes' title over it, the column labels under it; no taller than BARS_MOST_HEIGHT
    _tall_enough_for_legend(fig, legend_in(1), above=0.3, most=BARS_MOST_HEIGHT, in_columns=legend_in)
    return save_figure(fig, path_stem)


# --------------------------------------------------------------------------- attention maps

def _pick_model_runs(runs: SweepRuns, arms: Sequence[str], data: str) -> dict[str, str]:
    """arm -> run id of its completed child on `data` with the lowest seed, of those with a score where any has
    one: a run that diverged before any epoch was scored has NaN weights (and maps), while another seed of its
    arm may show what the arm learned."""
    ch = runs.children
    done = ch[(ch["status"] == S.STATUS_COMPLETED) & (ch["data"] == data)
              & ~ch["run_id"].isin(superseded_runs(ch))]   # the run the table counts
    unscored = (done["sel_test_acc"].isna() if "sel_test_acc" in done else pd.Series(False, index=done.index))
    done = done.assign(_unscored=unscored).sort_values(["_unscored", "seed"], kind="stable")
    return {arm: done[done["arm"] == arm]["run_id"].iloc[0] for arm in arms if (done["arm"] == arm).any()}


def model_dir(runs: SweepRuns, run_id: str) -> str:
    """The logged model a figure shows of a completed run: model_selected/, the weights of the epoch
    chosen on validation, which score the table's sel_* numbers; model/, the last epoch's, where the run
    kept no other: that epoch was the chosen one, or the run was logged by an earlier version or resumed
    from a checkpoint it saved."""
    try:
        listed = {a.path for a in runs.client.list_artifacts(run_id)}
    except Exception as err:  # the store's errors: loading the model will say what it can
        log.warning("the artifacts of run %s cannot be listed (%s)", run_id, err)
        return S.ARTIFACT_MODEL_DIR
    return S.ARTIFACT_SELECTED_MODEL_DIR if S.ARTIFACT_SELECTED_MODEL_DIR in listed else S.ARTIFACT_MODEL_DIR


def _shows_chosen_epoch(children: pd.DataFrame, run_id: str, folder: str) -> bool:
    """Whether the weights in `folder` of a completed run are those of its epoch chosen on validation:
    model_selected/, or model/ when that epoch is the last (no second copy is logged then)."""
    if folder == S.ARTIFACT_SELECTED_MODEL_DIR:
        return True
    row = children[children["run_id"] == run_id]
    if row.empty or not {"sel_epoch", "epochs_done"} <= set(row.columns):
        return False
    sel, last = row["sel_epoch"].iloc[0], row["epochs_done"].iloc[0]
    return bool(pd.notna(sel) and pd.notna(last) and int(sel) == int(last))


def load_model(runs: SweepRuns, run_id: str, dst: str | Path,
               overrides: Mapping[str, Any] | None = None, artifact_dir: str | None = None):
    """The trained model of a completed child run and its TrialConfig (overrides: flat config keys).
    artifact_dir: model_selected or model (default: `model_dir`'s choice)."""
    folder = artifact_dir or model_dir(runs, run_id)
    state, config = f"{folder}/{S.MODEL_STATE_FILE}", f"{folder}/{S.MODEL_CONFIG_FILE}"
    try:
        cfg_path = runs.download(run_id, config, dst)
        state_path = runs.download(run_id, state, dst)
    except Exception as err:  # MLflow raises several kinds for a missing artifact
        raise FigureError(f"run {run_id} has no model artifacts ({state}, {config}): {err}") from err
    import torch

    from transfer_core.config import from_flat
    from transfer_core.models import trained_model

    cfg = from_flat({**json.loads(Path(cfg_path).read_text()), **(overrides or {})})
    return trained_model(cfg.model, torch.load(state_path, map_location="cpu", weights_only=True)), cfg


def _recorded_attention(runs: SweepRuns, chosen: Mapping[str, str], folders: Mapping[str, str],
                        images_per_class: int):
    """(picks, faces, class names, {arm: maps or None}) from the attention records the trials logged
    beside the weights each arm shows (`folders`: arm -> model_selected or model; <folder>/attention.npz),
    or None when a chosen run has none (logged before records existed: said at info level), cannot be
    read (a warning: the figure then downloads every model), or they do not show the same faces as each
    other and as asked for."""
    records = {}
    with tempfile.TemporaryDirectory() as tmp:
        for arm, rid in chosen.items():
            path = f"{folders[arm]}/{S.MODEL_ATTENTION_FILE}"
            try:
                listed = {a.path for a in runs.client.list_artifacts(rid, folders[arm])}
            except Exception as err:  # the store's errors: the models' path will say what it can
                log.warning("attention grid: the artifacts of run %s cannot be listed (%s)", rid, err)
                return None
            if path not in listed:
                log.info("attention grid: run %s logged no %s: drawing from the models", rid, path)
                return None
            try:
                record = load_record(runs.download(rid, path, Path(tmp) / rid))
            except Exception as err:  # MLflow's several kinds for a failed download; load_record's ValueError
                log.warning("attention grid: %s of run %s cannot be used (%s): drawing from the models instead",
                            path, rid, err)
                return None
            records[arm] = record
    first = next(iter(records.values()))
    same = all(int(r["per_class"]) == images_per_class and np.array_equal(r["picks"], first["picks"])
               and np.array_equal(r["faces"], first["faces"]) for r in records.values())
    if not same:
        log.info("attention grid: the runs' records show other faces than asked for: drawing from the models")
        return None
    return (first["picks"].tolist(), first["faces"], [str(c) for c in first["class_names"]],
            {arm: r.get("maps") for arm, r in records.items()})


def _attention_from_models(runs: SweepRuns, chosen: Mapping[str, str], folders: Mapping[str, str],
                           arms: Sequence[str], data: str, images_per_class: int,
                           overrides: Mapping[str, Any] | None):
    """(picks, faces, class names, {arm: maps or None}, {arm: model}) from the logged models (`folders`:
    arm -> model_selected or model), on the test faces of the first model's data set (downloads every
    chosen model; needs torch)."""
    models: dict[str, Any] = {}
    cfgs: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for arm, rid in chosen.items():
            try:
                models[arm], cfgs[arm] = load_model(runs, rid, Path(tmp) / rid, overrides, folders[arm])
            except FigureError as err:
                log.warning("attention grid: %s", err)
    if not models:
        raise FigureError(f"no completed run of sweep {runs.sweep!r} on {data!r} logged its model")
    from transfer_core.data import load_splits
    from transfer_core.data.base import DataError

    first = cfgs[next(iter(cfgs))]
    try:
        splits = load_splits(first.data, first.model.image_size)
    except (DataError, OSError) as err:   # data moved or gone since the runs trained: the other figures stand
        raise FigureError(f"cannot load the test faces to draw on: {err} (the runs' data.root; "
                          "attention_grid(..., overrides={'data.root': NEW}) draws from where it is now)") from err
    picks = class_examples(splits.test.labels, splits.num_classes, images_per_class)
    have = [i for i in picks if i >= 0]
    if not have:
        raise FigureError(f"the test split of {first.data.dataset!r} is empty: no face to show")
    faces = splits.test.images[have]                                      # (n, S, S, 3) uint8
    maps = {arm: attention_maps(models[arm], cfgs[arm], faces) if arm in models and cfgs[arm].model.local_branch
            else None for arm in arms}
    return picks, faces, list(splits.class_names), maps, models


def attention_grid(runs: SweepRuns, path_stem: str | Path = "attention_grid", *, images_per_class: int = 1,
                   arms: Sequence[str] | None = None, data: str | None = None,
                   overrides: Mapping[str, Any] | None = None) -> list[Path]:
    """The paper's Fig. 3 for this sweep: fused LANet maps over test faces, classes × variants.

    For each arm, the completed child with the lowest seed on `data` (default: the sweep's first data
    set) provides the maps of the weights of its epoch chosen on validation (model_selected/; model/
    when that is the last epoch, or for a run that kept no other): the record its trial computed from them
    (attention.npz beside them: the first test face of each class). When a chosen run has no usable record,
    more faces per class are asked for, or `overrides` are given, the logged models are run instead on
    the test faces of the first one's data set (`overrides`, flat config keys such as
    {"data.root": ...}, repoint data that moved). A variant without a local branch has no LANet map
    and shows the face alone.
    """
    if images_per_class < 1:
        raise FigureError(f"images_per_class={images_per_class!r} is invalid: expected an integer >= 1")
    data = data or next((d for d in runs.parent.tags.get(S.TAG_DATA, "").split(",") if d), None) \
        or (runs.children["data"].iloc[0] if len(runs.children) else None)
    arms = _order(arms, runs.children["arm"].tolist())
    chosen = _pick_model_runs(runs, arms, data)
    if not chosen:
        yet = " yet" if runs.parent.status == S.STATUS_RUNNING else ""   # a stopped or finished sweep's will not
        raise FigureError(f"sweep {runs.sweep!r} has no completed run on {data!r}{yet}: no trained model to show")
    folders = {arm: model_dir(runs, rid) for arm, rid in chosen.items()}
    recorded = None if overrides else _recorded_attention(runs, chosen, folders, images_per_class)
    if recorded is not None:   # what the trials computed from the weights they logged: no model, no torch
        picks, faces, class_names, maps = recorded
        models: dict[str, Any] = dict.fromkeys(chosen)
    else:
        picks, faces, class_names, maps, models = _attention_from_models(runs, chosen, folders, arms, data,
                                                                         images_per_class, overrides)
    have = [i for i in picks if i >= 0]

    n_rows, n_cols = len(picks), len(arms)
    # which weights: those the table's sel_* numbers are of, or (runs of an earlier version) the last epoch's
    ch = runs.children
    seeds = sorted(set(ch[ch["run_id"].isin(list(chosen.values()))]["seed"].astype(int)))
    chosen_epoch = {rid: _shows_chosen_epoch(ch, rid, folders[arm]) for arm, rid in chosen.items()}
    weights = ("weights of the epoch chosen on validation" if all(chosen_epoch.values())
               else "weights after the last epoch" if not any(chosen_epoch.values())
               else "weights of the epoch chosen on validation (the last epoch's where a run kept no other)")
    side, left, right, bottom = 1.5, 0.35, 1.0, 0.1                   # inches; fixed layout (a grid of many
    width = left + side * n_cols + right                               # axes is slow to constrain)
    # wrapped to the figure's width (~0.07 in per character at 9 pt): one variant's grid is under 3 in wide
    title = "\n".join(textwrap.fill(line, max(24, int(width / 0.07))) for line in (
        f"{runs.sweep}: attention on {DATA_LABELS.get(data, data)} test faces",
        f"{weights}, seed {', '.join(map(str, seeds))}"))
    top = 0.43 + 0.16 * (title.count("\n") + 1)
    height = top + side * n_rows + bottom
    fig = _new_figure(width, height, constrained=False)
    axes = fig.subplots(n_rows, n_cols, squeeze=False, gridspec_kw={
        "left": left / width, "right": 1 - right / width, "top": 1 - top / height, "bottom": bottom / height,
        "wspace": 0.05, "hspace": 0.05})
    image = None
    for r, idx in enumerate(picks):
        k = r // images_per_class
        for c, arm in enumerate(arms):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(arm, fontsize=8)
            if c == 0:
                ax.set_ylabel(class_names[k], fontsize=8)
            if idx < 0:
                ax.text(0.5, 0.5, "no test image", ha="center", va="center", fontsize=7, transform=ax.transAxes)
                continue
            j = have.index(idx)
            ax.imshow(faces[j])
            if maps.get(arm) is not None and np.isfinite(maps[arm][j]).all():
                image = ax.imshow(maps[arm][j], cmap="jet", alpha=0.45, vmin=0.0, vmax=1.0)
            else:   # NaN weights (a training that diverged) map to NaN, which imshow leaves out: the bare face
                why = ("no map (diverged)" if maps.get(arm) is not None else
                       "no model" if arm not in models else "no LANet")
                ax.text(0.5, 0.06, why, ha="center", va="bottom", fontsize=7, color="white",
                        transform=ax.transAxes, bbox={"facecolor": "black", "alpha": 0.6, "lw": 0})
    if image is not None:
        cax = fig.add_axes((1 - (right - 0.15) / width, 0.25, 0.12 / width, 0.5))
        # the bar shows the colour map itself, not its 45 % blend with the faces
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize

        fig.colorbar(ScalarMappable(norm=Normalize(0.0, 1.0), cmap="jet"), cax=cax, label="fused LANet map M")
    fig.suptitle(title, fontsize=9)
    return save_figure(fig, path_stem)


# --------------------------------------------------------------------------- whole sweep

def plot_sweep(runs: SweepRuns, out_dir: str | Path, *, table: ResultTable | None = None,
               curve_metrics: Sequence[str] = ("val_acc", "test_acc"), attention: bool = True,
               images_per_class: int = 1, rows: Sequence[str] | None = None,
               overrides: Mapping[str, Any] | None = None) -> list[Path]:
    """Every figure the recorded runs allow, in `out_dir`; what cannot be drawn yet is logged and skipped. They replace
    the folder's figures together, or, where one cannot be written (a full disk), none does (`all_or_none`)."""
    out = Path(out_dir)
    rows = rows or (table.rows if table is not None else None)
    paths: list[Path] = []
    jobs = [(f"learning_curves_{m}", lambda m=m: learning_curves(runs, m, out / f"learning_curves_{m}",
                                                                 rows=rows)) for m in curve_metrics]

    def bars() -> list[Path]:
        try:
            t = table if table is not None else table_from_runs(runs, rows=rows)
        except TableError as err:
            raise FigureError(str(err)) from err
        return ablation_bars(t, out / "ablation_bars")

    jobs.append(("ablation_bars", bars))
    if table is not None and table.papers and table.paper_metric not in ("", table.metric) \
            and table.paper_metric in table.metrics:
        # the paper's figures are of another metric than the first (best_test_acc: most FER papers report
        # the best test epoch): bars of that metric beside them, rather than no paper line at all
        jobs.append((f"ablation_bars_{table.paper_metric}",
                     lambda: ablation_bars(table, out / f"ablation_bars_{table.paper_metric}", table.paper_metric)))
    if attention:
        jobs.append(("attention_grid", lambda: attention_grid(runs, out / "attention_grid", arms=rows,
                                                              images_per_class=images_per_class,
                                                              overrides=overrides)))
    with all_or_none():
        for name, job in jobs:
            try:
                paths += job()
            except FigureError as err:
                log.warning("figure %s skipped: %s", name, err)
    return paths


FIGURES_RECORD = ".sweeps-figures.json"   # in a figures folder: the invocation its figures are of, and their files


def replace_figures_of_another_invocation(out: Path, parent_run_id: str, paths: list[Path]) -> list[Path]:
    """Remove the files `sweeps plot` drew into `out` for another invocation that this one did not draw over
    (a figure it skipped: no attention grid yet), and record this one's; return those removed. Every
    invocation of a sweep plots into figures/<sweep> by default, and a folder holding one invocation's curves
    beside another's attention grid reads as one. Only files a record names are removed, never others.

    The record is read, changed and written whole under a lock among this host's processes (`_record_held`):
    two `sweeps plot` at once each read it before the other wrote it, and the last to write lost the files the
    other had added."""
    record = out / FIGURES_RECORD
    with _record_held(record):
        earlier = _read_record(record)
        drawn = {p.name for p in paths}
        kept = [name for name in earlier.get("files", []) if isinstance(name, str) and name not in drawn]
        removed = []
        if earlier.get("parent_run_id") not in (None, parent_run_id):
            for name in kept:
                stale = out / Path(name).name   # a bare file name: never outside the folder
                if stale.is_file():
                    stale.unlink()
                    removed.append(stale)
            kept = []
        try:
            write_whole(record, json.dumps({"parent_run_id": parent_run_id, "files": sorted(drawn | set(kept))}))
        except OSError:   # the figures are drawn; the record only spares a later plot this doubt
            pass
    return removed


def _read_record(record: Path) -> dict:
    """A figures folder's record as written (empty where missing or unreadable)."""
    try:
        found = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


@contextlib.contextmanager
def _record_held(record: Path) -> Iterator[None]:
    """An exclusive lock, among this host's processes, on reading and rewriting the figures folder's `record`: a
    file in this user's folder of host locks named by a hash of the record's real path (removed as it lets go).
    Where it cannot be taken (no such folder of this user's alone), the record is rewritten unguarded, as before.
    Another host plotting into the same shared folder at once is not held off."""
    import hashlib

    key = hashlib.sha256(os.path.realpath(record).encode()).hexdigest()[:16]
    try:
        folder = host_locks.lock_folder()
    except OSError as exc:
        log.debug("lock on %s not taken (%s)", record, exc)
        yield
        return
    with host_locks.host_lock(folder / f"figures-{key}.lock", f"rewriting {record}"):
        yield


def log_figures(runs: SweepRuns, paths: Sequence[str | Path], artifact_path: str = "figures") -> None:
    """Log figure files as artifacts of the invocation's parent run (under figures/)."""
    for p in paths:
        runs.client.log_artifact(runs.parent.run_id, str(p), artifact_path)
