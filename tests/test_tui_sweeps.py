"""A sweep on the sessions screen (issue 10): one group, its trials under it, its Pareto front
starred and shown; built with the sweeps store API, without training (Pilot)."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable
from tui_fakes import TRIALS, FakeEngine, make_sessions, make_sweep, settle, wait_until, write_session
from tui_shown import shown

from tui_unlearn.config import RunConfig
from tui_unlearn.sessions import Session
from tui_unlearn.sweeps.report import SweepReport
from tui_unlearn.tui.app import create_app
from tui_unlearn.tui.screens.sessions import SessionsScreen
from tui_unlearn.tui.session_reader import SessionScanner
from tui_unlearn.tui.sweep_reader import SweepScanner, group_key

pytestmark = pytest.mark.anyio
SIZE = (100, 32)


@pytest.fixture
def anyio_backend():
    return "asyncio"


def table_keys(screen) -> list[str]:
    return [str(k.value) for k in screen.query_one("#sessions-table", DataTable).rows]


def cell(screen, key: str, column: str) -> str:
    return str(screen.query_one("#sessions-table", DataTable).get_cell(key, column))


async def open_sessions(pilot) -> SessionsScreen:
    await settle(pilot)
    await pilot.press("ctrl+o")
    screen = pilot.app.screen
    assert isinstance(screen, SessionsScreen)
    await wait_until(pilot, lambda: screen.loaded, what="the sessions to be read")
    return screen


def test_the_group_has_the_reports_front_and_best(tmp_path):
    folder = make_sweep(tmp_path)
    rows, sessions, _ = SessionScanner(tmp_path).scan()
    groups, trial_rows, _ = SweepScanner(tmp_path).scan(rows, sessions)
    report = SweepReport.of(folder)
    (group,) = groups
    assert group.key == group_key(folder) and group.method == "grad_diff" and group.mode == "grid"
    assert [t.session_id for t in group.front] == [t.session.id for t in report.front]
    assert {t.session_id for t in group.front} == {TRIALS[0][0], TRIALS[2][0]}
    assert group.best_key == f"{folder.name}/{TRIALS[2][0]}" == f"{folder.name}/{report.best.session.id}"
    assert group.front[1].objectives["forget_quality"] == 0.2 and group.front[1].point == {"lr": 1e-4}
    assert len(group.trial_keys) == 4 and set(trial_rows) == set(group.trial_keys) and group.complete == 3
    assert rows == {}  # the trials live in the sweep's folder, not the sessions folder's top level


def test_a_trial_that_finishes_moves_the_front(tmp_path):
    folder = make_sweep(tmp_path)
    scanner = SweepScanner(tmp_path)
    (group,) = scanner.scan({}, {})[0]
    assert scanner.scan({}, {})[0][0] is group  # nothing changed: the report is not read again
    last = Session(folder / TRIALS[3][0])
    last.update_summary(status="finished", forget_quality=0.5, model_utility=0.81)
    (moved,) = scanner.scan({}, {})[0]
    assert [t.session_id for t in moved.front] == [TRIALS[3][0]] and moved.best_key == f"{folder.name}/{TRIALS[3][0]}"


async def test_a_sweep_is_one_group_with_its_front_starred(tmp_path):
    ids = make_sessions(tmp_path)
    folder = make_sweep(tmp_path)
    key = group_key(folder)
    trial = {sid: f"{folder.name}/{sid}" for sid, *_ in TRIALS}
    app = create_app(sessions_dir=tmp_path, engine=FakeEngine())
    seen: list = []  # every message the app handles (run_test's public hook)
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        screen = await open_sessions(pilot)
        newest_first = [trial[t[0]] for t in reversed(TRIALS)]
        assert table_keys(screen) == [key, *newest_first, *reversed(ids)]
        assert [cell(screen, key, c) for c in ("sel", "algorithm", "status", "fa", "ra", "steps")] == [
            "▾",
            "grad_diff",
            "sweep",
            "4 trials",
            "front 2",
            "grid",
        ]
        starred = [t for t in newest_first if cell(screen, t, "status").startswith("★")]
        assert starred == [trial[TRIALS[2][0]], trial[TRIALS[0][0]]]
        assert cell(screen, trial[TRIALS[1][0]], "status") == "finished"
        assert cell(screen, trial[TRIALS[2][0]], "algorithm") == "└ lr=1e-4"
        assert "1 sweep" in str(screen.query_one("#sessions-title").render())

        panel = screen.query_one("#sweep-front")
        assert panel.display  # the cursor starts on the sweep's header
        text = str(panel.render())
        assert panel.border_title == f"Sweep {folder.name}"
        assert "grad_diff grid over lr · 4 trials, 3 complete · front of 2 by forget quality ↑, model utility ↑" in text
        assert f"★ {TRIALS[2][0]}  lr=1e-4  forget quality 0.200  model utility 0.780 (best)" in text
        assert f"★ {TRIALS[0][0]}  lr=1e-5  forget quality 0.001  model utility 0.800" in text
        assert TRIALS[1][0] not in text

        await pilot.press("space")  # on the header: the front goes to the comparison
        await pilot.pause()
        assert screen.selected == [trial[TRIALS[0][0]], trial[TRIALS[2][0]]]
        await wait_until(pilot, lambda: screen.query_one("#compare-table", DataTable).columns, what="the comparison")
        headers = [str(c.label) for c in screen.query_one("#compare-table", DataTable).columns.values()]
        assert "grad_diff lr=1e-5" in headers and "grad_diff lr=1e-4" in headers, headers  # not their start times
        await pilot.press("enter")  # fold the trials under the header
        await pilot.pause()
        assert table_keys(screen) == [key, *reversed(ids)] and cell(screen, key, "sel") == "▸"
        await pilot.press("down")
        await pilot.pause()
        assert not panel.display  # an ordinary session: no sweep panel
        await pilot.press("up", "enter")
        await pilot.pause()
        assert table_keys(screen)[:5] == [key, *newest_first]
        await pilot.press("down", "ctrl+r")  # a trial resumes with the sweep command, not from here
        await pilot.pause()
        assert any("same sweep command" in n.message for n in shown(seen))
        assert panel.display and app.is_running


async def test_a_sessions_folder_that_is_a_sweep_lists_each_trial_once(tmp_path):
    make_sweep(tmp_path, folder=tmp_path)  # `sweep --sweep-dir` pointed at the sessions folder itself
    write_session(tmp_path, "20250103-100000-npo-eeee", RunConfig(algorithm="npo").to_dict(), {"status": "finished"})
    app = create_app(sessions_dir=tmp_path, engine=FakeEngine())
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_sessions(pilot)
        keys = table_keys(screen)
        assert keys == [group_key(tmp_path), *(t[0] for t in reversed(TRIALS)), "20250103-100000-npo-eeee"]
        assert len(set(keys)) == len(keys)
        assert cell(screen, TRIALS[2][0], "status").startswith("★")


async def test_a_damaged_sweep_says_why_and_the_rest_still_shows(tmp_path):
    ids = make_sessions(tmp_path)
    folder = make_sweep(tmp_path)
    (folder / "sweep.json").write_text("{not json")
    app = create_app(sessions_dir=tmp_path, engine=FakeEngine())
    seen: list = []  # every message the app handles (run_test's public hook)
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        screen = await open_sessions(pilot)
        key = group_key(folder)
        assert table_keys(screen)[0] == key and table_keys(screen)[-3:] == list(reversed(ids))
        assert cell(screen, key, "status") == "sweep ?"
        assert "sweep.json cannot be read" in str(screen.query_one("#sweep-front").render())
        await pilot.press("space")
        await pilot.pause()
        assert screen.selected == [] and any("no finished trial" in n.message for n in shown(seen))


@pytest.mark.parametrize("own_folder", [True, False], ids=["sweep folder", "sessions folder is the sweep"])
def test_an_interrupted_attempt_stays_under_its_sweep_with_what_it_tried(tmp_path, own_folder):
    """A trial interrupted and run again (issue 20): before, its old session showed under the
    group without its swept values ("└ "), or, where the sessions folder is the sweep, as an
    ordinary session below everything."""
    folder = make_sweep(tmp_path, folder=None if own_folder else tmp_path)
    attempt = "20250102-085900-grad_diff-0000"  # older than the trial of the same lr that counts
    config = RunConfig(algorithm="grad_diff", steps=20, lr=TRIALS[2][1]).to_dict()
    write_session(folder, attempt, config, {"status": "interrupted", "steps": 3, "total_steps": 20})
    top = SessionScanner(tmp_path).scan()
    (group,), rows, _ = SweepScanner(tmp_path).scan(top[0], top[1])
    key = f"{folder.name}/{attempt}" if own_folder else attempt
    assert key in group.trial_keys and group.points[key] == {"lr": TRIALS[2][1]}
    assert len(group.trial_keys) == len(TRIALS) + 1 and key not in group.front_keys
