"""sweeps.tables formats: golden tables from a fixed set of recorded runs, Parquet's reproducibility
record, and LaTeX that pdflatex compiles.

Regenerate the golden files after an intended change with SWEEPS_UPDATE_GOLDEN=1 and review the diff.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
import math
import os
import re
import shutil
import subprocess

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from test_tables import SWEEP, frame, layout, recorded, template_db  # noqa: F401  (fixtures)

from search_spaces.spec import load_text
from sweeps import cli as C
from sweeps import table_formats as TF
from sweeps import tables as T
from sweeps.report import sweep_table

GOLDEN = os.path.join(os.path.dirname(__file__), "golden")
TEXT_FORMATS = {"latex": "components.tex", "markdown": "components.md", "csv": "components.csv",
                "html": "components.html"}


@pytest.fixture(scope="module")
def rendered(recorded):  # noqa: F811
    runs = T.load_sweep_runs(SWEEP, tracking_uri=recorded)
    table = T.table_from_runs(runs, **layout())
    facts = T.CaptionFacts.from_runs(runs, title="Components",
                                     caption="Each module added in turn, as in Table 1 of the paper")
    return runs, table, facts


@pytest.mark.parametrize("fmt", sorted(TEXT_FORMATS))
def test_render_matches_golden(rendered, fmt):
    _, table, facts = rendered
    text = TF.render(table, fmt, caption_facts=facts)
    path = os.path.join(GOLDEN, TEXT_FORMATS[fmt])
    if os.environ.get("SWEEPS_UPDATE_GOLDEN"):
        os.makedirs(GOLDEN, exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    with open(path, encoding="utf-8") as f:
        assert text == f.read()


def test_table_formats_registry_names():
    assert set(TF.TABLE_FORMATS.names()) == {"latex", "markdown", "csv", "parquet", "html"}


def test_render_unknown_format_lists_valid():
    t = T.build_table(frame({("A", "d"): {0: 0.8}}))
    with pytest.raises(KeyError, match="unknown table format 'pdf'.*Valid: latex, markdown"):
        TF.render(t, "pdf")


def test_latex_bolds_best_and_daggers_ties(rendered):
    _, table, facts = rendered
    tex = TF.render(table, "latex", caption_facts=facts)
    assert r"\textbf{84.83 $\pm$ 0.76}" in tex
    assert r"84.17 $\pm$ 1.04$^\dagger$" in tex
    assert r"\toprule" in tex and r"\bottomrule" in tex


def test_means_that_print_the_same_as_the_best_are_bold_too():
    # 99.9955 % and 100 % both print "100.00" at 2 decimals: both bold, or the reader sees a difference
    # that is not printed; at 2 decimals 99.99 % is printed lower and stays plain
    t = T.build_table(frame({("A", "d"): {0: 0.99991, 1: 1.0}, ("B", "d"): {0: 1.0, 1: 1.0},
                             ("C", "d"): {0: 0.9998, 1: 1.0}}), rows=["A", "B", "C"])
    assert [t.cell(r, "d").best for r in "ABC"] == [False, True, False]
    md = TF.render(t, "markdown")
    assert "**100.00 ± 0.01**" in md and "**100.00 ± 0.00**" in md and "| 99.99 ± 0.01" in md
    tex = TF.render(t, "latex", decimals=1)
    assert tex.count(r"\textbf{100.0") == 3, "at 1 decimal all three print 100.0"


def test_csv_and_parquet_say_which_cells_the_printed_table_sets_in_bold(tmp_path):
    # `best` is the one best mean; a script rebuilding the printed table needs `bold`, the cells set in bold
    import csv as csv_module

    t = T.build_table(frame({("A", "d"): {0: 0.99991, 1: 1.0}, ("B", "d"): {0: 1.0, 1: 1.0},
                             ("C", "d"): {0: 0.9998, 1: 1.0}}), rows=["A", "B", "C"])
    for decimals, bold in ((2, ["True", "True", "False"]), (1, ["True", "True", "True"])):
        rows = list(csv_module.DictReader(io.StringIO(TF.render(t, "csv", decimals=decimals))))
        assert [r["best"] for r in rows] == ["False", "True", "False"]
        assert [r["bold"] for r in rows] == bold
    path = tmp_path / "t.parquet"
    path.write_bytes(TF.render(t, "parquet"))
    assert pd.read_parquet(path)["bold"].tolist() == [True, True, False]


def test_the_papers_figure_stays_under_the_metric_it_was_reported_as():
    # `--metric mca` makes MCA the primary column: the paper's accuracy must not move under it
    cells = {("A", "rafdb"): {0: 0.80, 1: 0.82}, ("B", "rafdb"): {0: 0.70, 1: 0.73}}
    t = T.build_table(frame(cells), rows=["A", "B"], metric="sel_test_mca",
                      extra_metrics=["sel_test_acc"],
                      paper={"label": "Paper (A)", "values": {"rafdb": 90.91}, "metric": "sel_test_acc"})
    md = TF.render(t, "markdown")
    assert "| Paper (A) | — | 90.91 |" in md, md
    records = {r["metric"]: r["paper_pct"] for r in TF.cell_records(t) if r["row"] == "A"}
    assert records == {"sel_test_mca": None, "sel_test_acc": 90.91}
    elsewhere = T.build_table(frame(cells), rows=["A", "B"], metric="sel_test_mca",
                              paper={"label": "Paper (A)", "values": {"rafdb": 90.91}, "metric": "sel_test_acc"})
    assert "90.91" not in TF.render(elsewhere, "markdown"), "its metric not shown: the figure is not either"


def test_the_caption_says_a_best_test_epoch_column_beside_the_honest_one_is_optimistic():
    # the shipped specs show sel_test_acc and best_test_acc: the second's header alone did not warn
    t = T.build_table(frame({("A", "d"): {0: 0.80, 1: 0.82}}), rows=["A"], extra_metrics=["best_test_acc"])
    caption = TF.caption_text(t, T.CaptionFacts())
    assert ("Also: Acc. (best test ep.): best test-epoch accuracy, as commonly reported (epoch chosen on the test "
            "set) (optimistic: for comparison with the literature only).") in caption
    mca = T.build_table(frame({("A", "d"): {0: 0.80, 1: 0.82}}), rows=["A"], extra_metrics=["sel_test_mca"])
    assert "Also:" not in TF.caption_text(mca, T.CaptionFacts()), "the same epoch rule: nothing to add"
    val = T.build_table(frame({("A", "d"): {0: 0.80, 1: 0.82}}), rows=["A"], metric="best_val_acc",
                        extra_metrics=["best_test_acc"])
    assert "Also: Acc. (best test ep.)" in TF.caption_text(val, T.CaptionFacts()), "best val and best test differ"


def test_a_one_seed_caption_promises_no_std_and_no_test():
    # it said "over n = 1 seeds" and "Holm-corrected over the 0 comparisons", explaining a † that cannot appear
    t = T.build_table(frame({("A", "d"): {0: 0.80}, ("B", "d"): {0: 0.70}}), rows=["A", "B"])
    caption = TF.caption_text(t, T.CaptionFacts())
    assert "one seed per cell: no std, and no cell is tested against the best." in caption
    assert "Holm" not in caption and "n = 1 seeds" not in caption


def test_a_column_whose_runs_trained_on_two_versions_of_its_data_says_so_in_caption_and_explain():
    # a sweep continued with --accept-changed-data: the table gave no sign that it mixed both
    one_version = frame({("A", "d"): {0: 0.80, 1: 0.82}, ("B", "d"): {0: 0.70, 1: 0.72}})
    other_sizes = one_version.assign(data_fingerprint=["fp-32", "fp-32", "fp-48", "fp-48"])   # arms' image sizes
    assert T.build_table(other_sizes, rows=["A", "B"]).mixed_data == {}, "a fingerprint covers how a cell reads"
    resumed = one_version.assign(data_fingerprint_earlier=["", "fp-old", "", ""])   # A seed 1 went on after
    recorded = T.Provenance(data_changed={"d": ["fp-old", "fp-d"]})                 # the parent's record of it
    for children, provenance in ((resumed, T.Provenance()), (one_version, recorded)):
        t = T.build_table(children, rows=["A", "B"], provenance=provenance)
        assert t.mixed_data == {"d": ("fp-old", "fp-d")}
        caption = TF.caption_text(t, T.CaptionFacts())
        assert ("d: MIXED DATA: the runs trained on more than one version of the data set (fingerprints fp-old, "
                "fp-d), as the sweep was continued, on the accept-changed-data option, after the data changed.") \
            in caption
        assert "(MIXED DATA: the column's runs trained on fp-old, fp-d" in TF.explain(t, "A")


def test_parquet_says_synthetic_of_each_row_whose_data_are(tmp_path):
    # the flag was the invocation's (every data set synthetic): a synthetic column beside RAF-DB read False
    t = T.build_table(frame({("A", "synthetic"): {0: 0.8}, ("A", "rafdb"): {0: 0.7}}), rows=["A"])
    df = pd.read_parquet(io.BytesIO(TF.render(t, "parquet")))
    assert dict(zip(df["column"], df["synthetic"])) == {"synthetic": True, "rafdb": False}


def test_caption_states_profile_data_synthetic_seeds_metric(rendered):
    _, table, facts = rendered
    caption = TF.caption_text(table, facts)
    for fact in ("Profile: quick", "RAF-DB, AffectNet", "SYNTHETIC", "Seeds: 0, 1, 2",
                 "test accuracy at the epoch selected on the validation split", "Holm", "still running"):
        assert fact in caption, fact


def test_caption_and_explain_name_the_set_overrides_every_cell_ran_with():
    t = T.build_table(frame({("A", "d"): {0: 0.8, 1: 0.9}}),
                      provenance=T.Provenance(overrides={"model.drop_rate": 0.3}))
    caption = TF.caption_text(t, T.CaptionFacts(overrides={"model.drop_rate": 0.3}))
    assert ("Every cell ran with model.drop_rate = 0.3, set on the command line over what the sweep's spec and "
            "its rows set.") in caption
    assert "Overrides (--set, over the spec and every row): model.drop_rate = 0.3" in TF.explain(t, "A")
    assert "command line" not in TF.caption_text(t, T.CaptionFacts())


def test_placement_set_values_are_no_claim_about_every_cell_only_the_latest_runs():
    # they are not part of an invocation's identity: a resume with --set compile=true continued cells
    # trained without it, under a caption saying every cell ran with compile = True
    overrides = {"model.drop_rate": 0.3, "compile": True, "num_threads": 4}
    t = T.build_table(frame({("A", "d"): {0: 0.8, 1: 0.9}}), provenance=T.Provenance(overrides=overrides))
    caption = TF.caption_text(t, T.CaptionFacts(overrides=overrides))
    assert "Every cell ran with model.drop_rate = 0.3, set on" in caption and "compile" not in caption
    explained = TF.explain(t, "A")
    assert "Overrides (--set, over the spec and every row): model.drop_rate = 0.3\n" in explained
    assert ("Placement (--set of its latest run, which earlier runs may not have shared): compile = True, "
            "num_threads = 4") in explained


@pytest.mark.parametrize("status", ["interrupted", "failed"])
def test_a_stopped_sweeps_table_says_it_is_incomplete_and_which_cells_never_ran(status):
    t = T.build_table(frame({("A", "d"): {0: 0.8, 1: 0.9}}), rows=["A", "B"], seeds=[0, 1],
                      provenance=T.Provenance(status=status))
    caption = TF.caption_text(t, T.CaptionFacts())
    assert f"INCOMPLETE: the sweep stopped ({status}) before every cell finished" in caption
    assert "| B | not run |" in TF.render(t, "markdown")
    finished = T.build_table(frame({("A", "d"): {0: 0.8, 1: 0.9}}), rows=["A"], seeds=[0, 1],
                             provenance=T.Provenance(status=status))
    assert "INCOMPLETE" not in TF.caption_text(finished, T.CaptionFacts()), "every cell done: nothing missing"


def test_a_synthetic_column_beside_real_data_is_called_synthetic():
    t = T.build_table(frame({("A", "synthetic"): {0: 0.8}, ("A", "rafdb"): {0: 0.7}}), rows=["A"])
    caption = TF.caption_text(t, T.CaptionFacts(data=("rafdb", "synthetic"), synthetic=False))
    assert "The Synthetic column's data are SYNTHETIC" in caption


def test_latex_writes_negative_numbers_with_a_minus_sign_and_no_negative_zero():
    t = T.build_table(frame({("A", "d"): {0: 0.80, 1: 0.90, 2: 0.85}, ("B", "d"): {0: 0.79, 1: 0.91, 2: 0.85},
                             ("C", "d"): {0: 0.79999, 1: 0.89999, 2: 0.85}}), rows=["A", "B", "C"], baseline="A")
    tex = TF.render(t, "latex")
    assert "[$-$" in tex and "[-" not in tex, "a minus sign inside the interval, not a hyphen"
    assert "-0.00" not in tex and "+0.00" in TF.delta_text(t, "C", "d")


def test_an_intervals_bound_just_below_zero_keeps_its_sign():
    # [+0.00, +0.73] reads as an interval that excludes zero; this one does not (Holm p = 0.05)
    t = T.build_table(frame({("Base", "d"): {0: 0.60, 1: 0.61, 2: 0.62}, ("X", "d"): {0: 0.602, 1: 0.614,
                                                                                     2: 0.6248528}}),
                      rows=["Base", "X"], baseline="Base")
    assert TF.delta_text(t, "X", "d") == "+0.36 [-0.00, +0.73]"


def test_a_delta_over_fewer_seeds_than_its_cells_show_says_how_many():
    # the means print over 3 and 2 seeds; their difference is over the 2 seeds both have
    t = T.build_table(frame({("Base", "d"): {0: 0.60, 1: 0.61, 2: 0.65}, ("X", "d"): {0: 0.63, 1: 0.65,
                                                                                     2: "running"}}),
                      rows=["Base", "X"], baseline="Base", seeds=[0, 1, 2])
    assert TF.delta_text(t, "X", "d").endswith("] (n=2)")


def test_csv_holds_each_p_value_whole_whatever_the_decimals():
    # rounded to the table's decimals, p = 0.0499996 read 0.05 beside tied_with_best = False
    import csv as csv_module

    t = T.build_table(frame({("A", "d"): {0: 0.80, 1: 0.90, 2: 0.85}, ("B", "d"): {0: 0.79, 1: 0.91, 2: 0.80}}),
                      rows=["A", "B"])
    rows = list(csv_module.DictReader(io.StringIO(TF.render(t, "csv", decimals=1))))
    b, = [r for r in rows if r["row"] == "B"]
    assert float(b["p_holm"]) == t.cell("B", "d").p_holm


def test_a_completed_run_without_a_value_is_said_so_in_its_cell():
    # the cell is short of a seed for a reason other than "still running": a run that recorded no value (here,
    # best_val_acc of a run without validation), or one whose training diverged (every score NaN)
    f = frame({("A", "d"): {0: 0.80, 1: 0.81}})
    f.loc[f["seed"] == 1, "best_val_acc"] = float("nan")
    t = T.build_table(f, rows=["A"], seeds=[0, 1], metric="best_val_acc")
    assert TF.cell_text(t, t.cell("A", "d", "best_val_acc")) == "82.00 (1/2 done, 1 without a value)"
    t = T.build_table(frame({("A", "d"): {0: 0.80, 1: float("nan")}}), rows=["A"], seeds=[0, 1])
    assert TF.cell_text(t, t.cell("A", "d")) == "80.00 (n=1, 1 diverged)", "every seed is done: 1/2 done was untrue"


def diverging_table(**kw):
    """A (3 seeds), B (seed 2 diverged at its first epoch: no score) and C (seed 1 diverged at epoch 4 of 10,
    scored on its epochs before; its last epoch's final_test_acc NaN), as load_sweep_runs records them."""
    nan = float("nan")
    f = frame({("A", "d"): {0: .80, 1: .81, 2: .82}, ("B", "d"): {0: .90, 1: .91, 2: nan},
               ("C", "d"): {0: .70, 1: .72, 2: .71}})
    f["final_test_acc"], f["epochs_done"], f["diverged_epoch"] = f["sel_test_acc"], 10.0, nan
    f.loc[(f["arm"] == "B") & (f["seed"] == 2), ["epochs_done", "diverged_epoch"]] = [1.0, 1.0]
    f.loc[(f["arm"] == "C") & (f["seed"] == 1), ["final_test_acc", "epochs_done", "diverged_epoch"]] = [nan, 4.0, 4.0]
    return T.build_table(f, rows=["A", "B", "C"], seeds=[0, 1, 2], **kw)


def test_a_cell_with_a_diverged_seed_is_its_other_seeds_mean_marked_and_never_bold_beside_cells_of_every_seed():
    # B's two seeds that trained average above A: bold over seeds that survived would hide that one diverged
    t = diverging_table()
    b = t.cell("B", "d")
    assert (b.state, b.n, b.diverged_seeds, b.best, b.test) == ("diverged", 2, (2,), False, None)
    assert t.cell("A", "d").best
    assert TF.cell_text(t, b) == "90.50 ± 0.71 (n=2, 1 diverged)"
    caption = TF.caption_text(t, T.CaptionFacts())
    assert ('A cell marked "k diverged" averages only its other seeds (the k might have pulled its mean down): it '
            "is neither bold nor tested beside cells with a value of every seed.") in caption
    assert "Bold: best printed mean of its column among its cells with a value of every seed" in caption
    assert "every seed done" not in caption, "B's seeds are all done"
    assert "[diverged; not compared: a mean without its diverged seeds, beside cells of every seed]" in TF.explain(t, "B")
    alone = T.build_table(frame({("B", "d"): {0: .90, 1: .91, 2: float("nan")}}), rows=["B"], seeds=[0, 1, 2])
    assert alone.cell("B", "d").best, "a column without a cell of every seed still has a best"


def test_a_cell_without_a_value_still_counts_its_diverged_seeds():
    # a cell of a failed and a diverged seed read "failed (0/2 done)": the diverged seed's "1 without a value"
    # was taken out for "1 diverged", which was then said only beside a value; every seed diverged read
    # "no value (0/2 done)", the "k/n done" of seeds still to come that the diverged cells no longer say
    nan = float("nan")
    t = T.build_table(frame({("A", "d"): {0: nan, 1: "failed"}, ("B", "d"): {0: nan, 1: nan},
                             ("C", "d"): {0: .8, 1: .9}}), rows=["A", "B", "C"], seeds=[0, 1])
    assert TF.cell_text(t, t.cell("A", "d")) == "failed (0/2 done, 1 diverged)"
    assert TF.cell_text(t, t.cell("B", "d")) == "no value (2 diverged)"


def test_a_cell_with_a_diverged_seed_and_one_without_a_value_says_both_and_no_seed_still_to_come():
    # seed 1 diverged, seed 2 completed without best_val_acc (no validation split): the cell read
    # "82.00 (1/3 done, 1 without a value, 1 diverged)", as if a seed were still to come, and was compared as
    # incomplete; with no seed of a value it read "no value (0/2 done, 1 diverged)", its other seed unsaid
    nan = float("nan")
    f = frame({("A", "d"): {0: .80, 1: nan, 2: .81}, ("B", "d"): {0: nan, 1: .75, 2: .76},
               ("C", "d"): {0: .7, 1: .71, 2: .72}})
    f.loc[((f["arm"] == "A") & (f["seed"] == 2)) | ((f["arm"] == "B") & (f["seed"] > 0)), "best_val_acc"] = nan
    t = T.build_table(f, rows=["A", "B", "C"], seeds=[0, 1, 2], metric="best_val_acc",
                      provenance=T.Provenance(status="interrupted"))
    a = t.cell("A", "d", "best_val_acc")
    assert (a.state, a.n, a.diverged_seeds, a.no_value) == ("diverged", 1, (1,), 2)
    assert TF.cell_text(t, a) == "82.00 (n=1, 1 without a value, 1 diverged)"
    assert TF.cell_text(t, t.cell("B", "d", "best_val_acc")) == "no value (2 without a value, 1 diverged)"
    caption = TF.caption_text(t, T.CaptionFacts())
    assert 'A cell marked "k diverged" averages only its other seeds' in caption
    assert "INCOMPLETE" not in caption and "every seed done" not in caption, caption


def test_a_cell_with_a_failed_a_diverged_and_a_sound_seed_says_what_became_of_each():
    # "80.00 (1/3 done, 1 failed, 1 diverged)": the diverged seed is done, and "1/3 done" read as two seeds to come
    nan = float("nan")
    t = T.build_table(frame({("A", "d"): {0: .80, 1: nan, 2: "failed"}, ("B", "d"): {0: .70, 1: .71, 2: .72},
                             ("C", "d"): {0: .80, 1: nan, 2: "running"}}), rows=["A", "B", "C"], seeds=[0, 1, 2],
                      provenance=T.Provenance(status="failed"))
    a = t.cell("A", "d")
    assert TF.cell_text(t, a) == "80.00 (n=1, 1 failed, 1 diverged)"
    assert (a.state, a.best, t.cell("B", "d").best) == ("partial", False, True), "a failed seed may yet come"
    assert TF.cell_text(t, t.cell("C", "d")) == "80.00 (1/3 done, 1 diverged)", "a seed still to come: k/n done"
    caption = TF.caption_text(t, T.CaptionFacts())
    assert ("A seed counted failed has no value: its run ended on an error (sweeps status names it), and continuing "
            "the sweep (sweeps resume) trains it again.") in caption
    sound = T.build_table(frame({("A", "d"): {0: .80, 1: nan}}), rows=["A"], seeds=[0, 1])
    assert "counted failed" not in TF.caption_text(sound, T.CaptionFacts())


def test_the_caption_says_every_delta_reads_a_dash_while_the_baseline_has_no_value():
    # the baseline's seeds running or failed: every Δ read "—" under a caption explaining Δ as if it had values
    t = T.build_table(frame({("A", "d"): {0: "running", 1: "failed"}, ("B", "d"): {0: .8, 1: .9}}),
                      rows=["A", "B"], seeds=[0, 1], baseline="A", in_progress=True)
    assert TF.delta_text(t, "B", "d") == "—"
    caption = TF.caption_text(t, T.CaptionFacts())
    assert ("Δ: none yet, as the baseline, A, has no value yet (its cell says why): every Δ reads —; with one it is "
            "the difference to A in percentage points") in caption
    stopped = T.build_table(frame({("A", "d"): {0: "failed", 1: "failed"}, ("B", "d"): {0: .8, 1: .9}}),
                            rows=["A", "B"], seeds=[0, 1], baseline="A", provenance=T.Provenance(status="failed"))
    assert "Δ: none, as the baseline, A, has no value (its cell says why)" in TF.caption_text(stopped, T.CaptionFacts())
    assert "$\\Delta$: none, as the baseline" in TF.render(stopped, "latex")
    one_column = T.build_table(frame({("A", "d"): {0: "failed"}, ("A", "e"): {0: .7}, ("B", "d"): {0: .8},
                                      ("B", "e"): {0: .9}}), rows=["A", "B"], seeds=[0], baseline="A")
    caption = TF.caption_text(one_column, T.CaptionFacts())
    assert "Δ: difference to A in percentage points" in caption
    assert "The baseline has no value on d: every Δ there reads —." in caption
    assert "The baseline has no value" not in TF.caption_text(diverging_table(baseline="A"), T.CaptionFacts())


def test_a_cell_of_seeds_without_a_value_keeps_its_text_and_the_caption_says_those_seeds_are_done():
    # "82.00 (1/2 done, 1 without a value)" (pinned: test_a_completed_run_without_a_value_is_said_so_in_its_cell)
    # read as a seed still to come; nothing said the other seed was done
    f = frame({("A", "d"): {0: 0.80, 1: 0.81}})
    f.loc[f["seed"] == 1, "best_val_acc"] = float("nan")
    t = T.build_table(f, rows=["A"], seeds=[0, 1], metric="best_val_acc")
    assert TF.cell_text(t, t.cell("A", "d", "best_val_acc")) == "82.00 (1/2 done, 1 without a value)"
    assert ("Without a value: a seed whose run completed without recording the column's metric (as a run without a "
            "validation split records no best validation epoch); it is done, left out of the mean, and not counted "
            "in k/n done, which counts the seeds with a value") in TF.caption_text(t, T.CaptionFacts())
    diverged = T.build_table(frame({("A", "d"): {0: .80, 1: float("nan")}}), rows=["A"], seeds=[0, 1])
    assert "Without a value" not in TF.caption_text(diverged, T.CaptionFacts()), "a diverged seed is said so"


def test_a_stopped_invocation_whose_every_seed_finished_though_one_diverged_is_not_called_incomplete():
    # stopped after its last run ended (Ctrl-C while the report was drawn): "INCOMPLETE ... before every cell
    # finished; cells marked k/n done ... lack seeds" though every seed was done and no cell reads k/n done
    nan = float("nan")
    t = T.build_table(frame({("A", "d"): {0: nan, 1: .7}, ("B", "d"): {0: .8, 1: .9}}), rows=["A", "B"],
                      seeds=[0, 1], provenance=T.Provenance(status="interrupted"))
    assert t.cell("A", "d").state == "diverged"
    assert "INCOMPLETE" not in TF.caption_text(t, T.CaptionFacts())
    every = T.build_table(frame({("A", "d"): {0: nan, 1: nan}, ("B", "d"): {0: .8, 1: .9}}), rows=["A", "B"],
                          seeds=[0, 1], provenance=T.Provenance(status="interrupted"))
    assert "INCOMPLETE" not in TF.caption_text(every, T.CaptionFacts()), "no value (2 diverged): done too"
    running = T.build_table(frame({("A", "d"): {0: nan, 1: .7}, ("B", "d"): {0: .8, 1: "interrupted"}}),
                            rows=["A", "B"], seeds=[0, 1], provenance=T.Provenance(status="interrupted"))
    assert "INCOMPLETE: the sweep stopped (interrupted)" in TF.caption_text(running, T.CaptionFacts())


def test_every_format_marks_a_diverged_cell_alike(tmp_path):
    import csv as csv_module

    t = diverging_table()
    assert "| B | 90.50 ± 0.71 (n=2, 1 diverged) |" in TF.render(t, "markdown")
    assert r"    B & 90.50 $\pm$ 0.71 (n=2, 1 diverged) \\" in TF.render(t, "latex")
    assert "<td>90.50 ± 0.71 (n=2, 1 diverged)</td>" in TF.render(t, "html")
    rows = {r["row"]: r for r in csv_module.DictReader(io.StringIO(TF.render(t, "csv")))}
    assert {k: rows["B"][k] for k in ("state", "n", "no_value", "diverged", "best", "bold")} == {
        "state": "diverged", "n": "2", "no_value": "1", "diverged": "1", "best": "False", "bold": "False"}
    assert (rows["A"]["diverged"], rows["A"]["bold"]) == ("0", "True")
    path = tmp_path / "t.parquet"
    path.write_bytes(TF.render(t, "parquet"))
    b = pd.read_parquet(path).set_index("row").loc["B"]
    assert (b["state"], b["diverged"], b["bold"], list(b["seeds"])) == ("diverged", 1, False, [0, 1])


def test_a_run_that_diverged_partway_is_scored_on_its_epochs_before_and_the_caption_and_record_say_so():
    t = diverging_table(extra_metrics=["final_test_acc"])
    c, c_last = t.cell("C", "d"), t.cell("C", "d", "final_test_acc")
    assert (c.state, c.n) == ("complete", 3), "its sel_test_acc is of the epoch chosen before it diverged"
    assert (c_last.state, c_last.diverged_seeds) == ("diverged", (1,))
    assert TF.cell_text(t, c_last) == "70.50 ± 0.71 (n=2, 1 diverged)"
    assert t.diverged_late == {("C", "d"): ((1, 4),)} and t.diverged == {("B", "d"): (2,)}
    assert ("Training diverged (losses not finite) after epochs with a value, and stopped: C (seed 1 at epoch 4); "
            "such a run is scored on its epochs before (its last epoch's accuracy has no value).") \
        in TF.caption_text(t, T.CaptionFacts())
    record = TF.explain(t, "C")
    assert "seed 1: 72.00  run r-C-d-1  config c-C-1  (its training diverged at epoch 4: of its epochs before)" in record
    assert "seed 1: no value (its training diverged at epoch 4, its last, whose weights scored nothing)" in record



def test_a_column_without_validation_says_its_selected_epoch_is_the_last():
    # no validation split: the cells' sel_* numbers are of the last epoch, whatever the metric's label says
    children = frame({("A", "rafdb"): {0: 0.8, 1: 0.9}, ("A", "ferplus"): {0: 0.7, 1: 0.75}})
    children["best_val_acc"] = [float("nan"), float("nan"), 0.7, 0.72]   # rafdb's runs had no validation
    t = T.build_table(children, rows=["A"], columns=["rafdb", "ferplus"])
    caption = TF.caption_text(t, T.CaptionFacts())
    assert "RAF-DB: no validation split, so the selected epoch is the last one" in caption
    assert "FERPlus: no validation" not in caption
    assert "no validation split" not in TF.caption_text(T.build_table(frame({("A", "d"): {0: 0.8}})),
                                                         T.CaptionFacts()), "no best_val_acc column: unknown"


def test_a_column_whose_runs_diverged_is_not_said_to_lack_validation_and_the_caption_says_they_diverged():
    # every run of the column diverged from its first epoch (an lr far too high): no best_val_acc, as without
    # validation, but no sel_test_acc either; the caption said "no validation split, so the selected epoch is
    # the last one", untrue of a run that had one, and nowhere why its cells have no value
    nan = float("nan")
    children = frame({("A", "rafdb"): {0: nan, 1: nan}, ("B", "rafdb"): {0: nan, 1: nan},
                      ("A", "ferplus"): {0: 0.7, 1: nan}, ("B", "ferplus"): {0: 0.6, 1: 0.65}})
    t = T.build_table(children, rows=["A", "B"], columns=["rafdb", "ferplus"], seeds=[0, 1])
    caption = TF.caption_text(t, T.CaptionFacts())
    assert "no validation split" not in caption
    assert ("No value, as the training diverged (losses not finite) before any epoch could be scored: A on RAF-DB "
            "(seeds 0, 1); A on FERPlus (seed 1); B on RAF-DB (seeds 0, 1).") in caption
    record = TF.explain(t, "A")
    assert "seed 1: no value (its training diverged before any epoch had finite losses to score)" in record
    assert "no validation split" not in record
    healthy = T.build_table(frame({("A", "d"): {0: 0.8, 1: 0.9}}), rows=["A"])
    assert "diverged" not in TF.caption_text(healthy, T.CaptionFacts())


def test_markdown_shows_underscores_and_dollars_as_themselves():
    # two --set keys with underscores would italicise what lies between them; `$` would open math
    t = T.build_table(frame({("A_1 $x", "d"): {0: 0.8}}), rows=["A_1 $x"])
    md = TF.render(t, "markdown", caption_facts=T.CaptionFacts(
        overrides={"model.drop_rate": 0.3, "optim.weight_decay": 0.01}))
    assert "model.drop\\_rate = 0.3, optim.weight\\_decay = 0.01" in md
    assert "| A\\_1 \\$x |" in md
    entity = T.build_table(frame({("&lt;x&gt; ~~a~~", "d"): {0: 0.8}}), rows=["&lt;x&gt; ~~a~~"])
    assert "| &amp;lt;x&amp;gt; \\~\\~a\\~\\~ |" in TF.render(entity, "markdown"), "no entity, no strike-through"


def test_the_caption_of_a_table_without_any_value_claims_no_best():
    # every run failed: the caption said every cell compared had its column's best mean
    t = T.build_table(frame({("A", "d"): {0: "failed", 1: "failed"}}), rows=["A", "B"])
    caption = TF.caption_text(t, T.CaptionFacts())
    assert "No cell has a value: nothing is bold or tested." in caption and "best mean" not in caption


@pytest.mark.parametrize("status, search, said", [
    ("running", False, "No cell has a value yet: nothing is bold or tested."),
    ("interrupted", False, "No cell has a value: nothing is bold or tested."),
    ("completed", False, "No cell has a value: nothing is bold or tested."),
    ("running", True, "No trial has a value yet: nothing is bold or tested."),
    ("interrupted", True, "No trial has a value: nothing is bold or tested."),
    ("failed", True, "No trial has a value: nothing is bold or tested.")])
def test_a_table_without_any_value_says_yet_only_while_its_sweep_runs(status, search, said):
    # a stopped search's caption said "No cell has a value yet", as if its trials would still get one
    t = T.build_table(frame({("A", "d"): {0: "failed"}, ("B", "d"): {0: "pruned"}}), rows=["A", "B"],
                      in_progress=status == "running", provenance=T.Provenance(status=status),
                      select_on="best_val_acc" if search else None)
    caption = TF.caption_text(t, T.CaptionFacts())
    assert said in caption, caption


def test_a_searchs_pruned_failed_or_valueless_trial_reads_as_such_without_a_seed_count():
    # "pruned (0/1 done)" read as a trial that never trained, and "no value (0/1 done)" (a trial that diverged)
    # as one still to finish
    f = frame({("trial a", "d"): {0: 0.8}, ("trial b", "d"): {0: "pruned"}, ("trial c", "d"): {0: "failed"},
               ("trial d", "d"): {0: 0.7}})
    f.loc[f["arm"] == "trial d", "sel_test_acc"] = math.nan
    t = T.build_table(f, select_on="best_val_acc")
    assert [TF.cell_text(t, t.cell(r, "d")) for r in ("trial b", "trial c", "trial d")] == ["pruned", "failed",
                                                                                          "no value"]


@pytest.mark.parametrize("status", ["running", "interrupted", "failed"])
def test_an_unfinished_searchs_caption_speaks_of_trials_not_of_cells_lacking_seeds(status):
    # a search's trial is one run: "cells marked k/n done ... lack seeds" described nothing its table shows
    t = T.build_table(frame({("trial a", "d"): {0: 0.8}, ("trial b", "d"): {0: "running"}}), select_on="best_val_acc",
                      in_progress=status == "running", provenance=T.Provenance(status=status))
    caption = TF.caption_text(t, T.CaptionFacts())
    assert "k/n done" not in caption and "lack seeds" not in caption, caption
    assert (caption.endswith("The search is still running: trials marked running have not finished, and the "
                             "trials it has yet to draw are not in the table.") if status == "running" else
            caption.endswith(f"INCOMPLETE: the search stopped ({status}) before every trial finished; trials marked "
                             "running, interrupted or failed have no value, and the trials it had yet to draw are "
                             "not in the table.")), caption


def test_caption_labels_best_test_epoch_as_optimistic():
    t = T.build_table(frame({("A", "d"): {0: 0.8, 1: 0.9}}), metric="best_test_acc")
    caption = TF.caption_text(t, T.CaptionFacts())
    assert "as commonly reported" in caption and "Optimistic" in caption
    assert "SYNTHETIC" not in caption


def test_markdown_marks_unfinished_cells(rendered):
    _, table, facts = rendered
    md = TF.render(table, "markdown", caption_facts=facts)
    assert "84.50 (1/3 done)" in md and "failed (0/3 done)" in md
    # the best of a column is among its cells with every seed: a higher mean over fewer seeds is not bold
    assert "| 63.50 ± 0.71 (2/3 done) |" in md and "| **62.17 ± 0.76** |" in md


def test_parquet_one_row_per_cell_with_reproducibility_record(rendered):
    runs, table, facts = rendered
    df = pd.read_parquet(io.BytesIO(TF.render(table, "parquet", caption_facts=facts)))
    assert len(df) == len(table.rows) * len(table.columns) * len(table.metrics)
    mad = df[(df["row"] == "+ MAD") & (df["column"] == "rafdb") & (df["metric"] == "sel_test_acc")].iloc[0]
    done = runs.children[(runs.children["arm"] == "+ MAD") & (runs.children["data"] == "rafdb")]
    assert list(mad["seeds"]) == [0, 1, 2]
    assert set(mad["run_ids"]) == set(done["run_id"])
    assert list(mad["config_hashes"]) == ["cell-2-0", "cell-2-1", "cell-2-2"]
    assert (mad["git_commit"], mad["data_fingerprint"], mad["parent_run_id"]) == ("abc1234", "fp-rafdb",
                                                                                   runs.parent.run_id)
    assert '"torch": "2.14.1"' in mad["package_versions"]
    assert mad["mean_pct"] == pytest.approx(84.8333, abs=1e-3) and bool(mad["synthetic"])
    # every number in percent, as the *_pct columns say: the seeds' values average to the mean
    assert sum(mad["values_pct"]) / 3 == pytest.approx(mad["mean_pct"], abs=1e-5)
    assert "values" not in df.columns


def test_write_tables_and_log_to_parent(rendered, tmp_path):
    runs, table, facts = rendered
    paths = TF.write_tables(table, tmp_path, caption_facts=facts, stem=SWEEP)
    assert sorted(p.name for p in paths) == sorted(f"{SWEEP}{s}" for s in (".tex", ".md", ".csv", ".parquet", ".html"))
    T.log_to_parent(runs, paths)
    logged = {f.path for f in runs.client.list_artifacts(runs.parent.run_id, "tables")}
    assert f"tables/{SWEEP}.tex" in logged and f"tables/{SWEEP}.parquet" in logged


def _pdflatex() -> str | None:
    found = shutil.which("pdflatex")
    if found is None and not os.environ.get("SWEEPS_REQUIRE_PDFLATEX"):
        pytest.skip("pdflatex is not installed (set SWEEPS_REQUIRE_PDFLATEX=1 to make this a failure)")
    if found is None:
        pytest.fail("SWEEPS_REQUIRE_PDFLATEX is set but pdflatex is not installed")
    return found


def test_latex_compiles_with_pdflatex(rendered, tmp_path):
    pdflatex = _pdflatex()
    _, table, facts = rendered
    (tmp_path / "table.tex").write_text(TF.latex_document(TF.render(table, "latex", caption_facts=facts)))
    proc = subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error", "table.tex"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert (tmp_path / "table.pdf").stat().st_size > 1000


def test_latex_labels_with_greek_letters_and_math_symbols_compile(tmp_path):
    # pdflatex stopped at "Unicode character β (U+03B2) not set up for use with LaTeX": a label "λ = 0.1"
    # broke the paper's build
    greek = "".join(chr(c) for c in range(0x386, 0x3CF) if c not in (0x387, 0x38B, 0x38D, 0x3A2))   # every letter
    label = f"{greek} ϵ ϕ ϑ ϖ ϱ ϐ ϰ ϒ ϴ ≈ ≠ ∞ ∼ √ ✓ ✗ ⇒ ∈ ∑ ≡ − ⋅ ∝"   # and the letters' variant forms
    t = T.build_table(frame({(label, "d"): {0: 0.8, 1: 0.81}, ("B", "d"): {0: 0.7, 1: 0.72}}), rows=[label, "B"])
    tex = TF.render(t, "latex")
    assert r"$\lambda$" in tex and r"$\Omega$" in tex and r"$\approx$" in tex
    pdflatex = _pdflatex()
    (tmp_path / "t.tex").write_text(TF.latex_document(tex))
    proc = subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error", "t.tex"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:]


def _compiles(tmp_path, tex: str) -> None:
    pdflatex = _pdflatex()
    (tmp_path / "t.tex").write_text(TF.latex_document(tex))
    proc = subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error", "t.tex"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:]


def test_latex_labels_with_the_symbols_researchers_type_compile(tmp_path):
    # pdflatex stopped at "Unicode character ∆ (U+2206) not set up for use with LaTeX": ∆ (the increment sign a
    # Mac types), 10⁻³, ✔️ (✔ and its emoji-style selector) and the like passed through unmapped
    label = "∆acc lr=10⁻³ x₁₂ ✔\ufe0f ✘ ∇ ∂ ∀ ∅ ⊂ ∪ ≪ ⊕ ∘ ∓ ℝ ℓ ↔ ⇔ ⟶ ′ ⩽ ⋯ ★ narrow\u202fspace caf\u0065\u0301"
    t = T.build_table(frame({(label, "d"): {0: 0.8, 1: 0.81}, ("B", "d"): {0: 0.7, 1: 0.72}}), rows=[label, "B"])
    tex = TF.render(t, "latex")
    assert (r"$\Delta$acc lr=10$^{-3}$ x$_{12}$ {\expandafter\ifx\csname checkmark\endcsname\relax$\surd$\else\ensuremath{\checkmark}\fi} "
            r"$\times$ $\nabla$" in tex
            and r"$\mathbf{R}$" in tex and "narrow\\,space café &" in tex)
    _compiles(tmp_path, tex)


def test_latex_check_marks_and_stars_are_drawn_as_amssymb_draws_them_where_the_paper_loads_it(tmp_path):
    # ✓ printed as $\surd$, a square root sign, and ★ as the small \star (⋆); amssymb's \checkmark and \bigstar
    # are taken where the paper loads amssymb, and the table still compiles with booktabs alone (√, ⋆)
    pdflatex = _pdflatex()
    t = T.build_table(frame({("✓MAD ★", "d"): {0: 0.8, 1: 0.81}, ("✔\ufe0f B", "d"): {0: 0.7, 1: 0.72}}),
                      rows=["✓MAD ★", "✔\ufe0f B"])
    tex = TF.render(t, "latex", caption_facts=T.CaptionFacts(title="Arms ✓"))
    assert tex.startswith("% ✓★: drawn so with \\usepackage{amssymb} in the paper's preamble, else as √⋆\n"
                          "\\begin{table}[t]"), tex
    assert r"    {\expandafter\ifx\csname checkmark\endcsname\relax$\surd$\else\ensuremath{\checkmark}\fi}MAD " \
           r"{\expandafter\ifx\csname bigstar\endcsname\relax$\star$\else\ensuremath{\bigstar}\fi} & " in tex
    assert "% " not in TF.render(T.build_table(frame({("B", "d"): {0: 0.7, 1: 0.72}})), "latex")

    def glyphs(preamble: str) -> str:   # the glyph names of the fonts the PDF embeds (uncompressed: readable)
        document = TF.latex_document(tex).replace("\\begin{document}", preamble + "\\begin{document}")
        (tmp_path / "t.tex").write_text("\\pdfcompresslevel=0 \\pdfobjcompresslevel=0\n" + document)
        proc = subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error", "t.tex"], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout[-3000:]
        return " ".join(re.findall(r"/CharSet *\(([^)]*)\)", (tmp_path / "t.pdf").read_bytes().decode("latin-1")))

    assert "/check" in glyphs("\\usepackage{amssymb}\n") and "/radical" not in glyphs("\\usepackage{amssymb}\n")
    assert "/check" not in glyphs("") and "/radical" in glyphs("")   # √, without amssymb
    # \checkmark left \relax by a `\csname checkmark\endcsname` (\@ifundefined before LaTeX 2018 made it so):
    # \ifdefined counted it defined, and every ✓ vanished from the PDF without a word
    relaxed = "\\expandafter\\let\\csname checkmark\\endcsname\\relax\n"
    assert "/radical" in glyphs(relaxed) and "/check" in glyphs(relaxed + "\\usepackage{amssymb}\n")


def test_latex_straight_double_quotes_open_and_close_by_their_place_and_compile(tmp_path):
    # the text fonts set a straight " as a closing quote at both ends: a label "no MAD" printed ”no MAD”
    rows = ['"no MAD"', 'drop "rate" (B="2")', 'x=""']
    t = T.build_table(frame({(r, "d"): {0: 0.5 + i / 10, 1: 0.52 + i / 10} for i, r in enumerate(rows)}), rows=rows)
    tex = TF.render(t, "latex", caption_facts=T.CaptionFacts(title='The "components" table'))
    assert "    ``no MAD'' & " in tex and "    drop ``rate'' (B=``2'') & " in tex and "    x=``'' & " in tex
    assert "The ``components'' table." in tex and '"' not in tex
    assert '"no MAD"' in TF.render(t, "markdown")   # the other formats keep the text as typed
    _compiles(tmp_path, tex)


def test_latex_straight_single_quote_opening_a_quotation_opens_it_and_an_apostrophe_stays(tmp_path):
    # the text fonts set a straight ' as a closing quote (’), right for B=4's but not for a label 'best' arm,
    # which printed ’best’ arm
    rows = ["'best' arm", "B=4's", "'90s recipe", "(lr='auto')"]
    t = T.build_table(frame({(r, "d"): {0: 0.5 + i / 10, 1: 0.52 + i / 10} for i, r in enumerate(rows)}), rows=rows)
    tex = TF.render(t, "latex", caption_facts=T.CaptionFacts(title="The 'paper' profile's table"))
    assert "    ‘best' arm & " in tex and "    B=4's & " in tex and "    '90s recipe & " in tex
    assert "    (lr=‘auto') & " in tex and "The ‘paper' profile's table." in tex
    assert "'best' arm" in TF.render(t, "markdown")   # the other formats keep the text as typed
    _compiles(tmp_path, tex)


def test_latex_table_with_a_text_symbol_older_latex_needs_textcomp_for_says_so_and_compiles(tmp_path):
    # ° µ € pass through as typed: LaTeX before 2020 stops at them without \usepackage{textcomp}
    t = T.build_table(frame({("warm-up 5°C, 2µm, 3€", "d"): {0: 0.8, 1: 0.81}, ("B", "d"): {0: 0.7, 1: 0.72}}),
                      rows=["warm-up 5°C, 2µm, 3€", "B"])
    tex = TF.render(t, "latex")
    assert tex.startswith("% °µ€: LaTeX before 2020 sets these only with \\usepackage{textcomp}\n\\begin{table}[t]")
    assert "\\usepackage{textcomp}" in TF.latex_document(tex)
    plain = TF.render(T.build_table(frame({("B", "d"): {0: 0.7, 1: 0.72}})), "latex")
    assert plain.startswith("\\begin{table}") and "textcomp" not in TF.latex_document(plain)
    _compiles(tmp_path, tex)


def test_latex_every_character_the_tables_map_or_pass_through_compiles(tmp_path):
    # what latex_escape passes through is what pdflatex sets by itself, and what it maps, it maps to LaTeX
    # that compiles with only the packages the README names: a wrong entry fails here, in CI
    every = "".join(sorted(TF._SETS_ITSELF | set(TF._LATEX_CHARS) | set(TF._SUPERSCRIPTS) | set(TF._SUBSCRIPTS)))
    _compiles(tmp_path, "\n".join(TF.latex_escape(every[i:i + 40]) + "\\par" for i in range(0, len(every), 40)))


def test_latex_keeps_a_character_pdflatex_does_not_set_as_typed_and_warns_of_it_by_name(tmp_path, caplog):
    # the .tex was written without a word, and the paper's build stopped at "Unicode character 🚀 (U+1F680) not
    # set up for use with LaTeX"; refusing it would refuse a Cyrillic or CJK paper its own script (a font
    # package, or xelatex, sets it), so the table keeps it and names the character, its code point and label
    t = T.build_table(frame({("MAD 🚀", "d"): {0: 0.8, 1: 0.81}, ("B", "d"): {0: 0.7, 1: 0.72}}), rows=["MAD 🚀", "B"])
    with caplog.at_level(logging.WARNING, logger="sweeps.table_formats"):
        written = TF.write_tables(t, tmp_path / "out")
    assert "MAD 🚀" in next(p for p in written if p.suffix == ".tex").read_text(encoding="utf-8")
    assert re.search(r"the LaTeX table's row label 'MAD 🚀': its '🚀' \(U\+1F680 ROCKET\) is a character pdflatex "
                     r"does not set by itself .*: it is written as typed", caplog.text), caplog.text
    caplog.clear()
    fine = T.build_table(frame({("A", "d"): {0: 0.8, 1: 0.81}}), rows=["A"])
    with caplog.at_level(logging.WARNING, logger="sweeps.table_formats"):
        assert "Стек" in TF.render(fine, "latex", caption_facts=T.CaptionFacts(title="Стек"))
    assert "title 'Стек': its 'С' (U+0421 CYRILLIC CAPITAL LETTER ES)" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sweeps.table_formats"):
        TF.render(T.build_table(frame({("∆ MAD 10⁻³", "d"): {0: 0.8, 1: 0.81}}), rows=["∆ MAD 10⁻³"]), "latex")
    assert caplog.text == "", "what latex_escape maps is no warning"


def test_latex_labels_keep_less_than_greater_than_and_bar_and_compile(tmp_path):
    # pdflatex's default font encoding prints a bare < as ¡, > as ¿ and | as an em dash
    t = T.build_table(frame({("p<0.5 | a>b & 10% #1", "d"): {0: 0.8, 1: 0.81}, ("B", "d"): {0: 0.7, 1: 0.72}}),
                      rows=["p<0.5 | a>b & 10% #1", "B"])
    tex = TF.render(t, "latex")
    assert r"p\textless{}0.5 \textbar{} a\textgreater{}b \& 10\% \#1 &" in tex
    pdflatex = _pdflatex()
    (tmp_path / "t.tex").write_text(TF.latex_document(tex))
    proc = subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error", "t.tex"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:]


def test_latex_wide_fits_a_two_column_paper_where_the_one_column_table_overflows(tmp_path):
    # one data set, accuracy and MCA and Δ with its interval: wider than a column, not than the page
    pdflatex = _pdflatex()
    cells = {(arm, "rafdb"): {0: base + 0.010, 1: base + 0.014, 2: base + 0.009}
             for arm, base in (("Baseline", 0.80), ("+ Local CNNs", 0.83), ("+ MAD", 0.84))}
    table = T.build_table(frame(cells), rows=["Baseline", "+ Local CNNs", "+ MAD"], baseline="Baseline",
                          extra_metrics=["sel_test_mca"])
    facts = T.CaptionFacts(title="Components")

    def overfull(wide: bool) -> bool:
        tex = TF.render(table, "latex", caption_facts=dataclasses.replace(facts, wide=wide))
        assert tex.startswith("\\begin{table*}[t]" if wide else "\\begin{table}[t]")
        (tmp_path / "paper.tex").write_text("\\documentclass[twocolumn]{article}\n\\usepackage{booktabs}\n"
                                            f"\\begin{{document}}\n{tex}\\end{{document}}\n")
        proc = subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error", "paper.tex"], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout[-3000:]
        return "Overfull \\hbox" in (tmp_path / "paper.log").read_text(errors="replace")

    assert overfull(wide=False) and not overfull(wide=True)


def _box_widths(pdflatex: str, folder, tex: str) -> tuple[float, float]:
    """(width of the table's box, \\linewidth) in pt, as pdflatex sets the rendered table in a plain article."""
    inner = tex[tex.index("\\label"):tex.index("\\end{table")].split("\n", 1)[1]
    (folder / "w.tex").write_text(
        "\\documentclass{article}\n\\usepackage{booktabs}\n\\usepackage{graphicx}\n\\begin{document}\n"
        f"\\small\\setbox0\\hbox{{\\ignorespaces {inner}\\unskip}}"
        "\\typeout{BOX=\\the\\wd0;LINE=\\the\\linewidth;}\n\\end{document}\n")
    proc = subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error", "w.tex"], cwd=folder,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:]
    box, line = re.search(r"BOX=([\d.]+)pt;LINE=([\d.]+)pt;", proc.stdout).groups()
    return float(box), float(line)


def test_latex_fit_shrinks_a_table_wider_than_the_text_and_leaves_a_narrow_one_as_it_is(tmp_path):
    # two data sets, accuracy, MCA and Δ with its interval: ~530 pt, wider than even a --wide page
    pdflatex = _pdflatex()
    arms = (("Baseline", 0.80), ("+ Local CNNs", 0.83), ("+ MAD", 0.84))
    cells = {(arm, d): {0: base + 0.010, 1: base + 0.014, 2: base + 0.009} for arm, base in arms
             for d in ("rafdb", "affectnet")}
    wide = T.build_table(frame(cells), rows=[a for a, _ in arms], baseline="Baseline", extra_metrics=["sel_test_mca"])
    narrow = T.build_table(frame({(a, "rafdb"): v for (a, d), v in cells.items() if d == "rafdb"}),
                           rows=[a for a, _ in arms])
    facts = T.CaptionFacts(title="Components")
    fit = dataclasses.replace(facts, fit=True)

    natural, line = _box_widths(pdflatex, tmp_path, TF.render(wide, "latex", caption_facts=facts))
    fitted, _ = _box_widths(pdflatex, tmp_path, TF.render(wide, "latex", caption_facts=fit))
    assert natural > line and fitted == pytest.approx(line, abs=0.5)
    small, _ = _box_widths(pdflatex, tmp_path, TF.render(narrow, "latex", caption_facts=facts))
    small_fit, _ = _box_widths(pdflatex, tmp_path, TF.render(narrow, "latex", caption_facts=fit))
    assert small < line and small_fit == pytest.approx(small, abs=0.05), "a narrow table is never enlarged"


# --------------------------------------------------------------------------- the format follows -o FILE's suffix

COMPONENTS_SPEC = """
name: components
kind: table
seeds: [0, 1, 2]
arms:
  - {label: Baseline, set: {model.local_branch: false, model.encoder: false}}
  - {label: + Local CNNs, set: {model.local_branch: true, model.drop_variant: none, model.encoder: false}}
  - {label: + MAD, set: {model.local_branch: true, model.drop_variant: mad, model.encoder: false}}
  - {label: + ViT, set: {model.local_branch: true, model.drop_variant: mad, model.encoder: true}}
table: {baseline: Baseline}
"""


@pytest.fixture
def recorded_cli(recorded, monkeypatch):  # noqa: F811
    """`sweeps table components` over the recorded fixture sweep (its spec given, not downloaded)."""
    runs = T.load_sweep_runs(SWEEP, tracking_uri=recorded)
    monkeypatch.setattr(C, "_load_runs", lambda name, run_id, uri: (runs, load_text(COMPONENTS_SPEC)))
    return lambda *args: CliRunner().invoke(C.cli, ["table", SWEEP, *map(str, args)])


@pytest.mark.parametrize("name, marker", [("t.tex", "\\begin{table}"), ("t.html", "<table"),
                                          ("t.csv", "row,row_note,column,metric")])
def test_table_output_suffix_chooses_the_format_when_none_is_given(recorded_cli, tmp_path, name, marker):
    out = tmp_path / name
    result = recorded_cli("-o", out)
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith(marker) or marker in out.read_text().splitlines()[0]


def test_table_parquet_suffix_writes_parquet(recorded_cli, tmp_path):
    out = tmp_path / "t.parquet"
    assert recorded_cli("-o", out).exit_code == 0
    assert len(pd.read_parquet(out)) > 0


def test_table_format_that_contradicts_the_output_suffix_is_a_usage_error(recorded_cli, tmp_path):
    result = recorded_cli("--format", "markdown", "-o", tmp_path / "t.tex")
    assert result.exit_code == 2
    assert "--format markdown does not fit -o" in result.output
    assert not (tmp_path / "t.tex").exists()



@pytest.mark.parametrize("name", ["new.yaml", "t.tex.bak", "results.json"])
def test_table_output_suffix_of_no_format_without_format_is_a_usage_error_naming_it_and_writing_nothing(
        recorded_cli, tmp_path, name):
    # `-o new.yaml` wrote Markdown into it without a word
    out = tmp_path / name
    result = recorded_cli("-o", out)
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())   # click wraps the message
    assert f"its suffix {out.suffix} names no table format" in message
    assert ("name the file *.tex or *.latex (latex), *.md or *.markdown (markdown), *.html or *.htm (html), "
            "*.csv (csv), *.parquet (parquet), or give --format") in message
    assert "give --format (latex, markdown, html, csv, parquet)" in message
    assert not out.exists()


