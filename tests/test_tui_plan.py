"""The Algorithm tab's Scale group shows the memory plan of the current choices."""

from __future__ import annotations

import pytest
from textual.widgets import Input, Static
from tui_fakes import FakeEngine, settle, wait_until

from tui_unlearn.tui.app import create_app
from tui_unlearn.tui.widgets.algorithm_pane import PLAN_HINT, ParamField

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.mark.slow  # the plan imports torch and transformers in its worker: seconds
async def test_the_scale_group_plans_the_choices_after_a_change(tmp_path):
    app = create_app(sessions_dir=tmp_path, engine=FakeEngine())
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(pilot)
        pane = app.workbench.algorithm_pane
        line = pane.query_one("#scale-plan", Static)
        assert str(line.render()) == PLAN_HINT  # nothing planned (nor torch imported) at start-up

        def shown() -> str:
            return str(line.render())

        batch = pane.query_one("#knob-batch_size", ParamField)
        batch.query_one(Input).focus()
        batch.set_raw("2")
        pane.query_one("#algorithm-list").focus()  # leaving the field plans the choices
        await wait_until(pilot, lambda: shown().startswith("plan:"), timeout=120, what="the plan")
        small = shown()
        assert "peak on one" in small and "parameters trained" in small

        batch.query_one(Input).focus()
        batch.set_raw("64")
        pane.query_one("#algorithm-list").focus()
        await wait_until(pilot, lambda: shown() != small, timeout=60, what="a new plan")
        assert shown().startswith("plan:")

        batch.query_one(Input).focus()
        batch.set_raw("-1")
        pane.query_one("#algorithm-list").focus()
        await pilot.pause()
        assert shown().startswith("memory plan:") and "batch_size" in shown()
