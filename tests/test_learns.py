"""The default experience learns: the quick profile's model, on the built-in synthetic faces, gets
clearly better than chance within a short budget (a guard against a generator or profile change that
leaves training stuck at ln 7, as synthetic set v2 did). The full quick trial is measured by
bench/synthetic_baselines.py (bench/RESULTS_synthetic.md)."""

from __future__ import annotations

import pytest

from search_spaces import load_profile
from transfer_core.config import from_flat
from transfer_core.engine import fit

CHANCE = 1 / 7

# The quick profile (model, optimiser, data recipe) on half its training set for 8 of its 12
# epochs: 18 s on one core of a busy 2-core machine (load 4.4). sel_test_acc measured for seeds
# 0, 1, 2: 0.40, 0.37, 0.36 (test set 259 images, so one standard error is about 3 points); seed 0
# is pinned.
SHORT = {"data.synthetic_per_class": 150, "optim.epochs": 8, "seed": 0, "device": "cpu", "num_threads": 1}


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("TRANSFER_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def test_fit_quick_profile_beats_chance_clearly():
    config = from_flat(SHORT, base=load_profile("quick").config())
    summary = fit(config).summary()
    assert summary["sel_test_acc"] > 2 * CHANCE, summary
