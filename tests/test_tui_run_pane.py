"""The run tab and the panes around it (issue 11 §2 and §3), with Pilot and a fake engine."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable, Input, Select
from tui_fakes import FakeEngine, metrics_at, settle, wait_until, write_session

from tui_unlearn.analysis.tables import before_after_table
from tui_unlearn.config import RunConfig
from tui_unlearn.tui import run_status
from tui_unlearn.tui.app import create_app
from tui_unlearn.tui.widgets import run_pane as run_pane_module
from tui_unlearn.tui.widgets.algorithm_pane import ParamField
from tui_unlearn.tui.widgets.loss_plot import LossPlot, RunLog, scaled
from tui_unlearn.tui.widgets.series import BARS, spark_text

pytestmark = pytest.mark.anyio
SIZE = (100, 32)
SMALL = (80, 24)


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def clock(monkeypatch):
    """The run pane's wall clock, moved by the test."""
    now = [1_000_000.0]
    monkeypatch.setattr(run_pane_module, "wall_clock", lambda: now[0])
    return now


def text_of(widget) -> str:
    return str(widget.render())


# ---- §2: what was broken ----


@pytest.mark.slow  # one of the slowest default tests (3-10 s): .ci/run's second pass
async def test_go_to_a_tab_from_the_palette_goes_there_even_from_inside_a_pane(tmp_path):
    app = create_app(sessions_dir=tmp_path, engine=FakeEngine())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        bench = app.workbench
        bench.show_tab("data")
        await pilot.pause()
        bench.data_pane.editor("forget").query_one("#forget-kind", Select).focus()
        await pilot.pause()
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Go to Run")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause(0.3)
        tabs = bench.query_one("#tabs")
        assert tabs.active == "tab-run"
        await pilot.press("tab")  # focus moving on must not bring the data tab back
        await pilot.pause()
        assert tabs.active == "tab-run"


