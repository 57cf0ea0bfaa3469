"""Keys and help (issue 11 §4): the help screen, direct tab keys, focus that shows, and the
documented keys table saying the same as the app."""

from __future__ import annotations

import re

import pytest
from project_docs import doc_text
from textual.widgets import Input, OptionList
from tui_fakes import FakeEngine, SessionWriter, make_sessions, settle, wait_until

from tui_unlearn.tui.app import create_app
from tui_unlearn.tui.screens.help import HelpScreen, help_rows
from tui_unlearn.tui.screens.live import WatchScreen
from tui_unlearn.tui.widgets.algorithm_pane import ParamField

pytestmark = pytest.mark.anyio
SIZE = (100, 32)


@pytest.fixture
def anyio_backend():
    return "asyncio"


def readme_keys() -> dict[str, str]:
    """The documented keys table: key cell (each key in backticks) -> what it says."""
    text = doc_text()
    table = text[text.index("| Key | Where | What it does |") :]
    rows = {}
    for line in table.splitlines()[2:]:
        if not line.startswith("|"):
            break
        key_cell, where, what = [c.strip() for c in line.strip("|").split("|")[:3]]
        for key in re.findall(r"`([^`]+)`", key_cell):
            rows[f"{key} @ {where}"] = what
    return rows


def help_keys(screen) -> set[str]:
    return {key.lower() for keys, _, _ in help_rows(screen) for key in keys.split(" / ")}


@pytest.mark.slow  # one of the slowest default tests (3-10 s): .ci/run's second pass
async def test_f1_and_question_mark_open_the_help_and_escape_closes_it(tmp_path):
    app = create_app(sessions_dir=tmp_path, engine=FakeEngine())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        shown = [keys for keys, _, _ in app.screen.rows]
        for key in (
            "ctrl+r",
            "ctrl+x",
            "ctrl+o",
            "ctrl+l",
            "ctrl+q",
            "ctrl+c",
            "f1 / ?",
            "f5 / alt+4",
            "tab / shift+tab",
        ):
            assert key in shown, key
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is app.workbench

        await pilot.press("question_mark")  # outside a text field
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        app.action_add_probe()
        await pilot.pause()
        await pilot.press(*"Why?")  # inside one, ? is a character
        await pilot.pause()
        assert app.screen is app.workbench
        assert app.workbench.probe_pane.query_one("#probe-input", Input).value == "Why?"
        assert "Help" in {c.title for c in app.get_system_commands(app.screen)}


@pytest.mark.slow
async def test_the_help_lists_the_keys_of_the_screen_it_was_opened_on(tmp_path):
    make_sessions(tmp_path)
    app = create_app(sessions_dir=tmp_path, engine=FakeEngine())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: app.screen.loaded, what="the scan")
        keys = help_keys(app.screen)
        assert {"space", "ctrl+r", "delete", "d", "p", "enter", "escape"} <= keys
        assert "ctrl+l" not in keys or not dict((k, a) for k, _, a in help_rows(app.screen)).get("ctrl+l")
        await pilot.press("f1")
        await pilot.pause()
        assert "Keys of the sessions screen" in str(app.screen.query_one("#help-title").render())


async def test_every_key_the_app_answers_to_is_in_the_docs_and_ctrl_c_is_told_true(tmp_path):
    writer = SessionWriter(tmp_path)
    writer.start()
    documented = readme_keys()
    listed = {key.split(" @ ")[0].lower() for key in documented}
    app = create_app(sessions_dir=tmp_path, engine=FakeEngine())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        missing = help_keys(app.workbench) - listed
        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: app.screen.loaded, what="the scan")
        missing |= help_keys(app.screen) - listed
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, WatchScreen), what="the watch screen")
        missing |= help_keys(app.screen) - listed
    assert missing == set()
    ctrl_c = next(what for key, what in documented.items() if key.startswith("ctrl+c @"))
    assert "copies" in ctrl_c.lower() and "quits" in ctrl_c.lower()
    assert "`ctrl+c` outside text fields" not in doc_text()  # the old, untrue claim