def test_table_given_a_format_writes_it_to_any_suffix_and_markdown_to_a_txt_or_bare_name(recorded_cli, tmp_path):
    assert recorded_cli("--format", "csv", "-o", tmp_path / "t.dat").exit_code == 0
    assert (tmp_path / "t.dat").read_text().startswith("row,row_note,column,metric")
    for name in ("t.txt", "table"):
        assert recorded_cli("-o", tmp_path / name).exit_code == 0
        assert (tmp_path / name).read_text().startswith("**Table.**")


def test_table_explain_writes_the_rows_record_to_the_output_file(recorded_cli, tmp_path):
    out = tmp_path / "record.txt"
    result = recorded_cli("--explain", "+ MAD", "-o", out)
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("Row '+ MAD' of sweep components"), "-o was ignored: printed to stdout only"


def test_table_output_that_is_a_folder_or_under_a_file_is_refused_naming_a_file_that_would_do(recorded_cli, tmp_path):
    # `-o tables/` wrote a file named tables, in Markdown; an existing folder got click's "is a directory" with no
    # word of what to give; a path under a file failed after the table was built ("[Errno 17] File exists")
    def refused(*args):
        result = recorded_cli(*args)
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
        return " ".join(result.output.split())

    assert (f"-o {tmp_path / 'tables'}/ is a folder: name a file in it, e.g. -o {tmp_path / 'tables' / SWEEP}.md"
            in refused("-o", f"{tmp_path / 'tables'}/"))
    assert not (tmp_path / "tables").exists()
    assert f"-o {tmp_path} is a folder: name a file in it, e.g. -o {tmp_path / SWEEP}.tex" in refused(
        "--format", "latex", "-o", tmp_path)
    (tmp_path / "notes").write_text("mine")
    assert (f"-o {tmp_path / 'notes' / 'sub' / 't.parquet'}: {tmp_path / 'notes'} is a file, not a folder, so nothing "
            f"can be written under it; name a file in a folder, e.g. -o {tmp_path / 't.parquet'}") in refused(
        "-o", tmp_path / "notes" / "sub" / "t.parquet")
    assert (tmp_path / "notes").read_text() == "mine"
    assert "-o is empty: give a file name" in refused("-o", "")   # `-o "$OUT"`, OUT unset: it printed to stdout



