"""The text of a paper table: cell and caption text, the formats (LaTeX, Markdown, CSV, HTML, Parquet),
`write_tables`, and `explain` (everything behind one row).

    tex   = render(table, "latex", caption_facts=CaptionFacts.from_runs(runs, title=..., caption=...))
    paths = write_tables(table, out_dir, caption_facts=facts, stem="components")

`sweeps.tables` builds the ResultTable (the numbers); this module only writes it, so a new format is
one registered function here (TABLE_FORMATS) and never touches the statistics. Every format states
the same caption (`caption_text`), each escaping it for itself.
"""

from __future__ import annotations

import csv
import html
import io
import json
import logging
import math
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import pandas as pd

from sweeps import schema as S
from sweeps.files import write_whole
from sweeps.tables import (DATA_LABELS, METRIC_LABELS, CaptionFacts, Cell, PaperRow, ResultTable, SweepRuns,
                           TableError, is_fraction, ranking_by_column)
from transfer_core.config import PLACEMENT_KEYS
from transfer_core.registry import Registry

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- cell and caption text

def _pct(x: float, decimals: int) -> str:
    return f"{100.0 * x:.{decimals}f}"


def value_text(metric: str, x: float, decimals: int) -> str:
    """A value of `metric` as a table prints it: an accuracy in percent; a loss (best_val_loss) as it is, with two
    digits more (0.6123 at 2 decimals, as `sweeps.schema.metric_text` writes one)."""
    return _pct(x, decimals) if is_fraction(metric) else f"{x:.{decimals + 2}f}"


def cell_text(table: ResultTable, cell: Cell, decimals: int = 2) -> str:
    """Unicode cell text without emphasis: '84.12 ± 0.35', '84.12 (n=1)' (no n where every cell has one seed, as
    the caption says: '84.12'), '2/3 done', 'running', '—';
    '84.12 ± 0.35 (n=2, 1 diverged)': the mean of the seeds whose training did not diverge; '80.00 (n=1, 1 failed,
    1 diverged)': every seed accounted for, none still to come ('k/n done' where one is, or where no seed diverged)."""
    done = f"{cell.n}/{cell.n_expected} done"
    extras = [f"{cell.counts[s]} {s}" for s in (S.STATUS_FAILED, S.STATUS_PRUNED) if cell.counts.get(s)]
    extras += [f"{cell.no_value - cell.diverged} without a value"] if cell.no_value > cell.diverged else []
    extras += [f"{cell.diverged} diverged"] if cell.diverged else []
    if not cell.n:
        state = cell.state
        if state == "missing":
            return "pending" if table.in_progress else "not run" if _stopped(table) else "—"
        if table.select_on is not None:   # a search's trial: one run, no seeds to count
            return state
        # every seed diverged (or some, the others without a value): each is done, so "0/n done" (of seeds still to
        # come) is left out, as beside a value, and "k without a value" tells the others from the diverged ones
        ended = bool(cell.diverged) and cell.every_seed_ended
        notes = ([] if ended else [done]) + [
            x for x in extras if not x.endswith(state)
            and not (state == "no value" and x.endswith("without a value") and not ended)]
        return f"{state} ({', '.join(notes)})"
    text = value_text(cell.metric, cell.summary.mean, decimals)
    text += f" ± {value_text(cell.metric, cell.summary.std, decimals)}" if cell.summary.std is not None else ""
    notes = []
    # a diverged seed is done, and "1/3 done, 1 failed, 1 diverged" read as if it were not, or as if a seed were
    # still to come: where each seed is accounted for, the seeds of the mean and what became of each other one
    if cell.state == "partial" and not (cell.diverged and cell.every_seed_accounted):
        notes.append(done)
    elif cell.n != table.n_expected or (cell.summary.std is None and table.n_expected > 1):
        # a one-seed table's caption says "one seed per cell: no std": an "(n=1)" in each cell repeated it
        notes.append(f"n={cell.n}")
    notes += extras
    return text + (f" ({', '.join(notes)})" if notes else "")


def _stopped(table: ResultTable) -> bool:
    """The invocation stopped before its end (Ctrl-C, a failure): its unfinished cells will not finish."""
    return table.provenance.status in (S.STATUS_INTERRUPTED, S.STATUS_FAILED)


def delta_text(table: ResultTable, row: str, column: str, decimals: int = 2) -> str:
    if row == table.baseline:
        return "(baseline)"
    d = table.deltas.get((row, column))
    if d is None or d.delta is None:
        return "—"
    text = _signed(100 * d.delta, decimals)
    if d.low is None:
        # a one-seed table's caption says its Δ is the difference of single runs, with no interval: an "(n=1)"
        # in each Δ repeated it (as in its cells); where a multi-seed table's Δ has one matched seed it is said
        return text if table.n_expected == 1 else f"{text} (n={d.n})"
    # over the seeds both cells have: fewer than either shows, its means' difference is not this one
    fewer = d.n < max(table.cell(row, column).n, table.cell(table.baseline, column).n)
    return (f"{text} [{_signed(100 * d.low, decimals, bound=True)}, {_signed(100 * d.high, decimals, bound=True)}]"
            + (f" (n={d.n})" if fewer else ""))


def _signed(x: float, decimals: int, bound: bool = False) -> str:
    """'+0.35', '-1.20'; a difference that rounds to zero is '+0.00', never '-0.00'; an interval's bound keeps
    its sign ('-0.00': a bound just below zero must not read as an interval that excludes it)."""
    text = f"{x:+.{decimals}f}"
    if text.startswith("-") and float(text) == 0 and not (bound and x < 0):
        return "+" + text[1:]
    return text


def paper_text(table: ResultTable, paper: PaperRow, column: str, metric: str, decimals: int = 2) -> str:
    value = table.paper_value(paper, column, metric)
    return "—" if value is None else f"{value:.{decimals}f}"


def _overrides_text(overrides) -> str:
    return ", ".join(f"{k} = {v}" for k, v in sorted(overrides.items()))


