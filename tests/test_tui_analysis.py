"""The comparison and plotting helpers of ``tui_unlearn.analysis`` (curves, tables, reporting)."""

from __future__ import annotations

import plotext
from tui_fakes import make_sessions

from tui_unlearn import events as ev
from tui_unlearn.analysis.curves import best_value, curves_from_events, plot_curves, series_goal, session_curves, thin
from tui_unlearn.analysis.reporting import session_label
from tui_unlearn.analysis.tables import compare_table
from tui_unlearn.sessions import list_sessions


def test_goals_say_forgetting_is_lower_forget_accuracy_and_higher_forget_loss():
    assert series_goal("forget accuracy") == "min" and series_goal("forget loss") == "max"
    assert series_goal("retain f1") == "max" and series_goal("retain loss") == "min"
    assert series_goal("loss") == "min" and series_goal("forget_nll") == "max"
    assert best_value("forget accuracy", [0.9, 0.2, 0.5]) == 0.2
    assert best_value("retain accuracy", [0.9, 0.2, float("nan")]) == 0.9
    assert best_value("loss", []) is None


def test_curves_come_from_step_and_evaluation_events():
    events = [
        ev.Evaluation(0, "before", {"forget": {"accuracy": 0.9}}, 0.0).to_dict(),
        ev.StepLosses(1, 2, {"loss": 1.5, "forget_nll": 2.0}, 1e-3, 0.1).to_dict(),
        ev.StepLosses(2, 2, {"loss": 1.0, "forget_nll": 2.5}, 1e-3, 0.2).to_dict(),
        ev.Evaluation(2, "after", {"forget": {"accuracy": 0.1}}, 0.3).to_dict(),
        ev.Log("ignored").to_dict(),
    ]
    curves = curves_from_events(events)
    assert curves == {
        "forget accuracy": [(0, 0.9), (2, 0.1)],
        "loss": [(1, 1.5), (2, 1.0)],
        "forget_nll": [(1, 2.0), (2, 2.5)],
    }


def test_compare_table_has_one_column_per_session(tmp_path):
    make_sessions(tmp_path)
    sessions = list_sessions(tmp_path)
    summaries = [s.summary() for s in sessions]
    headers, rows = compare_table(summaries, ["a", "b", "c"])
    assert headers == ["split", "metric", "a", "b", "c"]
    forget_acc = next(r for r in rows if r[:2] == ["forget", "accuracy"])
    assert forget_acc[2] == "0.95 -> -"  # the interrupted session has no after
    assert forget_acc[3].startswith("0.95 -> ") and forget_acc[4] == "0.95 -> 0.10"
    assert len(session_curves(sessions[0]).series["loss"]) == 20


def test_session_labels_are_short():
    assert session_label({"session_id": "20250101-093000-npo-ab12", "algorithm": "npo"}) == "npo 01-01 09:30"
    assert session_label({"session_id": "custom", "algorithm": None}) == "? custom"


def test_long_curves_are_thinned_but_keep_their_ends():
    points = [(i, float(i)) for i in range(1, 10_001)]
    kept = thin(points, 500)
    assert len(kept) <= 501 and kept[0] == points[0] and kept[-1] == points[-1]
    assert thin(points[:10], 500) == points[:10]


def test_plot_curves_draws_with_plotext():
    plotext.clear_figure()
    plotext.plotsize(60, 15)
    legend = plot_curves(plotext, {"grad_diff": [(1, 1.0), (2, 0.5)], "npo": [(1, 0.8), (2, 0.7)]}, title="loss")
    drawn = plotext.build()
    assert "loss" in drawn
    # The legend is the caller's to show outside the data (issue 20 item 2): one marker each.
    assert [s.label for s in legend] == ["grad_diff", "npo"] and legend[0].marker != legend[1].marker
    assert "grad_diff" not in drawn and "npo" not in drawn
