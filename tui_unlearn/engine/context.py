"""The small state a run's phases share, and how a run ends however it ends."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tui_unlearn import events as ev
from tui_unlearn.errors import ExitCode, RunFailedError, UnlearnError

OnEvent = Callable[[ev.Event], None]
ShouldStop = Callable[[], bool]


@dataclass
class RunResult:
    status: str  # finished | interrupted | diverged | failed
    session_id: str | None
    session_path: str | None
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return {
            "finished": ExitCode.OK,
            "interrupted": ExitCode.INTERRUPTED,
        }.get(self.status, ExitCode.RUN_FAILED)


@dataclass
class RunContext:
    """What one run knows as it goes: inputs, the model, the session, the results so far.

    Under ``accelerate launch`` every process holds a context; only the main process has a
    session and emits events (``record``), the others compute alongside it.
    """

    config: Any
    emit: OnEvent
    stop: ShouldStop
    root: Path
    started: float = field(default_factory=time.monotonic)
    is_main: bool = True
    algorithm: Any = None
    accelerator: Any = None
    data: Any = None
    splits: dict[str, list[dict]] = field(default_factory=dict)
    plan: Any = None  # the recipe's evaluation (recipes.plan.EvalPlan)
    eval_batch: Any = None  # metrics.batching.EvalBatch: rows per evaluation batch, set with the plan
    loaded: Any = None
    oracle: Any = None
    session: Any = None
    scale: dict[str, Any] = field(default_factory=dict)
    warm: Any = None  # engine.warm.WarmStart: inputs a sweep's earlier trial in this process loaded
    # training
    model: Any = None  # the model being trained, unwrapped (the loop holds the prepared one)
    loop: Any = None
    references: Any = None
    regularisers: Any = None
    streams: dict[str, Any] = field(default_factory=dict)
    method_state: dict[str, Any] = field(default_factory=dict)  # LossInputs.state, kept across steps
    calibration: Any = None  # engine.calibration.Calibration: stop rule and keep-best, when asked for
    # step -> the recipe's full evaluation of the weights at that step (calibration's, the kept and
    # the latest): the "after" evaluation of those same weights reuses it instead of running again
    full_evaluations: dict[int, Any] = field(default_factory=dict)
    probes: list[dict] = field(default_factory=list)
    original_answers: list[str] = field(default_factory=list)
    general: Any = None  # metrics.general.GeneralReference: the original's answers to the general prompts
    general_last: Any = None  # (step, numbers, worst prompt) of the last general-ability measurement
    knowledge: Any = None  # (probe items, metrics.knowledge.ProbeReference): the original's answers to the probe
    knowledge_last: Any = None  # (step, numbers) of the last knowledge measurement
    train_started: float | None = None
    train_before: float = 0.0  # seconds of training a resumed run's session had done before
    generate_during: bool = False  # evaluations during training also generate answers
    # results
    before: Any = None
    after: Any = None
    field_metrics: dict[str, Any] = field(default_factory=dict)
    examples: list[dict] = field(default_factory=list)
    status: str = "finished"
    done: int = 0
    last_losses: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # summary fields later phases add

    def record(self, event: ev.Event) -> None:
        """Append to the session's history and tell the face (main process only)."""
        if not self.is_main:
            return
        if self.session is not None:
            self.session.append_event(event.to_dict())
        self.emit(event)

    def log(self, message: str) -> None:
        """A progress line for people; kept in the session's history once it exists, so a
        watcher in another process sees the phases too."""
        self.record(ev.Log(message))

    def elapsed(self) -> float:
        return round(time.monotonic() - self.started, 2)

    def wait_for_everyone(self) -> None:
        if self.accelerator is not None and self.accelerator.num_processes > 1:
            self.accelerator.wait_for_everyone()


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def describe_failure(exc: BaseException) -> str:
    """One line for people about an unexpected failure inside a run."""
    from tui_unlearn.engine.runtime import OOM_HELP, is_out_of_memory
    from tui_unlearn.errors import first_line

    if isinstance(exc, UnlearnError):
        return str(exc)
    if is_out_of_memory(exc):
        return OOM_HELP
    return f"run failed: {type(exc).__name__}: {first_line(exc)} (traceback in the session's error.txt)"


def guarded(ctx: RunContext, body: Callable[[], RunResult]) -> RunResult:
    """Run ``body`` in the context's session; keep the session and say in one line what went wrong."""
    session = ctx.session
    try:
        return body()
    except KeyboardInterrupt:
        summary = session.update_summary(status="interrupted", ended=now(), seconds=ctx.elapsed()) if session else {}
        ctx.record(ev.RunFinished("interrupted", summary))
        return RunResult("interrupted", getattr(session, "id", None), str(session.path) if session else None, summary)
    except Exception as exc:  # any failure: keep the session, say what happened in one line
        error = describe_failure(exc)
        if session is not None:
            # The folder may be what failed (deleted, full, error.txt a folder): saying what
            # went wrong matters more than the record, so a failed write here is let go.
            try:
                (session.path / "error.txt").write_text(traceback.format_exc(), encoding="utf-8")
            except OSError:
                pass
            try:
                session.update_summary(status="failed", error=error, ended=now(), seconds=ctx.elapsed())
            except OSError:
                pass
        failed = ev.RunFailed(
            error, int(getattr(exc, "exit_code", ExitCode.RUN_FAILED)), str(session.path) if session else None
        )
        try:
            ctx.record(failed)
        except OSError:
            ctx.emit(failed)  # the face still hears it when the history cannot take it
        if isinstance(exc, UnlearnError):
            raise
        raise RunFailedError(error) from exc
