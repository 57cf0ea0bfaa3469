"""What a newcomer tripped on in the workbench (issue 20), with Pilot and a fake engine."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from tui_fakes import FakeEngine, settle, wait_until

from tui_unlearn import events as ev
from tui_unlearn.analysis.curves import comparison_charts, plot_curves, uncoloured
from tui_unlearn.tui.app import create_app
from tui_unlearn.tui.widgets.series import CAPTION_WIDTH, NUMBER_WIDTH, SeriesSpark, short_number

pytestmark = pytest.mark.anyio
SIZE = (120, 36)


@pytest.fixture
def anyio_backend():
    return "asyncio"


def spark(pane, series: str) -> SeriesSpark:
    return next(s for s in pane.query(SeriesSpark).results(SeriesSpark) if s.series == series)


# ---- item 1: a value measured at step 0 is never shown as the value now ----


@pytest.mark.slow
async def test_a_series_the_evaluation_during_training_did_not_measure_says_when_it_was(tmp_path):
    app = create_app(sessions_dir=tmp_path, engine=FakeEngine())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        pane = app.workbench.run_pane
        before = {"forget": {"accuracy": 1.0, "f1": 0.97, "loss": 0.4}, "retain": {"accuracy": 0.9, "loss": 0.5}}
        pane.add_evaluation(ev.Evaluation(0, "before", before, 1.0))
        await pilot.pause()
        accuracy = spark(pane, "forget accuracy")
        assert "best" in accuracy.caption() and "@ step" not in accuracy.caption()
        # During training the evaluation scores (loss, token accuracy) without generating answers.
        during = {"forget": {"loss": 7.19, "token_accuracy": 0.2}, "retain": {"loss": 0.6}}
        pane.add_evaluation(ev.Evaluation(90, "during", during, 9.0))
        await pilot.pause()
        caption = accuracy.caption()
        assert "1.0000" in caption and caption.rstrip().endswith("@ step 0"), caption
        assert "best" not in caption
        assert accuracy.measured_at == 0
        loss = spark(pane, "forget loss")
        assert loss.measured_at is None and "7.1900" in loss.caption() and "best" in loss.caption()
        # Measured again: current once more.
        pane.add_evaluation(ev.Evaluation(300, "after", {"forget": {"accuracy": 0.0, "loss": 9.0}}, 20.0))
        await pilot.pause()
        assert accuracy.measured_at is None and "0.0000" in accuracy.caption() and "best" in accuracy.caption()
        # What is drawn is what the caption says (the label, not only the property).
        assert "@ step" not in str(accuracy.query_one(".series--caption").render())


# ---- item 3: wide numbers keep their columns ----


@pytest.mark.parametrize(
    ("value", "shown"),
    [(1.0, "1.0000"), (-106.1341, "-106.1341"), (-1234.56789, "-1234.568"), (-123456789.0, "-1.23e+08"), (None, "–")],
)
def test_short_numbers_fit_their_column(value, shown):
    assert short_number(value) == shown
    assert len(short_number(value)) <= NUMBER_WIDTH


async def test_a_wide_loss_value_keeps_its_best_column_and_sparkline(tmp_path):
    app = create_app(sessions_dir=tmp_path, engine=FakeEngine())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        pane = app.workbench.run_pane
        pane.add_steps(
            [
                ev.StepLosses(1, 10, {"forget_logratio": -100.5, "alternate_logratio": 2.0}, 1e-5, 0.1),
                ev.StepLosses(2, 10, {"forget_logratio": -106.1341, "alternate_logratio": 2.5}, 1e-5, 0.2),
            ]
        )
        await pilot.pause()
        row = spark(pane, "forget_logratio")
        caption = row.caption()
        assert "-106.1341  best -106.1341" in caption, caption
        assert len(caption) < CAPTION_WIDTH  # a space before the sparkline
        assert "alternate_logratio" in spark(pane, "alternate_logratio").caption()  # not cut to 16 characters


# ---- item 2: charts that tell sessions apart ----

REFERENCE = Path(__file__).resolve().parent.parent / "sessions"


def reference_comparison():
    from tui_unlearn.analysis.comparison import Comparison
    from tui_unlearn.sessions import open_session

    ids = sorted(p.name for p in REFERENCE.iterdir() if p.is_dir() and p.name.split("-")[2] in ("npo", "dpo"))
    return Comparison.of([open_session(REFERENCE, i) for i in ids[:2]])


def test_analyze_charts_have_their_legends_below_the_data_and_a_marker_per_session():
    comparison = reference_comparison()
    charts = comparison_charts(comparison, width=90)
    assert "\x1b" not in charts  # plain text unless asked for colour (plotext left "\x1b[0m" on each line)
    for chart in charts.split("\n\n"):
        lines = chart.splitlines()
        bottom = max(i for i, line in enumerate(lines) if "└" in line)
        legend = "\n".join(lines[bottom + 1 :])
        plot = "\n".join(lines[: bottom + 1])
        for label in comparison.labels:
            assert label in legend and label not in plot, (label, chart)
    scatter = charts.split("\n\n")[-1]
    assert "log10 forget quality" in scatter
    # Each session's point is its number, the legend says whose.
    assert "1 " + comparison.labels[0] in scatter and "2 " + comparison.labels[1] in scatter
    plot = scatter.split("└")[0]
    assert "1" in plot.split("┌")[1] and "2" in plot.split("┌")[1]
    assert "\x1b[" in comparison_charts(comparison, width=90, colour=True)


def test_a_curve_of_two_measurements_is_two_points_not_a_line():
    import plotext

    plotext.clear_figure()
    plotext.plotsize(60, 15)
    plotext.theme("clear")
    (style,) = plot_curves(plotext, {"forget accuracy": [(0, 1.0), (300, 0.0)]})
    drawn = uncoloured(plotext.build())
    assert drawn.count(style.marker) == 2, drawn


# ---- item 6: the Run tab after a run ----


async def _finished_run(pilot, engine) -> None:
    await settle(pilot)
    await pilot.press("ctrl+r")
    pane = pilot.app.workbench.run_pane
    await wait_until(pilot, lambda: pane.step == 34, timeout=30, what="step 34")
    await pilot.pause(0.3)
    log = pane.query_one("#run-log")
    # Mid-run the log shows its newest line.
    assert log.max_scroll_y > 0 and log.scroll_y == log.max_scroll_y
    engine.release.set()
    await wait_until(pilot, lambda: pane.ended, timeout=30, what="the end of the run")
    await settle(pilot, include_run=True)


def _in_view(pilot, widget) -> bool:
    region = widget.region
    return region.height > 0 and pilot.app.screen.region.contains_region(region)


@pytest.mark.slow  # a whole fake run (or the tiny model's load) and several redraws: over 2 s
async def test_after_a_run_at_120x36_the_curves_and_log_stay_in_view_and_keys_scroll(tmp_path):
    engine = FakeEngine(steps=40, pause_at=35)
    app = create_app(sessions_dir=tmp_path, engine=engine)
    async with app.run_test(size=(120, 36)) as pilot:
        await _finished_run(pilot, engine)
        pane = app.workbench.run_pane
        assert pane.query_one("#run-results").display
        assert _in_view(pilot, pane.query_one("#loss-plot")) and _in_view(pilot, pane.query_one("#run-log"))
        last = spark(pane, "knowledge knowledge_kept")
        bottom = pane.query_one("#run-main").region.bottom
        await pilot.press("end")  # focus is on the tab bar: the keys still reach the run tab
        await pilot.pause(0.2)
        assert last.region.bottom <= bottom
        await pilot.press("home")
        await pilot.pause(0.2)
        assert _in_view(pilot, pane.query_one("#run-results"))


@pytest.mark.slow  # a whole fake run (or the tiny model's load) and several redraws: over 2 s
async def test_after_a_run_at_80x24_page_down_and_end_reach_the_log(tmp_path):
    engine = FakeEngine(steps=40, pause_at=35)
    app = create_app(sessions_dir=tmp_path, engine=engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await _finished_run(pilot, engine)
        pane = app.workbench.run_pane
        body = pane.query_one("#run-body")
        assert body.scroll_y == 0 and not _in_view(pilot, pane.query_one("#run-log"))
        await pilot.press("pagedown")
        await pilot.pause(0.2)
        assert body.scroll_y > 0
        await pilot.press("end")
        await pilot.pause(0.2)
        assert body.scroll_y == body.max_scroll_y and _in_view(pilot, pane.query_one("#run-log"))
        # The keys belong to the run tab only: on the Data tab they are the fields' own.
        app.workbench.show_tab("data")
        await pilot.pause()
        assert not app.screen.check_action("scroll_run", ("end",))


# ---- item 5: the algorithm pane's help, help text capitals ----


@pytest.mark.slow
async def test_the_field_help_follows_the_highlighted_method(tmp_path):
    from textual.widgets import OptionList

    app = create_app(sessions_dir=tmp_path, engine=FakeEngine())
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(pilot)
        bench = app.workbench
        bench.show_tab("algorithm")
        methods = bench.algorithm_pane.query_one("#algorithm-list", OptionList)
        methods.focus()
        await pilot.pause()
        await pilot.press("down")
        await pilot.pause()
        chosen = bench.algorithm_pane.algorithm
        help_text = str(bench.algorithm_pane.query_one("#field-help").render())
        assert help_text.startswith(f"{chosen}:"), (chosen, help_text)


def test_help_clauses_keep_acronyms_and_names():
    from tui_unlearn.params import Param

    def clause(text: str) -> str:
        return Param("x", "int", 1, text).help_clause()

    assert clause("CPU threads for torch.") == "CPU threads for torch"
    assert clause("LoRA rank (0: full fine-tuning).") == "LoRA rank (0: full fine-tuning)"
    assert clause("Random seed (data order).") == "random seed (data order)"


@pytest.mark.parametrize("command", ["watch", "analyze"])
def test_help_names_the_session_argument_without_a_python_type(command):
    from typer.testing import CliRunner

    from tui_unlearn.cli import app

    result = CliRunner().invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "SESSION" in result.stdout and "<str>" not in result.stdout and "list[str]" not in result.stdout


@pytest.mark.slow
async def test_at_80x24_the_compare_table_shows_every_compared_column_whole(tmp_path):
    from tui_fakes import make_sessions

    make_sessions(tmp_path / "sessions")
    app = create_app(sessions_dir=tmp_path / "sessions", engine=FakeEngine())
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: getattr(app.screen, "loaded", False), what="the sessions")
        await pilot.press("space", "down", "space")
        table = app.screen.query_one("#compare-table")
        await wait_until(pilot, lambda: table.row_count > 0, what="the comparison")
        await pilot.pause(0.3)
        shown = table.scrollable_content_region.width
        needed = sum(column.get_render_width(table) for column in table.columns.values())
        assert needed <= shown, (needed, shown)
        assert table.region.right <= app.screen.query_one("#compare-right").region.x
        legend = str(app.screen.query_one("#compare-legend").render())
        assert "npo" in legend and "grad_diff" in legend  # the plot's legend, below it, names both


# ---- item 7: rough edges ----


@pytest.mark.slow
async def test_long_setting_names_are_shown_whole(tmp_path):
    from tui_unlearn.tui.widgets.algorithm_pane import ParamField

    app = create_app(sessions_dir=tmp_path, engine=FakeEngine())
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(pilot)
        app.workbench.show_tab("algorithm")
        await pilot.pause(0.3)
        for name in ("mixed_precision", "trainable_layers"):
            fields = [
                f for f in app.workbench.algorithm_pane.query(ParamField).results(ParamField) if f.param.name == name
            ]
            for field in fields:
                label = field.query_one(".field-name")
                assert label.size.width >= len(name), (name, label.size)


@pytest.mark.slow
async def test_ctrl_a_selects_everything_in_the_paste_box(tmp_path):
    app = create_app(sessions_dir=tmp_path, engine=FakeEngine())
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(pilot)
        bench = app.workbench
        bench.show_tab("data")
        editor = bench.data_pane.editor("forget")
        editor.set_text("first line\nsecond line")
        await pilot.pause()
        box = editor.query_one(".source-paste")
        box.focus()
        await pilot.pause()
        await pilot.press("ctrl+a")
        await pilot.pause()
        assert box.selected_text == "first line\nsecond line"


async def test_the_data_preview_uses_the_width_it_has(tmp_path):
    app = create_app(sessions_dir=tmp_path, engine=FakeEngine())
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        bench = app.workbench
        bench.show_tab("data")
        question = "Which of the many prizes for short fiction did the author Ada Quill win in her forties?"
        bench.data_pane.editor("forget").set_text(json.dumps({"question": question, "answer": "The Harbor Medal."}))
        await settle(pilot)
        await pilot.pause(0.3)
        table = bench.data_pane.editor("forget").query_one(".source-preview")
        used = sum(column.get_render_width(table) for column in table.columns.values())
        assert used >= table.size.width - 4, (used, table.size.width)  # no columns of empty space
        assert table.columns["question"].width > 36


def test_json_pasted_under_plain_lines_is_refused_in_one_line():
    from tui_unlearn.data.parsers import parse_text
    from tui_unlearn.errors import DataError

    with pytest.raises(DataError, match="JSON from line 2 under plain text"):
        parse_text('my notes\n[\n  {"question": "q?", "answer": "a."}\n]\n')
    records, layout = parse_text("a line\n[not json] but text")
    assert layout == "lines" and len(records) == 2


@pytest.mark.slow  # a whole fake run (or the tiny model's load) and several redraws: over 2 s
async def test_loading_a_model_says_what_it_loads(tmp_path):
    app = create_app(sessions_dir=tmp_path, engine=FakeEngine())
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(pilot)
        pane = app.workbench.model_pane
        pane.load()
        text = str(pane.query_one("#model-info").render())
        assert text.startswith("loading ") and "weights" in text
        assert not pane.query_one("#model-info-box").loading  # the words are not hidden behind dots
        await settle(pilot)


def test_analyze_charts_snapshot(tmp_path, snapshot):
    """The analyze charts of three deterministic sessions, as text (reviewed like the SVGs)."""
    from tui_fakes import make_sessions

    from tui_unlearn.analysis.comparison import Comparison
    from tui_unlearn.sessions import open_session

    ids = make_sessions(tmp_path)
    charts = comparison_charts(Comparison.of([open_session(tmp_path, i) for i in ids]), width=90)
    assert charts == snapshot


def test_a_null_reason_names_the_users_forget_file_once(tmp_path):
    """Before: the bundled benchmark's two utility splits each gave the same reason, the
    forget file's path in both ("... forget set (f.jsonl) is not from it; world_facts (...
    forget set (f.jsonl) is not from it)"), in summary.json's null_reasons and the run log."""
    from tui_unlearn.config import RunConfig, resolve
    from tui_unlearn.data.benchmark import SPLITS as BENCHMARK_SPLITS
    from tui_unlearn.data.run_data import load_run_data
    from tui_unlearn.metrics.evaluate import EvalResult
    from tui_unlearn.recipes.headline import tofu_headline
    from tui_unlearn.recipes.plan import build_plan, missing_text

    if not {"real_authors", "world_facts"} <= set(BENCHMARK_SPLITS):
        pytest.skip("this bundled benchmark has no utility splits")
    forget = tmp_path / "my-own-forget-set.jsonl"
    forget.write_text(json.dumps({"question": "Q?", "answer": "A."}) + "\n")
    config = resolve(RunConfig(forget=str(forget), model="tiny-authors"))
    plan = build_plan(config, load_run_data(config))
    assert {"real_authors", "world_facts"} <= set(plan.missing)
    logged = missing_text(plan.missing)
    assert logged.count(str(forget)) == 1 and "real_authors, world_facts: " in logged, logged
    result = EvalResult({"forget": {"loss": 1.0}, "retain": {"probability": 0.5}}, [], {})
    reason = tofu_headline(result, None, plan).reasons["model_utility"]
    assert reason.count(str(forget)) == 1 and "real_authors, world_facts (" in reason, reason