def _split_placement(overrides: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(what every cell computed with, where and how fast the latest continuation ran: threads, loader
    workers, cache folder, compile). The latter may differ between the runs of one invocation, as they are
    not part of its identity: no caption may say every cell ran with them."""
    return ({k: v for k, v in overrides.items() if k not in PLACEMENT_KEYS},
            {k: v for k, v in overrides.items() if k in PLACEMENT_KEYS})


def caption_text(table: ResultTable, facts: CaptionFacts) -> str:
    """The caption as Unicode prose; each format escapes it for itself."""
    parts = [p.strip().rstrip(".") + "." for p in (facts.title, facts.caption) if p.strip()]
    data = ", ".join(DATA_LABELS.get(d, d) for d in (facts.data or table.columns))
    parts.append(f"Profile: {facts.profile or 'unknown'}. Data: {data}.")
    computed_with = _split_placement(facts.overrides)[0]
    if computed_with:
        parts.append(f"Every cell ran with {_overrides_text(computed_with)}, set on the command line over "
                     "what the sweep's spec and its rows set.")
    if facts.synthetic:
        parts.append("The data are SYNTHETIC (generated faces, not a real FER data set): the numbers test the "
                     "pipeline and say nothing about accuracy on real faces.")
    elif "synthetic" in (facts.data or table.columns):
        parts.append(f"The {DATA_LABELS['synthetic']} column's data are SYNTHETIC (generated faces, not a real FER "
                     "data set): its numbers test the pipeline and say nothing about accuracy on real faces.")
    seeds = facts.seeds or tuple(sorted({s for c in table.cells.values() for s in c.values}))
    parts.append(f"Seeds: {', '.join(map(str, seeds)) or 'none'}; " + (
        f"mean ± std (ddof = 1) over n = {table.n_expected} seeds per cell unless marked." if table.n_expected > 1
        else "one seed per cell: no std, and no cell is tested against the best."))
    left_out = table.provenance.seeds_left_out
    if left_out:
        parts.append(f"Runs of seed{'s' if len(left_out) > 1 else ''} {', '.join(map(str, left_out))} recorded "
                     f"under this invocation are left out: it was last run with fewer seeds.")
    complete_only = ("" if not any(c.state != "complete" and c.n for c in table.cells.values()) else
                     " among its cells with a value of every seed, where there are any"
                     if any(c.state == "diverged" for c in table.cells.values()) else   # every seed done, some diverged
                     " among its cells with every seed done, where there are any")
    rule = ("This is the honest number: the test set is used once."
            if table.metric.startswith("sel_") else
            "Optimistic: the epoch is chosen on the test set; for comparison with the literature only."
            if table.metric.startswith("best_test") else "")
    # a search's table may come first by a loss (--metric best_val_loss): a loss is no percentage
    parts.append(f"Metric{' (%)' if is_fraction(table.metric) else ''}: {table.metric_label}. {rule}".rstrip())
    # the other columns whose epoch is chosen by another rule than the primary's (sel_test, best_test, ...)
    others = [m for m in table.metrics[1:] if m.rsplit("_", 1)[0] != table.metric.rsplit("_", 1)[0]]
    if others:
        parts.append("Also: " + "; ".join(
            f"{METRIC_LABELS[m][0]}: {METRIC_LABELS[m][1]}"
            + (" (optimistic: for comparison with the literature only)" if m.startswith("best_test") else "")
            for m in others) + ".")
    if table.without_validation and any(m.startswith("sel_") for m in table.metrics):
        names = ", ".join(table.column_labels[c] for c in table.without_validation)
        parts.append(f"{names}: no validation split, so the selected epoch is the last one, not one chosen on "
                     "validation.")
    diverged = [(r, c, table.diverged[(r, c)]) for r in table.rows for c in table.columns if (r, c) in table.diverged]
    if diverged:   # "no value" / "without a value" alone reads as a run that logged nothing, or has yet to
        parts.append("No value, as the training diverged (losses not finite) before any epoch could be scored: "
                     + "; ".join(r + (f" on {table.column_labels[c]}" if len(table.columns) > 1 else "")
                                 + ("" if table.select_on is not None else   # a search's trial: one run, no seeds
                                    f" (seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))})")
                                 for r, c, seeds in diverged) + ".")
    if any(c.no_value > c.diverged for c in table.cells.values()):
        # "82.00 (1/2 done, 1 without a value)" read as a seed still to come: the other seed is done too
        parts.append("Without a value: a seed whose run completed without recording the column's metric (as a run "
                     "without a validation split records no best validation epoch); it is done, left out of the mean, "
                     "and not counted in k/n done, which counts the seeds with a value (the explain option of "
                     "sweeps table names its run).")
    if any(c.state == "diverged" for c in table.cells.values()):
        parts.append("A cell marked \"k diverged\" averages only its other seeds (the k might have pulled its mean "
                     "down): it is neither bold nor tested beside cells with a value of every seed.")
    late = [(r, c, table.diverged_late[(r, c)]) for r in table.rows for c in table.columns
            if (r, c) in table.diverged_late]

    def when(seed: int, epoch: int | None) -> str:   # a search's trial: one run, no seed to name
        return " ".join(([] if table.select_on is not None else [f"seed {seed}"])
                        + ([] if epoch is None else [f"at epoch {epoch}"]))

    if late:   # their numbers stand, of the epochs before: the learning curves end there too
        parts.append("Training diverged (losses not finite) after epochs with a value, and stopped: "
                     + "; ".join(r + (f" on {table.column_labels[c]}" if len(table.columns) > 1 else "")
                                 + (f" ({', '.join(filter(None, (when(s, e) for s, e in runs)))})"
                                    if any(when(s, e) for s, e in runs) else "")
                                 for r, c, runs in late)
                     + "; such a run is scored on its epochs before (its last epoch's accuracy has no value).")
    scored = [(r, c, table.diverged_scored[(r, c)]) for r in table.rows for c in table.columns
              if (r, c) in table.diverged_scored]
    if scored:   # runs recorded before such an epoch went unscored: their numbers may be of that epoch
        parts.append("Training diverged and stopped, its training loss not finite while its evaluation still gave "
                     "numbers: "
                     + "; ".join(r + (f" on {table.column_labels[c]}" if len(table.columns) > 1 else "")
                                 + (f" ({', '.join(filter(None, (when(s, e) for s, e in runs)))})"
                                    if any(when(s, e) for s, e in runs) else "")
                                 for r, c, runs in scored)
                     + "; recorded before such an epoch went unscored, such a run was scored on that epoch too (its "
                     "last epoch's accuracy is that epoch's).")
    for column, fingerprints in table.mixed_data.items():   # no "--" in prose: LaTeX would print an en dash
        parts.append(f"{table.column_labels[column]}: MIXED DATA: the runs trained on more than one version of "
                     f"the data set (fingerprints {', '.join(f[:12] for f in fingerprints)}), as the sweep was "
                     "continued, on the accept-changed-data option, after the data changed.")
    if not any(c.n for c in table.cells.values()):   # every run failed, or none finished yet
        # "yet" only of one still running: a stopped or finished sweep's cells will have none (INCOMPLETE says why)
        parts.append(f"No {'trial' if table.select_on is not None else 'cell'} has a value"
                     f"{' yet' if table.in_progress else ''}: nothing is bold or tested.")
    elif table.select_on is not None:
        ranking = ranking_by_column(table.select_on)
        on, by = ranking.on if ranking else "validation", ranking.description if ranking else table.select_on
        chosen = [r for r in table.rows if any(x.best for (row, _, _), x in table.cells.items() if row == r)]
        if len(chosen) > 1:   # tied on the ranking: each is as much the one chosen as the other
            parts.append(f"Bold: the {len(chosen)} trials tied on {on} ({by}): {', '.join(chosen[:-1])} and "
                         f"{chosen[-1]}, in every column; {on} does not choose between "
                         "them, and the test set chooses no trial.")
        else:
            parts.append(f"Bold: the trial chosen on {on} ({by}), in every column; the test set chooses no trial.")
    elif table.n_comparisons:
        parts.append(f"Bold: best printed mean of its column{complete_only}. †: not significantly different from "
                     f"it (two-sided paired t-test over matched seeds, Holm-corrected over the {table.n_comparisons} "
                     f"comparison{'' if table.n_comparisons == 1 else 's'} of the table, α = {table.alpha:g}); "
                     f"cells with fewer than 2 matched seeds"
                     f"{complete_only and ', and incomplete cells beside complete ones,'} are not tested.")
    elif any(c.test is not None and c.test.p is None for c in table.cells.values()):   # one seed: no † can appear
        parts.append(f"Bold: best printed mean of its column{complete_only}; no cell has the 2 matched seeds a test "
                     "against it needs.")
    else:   # every cell that competes has the best mean (all bold): nothing was left to test
        parts.append(f"Bold: best printed mean of its column{complete_only}; every cell compared has its column's "
                     "best mean, so none is tested against it"
                     f"{complete_only and ' (incomplete cells beside complete ones are not tested)'}.")
    if table.baseline is not None:
        # a baseline without a value (its seeds running, failed): every Δ of its column reads "—", which the
        # sentence explaining the column's numbers left unexplained
        lacking = [c for c in table.columns if not table.cell(table.baseline, c).n]
        yet = " yet" if table.in_progress else ""
        explained = (f"difference to {table.baseline} in percentage points, mean over matched seeds "
                     f"[{100 * table.confidence:g} % t confidence interval]" if table.n_expected > 1 else
                     # one seed per cell: no mean over seeds, and no interval (a t-interval needs 2 matched seeds)
                     f"difference to {table.baseline} in percentage points of single runs (one seed per cell), "
                     "with no interval")
        if lacking and len(lacking) == len(table.columns):
            parts.append(f"Δ: none{yet}, as the baseline, {table.baseline}, has no value{yet} (its cell says why): "
                         f"every Δ reads —; with one it is the {explained}.")
        else:
            parts.append(f"Δ: {explained}." + (
                f" The baseline has no value{yet} on {', '.join(table.column_labels[c] for c in lacking)}: every Δ "
                "there reads —." if lacking else ""))
    shown = [p.label for p in _papers_shown(table)]
    if len(shown) == 1:
        parts.append(f"{shown[0]}: the figure as published, in its own setting; its model-selection "
                     "rule may differ from ours.")
    elif shown:
        parts.append(f"{', '.join(shown)}: the figures as published for those arms, in the paper's own setting; "
                     "its model-selection rule may differ from ours.")
    search = table.select_on is not None   # its rows are trials, of one run each: no seeds to lack
    if table.in_progress:
        parts.append("The search is still running: trials marked running have not finished, and the trials it "
                     "has yet to draw are not in the table." if search else
                     "The sweep is still running: cells marked k/n done are incomplete.")
    elif _stopped(table) and any(c.unfinished or c.n + c.no_value < c.n_expected for c in table.cells.values()):
        # a seed without a completed run: a cell marked "k diverged" (or "no value") has every seed done
        parts.append(f"INCOMPLETE: the search stopped ({table.provenance.status}) before every trial finished; "
                     "trials marked running, interrupted or failed have no value, and the trials it had yet to "
                     "draw are not in the table." if search else
                     f"INCOMPLETE: the sweep stopped ({table.provenance.status}) before every cell finished; "
                     "cells marked k/n done, interrupted, failed or not run lack seeds.")
    if not search and any(c.counts.get(S.STATUS_FAILED) for c in table.cells.values()):
        # a failed seed is no result, as a diverged one is: its run ended on an error, and a continuation retries it
        parts.append("A seed counted failed has no value: its run ended on an error (sweeps status names it), and "
                     "continuing the sweep (sweeps resume) trains it again.")
    return " ".join(parts)


def _header_groups(table: ResultTable) -> list[tuple[str, list[str]]]:
    """(column label, sub-headers) per data set: the metrics, then Δ of the primary metric."""
    subs = [METRIC_LABELS[m][0] for m in table.metrics]
    if table.baseline is not None:
        subs.append(f"Δ {METRIC_LABELS[table.metric][0]}")
    return [(table.column_labels[c], subs) for c in table.columns]


def printed_best(table: ResultTable, decimals: int) -> set[tuple[str, str, str]]:
    """The cells set in bold: the best, and every contender whose mean prints the same as the best's
    (99.9955 and 100.0 both read "100.00"; one bold and one not would tell the reader they differ)."""
    bold = set()
    for c in table.columns:
        for m in table.metrics:
            contenders = table.contenders(c, m)
            if table.select_on is not None:   # a search: its trial chosen on validation, not a number's peers
                bold |= {(x.row, c, m) for x in contenders if x.best}
                continue
            best = {value_text(m, x.summary.mean, decimals) for x in contenders if x.best}
            bold |= {(x.row, c, m) for x in contenders if value_text(m, x.summary.mean, decimals) in best}
    return bold


def _body(table: ResultTable, decimals: int) -> list[tuple[str, list[tuple[str, bool, bool]]]]:
    """Rows of (text, bold, tied) entries, the paper row last (label starts the list)."""
    bold = printed_best(table, decimals)
    out = []
    for r in table.rows:
        entries = []
        for c in table.columns:
            for m in table.metrics:
                cell = table.cell(r, c, m)
                entries.append((cell_text(table, cell, decimals), (r, c, m) in bold, cell.tied))
            if table.baseline is not None:
                entries.append((delta_text(table, r, c, decimals), False, False))
        out.append((table.row_text(r), entries))
    for paper in _papers_shown(table):
        entries = []
        for c in table.columns:
            entries += [(paper_text(table, paper, c, m, decimals), False, False) for m in table.metrics]
            if table.baseline is not None:
                entries.append(("—", False, False))
        out.append((paper.label, entries))
    return out


def _papers_shown(table: ResultTable) -> list[PaperRow]:
    """The paper rows with a figure, in the spec's order."""
    return [p for p in table.papers if any(v is not None for v in p.values.values())]


# --------------------------------------------------------------------------- formats

@dataclass(frozen=True)
class TableFormat:
    name: str
    suffix: str
    binary: bool
    render: Callable[[ResultTable, CaptionFacts, int], str | bytes]


TABLE_FORMATS: Registry[TableFormat] = Registry("table format")


def _format(name: str, suffix: str, binary: bool = False):
    def add(fn):
        TABLE_FORMATS.register(name)(TableFormat(name, suffix, binary, fn))
        return fn
    return add


_LATEX_CHARS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                "±": r"$\pm$", "Δ": r"$\Delta$", "†": r"$^\dagger$", "α": r"$\alpha$", "—": "---",
                "–": "--", "≥": r"$\geq$", "≤": r"$\leq$", "×": r"$\times$", "\u00a0": "~",
                "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}"}   # OT1 prints ¡ ¿ — for them


