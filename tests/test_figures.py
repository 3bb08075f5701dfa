"""sweeps.figures: each figure is produced as PNG and PDF, is not blank, and is logged to the parent run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from matplotlib.image import imread
from test_tables import (SWEEP, create_store, layout, record_sweep, recorded,  # noqa: F401  (fixtures)
                         template_db)

from sweeps import figures as FG
from sweeps import tables as T
from transfer_core.attention import load_record, save_record


def assert_not_blank(paths: list[Path]) -> None:
    assert sorted(p.suffix for p in paths) == [".pdf", ".png"]
    png = next(p for p in paths if p.suffix == ".png")
    pdf = next(p for p in paths if p.suffix == ".pdf")
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 1000
    pixels = imread(png)[..., :3]                                   # (H, W, 3) floats in [0, 1]
    assert pixels.std() > 0.05, "the image is (nearly) one colour"
    assert (pixels.min(axis=-1) < 0.9).mean() > 0.02, "almost every pixel is white"


@pytest.fixture(scope="module")
def runs(recorded):  # noqa: F811
    return T.load_sweep_runs(SWEEP, tracking_uri=recorded)


def test_learning_curves_png_and_pdf_not_blank(runs, tmp_path):
    assert_not_blank(FG.learning_curves(runs, "val_acc", tmp_path / "curves"))


def test_a_one_epoch_learning_curve_is_drawn_as_a_point(runs, tmp_path, monkeypatch):
    # a line through one point draws nothing: a 1-epoch sweep's figure was an empty frame with a legend
    import pandas as pd

    figures = []
    monkeypatch.setattr(FG, "save_figure", lambda fig, stem: figures.append(fig) or [])
    one_epoch = pd.DataFrame({"run_id": ["r0", "r1"], "arm": ["A", "A"], "data": ["d", "d"], "seed": [0, 1],
                              "step": [1, 1],
                              "value": [0.5, 0.6], "status": ["completed", "completed"]})
    monkeypatch.setattr(type(runs), "history", lambda self, metric: one_epoch)
    FG.learning_curves(runs, "val_acc", tmp_path / "c")
    line, = figures[0].axes[0].get_lines()
    assert line.get_marker() == "o" and list(line.get_ydata()) == [pytest.approx(55.0)]
    assert list(figures[0].axes[0].get_xticks()) == [1], "no fractional epochs around the one"


def test_learning_curves_average_completed_seeds_and_draw_an_unfinished_run_dashed_on_its_own(
        runs, tmp_path, monkeypatch):
    # a running seed averaged in made the mean jump at its last epoch (its seeds changed there, not the training)
    import pandas as pd

    figures = []
    monkeypatch.setattr(FG, "save_figure", lambda fig, stem: figures.append(fig) or [])
    hist = pd.DataFrame({"run_id": ["r0"] * 3 + ["r1"] * 2, "arm": ["A"] * 5, "data": ["d"] * 5,
                         "seed": [0, 0, 0, 1, 1], "step": [1, 2, 3, 1, 2], "value": [0.6, 0.7, 0.8, 0.2, 0.3],
                         "status": ["completed"] * 3 + ["running"] * 2})
    monkeypatch.setattr(type(runs), "history", lambda self, metric: hist)
    FG.learning_curves(runs, "val_acc", tmp_path / "c")
    mean, unfinished = figures[0].axes[0].get_lines()
    assert list(mean.get_ydata()) == pytest.approx([60.0, 70.0, 80.0]) and mean.get_linestyle() == "-"
    assert list(unfinished.get_ydata()) == pytest.approx([20.0, 30.0]) and unfinished.get_linestyle() == "--"
    assert [t.get_text() for t in figures[0].legends[0].get_texts()] == ["A"]
    assert "dashed: a run not finished" in figures[0].get_suptitle().replace("\n", " ")


def test_a_mean_curve_goes_dotted_where_a_seed_diverged_and_a_cross_marks_that_seeds_last_value(
        runs, tmp_path, monkeypatch):
    # seed 2 diverged at epoch 3 (logged NaN) and stopped: the mean of seeds 0-2, then of 0-1, jumped at epoch 3,
    # a change of seeds drawn as if the arm's training had changed
    import numpy as np
    import pandas as pd

    figures = []
    monkeypatch.setattr(FG, "save_figure", lambda fig, stem: figures.append(fig) or [])
    nan = float("nan")
    hist = pd.DataFrame({"run_id": ["r0"] * 4 + ["r1"] * 4 + ["r2"] * 3, "arm": ["A"] * 11, "data": ["d"] * 11,
                         "seed": [0] * 4 + [1] * 4 + [2] * 3, "step": [1, 2, 3, 4] * 2 + [1, 2, 3],
                         "value": [0.5, 0.6, 0.7, 0.8, 0.5, 0.6, 0.7, 0.8, 0.2, 0.3, nan],
                         "status": ["completed"] * 11})
    monkeypatch.setattr(type(runs), "history", lambda self, metric: hist)
    FG.learning_curves(runs, "val_acc", tmp_path / "c")
    ax = figures[0].axes[0]
    solid, dotted = ax.get_lines()
    assert np.allclose(solid.get_ydata(), [40.0, 50.0, nan, nan], equal_nan=True) and solid.get_linestyle() == "-"
    assert np.allclose(dotted.get_ydata(), [nan, 50.0, 70.0, 80.0], equal_nan=True) and dotted.get_linestyle() == ":"
    crosses = [c for c in ax.collections if c.get_gid() == FG.DIVERGED_GID]
    assert len(crosses) == 1 and crosses[0].get_offsets().tolist() == [[2.0, pytest.approx(30.0)]]
    band, = [c for c in ax.collections if c.get_gid() is None]   # over the epochs of every seed alone
    assert band.get_paths()[0].vertices[:, 0].max() == 2.0
    assert "dotted: the mean of the seeds left, where fewer have a value" in figures[0].get_suptitle().replace("\n", " ")
    assert figures[0].legends[0].get_texts()[-1].get_text() == "a run's last epoch\nwith a value: its\ntraining diverged"
    healthy = hist.assign(value=hist["value"].fillna(0.4))   # seed 2 trained 3 epochs of 4 but diverged in none
    monkeypatch.setattr(type(runs), "history", lambda self, metric: healthy)
    FG.learning_curves(runs, "val_acc", tmp_path / "c")
    assert not [c for c in figures[-1].axes[0].collections if c.get_gid() == FG.DIVERGED_GID]


def test_a_seed_recorded_diverged_without_a_nan_in_the_metric_drawn_is_marked_diverged_too(runs, tmp_path, monkeypatch):
    # a training whose loss went NaN while its evaluation losses stayed finite left val_loss (or lr) without a NaN:
    # its seed's curve ended early, unmarked, and the mean jumped there as if the arm's training had changed
    import pandas as pd

    figures = []
    monkeypatch.setattr(FG, "save_figure", lambda fig, stem: figures.append(fig) or [])
    hist = pd.DataFrame({"run_id": ["r0"] * 3 + ["r1"] * 2, "arm": ["A"] * 5, "data": ["d"] * 5,
                         "seed": [0, 0, 0, 1, 1], "step": [1, 2, 3, 1, 2], "value": [1.5, 1.2, 1.0, 1.7, 1.4],
                         "status": ["completed"] * 5})
    children = pd.DataFrame({"run_id": ["r0", "r1"], "arm": ["A", "A"], "data": ["d", "d"], "seed": [0, 1],
                             "status": ["completed"] * 2, "start_time": [0, 1], "sel_epoch": [3.0, 1.0],
                             "diverged_epoch": [float("nan"), 2.0]})
    monkeypatch.setattr(type(runs), "history", lambda self, metric: hist)
    monkeypatch.setattr(runs, "children", children)
    FG.learning_curves(runs, "val_loss", tmp_path / "c")
    ax = figures[0].axes[0]
    crosses = [c for c in ax.collections if c.get_gid() == FG.DIVERGED_GID]
    assert len(crosses) == 1 and crosses[0].get_offsets().tolist() == [[2.0, pytest.approx(1.4)]]
    assert [line.get_linestyle() for line in ax.get_lines()] == ["-", ":"], "the mean of the seeds left: dotted"
    # a loss gone inf reads back from an SQL store as the largest float: no value, not a point at 1.8e308
    import sys

    gone_inf = pd.concat([hist, hist.iloc[[-1]].assign(step=3, value=sys.float_info.max)], ignore_index=True)
    monkeypatch.setattr(type(runs), "history", lambda self, metric: gone_inf)
    monkeypatch.setattr(runs, "children", children.assign(diverged_epoch=float("nan")))
    FG.learning_curves(runs, "train_loss", tmp_path / "c")
    ax = figures[-1].axes[0]
    crosses = [c for c in ax.collections if c.get_gid() == FG.DIVERGED_GID]
    assert len(crosses) == 1 and crosses[0].get_offsets().tolist() == [[2.0, pytest.approx(1.4)]]
    assert max(np.nanmax(line.get_ydata()) for line in ax.get_lines()) < 2


def test_learning_curves_title_of_one_column_with_unfinished_runs_fits_the_figure_and_says_what_is_drawn(
        runs, tmp_path, monkeypatch):
    # it ran off both sides ("…tion: val_acc, mean ± std over completed seeds; dashed: … its epoc…"), and
    # spoke of completed seeds where none was drawn
    import pandas as pd

    figures = []
    monkeypatch.setattr(FG, "save_figure", lambda fig, stem: figures.append(fig) or [])
    hist = pd.DataFrame({"run_id": ["r1"] * 2, "arm": ["A"] * 2, "data": ["d"] * 2, "seed": [1, 1],
                         "step": [1, 2], "value": [0.2, 0.3], "status": ["running"] * 2})
    monkeypatch.setattr(type(runs), "history", lambda self, metric: hist)
    FG.learning_curves(runs, "val_acc", tmp_path / "c")
    fig = figures[0]
    assert fig.get_suptitle().replace("\n", " ") == (f"{runs.sweep}: val_acc, no seed completed yet; dashed: a run "
                                                     "not finished, its epochs so far")
    fig.canvas.draw()
    title = fig._suptitle.get_window_extent(fig.canvas.get_renderer())
    assert 0 <= title.x0 and title.x1 <= fig.bbox.width, (title, fig.bbox)


def test_learning_curves_of_one_seed_per_line_do_not_claim_a_std_band(runs, tmp_path, monkeypatch):
    # a one-seed sweep (or a search: a trial per line) was titled "mean ± std over completed seeds", no band drawn
    import pandas as pd

    figures = []
    monkeypatch.setattr(FG, "save_figure", lambda fig, stem: figures.append(fig) or [])
    one = pd.DataFrame({"run_id": ["a", "a", "b", "b"], "arm": ["A", "A", "B", "B"], "data": ["d"] * 4,
                        "seed": [0] * 4, "step": [1, 2, 1, 2], "value": [0.5, 0.6, 0.4, 0.5],
                        "status": ["completed"] * 4})
    two = pd.concat([one, one.assign(run_id=["a1", "a1", "b1", "b1"], seed=1)], ignore_index=True)
    for hist, expected in ((one, "each line one completed run (one seed: no std band)"),
                           (two, "mean ± std over completed seeds")):
        monkeypatch.setattr(type(runs), "history", lambda self, metric, hist=hist: hist)
        FG.learning_curves(runs, "val_acc", tmp_path / "c")
        assert figures[-1].get_suptitle().replace("\n", " ") == f"{runs.sweep}: val_acc, {expected}"
        assert bool(figures[-1].axes[0].collections) == (hist is two), "a band only where two seeds are"


def test_learning_curves_mark_each_completed_seeds_chosen_epoch_at_its_own_value(runs, tmp_path, monkeypatch):
    # the tables' sel_* numbers come from each seed's sel_epoch, which the mean curve does not show
    import dataclasses

    import pandas as pd

    figures = []
    monkeypatch.setattr(FG, "save_figure", lambda fig, stem: figures.append(fig) or [])
    hist = pd.DataFrame({"run_id": ["r0"] * 3 + ["r1"] * 3 + ["r2"] * 3 + ["r3"] * 2, "arm": ["A"] * 11,
                         "data": ["d"] * 11, "seed": [0] * 3 + [1] * 3 + [2] * 3 + [3] * 2,
                         "step": [1, 2, 3] * 3 + [1, 2],
                         "value": [0.5, 0.7, 0.6, 0.4, 0.5, 0.8, 0.3, 0.4, 0.5, 0.1, 0.2],
                         "status": ["completed"] * 9 + ["running"] * 2})
    children = pd.DataFrame({"run_id": ["r0", "r1", "r2", "r3"], "sel_epoch": [2.0, 3.0, float("nan"), 1.0],
                             "arm": ["A"] * 4, "data": ["d"] * 4, "seed": [0, 1, 2, 3],
                             "status": ["completed"] * 3 + ["running"], "start_time": [1, 2, 3, 4]})
    marked = dataclasses.replace(runs, children=children)
    monkeypatch.setattr(type(runs), "history", lambda self, metric: hist)
    FG.learning_curves(marked, "val_acc", tmp_path / "c")
    marks, = [c for c in figures[0].axes[0].collections if c.get_gid() == FG.CHOSEN_EPOCH_GID]
    assert marks.get_offsets().tolist() == [[2.0, pytest.approx(70.0)], [3.0, pytest.approx(80.0)]], \
        "r0 at epoch 2, r1 at 3; none for r2 (no sel_epoch) nor for the running r3"
    assert [t.get_text() for t in figures[0].legends[0].get_texts()] == ["A", "a run's chosen\nepoch (sel_epoch)"]


def test_learning_curves_leave_out_a_run_the_table_leaves_out_and_order_panels_as_its_columns(
        runs, tmp_path, monkeypatch):
    # a seed's earlier completed run, superseded by a later one, was averaged in (4 runs for 3 seeds); and
    # the panels came in the order runs started, not the table's
    import dataclasses

    import pandas as pd

    figures = []
    monkeypatch.setattr(FG, "save_figure", lambda fig, stem: figures.append(fig) or [])
    hist = pd.DataFrame({"run_id": ["old", "new", "b"], "arm": ["A"] * 3, "data": ["rafdb", "rafdb", "affectnet"],
                         "seed": [0, 0, 0], "step": [1, 1, 1], "value": [0.3, 0.8, 0.5], "status": ["completed"] * 3})
    children = pd.DataFrame({"run_id": ["b", "old", "new"], "arm": ["A"] * 3, "data": ["affectnet", "rafdb", "rafdb"],
                             "seed": [0, 0, 0], "status": ["completed"] * 3, "start_time": [1, 2, 3],
                             "sel_epoch": [1.0] * 3})
    parent = dataclasses.replace(runs.parent, tags={**runs.parent.tags, "sweeps.data": "rafdb,affectnet"})
    monkeypatch.setattr(type(runs), "history", lambda self, metric: hist)
    FG.learning_curves(dataclasses.replace(runs, children=children, parent=parent), "val_acc", tmp_path / "c")
    rafdb, affectnet = figures[0].axes
    assert rafdb.get_title() == "RAF-DB" and affectnet.get_title() == "AffectNet"
    assert list(rafdb.get_lines()[0].get_ydata()) == [pytest.approx(80.0)], "the superseded run is left out"


def test_learning_curves_draw_no_diverged_nan_and_say_which_arms_and_panels_have_no_finite_value(
        runs, tmp_path, monkeypatch):
    # a diverged epoch is logged as NaN: arm B's lone NaN epoch gave B a legend line drawn nowhere, and a panel
    # of NaN alone was an empty frame around 0 % with a chosen-epoch mark in the legend and none on the axes
    import dataclasses

    import pandas as pd

    figures = []
    monkeypatch.setattr(FG, "save_figure", lambda fig, stem: figures.append(fig) or [])
    nan = float("nan")
    hist = pd.DataFrame({"run_id": ["a", "a", "b", "e"], "arm": ["A", "A", "B", "A"], "data": ["d", "d", "d", "e"],
                         "seed": [0] * 4, "step": [1, 2, 1, 1], "value": [0.5, 0.6, nan, nan],
                         "status": ["completed"] * 4})
    children = pd.DataFrame({"run_id": ["a", "b", "e"], "arm": ["A", "B", "A"], "data": ["d", "d", "e"],
                             "seed": [0] * 3, "status": ["completed"] * 3, "start_time": [1, 2, 3],
                             "sel_epoch": [2.0, 1.0, 1.0]})
    parent = dataclasses.replace(runs.parent, tags={**runs.parent.tags, "sweeps.data": "d,e"})
    diverging = dataclasses.replace(runs, children=children, parent=parent)
    monkeypatch.setattr(type(runs), "history", lambda self, metric: hist)
    FG.learning_curves(diverging, "val_acc", tmp_path / "c")
    d, e = figures[0].axes
    assert [list(line.get_ydata()) for line in d.get_lines()] == [pytest.approx([50.0, 60.0])]
    assert not e.get_lines() and [t.get_text() for t in e.texts] == ["no finite value:\ntraining diverged"]
    assert [t.get_text() for t in figures[0].legends[0].get_texts()] == [
        "A", "B: no finite value\n(training diverged)", "a run's chosen\nepoch (sel_epoch)"]
    monkeypatch.setattr(type(runs), "history", lambda self, metric: hist[hist["value"].isna()])
    with pytest.raises(FG.FigureError, match="has a finite 'val_acc': the training of every run recorded diverged"):
        FG.learning_curves(diverging, "val_acc", tmp_path / "c")


def test_the_attention_grid_shows_the_run_the_table_counts_not_a_superseded_one(runs):
    import dataclasses

    import pandas as pd

    children = pd.DataFrame({"run_id": ["old", "new"], "arm": ["A", "A"], "data": ["d", "d"], "seed": [0, 0],
                             "status": ["completed"] * 2, "start_time": [1, 2]})
    assert FG._pick_model_runs(dataclasses.replace(runs, children=children), ["A"], "d") == {"A": "new"}


@pytest.mark.parametrize("status", ["running", "interrupted", "completed"])
def test_figures_without_a_value_say_yet_only_while_the_sweep_runs(runs, tmp_path, status):
    import dataclasses

    from test_tables import frame

    yet = " yet" if status == "running" else ""
    stopped = dataclasses.replace(runs, parent=dataclasses.replace(runs.parent, status=status))
    with pytest.raises(FG.FigureError, match=f"has recorded 'lr'{yet}$"):
        FG.learning_curves(stopped, "lr", tmp_path / "curves")
    table = T.build_table(frame({("A", "d"): {0: "failed"}}), rows=["A"], in_progress=status == "running")
    with pytest.raises(FG.FigureError, match=f"^no cell of the table has a value{yet}: no run"):
        FG.ablation_bars(table, tmp_path / "bars")
    with pytest.raises(FG.FigureError, match=f"has no completed run on 'elsewhere'{yet}: no trained model"):
        FG.attention_grid(stopped, tmp_path / "attention", data="elsewhere")


def test_learning_curves_unknown_metric_lists_valid(runs, tmp_path):
    with pytest.raises(FG.FigureError, match="unknown per-epoch metric 'sel_test_acc'; valid: train_loss"):
        FG.learning_curves(runs, "sel_test_acc", tmp_path / "curves")


def test_learning_curves_without_history(runs, tmp_path):
    with pytest.raises(FG.FigureError, match="has recorded 'lr' yet"):
        FG.learning_curves(runs, "lr", tmp_path / "curves")


def test_ablation_bars_png_and_pdf_not_blank(runs, tmp_path):
    table = T.table_from_runs(runs, **layout())
    assert_not_blank(FG.ablation_bars(table, tmp_path / "bars"))


def test_ablation_bars_say_why_a_cell_has_no_bar_and_keep_every_row_in_the_legend(monkeypatch):
    # a failed arm used to vanish from the chart and its legend without a word
    from test_tables import frame

    figures = []
    monkeypatch.setattr(FG, "save_figure", lambda fig, stem: figures.append(fig) or [])
    table = T.build_table(frame({("A", "d"): {0: 0.8, 1: 0.82}, ("Broken", "d"): {0: "failed", 1: "failed"}}),
                          rows=["A", "Broken", "Later"], seeds=[0, 1])
    FG.ablation_bars(table)
    ax, = figures[0].axes
    assert [t.get_text().strip() for t in ax.texts] == ["failed", "not run"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["A", "Broken", "Later"]


def test_ablation_bars_show_incomplete_cells_hatched_the_paper_line_on_the_axis_and_pending_cells(monkeypatch):
    # the hatching was drawn in the bar's own colour (invisible); a paper figure below the bars fell off the
    # axis; a cell not yet begun in a running sweep read "not run" where the table says "pending"
    from test_tables import frame

    figures = []
    monkeypatch.setattr(FG, "save_figure", lambda fig, stem: figures.append(fig) or [])
    cells = {("A", "d"): {0: 0.90, 1: 0.91, 2: 0.92}, ("B", "d"): {0: 0.95, 1: "running", 2: "running"}}
    table = T.build_table(frame(cells), rows=["A", "B", "C"], seeds=[0, 1, 2], in_progress=True,
                          paper={"label": "Paper (A)", "values": {"d": 80.0}})
    FG.ablation_bars(table)
    ax, = figures[0].axes
    hatched = [p for p in ax.patches if p.get_hatch()]
    assert len(hatched) == 1 and tuple(hatched[0].get_edgecolor()) != tuple(hatched[0].get_facecolor())
    assert ax.get_ylim()[0] <= 80.0 and [line.get_label() for line in ax.collections if
                                          line.get_label() == "Paper (A)"] == ["Paper (A)"]
    assert [t.get_text().strip() for t in ax.texts] == ["pending"]


def test_the_papers_figures_of_several_arms_are_each_drawn_over_that_arms_bar(monkeypatch):
    from test_tables import frame

    figures = []
    monkeypatch.setattr(FG, "save_figure", lambda fig, stem: figures.append(fig) or [])
    table = T.build_table(frame({("A", "d"): {0: 0.90, 1: 0.92}, ("B", "d"): {0: 0.80, 1: 0.84}}), rows=["A", "B"],
                          seeds=[0, 1], paper=[{"label": "Paper (A)", "values": {"d": 93.5}, "arm": "A"},
                                               {"label": "Paper (B)", "values": {"d": 81.0}, "arm": "B"}])
    FG.ablation_bars(table)
    ax, = figures[0].axes
    bars = {round(p.get_height(), 6): (p.get_x(), p.get_x() + p.get_width()) for p in ax.patches}
    lines = [segment for c in ax.collections if hasattr(c, "get_segments")   # hlines, not the seeds' dots
             for segment in c.get_segments() if segment[0][1] == segment[1][1] and segment[0][1] in (93.5, 81.0)]
    spans = {y0: (x0, x1) for (x0, y0), (x1, _) in lines}
    assert set(spans) == {93.5, 81.0}
    for value, mean in ((93.5, 91.0), (81.0, 82.0)):   # each line within its own arm's bar's slot, not the column
        bar_lo, bar_hi = bars[mean]
        assert spans[value][0] <= bar_lo and bar_hi <= spans[value][1] and spans[value][1] - spans[value][0] < 0.45
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["A", "B", "Paper (each arm's, as published)"]


def test_one_arms_paper_figure_is_drawn_over_that_arms_bar_and_a_figure_of_no_arm_across_the_column(monkeypatch):
    # "Paper (B)" ran across A's bar too, read as A's target, while the table and the records give it to B alone
    from test_tables import frame

    figures = []
    monkeypatch.setattr(FG, "save_figure", lambda fig, stem: figures.append(fig) or [])
    cells = frame({("A", "d"): {0: 0.90, 1: 0.92}, ("B", "d"): {0: 0.80, 1: 0.84}})

    def span(paper):
        FG.ablation_bars(T.build_table(cells, rows=["A", "B"], seeds=[0, 1], paper=paper))
        ax = figures[-1].axes[0]
        (x0, _), (x1, _) = next(c for c in ax.collections if c.get_label() == paper["label"]).get_segments()[0]
        bars = {round(p.get_height(), 6): (p.get_x(), p.get_x() + p.get_width()) for p in ax.patches}
        return (x0, x1), bars[91.0], bars[82.0]

    (lo, hi), a, b = span({"label": "Paper (B)", "values": {"d": 81.0}, "arm": "B"})
    assert lo <= b[0] and b[1] <= hi and a[1] < lo, "over B's bar alone"
    assert [t.get_text() for t in figures[-1].axes[0].get_legend().get_texts()] == ["A", "B", "Paper (B)"]
    (lo, hi), a, b = span({"label": "TransFER [paper]", "values": {"d": 81.0}})
    assert lo <= a[0] and b[1] <= hi, "a figure of no arm: across the column"


def test_a_paper_figure_of_another_metric_than_the_first_gets_bars_of_its_own_metric(monkeypatch, runs, tmp_path):
    # `paper_metric: best_test_acc` put the paper's figure under that column of the table, and in no figure:
    # the bars are of sel_test_acc, which the paper's number is not
    from test_tables import frame

    drawn = {}
    monkeypatch.setattr(FG, "save_figure", lambda fig, stem: drawn.update({Path(stem).name: fig}) or [Path(stem)])
    table = T.build_table(frame({("A", "d"): {0: 0.90, 1: 0.92}, ("B", "d"): {0: 0.80, 1: 0.84}}), rows=["A", "B"],
                          seeds=[0, 1], extra_metrics=["best_test_acc"],
                          paper={"label": "Paper (A)", "values": {"d": 93.5}, "metric": "best_test_acc"})
    FG.plot_sweep(runs, tmp_path, table=table, curve_metrics=(), attention=False)
    assert sorted(drawn) == ["ablation_bars", "ablation_bars_best_test_acc"]

    def paper_lines(name):
        return [c for c in drawn[name].axes[0].collections if c.get_label() == "Paper (A)"]

    assert paper_lines("ablation_bars") == [] and len(paper_lines("ablation_bars_best_test_acc")) == 1
    bars = [p.get_height() for p in drawn["ablation_bars_best_test_acc"].axes[0].patches]
    assert bars == pytest.approx([92.0, 83.0]), "the means of best_test_acc (frame: sel_test_acc + 0.01)"
    assert drawn["ablation_bars_best_test_acc"].axes[0].get_title().replace("\n", " ") == \
        T.metric_description("best_test_acc")


def test_the_bars_title_fits_the_figure_however_long_the_metrics_description(monkeypatch):
    # "best test-epoch accuracy, as commonly reported (epoch chosen on the test set)" over a two-row table ran
    # off the figure's left edge: "st-epoch accuracy, as commonly reported ..."
    from test_tables import frame

    figures = []
    monkeypatch.setattr(FG, "save_figure", lambda fig, stem: figures.append(fig) or [])
    for rows, columns in ((["A", "B"], ["d"]), (["A", "B", "C"], ["d", "e"])):
        cells = {(r, c): {0: 0.8, 1: 0.82} for r in rows for c in columns}
        papers = [{"label": f"Paper ({r})", "values": {"d": 80.0}, "arm": r} for r in rows[:2]]   # a long legend
        FG.ablation_bars(T.build_table(frame(cells), rows=rows, metric="best_test_acc", paper=papers))
        fig = figures[-1]
        fig.canvas.draw()
        title = fig.axes[0].title.get_window_extent(fig.canvas.get_renderer())
        assert 0 <= title.x0 and title.x1 <= fig.bbox.width, (rows, columns, title, fig.bbox)
        assert fig.axes[0].get_title().replace("\n", " ") == T.metric_description("best_test_acc")


def _inside(fig, legend) -> bool:
    fig.canvas.draw()
    box = legend.get_window_extent(fig.canvas.get_renderer())
    return 0 <= box.y0 and box.y1 <= fig.bbox.height and 0 <= box.x0 and box.x1 <= fig.bbox.width


def test_the_bars_legend_of_many_rows_fits_the_figure(monkeypatch):
    # a legend entry per row beside a figure of fixed height: past ~20 rows (a 5 x 5 grid, a search of 30
    # trials) its first and last entries were cut off, and constrained layout collapsed the axes
    from test_tables import frame

    figures = []
    monkeypatch.setattr(FG, "save_figure", lambda fig, stem: figures.append(fig) or [])
    for n in (2, 30):
        rows = [f"p1=0.{i}, depth={i}" for i in range(n)]
        FG.ablation_bars(T.build_table(frame({(r, "d"): {0: 0.8, 1: 0.82} for r in rows}), rows=rows, seeds=[0, 1]))
        fig = figures[-1]
        assert _inside(fig, fig.axes[0].get_legend()), n
        assert fig.axes[0].get_window_extent().height > 100, "the axes keep their room"
    assert figures[0].get_figheight() == 3.6, "a short legend leaves the figure's height as it was"


def test_the_bars_legend_of_a_search_of_hundreds_of_trials_is_set_in_columns_not_grown_ever_taller(monkeypatch):
    # the bars' figure is already as wide as its rows: grown taller too, its pixels grew with the square of the
    # rows (1.8 billion, a 7 GB image drawn for 98 s, for a search of 1,000 trials)
    from test_tables import frame

    figures = []
    monkeypatch.setattr(FG, "save_figure", lambda fig, stem: figures.append(fig) or [])
    rows = [f"trial {i}" for i in range(150)]
    FG.ablation_bars(T.build_table(frame({(r, "d"): {0: 0.8} for r in rows}), rows=rows, seeds=[0]))
    fig, = figures
    legend = fig.axes[0].get_legend()
    assert fig.get_figheight() <= 12.5 and _inside(fig, legend)
    assert len(legend.get_texts()) == 150 and legend._ncols > 1, "in columns"


def test_the_learning_curves_legend_of_many_arms_fits_the_figure(runs, tmp_path, monkeypatch):
    import pandas as pd

    figures = []
    monkeypatch.setattr(FG, "save_figure", lambda fig, stem: figures.append(fig) or [])
    arms = [f"p1=0.{i}, depth={i}" for i in range(30)]
    hist = pd.DataFrame({"run_id": [f"r{i}" for i in range(30) for _ in (1, 2)], "arm": [a for a in arms for _ in (1, 2)],
                         "data": ["d"] * 60, "seed": [0] * 60, "step": [1, 2] * 30, "value": [0.5, 0.6] * 30,
                         "status": ["completed"] * 60})
    monkeypatch.setattr(type(runs), "history", lambda self, metric: hist)
    FG.learning_curves(runs, "val_acc", tmp_path / "c", rows=arms, columns=["d"])
    fig, = figures
    assert len(fig.legends[0].get_texts()) >= 30 and _inside(fig, fig.legends[0])
    title = fig._suptitle.get_window_extent(fig.canvas.get_renderer())
    assert not title.overlaps(fig.legends[0].get_window_extent(fig.canvas.get_renderer()))


def test_plot_sweep_skips_what_cannot_be_drawn_and_logs_to_parent(runs, tmp_path, caplog):
    paths = FG.plot_sweep(runs, tmp_path, rows=layout()["rows"], curve_metrics=("val_acc", "lr"))
    assert sorted(p.name for p in paths) == ["ablation_bars.pdf", "ablation_bars.png",
                                             "learning_curves_val_acc.pdf", "learning_curves_val_acc.png"]
    assert "learning_curves_lr skipped" in caplog.text and "attention_grid skipped" in caplog.text
    FG.log_figures(runs, paths)
    logged = {f.path for f in runs.client.list_artifacts(runs.parent.run_id, "figures")}
    assert {f"figures/{p.name}" for p in paths} <= logged


# --------------------------------------------------------------------------- attention grid

def _tiny_model_artifacts(tmp_path: Path, name: str, weights_seed: int = 0, **model) -> Path:
    """model/state_dict.pt + model/config.json of a tiny untrained TransFER, as tracking.py logs them."""
    import torch

    from transfer_core.config import TrialConfig, from_flat, to_flat
    from transfer_core.models import build_model

    flat = {**to_flat(TrialConfig()), "model.stem": "small", "model.image_size": 32, "model.embed_dim": 32,
            "model.depth": 1, "model.num_heads": 2, "data.synthetic_per_class": 8,
            "data.cache_dir": str(tmp_path / "cache"), **{f"model.{k}": v for k, v in model.items()}}
    torch.manual_seed(weights_seed)
    net = build_model(from_flat(flat).model)
    folder = tmp_path / name
    folder.mkdir()
    torch.save(net.state_dict(), folder / "state_dict.pt")
    (folder / "config.json").write_text(json.dumps(flat))
    return folder


def _add_attention_record(folder: Path, keep_state: bool = True) -> Path:
    """model/attention.npz as a trial logs it (transfer_core.attention, from the folder's weights);
    keep_state=False then removes the weights, to show the record alone suffices."""
    import torch

    from transfer_core.attention import attention_record
    from transfer_core.config import from_flat
    from transfer_core.data import load_splits
    from transfer_core.models import build_model

    cfg = from_flat(json.loads((folder / "config.json").read_text()))
    model = build_model(cfg.model)
    model.load_state_dict(torch.load(folder / "state_dict.pt", weights_only=True))
    record = attention_record(model.eval(), cfg, load_splits(cfg.data, cfg.model.image_size))
    save_record(record, folder / "attention.npz")
    if not keep_state:
        (folder / "state_dict.pt").unlink()
    return folder


_real_load_model = FG.load_model


def _runs_with(tracking_uri, template_db, tmp_path, artifacts: dict[str, Path],  # noqa: F811
               selected: dict[str, Path] | None = None):
    """A sweep whose Baseline and + MAD children completed and logged `artifacts` (arm -> folder) under
    model/ (and `selected` under model_selected/); + ViT is still running."""
    shutil.copy(template_db, tracking_uri[len("sqlite:///"):])
    client, exp = create_store(tracking_uri, tmp_path / "artifacts")
    cells = {("Baseline", "rafdb"): [("completed", 0.8)], ("+ MAD", "rafdb"): [("completed", 0.85)],
             ("+ ViT", "rafdb"): [("running", 0.5)]}
    record_sweep(client, exp, cells=cells, artifacts=artifacts, selected_artifacts=selected, epochs=2)
    return T.load_sweep_runs(SWEEP, tracking_uri=tracking_uri)


def _model_runs(tracking_uri, template_db, tmp_path, record: bool = False, keep_state: bool = True):  # noqa: F811
    artifacts = {"Baseline": _tiny_model_artifacts(tmp_path, "base", local_branch=False),
                 "+ MAD": _tiny_model_artifacts(tmp_path, "mad")}
    if record:
        artifacts = {arm: _add_attention_record(folder, keep_state) for arm, folder in artifacts.items()}
    return _runs_with(tracking_uri, template_db, tmp_path, artifacts)


@pytest.fixture
def model_runs(tracking_uri, template_db, tmp_path):  # noqa: F811
    """Completed runs that logged their models only (as runs recorded before attention records)."""
    return _model_runs(tracking_uri, template_db, tmp_path)


@pytest.fixture
def recorded_runs(tracking_uri, template_db, tmp_path):  # noqa: F811
    """Completed runs that logged their models and their trials' attention records."""
    return _model_runs(tracking_uri, template_db, tmp_path, record=True)


def test_attention_grid_png_and_pdf_not_blank(model_runs, tmp_path):
    paths = FG.attention_grid(model_runs, tmp_path / "attention", arms=["Baseline", "+ MAD", "+ ViT"])
    assert_not_blank(paths)
    pixels = imread(next(p for p in paths if p.suffix == ".png"))[..., :3]
    saturation = pixels.max(axis=-1) - pixels.min(axis=-1)
    # the jet colour bar is drawn only beside an overlay, and it is fully saturated
    assert (saturation > 0.5).mean() > 0.005, "no coloured attention overlay (no colour bar)"


def test_attention_grid_says_its_maps_are_of_the_last_epochs_weights_and_which_seed(
        recorded_runs, tmp_path, monkeypatch):
    # the table's numbers are of the epoch selected on validation; the logged weights are the last epoch's
    figures = []
    monkeypatch.setattr(FG, "save_figure", lambda fig, stem: figures.append(fig) or [])
    FG.attention_grid(recorded_runs, tmp_path / "a")
    assert figures[0].get_suptitle().endswith("test faces\nweights after the last epoch, seed 0")


def test_attention_grid_of_runs_whose_chosen_epoch_is_the_last_says_the_maps_are_of_the_chosen_epoch(
        tracking_uri, template_db, tmp_path, monkeypatch):  # noqa: F811
    # a trial whose last epoch is the one chosen on validation logs its weights once, under model/
    runs = _model_runs(tracking_uri, template_db, tmp_path, record=True)
    done = runs.children[runs.children["status"] == "completed"]
    for rid in done["run_id"]:
        runs.client.log_metric(rid, "sel_epoch", 2, step=2)
    runs = T.load_sweep_runs(SWEEP, tracking_uri=tracking_uri)
    figures = []
    monkeypatch.setattr(FG, "save_figure", lambda fig, stem: figures.append(fig) or [])
    FG.attention_grid(runs, tmp_path / "a")
    assert figures[0].get_suptitle().endswith("test faces\nweights of the epoch chosen on validation, seed 0")


def _selected_runs(tracking_uri, template_db, tmp_path, arms=("Baseline", "+ MAD"), record=True):  # noqa: F811
    """As a trial of this version logs them: the last epoch's weights under model/, and other weights,
    those of the epoch chosen on validation, under model_selected/ with the attention record (for `arms`)."""
    last = {"Baseline": _tiny_model_artifacts(tmp_path, "base", local_branch=False),
            "+ MAD": _tiny_model_artifacts(tmp_path, "mad")}
    selected = {"Baseline": _tiny_model_artifacts(tmp_path, "base_sel", weights_seed=1, local_branch=False),
                "+ MAD": _tiny_model_artifacts(tmp_path, "mad_sel", weights_seed=1)}
    selected = {arm: _add_attention_record(folder) if record else folder
                for arm, folder in selected.items() if arm in arms}
    return _runs_with(tracking_uri, template_db, tmp_path, last, selected)


def test_attention_grid_shows_the_weights_the_tables_numbers_are_of_from_their_record(
        tracking_uri, template_db, tmp_path, monkeypatch):  # noqa: F811
    runs = _selected_runs(tracking_uri, template_db, tmp_path)
    figures = []
    monkeypatch.setattr(FG, "save_figure", lambda fig, stem: figures.append(fig) or [])
    monkeypatch.setattr(FG, "load_model", lambda *a, **kw: pytest.fail("the records beside the weights suffice"))
    FG.attention_grid(runs, tmp_path / "a")
    assert figures[0].get_suptitle().endswith("test faces\nweights of the epoch chosen on validation, seed 0")


def test_attention_grid_drawn_from_the_models_loads_the_chosen_epochs_weights_not_the_last(
        tracking_uri, template_db, tmp_path, monkeypatch):  # noqa: F811
    runs = _selected_runs(tracking_uri, template_db, tmp_path, record=False)
    loaded = []

    def load(runs_, run_id, dst, overrides=None, artifact_dir=None):
        model, cfg = _real_load_model(runs_, run_id, dst, overrides, artifact_dir)
        loaded.append((artifact_dir, model.state_dict()))
        return model, cfg

    monkeypatch.setattr(FG, "load_model", load)
    FG.attention_grid(runs, tmp_path / "a")
    import torch

    logged = {name: torch.load(tmp_path / name / "state_dict.pt", weights_only=True)
              for name in ("base", "mad", "base_sel", "mad_sel")}
    same = [name for _, weights in loaded for name, w in logged.items()
            if w.keys() == weights.keys() and all(torch.equal(w[k], weights[k]) for k in w)]
    assert sorted(same) == ["base_sel", "mad_sel"] and {d for d, _ in loaded} == {"model_selected"}


def test_attention_grid_of_runs_some_of_which_kept_only_the_last_epochs_weights_says_so(
        tracking_uri, template_db, tmp_path, monkeypatch):  # noqa: F811
    runs = _selected_runs(tracking_uri, template_db, tmp_path, arms=("+ MAD",), record=False)
    figures = []
    monkeypatch.setattr(FG, "save_figure", lambda fig, stem: figures.append(fig) or [])
    FG.attention_grid(runs, tmp_path / "a")
    assert figures[0].get_suptitle().replace("\n", " ").endswith(   # wrapped to the figure's width
        "weights of the epoch chosen on validation (the last epoch's where a run kept no other), seed 0")


@pytest.mark.parametrize("arms", [["+ MAD"], ["Baseline", "+ MAD"]])
def test_attention_grid_title_fits_the_figure_and_clears_the_column_titles(
        tracking_uri, template_db, tmp_path, monkeypatch, arms):  # noqa: F811
    # one variant's grid is under 3 inches wide: its two-line title ran off both sides
    import dataclasses

    runs = _selected_runs(tracking_uri, template_db, tmp_path, arms=("+ MAD",), record=False)
    runs = dataclasses.replace(runs, children=runs.children[runs.children["arm"].isin(arms)])
    figures = []
    monkeypatch.setattr(FG, "save_figure", lambda fig, stem: figures.append(fig) or [])
    FG.attention_grid(runs, tmp_path / "a")
    fig = figures[0]
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    title = fig._suptitle.get_window_extent(renderer)
    assert 0 <= title.x0 and title.x1 <= fig.bbox.width and title.y1 <= fig.bbox.height, (title, fig.bbox)
    column_titles = [ax.title.get_window_extent(renderer) for ax in fig.axes if ax.get_title()]
    assert column_titles and all(title.y0 > t.y1 for t in column_titles)


def test_attention_grid_one_row_per_class_image(model_runs, tmp_path):
    one = imread(next(p for p in FG.attention_grid(model_runs, tmp_path / "a1") if p.suffix == ".png"))
    two = imread(next(p for p in FG.attention_grid(model_runs, tmp_path / "a2", images_per_class=2)
                      if p.suffix == ".png"))
    assert two.shape[0] > 1.6 * one.shape[0]


def test_attention_grid_from_the_trials_records_needs_no_model(tracking_uri, template_db, tmp_path):  # noqa: F811
    runs = _model_runs(tracking_uri, template_db, tmp_path, record=True, keep_state=False)
    paths = FG.attention_grid(runs, tmp_path / "attention", arms=["Baseline", "+ MAD", "+ ViT"])
    assert_not_blank(paths)
    pixels = imread(next(p for p in paths if p.suffix == ".png"))[..., :3]
    assert ((pixels.max(axis=-1) - pixels.min(axis=-1)) > 0.5).mean() > 0.005, "no coloured attention overlay"


def test_attention_grid_says_no_map_where_a_diverged_runs_nan_weights_give_none(
        tracking_uri, template_db, tmp_path, monkeypatch):  # noqa: F811
    # NaN weights map to NaN, which imshow leaves out: the column showed the bare faces, read as an arm whose
    # attention is nowhere, without a word
    import torch

    mad = _tiny_model_artifacts(tmp_path, "mad")
    state = torch.load(mad / "state_dict.pt", weights_only=True)
    torch.save({k: v.fill_(float("nan")) if v.is_floating_point() else v for k, v in state.items()},
               mad / "state_dict.pt")
    runs = _runs_with(tracking_uri, template_db, tmp_path,
                      {"Baseline": _add_attention_record(_tiny_model_artifacts(tmp_path, "base")),
                       "+ MAD": _add_attention_record(mad)})
    figures = []
    monkeypatch.setattr(FG, "save_figure", lambda fig, stem: figures.append(fig) or [])
    FG.attention_grid(runs, tmp_path / "attention", arms=["Baseline", "+ MAD"])
    grid = figures[0].axes[:-1]   # row by row: Baseline, + MAD, + ViT (running); the last axes: the colour bar
    assert len(grid) == 21 and all([t.get_text() for t in ax.texts] == ["no map (diverged)"] for ax in grid[1::3])
    assert all(not ax.texts and len(ax.images) == 2 for ax in grid[0::3]), "Baseline: the face and its map"


def test_attention_grid_prefers_a_seed_with_a_score_to_one_that_diverged(runs):
    import dataclasses

    import pandas as pd

    children = pd.DataFrame({"run_id": ["s0", "s1", "b0"], "arm": ["A", "A", "B"], "data": ["d"] * 3,
                             "seed": [0, 1, 0], "status": ["completed"] * 3, "start_time": [1, 2, 3],
                             "sel_test_acc": [float("nan"), 0.7, float("nan")]})
    assert FG._pick_model_runs(dataclasses.replace(runs, children=children), ["A", "B"], "d") == {"A": "s1", "B": "b0"}


def test_attention_grid_from_records_is_the_grid_drawn_from_the_models(recorded_runs, tmp_path):
    from_records = FG.attention_grid(recorded_runs, tmp_path / "records")
    # overrides (here: none that change anything) make it run the logged models on the test faces
    from_models = FG.attention_grid(recorded_runs, tmp_path / "models", overrides={"data.synthetic_per_class": 8})
    a, b = (imread(next(p for p in paths if p.suffix == ".png"))[..., :3] for paths in (from_records, from_models))
    assert a.shape == b.shape
    assert np.abs(a - b).mean() < 0.002, "the records (float16 maps) draw what the models draw"


def test_attention_grid_with_more_faces_per_class_than_recorded_runs_the_models(recorded_runs, tmp_path):
    one = imread(next(p for p in FG.attention_grid(recorded_runs, tmp_path / "a1") if p.suffix == ".png"))
    two = imread(next(p for p in FG.attention_grid(recorded_runs, tmp_path / "a2", images_per_class=2)
                      if p.suffix == ".png"))
    assert two.shape[0] > 1.6 * one.shape[0]


def test_attention_grid_with_an_unreadable_record_warns_and_draws_from_the_models(
        tracking_uri, template_db, tmp_path, caplog):  # noqa: F811
    mad = _add_attention_record(_tiny_model_artifacts(tmp_path, "mad"))
    (mad / "attention.npz").write_bytes(b"not an npz file")
    base = _add_attention_record(_tiny_model_artifacts(tmp_path, "base", local_branch=False))
    runs = _runs_with(tracking_uri, template_db, tmp_path, {"Baseline": base, "+ MAD": mad})
    assert_not_blank(FG.attention_grid(runs, tmp_path / "attention"))
    assert "model/attention.npz of run" in caplog.text and "drawing from the models instead" in caplog.text


def test_attention_grid_from_records_of_other_faces_draws_from_the_models(
        tracking_uri, template_db, tmp_path, monkeypatch):  # noqa: F811
    mad = _add_attention_record(_tiny_model_artifacts(tmp_path, "mad"))
    base = _add_attention_record(_tiny_model_artifacts(tmp_path, "base", local_branch=False))
    record = load_record(base / "attention.npz")
    save_record({**record, "faces": 255 - record["faces"]}, base / "attention.npz")
    runs = _runs_with(tracking_uri, template_db, tmp_path, {"Baseline": base, "+ MAD": mad})
    drawn = []
    monkeypatch.setattr(FG, "load_model", lambda *a, **kw: drawn.append(a[1]) or _real_load_model(*a, **kw))
    assert_not_blank(FG.attention_grid(runs, tmp_path / "attention"))
    assert len(drawn) == 2, "each arm's model was run on the same faces"


def test_plot_sweep_skips_the_attention_grid_when_the_runs_data_has_moved_and_keeps_the_other_figures(
        tracking_uri, template_db, tmp_path, caplog):  # noqa: F811
    # a logged model without a record is run on its data's test faces: data no longer at its data.root
    # raised DataError through plot_sweep, so `sweeps plot` ended in a traceback and logged no figure
    mad = _tiny_model_artifacts(tmp_path, "mad")
    flat = {**json.loads((mad / "config.json").read_text()), "data.dataset": "rafdb", "data.root": "/gone/RAF-DB"}
    (mad / "config.json").write_text(json.dumps(flat))
    runs = _runs_with(tracking_uri, template_db, tmp_path, {"+ MAD": mad})
    paths = FG.plot_sweep(runs, tmp_path / "figures", curve_metrics=("val_acc",))
    assert sorted(p.stem for p in paths) == ["ablation_bars"] * 2 + ["learning_curves_val_acc"] * 2
    assert "figure attention_grid skipped: cannot load the test faces to draw on: data.root '/gone/RAF-DB'" \
        in caplog.text and "overrides={'data.root': NEW}" in caplog.text


def test_attention_grid_without_models(runs, tmp_path):
    with pytest.raises(FG.FigureError, match="logged its model"):
        FG.attention_grid(runs, tmp_path / "attention")



# --------------------------------------------------------------------------- sweeps plot

def test_plot_refuses_an_output_folder_it_cannot_write_naming_it_before_drawing(runs, tmp_path, monkeypatch):
    # -o under a file failed at the first figure's save, with a NotADirectoryError traceback
    from click.testing import CliRunner

    from sweeps import cli as C
    from sweeps import report

    monkeypatch.setattr(C, "_load_runs", lambda *a: (runs, None))
    monkeypatch.setattr(report, "sweep_table", lambda *a: pytest.fail("drew before checking the folder"))
    (tmp_path / "afile").write_text("")
    out = tmp_path / "afile" / "figures"
    result = CliRunner().invoke(C.cli, ["plot", SWEEP, "-o", str(out), "--no-log"])
    assert result.exit_code == 2, result.output   # refused as a usage error, before any run is read
    assert f"{tmp_path / 'afile'} is a file, not a folder, so nothing can be written under it" in result.output


def test_plot_of_a_search_that_minimised_validation_loss_draws_its_validation_loss_curves(runs, tmp_path, monkeypatch):
    # `sweeps plot` drew val_acc and test_acc alone: no curve of the metric that chose the search's trials
    from click.testing import CliRunner

    from search_spaces.spec import load_text
    from sweeps import cli as C
    from sweeps import report

    spec = load_text("name: s\nkind: search\nmetric: val_loss\nsearch:\n  space:\n    model.depth: [1, 2]\n")
    drawn = {}

    def plot_sweep(runs, folder, **kwargs):
        drawn.update(kwargs)
        for m in kwargs["curve_metrics"]:
            (folder / f"learning_curves_{m}.png").write_text(m)
        return [folder / f"learning_curves_{m}.png" for m in kwargs["curve_metrics"]]

    monkeypatch.setattr(C, "_load_runs", lambda *a: (runs, spec))
    monkeypatch.setattr(report, "sweep_table", lambda *a: SimpleNamespace(rows=[]))
    monkeypatch.setattr(FG, "plot_sweep", plot_sweep)
    result = CliRunner().invoke(C.cli, ["plot", SWEEP, "-o", str(tmp_path), "--no-log"])
    assert result.exit_code == 0, result.output
    assert drawn["curve_metrics"] == ("val_acc", "test_acc", "val_loss")
    assert (tmp_path / "learning_curves_val_loss.png").is_file()


def test_plot_that_draws_nothing_leaves_no_empty_folder_behind(runs, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from sweeps import cli as C
    from sweeps import report

    monkeypatch.setattr(C, "_load_runs", lambda *a: (runs, SimpleNamespace(kind="table", table=SimpleNamespace(metrics=("sel_test_acc",)))))
    monkeypatch.setattr(report, "sweep_table", lambda *a: SimpleNamespace(rows=[]))
    monkeypatch.setattr(FG, "plot_sweep", lambda *a, **k: [])   # no completed cell yet
    (tmp_path / "kept").mkdir()
    out = tmp_path / "kept" / "new" / "figures"
    result = CliRunner().invoke(C.cli, ["plot", SWEEP, "-o", str(out), "--no-log"])
    assert result.exit_code == 1 and f"no figure could be drawn for {SWEEP}" in result.output, result.output
    assert list((tmp_path / "kept").iterdir()) == [], "the folders it made are gone, the one that was there stays"


def test_plot_of_another_invocation_removes_the_figures_it_did_not_draw_over_and_nothing_else(runs, tmp_path,
                                                                                             monkeypatch):
    # every invocation plots into figures/<sweep>: the first one's attention grid stayed beside the second's
    # curves and bars (which skipped its grid: nothing completed), a folder that read as one invocation's
    import dataclasses

    from click.testing import CliRunner

    from sweeps import cli as C
    from sweeps import report

    out = tmp_path / "figures"
    drawing = {"names": ["ablation_bars.png", "attention_grid.png"]}

    def plot_sweep(runs, folder, **kwargs):
        for name in drawing["names"]:
            (folder / name).write_text(runs.parent.run_id)
        return [folder / name for name in drawing["names"]]

    monkeypatch.setattr(report, "sweep_table", lambda *a: SimpleNamespace(rows=[]))
    monkeypatch.setattr(FG, "plot_sweep", plot_sweep)
    first = runs
    monkeypatch.setattr(C, "_load_runs", lambda *a: (first, SimpleNamespace(kind="table", table=SimpleNamespace(metrics=("sel_test_acc",)))))
    assert CliRunner().invoke(C.cli, ["plot", SWEEP, "-o", str(out), "--no-log"]).exit_code == 0
    (out / "notes.txt").write_text("mine")
    drawing["names"] = ["ablation_bars.png"]
    again = CliRunner().invoke(C.cli, ["plot", SWEEP, "-o", str(out), "--no-log"])   # the same invocation
    assert again.exit_code == 0 and (out / "attention_grid.png").exists(), "its own figure, drawn before: kept"
    second = dataclasses.replace(runs, parent=dataclasses.replace(runs.parent, run_id="f" * 32))
    monkeypatch.setattr(C, "_load_runs", lambda *a: (second, SimpleNamespace(kind="table", table=SimpleNamespace(metrics=("sel_test_acc",)))))
    result = CliRunner().invoke(C.cli, ["plot", SWEEP, "-o", str(out), "--no-log"])
    assert result.exit_code == 0, result.output
    assert f"removed {out / 'attention_grid.png'}: drawn for another invocation" in result.output
    assert sorted(p.name for p in out.iterdir()) == [".sweeps-figures.json", "ablation_bars.png", "notes.txt"]
    assert (out / "ablation_bars.png").read_text() == "f" * 32


def test_two_plots_into_one_folder_at_once_both_keep_their_figures_in_its_record(tmp_path, monkeypatch):
    # `sweeps plot X` and `sweeps plot X --attention` at once: each read .sweeps-figures.json before the other
    # wrote it, and the last to write dropped the other's figures from it (a later invocation's plot then left
    # them beside its own)
    import threading
    import time

    read, first_has_read = FG._read_record, threading.Event()

    def read_slowly(record):
        found = read(record)
        if threading.current_thread().name == "first":
            first_has_read.set()
            time.sleep(0.5)   # the other plot reads the record meanwhile, unless held off until this one wrote it
        return found

    monkeypatch.setattr(FG, "_read_record", read_slowly)
    first = threading.Thread(target=FG.replace_figures_of_another_invocation, name="first",
                             args=(tmp_path, "a" * 32, [tmp_path / "ablation_bars.png"]))
    first.start()
    assert first_has_read.wait(10)
    FG.replace_figures_of_another_invocation(tmp_path, "a" * 32, [tmp_path / "attention_grid.png"])
    first.join()
    record = json.loads((tmp_path / FG.FIGURES_RECORD).read_text())
    assert record == {"parent_run_id": "a" * 32, "files": ["ablation_bars.png", "attention_grid.png"]}


def test_ablation_bars_put_the_label_of_every_cell_without_a_bar_inside_the_axes(monkeypatch):
    # the x-limits followed the bars: a search's pruned trials, ranked after every bar, were labelled
    # outside the chart, over its legend
    from test_tables import frame

    figures = []
    monkeypatch.setattr(FG, "save_figure", lambda fig, stem: figures.append(fig) or [])
    table = T.build_table(frame({("A", "d"): {0: 0.8}, ("B", "d"): {0: "pruned"}, ("C", "d"): {0: "pruned"}}),
                          rows=["A", "B", "C"], seeds=[0])
    FG.ablation_bars(table)
    ax, = figures[0].axes
    low, high = ax.get_xlim()
    assert [t.get_text().strip() for t in ax.texts] == ["pruned", "pruned"]
    assert all(low < t.get_position()[0] < high for t in ax.texts), (low, high, [t.get_position() for t in ax.texts])


def test_ablation_bars_give_each_of_a_long_searchs_trials_its_own_colour(monkeypatch):
    # tab20 cycled: trial k and trial k + 20 of a 30-trial search were one colour in the bars and the legend
    from test_tables import frame

    figures = []
    monkeypatch.setattr(FG, "save_figure", lambda fig, stem: figures.append(fig) or [])
    rows = [f"trial {k}" for k in range(30)]
    table = T.build_table(frame({(r, "d"): {0: 0.5 + k / 100} for k, r in enumerate(rows)}), rows=rows, seeds=[0])
    FG.ablation_bars(table)
    handles = figures[0].axes[0].get_legend().legend_handles
    assert len({tuple(h.get_facecolor()) for h in handles}) == 30


def _figure(title: str):
    fig = FG._new_figure(2, 2)
    fig.add_subplot(1, 1, 1).set_title(title)
    return fig


def test_a_figure_replaces_its_files_whole_so_that_a_reader_meanwhile_finds_the_earlier_figure_entire(
        tmp_path, monkeypatch):
    # two `sweeps plot X` at once (or a plot while a sweep drew its report) wrote figures/X/* in place: the
    # other, or a LaTeX build, could read a file half written
    from matplotlib.figure import Figure

    paths = FG.save_figure(_figure("earlier"), tmp_path / "bars")
    earlier = {p: p.read_bytes() for p in paths}
    found = []
    write = Figure.savefig

    def read_while_written(fig, *args, **kwargs):
        write(fig, *args, **kwargs)
        found.append({p: p.read_bytes() for p in paths})   # what a reader opens now, before this one is done

    monkeypatch.setattr(Figure, "savefig", read_while_written)
    assert FG.save_figure(_figure("later"), tmp_path / "bars") == paths
    assert [seen[p] for seen, p in zip(found, paths)] == [earlier[p] for p in paths]
    assert all(p.read_bytes() != earlier[p] for p in paths), "replaced once written"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bars.pdf", "bars.png"]


def test_a_figure_whose_writing_fails_leaves_the_earlier_one_as_it_was_and_nothing_beside_it(tmp_path, monkeypatch):
    import contextlib

    from matplotlib.figure import Figure

    paths = FG.save_figure(_figure("earlier"), tmp_path / "bars")
    earlier = {p: p.read_bytes() for p in paths}

    def fail_half_way(fig, target, **kwargs):   # a file to write in, or a path
        with (contextlib.nullcontext(target) if hasattr(target, "write") else open(target, "wb")) as file:
            file.write(b"half a figure")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", fail_half_way)
    with pytest.raises(OSError, match="No space left"):
        FG.save_figure(_figure("later"), tmp_path / "bars")
    assert {p: p.read_bytes() for p in paths} == earlier
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bars.pdf", "bars.png"]


def test_figure_files_are_readable_as_files_written_in_place_are(tmp_path):
    # written in place, a figure was 0666 less the umask: a temporary file's 0600 would shut out a group
    import os

    umask = os.umask(0o022)
    try:
        paths = FG.save_figure(_figure("shared"), tmp_path / "bars")
    finally:
        os.umask(umask)
    assert [p.stat().st_mode & 0o777 for p in paths] == [0o644, 0o644]


def test_a_figure_whose_file_is_a_symbolic_link_is_written_where_the_link_leads_and_the_link_stays(tmp_path):
    # written in place, a figure went through a link (figures/X/bars.pdf -> the paper's folder); replaced whole, the
    # link itself was replaced by a file, and the paper's copy silently stayed the earlier figure
    (tmp_path / "paper").mkdir()
    earlier = FG.save_figure(_figure("earlier"), tmp_path / "paper" / "bars")
    (tmp_path / "figures").mkdir()
    for path in earlier:
        (tmp_path / "figures" / path.name).symlink_to(path)
    before = {p: p.read_bytes() for p in earlier}
    paths = FG.save_figure(_figure("later"), tmp_path / "figures" / "bars")
    assert all(p.is_symlink() for p in paths)
    assert all(p.read_bytes() != before[p] for p in earlier), "the file the link leads to is the later figure"
    assert sorted(p.name for p in (tmp_path / "paper").iterdir()) == ["bars.pdf", "bars.png"]


def test_labels_without_glyphs_in_the_font_give_one_warning_per_figure_naming_them(tmp_path, caplog):
    # arm labels in CJK: matplotlib warned "Glyph ... missing from font(s) DejaVu Sans." once per character,
    # per text and per format, dozens of lines per figure
    import io
    import logging
    import warnings

    fig = FG._new_figure(3, 2)
    ax = fig.add_subplot(1, 1, 1)
    ax.set_title("注意力 vs dropout")
    ax.set_xlabel("基线")
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING, logger="sweeps.figures"):
        warnings.simplefilter("always")
        paths = FG.save_figure(fig, tmp_path / "cjk")
        warnings.warn("another warning", UserWarning)
    assert [str(w.message) for w in caught] == ["another warning"], "only the glyphs' warnings are gathered"
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1, said
    assert said[0].startswith("figure cjk: the font has no glyph for ") and "'基线', '注意力 vs dropout'" in said[0]
    assert "draw as boxes: use ASCII labels" in said[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        direct = io.BytesIO()
        fig.savefig(direct, format="png", dpi=150)
    assert paths[0].read_bytes() == direct.getvalue(), "the figure is drawn as before"


def test_plot_on_a_disk_that_fills_up_is_an_error_naming_the_folder_and_leaves_each_figure_whole(runs, tmp_path,
                                                                                                monkeypatch):
    # measured: `sweeps plot -o` on a full disk ended in a traceback of PIL's "OSError: [Errno 28] No space left on
    # device", naming no folder (`sweeps table -o` said "cannot write the table to ...")
    from click.testing import CliRunner

    from matplotlib.figure import Figure

    from sweeps import cli as C
    from sweeps import report

    monkeypatch.setattr(C, "_load_runs", lambda *a: (runs, SimpleNamespace(kind="table", table=SimpleNamespace(
        metrics=("sel_test_acc",)))))
    monkeypatch.setattr(report, "sweep_table", lambda *a: SimpleNamespace(rows=[]))
    monkeypatch.setattr(FG, "plot_sweep", lambda runs, folder, **kwargs: FG.save_figure(
        _figure("later"), folder / "learning_curves_val_acc"))   # the real savefig, into files.replacing
    earlier = FG.save_figure(_figure("earlier"), tmp_path / "learning_curves_val_acc")
    before = {p: p.read_bytes() for p in earlier}

    def full(fig, target, **kwargs):
        target.write(b"half a figure")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", full)
    result = CliRunner().invoke(C.cli, ["plot", SWEEP, "-o", str(tmp_path), "--no-log"])
    assert result.exit_code == 1, result.output
    assert f"Error: cannot write the figures to {tmp_path}: No space left on device; none of them was written: " \
           "the figures there are as they were" in result.output
    assert {p: p.read_bytes() for p in earlier} == before
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".sweeps")) == sorted(p.name for p in earlier)


