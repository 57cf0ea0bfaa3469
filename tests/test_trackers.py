"""--report-to: experiment trackers fed from the engine's events, read back from what they wrote."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tui_unlearn import events as ev
from tui_unlearn.config import MACHINE_SETTINGS, RunConfig, resolve
from tui_unlearn.engine import trackers
from tui_unlearn.errors import ConfigError


def test_report_to_values():
    assert trackers.parse_report_to("none") == [] and trackers.parse_report_to("") == []
    assert trackers.parse_report_to("TensorBoard, mlflow") == ["tensorboard", "mlflow"]
    assert trackers.check_report_to("tensorboard,mlflow") is None
    assert "names no tracker 'comet'" in trackers.check_report_to("tensorboard,comet")
    assert "alone" in trackers.check_report_to("all,mlflow")
    with pytest.raises(ConfigError, match="report_to names no tracker 'tensorbord'"):
        resolve(RunConfig(report_to="tensorbord"))


def test_a_missing_tracker_package_is_one_line_naming_the_pip_command(monkeypatch):
    monkeypatch.setattr(trackers, "installed", lambda name: name == "tensorboard")
    with pytest.raises(ConfigError) as caught:
        resolve(RunConfig(report_to="tensorboard,mlflow"))
    assert str(caught.value) == (
        "--report-to mlflow needs the mlflow package: pip install 'tui-unlearn[trackers]' (or pip install mlflow)"
    )
    assert trackers.require_trackers("all") == ["tensorboard"]
    monkeypatch.setattr(trackers, "installed", lambda name: False)
    with pytest.raises(ConfigError, match=r"--report-to all found none of .* pip install"):
        trackers.require_trackers("all")


def test_trackers_are_machine_settings_not_part_of_the_run():
    from tui_unlearn.engine.checkpoint import config_identity

    assert {"report_to", "logging_dir"} <= MACHINE_SETTINGS
    config = resolve(RunConfig(steps=3))
    reporting = resolve(RunConfig(steps=3, report_to="tensorboard", logging_dir="/somewhere"))
    assert config_identity(config) == config_identity(reporting)  # a checkpoint resumes under other trackers
    assert config_identity(config) != config_identity(resolve(RunConfig(steps=4)))
    from tui_unlearn.sweeps import sweep_folder

    grid = ["forget_weight=1,2"]
    assert sweep_folder(RunConfig(steps=3), grid, [], None, Path("/s")) == sweep_folder(
        RunConfig(steps=3, report_to="tensorboard"), grid, [], None, Path("/s")
    )  # the same sweep, reported or not
    assert "report_to" not in reporting.defining_dict() and "steps" in reporting.defining_dict()
    assert reporting.to_dict()["report_to"] == "tensorboard"  # still saved in config.json
    params = trackers.hyperparameters(reporting, {"processes": 1})
    assert "report_to" not in params and "logging_dir" not in params
    assert params["steps"] == 3 and params["hparams.retain_weight"] == 3.0 and params["scale.processes"] == 1
    assert params["lora_targets"] == "" and "lora_alpha" not in params  # lists joined, unset left out


def events_of_a_run(session_id: str = "20261207-000000-npo-abcd") -> list[ev.Event]:
    config = resolve(RunConfig(algorithm="npo", steps=2)).to_dict()
    return [
        ev.RunStarted(session_id, "", config, 2, scale={"processes": 1, "device": "cpu"}),
        ev.Log("not a number for trackers"),
        ev.Evaluation(0, "before", {"forget": {"accuracy": 1.0, "loss": 0.5}}, 1.0),
        ev.StepLosses(1, 2, {"loss": -0.25, "forget_nll": 0.75}, 1e-4, 2.0),
        ev.StepLosses(2, 2, {"loss": -0.5, "forget_nll": 1.5}, 2e-4, 3.0),
        ev.Calibration(2, {"forget_quality": 0.25, "model_utility": None}),
        ev.Evaluation(2, "after", {"forget": {"accuracy": 0.5, "loss": float("nan")}}, 4.0),
        ev.RunFinished("finished", {"steps": 2, "forget_quality": 0.25, "privleak": None, "metrics": {}}),
    ]


def feed(config: RunConfig, tmp_path, *, main: bool = True) -> list[ev.Event]:
    """The events of a run through the engine's own path (``RunContext.record``)."""
    from tui_unlearn.engine.context import RunContext

    faced: list[ev.Event] = []
    ctx = RunContext(resolve(config), faced.append, lambda: False, tmp_path / "sessions", is_main=main)
    trackers.attach(ctx)
    for event in events_of_a_run():
        ctx.record(event)
    return faced


def scalars(folder, tag: str) -> list[tuple[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder))
    acc.Reload()
    return [(e.step, e.value) for e in acc.Scalars(tag)] if tag in acc.Tags()["scalars"] else []