def _greek() -> dict[str, str]:
    """Greek letters as math-mode commands (pdflatex's utf8 input has none: a label "λ = 0.1" stopped the
    paper's build), accents dropped; a capital without a command of its own (A, B, E, ...) as the Latin
    letter it looks like."""
    out = {}
    for code in range(0x386, 0x3CF):
        base = unicodedata.normalize("NFD", chr(code))[0]   # ά -> α
        name = unicodedata.name(base, "")
        if not name.startswith(("GREEK SMALL LETTER ", "GREEK CAPITAL LETTER ")):
            continue
        word = name.split(" LETTER ", 1)[1].lower().replace("lamda", "lambda")
        if "SMALL" in name:
            out[chr(code)] = (r"$\varsigma$" if word == "final sigma" else "o" if word == "omicron"
                              else rf"$\{word}$")
        elif word in ("gamma", "delta", "theta", "lambda", "xi", "pi", "sigma", "upsilon", "phi", "psi", "omega"):
            out[chr(code)] = rf"$\{word.capitalize()}$"
        else:
            out[chr(code)] = base.translate(_GREEK_LOOKALIKES)
    return out


_GREEK_LOOKALIKES = str.maketrans("ΑΒΕΖΗΙΚΜΝΟΡΤΧ", "ABEZHIKMNOPTX")
_LATEX_CHARS = {**_greek(), "ε": r"$\varepsilon$", "φ": r"$\varphi$",   # the letters as text fonts draw them
                "ϵ": r"$\epsilon$", "ϕ": r"$\phi$", "ϑ": r"$\vartheta$", "ϖ": r"$\varpi$", "ϱ": r"$\varrho$",
                "ϐ": r"$\beta$", "ϰ": r"$\kappa$", "ϒ": r"$\Upsilon$", "ϴ": r"$\Theta$", **{"≈": r"$\approx$", "≠": r"$\neq$", "∞": r"$\infty$", "∼": r"$\sim$", "√": r"$\surd$",
                     "✗": r"$\times$", "⇒": r"$\Rightarrow$", "∈": r"$\in$", "∑": r"$\sum$",
                     "≡": r"$\equiv$", "−": r"$-$", "⋅": r"$\cdot$", "∝": r"$\propto$"}, **_LATEX_CHARS}
