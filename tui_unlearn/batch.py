"""The batch face: engine events to JSON on stdout and progress for people on stderr."""

from __future__ import annotations

import json
import sys
from typing import Any

from tui_unlearn import events as ev
from tui_unlearn.analysis.reporting import evaluation_line, progress_text, run_started_line
from tui_unlearn.printable import printable
from tui_unlearn.sessions import Status

RESULT_KEYS = (
    "forget_quality",
    "model_utility",
    "privleak",
    "relearn",
    # does the model still speak: the original's answers to general prompts scored now (metrics.general)
    "general_ability",
    "guard",
    # which evaluation's weights the run ended on and why (keep-best, stop rule, the utility floor)
    "calibration",
    "over_forgetting",
    # knowledge never told to forget: the world-knowledge probe's share kept, and what was lost by name
    "knowledge_kept",
    "knowledge",
    "collateral_damage",
    # the evaluation recipe's: its other headline numbers, why a headline number is None, what it evaluated
    "mia_auc",
    "retain_utility",
    "forget_quality_basis",
    "verbmem_forget",
    "knowmem_forget",
    "knowmem_retain",
    "wmdp_accuracy",
    "mmlu_accuracy",
    "null_reasons",
    "recipe",
)


def result_object(summary: dict[str, Any]) -> dict[str, Any]:
    """The documented ``--json`` object (keys may be added, never renamed)."""
    out = {
        "session_id": summary.get("session_id"),
        "session_path": summary.get("session_path"),
        "status": summary.get("status"),
        "kind": summary.get("kind", "unlearn"),
        "algorithm": summary.get("algorithm"),
        "model": summary.get("model"),
        "steps": summary.get("steps", 0),
        "seconds": summary.get("seconds"),
        "metrics": summary.get("metrics", {}),
    }
    for key in RESULT_KEYS:
        if key in summary:
            out[key] = summary[key]
    if summary.get("error"):
        out["error"] = summary["error"]
    return out


class BatchReporter:
    def __init__(self, *, as_json: bool, as_jsonl: bool, stdout=None, stderr=None):
        self.as_json = as_json
        self.as_jsonl = as_jsonl
        self.out = stdout or sys.stdout
        self.err = stderr or sys.stderr
        self.tty = hasattr(self.err, "isatty") and self.err.isatty()
        self.session_path: str | None = None
        self.session_id: str | None = None
        self._bar_open = False

    # -- events --
    def on_event(self, event: ev.Event) -> None:
        if self.as_jsonl:
            self.out.write(json.dumps(event.to_dict(), default=str) + "\n")
            self.out.flush()
        if isinstance(event, ev.RunStarted):
            self.session_path, self.session_id = event.session_path, event.session_id
            self._line(run_started_line(event.session_id, event.data, event.total_steps))
        elif isinstance(event, ev.Log):
            self._line(event.message)
        elif isinstance(event, ev.StepLosses):
            self._progress(event)
        elif isinstance(event, ev.Evaluation):
            self._line(evaluation_line(event.step, event.phase, event.metrics))
        elif isinstance(event, ev.RunFailed):
            self._line(f"failed: {event.error}")

    def _progress(self, event: ev.StepLosses) -> None:
        loss = event.losses.get("loss")
        text = progress_text(event.step, event.total_steps, event.elapsed)
        if isinstance(loss, (int, float)):
            text += f" · loss {loss:.4f}"
        if self.tty:
            width = 24
            filled = int(width * event.step / max(event.total_steps, 1))
            self.err.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {text}   ")
            self.err.flush()
            self._bar_open = True
        elif event.step == event.total_steps or event.step % 10 == 0:
            self._line(text)

    def _line(self, text: str) -> None:
        if self._bar_open:
            self.err.write("\n")
            self._bar_open = False
        self.err.write(printable(text) + "\n")  # log lines quote records and paths from files
        self.err.flush()

    def close(self) -> None:
        if self._bar_open:
            self.err.write("\n")
            self._bar_open = False

    # -- results --
    def print_result(self, result) -> None:
        summary = {**result.summary, "session_path": result.session_path}
        if self.as_json:
            self.out.write(json.dumps(result_object(summary)) + "\n")
        elif not self.as_jsonl:
            from tui_unlearn.analysis.tables import before_after_table

            self.out.write(printable(before_after_table(summary)) + "\n")
        self.out.flush()
        if result.status != Status.FINISHED:
            self._line(f"run ended: {result.status} (session {result.session_path})")
        else:
            self._line(f"session saved: {result.session_path}")

    def print_failure(self, error: str) -> None:
        if self.as_json:
            assert self.session_path is not None  # a failure is printed only once the run has a session
            from pathlib import Path

            from tui_unlearn.sessions import Session

            summary = Session(Path(self.session_path)).summary()
            summary["session_path"] = self.session_path
            summary.setdefault("error", error)
            self.out.write(json.dumps(result_object(summary)) + "\n")
            self.out.flush()
