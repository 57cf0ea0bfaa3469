"""Several sessions side by side: what ``tui-unlearn analyze`` prints (exports in
``exports``, charts in ``curves.comparison_charts``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tui_unlearn.analysis.curves import Curves, session_curves
from tui_unlearn.analysis.reporting import session_label, unique_labels
from tui_unlearn.analysis.tables import HEADLINE_KEYS, compare_table, text_table
from tui_unlearn.metrics.registry import compare_metrics
from tui_unlearn.phase_names import Phase
from tui_unlearn.sessions import Session, Status

# Split x metric rows of the comparison: the metrics the registry marks for it, in its order.
COMPARE_METRICS = tuple(m.name for m in compare_metrics())


def headline(summary: dict[str, Any], phase: Phase = Phase.AFTER) -> dict[str, Any]:
    """forget quality, model utility, privacy leakage and forget MIA AUC of one phase.

    An eval session (kind "eval") has only the "after" phase.
    """
    fm = (summary.get("field_metrics") or {}).get(phase) or {}
    out = {key: fm.get(key, summary.get(key) if phase == Phase.AFTER else None) for key in HEADLINE_KEYS}
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
    """Readable sessions side by side, with a note for each thing left out."""

    sessions: list[Session]
    summaries: list[dict[str, Any]]
    labels: list[str]
    curves: list[Curves] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # one line each: a session or event lines skipped

    @classmethod
    def of(cls, sessions: list[Session]) -> Comparison:
        """Read ``sessions``; unreadable ones are left out with a note."""
        kept, summaries, notes = [], [], []
        for session in sessions:
            summary = session.summary()
            if summary.get("status") == Status.UNREADABLE:
                notes.append(f"skipping {session.id}: unreadable: {summary.get('problem')}")
                continue
            kept.append(session)
            summaries.append(summary)
        from tui_unlearn.sweeps.store import trial_points

        points = trial_points(kept)  # a sweep's trials are named by their swept values
        labels = unique_labels(
            [
                session_label({**summ, "session_id": s.id, "sweep_point": point})
                for s, summ, point in zip(kept, summaries, points)
            ]
        )
        curves = [session_curves(s) for s in kept]
        notes += [f"{s.id}: {c.note()}" for s, c in zip(kept, curves) if c.note()]
        return cls(kept, summaries, labels, curves, notes)

    def headlines(self) -> list[dict[str, Any]]:
        return [headline(s) for s in self.summaries]

    def headline_rows(self) -> tuple[list[str], list[list[Any]]]:
        headers = [
            "session",
            "kind",
            "model",
            "status",
            "steps",
            "forget quality",
            "model utility",
            "privleak",
            "forget MIA AUC",
            "relearn recovered",
            "knowledge kept",
            "general NLL +",
        ]
        rows = []
        for summary, label, h in zip(self.summaries, self.labels, self.headlines()):
            relearn = summary.get("relearn") or {}
            rows.append(
                [
                    label,
                    summary.get("kind", "unlearn"),
                    summary.get("model"),
                    summary.get("status"),
                    summary.get("steps"),
                    h["forget_quality"],
                    h["model_utility"],
                    h["privleak"],
                    h["mia_auc"],
                    relearn.get("recovered"),
                    # What no method should take: world knowledge and general ability (metrics.knowledge, .general).
                    summary.get("knowledge_kept"),
                    (summary.get("general_ability") or {}).get("increase"),
                ]
            )
        return headers, rows

    def metric_rows(self) -> tuple[list[str], list[list[str]]]:
        return compare_table(self.summaries, self.labels, metrics=COMPARE_METRICS)

    def text(self) -> str:
        return "\n\n".join([text_table(*self.headline_rows()), text_table(*self.metric_rows())])
