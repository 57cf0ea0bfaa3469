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


# ---- curves, goals and comparisons (the TUI's run pane and sessions screen use these) ----

EVAL_SERIES = tuple((split, metric) for split in ("forget", "retain") for metric in TABLE_METRICS)

# Which way a series counts as better while unlearning: the forget set should be answered
# worse (lower accuracy and F1, higher loss), the retain set as well as before.
_EVAL_GOALS = {"forget": {"accuracy": "min", "f1": "min", "loss": "max"}}
# Loss terms that a method pushes up (gradient ascent terms) or whose lower value means forgotten.
_TERM_GOALS = {"forget_nll": "max", "forget_kl": "max", "forget_logratio": "min"}


def series_name(split: str, metric: str) -> str:
    return f"{split} {metric}"


def series_goal(name: str) -> str:
    """``"min"`` or ``"max"``: the direction in which series ``name`` is better.

    ``name`` is a loss term ("loss", "retain_nll", ...) or "<split> <metric>" as made by
    ``series_name``. Loss terms are minimised unless listed as ascent terms.
    """
    if " " in name:
        split, metric = name.split(" ", 1)
        default = "max" if metric in ("accuracy", "f1", "precision", "recall", "rouge_l") else "min"
        return _EVAL_GOALS.get(split, {}).get(metric, default)
    return _TERM_GOALS.get(name, "min")


def best_value(name: str, values: list[float]) -> float | None:
    finite = [v for v in values if isinstance(v, (int, float)) and v == v]
    if not finite:
        return None
    return min(finite) if series_goal(name) == "min" else max(finite)


def curves_from_events(events) -> dict[str, list[tuple[int, float]]]:
    """Series name -> [(step, value)] from event dicts (a session's events.jsonl).

    Loss terms come from "step" events; evaluation metrics from "evaluation" events of
    every phase, named by ``series_name`` (before is step 0, after the last step).
    """
    curves: dict[str, list[tuple[int, float]]] = {}
    for event in events:
        kind = event.get("event")
        if kind == "step":
            for term, value in (event.get("losses") or {}).items():
                curves.setdefault(term, []).append((int(event["step"]), float(value)))
        elif kind == "evaluation":
            for split, metrics in (event.get("metrics") or {}).items():
                for metric, value in metrics.items():
                    if isinstance(value, (int, float)):
                        curves.setdefault(series_name(split, metric), []).append((int(event["step"]), float(value)))
    return curves


def session_curves(session: Session) -> dict[str, list[tuple[int, float]]]:
    return curves_from_events(session.events())


def session_label(row: dict[str, Any]) -> str:
    """A short name for a session in legends and column headers: algorithm and start time."""
    sid = str(row.get("session_id") or "")
    if len(sid) >= 15 and sid[:8].isdigit() and sid[8] == "-":  # ids start YYYYMMDD-HHMMSS
        stamp = f"{sid[4:6]}-{sid[6:8]} {sid[9:11]}:{sid[11:13]}"
    else:
        stamp = sid[:11]
    return f"{row.get('algorithm') or '?'} {stamp}".strip()


def compare_table(
    summaries: list[dict[str, Any]],
    labels: list[str],
    metrics: tuple[str, ...] = TABLE_METRICS,
    splits: tuple[str, ...] = SPLITS,
    arrow: str = " -> ",
) -> tuple[list[str], list[list[str]]]:
    """Headers and rows comparing sessions: one row per split x metric, one column per
    session holding "before -> after" (the change is what tells methods apart)."""
    headers = ["split", "metric", *labels]
    rows = []
    for split in splits:
        for metric in metrics:
            cells = []
            for s in summaries:
                m = s.get("metrics", {})
                b = m.get("before", {}).get(split, {}).get(metric)
                a = m.get("after", {}).get(split, {}).get(metric)
                cells.append("-" if b is None and a is None else f"{fmt(b, 2)}{arrow}{fmt(a, 2)}")
            if any(c != "-" for c in cells):
                rows.append([split, metric, *cells])
    return headers, rows


def thin(points: list[tuple[int, float]], max_points: int) -> list[tuple[int, float]]:
    """Every k-th point so that at most about ``max_points`` remain; the last point is kept."""
    if max_points <= 0 or len(points) <= max_points:
        return points
    stride = -(-len(points) // max_points)
    kept = points[::stride]
    return kept if kept[-1] == points[-1] else [*kept, points[-1]]


def plot_curves(
    plt,
    curves: dict[str, list[tuple[int, float]]],
    *,
    title: str = "",
    xlabel: str = "step",
    ylabel: str = "",
    max_points: int = 600,
) -> None:
    """Draw ``curves`` (label -> [(step, value)]) into a plotext-like object.

    ``plt`` is the ``plotext`` module (then call ``plt.show()``) or a textual-plotext
    widget's ``plt``; the figure's data is replaced, its size and theme are kept. Long
    curves are thinned to about ``max_points`` points (a terminal has fewer columns), so
    drawing stays fast however long the run.
    """
    plt.clear_data()
    for label, points in curves.items():
        if not points:
            continue
        points = thin(points, max_points)
        xs = [p[0] for p in points]
        ys = [p[1] for p in points]
        plt.plot(xs, ys, label=label, marker="braille")
    plt.title(title)
    plt.xlabel(xlabel)
    if ylabel:
        plt.ylabel(ylabel)