def test_one_plots_figures_replace_the_earlier_ones_together_or_none_does(runs, tmp_path, monkeypatch):
    # a disk that filled up mid-plot left the figures drawn before it new and the others an earlier plot's (each file
    # whole), a folder that read as one set
    from matplotlib.figure import Figure

    paths = FG.plot_sweep(runs, tmp_path, curve_metrics=("val_acc", "test_acc"), attention=False)
    assert len(paths) >= 4
    for path in paths:
        path.write_bytes(b"an earlier plot's")
    real, saved = Figure.savefig, []

    def full_at_the_third(fig, target, **kwargs):
        saved.append(target)
        if len(saved) == 3:
            raise OSError(28, "No space left on device")
        return real(fig, target, **kwargs)

    monkeypatch.setattr(Figure, "savefig", full_at_the_third)
    with pytest.raises(OSError, match="No space left"):
        FG.plot_sweep(runs, tmp_path, curve_metrics=("val_acc", "test_acc"), attention=False)
    assert {p.name: p.read_bytes() for p in paths} == {p.name: b"an earlier plot's" for p in paths}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths), "no temporary file left"
    monkeypatch.setattr(Figure, "savefig", real)
    assert FG.plot_sweep(runs, tmp_path, curve_metrics=("val_acc", "test_acc"), attention=False) == paths
    assert all(p.read_bytes() != b"an earlier plot's" for p in paths)


