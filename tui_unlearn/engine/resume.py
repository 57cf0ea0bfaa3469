"""Taking a killed or interrupted run up again in its own session.

What the run had measured before it stopped is read back from the session (the "before"
evaluation from ``summary.json`` and ``examples.jsonl``, the original model's probe answers
from ``events.jsonl``), so nothing already done is repeated; history written after the
checkpoint (steps the new run will take again) is dropped from ``events.jsonl``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tui_unlearn.errors import ConfigError
from tui_unlearn.phase_names import Phase

if TYPE_CHECKING:
    from tui_unlearn.config import ResolvedConfig, RunConfig

# Event kinds that belong to training steps: after the checkpoint they are taken again.
STEP_KINDS = ("step", "probes", "evaluation", "log")


def open_for_resume(root: Path, ref: str):
    """The session ``ref`` names, checked to be resumable; ConfigError (one line) if not."""
    from tui_unlearn.session_files import check_regular
    from tui_unlearn.sessions import CONFIG_FILE, EVENTS_FILE, EXAMPLES_FILE, SUMMARY_FILE, Status, open_session

    if not ref.strip():
        raise ConfigError("--resume needs a session id (see 'tui-unlearn sessions list')")
    session = open_session(root, ref)
    summary = session.summary()
    status = summary.get("status")
    if status == Status.UNREADABLE:
        raise ConfigError(f"session {session.id} cannot be resumed: {summary.get('problem')}")
    if summary.get("kind", "unlearn") != "unlearn":
        raise ConfigError(f"session {session.id} is an {summary.get('kind')} session; only unlearning runs resume")
    running = session.still_running()
    if running:
        raise ConfigError(running)
    if status in (Status.FINISHED, Status.DIVERGED):
        raise ConfigError(
            f"session {session.id} already ended ({status}); start a new run with --config {session.path / 'config.json'}"
        )
    # A resumed run rewrites these: one that is a folder or a pipe would fail (or block) mid-run.
    for name in (SUMMARY_FILE, CONFIG_FILE, EVENTS_FILE, EXAMPLES_FILE):
        problem = check_regular(session.path / name)
        if problem is not None:
            raise ConfigError(f"session {session.id} cannot be resumed: {problem}")
    return session


def config_of(session) -> Any:
    from tui_unlearn.config import RunConfig

    data, problem = session.read_config()
    if problem is not None:
        raise ConfigError(f"session {session.id} cannot be resumed: its config.json {problem}")
    data.pop("_resolved", None)
    return RunConfig.from_dict(data, source=str(session.path / "config.json"))


def on_this_machine(config: RunConfig, machine: dict[str, Any]) -> tuple[ResolvedConfig, dict[str, Any]]:
    """``config`` (the session's, resolved) with this machine's settings, and which changed
    (name -> (old, new)). Only ``config.MACHINE_SETTINGS`` may: ConfigError names any other."""
    from tui_unlearn.config import MACHINE_SETTINGS, SETTINGS, resolve

    others = sorted(name for name in machine if name not in MACHINE_SETTINGS)
    if others:
        raise ConfigError(
            f"a resumed run keeps its own run settings ({', '.join(others)}); "
            f"only machine settings change: {', '.join(sorted(MACHINE_SETTINGS & set(SETTINGS)))}"
        )
    resumed = resolve(config.with_overrides(**machine))
    changed = {
        name: (getattr(config, name), getattr(resumed, name))
        for name in machine
        if getattr(config, name) != getattr(resumed, name)
    }
    return resumed, changed


def changed_text(changed: dict[str, Any]) -> str:
    """`` with threads 1 (was 4), device cuda (was cpu)`` or nothing; a value that leaves the
    setting to the machine (threads unset, eval batch size 0) is "auto"."""
    if not changed:
        return ""
    return " with " + ", ".join(
        f"{name} {_setting_value(name, new)} (was {_setting_value(name, old)})" for name, (old, new) in changed.items()
    )


def _setting_value(name: str, value: Any) -> Any:
    """``value`` as the resume line shows it: "auto" where the machine decides (None for a
    number that may be unset, 0 for a number whose least value is 0), else itself."""
    from tui_unlearn.config import SETTINGS

    param = SETTINGS.get(name)
    if param is None or param.type not in ("int", "float"):
        return value
    if value is None or (value == 0 and param.min == 0):
        return "auto"
    return value


def time_before(session, step: int) -> tuple[float, float]:
    """(seconds the session's run had taken, seconds of it training up to ``step``) before
    it stopped: the summary's "seconds" (an interrupted run) or the last time an event
    recorded (a killed one), and the "elapsed" of the step event at ``step`` (the resumed
    run's training clock goes on from its checkpoint)."""
    summary = session.summary()
    seconds = summary.get("seconds")
    train = 0.0
    last = 0.0
    for event in session.events():
        elapsed = event.get("elapsed")
        if not _number(elapsed):
            continue
        if event.get("event") == "step":
            if event.get("step") == step:
                train = float(elapsed)
        else:  # evaluations carry the run's clock; steps, the training clock
            last = max(last, float(elapsed))
    return (float(seconds) if _number(seconds) else last), train


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value and value >= 0


def reclaim(session) -> None:
    """Mark the session as this process's run again (ConfigError when another process took
    it up meanwhile), and drop what a killed writer left half-written."""
    session.claim()
    session.remove_strays()


def restore_before(ctx: Any, session: Any) -> bool:
    """Fill ``ctx.before`` and what goes with it from ``session``; False when the run never
    finished its "before" evaluation (then it is done again)."""
    from tui_unlearn.metrics.evaluate import EvalResult

    summary = session.summary()
    before = (summary.get("metrics") or {}).get(Phase.BEFORE)
    rows = [row for row in session.examples() if row.get("phase") == Phase.BEFORE]
    if not before or not rows:
        return False
    examples = [{k: v for k, v in row.items() if k != "phase"} for row in rows]
    ratios: dict[str, list[float]] = {}
    for row in examples:
        if isinstance(row.get("truth_ratio"), (int, float)):
            ratios.setdefault(row["split"], []).append(float(row["truth_ratio"]))
    ctx.before = EvalResult(aggregates=before, examples=examples, truth_ratios=ratios)
    ctx.examples = [dict(row) for row in rows]
    ctx.field_metrics[Phase.BEFORE] = (summary.get("field_metrics") or {}).get(Phase.BEFORE) or {}
    for event in session.events():
        if event.get("event") == "probes" and event.get("step") == 0:
            ctx.original_answers = [p.get("original", "") for p in event.get("probes") or []]
            break
    return True


def drop_history_after(session, step: int) -> None:
    """Rewrite events.jsonl without what came after ``step`` (taken again by the resumed run)."""
    from tui_unlearn.sessions import EVENTS_FILE, atomic_write_text

    kept, seen_end = [], False
    for event in session.events():
        kind = event.get("event")
        if kind in ("finished", "failed"):
            seen_end = True
            continue
        if kind in STEP_KINDS and isinstance(event.get("step"), int) and event["step"] > step:
            continue
        if seen_end and kind == "log":
            continue
        kept.append(event)
    atomic_write_text(session.path / EVENTS_FILE, "".join(json.dumps(e) + "\n" for e in kept))
