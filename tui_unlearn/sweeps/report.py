"""A sweep's results: the Pareto front of forgetting against utility, the best trial, a table,
a plotext scatter and the ``--json`` object. Shared by ``sweep``, ``analyze`` and the TUI."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui_unlearn.sweeps.store import Trial, latest_attempts, read_meta, read_trials

# (name, goal): forget quality when there is an oracle, else holdout parity; against model
# utility, or retain F1 where the retain set has no perturbed answers to measure it.
WITH_ORACLE = (("forget_quality", "max"), ("model_utility", "max"))
WITHOUT_ORACLE = (("holdout_parity", "min"), ("model_utility", "max"))
RATIO_OF = {"model_utility": "utility_ratio", "retain_f1": "retain_f1_ratio"}


def utility_name(trials: list[Trial]) -> str:
    return "model_utility" if any(t.objectives.get("model_utility") is not None for t in trials) else "retain_f1"


def objectives_for(trials: list[Trial]) -> tuple[tuple[str, str], ...]:
    """Forget quality when the trials measured it, else holdout parity; model utility when
    measured, else retain F1."""
    forget = (
        WITH_ORACLE[0] if any(t.objectives.get("forget_quality") is not None for t in trials) else WITHOUT_ORACLE[0]
    )
    return (forget, (utility_name(trials), "max"))


def _oriented(trial: Trial, objectives) -> list[float] | None:
    values = []
    for name, goal in objectives:
        v = trial.objectives.get(name)
        if v is None:
            return None
        values.append(v if goal == "max" else -v)
    return values


def pareto_front(trials: list[Trial], objectives) -> list[Trial]:
    """The complete trials no other complete trial dominates (at least as good on every
    objective and better on one), in the order given."""
    scored = [(t, v) for t in trials if t.complete and (v := _oriented(t, objectives)) is not None]
    front = []
    for t, v in scored:
        dominated = any(all(a >= b for a, b in zip(w, v)) and any(a > b for a, b in zip(w, v)) for _, w in scored)
        if not dominated:
            front.append(t)
    return front


def best_trial(front: list[Trial], objectives, utility_floor: float) -> Trial | None:
    """The front's best forgetting among trials keeping ``utility_ratio >= utility_floor``;
    when none does, the one with the highest utility (the nearest to the floor)."""
    if not front:
        return None
    forget_name, forget_goal = objectives[0]
    utility = objectives[1][0]
    ratio = RATIO_OF.get(utility, utility)
    sign = 1.0 if forget_goal == "max" else -1.0
    kept = [t for t in front if (t.objectives.get(ratio) or 0.0) >= utility_floor]
    if kept:
        return max(kept, key=lambda t: sign * (t.objectives[forget_name] or 0.0))  # set on the front
    return max(front, key=lambda t: (t.objectives.get(ratio) or 0.0, t.objectives.get(utility) or 0.0))


@dataclass
class SweepReport:
    folder: Path
    meta: dict[str, Any]
    trials: list[Trial]
    objectives: tuple[tuple[str, str], ...]
    front: list[Trial]
    best: Trial | None
    utility_floor: float
    best_config: Path | None = None
    superseded: int = 0  # attempts that did not finish and were run again (their sessions stay)
    early_failures: list[str] = field(default_factory=list)  # this run's trials that left no session: why
    study: str | None = None  # the Optuna study's name when the sweep is shared through a storage

    @classmethod
    def of(cls, folder: Path, utility_floor: float = 0.95) -> SweepReport:
        meta = read_meta(folder)
        ident = meta.get("identity", {})
        names = list(ident.get("space", {}))
        trials, superseded = latest_attempts(read_trials(folder, names, ident.get("algorithm")))
        objectives = objectives_for(trials)
        front = pareto_front(trials, objectives)
        best_config = folder / "best-config.json"
        return cls(
            folder,
            meta,
            trials,
            objectives,
            front,
            best_trial(front, objectives, utility_floor),
            utility_floor,
            best_config if best_config.is_file() else None,
            superseded=superseded,
        )

    @classmethod
    def of_study(cls, folder: Path, study: Any, utility_floor: float = 0.95) -> SweepReport:
        """The report of a shared study: every worker's trials (``sweeps.study``), whichever
        folder their sessions are in; ``folder`` is this worker's."""
        from tui_unlearn.sweeps.study import study_trials

        meta = read_meta(folder)
        trials, superseded = latest_attempts(study_trials(study))
        objectives = objectives_for(trials)
        front = pareto_front(trials, objectives)
        best_config = folder / "best-config.json"
        return cls(
            folder,
            meta,
            trials,
            objectives,
            front,
            best_trial(front, objectives, utility_floor),
            utility_floor,
            best_config if best_config.is_file() else None,
            superseded=superseded,
            study=study.study_name,
        )

    @property
    def names(self) -> list[str]:
        return list(self.meta.get("identity", {}).get("space", {}))

    def trial_object(self, t: Trial) -> dict[str, Any]:
        out: dict[str, Any] = {
            "session_id": t.session.id,
            "status": t.status,
            "hparams": t.point,
            "objectives": t.objectives,
        }
        if self.study is not None:  # where each worker left its session
            out.update(session_path=str(t.session.path), host=getattr(t.session, "host", None))
        return out

    def to_json(self) -> dict[str, Any]:
        ident = self.meta.get("identity", {})
        return {
            "sweep_id": self.folder.name,
            "sweep_dir": str(self.folder),
            "algorithm": ident.get("algorithm"),
            "mode": ident.get("mode"),
            "space": ident.get("space"),
            "objectives": [{"name": n, "goal": g} for n, g in self.objectives],
            "utility_floor": self.utility_floor,
            "trials": [self.trial_object(t) for t in self.trials],
            "pareto": [self.trial_object(t) for t in self.front],
            "best": self.trial_object(self.best) if self.best else None,
            "best_config": str(self.best_config) if self.best_config else None,
            "superseded_attempts": self.superseded,
            "failed_before_session": list(self.early_failures),
            "study": self.study,
        }

    def table(self) -> str:
        from tui_unlearn.analysis.tables import text_table

        utility = self.objectives[1][0]
        headers = [
            "",
            "session",
            "status",
            *self.names,
            "forget quality",
            "holdout parity",
            utility.replace("_", " "),
            "utility ratio",
            "forget acc",
            "relearn",
        ]
        rows = []
        for t in self.trials:
            o = t.objectives
            mark = self.front_mark(t)
            rows.append(
                [
                    mark,
                    t.session.id,
                    t.status,
                    *(_show(t.point.get(n)) for n in self.names),
                    o["forget_quality"],
                    o["holdout_parity"],
                    o[utility],
                    o[RATIO_OF[utility]],
                    o["forget_accuracy"],
                    o["relearn_recovered"],
                ]
            )
        front = ", ".join(t.session.id for t in self.front) or "none yet"
        where = f"study {self.study} (every worker's trials)" if self.study else f"sweep {self.folder.name}"
        head = (
            f"{where}: {len(self.trials)} trials{self._superseded_note()}, Pareto front ({self.objectives[0][0]} vs "
            f"{self.objectives[1][0]}; * on the front, numbered as in the chart) of {len(self.front)}: {front}"
        )
        return head + "\n" + text_table(headers, rows)

    def _superseded_note(self) -> str:
        if not self.superseded:
            return ""
        return (
            f" ({self.superseded} earlier attempt{'s' if self.superseded > 1 else ''} that did not finish not counted)"
        )

    def front_mark(self, trial: Trial) -> str:
        """The table's mark of a trial: ``* 2`` on the front (2: its point in the chart),
        ``* 2 best`` for the best (always on the front), else nothing."""
        number = next((i for i, t in enumerate(self.front) if t is trial), None)
        if number is None:
            return ""
        from tui_unlearn.analysis.curves import point_marker

        return f"* {point_marker(number)}" + (" best" if trial is self.best else "")

    def scatter(self, width: int = 100, height: int = 20, *, colour: bool = False) -> str:
        """Forget quality (log10) or holdout parity against model utility: each front trial
        its own numbered point (the table's number), the others ``x``; the legend below the
        data, never over it. ``colour``: keep the terminal colour codes (a colour terminal)."""
        import plotext as plt

        from tui_unlearn.analysis.curves import COLOURS, Style, legend_lines, pad_limits, point_marker, uncoloured
        from tui_unlearn.printable import printable
        from tui_unlearn.sweeps.space import point_label

        name, utility = self.objectives[0][0], self.objectives[1][0]

        def y(t: Trial) -> float:
            v = t.objectives[name] or 0.0  # plotted trials have it
            return math.log10(max(v, 1e-300)) if name == "forget_quality" else v

        done = [
            t
            for t in self.trials
            if t.complete and t.objectives.get(name) is not None and t.objectives.get(utility) is not None
        ]
        if not done:
            return ""
        plt.clear_figure()
        plt.plotsize(width, height)
        plt.theme("clear")
        legend: list[Style] = []
        rest = [t for t in done if not any(t is f for f in self.front)]
        if rest:  # first: a front point drawn over one of them stays readable
            legend.append(Style("x", "gray", "not on the front"))
            plt.scatter([t.objectives[utility] for t in rest], [y(t) for t in rest], marker="x", color="gray")
        for i, t in enumerate(self.front):
            label = printable(point_label(t.point) or t.session.id) + (" (best)" if t is self.best else "")
            style = Style(point_marker(i), COLOURS[i % len(COLOURS)], label)
            legend.insert(i, style)
            plt.scatter([t.objectives[utility]], [y(t)], marker=style.marker, color=style.colour)
        pad_limits(plt, [t.objectives[utility] or 0.0 for t in done], [y(t) for t in done])
        label = utility.replace("_", " ")
        what = "log10 forget quality" if name == "forget_quality" else name.replace("_", " ")
        plt.title(f"{what} against {label}: the Pareto front numbered")
        plt.xlabel(label)
        plt.ylabel(what)
        chart = plt.build()
        chart = chart if colour else uncoloured(chart)
        return "\n".join([chart.rstrip("\n"), *legend_lines(legend, width, colour=colour)])


def _show(value: Any) -> Any:
    from tui_unlearn.sweeps.space import short_value

    return short_value(value) if isinstance(value, float) else value  # as the chart's legend writes it