# the scientific symbols pdflatex's utf8 input has no definition for, as the math fonts every LaTeX has draw
# them (no amssymb: ℝ is the bold R it stood for before blackboard bold; ⩽ and ≦ are ≤)
_LATEX_CHARS.update({ch: f"${cmd}$" for ch, cmd in {
    "∆": r"\Delta", "∇": r"\nabla", "∂": r"\partial", "∫": r"\int", "∮": r"\oint", "∏": r"\prod", "∐": r"\coprod",
    "∀": r"\forall", "∃": r"\exists", "∉": r"\notin", "∋": r"\ni", "∅": r"\emptyset", "∖": r"\setminus",
    "⊂": r"\subset", "⊃": r"\supset", "⊆": r"\subseteq", "⊇": r"\supseteq", "∪": r"\cup", "∩": r"\cap",
    "⋃": r"\bigcup", "⋂": r"\bigcap", "∧": r"\wedge", "∨": r"\vee", "⊕": r"\oplus", "⊗": r"\otimes",
    "⊙": r"\odot", "⊖": r"\ominus", "⊘": r"\oslash", "⨁": r"\bigoplus", "⨂": r"\bigotimes", "∘": r"\circ",
    "∗": r"\ast", "∙": r"\bullet", "⋆": r"\star", "∓": r"\mp", "∣": r"\mid", "∥": r"\parallel",
    "≪": r"\ll", "≫": r"\gg", "≃": r"\simeq", "≅": r"\cong", "≍": r"\asymp", "≐": r"\doteq", "≺": r"\prec",
    "≻": r"\succ", "⪯": r"\preceq", "⪰": r"\succeq", "≦": r"\leq", "≧": r"\geq", "⩽": r"\leq", "⩾": r"\geq",
    "⊥": r"\perp", "⊤": r"\top", "⊢": r"\vdash", "⊣": r"\dashv", "∠": r"\angle", "⋯": r"\cdots", "⋮": r"\vdots",
    "⋱": r"\ddots", "⌈": r"\lceil", "⌉": r"\rceil", "⌊": r"\lfloor", "⌋": r"\rfloor", "′": r"^{\prime}",
    "″": r"^{\prime\prime}", "‴": r"^{\prime\prime\prime}", "ℓ": r"\ell", "ℏ": r"\hbar", "ℜ": r"\Re",
    "ℑ": r"\Im", "ℵ": r"\aleph", "℘": r"\wp", "ℝ": r"\mathbf{R}", "ℕ": r"\mathbf{N}", "ℤ": r"\mathbf{Z}",
    "ℚ": r"\mathbf{Q}", "ℂ": r"\mathbf{C}", "↔": r"\leftrightarrow", "↕": r"\updownarrow", "⇐": r"\Leftarrow",
    "⇔": r"\Leftrightarrow", "⇑": r"\Uparrow", "⇓": r"\Downarrow", "↦": r"\mapsto", "↗": r"\nearrow",
    "↘": r"\searrow", "↙": r"\swarrow", "↖": r"\nwarrow", "⟵": r"\longleftarrow", "⟶": r"\longrightarrow",
    "⟹": r"\Longrightarrow", "⟸": r"\Longleftarrow", "⟺": r"\Longleftrightarrow",
    "✘": r"\times", "✕": r"\times", "✖": r"\times", "♯": r"\sharp", "♭": r"\flat", "♮": r"\natural",
    "♣": r"\clubsuit", "♢": r"\diamondsuit", "♡": r"\heartsuit", "♠": r"\spadesuit"}.items()})
# ✓ and ★ as amssymb draws them (\checkmark, \bigstar) where the paper loads it, as most do; else as the math fonts
# every LaTeX has come closest (√, ⋆): `$\surd$` alone printed every ✓ as a square root sign, and a table must
# compile with booktabs alone (the README's word), so amssymb is never required. Braced: "✓MAD" is no \fiMAD, and
# the \relax that \csname makes of an undefined name stays in the braces. Tested by \csname, not \ifdefined: a
# \checkmark some package's `\csname checkmark\endcsname` (\@ifundefined before LaTeX 2018) left \relax counted as
# defined, and every ✓ vanished without a word
AMSSYMB_SYMBOLS = {"✓": ("checkmark", "surd"), "✔": ("checkmark", "surd"), "★": ("bigstar", "star")}
_LATEX_CHARS.update({ch: f"{{\\expandafter\\ifx\\csname {ams}\\endcsname\\relax$\\{core}$"
                         f"\\else\\ensuremath{{\\{ams}}}\\fi}}" for ch, (ams, core) in AMSSYMB_SYMBOLS.items()})
_LATEX_CHARS.update({"∕": "/", "∶": ":", "\u00ad": r"\-",   # division slash, ratio, soft hyphen
                     "“": "``", "”": "''",   # as LaTeX sources write them (a straight " is one: `_curly_quotes`)
                     **dict.fromkeys("\u2000\u2002\u2007", r"\enspace"), **dict.fromkeys("\u2001\u2003\u3000", r"\quad"),
                     **dict.fromkeys("\u2004\u2005\u2006\u2008\u2009\u200a\u202f\u205f", r"\,"),
                     # invisible: zero widths, and the variation selectors of "✔️" (text or emoji style)
                     **dict.fromkeys("\u200b\u200c\u200d\u2060\ufeff\ufe0e\ufe0f", "")})
