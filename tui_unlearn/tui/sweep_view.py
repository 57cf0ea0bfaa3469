"""A sweep group in the sessions screen's words: its header row's cells, how a trial row is
marked, and the Pareto front panel (pure functions over ``sweep_reader.SweepGroup``)."""

from __future__ import annotations

from typing import Any

from rich.text import Text

from tui_unlearn.analysis.reporting import data_label
from tui_unlearn.analysis.tables import fmt
from tui_unlearn.tui.sweep_reader import SweepGroup

FRONT_MARK = "★"
GOAL_WORDS = {"max": "↑", "min": "↓"}


def point_text(point: dict[str, Any]) -> str:
    """The swept values of a trial: ``lr=1e-5 beta=0.1`` (as ``sweep`` and ``analyze`` write them)."""
    from tui_unlearn.sweeps.space import point_label

    return point_label(point)


def table_order(groups: dict[str, SweepGroup], rows: dict[str, Any], folded: set[str]) -> list[str]:
    """The sessions table's row keys: each sweep's header and (unless folded) its trials,
    then the sessions outside any sweep, newest first."""
    keys: list[str] = []
    grouped: set[str] = set()
    for key, group in groups.items():
        keys.append(key)
        trials = [k for k in group.trial_keys if k in rows]
        grouped.update(trials)
        if key not in folded:
            keys += trials
    return keys + [sid for sid in rows if sid not in grouped]


def header_cells(group: SweepGroup, expanded: bool) -> list[Any]:
    """The group's row, in the sessions table's columns (select, started, algorithm, forget,
    model, status, forget acc, retain acc, steps)."""
    created = group.created or ""
    when = created[5:16].replace("T", " ") if len(created) >= 16 else created
    model = str(group.base.get("model") or "-").rstrip("/").rsplit("/", 1)[-1]
    status = Text("sweep ?", style="bold red") if group.problem else Text("sweep", style="bold magenta")
    trials = len(group.trial_keys)
    return [
        "▾" if expanded else "▸",
        when or "-",
        group.method or "-",
        data_label(group.base.get("forget")),
        model,
        status,
        f"{trials} trial{'' if trials == 1 else 's'}",
        Text(f"front {len(group.front)}", style="bold"),
        group.mode or "-",
    ]


def trial_status(status: Text, on_front: bool) -> Text:
    """A trial's status cell, starred when the trial is on the Pareto front."""
    if not on_front:
        return status
    return Text.assemble((FRONT_MARK + " ", "bold yellow"), status)


def objective_words(group: SweepGroup) -> str:
    return ", ".join(f"{name.replace('_', ' ')} {GOAL_WORDS.get(goal, goal)}" for name, goal in group.objectives)


def front_text(group: SweepGroup) -> Text:
    """The panel under the table for a highlighted sweep (its name is the panel's title):
    what it is, and each trial on its front with its swept values and objectives (the best
    one named)."""
    if group.problem:
        return Text(f"{group.name}: {group.problem}", style="red")
    space = ", ".join(group.space) or "-"
    lines = [
        Text(
            f"{group.method or '-'} {group.mode or ''} over {space} · {len(group.trial_keys)} trials, "
            f"{group.complete} complete · front of {len(group.front)} by {objective_words(group)}"
        )
    ]
    if not group.front:
        lines.append(Text("no finished trial yet: run the same sweep command again to resume it", style="dim"))
    for trial in group.front:
        numbers = "  ".join(
            f"{name.replace('_', ' ')} {fmt(trial.objectives.get(name))}" for name, _ in group.objectives
        )
        lines.append(
            Text.assemble(
                (f"{FRONT_MARK} ", "bold yellow"),
                (trial.session_id, "bold" if trial.best else ""),
                f"  {point_text(trial.point)}  ",
                numbers,
                (" (best)", "bold green") if trial.best else "",
            )
        )
    return Text("\n").join(lines)
