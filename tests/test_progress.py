"""The progress line the CLI prints while a sweep runs: counts that add up at every moment."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from sweeps.runner import SweepCallback


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.progress: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.progress.append(record.progress)


@pytest.fixture
def progress_records():
    logger = logging.getLogger("sweeps.progress")
    handler, level = _Records(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler.progress
    logger.removeHandler(handler)
    logger.setLevel(level)


def _trial(status: str = "RUNNING") -> SimpleNamespace:
    return SimpleNamespace(status=status, last_result={"val_acc": 0.5})  # no mlflow_run_id: MLflow untouched


def test_a_trial_being_reported_as_ended_is_no_longer_counted_running(progress_records):
    # Tune calls on_trial_complete while the trial's status still reads RUNNING
    trials = [_trial(), _trial()]
    callback = SweepCallback("sqlite:///unused.db", total=2, metric="val_acc", mode="max")
    callback.on_trial_complete(1, trials, trials[0])
    trials[0].status = "TERMINATED"
    callback.on_trial_complete(2, trials, trials[1])
    assert [(p["done"], p["running"]) for p in progress_records] == [(1, 1), (2, 0)]


def test_a_failed_trial_is_counted_failed_and_not_running(progress_records):
    trials = [_trial(), _trial()]
    callback = SweepCallback("sqlite:///unused.db", total=2, metric="val_acc", mode="max")
    callback.on_trial_error(1, trials, trials[1])
    assert [(p["failed"], p["running"]) for p in progress_records] == [(1, 1)]