@pytest.mark.slow  # one of the slowest default tests (3-10 s): .ci/run's second pass
async def test_ctrl_r_from_inside_a_pane_shows_the_run_tab_and_keeps_it(tmp_path):
    engine = FakeEngine(steps=30, pause_at=3)
    app = create_app(sessions_dir=tmp_path, engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        bench = app.workbench
        holdout = bench.data_pane.editor("holdout")
        holdout.set_path(str(tmp_path / "holdout.jsonl"))
        (tmp_path / "holdout.jsonl").write_text('{"question": "q?", "answer": "a."}\n')
        await settle(pilot)
        bench.show_tab("data")
        bench.data_pane.show("holdout")
        await pilot.pause()
        holdout.query_one("#holdout-path", Input).focus()
        await pilot.pause()
        await pilot.press("ctrl+r")
        await wait_until(pilot, engine.paused.is_set, what="the run to start")
        await pilot.pause(0.3)
        assert bench.query_one("#tabs").active == "tab-run"
        await pilot.press("ctrl+x")
        await settle(pilot, include_run=True)
        assert bench.query_one("#tabs").active == "tab-run"


@pytest.mark.slow  # one of the slowest default tests (3-10 s): .ci/run's second pass
async def test_the_run_log_wraps_at_its_own_width_and_again_on_resize(tmp_path):
    app = create_app(sessions_dir=tmp_path, engine=FakeEngine(steps=10))
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+r")
        await settle(pilot, include_run=True)
        log = app.workbench.query_one(RunLog)
        await pilot.pause()

        def check() -> int:
            width = log.scrollable_content_region.width
            widest = max(strip.cell_length for strip in log.lines)
            assert widest <= width, (widest, width)  # nothing hidden behind a horizontal scrollbar
            shown = " ".join("".join(seg.text for seg in strip).strip() for strip in log.lines)
            assert "retain acc 0.87 f1 0.90 loss 0.55" in " ".join(shown.split())
            return width

        small = check()
        await pilot.resize_terminal(110, 32)
        await pilot.pause(0.3)
        wider = check()
        assert wider >= small + 20  # wrapped again to the new width, not kept at the old one
        await pilot.resize_terminal(120, 40)  # side by side from 120 columns: the log narrows
        await pilot.pause(0.3)
        assert check() < wider


async def test_malformed_pasted_json_shows_line_and_column_in_place(tmp_path):
    app = create_app(sessions_dir=tmp_path, engine=FakeEngine())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.workbench.show_tab("data")
        editor = app.workbench.data_pane.editor("forget")
        editor.set_text('[{"question": "Who?", "answer": "Ada."},\n {"question": "Where?" "answer": "Here."}]')
        await settle(pilot)
        assert editor.error is not None
        assert "line 2, column" in editor.error and "the pasted text" in editor.error
        assert "standard input" not in editor.error
        status = editor.query_one(".source-status")
        assert status.has_class("-error") and "line 2, column" in text_of(status)
        editor.set_text("Q: Who is Ada?\nA: A poet.")
        await settle(pilot)
        assert "format: pasted (Q:/A: pairs)" in text_of(editor.query_one(".source-status"))


@pytest.mark.slow  # one of the slowest default tests (3-10 s): .ci/run's second pass
async def test_the_status_line_names_the_phase_with_a_moving_clock(tmp_path, clock):
    engine = FakeEngine(steps=40, hold_in="before", pause_at=12)
    app = create_app(sessions_dir=tmp_path, engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+r")
        await wait_until(pilot, engine.held.is_set, what="the before evaluation")
        pane = app.workbench.run_pane
        phase = pane.query_one("#run-phase")
        await wait_until(pilot, lambda: "evaluating before unlearning · 0s" in text_of(phase), what="the phase")
        clock[0] += 75
        await wait_until(
            pilot,
            lambda: "evaluating before unlearning · 1m15s" in text_of(phase),
            timeout=5,
            what="the clock to move without any event",
        )
        engine.unhold.set()
        await wait_until(pilot, lambda: pane.step == 11, what="step 11")
        assert "step 11/40 · 1m15s · ETA" in text_of(phase)
        await pilot.press("ctrl+x")
        await settle(pilot, include_run=True)
        shown = text_of(phase)
        assert pane.status == "interrupted"
        assert "ETA" not in shown and shown.strip().startswith("interrupted at step 11/40")
        seconds = shown.rsplit("· ", 1)[1].strip()
        assert pane.log_lines[-1].endswith(f"in {seconds}")  # the same time as the log says
        clock[0] += 600
        await pilot.pause(1.2)
        assert text_of(phase) == shown  # ended: the clock stands still


def test_the_phase_follows_the_events():
    p = run_status.RunProgress(phase="loading", status="running", started_at=100.0)
    assert run_status.phase_text(p, 103) == "loading the data and the model · 3s"
    p.on_started(40, {"eval_every": 10, "relearn_steps": 5})
    assert run_status.phase_text(p, 110).startswith("evaluating before unlearning")
    p.on_evaluation("before")
    assert run_status.phase_text(p, 111).startswith("preparing to train")
    p.on_steps(10, 40, 5.0)
    assert run_status.phase_text(p, 120) == "evaluating at step 10/40 · 20s"
    p.on_evaluation("during")
    p.on_steps(12, 40, 6.0)
    assert run_status.phase_text(p, 121) == "step 12/40 · 21s · ETA 14s"
    p.on_steps(40, 40, 20.0)
    assert run_status.phase_text(p, 130).startswith("evaluating after unlearning")
    p.on_evaluation("after")
    assert run_status.phase_text(p, 131).startswith("relearning check")
    p.on_log("saving the unlearned model")
    assert run_status.phase_text(p, 132).startswith("saving the session")
    p.end("finished", 33.0, 133)
    assert run_status.phase_text(p, 999) == "finished · 40/40 steps in 33s"


# ---- §3: results where the user looks ----


async def test_a_finished_run_shows_the_batch_results_table_and_its_scale(tmp_path):
    engine = FakeEngine(steps=20)
    app = create_app(sessions_dir=tmp_path, engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+r")
        await settle(pilot, include_run=True)
        pane = app.workbench.run_pane
        results = pane.query_one("#run-results")
        assert results.display
        shown = text_of(results)
        assert shown.strip() == before_after_table(pane.summary).strip()  # the batch face's words
        assert "forget quality 0.012  model utility 0.842  privleak -12.5" in shown
        scale = text_of(pane.query_one("#run-scale"))
        assert "grad_diff on tiny-authors" in scale and "batch 32 = 8×4×1" in scale
        assert "fp32" in scale and "full fine-tuning" in scale


@pytest.mark.slow  # one of the slowest default tests (3-10 s): .ci/run's second pass
async def test_the_compare_table_tells_runs_on_different_data_apart(tmp_path):
    root = tmp_path
    for sid, forget in (
        ("20250101-090000-grad_diff-aaaa", "bundled:forget10"),
        ("20250101-090000-grad_diff-bbbb", "bundled:forget05"),
    ):
        config = RunConfig(algorithm="grad_diff", forget=forget).to_dict()
        write_session(
            root,
            sid,
            config,
            {
                "status": "finished",
                "steps": 10,
                "metrics": {"before": metrics_at(0, 10), "after": metrics_at(10, 10)},
                "forget_quality": 0.25,
                "model_utility": 0.8,
            },
            started="2025-01-01T09:00:00+00:00",
        )
    app = create_app(sessions_dir=root, engine=FakeEngine())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+o")
        screen = app.screen
        await wait_until(pilot, lambda: screen.loaded, what="the scan")
        await pilot.press("space", "down", "space")
        compare = screen.query_one("#compare-table", DataTable)
        await wait_until(pilot, lambda: compare.row_count > 0, what="the comparison")
        headers = [str(c.label) for c in compare.columns.values()]
        assert headers[2:] == ["grad_diff forget05 01-01 09:00", "grad_diff forget10 01-01 09:00"]
        rows = {
            (str(r[0]), str(r[1])): [str(c) for c in r[2:]]
            for r in (compare.get_row_at(i) for i in range(compare.row_count))
        }
        assert rows[("run", "forget set")] == ["forget05", "forget10"]
        assert rows[("run", "model")] == ["tiny-authors", "tiny-authors"]
        assert rows[("after", "forget quality")] == ["0.250", "0.250"]
        assert rows[("after", "model utility")] == ["0.800", "0.800"]


def test_sparklines_draw_what_the_values_are():
    assert spark_text([0.5], 30) == BARS[3]  # one point: one bar, not a full row
    assert spark_text([0.95] * 6, 30, 0.0, 1.0) == BARS[7] * 6  # flat and high on a 0..1 metric
    assert spark_text([0.05] * 6, 30, 0.0, 1.0) == BARS[0] * 6  # flat and low
    assert spark_text([2.3] * 6, 30) == BARS[3] * 6  # flat, no known range: level in the middle
    assert spark_text([0.0, 1.0], 30) == BARS[0] + BARS[7]
    assert len(spark_text(list(range(100)), 30)) == 30  # many points: averaged into the width


async def test_the_loss_plot_keeps_large_terms_from_flattening_the_rest(tmp_path):
    app = create_app(sessions_dir=tmp_path, engine=FakeEngine())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        plot = app.workbench.query_one(LossPlot)
        history = {
            "loss": [(s, -80.0 - s) for s in range(1, 21)],
            "retain_nll": [(s, 2.0 - 0.01 * s) for s in range(1, 21)],
        }
        plot.set_history(history)
        await pilot.pause()
        assert plot.border_subtitle == "each term scaled to its min..max"
        assert all(0.0 <= v <= 1.0 for term in history for _, v in scaled(history[term]))
        legend = text_of(plot.query_one("#plot-legend"))
        assert "loss -100.000…-81.000" in legend and "retain_nll 1.800…1.990" in legend  # off the curves
        plot.show("retain_nll")
        await pilot.pause()
        assert plot.border_subtitle == "own units"
        assert text_of(plot.query_one("#plot-legend")).strip() == "━━ retain_nll 1.800…1.990"


# ---- §4: panes ----


@pytest.mark.slow  # several seconds: run by .ci/run's second pass
async def test_adding_a_probe_confirms_it_and_scrolls_it_into_view(tmp_path):
    app = create_app(sessions_dir=tmp_path, engine=FakeEngine())
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        app.action_add_probe()
        await pilot.pause()
        pane = app.workbench.probe_pane
        for i in range(12):  # short questions: every key is a round trip through the app
            await pilot.press(*f"Q{i}?", "enter")
            await pilot.pause()
        await pilot.pause(0.3)
        assert "Added: Q11? (asked from the next run on)" in text_of(pane.query_one("#probe-caption"))
        view = pane.query_one("#probe-list")
        item = view.highlighted_child
        assert item is not None and item.probe["question"] == "Q11?"
        assert view.scrollable_content_region.contains_region(item.region)  # on screen, not below the fold


@pytest.mark.slow
async def test_the_data_pane_offers_the_utility_splits_for_retain_and_holdout(tmp_path):
    app = create_app(sessions_dir=tmp_path, engine=FakeEngine())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        data = app.workbench.data_pane

        def options(role: str) -> list[str]:
            return [str(value) for _, value in data.editor(role).query_one(f"#{role}-split", Select)._options]

        assert {"real_authors", "world_facts"} <= set(options("retain"))
        assert {"real_authors", "world_facts"} <= set(options("holdout"))
        assert not {"real_authors", "world_facts"} & set(options("forget"))
        data.editor("retain").set_bundled("world_facts")
        await settle(pilot)
        assert data.specs(tmp_path)["retain"] == "bundled:world_facts"
        assert data.editor("retain").count and data.editor("retain").error is None


async def test_a_wrong_number_reads_as_a_form_message(tmp_path):
    app = create_app(sessions_dir=tmp_path, engine=FakeEngine())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        steps = app.workbench.algorithm_pane.query_one("#knob-steps", ParamField)
        steps.set_raw("abc")
        await pilot.pause()
        message = text_of(steps.query_one(".param-error"))
        assert message == "steps must be an integer, or empty for the default; got 'abc'"
        assert "null" not in message


async def test_the_focused_fields_full_help_is_shown(tmp_path):
    app = create_app(sessions_dir=tmp_path, engine=FakeEngine())
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        bench = app.workbench
        bench.show_tab("algorithm")
        field = bench.algorithm_pane.query_one("#knob-eval_samples", ParamField)
        field.query_one(".param-input").focus()
        await pilot.pause()
        shown = " ".join(text_of(bench.algorithm_pane.query_one("#field-help")).split())
        assert field.param.help.rstrip(".") in shown  # all of it, not the cut row help
        assert "the recipe's" in shown and "default none" not in shown  # decided at run time
        assert "allowed 0..10000000" in shown
        bench.algorithm_pane.query_one("#knob-steps", ParamField).query_one(".param-input").focus()
        await pilot.pause()
        shown = " ".join(text_of(bench.algorithm_pane.query_one("#field-help")).split())
        assert "default 60" in shown


def test_list_of_sessions_cells_mark_running_without_colour():
    from tui_unlearn.tui.screens.sessions import status_cell, steps_cell

    assert str(status_cell({"status": "running", "running": True})) == "● running"
    assert str(status_cell({"status": "finished", "running": False})) == "finished"
    assert steps_cell({"running": True, "steps": 12, "total_steps": 40}) == "12/40"


async def test_a_utility_retain_split_stays_when_the_forget_split_changes(tmp_path):
    app = create_app(sessions_dir=tmp_path, engine=FakeEngine())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        data = app.workbench.data_pane
        data.editor("forget").query_one("#forget-split", Select).value = "forget05"
        await settle(pilot)
        assert data.specs(tmp_path)["retain"] == "bundled:retain95"  # the same authors' retain split follows
        data.editor("retain").set_bundled("real_authors")
        data.editor("forget").query_one("#forget-split", Select).value = "forget01"
        await settle(pilot)
        assert data.specs(tmp_path)["retain"] == "bundled:real_authors"