# runs of super- and subscripts as one math super/subscript: "10⁻³" as 10$^{-3}$ (¹²³ too, which pdflatex has
# as text figures of another height)
_SUPERSCRIPTS = dict(zip("⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ⁿⁱ", "0123456789+-=()ni"))
_SUBSCRIPTS = dict(zip("₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎ₐₑₒₓₕₖₗₘₙₚₛₜ", "0123456789+-=()aeoxhklmnpst"))
_SCRIPT_RUN = re.compile(f"([{''.join(_SUPERSCRIPTS)}]+)|([{''.join(_SUBSCRIPTS)}]+)")
# what pdflatex sets by itself (LaTeX >= 2020: utf8 input, OT1 text fonts with their accents, TS1 symbols in
# the kernel), found by setting every code point in latex_document's preamble; a character neither here nor
# in _LATEX_CHARS is passed through as typed and warned of by name (`latex_unsettable`): pdflatex stops at it
# unless the paper loads a font for its script (xelatex and lualatex set it)
_SETS_ITSELF = frozenset(
    [chr(c) for c in range(0x20, 0x7F)] + ["\t", "\n", "\r"]
    + list("¡¢£¤¥¦§¨©ª¬®¯°±²³´µ¶·¸¹º¼½¾¿ÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÑÒÓÔÕÖ×ØÙÚÛÜÝßàáâãäåæçèéêëìíîïñòóôõö÷øùúûüýÿĀāĂăĆćĈĉĊċČč"
           "ĎďĒēĔĕĖėĚěĜĝĞğĠġĢģĤĥĨĩĪīĬĭİıĲĳĴĵĶķĹĺĻļĽľŁłŃńŅņŇňŌōŎŏŐőŒœŔŕŖŗŘřŚśŜŝŞşŠšŢţŤťŨũŪūŬŭŮůŰűŴŵŶŷŸŹźŻżŽžƒǄǅǆǇ"
           "ǈǉǊǋǌǍǎǏǐǑǒǓǔǢǣǦǧǨǩǰǴǵȘșȚțȲȳȷḂḃḍḞḟḠḡḥḰḱḷṃṅṇṛṣṭẎẏẐẑẞỲỳ‐‑‒–—―‖‘’“”†‡•…‰‱※‽⁄⁎⁒₡₤₦₩₫€₱℃№℗℞℠™Ω℧℮←↑→↓〈〉◦◯♪"
           "⟨⟩〈〉ﬀﬁﬂﬃﬄﬅﬆ"))


_NEGATIVE_NUMBER = re.compile(r"(?<![\w.\-])-(?=\d)")   # "-3.90", "[-46.26"; not "ResNet-50", "12--14"


def _opens(text: str, i: int) -> bool:
    """Whether a quote at text[i] stands where one opens: at the start, after a space, an opening bracket or =."""
    return i == 0 or text[i - 1].isspace() or unicodedata.category(text[i - 1]) in ("Ps", "Pi", "Sm")


def _closed_later(text: str, i: int) -> bool:
    """Whether a straight single quote after text[i] closes one (no letter or digit after it): 'best' is quoted,
    '90s is an apostrophe."""
    return any(ch == "'" and (j + 1 == len(text) or not text[j + 1].isalnum())
               for j, ch in enumerate(text[i + 1:], start=i + 1))


def _curly_quotes(text: str) -> str:
    """A straight double quote as the curly one it stands for, by its place: opening at the start, after a space,
    an opening bracket or =, closing elsewhere (the text fonts set a straight " as a closing quote at both ends).
    A straight single quote so placed, that a later one closes, opens too (‘best’ arm, which the fonts set as
    ’best’); elsewhere it is an apostrophe or a closing quote (B=4's), which they set right as it is."""
    return "".join(("“" if _opens(text, i) else "”") if ch == '"' else
                   "‘" if ch == "'" and _opens(text, i) and text[i + 1:i + 2] != "'" and _closed_later(text, i)
                   else ch
                   for i, ch in enumerate(text))


def latex_unsettable(text: str) -> str | None:
    """The first character of `text` that pdflatex sets neither by itself nor as `latex_escape` maps it."""
    return next((ch for ch in unicodedata.normalize("NFC", text) if ch not in _SETS_ITSELF and ch not in _LATEX_CHARS
                 and ch not in _SUPERSCRIPTS and ch not in _SUBSCRIPTS), None)


def latex_refusal(text: str, ch: str) -> str:
    """Why `text` may stop a paper's pdflatex: the character, its code point, the text around it."""
    text = unicodedata.normalize("NFC", text)
    at = text.index(ch)
    shown = text if len(text) <= 60 else (("…" if at > 25 else "") + text[max(0, at - 25):at + 25]
                                          + ("…" if at + 25 < len(text) else ""))
    return (f"{shown!r}: its {ch!r} (U+{ord(ch):04X} {unicodedata.name(ch, 'unnamed character')}) is a character "
            f"pdflatex does not set by itself (it stops at \"Unicode character {ch} (U+{ord(ch):04X}) not set up "
            "for use with LaTeX\" unless the paper loads a font for it; xelatex and lualatex set it); pdflatex "
            "sets letters with their accents, digits, Greek letters and the common symbols (± × ≤ ≥ ≈ → ✓ ✗ ∆ ∞ ², "
            "...)")


def warn_of_unsettable(what: str, text: str) -> None:
    """Log a warning where `text` (the `what` of a LaTeX table: its row label, title, ...) holds a character
    pdflatex does not set by itself. Passed through as typed, not refused: a paper in Russian or Chinese sets
    its script with a package (T2A, CJKutf8) or with xelatex, and only its author knows which."""
    ch = latex_unsettable(text)
    if ch is not None:
        log.warning("the LaTeX table's %s %s: it is written as typed; relabel it where your paper is built with "
                    "pdflatex and no font for it", what, latex_refusal(text, ch))


def latex_escape(text: str) -> str:
    """Plain Unicode text as pdflatex-safe LaTeX (special characters and the symbols we use); a character
    pdflatex does not set by itself is kept as typed (render_latex warns of it: warn_of_unsettable)."""
    text = _curly_quotes(unicodedata.normalize("NFC", text))   # "é" as e + a combining accent is é, as LaTeX sets it
    out = []
    for piece in _SCRIPT_RUN.split(text):
        if not piece:
            continue
        if piece[0] in _SUPERSCRIPTS:
            out.append("$^{" + "".join(map(_SUPERSCRIPTS.get, piece)) + "}$")
        elif piece[0] in _SUBSCRIPTS:
            out.append("$_{" + "".join(map(_SUBSCRIPTS.get, piece)) + "}$")
        else:
            out.extend(_LATEX_CHARS.get(ch, ch) for ch in piece)
    return "".join(out)


# --fit: scaled down to the text width when wider, never up (graphicx's \resizebox sees the natural \width)
_FIT_OPEN = [r"  \resizebox{\ifdim\width>\linewidth\linewidth\else\width\fi}{!}{%"]


def _latex_row_head(label: str) -> str:
    """A row's label as LaTeX prints it at the start of its line."""
    head = latex_escape(label)
    # after \\ (and \midrule) LaTeX reads a leading [ as an optional argument and * as \\*: "[B=2] MAD"
    # would be "Missing number", "*MAD" would lose its star; an empty group ends that look-ahead
    return "{}" + head if head.startswith(("[", "*")) else head


