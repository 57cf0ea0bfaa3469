"""Behaviour of the workbench, driven with Pilot (a fake engine unless a test says otherwise)."""

from __future__ import annotations

import json

import pytest
from textual.widgets import DataTable, Input, Select
from tui_fakes import FakeEngine, make_sessions, settle, wait_until
from tui_shown import shown

from tui_unlearn.config import RunConfig
from tui_unlearn.errors import RunFailedError
from tui_unlearn.sessions import Session
from tui_unlearn.tui.app import create_app
from tui_unlearn.tui.messages import StepWindow
from tui_unlearn.tui.screens.dialogs import ConfirmDialog
from tui_unlearn.tui.screens.sessions import SessionsScreen
from tui_unlearn.tui.widgets.algorithm_pane import ParamField

pytestmark = pytest.mark.anyio

SIZE = (100, 32)
JSONL = "\n".join(json.dumps({"question": f"What is fact {i}?", "answer": f"Fact {i} is true."}) for i in range(3))


@pytest.fixture
def anyio_backend():
    return "asyncio"


def status_text(app, role: str) -> str:
    return str(app.workbench.data_pane.editor(role).query_one(".source-status").render())


@pytest.mark.slow
async def test_pasted_data_is_parsed_and_counted(tmp_path):
    app = create_app(sessions_dir=tmp_path, engine=FakeEngine())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.workbench.show_tab("data")
        app.workbench.data_pane.editor("forget").set_text(JSONL)
        await settle(pilot)
        assert app.workbench.data_pane.editor("forget").count == 3
        assert "3 records" in status_text(app, "forget")
        assert "jsonl" in status_text(app, "forget")
        assert app.workbench.data_pane.editor("forget").query_one(DataTable).row_count == 3


@pytest.mark.slow  # one of the slowest default tests (3-10 s): .ci/run's second pass
async def test_typing_into_the_paste_box_parses_after_a_pause(tmp_path):
    app = create_app(sessions_dir=tmp_path, engine=FakeEngine())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.workbench.show_tab("data")
        editor = app.workbench.data_pane.editor("forget")
        editor.use_paste()
        await pilot.pause()
        await pilot.press(*"Q: Who is Ada?", "enter", *"A: A poet.")
        await wait_until(pilot, lambda: editor.count == 1, what="the typed record to be parsed")


