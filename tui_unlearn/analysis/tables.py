"""Tables for people: ``fmt`` for cells and one routine (rich's ``Table``) that lays out
every text and Markdown table: sessions lists, before/after reports, comparisons."""

from __future__ import annotations

import io
from typing import Any

from tui_unlearn.metrics.registry import CORE_HEADLINES, sparkline_series
from tui_unlearn.phase_names import Phase
from tui_unlearn.printable import printable
from tui_unlearn.sessions import Session, Status

SPLITS = ("forget", "retain", "holdout")
# The seed's three (accuracy, F1, loss): the metrics the registry marks for the run's sparklines.
TABLE_METRICS = tuple(dict.fromkeys(metric.name for _, metric in sparkline_series()))
# forget quality, model utility, privacy leakage: the headline numbers of every run.
HEADLINE_KEYS = CORE_HEADLINES


def fmt(value: Any, digits: int = 3) -> str:
    """A cell: "-" for missing, ``digits`` decimals for floats (scientific when tiny or huge)."""
    if value is None:
        return "-"
    if isinstance(value, float):
        if value != 0 and (abs(value) < 10**-digits or abs(value) >= 10**6):
            return f"{value:.2e}"
        return f"{value:.{digits}f}"
    return str(value)


def _plain_box():
    from rich import box

    # No borders: a dashed rule under the headers, columns apart by spaces.
    return box.Box("    \n    \n -  \n    \n    \n    \n    \n    \n", ascii=True)


def render_table(headers: list[str], rows: list[list[Any]], *, markdown: bool = False) -> str:
    """Headers and rows (cells through ``fmt``) as aligned plain text or a Markdown table.

    Every line is right-stripped; widths count terminal cells (wide characters too).
    """
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    def cell(value: Any) -> Text:
        text = printable(fmt(value))  # cells quote session files: show control characters, never obey them
        return Text(text.replace("|", "\\|") if markdown else text)

    if markdown:
        table = Table(box=box.MARKDOWN, show_edge=True, pad_edge=True, padding=(0, 1))
    else:
        table = Table(box=_plain_box(), show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))
    for header in headers:
        table.add_column(cell(header), no_wrap=True, overflow="ignore")
    for row in rows:
        table.add_row(*(cell(c) for c in row))
    buf = io.StringIO()
    console = Console(
        file=buf,
        width=100_000,
        color_system=None,
        force_terminal=False,
        emoji=False,
        markup=False,
        highlight=False,
        legacy_windows=False,
    )
    console.print(table)
    # The Markdown box draws blank top and bottom edges.
    return "\n".join(line.rstrip() for line in buf.getvalue().splitlines()).strip("\n")


def text_table(headers: list[str], rows: list[list[Any]]) -> str:
    return render_table(headers, rows)


def markdown_table(headers: list[str], rows: list[list[Any]]) -> str:
    return render_table(headers, rows, markdown=True)


# ---- sessions ----


def session_row(session: Session) -> dict[str, Any]:
    """One flat row per session: identity, status and headline metrics before/after.

    An unreadable session has status "unreadable" and its reason in "problem".
    """
    s = session.summary()
    unreadable = s.get("status") == Status.UNREADABLE
    row: dict[str, Any] = {
        "session_id": session.id,
        "kind": None if unreadable else s.get("kind", "unlearn"),
        "algorithm": s.get("algorithm"),
        "model": s.get("model"),
        "status": s.get("status"),
        "steps": s.get("steps"),
        "seconds": s.get("seconds"),
        "started": s.get("started"),
    }
    if unreadable:
        row["problem"] = s.get("problem")
    metrics = s.get("metrics") or {}
    for phase in (Phase.BEFORE, Phase.AFTER):
        for split in ("forget", "retain"):
            for metric in ("accuracy", "f1"):
                row[f"{split}_{metric}_{phase}"] = (metrics.get(phase) or {}).get(split, {}).get(metric)
    for key in HEADLINE_KEYS:
        if key in s:
            row[key] = s[key]
    return row


def status_text(row: dict[str, Any]) -> str:
    """The status column: "unreadable: <why>" for a session that cannot be read."""
    status = str(row.get("status") or "-")
    return f"{status}: {row['problem']}" if row.get("problem") else status


def sessions_table(rows: list[dict[str, Any]]) -> str:
    headers = ["session", "algorithm", "model", "status", "steps", "forget acc", "retain acc", "seconds"]
    body = [
        [
            r["session_id"],
            r["algorithm"] or r.get("kind"),
            r["model"],
            status_text(r),
            r["steps"],
            f"{fmt(r['forget_accuracy_before'])} -> {fmt(r['forget_accuracy_after'])}",
            f"{fmt(r['retain_accuracy_before'])} -> {fmt(r['retain_accuracy_after'])}",
            r["seconds"],
        ]
        for r in rows
    ]
    return text_table(headers, body)


