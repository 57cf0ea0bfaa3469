"""Calibrated forgetting in the TUI (issue 10): the Run tab's stop-rule box, live and watched,
and the stop-rule settings in the Algorithm tab's form (Pilot, fake engine)."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input, Label
from tui_fakes import T0, FakeEngine, SessionWriter, settle, wait_until
from tui_shown import shown

from tui_unlearn import events as ev
from tui_unlearn.config import RunConfig
from tui_unlearn.sessions import Session
from tui_unlearn.tui.app import create_app
from tui_unlearn.tui.calibration_view import calibration_text, progress_bar
from tui_unlearn.tui.screens.live import WatchScreen
from tui_unlearn.tui.widgets.algorithm_pane import ParamField

pytestmark = pytest.mark.anyio
SIZE = (100, 32)
RULE = "holdout-parity:0.05"


@pytest.fixture
def anyio_backend():
    return "asyncio"


def parity_at(step: int) -> float:
    """The fake run's holdout parity: 0.25 at the original model, 0.05 (the rule) at step 20."""
    return max(0.05, 0.25 - 0.01 * step)


def calibration_at(step: int, rule: str | None = RULE, keep_best: str | None = "forget_quality") -> ev.Calibration:
    parity = parity_at(step)
    distance = max(0.0, parity - 0.05)
    return ev.Calibration(
        step,
        {"holdout_parity": parity, "forget_quality": 1e-6 * (step + 1), "utility_ratio": 0.97},
        rule=rule,
        rule_met=distance == 0.0,
        distance=distance if rule else None,
        progress=(1.0 - distance / 0.2) if rule else None,
        keep_best=keep_best,
        best_step=(step or None) if keep_best else None,
        best_value=1e-6 * (step + 1) if keep_best and step else None,
        floor_met=True if keep_best else None,
    )


class CalibratingEngine(FakeEngine):
    """The fake engine, plus a Calibration event after the evaluation before and each one
    during the run, recorded in the session's history as the engine records it."""

    def __init__(self, *, rule: str | None = RULE, keep_best: str | None = "forget_quality", **kwargs) -> None:
        super().__init__(**kwargs)
        self.rule, self.keep_best = rule, keep_best

    def __call__(self, config, on_event, should_stop, *, sessions_dir=None, **kwargs):
        def relay(event: ev.Event) -> None:
            if isinstance(event, ev.RunFinished) and self.keep_best:  # as the engine's summary says it
                event.summary["calibration"] = {"rule": self.rule, "stopped_at": None, "kept_step": 20}
            on_event(event)
            if isinstance(event, ev.Evaluation) and event.phase in ("before", "during"):
                news = calibration_at(event.step, self.rule, self.keep_best)
                Session(Path(sessions_dir) / self.session_id).append_event(news.to_dict())
                on_event(news)

        return super().__call__(config, relay, should_stop, sessions_dir=sessions_dir, **kwargs)


def box_text(pane) -> str:
    return str(pane.query_one("#run-calibration").render())


# ---- the words and the bar ----


def test_the_bar_fills_with_progress_and_is_dim_when_unknown():
    assert progress_bar(0.0, 10).plain == "░" * 10 + "   0%"
    assert progress_bar(0.5, 10).plain == "█" * 5 + "░" * 5 + "  50%"
    assert progress_bar(1.7, 10).plain == "█" * 10 + " 100%"  # clamped
    assert progress_bar(None, 10).plain.endswith("?")
    assert progress_bar("0.5", 10).plain.endswith("?")  # a damaged history's text is not a number


def test_a_rule_in_decades_says_so_and_a_run_without_rule_or_keep_best_has_no_box():
    text = calibration_text(ev.Calibration(0, {"forget_quality": 1e-9}, "forget_quality>=0.5", False, 8.7, 0.0))
    assert text is not None and "distance 8.7 decades" in text.plain and "forget_quality 1e-09" in text.plain
    assert calibration_text(ev.Calibration(0, {"holdout_parity": 0.2})) is None
    floor = calibration_text(ev.Calibration(5, {}, keep_best="holdout_parity", floor_met=False), utility_floor=0.9)
    assert floor is not None and "utility floor 0.9× not held here" in floor.plain and "no candidate yet" in floor.plain
    met = ev.Calibration(6, {"forget_accuracy": 0.05}, "forget_accuracy<=0.1", True, 0.0, 1.0)
    ended = calibration_text(met, outcome={"stopped_at": 6, "kept_step": None})
    assert ended is not None and "✓ met · stopped at step 6 · forget_accuracy 0.05" in ended.plain
    assert "kept" not in ended.plain


# ---- the Run tab of a run started here ----