def test_a_disk_full_said_only_as_a_figure_is_closed_leaves_every_earlier_figure(runs, tmp_path, monkeypatch):
    # a network file system (NFS: a cluster's shared home) says a full disk or quota as the file is closed, not as
    # it is written or flushed: each figure's file was closed only as the plot ended, one by one as it was renamed,
    # so the figures closed before the one that failed were the new plot's, the others the earlier plot's
    import errno
    import io
    import os

    paths = FG.plot_sweep(runs, tmp_path, curve_metrics=("val_acc", "test_acc"), attention=False)
    assert len(paths) >= 4
    for path in paths:
        path.write_bytes(b"an earlier plot's")
    closed = []

    class OnNfs(io.BufferedWriter):
        def close(self):
            if self.closed:
                return
            super().close()
            closed.append(self)
            if len(closed) == 3:
                raise OSError(errno.EDQUOT, "Disk quota exceeded")

    fdopen = os.fdopen
    monkeypatch.setattr(os, "fdopen", lambda fd, mode="r", *args, **kwargs:
                        OnNfs(io.FileIO(fd, "wb")) if mode == "wb" else fdopen(fd, mode, *args, **kwargs))
    with pytest.raises(OSError, match="Disk quota exceeded"):
        FG.plot_sweep(runs, tmp_path, curve_metrics=("val_acc", "test_acc"), attention=False)
    assert {p.name: p.read_bytes() for p in paths} == {p.name: b"an earlier plot's" for p in paths}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths), "no temporary file left"


