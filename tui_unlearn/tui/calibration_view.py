"""Where a run stands against its stop rule and keep-best metric, in a few words and a bar.

Pure functions over the engine's ``events.Calibration`` (no Textual), so the run pane's
calibration box is tested without an app. A damaged events.jsonl can carry any JSON in an
event's fields: everything read here is checked, and what is not a number shows as "-".
"""

from __future__ import annotations

import math
from typing import Any

from rich.text import Text

from tui_unlearn import events as ev

BAR_WIDTH = 20  # cells of the progress bar: 5% a cell
# forget_quality is a p-value: the engine measures its distance in decades.
LOG_SCALE = ("forget_quality",)


def number(value: Any) -> float | None:
    """``value`` when it is a finite number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def short(value: Any) -> str:
    """A number in 3 significant digits ("-" when it is not one)."""
    v = number(value)
    return "-" if v is None else f"{v:.3g}"


def progress_bar(progress: float | None, width: int = BAR_WIDTH) -> Text:
    """``progress`` (0..1, clamped) as ``width`` cells and a percentage; dim dots when unknown."""
    p = number(progress)
    if p is None:
        return Text("·" * width + "   ?", style="dim")
    p = min(1.0, max(0.0, p))
    full = round(p * width)
    return Text.assemble(
        ("█" * full, "green" if p >= 1.0 else "cyan"), ("░" * (width - full), "dim"), f" {round(100 * p):>3d}%"
    )


def rule_metrics(rule: str) -> list[str]:
    """The metric names a rule's clauses read, in order ([] when the text is not a rule)."""
    from tui_unlearn.engine.stop_rules import parse_rule
    from tui_unlearn.errors import ConfigError

    try:
        return list(dict.fromkeys(parse_rule(rule).metrics))
    except ConfigError:
        return []


def ended_step(outcome: dict[str, Any] | None, key: str) -> int | None:
    """A step the run's summary names under ``calibration`` (``stopped_at``, ``kept_step``)."""
    value = outcome.get(key) if isinstance(outcome, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def rule_line(event: ev.Calibration, outcome: dict[str, Any] | None = None) -> Text | None:
    """``stop rule ████░░ 40% · <rule> · not met · distance d · <metric> <value>`` (None: no rule)."""
    if not isinstance(event.rule, str) or not event.rule.strip():
        return None
    metrics = rule_metrics(event.rule)
    values = event.values if isinstance(event.values, dict) else {}
    met = event.rule_met is True
    state = ("✓ met", "bold green") if met else ("not met", "yellow")
    parts: list[Any] = [
        ("stop rule ", "bold"),
        progress_bar(1.0 if met and event.progress is None else event.progress),
        " · ",
        (event.rule, "bold"),
        " · ",
        state,
    ]
    distance = number(event.distance)
    if distance is not None and not met:
        unit = " decades" if metrics and all(m in LOG_SCALE for m in metrics) else ""
        parts += [" · distance ", f"{distance:.3g}{unit}"]
    stopped = ended_step(outcome, "stopped_at")
    if stopped is not None:
        parts += [" · ", (f"stopped at step {stopped}", "bold")]
    shown = [f"{m} {short(values.get(m))}" for m in metrics]
    if shown:
        parts += [" · ", (", ".join(shown), "dim")]
    return Text.assemble(*parts)


def keep_best_line(
    event: ev.Calibration, utility_floor: float | None = None, outcome: dict[str, Any] | None = None
) -> Text | None:
    """``keep best <metric> · best step s = v · utility floor holds`` (None: no keep-best)."""
    if not isinstance(event.keep_best, str) or not event.keep_best:
        return None
    best_step = event.best_step if isinstance(event.best_step, int) and not isinstance(event.best_step, bool) else None
    if best_step is None:
        best: tuple[str, str] = ("no candidate yet", "dim")
    else:
        best = (f"best step {best_step} = {short(event.best_value)}", "")
    now = (event.values or {}).get(event.keep_best) if isinstance(event.values, dict) else None
    parts: list[Any] = [("keep best ", "bold"), (event.keep_best, "bold"), " · ", best, " · now ", short(now)]
    floor = number(utility_floor)
    named = f"utility floor {floor:g}×" if floor else "utility floor"
    if event.floor_met is True:
        parts += [" · ", (f"{named} holds", "green")]
    elif event.floor_met is False:
        parts += [" · ", (f"{named} not held here", "bold red")]
    kept = ended_step(outcome, "kept_step")
    if kept is not None:
        parts += [" · ", (f"kept the weights of step {kept}", "bold green")]
    return Text.assemble(*parts)


def calibration_text(
    event: ev.Calibration, utility_floor: float | None = None, outcome: dict[str, Any] | None = None
) -> Text | None:
    """The calibration box's lines: the stop rule's, then keep-best's; None when the run has
    neither (the box is then hidden). ``outcome``: the ended run's ``summary["calibration"]``
    (where the rule stopped it, which step's weights were kept)."""
    lines = [
        line for line in (rule_line(event, outcome), keep_best_line(event, utility_floor, outcome)) if line is not None
    ]
    if not lines:
        return None
    return Text("\n").join(lines)
