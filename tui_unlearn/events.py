"""What a run reports while it runs: small dataclasses, one per kind of news.

The engine calls ``on_event(event)`` with these; the batch face prints ``to_dict()`` as
JSON lines, the TUI turns them into messages, and the session keeps them in
``events.jsonl``. Keys may be added, never renamed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar


@dataclass
class Event:
    kind: ClassVar[str] = "event"

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.kind, **asdict(self)}


@dataclass
class Log(Event):
    """A line of progress for people (loading the model, evaluating, saving)."""

    kind: ClassVar[str] = "log"
    message: str


@dataclass
class RunStarted(Event):
    kind: ClassVar[str] = "started"
    session_id: str
    session_path: str
    config: dict[str, Any]
    total_steps: int
    model_info: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)  # split sizes, cleaning report
    # processes, batch_size, grad_accum, effective_batch, mixed_precision, device, threads, lora_r
    scale: dict[str, Any] = field(default_factory=dict)


@dataclass
class StepLosses(Event):
    kind: ClassVar[str] = "step"
    step: int  # 1-based, the step just taken
    total_steps: int
    losses: dict[str, float]
    lr: float
    elapsed: float  # seconds since training began


@dataclass
class Evaluation(Event):
    kind: ClassVar[str] = "evaluation"
    step: int
    phase: str  # "before" | "during" | "after"
    metrics: dict[str, dict[str, float]]  # split -> metric -> value
    elapsed: float


@dataclass
class ProbeAnswers(Event):
    kind: ClassVar[str] = "probes"
    step: int
    probes: list[dict[str, str]]  # split, question, answer (gold), original, current


@dataclass
class RunFinished(Event):
    kind: ClassVar[str] = "finished"
    status: str  # finished | interrupted | diverged
    summary: dict[str, Any]


@dataclass
class RunFailed(Event):
    kind: ClassVar[str] = "failed"
    error: str  # one line, for people
    exit_code: int
    session_path: str | None = None


EVENT_TYPES = {cls.kind: cls for cls in (Log, RunStarted, StepLosses, Evaluation, ProbeAnswers, RunFinished, RunFailed)}


def event_from_dict(data: dict[str, Any]) -> Event:
    """Rebuild an event from ``to_dict()`` output (reading events.jsonl back)."""
    data = dict(data)
    cls = EVENT_TYPES[data.pop("event")]
    names = cls.__dataclass_fields__
    return cls(**{k: v for k, v in data.items() if k in names})
