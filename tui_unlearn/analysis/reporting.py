"""The lines a run prints for people, written once for the batch face and the TUI's run
pane: progress with ETA, an evaluation, the run's start; and short session labels."""

from __future__ import annotations

from typing import Any

from tui_unlearn.analysis.tables import fmt
from tui_unlearn.data.sources import SourceSpec


def format_seconds(seconds: float | None) -> str:
    """``42s``, ``3m07s`` or ``2h05m``; "-" when unknown."""
    if seconds is None:
        return "-"
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def eta_seconds(step: int, total: int, elapsed: float | None) -> float | None:
    """Seconds left at the mean pace so far (``elapsed`` seconds for ``step`` steps)."""
    if not step or elapsed is None:
        return None
    return elapsed / step * max(total - step, 0)


def progress_text(step: int, total: int, elapsed: float | None) -> str:
    """``step 12/60 · 4s · ETA 16s``."""
    return f"step {step}/{total} · {format_seconds(elapsed)} · ETA {format_seconds(eta_seconds(step, total, elapsed))}"


_LINE_METRICS = (("acc", "accuracy"), ("f1", "f1"), ("loss", "loss"))


def evaluation_line(step: int, phase: str, metrics: dict[str, Any]) -> str:
    """``step N (phase): forget acc .. f1 .. loss ..; retain ...``: every split evaluated,
    each with the accuracy, F1 and loss it computed (a score-only evaluation during training,
    or a holdout kept as a membership baseline, has a loss and no answers to grade); a split
    with none of the three shows ``-``. The caller wraps; nothing is cut here."""
    parts = []
    for split, m in metrics.items():
        m = m if isinstance(m, dict) else {}
        if split == "general":  # not a split: the general-ability numbers (metrics.general)
            if m.get("nll") is not None:
                parts.append(f"general nll {fmt(m['nll'], 2)} ({_signed(m.get('nll_increase'))} vs original)")
            continue
        if split == "knowledge":  # the world-knowledge probe (metrics.knowledge)
            if m.get("knowledge") is not None:
                parts.append(f"knowledge {fmt(m['knowledge'], 2)} (kept {fmt(m.get('knowledge_kept'), 2)})")
            continue
        shown = [f"{label} {fmt(m[key], 2)}" for label, key in _LINE_METRICS if m.get(key) is not None]
        parts.append(f"{split} {' '.join(shown) or '-'}")
    return f"step {step} ({phase}): " + "; ".join(parts)


def _signed(value: Any) -> str:
    return f"{value:+.2f}" if isinstance(value, (int, float)) else "-"


def run_started_line(session_id: str, data: dict[str, Any], total_steps: int) -> str:
    """``session ID: forget N, retain N, holdout N records[, K removed ...]; S steps``."""
    removed = data.get("removed_from_retain")
    extra = f", {removed} removed from retain as forget duplicates" if removed else ""
    steps = f"; {total_steps} steps" if total_steps else ""
    return (
        f"session {session_id}: forget {data.get('forget')}, retain {data.get('retain')}, "
        f"holdout {data.get('holdout')} records{extra}{steps}"
    )


def data_label(spec: Any) -> str:
    """A data source in a few characters: ``bundled:forget10`` -> ``forget10``, a file ->
    its name without the folder, ``hf:owner/name@split`` -> ``name@split``, pasted text
    (saved under the sessions folder's ``.pasted/``) -> ``pasted``; "-" when none."""
    if not isinstance(spec, str) or not spec.strip():
        return "-"
    spec = spec.strip()
    source = SourceSpec.parse(spec)
    if source.is_bundled:
        return source.rest
    if source.is_stdin or "/.pasted/" in spec.replace("\\", "/"):
        return "pasted"
    if source.is_hub:
        return source.rest.rsplit("/", 1)[-1]
    return spec.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]


def session_label(row: dict[str, Any], *, stamp: bool = True) -> str:
    """A short name for a session in legends and column headers: algorithm, the forget set
    when the row names it ("forget": its spec), and the start time (unless ``stamp`` is
    False: where space is short and the rest tells the sessions apart). A sweep's trial
    (the row's "sweep_point": its swept values) is named by what it tried instead:
    ``npo lr=1e-4 beta=0.1`` (its trials share the rest, and a time says nothing of them)."""
    sid = str(row.get("session_id") or "")
    if row.get("kind") == "eval":
        return f"eval {row.get('model') or '?'}"
    point = row.get("sweep_point")
    if isinstance(point, dict) and point:
        from tui_unlearn.sweeps.space import point_label

        return f"{row.get('algorithm') or '?'} {point_label(point)}"
    if len(sid) >= 15 and sid[:8].isdigit() and sid[8] == "-":  # ids start YYYYMMDD-HHMMSS
        when = f"{sid[4:6]}-{sid[6:8]} {sid[9:11]}:{sid[11:13]}"
    else:
        when = sid[:11]
    forget = f" {data_label(row['forget'])}" if row.get("forget") else ""
    return f"{row.get('algorithm') or '?'}{forget} {when if stamp else ''}".strip()


def unique_labels(labels: list[str]) -> list[str]:
    """``labels`` with repeats told apart (" #2", " #3"): two runs of one method in a minute."""
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 else f"{label} #{seen[label]}")
    return out
