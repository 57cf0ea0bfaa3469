"""Reading sessions back: rows, tables and comparisons shared by the CLI and the TUI."""

from __future__ import annotations

from dataclasses import dataclass, field
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
    for key in ("forget_quality", "model_utility", "privleak"):
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
            r["session_id"], r["algorithm"] or r.get("kind"), r["model"], r["status"], r["steps"],
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
    if summary.get("kind") == "eval":
        head = f"eval of {summary.get('model')}: {summary.get('status')}, {fmt(summary.get('seconds'), 1)} s"
        table = text_table(["split", "metric", "value"], [[r[0], r[1], r[3]] for r in rows])
    else:
        head = (
            f"{summary.get('algorithm')} on {summary.get('model')}: {summary.get('status')}, "
            f"{summary.get('steps')} steps, {fmt(summary.get('seconds'), 1)} s"
        )
        table = text_table(["split", "metric", "before", "after", "change"], rows)
    lines = [head, table]
    if any(summary.get(k) is not None for k in ("forget_quality", "model_utility", "privleak")):
        oracle = (summary.get("oracle") or {}).get("source")
        lines.append(
            f"forget quality {fmt(summary.get('forget_quality'))}  model utility {fmt(summary.get('model_utility'))}  "
            f"privleak {fmt(summary.get('privleak'), 1)}" + (f"  (oracle {oracle})" if oracle else "  (no oracle)")
        )
    others = [k for k in (summary.get("recipe") or {}).get("headline", []) if k not in HEADLINE_KEYS + ("mia_auc",)]
    if others:
        lines.append("  ".join(f"{k.replace('_', ' ')} {fmt(summary.get(k))}" for k in others))
    for key, why in (summary.get("null_reasons") or {}).items():
        lines.append(f"{key.replace('_', ' ')}: none, {why}")
    relearn = summary.get("relearn")
    if relearn and relearn.get("steps"):
        lines.append(
            f"relearn {relearn['steps']} steps: forget accuracy {fmt(relearn.get('forget_accuracy_before_relearn'))} -> "
            f"{fmt(relearn.get('forget_accuracy_after_relearn'))}, recovered {fmt(relearn.get('recovered'))}"
        )
    return "\n".join(lines)


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
    if row.get("kind") == "eval":
        return f"eval {row.get('model') or '?'}"
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
                if b is None and a is None:
                    cells.append("-")
                elif b is None and s.get("kind") == "eval":  # an eval session has only "after"
                    cells.append(fmt(a, 2))
                else:
                    cells.append(f"{fmt(b, 2)}{arrow}{fmt(a, 2)}")
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


# ---- the field's headline metrics and the `analyze` comparison (CLI and TUI) ----

HEADLINE_KEYS = ("forget_quality", "model_utility", "privleak")
# Split x metric rows of the comparison (the field's metrics next to the seed's).
COMPARE_METRICS = ("accuracy", "f1", "rouge_l", "probability", "truth_ratio", "exact_memorization", "mia_auc_min_k", "loss")


def headline(summary: dict[str, Any], phase: str = "after") -> dict[str, Any]:
    """forget quality, model utility, privacy leakage and forget MIA AUC of one phase.

    An eval session (kind "eval") has only the "after" phase.
    """
    fm = (summary.get("field_metrics") or {}).get(phase) or {}
    out = {key: fm.get(key, summary.get(key) if phase == "after" else None) for key in HEADLINE_KEYS}
    out["mia_auc"] = fm.get("mia_auc")
    return out


def flat_metrics(summary: dict[str, Any]) -> dict[str, Any]:
    """``phase.split.metric`` -> value for every aggregate of the summary."""
    out: dict[str, Any] = {}
    for phase, splits in (summary.get("metrics") or {}).items():
        for split, metrics in (splits or {}).items():
            for metric, value in (metrics or {}).items():
                out[f"{phase}.{split}.{metric}"] = value
    return out


