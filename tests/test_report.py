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


def test_a_label_pdflatex_does_not_set_is_in_every_table_of_the_report_and_warned_of(tmp_path, template_db,  # noqa: F811
                                                                                     caplog, monkeypatch):
    # its LaTeX table keeps the label as typed (a paper may set it with a font package, or xelatex) and the
    # report names the character; the other tables and the figures are written as ever
    import shutil

    import test_tables

    monkeypatch.setitem(test_tables.ARM_PARAMS, "+ MAD 🚀", test_tables.ARM_PARAMS["+ MAD"])
    shutil.copy(template_db, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client, exp = create_store(uri, tmp_path / "artifacts")
    tags = {**PARENT_TAGS, S.TAG_DATA: "rafdb", S.TAG_SEEDS: "[0, 1]"}
    cells = {("Baseline", "rafdb"): ALL_DONE[("Baseline", "rafdb")], ("+ MAD 🚀", "rafdb"): ALL_DONE[("+ MAD", "rafdb")]}
    pid = record_sweep(client, exp, cells=cells, parent_tags=tags)
    spec = _spec_yaml(tmp_path)
    spec.write_text(spec.read_text().replace("label: + MAD\n", "label: + MAD 🚀\n"))
    client.log_artifact(pid, str(spec))
    out = runner._publish("components", uri, pid, tmp_path / "storage")
    assert out is not None
    assert sorted(p.name for p in (out / "tables").iterdir()) == [f"components{s}" for s in
                                                                    (".csv", ".html", ".md", ".parquet", ".tex")]
    assert all("+ MAD 🚀" in (out / "tables" / f"components{s}").read_text(encoding="utf-8")
               for s in (".md", ".tex"))
    assert "row label '+ MAD 🚀': its '🚀' (U+1F680 ROCKET)" in caplog.text
    assert (out / "figures" / "ablation_bars.png").is_file()


def test_runs_recorded_under_a_grid_label_written_the_python_way_are_the_row_of_its_label_now(  # noqa: F811
        tmp_path, template_db, monkeypatch):
    # a grid over optim.milestones was labelled "milestones=(3,)"; it is "milestones=[3]" now, and the runs an
    # invocation recorded under the old label are that row, not a second row beside an empty one
    import shutil

    import test_tables

    old = {"milestones=(3,)": "[3]", "milestones=(3, 6)": "[3, 6]"}
    for arm, value in old.items():
        monkeypatch.setitem(test_tables.ARM_PARAMS, arm, {"optim.milestones": value})
    shutil.copy(template_db, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client, exp = create_store(uri, tmp_path / "artifacts")
    tags = {**PARENT_TAGS, S.TAG_DATA: "rafdb", S.TAG_SEEDS: "[0, 1]"}
    pid = record_sweep(client, exp, parent_tags=tags, cells={(arm, "rafdb"): ALL_DONE[("+ MAD", "rafdb")] for arm in old})
    spec = tmp_path / "spec" / S.ARTIFACT_SPEC
    spec.parent.mkdir()
    spec.write_text("name: components\nprofile: quick\nbase: {optim.epochs: 8}\n"
                    "grid: {optim.milestones: [[3], [3, 6]]}\ntable: {baseline: 'milestones=(3,)'}\n")
    client.log_artifact(pid, str(spec))
    out = runner._publish("components", uri, pid, tmp_path / "storage")
    table = (out / "tables" / "components.md").read_text()
    assert "| milestones=[3] | **84.50 ± 0.71** |" in table and "| milestones=[3, 6] | **84.50 ± 0.71** |" in table
    assert "(3,)" not in table and "(3, 6)" not in table


def test_runs_recorded_under_a_boolean_grid_label_written_the_python_way_are_the_row_of_its_label_now():
    # a grid over model.local_branch: [true, false] labelled its rows "local_branch=True"; they read "=true" now
    from test_tables import frame

    from search_spaces.spec import load_text
    from sweeps import tables as T
    from sweeps.report import under_spec_labels

    spec = load_text("name: t\ngrid: {model.local_branch: [true, false]}\n")
    children = frame({("local_branch=True", "synthetic"): {0: 0.8}, ("local_branch=false", "synthetic"): {0: 0.7}})
    runs = T.SweepRuns("t", "sqlite://", "0", T.ParentRun("p", "t@x", S.STATUS_COMPLETED, 0, {}), children)
    assert under_spec_labels(runs, spec).children["arm"].tolist() == ["local_branch=true", "local_branch=false"]