@pytest.mark.slow  # several seconds: run by .ci/run's second pass
async def test_function_and_alt_keys_switch_tabs_from_anywhere(tmp_path):
    app = create_app(sessions_dir=tmp_path, engine=FakeEngine())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        tabs = app.workbench.query_one("#tabs")
        app.workbench.model_pane.query_one("#model-spec", Input).focus()  # typing in a field
        await pilot.pause()
        for key, tab in (
            ("f3", "data"),
            ("f4", "algorithm"),
            ("f5", "run"),
            ("f6", "probes"),
            ("f2", "model"),
            ("alt+2", "data"),
            ("alt+4", "run"),
            ("alt+5", "probes"),
            ("alt+3", "algorithm"),
            ("alt+1", "model"),
        ):
            await pilot.press(key)
            await pilot.pause()
            assert tabs.active == f"tab-{tab}", key
        assert app.workbench.model_pane.query_one("#model-spec", Input).value == "tiny-authors"  # nothing typed


@pytest.mark.slow  # one of the slowest default tests (3-10 s): .ci/run's second pass
async def test_tab_never_stops_on_a_box_that_takes_no_input(tmp_path):
    app = create_app(sessions_dir=tmp_path, engine=FakeEngine())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        bench = app.workbench
        bench.show_tab("algorithm")
        bench.algorithm_pane.query_one("#algorithm-list").focus()
        await pilot.pause()
        visited = []
        for _ in range(8):
            await pilot.press("tab")
            await pilot.pause()
            visited.append(app.screen.focused)
        assert all(w.id not in ("algorithm-form", "algorithm-right") for w in visited)
        # Every stop is a field of the form (the first one right after the list).
        assert all(any(isinstance(a, ParamField) for a in w.ancestors_with_self) for w in visited)
        box = next(w for w in visited[::-1] if isinstance(w, Input))
        box.focus()
        await pilot.pause()
        await pilot.press("end", *"42")
        await pilot.pause()
        assert box.value.endswith("42")  # what is typed lands in it


@pytest.mark.slow  # one of the slowest default tests (3-10 s): .ci/run's second pass
async def test_focus_and_highlight_show_without_colour(tmp_path, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app = create_app(sessions_dir=tmp_path, engine=FakeEngine())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.no_color
        spec = app.workbench.model_pane.query_one("#model-spec", Input)
        spec.focus()
        await pilot.pause()
        x, y = spec.region.x + 1, spec.region.y
        assert app.screen.get_style_at(x, y).underline  # the focused field is marked by more than colour
        listing = app.workbench.model_pane.query_one("#bundled-models", OptionList)
        listing.focus()
        await pilot.pause()
        row = listing.region.y + 1 + (listing.highlighted or 0)  # inside the round border
        assert app.screen.get_style_at(listing.region.x + 3, row).underline
        assert not app.screen.get_style_at(listing.region.x + 3, row + 1).underline
        assert not app.screen.get_style_at(x, y).underline  # the field it left is plain again
        app.workbench.show_tab("probes")
        app.workbench.probe_pane.user_questions[:] = ["Who?", "Where?"]
        app.workbench.probe_pane.clear_answers()
        await pilot.pause()
        probes = app.workbench.probe_pane.query_one("#probe-list")
        probes.focus()
        await pilot.pause()
        assert app.screen.get_style_at(probes.region.x + 3, probes.region.y).reverse  # the highlighted question
        assert not app.screen.get_style_at(probes.region.x + 3, probes.region.y + 3).reverse


async def test_ctrl_c_copies_a_selection_and_otherwise_quits(tmp_path):
    from textual.widgets.input import Selection

    app = create_app(sessions_dir=tmp_path, engine=FakeEngine())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        spec = app.workbench.model_pane.query_one("#model-spec", Input)
        spec.focus()
        await pilot.pause()
        spec.selection = Selection(0, len(spec.value))
        await pilot.press("ctrl+c")
        await pilot.pause()
        assert app.clipboard == "tiny-authors" and app.is_running and not app._exit
        spec.selection = Selection.cursor(0)
        await pilot.press("ctrl+c")
        await pilot.pause()
        assert app._exit  # nothing selected: quit, as in any terminal program