@dataclass
class Comparison:
    """Several sessions side by side: what ``tui-unlearn analyze`` prints and exports."""

    sessions: list[Session]
    summaries: list[dict[str, Any]]
    labels: list[str]
    curves: list[dict[str, list[tuple[int, float]]]] = field(default_factory=list)

    @classmethod
    def of(cls, sessions: list[Session]) -> "Comparison":
        summaries = [s.summary() for s in sessions]
        labels = [session_label({**summ, "session_id": s.id}) for s, summ in zip(sessions, summaries)]
        # Two sessions started in the same minute with one method: tell them apart.
        seen: dict[str, int] = {}
        for i, label in enumerate(labels):
            seen[label] = seen.get(label, 0) + 1
            if seen[label] > 1:
                labels[i] = f"{label} #{seen[label]}"
        return cls(sessions, summaries, labels, [session_curves(s) for s in sessions])

    # -- tables --
    def headline_rows(self) -> tuple[list[str], list[list[Any]]]:
        headers = ["session", "kind", "model", "status", "steps", "forget quality", "model utility", "privleak", "forget MIA AUC", "relearn recovered"]
        rows = []
        for s, summary, label in zip(self.sessions, self.summaries, self.labels):
            h = headline(summary)
            relearn = summary.get("relearn") or {}
            rows.append([
                label, summary.get("kind", "unlearn"), summary.get("model"), summary.get("status"), summary.get("steps"),
                h["forget_quality"], h["model_utility"], h["privleak"], h["mia_auc"], relearn.get("recovered"),
            ])
        return headers, rows

    def metric_rows(self) -> tuple[list[str], list[list[str]]]:
        return compare_table(self.summaries, self.labels, metrics=COMPARE_METRICS)

    def text(self) -> str:
        return "\n\n".join([text_table(*self.headline_rows()), text_table(*self.metric_rows())])

    # -- exports --
    def records(self) -> list[dict[str, Any]]:
        """One flat dict per session (the CSV rows and the JSON list)."""
        out = []
        for s, summary, label in zip(self.sessions, self.summaries, self.labels):
            row: dict[str, Any] = {
                "session_id": s.id,
                "label": label,
                "kind": summary.get("kind", "unlearn"),
                "algorithm": summary.get("algorithm"),
                "model": summary.get("model"),
                "status": summary.get("status"),
                "steps": summary.get("steps"),
                "seconds": summary.get("seconds"),
            }
            for phase in ("before", "after"):
                for key, value in headline(summary, phase).items():
                    row[f"{phase}.{key}"] = value
            relearn = summary.get("relearn") or {}
            for key in ("steps", "forget_accuracy_before_relearn", "forget_accuracy_after_relearn", "recovered"):
                row[f"relearn.{key}"] = relearn.get(key)
            row.update(flat_metrics(summary))
            out.append(row)
        return out

    def to_csv(self) -> str:
        import csv
        import io

        records = self.records()
        columns: list[str] = []
        for r in records:
            columns += [k for k in r if k not in columns]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for r in records:
            writer.writerow({k: "" if r.get(k) is None else r.get(k) for k in columns})
        return buf.getvalue()

    def to_json(self) -> str:
        import json

        data = {
            "sessions": [
                {
                    "session_id": s.id,
                    "label": label,
                    "summary": {k: v for k, v in summary.items() if k != "oracle_reference"},
                }
                for s, summary, label in zip(self.sessions, self.summaries, self.labels)
            ],
            "rows": self.records(),
        }
        return json.dumps(data, indent=2, default=str) + "\n"

    def to_markdown(self) -> str:
        parts = ["# Session comparison", "", markdown_table(*self.headline_rows()), "", markdown_table(*self.metric_rows())]
        return "\n".join(parts) + "\n"

    # -- charts --
    def charts(self, width: int = 100, height: int = 18) -> str:
        """Plotext charts as text: headline bars, curves over steps, quality vs utility."""
        import plotext as plt

        out = []
        metrics = [("forget quality", "forget_quality"), ("model utility", "model_utility"), ("forget MIA AUC", "mia_auc")]
        heads = [headline(s) for s in self.summaries]
        plt.clear_figure()
        plt.plotsize(width, height)
        plt.theme("clear")
        plt.multiple_bar(
            [name for name, _ in metrics],
            [[_num(h[key]) for _, key in metrics] for h in heads],
            labels=self.labels,
        )
        plt.title("after: forget quality, model utility, forget MIA AUC")
        out.append(plt.build())

        curves = {}
        for label, c in zip(self.labels, self.curves):
            for series in ("forget accuracy", "retain accuracy"):
                if len(c.get(series, [])) > 1:
                    curves[f"{label}: {series}"] = c[series]
        if curves:
            plt.clear_figure()
            plt.plotsize(width, height)
            plt.theme("clear")
            plot_curves(plt, curves, title="accuracy over steps", ylabel="accuracy")
            out.append(plt.build())

        points = [(label, h["model_utility"], h["forget_quality"]) for label, h in zip(self.labels, heads)]
        points = [p for p in points if p[1] is not None and p[2] is not None]
        if points:
            plt.clear_figure()
            plt.plotsize(width, height)
            plt.theme("clear")
            for label, mu, fq in points:
                plt.scatter([mu], [fq], label=label, marker="hd")
            plt.title("forget quality against model utility")
            plt.xlabel("model utility")
            plt.ylabel("forget quality")
            out.append(plt.build())
        return "\n".join(out)


def _num(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and value == value else 0.0


def markdown_table(headers: list[str], rows: list[list[Any]]) -> str:
    esc = lambda v: fmt(v).replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(esc(h) for h in headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)
