"""Where a run stands, in words: its phase with a moving clock, and its scale.

Pure functions over a small ``RunProgress`` (no Textual), so the run pane's header and
status line are tested without an app. The phase follows the engine's events (and, for a
run this app started, its log lines): loading, evaluating before, preparing, step k,
evaluating at a step, evaluating after, the relearning check, saving; then the final state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tui_unlearn.analysis.reporting import eta_seconds, format_seconds
from tui_unlearn.phase_names import Phase

ENDED = ("finished", "interrupted", "diverged", "failed", "cancelled", "not started")

PHASE_WORDS = {
    "waiting": "waiting for the run's first event",
    "loading": "loading the data and the model",
    Phase.BEFORE: "evaluating before unlearning",
    "preparing": "preparing to train",
    Phase.AFTER: "evaluating after unlearning",
    "relearning": "relearning check",
    "saving": "saving the session",
}

# Log lines of the engine that name the phase that starts (a run this app started hears
# them; a watched run has only the events, which say the same a little later).
LOG_PHASES = (
    ("loading", "loading"),
    ("evaluating (before)", Phase.BEFORE),
    ("evaluating (after)", Phase.AFTER),
    ("keeping a frozen copy", "preparing"),
    ("caching the original", "preparing"),
    ("relearning check:", None),  # the check's result: the phase moves on with the next line
    ("relearning check", "relearning"),
    ("saving", "saving"),
)


@dataclass
class RunProgress:
    """What the status line needs. Times are epoch seconds (``started_at``) and seconds."""

    phase: str = "idle"  # idle | waiting | loading | before | preparing | training | evaluating | after | relearning | saving | ended
    status: str = "idle"  # idle | running | watching | one of ENDED
    step: int = 0
    total: int = 0
    eval_every: int = 0
    relearn: int = 0
    train_elapsed: float | None = None  # seconds of training at ``step`` (from the step event)
    started_at: float | None = None
    seconds: float | None = None  # the run's own count once it ended (summary "seconds")
    frozen_at: float | None = None  # when it ended, seen from here (stops the clock)

    def elapsed(self, now: float) -> float | None:
        if self.seconds is not None:
            return self.seconds
        if self.started_at is None:
            return None
        return max(0.0, (self.frozen_at if self.frozen_at is not None else now) - self.started_at)

    # ---- following the events ----
    def on_started(self, total: int, config: dict[str, Any]) -> None:
        self.total = total
        self.eval_every = _int(config.get("eval_every"))
        self.relearn = _int(config.get("relearn_steps"))
        self.phase = Phase.BEFORE

    def on_steps(self, step: int, total: int, train_elapsed: float | None) -> None:
        self.step, self.total, self.train_elapsed = step, total, train_elapsed
        if step >= total:
            self.phase = Phase.AFTER
        elif self.eval_every and step % self.eval_every == 0:
            self.phase = "evaluating"
        else:
            self.phase = "training"

    def on_evaluation(self, phase: str) -> None:
        if phase == Phase.BEFORE:
            self.phase = "preparing"
        elif phase == Phase.AFTER:
            self.phase = "relearning" if self.relearn else "saving"
        else:
            self.phase = "training"

    def on_log(self, message: str) -> None:
        for prefix, phase in LOG_PHASES:
            if message.startswith(prefix):
                if phase is not None:
                    self.phase = phase
                return

    def end(self, status: str, seconds: float | None, now: float) -> None:
        self.status, self.phase = status, "ended"
        if isinstance(seconds, (int, float)) and not isinstance(seconds, bool):
            self.seconds = float(seconds)
        self.frozen_at = now


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def phase_text(p: RunProgress, now: float) -> str:
    """The status line: ``step 24/40 · 12s · ETA 8s``, ``evaluating before unlearning · 3s``,
    ``finished · 40/40 steps in 22s``, ``interrupted at step 24/40 · 12s``."""
    clock = format_seconds(p.elapsed(now))
    if p.phase == "idle":
        return "no run yet: ctrl+r starts one"
    if p.phase == "ended":
        if p.status == "finished":
            return f"finished · {p.step}/{p.total} steps in {clock}"
        if p.status == "not started":
            return "not started: see the log"
        where = f" at step {p.step}/{p.total}" if p.total else ""
        return f"{p.status}{where} · {clock}"
    if p.phase == "training":
        eta = format_seconds(eta_seconds(p.step, p.total, p.train_elapsed))
        return f"step {p.step}/{p.total} · {clock} · ETA {eta}"
    if p.phase == "evaluating":
        return f"evaluating at step {p.step}/{p.total} · {clock}"
    return f"{PHASE_WORDS.get(p.phase, p.phase)} · {clock}"


def precision_text(scale: dict[str, Any], model_info: dict[str, Any]) -> str:
    mixed = str(scale.get("mixed_precision") or "no")
    if mixed != "no":
        return f"{mixed} mixed"
    dtype = str(model_info.get("dtype") or "")
    return {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}.get(dtype.replace("torch.", ""), dtype or "fp32")


def scale_text(config: dict[str, Any], scale: dict[str, Any], model_info: dict[str, Any]) -> str:
    """``grad_diff on tiny-authors · batch 32 = 8×4×1 · fp32 · full fine-tuning · cpu``."""
    parts = [f"{config.get('algorithm') or '?'} on {str(config.get('model') or '?').rstrip('/').rsplit('/', 1)[-1]}"]
    if scale:
        batch, accum, procs = scale.get("batch_size"), scale.get("grad_accum"), scale.get("processes")
        effective = scale.get("effective_batch")
        parts.append(f"batch {effective} = {batch}×{accum}×{procs}" if effective is not None else f"batch {batch}")
        parts.append(precision_text(scale, model_info))
        rank = scale.get("lora_r")
        parts.append(f"LoRA r{rank}" if isinstance(rank, int) and rank > 0 else "full fine-tuning")
        if scale.get("device"):
            parts.append(str(scale["device"]))
    return " · ".join(parts)