@pytest.mark.slow  # one of the slowest default tests (3-10 s): .ci/run's second pass
async def test_the_run_tab_shows_the_stop_rule_and_how_close_the_run_is(tmp_path):
    engine = CalibratingEngine(steps=30, eval_every=10, pause_at=15)
    config = RunConfig(stop_when=RULE, keep_best="forget_quality", utility_floor=0.9, eval_every=10)
    app = create_app(config, sessions_dir=tmp_path, engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+r")
        await wait_until(pilot, engine.paused.is_set, what="the run to reach step 15")
        pane = app.workbench.run_pane
        await wait_until(
            pilot,
            lambda: pane.calibration is not None and pane.calibration.step == 10,
            what="the calibration at step 10",
        )
        assert pane.query_one("#run-calibration").display
        text = box_text(pane)
        assert f"stop rule {'█' * 10}{'░' * 10}  50% · {RULE} · not met · distance 0.1" in text
        assert "holdout_parity 0.15" in text
        assert "keep best forget_quality · best step 10 = 1.1e-05" in text and "utility floor 0.9× holds" in text
        engine.release.set()
        await settle(pilot, include_run=True)
        text = box_text(pane)  # step 20: the rule holds
        assert pane.calibration.step == 20 and f"stop rule {'█' * 20} 100% · {RULE} · ✓ met" in text
        assert "distance" not in text
        assert "kept the weights of step 20" in text  # the ended run's summary says which
    assert engine.configs[0].stop_when == RULE and engine.configs[0].keep_best == "forget_quality"
    assert engine.configs[0].utility_floor == 0.9  # the form carried the settings into the run


@pytest.mark.slow
async def test_a_run_without_a_rule_shows_no_box(tmp_path):
    engine = CalibratingEngine(steps=20, eval_every=10, rule=None, keep_best=None)
    app = create_app(RunConfig(eval_every=10), sessions_dir=tmp_path, engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+r")
        await settle(pilot, include_run=True)
        pane = app.workbench.run_pane
        assert pane.calibration is not None and pane.calibration.step == 10  # the news came
        assert not pane.query_one("#run-calibration").display


@pytest.mark.slow
async def test_a_new_run_hides_the_last_runs_box(tmp_path):
    engine = CalibratingEngine(steps=10, eval_every=5)
    app = create_app(RunConfig(stop_when=RULE, eval_every=5), sessions_dir=tmp_path, engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+r")
        await settle(pilot, include_run=True)
        pane = app.workbench.run_pane
        assert pane.query_one("#run-calibration").display
        pane.reset(10)
        await pilot.pause()
        assert not pane.query_one("#run-calibration").display and pane.calibration is None


# ---- a watched run: the calibration news comes from events.jsonl ----


async def test_a_watched_run_shows_its_stop_rule_from_its_history(tmp_path):
    writer = SessionWriter(tmp_path)
    writer.config.update(stop_when=RULE, keep_best="holdout_parity", utility_floor=0.95)
    writer.start()
    writer.append(calibration_at(0, keep_best="holdout_parity"), T0 + 2)
    writer.steps(10)
    writer.append(calibration_at(10, keep_best="holdout_parity"), T0 + 8)
    app = create_app(sessions_dir=tmp_path, watch=writer.session)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, WatchScreen)
        pane = screen.run_pane
        await wait_until(
            pilot,
            lambda: pane.calibration is not None and pane.calibration.step == 10,
            what="the calibration at step 10",
        )
        text = box_text(pane)
        assert f"{RULE} · not met" in text and " 50%" in text
        assert "keep best holdout_parity" in text and "utility floor 0.95× holds" in text
        writer.steps(20)
        writer.append(calibration_at(20, keep_best="holdout_parity"), T0 + 13)
        await wait_until(pilot, lambda: pane.calibration.step == 20, what="the calibration at step 20")
        assert "✓ met" in box_text(pane)


# ---- the form ----


@pytest.mark.slow  # several seconds: run by .ci/run's second pass
async def test_the_form_checks_a_stop_rule_as_the_cli_does(tmp_path):
    engine = FakeEngine(steps=5)
    app = create_app(RunConfig(eval_every=5), sessions_dir=tmp_path, engine=engine)
    seen: list = []  # every message the app handles (run_test's public hook)
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await settle(pilot)
        bench = app.workbench
        bench.show_tab("algorithm")
        await pilot.pause()
        fields = {f.param.name: f for f in bench.algorithm_pane.query(ParamField).results(ParamField)}
        assert {"stop_when", "keep_best", "utility_floor"} <= set(fields)
        rule = fields["stop_when"]
        rule.query_one(Input).focus()
        await pilot.press(*"forget_accurcy<=0.1")
        await pilot.pause()
        error = str(rule.query_one(".param-error", Label).render())
        assert error.startswith("stop_when is not a rule: unknown metric 'forget_accurcy'") and "\n" not in error
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert not engine.configs and any(n.title == "Cannot start" for n in shown(seen))
        for _ in "forget_accurcy<=0.1":
            await pilot.press("backspace")
        await pilot.press(*"forget_accuracy<=0.1")
        await pilot.pause()
        assert str(rule.query_one(".param-error", Label).render()) == ""
        fields["keep_best"].query_one(Input).focus()
        await pilot.press(*"nonsense")
        await pilot.pause()
        assert "unknown metric 'nonsense'" in str(fields["keep_best"].query_one(".param-error", Label).render())
        for _ in "nonsense":
            await pilot.press("backspace")
        await pilot.pause()
        _, _, knobs = bench.algorithm_pane.values()
        assert knobs["stop_when"] == "forget_accuracy<=0.1" and knobs["keep_best"] is None  # empty: not set
