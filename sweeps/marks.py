"""Marks: the statuses the driver sets on trials' MLflow runs that the trials could not set themselves.

A trial the scheduler stopped (a search's pruned one) ends without marking its run, and one that failed
may fail before it opens a run at all. The driver's SweepCallback (sweeps.runner) queues a mark for each
and makes it with `make_mark`; a mark it cannot make (MLflow away past the experiment's end, the driver
killed) is kept on disk (`keep_marks`, `marks_file_of`) and made by the next `sweeps run` of the
invocation (`replay_marks`), before Tune restores anything.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from pathlib import Path
from typing import Any, Mapping

from mlflow.exceptions import MlflowException, RestException

from sweeps import schema, tracking
from sweeps.errors import SweepError
from sweeps.files import write_whole
from transfer_core.config import to_flat

log = logging.getLogger(__name__)


TRIAL_REFERENCE = "trial:"   # a mark's run named by its trial, "trial:<experiment>/<parent run>/<trial id>"


FAILURE_HEADER = re.compile(r"\s*Failure # \d+ \(occurred at [^)]*\)\s*")   # Tune's, over each error file's text


def error_message(traceback_text: str) -> str:
    """The exception a Tune error file (a traceback) ends with, on one line, its class without its module:
    "CheckpointError: IR-50 checkpoint '...' could not be read: ...". The message may span lines. A trial whose
    worker process died (`actor_died_message`) has no traceback: what Ray says of it, shortened."""
    traceback_text = FAILURE_HEADER.sub("", traceback_text, count=1)
    if (died := actor_died_message(traceback_text)) is not None:
        return died
    lines = traceback_text.rstrip().splitlines()
    frames = [i for i, line in enumerate(lines) if line.startswith("  File ")]
    start = frames[-1] + 1 if frames else 0
    while start < len(lines) and lines[start].startswith("    "):   # the frame's source lines
        start += 1
    message = " ".join(line.strip() for line in lines[start:] if line.strip())
    head, sep, rest = message.partition(": ")
    if sep and re.fullmatch(r"[\w.]+", head):
        message = f"{head.rsplit('.', 1)[-1]}: {rest}"
    return message


ACTOR_DIED_PHRASES = ("The actor died unexpectedly", "The actor is dead because")


def actor_died_message(text: str) -> str | None:
    """A trial whose worker process died without raising (kill -9, the kernel's out-of-memory killer, a crash) as
    one line that says so first: Ray's text opens with its actor's ids and namespace, which were all `sweeps
    status` showed of it in its 200 characters ("Failure # 1 (occurred at ...) The actor died unexpectedly before
    finishing this task. class_name: ImplicitFunc actor_id: 4a8a... pid: 28497 namespace: b051..."). None for
    any other error."""
    # Ray's text itself (no traceback before it), or a traceback that ends in it: not a phrase a trial's own error
    # quoted, in its message or a source line shown
    if not (text.lstrip().startswith(ACTOR_DIED_PHRASES) or re.search(
            r"^(?:ray\.exceptions\.)?(?:ActorDiedError|RayActorError): (?:%s)" % "|".join(ACTOR_DIED_PHRASES), text,
            re.MULTILINE)):
        return None
    pid, ip = re.search(r"\bpid: (\d+)", text), re.search(r"\bip: (\S+)", text)
    exit_type = re.search(r"Worker exit type: (\w+)", text)
    detail = re.search(r"Worker exit detail: (.*?)(?: Some common causes|$)", " ".join(text.split()))
    where = f" (pid {pid.group(1)}{f' on {ip.group(1)}' if ip else ''})" if pid else ""
    return (f"ActorDiedError: the trial's worker process{where} died without raising an error: killed (the "
            "out-of-memory killer, kill -9) or crashed; its cell continues from its last checkpoint when retried "
            "(--max-failures) or resumed (sweeps resume)"
            + (f". Ray: {exit_type.group(1)}" if exit_type else "")
            + (f", {detail.group(1).strip()}" if detail else ""))


def failure_details(trial) -> dict[str, Any]:
    """What a failed mark records of its trial (`make_mark`): the exception it ended in ("error"), and the
    run a trial that failed before opening its own would have opened ("cell": CellIdentity's fields,
    "trial_id", "params": the flat TrialConfig). Best effort: what cannot be read is left out."""
    details: dict[str, Any] = {}
    try:
        error = error_message(error_text(trial))
        if error:
            details["error"] = error[:schema.ERROR_TAG_CHARS]
    except Exception as exc:  # noqa: BLE001  (storage gone, an older Tune: the mark is made without it)
        log.debug("no error text of trial %s: %s", getattr(trial, "trial_id", "?"), exc)
    if (trial.last_result or {}).get("mlflow_run_id"):
        return details
    try:
        from sweeps.trainable import cell_identity

        config, identity = cell_identity(trial.config, trial.trial_id)
        details.update(cell=dataclasses.asdict(identity), trial_id=trial.trial_id, params=to_flat(config))
    except Exception as exc:  # noqa: BLE001  (a config that does not build: no run can be made for it)
        log.debug("no run identity for trial %s: %s", getattr(trial, "trial_id", "?"), exc)
    return details


def error_text(trial) -> str:
    """The text of a trial's error file (Tune's "Failure # N (occurred at ...)" and a traceback per failure so far).
    The driver's copy is there at once; storage's (get_error) once Tune has synced it."""
    local = getattr(trial, "error_file", None)
    text = Path(local).read_text() if local and Path(local).is_file() else trial.get_error()
    return str(text or "")


def last_failure(text: str) -> str:
    """The last failure's part of an error file's text (a retried trial's file holds each of its failures)."""
    starts = [m.start() for m in re.finditer(r"^Failure # \d+ \(occurred at ", text, re.MULTILINE)]
    return text[starts[-1]:] if starts else text


def trial_reference(trial) -> str | None:
    """A failed trial's run as its trial names it, for a mark made once MLflow answers (`make_mark`)."""
    context = (getattr(trial, "config", None) or {}).get("context") or {}
    if not (context.get("experiment_id") and context.get("parent_run_id") and getattr(trial, "trial_id", None)):
        return None
    return f"{TRIAL_REFERENCE}{context['experiment_id']}/{context['parent_run_id']}/{trial.trial_id}"


def _run_of(client, run_id: str) -> str | None:
    """The MLflow run id a mark names: itself, or the run a trial reference's trial opened (None if none)."""
    if not run_id.startswith(TRIAL_REFERENCE):
        return run_id
    parts = run_id[len(TRIAL_REFERENCE):].split("/", 2)
    if len(parts) != 3 or not all(parts):
        log.warning("the mark of %r is dropped: not a trial reference (trial:<experiment>/<parent run>/<trial id>)",
                    run_id)
        return None
    run = tracking.find_trial_run(client, *parts)
    return None if run is None else run.info.run_id


def make_mark(client, run_id: str, outcome: str, step: int, details: Mapping | None = None) -> str | None:
    """One ended trial's mark in MLflow; returns the status set. outcome "failed": failed, with the error
    `details` hold (`failure_details`); "ended": pruned at `step`; neither if its trial completed the run
    itself (None). `run_id` may be a trial reference (`trial_reference`): a trial that failed before it
    opened its run gets one, made from `details` (nothing is marked where they do not say which). A mark
    the server refuses (a deleted run: retrying cannot help) is logged and dropped (None)."""
    details = details or {}
    reference = run_id
    try:
        run_id = _run_of(client, run_id)
        if (run_id is None and outcome == "failed" and isinstance(details.get("cell"), Mapping)
                and reference.startswith(TRIAL_REFERENCE)):   # the trial opened no run
            experiment_id, parent_run_id, _ = reference[len(TRIAL_REFERENCE):].split("/", 2)
            # its cell's run an earlier Tune experiment's trial opened (a retry of a cut-short cell): that one,
            # marked below; a second run of the cell would leave the first running for good
            earlier = tracking.find_cell_run(client, experiment_id, parent_run_id, str(details["cell"].get("cell_id")))
            if earlier is not None:
                run_id = earlier.info.run_id
            else:
                try:
                    identity = tracking.CellIdentity(**details["cell"])
                except TypeError as exc:   # a kept file another version wrote
                    log.warning("the failure of trial %s is not recorded: its cell %r does not name a run (%s)",
                                details.get("trial_id"), details["cell"], exc)
                    return None
                made = tracking.record_unopened_failure(client, experiment_id, parent_run_id, identity,
                                                        str(details.get("trial_id", "")), details.get("params") or {},
                                                        details.get("error"))
                log.info("trial %s failed before it opened an MLflow run: run %s records it",
                         details.get("trial_id"), made)
                return schema.STATUS_FAILED
        if run_id is None or client.get_run(run_id).data.tags.get(schema.TAG_STATUS) == schema.STATUS_COMPLETED:
            return None
        if outcome == "failed":
            tracking.mark_cell(client, run_id, schema.STATUS_FAILED, error=details.get("error"))
            return schema.STATUS_FAILED
        tracking.mark_cell(client, run_id, schema.STATUS_PRUNED, pruned_step=step)
        return schema.STATUS_PRUNED
    except MlflowException as exc:
        if not _refused(exc):
            raise
        log.warning("could not mark run %s %s in MLflow: %s", run_id,
                    "failed" if outcome == "failed" else "pruned", exc)
    return None


# what a store says of a run it will not mark (deleted, unknown, not allowed): retrying cannot help
_REFUSALS = {"INVALID_PARAMETER_VALUE", "INVALID_STATE", "RESOURCE_DOES_NOT_EXIST", "PERMISSION_DENIED"}


# what a server says when it is in trouble for now (a 500 of a locked sqlite behind it, a 503): retried
_TRANSIENT = {"INTERNAL_ERROR", "TEMPORARILY_UNAVAILABLE", "IO_ERROR", "REQUEST_LIMIT_EXCEEDED", "DEADLINE_EXCEEDED"}


def _refused(exc: MlflowException) -> bool:
    """The server answered and said no (REST, other than a server in trouble for now), or a local store
    refused the run; not a store out of reach (MLflow's client then raises a plain MlflowException, code
    INTERNAL_ERROR) nor a server error, which are retried."""
    if exc.error_code in _TRANSIENT:
        return False
    return isinstance(exc, RestException) or exc.error_code in _REFUSALS


def marks_file_of(storage: Path, sweep: str, parent_id: str) -> Path:
    """Where an invocation's driver keeps the marks it has not yet made (SweepCallback)."""
    return Path(storage) / f"{schema.invocation_prefix(sweep, parent_id)}unmarked.json"


def kept_marks_files(parent, storage: Path, sweep: str) -> list[Path]:
    """Where an earlier driver of this invocation may have kept marks: beside its newest Tune experiment
    (the storage it ran with: `--storage` is not part of the invocation's identity) and in `storage`."""
    tune_path = parent.data.tags.get(tracking.TAG_TUNE_PATH)
    folders = [Path(tune_path).parent] if tune_path else []
    folders += [] if Path(storage) in folders else [Path(storage)]
    return [marks_file_of(folder, sweep, parent.info.run_id) for folder in folders]


def keep_marks(path: str | None, pending: list) -> None:
    """The queue on disk (written whole, then renamed: a kill leaves the old file or the new), or no
    file when it is empty. A disk problem is a warning: it must not stop Tune's loop and every trial."""
    if not path:
        return
    path = Path(path)
    try:
        if not pending:
            path.unlink(missing_ok=True)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        write_whole(path, json.dumps([list(mark) for mark in pending]))
    except OSError as exc:
        log.warning("could not keep the marks still to make in %s: %s", path, exc)


def replay_marks(client, path: Path) -> int:
    """Make the marks an earlier driver of this invocation kept and could not make, then drop the file;
    returns how many it set. Called before Tune restores anything: a failed mark made after
    `resume_errored` restarted the trial would mark a live run failed. (A later Tune experiment of the
    same run may replace the file with its own queue: it reruns every cell not completed, so the marks
    it drops are of runs it reopens.)"""
    if not path.is_file():
        return 0
    what = f"{path} (the marks an earlier run of this sweep could not make in MLflow)"
    try:
        marks = [(str(r), str(o), int(s), *(d for d in rest[:1] if isinstance(d, dict)))
                 for r, o, s, *rest in json.loads(path.read_text())]   # details: not in an older version's
    except (OSError, ValueError, TypeError) as exc:
        raise SweepError(f"{what} cannot be read: {exc}. Delete it to go on; the runs it names keep the status "
                         f"their trials left (a pruned run shows as running)") from exc
    try:
        made = sum(make_mark(client, *mark) is not None for mark in marks)
    except MlflowException as exc:   # the store out of reach or in trouble: the file stays for the next run
        raise SweepError(f"MLflow did not take the marks kept in {what}: {exc}. Run again once the tracking "
                         f"server answers; the file is kept until then") from exc
    try:
        path.unlink()
    except OSError as exc:
        raise SweepError(f"{what} cannot be removed once its marks are made: {exc}") from exc
    log.info("made %d of %d mark(s) in MLflow that an earlier run of this sweep kept in %s (the rest were "
             "already made, refused, or of trials that opened no run)", made, len(marks), path)
    return made
