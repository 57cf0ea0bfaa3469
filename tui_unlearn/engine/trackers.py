"""Experiment trackers (``--report-to``): one more consumer of the engine's event stream.

The engine emits events (``tui_unlearn.events``) to the face; when a run reports to
trackers, :func:`attach` puts a :class:`TrackerSink` beside the face on that stream, and
the sink maps each event to accelerate's tracker classes (TensorBoard, Weights & Biases,
MLflow, Aim), so nothing inside the training loop knows about them:

- ``RunStarted``: the trackers start a run named after the session, with the run's config
  (``RunConfig.defining_dict``, flattened: ``hparams.<name>``, ``scale.<name>``) as its
  hyperparameters;
- ``StepLosses``: ``train/<term>`` for every loss term, and ``train/lr``, at the step;
- ``Evaluation``: ``<phase>/<split>/<metric>`` (phase before, during or after) at its step;
- ``Calibration``: ``calibration/<value>`` (forget quality, model utility, ...) at its step;
- ``RunFinished``: the summary's headline numbers as ``summary/<name>``, then the trackers
  close; ``RunFailed`` closes them.

Only the main process emits events (``RunContext.record``), so only it reports. A tracker
that fails while the run goes on is dropped with one line on the face; the run is not lost
for it. The TUI and ``watch`` read the session, not the trackers: they are unchanged.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from tui_unlearn import events as ev
from tui_unlearn.errors import ConfigError

TRACKERS = ("tensorboard", "wandb", "mlflow", "aim")
CHOICES = (*TRACKERS, "all", "none")
PROJECT = "tui-unlearn"  # the experiment (MLflow), project (W&B) every run is reported under
# What a missing tracker package is installed with.
INSTALL = {
    "tensorboard": "pip install 'tui-unlearn[trackers]' (or pip install tensorboard)",
    "mlflow": "pip install 'tui-unlearn[trackers]' (or pip install mlflow)",
    "wandb": "pip install wandb",
    "aim": "pip install aim",
}


def parse_report_to(value: str) -> list[str]:
    """``--report-to`` as a list of names (``"tensorboard,mlflow"`` -> both; ``none`` -> [])."""
    names = [part.strip().lower() for part in value.split(",") if part.strip()]
    return [] if names in ([], ["none"]) else names


def check_report_to(value: str) -> str | None:
    """Why ``value`` is not a --report-to value (a Param rule), or None."""
    names = parse_report_to(value)
    unknown = [name for name in names if name not in CHOICES]
    if unknown:
        return f"names no tracker {unknown[0]!r}: use {', '.join(TRACKERS)}, all or none (several joined with ',')"
    if len(names) > 1 and ("none" in names or "all" in names):
        return "takes all or none alone, not joined with other trackers"
    return None


def installed(name: str) -> bool:
    """The tracker's package can be imported here (accelerate's own checks)."""
    from accelerate.utils import is_aim_available, is_mlflow_available, is_tensorboard_available, is_wandb_available

    checks = {
        "tensorboard": is_tensorboard_available,  # tensorboard, or tensorboardX which accelerate falls back to
        "mlflow": is_mlflow_available,
        "wandb": is_wandb_available,
        "aim": is_aim_available,
    }
    return bool(checks[name]())


def require_trackers(value: str) -> list[str]:
    """The trackers ``value`` asks for, each installed; ConfigError (one line) naming the pip command if not."""
    names = parse_report_to(value)
    if names == ["all"]:
        found = [name for name in TRACKERS if installed(name)]
        if not found:
            raise ConfigError(
                f"--report-to all found none of {', '.join(TRACKERS)} installed: {INSTALL['tensorboard']}"
            )
        return found
    for name in names:
        if not installed(name):
            raise ConfigError(f"--report-to {name} needs the {name} package: {INSTALL[name]}")
    return names


def mlflow_uri(logging_dir: Path) -> str:
    """Where MLflow records runs when MLFLOW_TRACKING_URI does not say: a SQLite file in the logging folder."""
    return f"sqlite:///{(logging_dir / 'mlflow.db').resolve()}"


def hyperparameters(config: Any, scale: dict[str, Any]) -> dict[str, bool | int | float | str]:
    """The run's config (without machine settings) as flat scalar hyperparameters: a method's
    ``hparams.<name>``, lists joined with ',', the resolved scale as ``scale.<name>``; None
    values (nothing set) are left out."""
    out: dict[str, bool | int | float | str] = {}

    def put(key: str, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, dict):
            for name, item in value.items():
                put(f"{key}.{name}", item)
        elif isinstance(value, (list, tuple)):
            out[key] = ",".join(str(item) for item in value)
        elif isinstance(value, (bool, int, float, str)):
            out[key] = value
        else:
            out[key] = str(value)

    for name, value in config.defining_dict().items():
        put(name, value)
    for name, value in scale.items():
        put(f"scale.{name}", value)
    return out


def _numbers(prefix: str, values: dict[str, Any]) -> dict[str, float]:
    """Every finite number of ``values`` (nested dicts joined with '/') under ``prefix/``."""
    out: dict[str, float] = {}
    for name, value in values.items():
        key = f"{prefix}/{name}"
        if isinstance(value, dict):
            out.update(_numbers(key, value))
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out[key] = float(value)
    return out


class TrackerSink:
    """Maps a run's events to accelerate's trackers (see the module docstring).

    ``notify`` tells the face (not the trackers) when a tracker fails and is dropped.
    """

    def __init__(self, config: Any, names: list[str], logging_dir: Path, notify: Any) -> None:
        self.config = config
        self.names = names
        self.logging_dir = logging_dir
        self.notify = notify
        self.trackers: list[Any] = []
        self.started = False
        self.scale: dict[str, Any] = {}

    def __call__(self, event: ev.Event, session_id: str = "") -> None:
        if isinstance(event, ev.RunStarted):
            self.scale = dict(event.scale)
            self.start(event.session_id or session_id)
        elif isinstance(event, (ev.RunFinished, ev.RunFailed)):
            if isinstance(event, ev.RunFinished) and self.started:
                step = event.summary.get("steps")
                # Top-level numbers only (headline numbers, seconds): the metrics came with their evaluations.
                headline = {k: v for k, v in event.summary.items() if not isinstance(v, dict)}
                self.log(_numbers("summary", headline), step if isinstance(step, int) else None)
            self.finish()
            return
        values = self.values_of(event)
        if values is None:
            return
        if not self.started:  # a resumed run announces no RunStarted: its trackers start here
            self.start(session_id)
        self.log(*values)

    @staticmethod
    def values_of(event: ev.Event) -> tuple[dict[str, float], int] | None:
        if isinstance(event, ev.StepLosses):
            return {**_numbers("train", event.losses), **_numbers("train", {"lr": event.lr})}, event.step
        if isinstance(event, ev.Evaluation):
            return _numbers(event.phase, event.metrics), event.step
        if isinstance(event, ev.Calibration):
            return _numbers("calibration", event.values), event.step
        return None

    def start(self, run_name: str) -> None:
        if self.started:
            return
        self.started = True
        run_name = run_name or PROJECT
        self.logging_dir.mkdir(parents=True, exist_ok=True)
        params = hyperparameters(self.config, self.scale)
        for name in self.names:
            try:
                tracker = self._make(name, run_name)
                tracker.start()
                tracker.store_init_configuration(params)
            except Exception as exc:  # a tracker that cannot start must not fail the run
                self._drop(name, exc)
                continue
            self.trackers.append(tracker)

    def _make(self, name: str, run_name: str) -> Any:
        from accelerate.tracking import AimTracker, MLflowTracker, TensorBoardTracker, WandBTracker

        where = str(self.logging_dir)
        if name == "tensorboard":  # one folder per session under --logging-dir
            return TensorBoardTracker(run_name, where)
        if name == "mlflow":
            if not os.environ.get("MLFLOW_TRACKING_URI"):
                import mlflow

                # MLflow's own local store (its folder store raises unless MLFLOW_ALLOW_FILE_STORE is set).
                mlflow.set_tracking_uri(mlflow_uri(self.logging_dir))
            return MLflowTracker(experiment_name=PROJECT, run_name=run_name)
        if name == "wandb":
            return WandBTracker(os.environ.get("WANDB_PROJECT") or PROJECT, name=run_name, dir=where)
        return AimTracker(run_name, where)

    def log(self, values: dict[str, float], step: int | None) -> None:
        if not values:
            return
        for tracker in list(self.trackers):
            try:
                tracker.log(values, step=step)
            except Exception as exc:
                self.trackers.remove(tracker)
                self._drop(tracker.name, exc)

    def finish(self) -> None:
        for tracker in self.trackers:
            try:
                tracker.finish()
            except Exception as exc:
                self._drop(tracker.name, exc)
        self.trackers = []

    def _drop(self, name: str, exc: BaseException) -> None:
        from tui_unlearn.errors import first_line

        self.notify(
            ev.Log(f"experiment tracker {name} stopped reporting this run: {type(exc).__name__}: {first_line(exc)}")
        )


def attach(ctx: Any) -> None:
    """Put trackers on the run's event stream when its config reports to any (one place: the
    engine's context); the face still gets every event first."""
    from tui_unlearn.paths import logging_dir

    config = ctx.config
    names = require_trackers(getattr(config, "report_to", "none"))
    if not names:
        return
    face = ctx.emit
    sink = TrackerSink(config, names, logging_dir(config.logging_dir, ctx.root), face)

    def emit(event: ev.Event) -> None:
        face(event)
        session = ctx.session
        sink(event, session.id if session is not None else "")

    ctx.emit = emit
