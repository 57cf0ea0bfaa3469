"""Snapshots of the screens and states that matter (SVGs under __snapshots__, reviewed like code).

Every app gets its own sessions folder under tmp_path and the deterministic FakeEngine;
workers are waited for and cursors made steady before each picture. Update with
``pytest tests/test_tui_snapshots.py --snapshot-update`` and look at the SVGs.
"""

from __future__ import annotations

import json

import pytest
from tui_fakes import T0, FakeEngine, SessionWriter, make_sessions, no_blink, settle, wait_until

from tui_unlearn.config import RunConfig
from tui_unlearn.tui.app import create_app
from tui_unlearn.tui.widgets import run_pane
from tui_unlearn.tui.widgets.algorithm_pane import ParamField

NOW = T0 + 60  # the frozen wall clock of every picture


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch):
    monkeypatch.setattr(run_pane, "wall_clock", lambda: NOW)


SIZE = (100, 32)
SMALL = (80, 24)
WIDE = (160, 44)
PASTED = "\n".join(
    json.dumps({"question": q, "answer": a})
    for q, a in [
        ("Where was Ada Quill born?", "Ada Quill was born in Port Liren."),
        ("What does Ada Quill write?", "Ada Quill writes mystery novels."),
        ("Which prize did Ada Quill win?", "Ada Quill won the Harbor Medal for Letters."),
    ]
)
BROKEN = "Q: Where was Ada Quill born?\nQ: What does she write?\nA: Mystery novels."


def app_for(tmp_path, engine=None, config=None):
    return create_app(
        config or RunConfig(probes=["Who wrote The Amber Lantern?"]),
        sessions_dir=tmp_path / "sessions",
        engine=engine or FakeEngine(steps=40),
    )


async def finish(pilot, *, include_run=False):
    await settle(pilot, include_run=include_run)
    no_blink(pilot.app)
    await pilot.pause()


def test_fresh_start(snap_compare, tmp_path):
    assert snap_compare(app_for(tmp_path), terminal_size=SIZE, run_before=finish)


def test_fresh_start_80x24(snap_compare, tmp_path):
    assert snap_compare(app_for(tmp_path), terminal_size=SMALL, run_before=finish)


def test_data_pasted_and_parsed(snap_compare, tmp_path):
    async def run_before(pilot):
        await settle(pilot)
        pilot.app.workbench.show_tab("data")
        pilot.app.workbench.data_pane.editor("forget").set_text(PASTED)
        await finish(pilot)

    assert snap_compare(app_for(tmp_path), terminal_size=SIZE, run_before=run_before)


def test_parse_error_inline(snap_compare, tmp_path):
    async def run_before(pilot):
        await settle(pilot)
        pilot.app.workbench.show_tab("data")
        pilot.app.workbench.data_pane.editor("forget").set_text(BROKEN)
        await finish(pilot)

    assert snap_compare(app_for(tmp_path), terminal_size=SIZE, run_before=run_before)


@pytest.mark.slow
def test_algorithm_form_with_an_invalid_value(snap_compare, tmp_path):
    async def run_before(pilot):
        await settle(pilot)
        bench = pilot.app.workbench
        bench.show_tab("algorithm")
        bench.algorithm_pane.query_one("#algorithm-list").focus()
        await pilot.press("down", "down", "down")  # grad_diff -> idk -> distill -> npo
        await pilot.pause()
        beta = next(f for f in bench.algorithm_pane.query(ParamField).results(ParamField) if f.param.name == "beta")
        beta.query_one("Input").focus()
        await pilot.press("end", "backspace", "backspace", "backspace", *"-2")
        await finish(pilot)

    assert snap_compare(app_for(tmp_path), terminal_size=SIZE, run_before=run_before)


def _run_until(step=None):
    async def run_before(pilot):
        app = pilot.app
        await settle(pilot)
        await pilot.press("ctrl+r")
        if step is None:
            await settle(pilot, include_run=True)
        else:
            await wait_until(pilot, lambda: app.workbench.run_pane.step == step, what=f"step {step}")
            app.workbench.run_pane.set_origin(NOW - 14)  # it started 14 s before the picture
        app.clear_notifications()
        await finish(pilot)

    return run_before


@pytest.mark.slow  # one of the slowest default tests (3-10 s): .ci/run's second pass
def test_run_in_progress(snap_compare, tmp_path):
    engine = FakeEngine(steps=40, pause_at=25)
    assert snap_compare(app_for(tmp_path, engine), terminal_size=SIZE, run_before=_run_until(24))


@pytest.mark.slow
def test_run_in_progress_80x24(snap_compare, tmp_path):
    engine = FakeEngine(steps=40, pause_at=25)
    assert snap_compare(app_for(tmp_path, engine), terminal_size=SMALL, run_before=_run_until(24))


def test_run_in_progress_wide(snap_compare, tmp_path):
    engine = FakeEngine(steps=40, pause_at=25)
    assert snap_compare(app_for(tmp_path, engine), terminal_size=WIDE, run_before=_run_until(24))


@pytest.mark.slow
def test_run_finished(snap_compare, tmp_path):
    assert snap_compare(app_for(tmp_path), terminal_size=SIZE, run_before=_run_until(None))


@pytest.mark.slow  # one of the slowest default tests (3-10 s): .ci/run's second pass
def test_probes_after_a_run(snap_compare, tmp_path):
    async def run_before(pilot):
        await _run_until(None)(pilot)
        pilot.app.workbench.show_tab("probes")
        await finish(pilot)

    assert snap_compare(app_for(tmp_path), terminal_size=SIZE, run_before=run_before)


