"""Reading sessions back: rows, tables and comparisons shared by the CLI and the TUI."""

from __future__ import annotations

from typing import Any

from tui_unlearn.sessions import Session

SPLITS = ("forget", "retain", "holdout")
TABLE_METRICS = ("accuracy", "f1", "loss")


def session_row(session: Session) -> dict[str, Any]:
    """One flat row per session: identity, status and headline metrics before/after."""
    s = session.summary()
    row: dict[str, Any] = {
        "session_id": session.id,
        "kind": s.get("kind", "unlearn"),
        "algorithm": s.get("algorithm"),
        "model": s.get("model"),
        "status": s.get("status"),
        "steps": s.get("steps"),
        "seconds": s.get("seconds"),
        "started": s.get("started"),
    }
    metrics = s.get("metrics", {})
    for phase in ("before", "after"):
        for split in ("forget", "retain"):
            for metric in ("accuracy", "f1"):
                row[f"{split}_{metric}_{phase}"] = metrics.get(phase, {}).get(split, {}).get(metric)
    for key in ("forget_quality", "model_utility"):
        if key in s:
            row[key] = s[key]
    return row


def fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value != 0 and (abs(value) < 10 ** -digits or abs(value) >= 10**6):
            return f"{value:.2e}"
        return f"{value:.{digits}f}"
    return str(value)


def text_table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[fmt(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = lambda values: "  ".join(v.ljust(w) for v, w in zip(values, widths)).rstrip()  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in cells])


def sessions_table(rows: list[dict[str, Any]]) -> str:
    headers = ["session", "algorithm", "model", "status", "steps", "forget acc", "retain acc", "seconds"]
    body = [
        [
            r["session_id"], r["algorithm"], r["model"], r["status"], r["steps"],
            f"{fmt(r['forget_accuracy_before'])} -> {fmt(r['forget_accuracy_after'])}",
            f"{fmt(r['retain_accuracy_before'])} -> {fmt(r['retain_accuracy_after'])}",
            r["seconds"],
        ]
        for r in rows
    ]
    return text_table(headers, body)


def before_after_table(summary: dict[str, Any], metrics: tuple[str, ...] = TABLE_METRICS) -> str:
    """Split x metric rows with before, after and the change."""
    m = summary.get("metrics", {})
    before, after = m.get("before", {}), m.get("after", {})
    rows = []
    for split in SPLITS:
        if split not in before and split not in after:
            continue
        for metric in metrics:
            b = before.get(split, {}).get(metric)
            a = after.get(split, {}).get(metric)
            delta = a - b if isinstance(a, (int, float)) and isinstance(b, (int, float)) else None
            rows.append([split, metric, b, a, delta])
    head = (
        f"{summary.get('algorithm')} on {summary.get('model')}: {summary.get('status')}, "
        f"{summary.get('steps')} steps, {fmt(summary.get('seconds'), 1)} s"
    )
    return head + "\n" + text_table(["split", "metric", "before", "after", "change"], rows)


def session_report(session: Session) -> str:
    s = session.summary()
    config = session.config()
    lines = [f"session {session.id} ({session.path})"]
    for key in ("kind", "status", "algorithm", "model", "started", "ended", "error"):
        if s.get(key):
            lines.append(f"  {key}: {s[key]}")
    lines.append(f"  forget: {config.get('forget')}  retain: {config.get('retain')}  holdout: {config.get('holdout')}")
    if s.get("hparams"):
        lines.append("  hyperparameters: " + ", ".join(f"{k}={v}" for k, v in s["hparams"].items()))
    lines.append("")
    lines.append(before_after_table({**s, "session_id": session.id}))
    return "\n".join(lines)