def test_table_run_given_empty_is_refused_not_read_as_the_invocation_run_last(recorded_cli):
    # `sweeps table NAME --run "$RUN"` with RUN unset showed the invocation run last, as if it were the one named
    result = recorded_cli("--run", "")
    assert result.exit_code == 2, result.output
    assert ("--run is empty: give a parent run id or a unique prefix of one (`sweeps status components` names the "
            "invocations), or leave --run out for the one run last") in " ".join(result.output.split())

def test_table_output_dash_is_stdout_and_parquet_goes_to_a_folder_it_makes(recorded_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = recorded_cli("-o", "-")
    assert result.exit_code == 0 and result.output.startswith("**Table.**"), result.output
    assert not (tmp_path / "-").exists(), "it wrote a file named -"
    assert recorded_cli("-o", tmp_path / "new" / "deeper" / "t.parquet").exit_code == 0
    assert len(pd.read_parquet(tmp_path / "new" / "deeper" / "t.parquet")) > 0


def test_table_metric_a_loss_of_a_table_of_arms_is_refused_naming_the_metrics_that_may_be_first(recorded_cli, tmp_path):
    # refused, but telling only of the spec's table.metrics: not which --metric a table of arms takes first
    out = tmp_path / "t.tex"
    result = recorded_cli("--metric", "best_val_loss", "-o", out)
    assert result.exit_code == 1, result.output
    message = " ".join(result.output.split())
    assert "Error: best_val_loss is a loss: a table's first metric is an accuracy" in message
    assert "give a first metric of best_val_acc, sel_test_acc, sel_test_mca, best_test_acc" in message
    assert "Traceback" not in result.output and not out.exists()

# the spec gives the paper's RAF-DB and FERPlus figures; the recorded sweep ran on RAF-DB and AffectNet
PAPER_SPEC = COMPONENTS_SPEC.replace("table: {baseline: Baseline}",
                                     'table: {baseline: Baseline, paper: {"+ ViT": {rafdb: 90.91, ferplus: 90.83}}}')


def test_sweep_table_shows_the_paper_figures_of_the_columns_it_has_and_drops_the_others(recorded):  # noqa: F811
    runs = T.load_sweep_runs(SWEEP, tracking_uri=recorded)      # ran on rafdb and affectnet, not ferplus
    table = sweep_table(runs, load_text(PAPER_SPEC))
    assert table.papers == [T.PaperRow("Paper (+ ViT)", {"rafdb": 90.91}, "+ ViT")]


def test_the_papers_best_epoch_figure_sits_under_the_best_test_epoch_column_the_spec_names(recorded):  # noqa: F811
    # the paper's figure was shown under the honest sel_test_acc, beside numbers chosen another way
    runs = T.load_sweep_runs(SWEEP, tracking_uri=recorded)
    spec = load_text(PAPER_SPEC.replace("paper: {", "metrics: [sel_test_acc, best_test_acc], "
                                                    "paper_metric: best_test_acc, paper: {"))
    records = {r["metric"]: r["paper_pct"] for r in TF.cell_records(sweep_table(runs, spec))
               if r["row"] == "+ ViT" and r["column"] == "rafdb"}
    assert records == {"sel_test_acc": None, "best_test_acc": 90.91}
    honest = {r["metric"]: r["paper_pct"] for r in TF.cell_records(sweep_table(runs, load_text(
        PAPER_SPEC.replace("paper: {", "metrics: [sel_test_acc, best_test_acc], paper: {"))))
        if r["row"] == "+ ViT" and r["column"] == "rafdb"}
    assert honest == {"sel_test_acc": 90.91, "best_test_acc": None}, "unsaid: under the first metric, as before"


def test_a_spec_giving_the_papers_figures_of_several_arms_gets_a_paper_row_for_each(recorded):  # noqa: F811
    # only the first arm's were shown (a warning in the log said so): a reproduction of an ablation table lost
    # every other arm's reported figure
    runs = T.load_sweep_runs(SWEEP, tracking_uri=recorded)
    spec = load_text(PAPER_SPEC.replace('paper: {"+ ViT": {rafdb: 90.91, ferplus: 90.83}}',
                                        'paper: {"+ ViT": {rafdb: 90.91}, Baseline: {rafdb: 86.25, affectnet: 58.0}}'))
    table = sweep_table(runs, spec)
    assert [(p.label, p.arm) for p in table.papers] == [("Paper (+ ViT)", "+ ViT"), ("Paper (Baseline)", "Baseline")]
    md = TF.render(table, "markdown")
    assert re.search(r"^\| Paper \(\+ ViT\) \| 90\.91 \| — \| — \| — \|$", md, flags=re.M), md
    assert re.search(r"^\| Paper \(Baseline\) \| 86\.25 \| — \| 58\.00 \| — \|$", md, flags=re.M), md
    assert "Paper (+ ViT), Paper (Baseline): the figures as published for those arms" in md
    records = {(r["row"], r["column"]): (r["paper_pct"], r["paper_label"]) for r in TF.cell_records(table)}
    assert records[("+ ViT", "rafdb")] == (90.91, "Paper (+ ViT)")
    assert records[("Baseline", "affectnet")] == (58.0, "Paper (Baseline)")
    assert records[("+ MAD", "rafdb")] == (None, ""), "an arm the paper gives no figure of: none beside it"


def test_sweep_table_without_any_paper_column_has_no_paper_row(recorded):  # noqa: F811
    runs = T.load_sweep_runs(SWEEP, tracking_uri=recorded)
    table = sweep_table(runs, load_text(PAPER_SPEC.replace("rafdb: 90.91, ", "")))
    assert table.papers == []


# --------------------------------------------------------------------------- why a cell is untested or empty

def test_caption_of_a_table_whose_cells_all_tie_for_best_does_not_blame_missing_seeds():
    # two seeds each, equal means: every cell is best, none is tested, but each has 2 matched seeds
    t = T.build_table(frame({("A", "d"): {0: 0.5, 1: 0.6}, ("B", "d"): {0: 0.5, 1: 0.6}}), rows=["A", "B"])
    caption = TF.caption_text(t, T.CaptionFacts())
    assert t.n_comparisons == 0 and t.cell("A", "d").best and t.cell("B", "d").best
    assert "no cell has the 2 matched seeds" not in caption
    assert "every cell compared has its column's best mean, so none is tested against it." in caption


def test_caption_of_a_one_seed_table_still_says_no_cell_has_two_matched_seeds():
    t = T.build_table(frame({("A", "d"): {0: 0.5}, ("B", "d"): {0: 0.6}}), rows=["A", "B"])
    assert "no cell has the 2 matched seeds a test against it needs." in TF.caption_text(t, T.CaptionFacts())


@pytest.mark.parametrize("status", ["running", "interrupted", "completed"])
def test_a_cell_whose_completed_runs_all_lack_the_metric_says_no_value(status):
    f = frame({("A", "d"): {0: 0.5, 1: 0.6}, ("B", "d"): {0: 0.7, 1: 0.8}})
    f.loc[f["arm"] == "B", "sel_test_acc"] = math.nan       # e.g. best_val_acc of a run without validation
    t = T.build_table(f, rows=["A", "B"], in_progress=status == "running", provenance=T.Provenance(status=status))
    cell = t.cell("B", "d")
    assert cell.state == "no value"
    assert TF.cell_text(t, cell) == "no value (0/2 done)"


def test_explain_names_the_completed_runs_a_cell_has_no_value_of():
    # a run that recorded no value of the metric was left out of the row's record: only its count was shown
    f = frame({("A", "d"): {0: 0.5, 1: 0.6}, ("B", "d"): {0: 0.7, 1: 0.8}})
    f.loc[(f["arm"] == "B") & (f["seed"] == 1), "sel_test_acc"] = math.nan
    t = T.build_table(f, rows=["A", "B"])
    [run_id] = f.loc[(f["arm"] == "B") & (f["seed"] == 1), "run_id"]
    text = TF.explain(t, "B")
    assert f"    seed 1: no value (its run completed without recording sel_test_acc)  run {run_id}\n" in text, text
    assert "seed 0: 70.00" in text


def test_a_declared_row_without_any_run_is_still_missing():
    t = T.build_table(frame({("A", "d"): {0: 0.5}}), rows=["A", "B"])
    assert t.cell("B", "d").state == "missing"


# --------------------------------------------------------------------------- LaTeX row labels

BRACKET_ROWS = ["[B=2] MAD", "[B=4] MAD"]


def _bracketed_table():
    first, second = BRACKET_ROWS
    return T.build_table(frame({(first, "d"): {0: 0.5, 1: 0.6}, (second, "d"): {0: 0.7, 1: 0.85}}), rows=BRACKET_ROWS)


def test_latex_row_label_starting_with_a_bracket_is_not_read_as_an_optional_argument():
    tex = TF.render(_bracketed_table(), "latex")
    assert "    {}[B=2] MAD & " in tex and "    {}[B=4] MAD & " in tex


def test_latex_row_label_starting_with_a_bracket_compiles(tmp_path):
    pdflatex = _pdflatex()
    (tmp_path / "t.tex").write_text(TF.latex_document(TF.render(_bracketed_table(), "latex")))
    result = subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error", "t.tex"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:]


# --------------------------------------------------------------------------- Parquet column types

def _write(table, path):
    path.write_bytes(TF.render(table, "parquet"))
    return path


def test_parquet_numbers_are_float_columns_also_where_every_value_is_missing(tmp_path):
    one_seed = T.build_table(frame({("A", "d"): {0: 0.5}}), rows=["A", "B"])   # no std, no test, no paper
    schema = pq.read_schema(_write(one_seed, tmp_path / "a.parquet"))
    for name in ("mean_pct", "std_pct", "p_holm", "delta_pct", "paper_pct"):
        assert schema.field(name).type == pa.float64(), name
    assert schema.field("seeds").type == pa.list_(pa.int64())
    assert schema.field("values_pct").type == pa.list_(pa.float64())


def test_parquet_tables_of_two_sweeps_read_together(tmp_path):
    _write(T.build_table(frame({("A", "d"): {0: 0.5}}), rows=["A"]), tmp_path / "a.parquet")
    _write(T.build_table(frame({("A", "d"): {0: 0.5, 1: 0.6}, ("B", "d"): {0: 0.7, 1: 0.75}}), rows=["A", "B"],
                         baseline="A", paper={"d": 90.0}), tmp_path / "b.parquet")
    both = pd.read_parquet(tmp_path)
    assert len(both) == 3
    assert both["std_pct"].isna().sum() == 1


def test_csv_writes_a_delta_of_float_noise_as_zero_not_minus_zero():
    # 0.1 + 0.2 - 0.3 is 5.6e-17: the mean difference rounds to -0.0, which the table prints +0.00
    t = T.build_table(frame({("A", "d"): {0: 0.1 + 0.2, 1: 0.5}, ("B", "d"): {0: 0.3, 1: 0.5}}), rows=["A", "B"],
                      baseline="A")
    rows = list(csv.DictReader(io.StringIO(TF.render(t, "csv"))))
    assert [r["delta_pct"] for r in rows if r["row"] == "B"] == ["0"]


def test_a_searchs_table_heads_its_rows_trial_and_a_tables_arm():
    # a search's rows are its trials ("trial 1a2b3c4d (lr ..., depth 2)"): its table headed them "Arm"
    from types import SimpleNamespace

    from search_spaces import load
    from sweeps.report import caption_facts

    runs = SimpleNamespace(sweep="s", parent=T.ParentRun("r", "n", "completed", 0, {}), seeds_left_out=())
    assert caption_facts(runs, load("tune")).row_header == "Trial"
    assert caption_facts(runs, load("mad_vs_dropout")).row_header == "Arm"


def test_explain_says_which_column_is_synthetic_where_the_synthetic_faces_stand_beside_real_data():
    # --data synthetic --data rafdb=...: the parent is not all-synthetic, and the record said "synthetic data: no"
    children = frame({("A", "synthetic"): {0: 0.5}, ("A", "rafdb"): {0: 0.8}})
    mixed = T.build_table(children, rows=["A"], columns=["synthetic", "rafdb"], provenance=T.Provenance(profile="p"))
    assert "Profile: p; synthetic data: the Synthetic column;" in TF.explain(mixed, "A")
    real = T.build_table(frame({("A", "rafdb"): {0: 0.8}}), rows=["A"], provenance=T.Provenance(profile="p"))
    assert "Profile: p; synthetic data: no;" in TF.explain(real, "A")
    synthetic = T.build_table(frame({("A", "synthetic"): {0: 0.8}}), rows=["A"],
                              provenance=T.Provenance(profile="p", synthetic=True))
    assert "Profile: p; synthetic data: yes;" in TF.explain(synthetic, "A")


def test_write_tables_replaces_each_table_whole_and_keeps_a_link(rendered, tmp_path):
    """A reader of the earlier table (a LaTeX build, a viewer) still reads it whole while a new one is written,
    and a table file that is a link into a paper's repository stays a link, to the new table."""
    _, table, facts = rendered
    first = TF.write_tables(table, tmp_path / "out", caption_facts=facts, stem=SWEEP, formats=("latex",))[0]
    paper = tmp_path / "paper"
    paper.mkdir()
    target = paper / "t.tex"
    target.write_text("% the paper's old table\n", encoding="utf-8")
    (tmp_path / "linked").mkdir()
    link = tmp_path / "linked" / f"{SWEEP}.tex"
    link.symlink_to(target)
    with open(first, encoding="utf-8") as reader:
        old = first.read_text(encoding="utf-8")
        TF.write_tables(table, tmp_path / "out", caption_facts=facts, stem=SWEEP, formats=("latex",), decimals=1)
        assert reader.read() == old   # the earlier file, whole: replaced, not rewritten in place
    assert first.read_text(encoding="utf-8") != old
    TF.write_tables(table, tmp_path / "linked", caption_facts=facts, stem=SWEEP, formats=("latex",))
    assert link.is_symlink() and target.read_text(encoding="utf-8") == old