@_format("latex", ".tex")
def render_latex(table: ResultTable, facts: CaptionFacts, decimals: int) -> str:
    groups = _header_groups(table)
    width = len(groups[0][1])
    spec = "l" + " ".join("c" * width for _ in groups)
    slug = "".join(ch if ch.isalnum() else "-" for ch in facts.title.lower()).strip("-")
    label = facts.label or f"tab:{slug or 'sweep'}"
    environment = "table*" if facts.wide else "table"
    for what, text in (("title", facts.title), ("caption", facts.caption)):   # named so, not as the caption text
        warn_of_unsettable(what, text)
    for what, texts in (("column label", [g for g, _ in groups]), ("column header", [s for _, ss in groups for s in ss]),
                        ("row header", [facts.row_header]), ("row label", [label for label, _ in _body(table, decimals)])):
        for text in texts:
            warn_of_unsettable(what, text)
    lines = [f"\\begin{{{environment}}}[t]", r"  \centering", r"  \small",
             f"  \\caption{{{latex_escape(caption_text(table, facts))}}}", f"  \\label{{{label}}}",
             *_FIT_OPEN * facts.fit, f"  \\begin{{tabular}}{{{spec}}}", r"    \toprule"]
    if width > 1 or len(groups) > 1:
        heads = " & ".join(f"\\multicolumn{{{width}}}{{c}}{{{latex_escape(g)}}}" for g, _ in groups)
        rules = " ".join(f"\\cmidrule(lr){{{2 + i * width}-{1 + (i + 1) * width}}}" for i in range(len(groups)))
        lines += [f"    & {heads} \\\\", f"    {rules}"]
    subs = " & ".join(latex_escape(s) for _, ss in groups for s in ss)
    lines += [f"    {latex_escape(facts.row_header)} & {subs} \\\\", r"    \midrule"]
    body = _body(table, decimals)
    for i, (label_, entries) in enumerate(body):
        if i == len(table.rows) and i > 0:
            lines.append(r"    \midrule")
        texts = []
        for text, bold, tied in entries:
            t = _NEGATIVE_NUMBER.sub(r"$-$", latex_escape(text))   # a minus sign, not a hyphen
            texts.append((f"\\textbf{{{t}}}" if bold else t) + (r"$^\dagger$" if tied else ""))
        head = _latex_row_head(label_)
        lines.append(f"    {head} & {' & '.join(texts)} \\\\")
    lines += [r"    \bottomrule", r"  \end{tabular}" + "%" * facts.fit, *["  }"] * facts.fit,  # no space in the box
              f"\\end{{{environment}}}", ""]
    tex = "\n".join(lines)
    symbols = "".join(dict.fromkeys(ch for ch in tex if ch in TEXTCOMP_SYMBOLS))
    ams = [ch for ch in _AMSSYMB_DRAWN if _LATEX_CHARS[ch] in tex]   # ✓ (or ✔), ★
    # hints where the paper's preamble is written: harmless on LaTeX 2020 and after, which needs no textcomp
    return ((f"% {symbols}: LaTeX before 2020 sets these only with \\usepackage{{textcomp}}\n" if symbols else "")
            + (f"% {''.join(ams)}: drawn so with \\usepackage{{amssymb}} in the paper's preamble, else as "
               f"{''.join(_AMSSYMB_DRAWN[ch] for ch in ams)}\n" if ams else "") + tex)


_AMSSYMB_DRAWN = {"✓": "√", "★": "⋆"}   # what each is drawn as without amssymb (✔ reads as ✓)


# the characters latex_escape passes through that pdflatex sets as TS1 text symbols (\textdegree, \textmu,
# \texteuro, ...: LaTeX's ts1enc.dfu): textcomp, in the kernel since LaTeX 2020-02, sets them, and before it
# only \usepackage{textcomp} did (the LaTeX table's first line says so where it holds one)
TEXTCOMP_SYMBOLS = frozenset("¢£¤¥¦§¨©ª¬®¯°´µ¶·º¼½¾÷ƒ‖‡•‰‱※‽⁄⁎⁒₡₤₦₩₫€₱℃№℗℞℠™℧℮←↑→↓〈〉◦◯♪⟨⟩")


def needs_textcomp(table_tex: str) -> bool:
    """Whether a rendered table holds a TS1 text symbol (° µ € ...), which LaTeX before 2020 sets only with
    textcomp (harmless after)."""
    return any(ch in TEXTCOMP_SYMBOLS for ch in table_tex)


def latex_document(table_tex: str) -> str:
    """A minimal document around a rendered table, as pdflatex needs it (article, booktabs, graphicx; textcomp
    where it holds ° µ € or another TS1 symbol, for LaTeX before 2020)."""
    return ("\\documentclass{article}\n\\usepackage{booktabs}\n\\usepackage{graphicx}\n"
            + "\\usepackage{textcomp}\n" * needs_textcomp(table_tex)
            + "\\usepackage[margin=1cm,landscape]{geometry}\n"
            f"\\begin{{document}}\n{table_tex}\\end{{document}}\n")


_MARKDOWN_CHARS = {**{ch: "\\" + ch for ch in "\\|*_`$<>~"}, "&": "&amp;"}   # ~~a~~ strikes out, &lt; is <


def _markdown_escape(text: str) -> str:
    """Text as itself in (GitHub) Markdown: `model.drop_rate` and `optim.weight_decay` in one caption would
    otherwise italicise what lies between their underscores, and `$` opens math."""
    return "".join(_MARKDOWN_CHARS.get(ch, ch) for ch in text)


@_format("markdown", ".md")
def render_markdown(table: ResultTable, facts: CaptionFacts, decimals: int) -> str:
    esc = _markdown_escape
    groups = _header_groups(table)
    head = [facts.row_header] + [f"{g}: {s}" if len(groups) > 1 or len(ss) > 1 else s for g, ss in groups for s in ss]
    lines = [f"**Table.** {esc(caption_text(table, facts))}", "",
             "| " + " | ".join(esc(h) for h in head) + " |",
             "|" + "|".join([":---"] + [":---:"] * (len(head) - 1)) + "|"]
    for label, entries in _body(table, decimals):
        texts = [(f"**{esc(t)}**" if b else esc(t)) + ("†" if tied else "") for t, b, tied in entries]
        lines.append(f"| {esc(label)} | " + " | ".join(texts) + " |")
    return "\n".join(lines) + "\n"


@_format("html", ".html")
def render_html(table: ResultTable, facts: CaptionFacts, decimals: int) -> str:
    e = html.escape
    groups = _header_groups(table)
    width = len(groups[0][1])
    lines = ['<table class="sweeps-table">', f"  <caption>{e(caption_text(table, facts))}</caption>", "  <thead>",
             f'    <tr><th rowspan="2">{e(facts.row_header)}</th>'
             + "".join(f'<th colspan="{width}">{e(g)}</th>' for g, _ in groups) + "</tr>",
             "    <tr>" + "".join(f"<th>{e(s)}</th>" for _, ss in groups for s in ss) + "</tr>",
             "  </thead>", "  <tbody>"]
    for label, entries in _body(table, decimals):
        tds = "".join(f"<td>{'<b>' + e(t) + '</b>' if b else e(t)}{'<sup>†</sup>' if tied else ''}</td>"
                      for t, b, tied in entries)
        lines.append(f"    <tr><th>{e(label)}</th>{tds}</tr>")
    lines += ["  </tbody>", "</table>", ""]
    return "\n".join(lines)