def before_after_table(summary: dict[str, Any], metrics: tuple[str, ...] = TABLE_METRICS) -> str:
    """Split x metric rows with before, after and the change, for the metrics computed on
    each split."""
    m = summary.get("metrics") or {}
    before, after = m.get(Phase.BEFORE) or {}, m.get(Phase.AFTER) or {}
    rows = []
    for split in SPLITS:
        if split not in before and split not in after:
            continue
        for metric in metrics:
            if metric not in before.get(split, {}) and metric not in after.get(split, {}):
                continue  # not computed on this split (a holdout generates no answers)
            b = before.get(split, {}).get(metric)
            a = after.get(split, {}).get(metric)
            delta = a - b if _is_number(a) and _is_number(b) else None
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
    if any(summary.get(k) is not None for k in HEADLINE_KEYS):
        oracle = (summary.get("oracle") or {}).get("source")
        # its p-values are not comparable with truth-ratio ones: say so where the number is shown
        basis = " (answer NLL)" if summary.get("forget_quality_basis") == "answer_nll" else ""
        lines.append(
            f"forget quality {fmt(summary.get('forget_quality'))}{basis}  "
            f"model utility {fmt(summary.get('model_utility'))}  "
            f"privleak {fmt(summary.get('privleak'), 1)}" + (f"  (oracle {oracle})" if oracle else "  (no oracle)")
        )
    others = [k for k in (summary.get("recipe") or {}).get("headline", []) if k not in HEADLINE_KEYS + ("mia_auc",)]
    if others:
        lines.append("  ".join(f"{k.replace('_', ' ')} {fmt(summary.get(k))}" for k in others))
    for key, why in (summary.get("null_reasons") or {}).items():
        lines.append(f"{key.replace('_', ' ')}: none, {why}")
    general = summary.get("general_ability")
    if isinstance(general, dict) and _is_number(general.get("nll")):
        lines.append(
            f"general ability: {fmt(general.get('original_nll'))} -> {fmt(general.get('nll'))} nats/token "
            f"(the original's answers to {general.get('prompts')} general prompts; worst: {general.get('worst_prompt')!r})"
        )
    guard = summary.get("guard")
    if isinstance(guard, dict) and guard.get("tripped_at") is not None:
        why = "; ".join(guard.get("reasons") or []) or "past its limit"
        lines.append(f"guard at step {guard['tripped_at']}: {why}; kept the weights of step {guard.get('kept_step')}")
    calibration = calibration_line(summary.get("calibration"))
    if calibration:
        lines.append(calibration)
    knowledge = summary.get("knowledge")
    if isinstance(knowledge, dict) and _is_number(knowledge.get("knowledge")):
        lines.append(
            f"world knowledge: states {fmt(knowledge.get('knowledge'))} of {knowledge.get('probe')} probe facts "
            f"(the original {fmt(knowledge.get('knowledge_original'))}); kept {fmt(knowledge.get('knowledge_kept'))} "
            "of the facts the original states"
        )
    damage = summary.get("collateral_damage")
    if isinstance(damage, dict) and damage:
        lines.append("collateral damage: " + ", ".join(f"{k.replace('_', ' ')} {fmt(v)}" for k, v in damage.items()))
    relearn = summary.get("relearn")
    if relearn and relearn.get("steps"):
        lines.append(
            f"relearn {relearn['steps']} steps: forget accuracy {fmt(relearn.get('forget_accuracy_before_relearn'))} -> "
            f"{fmt(relearn.get('forget_accuracy_after_relearn'))}, recovered {fmt(relearn.get('recovered'))}"
        )
    return "\n".join(lines)


def calibration_line(calibration: Any) -> str | None:
    """Which step's weights keep-best ended the run on, and why when it is the start's."""
    if not isinstance(calibration, dict) or not calibration.get("keep_best"):
        return None
    metric, kept = str(calibration["keep_best"]).replace("_", " "), calibration.get("kept_step")
    if kept is None:
        return None
    if calibration.get("floor_missed"):
        return (
            f"calibration: no evaluation kept the utility floor ({fmt(calibration.get('utility_floor'))} x the "
            f"original's); ended on the weights it started from (step {kept})"
        )
    if calibration.get("no_improvement"):
        return (
            f"calibration: did not forget: no evaluation improved on the original's {metric} "
            f"({fmt(calibration.get('best_value'))}); ended on the weights it started from (step {kept})"
        )
    return f"calibration: kept step {kept} of {calibration.get('steps_run')} (best {metric} {fmt(calibration.get('best_value'))})"


def _is_number(value: Any) -> bool:
    """A number that arithmetic with floats can take (not bool, not an int beyond float range)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        float(value)
    except OverflowError:
        return False
    return True


def session_report(session: Session) -> str:
    """``sessions show``: identity, data, hyperparameters, the before/after table, and what
    could not be read."""
    s = session.summary()
    config, config_problem = session.read_config()
    lines = [f"session {session.id} ({session.path})"]
    for key in ("kind", "status", "problem", "algorithm", "model", "started", "ended", "error"):
        if s.get(key):
            lines.append(f"  {key}: {s[key]}")
    if config_problem:
        lines.append(f"  config: {config_problem}")
    else:
        lines.append(
            f"  forget: {config.get('forget')}  retain: {config.get('retain')}  holdout: {config.get('holdout')}"
        )
    if s.get("hparams"):
        lines.append("  hyperparameters: " + ", ".join(f"{k}={v}" for k, v in s["hparams"].items()))
    for name, read in (("events.jsonl", session.read_events()), ("examples.jsonl", session.read_examples())):
        note = read.note(name)
        if note:
            lines.append(f"  note: {note}")
    if s.get("status") != Status.UNREADABLE:
        lines.append("")
        lines.append(before_after_table({**s, "session_id": session.id}))
    return printable("\n".join(lines))


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
                m = s.get("metrics") or {}
                b = (m.get(Phase.BEFORE) or {}).get(split, {}).get(metric)
                a = (m.get(Phase.AFTER) or {}).get(split, {}).get(metric)
                if b is None and a is None:
                    cells.append("-")
                elif b is None and s.get("kind") == "eval":  # an eval session has only "after"
                    cells.append(fmt(a, 2))
                else:
                    cells.append(f"{fmt(b, 2)}{arrow}{fmt(a, 2)}")
            if any(c != "-" for c in cells):
                rows.append([split, metric, *cells])
    return headers, rows
