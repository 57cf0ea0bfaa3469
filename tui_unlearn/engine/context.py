"""The small state a run's phases share, and how a run ends however it ends."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tui_unlearn import events as ev
from tui_unlearn.errors import ExitCode, RunFailedError, UnlearnError

if TYPE_CHECKING:
    from tui_unlearn.algorithms.references import References
    from tui_unlearn.config import ResolvedConfig
    from tui_unlearn.engine.streams import BatchStream
    from tui_unlearn.engine.warm import WarmStart
    from tui_unlearn.metrics.evaluate import EvalResult
    from tui_unlearn.oracle import OracleReference
    from tui_unlearn.sessions import Session

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

    config: ResolvedConfig
    emit: OnEvent
    stop: ShouldStop
    root: Path
    started: float = field(default_factory=time.monotonic)
    is_main: bool = True
    # Set by the load phases and read by every later one; still Any because typing them
    # X | None asks for a None check at each of ~95 reads in phases.py and engine/__init__.py.
    algorithm: Any = None  # algorithms.base.Algorithm
    accelerator: Any = None  # accelerate.Accelerator
    data: Any = None  # data.run_data.RunData
    splits: dict[str, list[dict]] = field(default_factory=dict)
    plan: Any = None  # recipes.plan.EvalPlan: the recipe's evaluation
    eval_batch: Any = None  # metrics.batching.EvalBatch: rows per evaluation batch, set with the plan
    loaded: Any = None  # models.loading.LoadedModel
    oracle: OracleReference | None = None
    session: Session | None = None  # None in the other processes of a launched run
    scale: dict[str, Any] = field(default_factory=dict)
    warm: WarmStart | None = None  # inputs a sweep's earlier trial in this process loaded
    # training
    model: Any = None  # the model being trained, unwrapped (the loop holds the prepared one)
    loop: Any = None  # engine.training.TrainingLoop
    references: References | None = None
    regularisers: Any = None  # engine.regularisers.ActiveRegularisers
    streams: dict[str, BatchStream] = field(default_factory=dict)
    method_state: dict[str, Any] = field(default_factory=dict)  # LossInputs.state, kept across steps
    # The layers gradient checkpointing wraps, marked training before each step (checkpointing.py).
    checkpointed: list[Any] = field(default_factory=list)
    # engine.calibration.Calibration (stop rule and keep-best, when asked for); importing it
    # here, even for mypy alone, would pull this module into the calibration/phases circle.
    calibration: Any = None
    # step -> the recipe's full evaluation of the weights at that step (calibration's, the kept and
    # the latest): the "after" evaluation of those same weights reuses it instead of running again
    full_evaluations: dict[int, EvalResult] = field(default_factory=dict)
    probes: list[dict] = field(default_factory=list)
    original_answers: list[str] = field(default_factory=list)
    general: Any = None  # metrics.general.GeneralReference: the original's answers to the general prompts
    # (step, numbers, worst prompt) of the last general-ability measurement
    general_last: tuple[int, dict[str, float], str | None] | None = None
    knowledge: Any = None  # (probe items, metrics.knowledge.ProbeReference): the original's answers to the probe
    knowledge_last: tuple[int, dict[str, Any]] | None = None  # (step, numbers) of the last knowledge measurement
    train_started: float | None = None
    train_before: float = 0.0  # seconds of training a resumed run's session had done before
    generate_during: bool = False  # evaluations during training also generate answers
    # results (metrics.evaluate.EvalResult)
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
