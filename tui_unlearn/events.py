"""What a run reports while it runs: small dataclasses, one per kind of news.

The engine calls ``on_event(event)`` with these; the batch face prints ``to_dict()`` as
JSON lines, the TUI turns them into messages, and the session keeps them in
``events.jsonl``. Keys may be added, never renamed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, TypedDict

from tui_unlearn.phase_names import Phase


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


class RunScale(TypedDict):
    """How a run is laid out: ``RunStarted.scale``, and the session's ``_resolved`` config and
    summary ``scale`` (where training adds ``trainable_parameters`` and ``parameters``)."""

    processes: int
    batch_size: int  # per process and micro-step
    grad_accum: int
    effective_batch: int  # batch_size * grad_accum * processes
    mixed_precision: str
    device: str
    threads: int
    lora_r: int
    eval_batch_size: int


@dataclass
class RunStarted(Event):
    kind: ClassVar[str] = "started"
    session_id: str
    session_path: str
    config: dict[str, Any]
    total_steps: int
    model_info: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)  # split sizes, cleaning report
    scale: dict[str, Any] = field(default_factory=dict)  # the keys of RunScale


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
    phase: Phase
    metrics: dict[str, dict[str, float]]  # split -> metric -> value
    elapsed: float


@dataclass
class Calibration(Event):
    """Where a run stands against its stop rule and keep-best metric, at one evaluation.

    Emitted after the evaluation "before" (step 0) and at every evaluation during the run.
    ``values``: the calibration numbers measured now (forget_quality, model_utility,
    utility_ratio, holdout_parity, mia_auc_loss, mia_auc_min_k_pp, forget_accuracy, ...;
    None where not measured). ``rule``: the --stop-when text (None: no rule);
    ``rule_met``: it holds now; ``distance``: how far from holding (0 when met; decades
    for forget quality); ``progress``: 0 at the original model, 1 at the rule (None
    without a rule). ``keep_best``: the metric whose best evaluation is kept, with
    ``best_step``/``best_value`` so far; ``floor_met``: this evaluation keeps model utility
    above ``--utility-floor`` x the original's (None when no floor applies).
    """

    kind: ClassVar[str] = "calibration"
    step: int
    values: dict[str, float | None]
    rule: str | None = None
    rule_met: bool = False
    distance: float | None = None
    progress: float | None = None
    keep_best: str | None = None
    best_step: int | None = None
    best_value: float | None = None
    floor_met: bool | None = None


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


EVENT_TYPES = {
    cls.kind: cls
    for cls in (Log, RunStarted, StepLosses, Evaluation, Calibration, ProbeAnswers, RunFinished, RunFailed)
}


def event_from_dict(data: dict[str, Any]) -> Event:
    """Rebuild an event from ``to_dict()`` output (reading events.jsonl back)."""
    data = dict(data)
    cls = EVENT_TYPES[data.pop("event")]
    names = cls.__dataclass_fields__
    return cls(**{k: v for k, v in data.items() if k in names})