async def test_a_bad_file_shows_an_inline_error_and_blocks_the_run(tmp_path):
    bad = tmp_path / "broken.json"
    bad.write_text("{not json", encoding="utf-8")
    engine = FakeEngine()
    app = create_app(sessions_dir=tmp_path / "sessions", engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.workbench.show_tab("data")
        editor = app.workbench.data_pane.editor("forget")
        editor.set_path(str(bad))
        await settle(pilot)
        assert editor.error is not None and "broken.json" in editor.error
        assert editor.query_one(".source-status").has_class("-error")
        assert "\n" not in editor.error
        # The loader's one-line message; the app keeps going and a run still starts only when asked.
        assert app.is_running


@pytest.mark.slow
async def test_a_run_passes_the_form_to_the_engine_and_ends_finished(tmp_path):
    engine = FakeEngine(steps=12)
    app = create_app(RunConfig(algorithm="npo"), sessions_dir=tmp_path, engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        pane = app.workbench.algorithm_pane
        beta = next(f for f in pane.query(ParamField).results(ParamField) if f.param.name == "beta")
        beta.set_raw("0.5")
        pane.query_one("#knob-steps", ParamField).set_raw("12")
        app.workbench.probe_pane.user_questions.append("Who is Ada?")
        await pilot.press("ctrl+r")
        await settle(pilot, include_run=True)
        config = engine.configs[0]
        assert (config.algorithm, config.hparams["beta"], config.steps) == ("npo", 0.5, 12)
        assert config.forget == "bundled:forget10" and config.retain == "bundled:retain90"
        assert config.probes == ["Who is Ada?"]
        run = app.workbench.run_pane
        assert run.status == "finished" and run.step == 12
        assert not app.running
        assert Session(tmp_path / engine.session_id).summary()["status"] == "finished"
        answers = app.workbench.probe_pane.answers
        assert any(p["split"] == "custom" and p["question"] == "Who is Ada?" for p in answers)


@pytest.mark.slow
async def test_every_loss_point_arrives_in_throttled_windows(tmp_path):
    windows = []

    def hook(message):
        if isinstance(message, StepWindow):
            windows.append(len(message.steps))

    engine = FakeEngine(steps=400, eval_every=0)
    app = create_app(sessions_dir=tmp_path, engine=engine)
    async with app.run_test(size=SIZE, message_hook=hook) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+r")
        await settle(pilot, include_run=True)
        history = app.workbench.run_pane.loss_history["loss"]
        assert [s for s, _ in history] == list(range(1, 401))
        assert sum(windows) == 400
        assert len(windows) < 100  # a few updates a second, not one per step


@pytest.mark.slow  # one of the slowest default tests (3-10 s): .ci/run's second pass
async def test_stop_takes_effect_and_leaves_the_session_interrupted(tmp_path):
    engine = FakeEngine(steps=50, pause_at=6)
    app = create_app(sessions_dir=tmp_path, engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+r")
        await wait_until(pilot, engine.paused.is_set, what="the run to reach step 6")
        assert app.running
        await pilot.press("ctrl+x")
        await settle(pilot, include_run=True)
        assert engine.emitted_steps == 5
        assert app.workbench.run_pane.status == "interrupted"
        assert Session(tmp_path / engine.session_id).summary()["status"] == "interrupted"


@pytest.mark.slow
async def test_a_failed_run_is_one_line_on_screen_and_a_failed_session(tmp_path):
    engine = FakeEngine(fail=RunFailedError("loss diverged at step 3; lower the learning rate"))
    app = create_app(sessions_dir=tmp_path, engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+r")
        await settle(pilot, include_run=True)
        run = app.workbench.run_pane
        assert run.status == "failed"
        log = "\n".join(run.log_lines)
        assert "failed: loss diverged at step 3; lower the learning rate" in log
        assert "Traceback" not in log
        assert Session(tmp_path / engine.session_id).summary()["status"] == "failed"
        assert app.is_running and not app.running


@pytest.mark.slow
async def test_an_unexpected_error_is_shown_short(tmp_path):
    engine = FakeEngine(fail_early=RuntimeError("boom\n  at line 2\n  at line 3"))
    app = create_app(sessions_dir=tmp_path, engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+r")
        await settle(pilot, include_run=True)
        log = app.workbench.run_pane.log_lines
        # Raised before the run had a session: it never started (no session marked failed).
        assert log[-1] == "could not start: RuntimeError: boom"
        assert app.workbench.run_pane.status == "not started"


@pytest.mark.slow
async def test_bad_input_is_refused_before_a_run_starts(tmp_path):
    engine = FakeEngine()
    app = create_app(sessions_dir=tmp_path, engine=engine)
    seen: list = []  # every message the app handles (run_test's public hook)
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await settle(pilot)
        steps = app.workbench.algorithm_pane.query_one("#knob-steps", ParamField)
        steps.set_raw("-3")
        await pilot.pause()
        assert steps.has_class("-invalid")
        assert "steps must be >= 1" in str(steps.query_one(".param-error").render())
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert engine.configs == [] and not app.running
        assert any("steps must be >= 1" in n.message for n in shown(seen))


async def test_the_cli_config_prefills_the_panes(tmp_path):
    config = RunConfig(
        model="tiny-authors-retain",
        forget="bundled:forget05",
        algorithm="simnpo",
        hparams={"beta": 3.5},
        steps=7,
        lr=1e-4,
        probes=["Who is Ada?"],
        device="cpu",
    )
    app = create_app(config, sessions_dir=tmp_path, engine=FakeEngine())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        bench = app.workbench
        assert bench.model_pane.spec() == "tiny-authors-retain" and bench.model_pane.device() == "cpu"
        assert bench.data_pane.editor("forget").query_one("#forget-split", Select).value == "forget05"
        assert bench.data_pane.editor("retain").query_one("#retain-split", Select).value == "retain95"
        assert bench.algorithm_pane.algorithm == "simnpo"
        algorithm, hparams, knobs = bench.algorithm_pane.values()
        assert (algorithm, hparams["beta"], knobs["steps"], knobs["lr"]) == ("simnpo", 3.5, 7, 1e-4)
        assert bench.probe_pane.questions() == ["Who is Ada?"]


@pytest.mark.slow  # one of the slowest default tests (3-10 s): .ci/run's second pass
async def test_sessions_are_listed_compared_and_deleted_after_confirming(tmp_path):
    ids = make_sessions(tmp_path)
    app = create_app(sessions_dir=tmp_path, engine=FakeEngine())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+o")
        screen = app.screen
        assert isinstance(screen, SessionsScreen)
        table = screen.query_one("#sessions-table", DataTable)
        await wait_until(pilot, lambda: table.row_count == 3, what="the sessions to be read")
        await pilot.press("space", "down", "space")
        assert screen.selected == [ids[2], ids[1]]  # newest first in the table
        compare = screen.query_one("#compare-table", DataTable)
        await wait_until(pilot, lambda: compare.row_count > 0, what="the comparison")
        assert len(compare.columns) == 4
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("n")
        await pilot.pause()
        assert (tmp_path / ids[1]).is_dir() and table.row_count == 3
        await pilot.press("d")
        await pilot.pause()
        await pilot.press("y")
        await wait_until(pilot, lambda: table.row_count == 2, what="the deletion to show")
        assert not (tmp_path / ids[1]).exists()
        assert screen.selected == [ids[2]]
        await pilot.press("escape")
        assert app.screen is app.workbench


@pytest.mark.slow
async def test_model_errors_are_shown_in_the_model_pane(tmp_path):
    app = create_app(sessions_dir=tmp_path, engine=FakeEngine())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        pane = app.workbench.model_pane
        pane.set_spec(str(tmp_path / "no-model-here"))
        await pilot.press("ctrl+l")
        await settle(pilot)
        assert pane.error is not None and "no-model-here" in pane.error and "\n" not in pane.error
        assert pane.info is None and app.is_running


def test_bindings_are_declared_as_data():
    from textual.binding import Binding

    app = create_app(engine=FakeEngine())
    # The public declarations the app's key map is merged from: its class's and Textual's own.
    declared = [b for cls in type(app).__mro__ for b in Binding.make_bindings(vars(cls).get("BINDINGS", []))]
    bindings = {b.id: b for b in declared if b.key in ("ctrl+r", "ctrl+x")}
    assert bindings["start-run"].show and bindings["stop-run"].show
    for binding in declared:
        if binding.action.startswith(("start", "stop", "open", "load", "request")):
            assert binding.id and binding.tooltip, binding
    assert "ctrl+s" not in {b.key for b in declared}


async def test_every_action_is_in_the_command_palette(tmp_path):
    app = create_app(sessions_dir=tmp_path, engine=FakeEngine())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        titles = {c.title for c in app.get_system_commands(app.screen)}
        for wanted in (
            "Start run",
            "Sessions",
            "Load model",
            "Browse for a model folder",
            "Load the forget set from a file",
            "Paste the forget set",
            "Add a probe question",
            "Go to Run",
        ):
            assert wanted in titles


MODEL_DIR = __import__("pathlib").Path(__file__).resolve().parents[1] / "models_cache" / "tiny-authors"
needs_tiny = pytest.mark.skipif(
    not (MODEL_DIR / "model.safetensors").is_file() or not any(MODEL_DIR.glob("tokenizer*")),
    reason="models_cache/tiny-authors is not built yet (python -m tui_unlearn.models.build_tiny)",
)
TINY_RUN = dict(
    eval_samples=4,
    probe_samples=2,
    max_new_tokens=8,
    batch_size=4,
    device="cpu",
    forget="bundled:forget01",
    eval_every=2,
)


@pytest.mark.slow  # several seconds: run by .ci/run's second pass
@needs_tiny
async def test_the_bundled_model_runs_to_the_end_and_the_session_is_listed(tmp_path):
    app = create_app(RunConfig(steps=3, **TINY_RUN), sessions_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+r")
        await settle(pilot, include_run=True, timeout=120)
        run = app.workbench.run_pane
        assert run.status == "finished", run.log_lines
        assert run.step == 3
        await pilot.press("ctrl+o")
        table = app.screen.query_one("#sessions-table", DataTable)
        await wait_until(pilot, lambda: table.row_count == 1, what="the sessions to be read")
        assert str(table.get_row_at(0)[5]) == "finished"


@needs_tiny
@pytest.mark.slow  # one of the slowest default tests (3-10 s): .ci/run's second pass
async def test_stopping_the_bundled_model_leaves_an_interrupted_session(tmp_path):
    app = create_app(RunConfig(steps=100_000, **TINY_RUN), sessions_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+r")
        run = app.workbench.run_pane
        await wait_until(pilot, lambda: run.step >= 1 or not app.running, timeout=120, what="the first step")
        await pilot.press("ctrl+x")
        await settle(pilot, include_run=True, timeout=60)
        assert run.status == "interrupted"
        assert run.step < 100_000
        (session,) = [p for p in tmp_path.iterdir() if not p.name.startswith(".")]
        assert Session(session).summary()["status"] == "interrupted"


@pytest.mark.slow  # one of the slowest default tests (3-10 s): .ci/run's second pass
async def test_pasted_data_is_saved_so_the_session_can_be_rerun(tmp_path):
    engine = FakeEngine(steps=3)
    app = create_app(sessions_dir=tmp_path, engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.workbench.data_pane.editor("forget").set_text(JSONL)
        await settle(pilot)
        await pilot.press("ctrl+r")
        await settle(pilot, include_run=True)
        forget = engine.configs[0].forget
        assert forget.endswith(".jsonl") and forget.startswith(str(tmp_path / ".pasted"))
        assert open(forget, encoding="utf-8").read() == JSONL


@pytest.mark.slow
async def test_pickers_dismiss_the_chosen_path(tmp_path):
    data = tmp_path / "forget.jsonl"
    data.write_text(JSONL, encoding="utf-8")
    model_dir = tmp_path / "my-model"
    model_dir.mkdir()
    app = create_app(sessions_dir=tmp_path / "sessions", engine=FakeEngine())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.action_browse_model()
        await pilot.pause()
        picker = app.screen
        picker.query_one("#picker-path", Input).value = str(model_dir)
        await pilot.press("ctrl+o")
        await pilot.pause()
        assert app.workbench.model_pane.spec() == str(model_dir)
        app.action_browse_data("forget")
        await pilot.pause()
        tree = app.screen.query_one("#picker-tree")
        assert {p.name for p in tree.filter_paths([data, tmp_path / "notes.bin", model_dir])} == {
            "forget.jsonl",
            "my-model",
        }
        app.screen.query_one("#picker-path", Input).value = str(data)
        await pilot.press("ctrl+o")
        await settle(pilot)
        editor = app.workbench.data_pane.editor("forget")
        assert editor.kind == "file" and editor.count == 3


@pytest.mark.slow  # one of the slowest default tests (3-10 s): .ci/run's second pass
async def test_quitting_during_a_run_asks_and_stops_it(tmp_path):
    engine = FakeEngine(steps=50, pause_at=3)
    app = create_app(sessions_dir=tmp_path, engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+r")
        await wait_until(pilot, engine.paused.is_set, what="the run to pause")
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("n")
        await pilot.pause()
        assert app.running and app.is_running
        await pilot.press("ctrl+q")
        await pilot.pause()
        await pilot.press("y")
    assert Session(tmp_path / engine.session_id).summary()["status"] == "interrupted"


@pytest.mark.slow  # one of the slowest default tests (3-10 s): .ci/run's second pass
async def test_custom_probes_can_be_added_and_removed(tmp_path):
    app = create_app(sessions_dir=tmp_path, engine=FakeEngine())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.action_add_probe()
        await pilot.pause()
        await pilot.press(*"Who is Ada?", "enter")
        pane = app.workbench.probe_pane
        assert pane.questions() == ["Who is Ada?"]
        pane.query_one("#probe-list").focus()
        await pilot.press("delete")
        assert pane.questions() == []


@needs_tiny
@pytest.mark.slow  # one of the slowest default tests (3-10 s): .ci/run's second pass
async def test_loading_the_bundled_model_shows_its_size(tmp_path):
    app = create_app(RunConfig(device="cpu"), sessions_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+l")
        await settle(pilot, timeout=60)
        pane = app.workbench.model_pane
        assert pane.loaded_spec == "tiny-authors" and pane.error is None
        assert pane.info["parameters"] > 0 and pane.info["device"] == "cpu"
        shown = app.export_screenshot().replace("&#160;", " ")
        assert "parameters" in shown and "MiB" in shown


async def test_switching_method_follows_its_default_learning_rate(tmp_path):
    app = create_app(sessions_dir=tmp_path, engine=FakeEngine())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        pane = app.workbench.algorithm_pane
        lr = pane.query_one("#knob-lr", ParamField)
        assert lr.raw == "0.0002"  # grad_diff declares lr 2e-4
        pane.choose("idk")  # declares lr 1e-3
        await pilot.pause()
        assert lr.raw == "0.001" and "default 0.001" in lr._help()
        assert [f.param.name for f in pane.query_one("#hparam-fields").fields()] == ["target", "retain_weight"]
        lr.set_raw("0.01")  # the user's own value stays when the method changes again
        pane.choose("npo")
        await pilot.pause()
        assert lr.raw == "0.01"
        algorithm, hparams, knobs = pane.values()
        assert algorithm == "npo" and set(hparams) == {"beta", "retain_weight"} and knobs["lr"] == 0.01
