"""A pretrained model takes the field's learning rate when the person sets none; the methods'
own (much larger) rates stay for the models this project trains from scratch."""

import json

import pytest

from tui_unlearn.algorithms import all_algorithms
from tui_unlearn.config import (
    PRETRAINED_LORA_LR,
    PRETRAINED_LR,
    RUN_DEFAULTS,
    RunConfig,
    resolve,
    trained_from_scratch,
)


def _pretrained_folder(tmp_path):
    folder = tmp_path / "my-chat-model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "llama"}))
    return str(folder)


@pytest.mark.parametrize("method", list(all_algorithms()))
def test_bundled_model_keeps_each_methods_own_rate(method):
    config = resolve(RunConfig(algorithm=method, model="tiny-authors"))
    assert config.lr == all_algorithms()[method].run_defaults.get("lr", RUN_DEFAULTS["lr"])


@pytest.mark.parametrize("method", ["npo", "dpo", "rmu", "grad_diff"])
def test_pretrained_model_takes_the_fields_rate(tmp_path, method):
    model = _pretrained_folder(tmp_path)
    retain = tmp_path / "retain.txt"
    retain.write_text("kept fact one\nkept fact two\n")
    full = resolve(RunConfig(algorithm=method, model=model, forget="bundled:forget10", retain=str(retain)))
    lora = resolve(RunConfig(algorithm=method, model=model, forget="bundled:forget10", retain=str(retain), lora_r=8))
    assert (full.lr, lora.lr) == (PRETRAINED_LR, PRETRAINED_LORA_LR)
    # A rate the person gives always wins.
    assert resolve(RunConfig(algorithm=method, model=model, retain=str(retain), lr=3e-4)).lr == 3e-4


def test_what_counts_as_trained_from_scratch(tmp_path):
    folder = tmp_path / "built"
    folder.mkdir()
    assert not trained_from_scratch(str(folder))
    (folder / "build_info.json").write_text("{}")  # what build_tiny leaves beside its weights
    assert trained_from_scratch(str(folder))
    assert trained_from_scratch("tiny-authors-retain")
    for pretrained in ("HuggingFaceTB/SmolLM2-135M-Instruct", str(tmp_path / "model.Q4_1.gguf"), "\0bad"):
        assert not trained_from_scratch(pretrained)


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.mark.anyio
async def test_the_workbench_leaves_an_untouched_rate_to_the_run(tmp_path):
    # The Algorithm tab shows each method's own rate; left as it is, the run decides (so a
    # pretrained model chosen in the Model tab gets the field's rate, not the tiny models').
    from tui_fakes import FakeEngine, settle

    from tui_unlearn.tui.app import create_app
    from tui_unlearn.tui.widgets.algorithm_pane import ParamField

    app = create_app(sessions_dir=tmp_path, engine=FakeEngine())
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        pane = app.workbench.algorithm_pane
        assert pane.values()[2]["lr"] is None
        pane.query_one("#knob-lr", ParamField).set_raw("0.0003")
        await pilot.pause()
        assert pane.values()[2]["lr"] == 3e-4


@pytest.mark.anyio
async def test_the_workbench_leaves_gradient_checkpointing_to_the_run(tmp_path):
    # "auto" (unset) lets the run turn checkpointing on with LoRA; true/false force it.
    from textual.widgets import Select
    from tui_fakes import FakeEngine, settle

    from tui_unlearn.tui.app import create_app
    from tui_unlearn.tui.widgets.algorithm_pane import ParamField

    app = create_app(sessions_dir=tmp_path, engine=FakeEngine())
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        pane = app.workbench.algorithm_pane
        field = pane.query_one("#knob-gradient_checkpointing", ParamField)
        assert field.raw == "auto" and pane.values()[2]["gradient_checkpointing"] is None
        field.query_one(Select).value = "false"
        await pilot.pause()
        assert pane.values()[2]["gradient_checkpointing"] is False
        field.set_raw(None)
        await pilot.pause()
        assert field.raw == "auto" and pane.values()[2]["gradient_checkpointing"] is None