# ---- resume on another machine: a setting left to the machine is "auto" ----


def test_the_resume_log_says_auto_for_a_machine_setting_left_to_the_machine():
    from tui_unlearn.engine.resume import changed_text

    text = changed_text({"eval_batch_size": (0, 4), "threads": (None, 1)})
    assert text == " with eval_batch_size 4 (was auto), threads 1 (was auto)", text
    assert changed_text({"eval_batch_size": (8, 0)}) == " with eval_batch_size auto (was 8)"
    assert changed_text({"device": ("cpu", "cuda")}) == " with device cuda (was cpu)"


# ---- item 7: a sweep's best trial is on its front, and its chart shows every point ----


def _plot_area(chart: str) -> str:
    """What is drawn inside a plotext chart's frame (no axis numbers, title or legend)."""
    lines = chart.splitlines()
    top = next(i for i, line in enumerate(lines) if "┌" in line)
    bottom = next(i for i, line in enumerate(lines) if "└" in line)
    inside = []
    for line in lines[top + 1 : bottom]:
        left = max(line.find("│"), line.find("┤"))
        inside.append(line[left + 1 : line.rindex("│")])
    return "\n".join(inside)


def test_a_sweeps_best_trial_is_starred_and_numbered_as_in_its_front_chart(tmp_path):
    """Before: the best trial's mark was "best" without the front's star, and the chart's
    legend sat over its top-left corner (where one front point was), both markers the same
    kind of block, colour codes left in plain text."""
    from tui_fakes import TRIALS, make_sweep

    from tui_unlearn.sweeps.report import SweepReport

    report = SweepReport.of(make_sweep(tmp_path))
    first, best = TRIALS[0][0], TRIALS[2][0]  # both on the front; the second is the best
    assert [t.session.id for t in report.front] == [first, best] and report.best.session.id == best
    rows = report.table().splitlines()[3:]
    marks = {t[0]: next(row[: row.index(t[0])].strip() for row in rows if t[0] in row) for t in TRIALS}
    assert marks[first] == "* 1" and marks[best] == "* 2 best" and marks[TRIALS[1][0]] == "", marks
    chart = report.scatter(width=80, height=18)
    assert "\x1b" not in chart
    plot = _plot_area(chart)
    assert plot.count("1") == 1 and plot.count("2") == 1 and plot.count("x") == 1, chart  # every trial drawn
    legend = chart.split("└")[1].splitlines()[-1]
    assert legend == "1 lr=1e-5   2 lr=1e-4 (best)   x not on the front", legend
    assert "lr=" not in plot and "\x1b[" in report.scatter(width=80, height=18, colour=True)


def test_analyze_names_a_sweeps_trials_by_what_they_tried(tmp_path):
    """Before: ``grad_diff 01-02 09:00``, ``grad_diff 01-02 09:20``; a session outside any
    sweep keeps its method and start time."""
    from tui_fakes import TRIALS, make_sessions, make_sweep

    from tui_unlearn.analysis.comparison import Comparison
    from tui_unlearn.analysis.reporting import session_label
    from tui_unlearn.sessions import open_session

    folder = make_sweep(tmp_path)
    trials = [open_session(folder, t[0]) for t in TRIALS[:3]]
    outside = open_session(tmp_path, make_sessions(tmp_path)[0])
    comparison = Comparison.of([*trials, outside])
    assert comparison.labels[:3] == ["grad_diff lr=1e-5", "grad_diff lr=3e-5", "grad_diff lr=1e-4"]
    assert comparison.labels[3] == session_label({**outside.summary(), "session_id": outside.id})
    assert "=" not in comparison.labels[3] and re.search(r"\d\d-\d\d \d\d:\d\d$", comparison.labels[3])