def _pct_or_none(x: float | None) -> float | None:
    return None if x is None else round(100.0 * x, 6) + 0.0   # + 0.0: float noise rounds to -0.0, written "-0"


def _record_pct(metric: str, x: float | None) -> float | None:
    """A value of `metric` in a record's *_pct field: an accuracy in percent; None for a loss, no percentage."""
    return _pct_or_none(x) if is_fraction(metric) else None


def _record_loss(metric: str, x: float | None) -> float | None:
    """A value of `metric` in a record's *_loss field: a loss as it is (`value_text`); None for an accuracy."""
    return None if is_fraction(metric) or x is None else float(x) + 0.0


def cell_records(table: ResultTable, *, provenance: bool = False, decimals: int = 2) -> list[dict[str, Any]]:
    """One record per (row, column, metric): the numbers, and with provenance the reproducibility record.
    `best` is the cell with the best mean; `bold` is what the printed table sets in bold at `decimals` (also
    every contender whose mean prints the same), so a script can rebuild the printed table from the file.
    mean_pct, std_pct and values_pct are an accuracy's, in percent; mean_loss, std_loss and values_loss a loss
    metric's (best_val_loss, best_train_loss), as it is: each pair is null where the record's `metric` is of
    the other kind."""
    prov = table.provenance
    bold = printed_best(table, decimals)
    records = []
    for (r, c, m), cell in table.cells.items():
        d = table.deltas.get((r, c)) if m == table.metric else None
        paper = table.paper_of(r)   # the paper's figure of this row's arm (or of the table's one paper row)
        paper_pct = table.paper_value(paper, c, m) if paper is not None else None
        rec = {"row": r, "row_note": table.row_notes.get(r, ""), "column": c, "metric": m, "state": cell.state,
               "n": cell.n, "n_expected": cell.n_expected, "mean_pct": _record_pct(m, cell.summary.mean),
               "std_pct": _record_pct(m, cell.summary.std), "mean_loss": _record_loss(m, cell.summary.mean),
               "std_loss": _record_loss(m, cell.summary.std), "best": cell.best,
               "bold": (r, c, m) in bold, "tied_with_best": cell.tied,
               "p_holm": cell.p_holm, "delta_pct": _pct_or_none(d.delta if d else None),
               "delta_ci_low_pct": _pct_or_none(d.low if d else None),
               "delta_ci_high_pct": _pct_or_none(d.high if d else None),
               "delta_n": d.n if d and d.delta is not None else None,   # matched seeds: fewer than n is possible
               "running": cell.counts.get(S.STATUS_RUNNING, 0),
               "interrupted": cell.counts.get(S.STATUS_INTERRUPTED, 0),
               "pruned": cell.counts.get(S.STATUS_PRUNED, 0), "failed": cell.counts.get(S.STATUS_FAILED, 0),
               "no_value": cell.no_value,   # completed runs that recorded no value of this metric
               "diverged": cell.diverged,   # of those, the runs whose training diverged (the mean is of the rest)
               "paper_pct": paper_pct,
               "paper_label": paper.label if paper_pct is not None else "",
               "synthetic": prov.synthetic or c == "synthetic"}   # this row's data: its numbers test the pipeline
        if provenance:
            seeds = sorted(cell.values)
            fingerprint = next(iter(dict.fromkeys(f for f in cell.data_fingerprints if f)), "") \
                or prov.data_fingerprints.get(c, "")
            rec.update({"metric_label": METRIC_LABELS[m][1], "seeds": seeds,
                        "values_pct": [_record_pct(m, cell.values[s]) for s in seeds] if is_fraction(m) else None,
                        "values_loss": None if is_fraction(m) else [_record_loss(m, cell.values[s]) for s in seeds],
                        "run_ids": [cell.run_ids[s] for s in seeds],
                        "config_hashes": list(cell.cell_ids), "git_commit": prov.git_commit,
                        "package_versions": json.dumps(dict(prov.versions), sort_keys=True),
                        "data_fingerprint": fingerprint, "sweep": prov.sweep, "parent_run_id": prov.parent_run_id,
                        "profile": prov.profile, "spec_hash": prov.spec_hash})
        records.append(rec)
    return records


@_format("csv", ".csv")
def render_csv(table: ResultTable, facts: CaptionFacts, decimals: int) -> str:
    records = cell_records(table, decimals=decimals)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(records[0]), lineterminator="\n")
    writer.writeheader()
    for rec in records:
        # percentages to the table's decimals (+4 digits); a p-value whole, as it decides tied_with_best
        writer.writerow({k: ("" if v is None else repr(v) if k == "p_holm" and isinstance(v, float)
                             else f"{v:.{decimals + 4}g}" if isinstance(v, float) else v) for k, v in rec.items()})
    return buf.getvalue()


def _parquet_types(pa) -> dict[str, Any]:
    """Parquet column types that do not depend on the values: a one-seed table has no std and no p-value, a
    sweep without paper figures no paper_pct, one still running no mean; inferred, such a column would be of
    type null, and the tables of several sweeps or invocations could not be read together."""
    floats = ("mean_pct", "std_pct", "mean_loss", "std_loss", "p_holm", "delta_pct", "delta_ci_low_pct",
              "delta_ci_high_pct", "paper_pct")
    return {**{name: pa.float64() for name in floats}, "delta_n": pa.int64(), "seeds": pa.list_(pa.int64()),
            "values_pct": pa.list_(pa.float64()), "values_loss": pa.list_(pa.float64()),
            "run_ids": pa.list_(pa.string()),
            "config_hashes": pa.list_(pa.string())}


@_format("parquet", ".parquet", binary=True)
def render_parquet(table: ResultTable, facts: CaptionFacts, decimals: int) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    frame = pd.DataFrame.from_records(cell_records(table, provenance=True, decimals=decimals))
    frame["caption"] = caption_text(table, facts)
    arrow = pa.Table.from_pandas(frame, preserve_index=False)
    for name, kind in _parquet_types(pa).items():   # null stays null: a missing number is not NaN
        arrow = arrow.set_column(arrow.schema.get_field_index(name), name, arrow.column(name).cast(kind))
    buf = io.BytesIO()
    pq.write_table(arrow, buf)
    return buf.getvalue()


def render(table: ResultTable, fmt: str = "latex", *, caption_facts: CaptionFacts | None = None,
           decimals: int = 2) -> str | bytes:
    """The table in one of TABLE_FORMATS (latex, markdown, csv, parquet, html)."""
    if decimals not in (1, 2):
        raise TableError(f"decimals={decimals!r} is invalid: expected 1 or 2")
    return TABLE_FORMATS.get(fmt).render(table, caption_facts or CaptionFacts(), decimals)


