"""The Tune function trainable: one sweep cell -> `transfer_core.engine.fit`.

Every epoch it logs to the cell's MLflow child run, writes a full checkpoint and reports both to
Tune; on a retry (FailureConfig) or a restored sweep it resumes from Tune's latest checkpoint and
continues the same child run. The decoded data set arrives through `tune.with_parameters`, i.e.
from Ray's object store, put there once per sweep rather than once per trial.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any, Mapping

from ray import tune

from sweeps import schema
from sweeps.tracking import CellIdentity, CellRun
from transfer_core.config import config_hash, from_flat, to_flat
from transfer_core.engine import History, fit, load_state, save_state
from transfer_core.metrics import confusion_report

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "state.pt"


def trial_config(config: Mapping[str, Any]):
    """The TrialConfig of a Tune trial: the cell's flat config, plus the searcher's suggestions."""
    flat = dict(config["cell"]["config"])
    flat.update(config.get("search", {}))
    return from_flat(flat)


def _node_id() -> str:
    try:
        import ray

        return ray.get_runtime_context().get_node_id()
    except Exception:  # outside a Ray worker (unit tests calling the function directly)
        return "local"


def train_cell(config: dict, datasets: Mapping[str, Any]) -> None:
    """Tune entry point. config: {"context": {...}, "cell": {...}, "search": {dotted key: value}}."""
    context, cell = config["context"], config["cell"]
    trial = trial_config(config)
    trial_id = tune.get_context().get_trial_id() or "local"
    if context["kind"] == "search":
        cell = {**cell, "cell_id": config_hash(trial), "arm": f"trial {trial_id}",
                "run_name": f"{context['sweep']}/trial-{trial_id}"}
    identity = CellIdentity(sweep=context["sweep"], arm=cell["arm"], data=cell["data"], seed=trial.seed,
                            cell_id=cell["cell_id"], run_name=cell["run_name"])
    splits = datasets[cell["data_key"]]
    run = CellRun.open(context["tracking_uri"], context["experiment_id"], context["parent_run_id"],
                       identity, trial_id, to_flat(trial),
                       {schema.TAG_NODE_ID: _node_id(), schema.TAG_PROFILE: context["profile"],
                        schema.TAG_DATA_FINGERPRINT: splits.fingerprint,
                        schema.TAG_SYNTHETIC: str(splits.dataset == "synthetic").lower()})

    resume_state = None
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            resume_state = load_state(Path(folder) / CHECKPOINT_FILE)
        log.info("cell %s resumes after epoch %d", identity.run_name, resume_state["epoch"])
    records: list[dict] = list(resume_state["history"]["records"]) if resume_state else []
    last_state: dict[str, Any] = {}

    def on_epoch(record: dict, state) -> bool:
        records.append(record)
        summary = History(records=records).summary()
        run.log_epoch(record, summary)
        metrics = {k: v for k, v in record.items() if k != "test_confusion"}
        metrics.update(summary)
        metrics.update(mlflow_run_id=run.run_id, cell_id=identity.cell_id)
        last_state["fn"] = state
        with tempfile.TemporaryDirectory() as folder:
            save_state(state(), Path(folder) / CHECKPOINT_FILE)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))
        return False

    history = fit(trial, on_epoch=on_epoch, resume_from=resume_state, data=splits)
    selected = history.selected_record() if history.records else None
    confusion = {}
    if selected is not None:
        import numpy as np

        confusion = confusion_report(np.asarray(selected["test_confusion"]), history.class_names)
        confusion["epoch"] = selected["epoch"]
    model_state = last_state["fn"]()["model"] if "fn" in last_state else None
    run.complete(history.to_dict(), confusion, model_state, to_flat(trial))
