"""sweeps.report.publish: the report a completed invocation writes to --storage and logs to its parent run."""

from __future__ import annotations

from pathlib import Path

from test_tables import PARENT_TAGS, create_store, record_sweep, template_db  # noqa: F401  (fixture)

from sweeps import runner
from sweeps import schema as S

ALL_DONE = {("Baseline", "rafdb"): [("completed", 0.80), ("completed", 0.81)],
            ("+ MAD", "rafdb"): [("completed", 0.84), ("completed", 0.85)]}
SPEC = Path(__file__).resolve().parents[1] / "search_spaces" / "components.yaml"


def test_the_report_of_a_completed_invocation_does_not_call_it_still_running(tmp_path, template_db):  # noqa: F811
    # runner draws the report before it marks the parent completed (a report cut short is drawn again by the
    # next run): read as tagged then, every caption of a finished sweep said "The sweep is still running"
    import shutil

    shutil.copy(template_db, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client, exp = create_store(uri, tmp_path / "artifacts")
    tags = {**PARENT_TAGS, S.TAG_DATA: "rafdb", S.TAG_SEEDS: "[0, 1]", S.TAG_STATUS: S.STATUS_RUNNING}
    pid = record_sweep(client, exp, cells=ALL_DONE, parent_tags=tags)
    client.log_artifact(pid, str(_spec_yaml(tmp_path)))
    out = runner._publish("components", uri, pid, tmp_path / "storage")
    assert out is not None
    caption = (out / "tables" / "components.md").read_text()
    assert "still running" not in caption and "pending" not in caption, caption
    assert (out / "figures" / "ablation_bars.png").is_file()


def _spec_yaml(tmp_path: Path) -> Path:
    path = tmp_path / "spec" / S.ARTIFACT_SPEC
    path.parent.mkdir()
    path.write_text(SPEC.read_text())
    return path