def _sessions(tmp_path):
    make_sessions(tmp_path / "sessions")
    return app_for(tmp_path)


async def open_sessions(pilot):
    await settle(pilot)
    await pilot.press("ctrl+o")
    await wait_until(pilot, lambda: getattr(pilot.app.screen, "loaded", False), what="the sessions to be read")


def test_sessions_compare(snap_compare, tmp_path):
    async def run_before(pilot):
        await open_sessions(pilot)
        await pilot.press("space", "down", "space")
        await wait_until(pilot, lambda: pilot.app.screen.query_one("#compare-table").row_count > 0, what="compare")
        await finish(pilot)

    assert snap_compare(_sessions(tmp_path), terminal_size=SIZE, run_before=run_before)


def test_sessions_delete_asks_first(snap_compare, tmp_path):
    async def run_before(pilot):
        await open_sessions(pilot)
        await pilot.press("d")
        await finish(pilot)

    assert snap_compare(_sessions(tmp_path), terminal_size=SIZE, run_before=run_before)


def test_help_screen(snap_compare, tmp_path):
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("f1")
        await finish(pilot)

    assert snap_compare(app_for(tmp_path), terminal_size=SIZE, run_before=run_before)


def _watched(tmp_path):
    writer = SessionWriter(tmp_path / "sessions")  # no pid: a writer this machine cannot check
    writer.start()
    writer.steps(24)
    return create_app(sessions_dir=tmp_path / "sessions", engine=FakeEngine(), watch=writer.session)


def test_watched_run(snap_compare, tmp_path):
    async def run_before(pilot):
        await wait_until(pilot, lambda: pilot.app.screen.query("RunPane"), what="the watch screen")
        pane = pilot.app.screen.run_pane
        await wait_until(
            pilot,
            lambda: pane.step == 24 and pilot.app.screen.probe_pane.answer_step == 20,
            what="the history to be read",
        )
        await finish(pilot)

    assert snap_compare(_watched(tmp_path), terminal_size=SIZE, run_before=run_before)


def test_sessions_with_a_running_session(snap_compare, tmp_path):
    make_sessions(tmp_path / "sessions")
    writer = SessionWriter(tmp_path / "sessions", "20250101-130000-npo-live")
    writer.start()
    writer.steps(24)
    writer.session.update_summary(steps=24, total_steps=40, started="2025-01-01T13:00:00+00:00")

    async def run_before(pilot):
        await open_sessions(pilot)
        await finish(pilot)

    assert snap_compare(app_for(tmp_path), terminal_size=SIZE, run_before=run_before)


# ---- screens that had no picture ----


def test_path_picker(snap_compare, tmp_path, monkeypatch):
    # A relative folder in a fixed place, so the picture does not depend on where tests run.
    monkeypatch.chdir(tmp_path)
    for name in ("llama-3.2-1b", "tiny"):
        (tmp_path / "models" / name).mkdir(parents=True)
        (tmp_path / "models" / name / "config.json").write_text("{}")
    (tmp_path / "models" / "notes.txt").write_text("which model is which")

    async def run_before(pilot):
        await settle(pilot)
        pilot.app.workbench.model_pane.set_spec("models")
        pilot.app.action_browse_model()
        await wait_until(pilot, lambda: pilot.app.screen.query("#picker-tree"), what="the picker")
        tree = pilot.app.screen.query_one("#picker-tree")
        await wait_until(pilot, lambda: len(tree.root.children) == 2, what="the folder to be listed")
        # Not finish(): the tree's loader is a worker that lives as long as the tree.
        no_blink(pilot.app)
        await pilot.pause()

    assert snap_compare(app_for(tmp_path), terminal_size=SIZE, run_before=run_before)


@pytest.mark.slow
def test_quit_asks_first_while_a_run_goes(snap_compare, tmp_path):
    async def run_before(pilot):
        await _run_until(24)(pilot)
        await pilot.press("ctrl+q")
        await wait_until(pilot, lambda: pilot.app.screen.query("Button"), what="the question")
        await finish(pilot)

    engine = FakeEngine(steps=40, pause_at=25)
    assert snap_compare(app_for(tmp_path, engine), terminal_size=SIZE, run_before=run_before)


def test_model_info_after_loading(snap_compare, tmp_path):
    from tui_unlearn.models.loading import load_model

    info = load_model("tiny-authors", device="cpu").info()
    info["path"] = "models_cache/tiny-authors"  # where the checkout is differs between machines

    async def run_before(pilot):
        await settle(pilot)
        pilot.app.workbench.model_pane.show_info("tiny-authors", info)
        await finish(pilot)

    assert snap_compare(app_for(tmp_path), terminal_size=SIZE, run_before=run_before)


@pytest.mark.slow
def test_a_failed_run(snap_compare, tmp_path):
    from tui_unlearn.errors import RunFailedError

    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("ctrl+r")
        await settle(pilot, include_run=True)
        await finish(pilot)  # the notification that says why stays in the picture

    engine = FakeEngine(steps=40, fail=RunFailedError("loss diverged at step 3; lower the learning rate"))
    assert snap_compare(app_for(tmp_path, engine), terminal_size=SIZE, run_before=run_before)


def test_an_empty_sessions_list(snap_compare, tmp_path):
    async def run_before(pilot):
        await open_sessions(pilot)
        await finish(pilot)

    assert snap_compare(app_for(tmp_path), terminal_size=SIZE, run_before=run_before)


@pytest.mark.slow
def test_run_finished_120x36(snap_compare, tmp_path):
    """Issue 20 item 6: after a run the results, series, curves and log share the screen."""
    assert snap_compare(app_for(tmp_path), terminal_size=(120, 36), run_before=_run_until(None))
