"""A ``Comparison`` as files: one CSV row per session, a JSON document, Markdown tables."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from tui_unlearn.analysis.comparison import Comparison, flat_metrics, headline
from tui_unlearn.analysis.tables import markdown_table
from tui_unlearn.errors import ConfigError, first_line
from tui_unlearn.phase_names import Phase


def records(comparison: Comparison) -> list[dict[str, Any]]:
    """One flat dict per session (the CSV rows and the JSON list)."""
    out = []
    for s, summary, label in zip(comparison.sessions, comparison.summaries, comparison.labels):
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
        for phase in (Phase.BEFORE, Phase.AFTER):
            for key, value in headline(summary, phase).items():
                row[f"{phase}.{key}"] = value
        relearn = summary.get("relearn") or {}
        for key in ("steps", "forget_accuracy_before_relearn", "forget_accuracy_after_relearn", "recovered"):
            row[f"relearn.{key}"] = relearn.get(key)
        row["knowledge_kept"] = summary.get("knowledge_kept")
        row["general_ability.increase"] = (summary.get("general_ability") or {}).get("increase")
        row.update(flat_metrics(summary))
        out.append(row)
    return out


def to_csv(comparison: Comparison) -> str:
    rows = records(comparison)
    columns: list[str] = []
    for r in rows:
        columns += [k for k in r if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: "" if r.get(k) is None else r.get(k) for k in columns})
    return buf.getvalue()


def to_json(comparison: Comparison) -> str:
    data = {
        "sessions": [
            {
                "session_id": s.id,
                "label": label,
                "summary": {k: v for k, v in summary.items() if k != "oracle_reference"},
            }
            for s, summary, label in zip(comparison.sessions, comparison.summaries, comparison.labels)
        ],
        "rows": records(comparison),
        "notes": comparison.notes,
    }
    return json.dumps(data, indent=2, default=str) + "\n"


def to_markdown(comparison: Comparison) -> str:
    parts = [
        "# Session comparison",
        "",
        markdown_table(*comparison.headline_rows()),
        "",
        markdown_table(*comparison.metric_rows()),
    ]
    if comparison.notes:
        parts += ["", *(f"- {note}" for note in comparison.notes)]
    return "\n".join(parts) + "\n"


EXPORTERS = {"csv": to_csv, "json": to_json, "markdown": to_markdown}


def write_export(path: Path, text: str) -> None:
    """Write ``text`` to ``path``; a path that cannot be written is a one-line ConfigError."""
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot write {path}: {exc.strerror or first_line(exc)}; check the folder exists and is writable"
        ) from None
