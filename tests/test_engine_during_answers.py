"""Evaluations during training grade a few answers, so accuracy and F1 move (issue 20 item 1)."""

from __future__ import annotations

import json

import pytest

from tui_unlearn import events as ev
from tui_unlearn.config import RunConfig
from tui_unlearn.engine import phases, run

FORGET = [{"question": f"Where was Author {i} born?", "answer": f"Author {i} was born in Town {i}."} for i in range(6)]


@pytest.mark.slow
def test_an_evaluation_during_training_grades_answers_of_a_few_records(micro_model_dir, tmp_path):
    forget = tmp_path / "forget.jsonl"
    forget.write_text("".join(json.dumps(r) + "\n" for r in FORGET))
    config = RunConfig(
        model=str(micro_model_dir),
        forget=str(forget),
        algorithm="grad_ascent",
        steps=2,
        eval_every=1,
        eval_samples=2,
        probe_samples=6,
        max_new_tokens=4,
        device="cpu",
        oracle="none",
    )
    events: list[ev.Event] = []
    run(config, events.append, sessions_dir=tmp_path / "s")
    (during,) = [e for e in events if isinstance(e, ev.Evaluation) and e.phase == "during"]
    forget_metrics = during.metrics["forget"]
    assert {"accuracy", "f1", "loss"} <= set(forget_metrics)
    logs = [e.message for e in events if isinstance(e, ev.Log)]
    assert any(f"from {phases.ANSWERED_DURING} answered records" in line for line in logs)