def test_plot_failing_to_read_a_runs_file_is_not_called_a_folder_it_could_not_write(runs, tmp_path, monkeypatch):
    # every OSError while the figures were drawn was "cannot write the figures to OUT: No such file or directory;
    # ... none is half written": a model or attention record that could not be read from the runs' artifacts too,
    # which sent the researcher to a figure folder that was fine
    from click.testing import CliRunner

    from sweeps import cli as C
    from sweeps import report

    monkeypatch.setattr(C, "_load_runs", lambda *a: (runs, SimpleNamespace(kind="table", table=SimpleNamespace(
        metrics=("sel_test_acc",)))))
    monkeypatch.setattr(report, "sweep_table", lambda *a: SimpleNamespace(rows=[]))
    missing = tmp_path / "mlartifacts" / "1" / "run" / "artifacts" / "model.pt"

    def unreadable(runs, folder, **kwargs):
        raise FileNotFoundError(2, "No such file or directory", str(missing))

    monkeypatch.setattr(FG, "plot_sweep", unreadable)
    result = CliRunner().invoke(C.cli, ["plot", SWEEP, "-o", str(tmp_path / "figures"), "--no-log"])
    assert "cannot write the figures" not in result.output
    assert isinstance(result.exception, FileNotFoundError) and result.exception.filename == str(missing)