def write_tables(table: ResultTable, out_dir: str | Path, *, caption_facts: CaptionFacts | None = None,
                 formats: Sequence[str] = ("latex", "markdown", "csv", "parquet", "html"),
                 stem: str = "table", decimals: int = 2) -> list[Path]:
    """Render every format into `out_dir` (stem + each format's suffix); returns the paths."""
    # every format rendered before any is written: a label LaTeX cannot set leaves no table half written
    contents = [(TABLE_FORMATS.get(name), render(table, name, caption_facts=caption_facts, decimals=decimals))
                for name in formats]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for f, content in contents:
        path = out / f"{stem}{f.suffix}"
        write_whole(path, content)   # a reader of the earlier table (a LaTeX build) never reads one half written
        paths.append(path)
    return paths


# --------------------------------------------------------------------------- explain

def _arm_config(runs: SweepRuns | None, row: str) -> dict[str, str]:
    """The params every run of an arm shares (seed-dependent keys dropped), its config: not its label (PARAM_ARM)."""
    if runs is None or runs.children.empty:
        return {}
    sub = runs.children[runs.children["arm"] == row]
    cols = [c for c in sub.columns if c.startswith("params.") and c != f"params.{S.PARAM_ARM}"]
    shared = {}
    for c in cols:
        vals = sub[c].dropna().unique()
        if len(vals) == 1:
            shared[c[len("params."):]] = str(vals[0])
    return shared


def _row_named(table: ResultTable, row: str) -> str:
    """The row `row` names as any format prints it: Markdown (stdout's) prints `MAD & MSAD` as `MAD &amp; MSAD` and
    `p~0.5` as `p\\~0.5`, LaTeX as `MAD \\& MSAD` (and `[B=2] MAD` as `{}[B=2] MAD`), HTML as `&lt;ir50&gt;`
    (check_row undoes backslashes alone);
    else as check_row reads it. A label as typed comes first: `a\\_b` is the row so labelled, not `a_b` escaped."""
    if row in table.rows or row in map(table.row_text, table.rows):
        return table.check_row(row)
    for r in table.rows:
        for text in dict.fromkeys((r, table.row_text(r))):
            if row in (_markdown_escape(text), latex_escape(text), _latex_row_head(text), html.escape(text)):
                return r
    return table.check_row(row)


def explain(table: ResultTable, row: str, runs: SweepRuns | None = None, decimals: int = 2) -> str:
    """Everything behind one row: per-seed values and run ids, tests, Δ, and the reproducibility record."""
    row = _row_named(table, row)   # as the table prints it too, in any format
    prov = table.provenance
    computed_with, placement = _split_placement(prov.overrides or {})
    # the synthetic faces as one column beside real data: "no" read as if none of the row's numbers were of them
    synthetic = ("yes" if prov.synthetic else f"the {table.column_labels['synthetic']} column"
                 if "synthetic" in table.columns else "no")
    lines = [f"Row {row!r} of sweep {prov.sweep or '?'} (invocation {prov.parent_run_id or '?'}, "
             f"status {prov.status or '?'})" + (f": {table.row_notes[row]}" if row in table.row_notes else ""),
             f"Metric: {table.metric} = {table.metric_label}",
             f"Profile: {prov.profile or '?'}; synthetic data: {synthetic}; "
             f"spec hash: {prov.spec_hash or '?'}",
             "Overrides (--set, over the spec and every row): "
             + ("? (not recorded)" if prov.overrides is None else _overrides_text(computed_with) or "none"),
             *([f"Placement (--set of its latest run, which earlier runs may not have shared): "
                f"{_overrides_text(placement)}"] if placement else []),
             f"Git commit: {prov.git_commit or '?'}",
             "Package versions: " + (", ".join(f"{k}={v}" for k, v in sorted(prov.versions.items())) or "?")]
    children = runs.children if runs is not None else None
    for c in table.columns:
        recorded = next((f for f in table.cell(row, c).data_fingerprints if f), "?")
        lines.append(f"[{table.column_labels[c]}] data fingerprint: {prov.data_fingerprints.get(c) or recorded}"
                     + (f" (MIXED DATA: the column's runs trained on {', '.join(table.mixed_data[c])}, as the sweep "
                        "was continued with --accept-changed-data)" if c in table.mixed_data else ""))
        for m in table.metrics:
            cell = table.cell(row, c, m)
            verdict = ("best in column" if cell.best else
                       f"tied with best (Holm p = {cell.p_holm:.3g})" if cell.tied else
                       f"below best (Holm p = {cell.p_holm:.3g})" if cell.p_holm is not None else
                       cell.test.note if cell.test else
                       "not compared: a mean without its diverged seeds, beside cells of every seed"
                       if cell.state == "diverged" else
                       "not compared: incomplete, beside complete cells" if cell.n and cell.state != "complete" else
                       "not compared")
            lines.append(f"  {m}: {cell_text(table, cell, decimals)} [{cell.state}; {verdict}]")
            late = dict(table.diverged_late.get((row, c), ()))
            scored = dict(table.diverged_scored.get((row, c), ()))
            for s in sorted(cell.values):
                cid = cell.cell_ids[sorted(cell.values).index(s)] if len(cell.cell_ids) == cell.n else "?"
                why = ("  (its training diverged" + (f" at epoch {late[s]}" if late[s] else "") + ": of its epochs before)"
                       if s in late else
                       "  (its training loss was not finite" + (f" at epoch {scored[s]}" if scored[s] else "")
                       + ", its last, whose evaluation still gave numbers: recorded before such an epoch went "
                       "unscored, this value may be of that epoch)" if s in scored else "")
                lines.append(f"    seed {s}: {value_text(m, cell.values[s], decimals)}  run {cell.run_ids[s]}  "
                             f"config {cid}{why}")
            for s, run_id in sorted(cell.no_value_run_ids.items()):   # left out of the cell's mean: said why
                why = ("its training diverged before any epoch had finite losses to score"
                       if s in table.diverged.get((row, c), ()) else
                       "its training diverged" + (f" at epoch {late[s]}" if late.get(s) else "")
                       + ", its last, whose weights scored nothing" if s in late else
                       f"its run completed without recording {m}" + (": it had no validation split"
                                                                      if m.startswith("best_val_") else ""))
                lines.append(f"    seed {s}: no value ({why})  run {run_id}")
        if children is not None:
            pending = children[(children["arm"] == row) & (children["data"] == c)
                               & (children["status"] != S.STATUS_COMPLETED)]
            for rec in pending.itertuples():
                epochs = "" if math.isnan(rec.epochs_done) else f" (epochs done: {rec.epochs_done:g})"
                lines.append(f"  not completed: seed {rec.seed} {rec.status}{epochs}  run {rec.run_id}  "
                             f"config {rec.cell_id}")
        if (row, c) in table.deltas:
            d = table.deltas[(row, c)]
            lines.append(f"  Δ vs {table.baseline}: {delta_text(table, row, c, decimals)} pp over {d.n} matched "
                         f"seed(s){'; ' + d.note if d.note else ''}")
    config = _arm_config(runs, row)
    if config:
        base = _arm_config(runs, table.baseline) if table.baseline and table.baseline != row else {}
        diff = {k: v for k, v in config.items() if base.get(k) != v} if base else config
        title = f"Config differing from {table.baseline}" if base else "Config shared by the row's runs"
        lines.append(f"{title}: " + (", ".join(f"{k}={v}" for k, v in sorted(diff.items())) or "none"))
    return "\n".join(lines) + "\n"