def tensorboard_hparams(folder) -> dict:
    """The hyperparameters TensorBoard's HParams tab shows for a run's folder."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        acc = EventAccumulator(str(sub))
        acc.Reload()
        content = acc.PluginTagToContent("hparams").get("_hparams_/session_start_info")
        if content:
            data = plugin_data_pb2.HParamsPluginData.FromString(content)
            hp = data.session_start_info.hparams
            return {k: v.WhichOneof("kind") and getattr(v, v.WhichOneof("kind")) for k, v in hp.items()}
    return {}


def test_tensorboard_gets_losses_evaluations_and_hparams(tmp_path):
    pytest.importorskip("tensorboard")
    faced = feed(
        RunConfig(algorithm="npo", steps=2, report_to="tensorboard", logging_dir=str(tmp_path / "tb")), tmp_path
    )
    assert len(faced) == len(events_of_a_run())  # the face still gets every event, and only those
    run = tmp_path / "tb" / "20261207-000000-npo-abcd"  # one folder per session
    assert scalars(run, "train/loss") == [(1, -0.25), (2, -0.5)]
    assert scalars(run, "train/forget_nll") == [(1, 0.75), (2, 1.5)]
    assert [s for s, _ in scalars(run, "train/lr")] == [1, 2]
    assert scalars(run, "before/forget/accuracy") == [(0, 1.0)] and scalars(run, "after/forget/accuracy") == [(2, 0.5)]
    assert scalars(run, "after/forget/loss") == []  # NaN is not a measurement
    assert scalars(run, "calibration/forget_quality") == [(2, 0.25)]
    assert scalars(run, "summary/forget_quality") == [(2, 0.25)]
    hparams = tensorboard_hparams(run)
    assert hparams["algorithm"] == "npo" and hparams["steps"] == 2 and hparams["scale.device"] == "cpu"


def test_only_the_main_process_reports(tmp_path):
    pytest.importorskip("tensorboard")
    config = RunConfig(algorithm="npo", steps=2, report_to="tensorboard", logging_dir=str(tmp_path / "tb"))
    assert feed(config, tmp_path, main=False) == []
    assert not (tmp_path / "tb").exists()


@pytest.mark.slow
def test_mlflow_honours_a_file_store_the_user_names(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    uri = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    feed(RunConfig(algorithm="npo", steps=2, report_to="mlflow", logging_dir=str(tmp_path / "logs")), tmp_path)
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name(trackers.PROJECT).experiment_id])
    assert run.info.run_name == "20261207-000000-npo-abcd" and run.info.status == "FINISHED"
    assert [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "train/loss")] == [
        (1, -0.25),
        (2, -0.5),
    ]
    assert run.data.metrics["after/forget/accuracy"] == 0.5 and run.data.params["algorithm"] == "npo"
    assert not (tmp_path / "logs" / "mlflow.db").exists()  # the user's store, not ours


@pytest.mark.slow
def test_a_real_run_reports_to_tensorboard_and_mlflow(tmp_path, monkeypatch):
    """The bundled model, three steps from the CLI; both trackers read back from disk."""
    pytest.importorskip("tensorboard")
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    from tui_unlearn.cli import app

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    logs = tmp_path / "logs"
    args = ["--batch", "--sessions-dir", str(tmp_path / "s"), "--model", "tiny-authors", "--steps", "3"]
    args += ["--eval-every", "2", "--eval-samples", "4", "--probe-samples", "2", "--oracle", "none"]
    args += ["--no-calibrate", "--no-general-retain", "--guard-general", "0", "--guard-knowledge", "0"]
    args += ["--report-to", "tensorboard,mlflow", "--logging-dir", str(logs), "--jsonl"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    session = events[-1]["summary"]["session_id"]
    steps = {e["step"]: e["losses"] for e in events if e["event"] == "step"}
    assert not [e for e in events if "stopped reporting" in e.get("message", "")]

    run = logs / session
    assert [s for s, _ in scalars(run, "train/loss")] == [1, 2, 3]
    assert scalars(run, "train/loss")[2][1] == pytest.approx(steps[3]["loss"], rel=1e-6)
    evaluations = [(e["phase"], e["step"]) for e in events if e["event"] == "evaluation"]
    assert evaluations == [("before", 0), ("during", 2), ("after", 3)]
    # Every number of every evaluation, at its step, under <phase>/<split>/<metric>.
    measured = 0
    for e in (e for e in events if e["event"] == "evaluation"):
        for split, values in e["metrics"].items():
            for metric, value in values.items():
                if isinstance(value, float) and value == value:
                    tag = f"{e['phase']}/{split}/{metric}"
                    assert (e["step"], pytest.approx(value, rel=1e-5, abs=1e-7)) in scalars(run, tag), tag
                    measured += 1
    assert measured > 100 and [s for s, _ in scalars(run, "during/forget/loss")] == [2]
    assert tensorboard_hparams(run)["algorithm"] == "grad_diff"

    client = MlflowClient(trackers.mlflow_uri(logs))
    (found,) = client.search_runs([client.get_experiment_by_name(trackers.PROJECT).experiment_id])
    assert found.info.run_name == session and found.data.params["steps"] == "3"
    history = client.get_metric_history(found.info.run_id, "train/loss")
    assert [(m.step, m.value) for m in history] == [(s, pytest.approx(steps[s]["loss"], rel=1e-6)) for s in (1, 2, 3)]
    assert "before/forget/accuracy" in found.data.metrics and "after/holdout/loss" in found.data.metrics
