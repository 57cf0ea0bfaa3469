"""Loading models safely: no code from a model folder unless asked, no silently random weights."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tui_unlearn.cli import app
from tui_unlearn.errors import ExitCode, ModelLoadError
from tui_unlearn.models.loading import load_model

MODELING = """
from pathlib import Path
Path(__file__).with_name("CODE_RAN").write_text("the folder's code ran")
from transformers import LlamaForCausalLM as MyModel
"""
CONFIGURATION = """
from pathlib import Path
Path(__file__).with_name("CODE_RAN").write_text("the folder's code ran")
from transformers import LlamaConfig
class MyConfig(LlamaConfig):
    model_type = "mycustom"
"""


def _variant(src, dst, **changes):
    shutil.copytree(src, dst)
    config = json.loads((dst / "config.json").read_text())
    config.update(changes)
    (dst / "config.json").write_text(json.dumps(config))
    return dst


@pytest.fixture()
def custom_code_model(micro_model_dir, tmp_path):
    folder = _variant(
        micro_model_dir,
        tmp_path / "custom",
        model_type="mycustom",
        auto_map={"AutoConfig": "configuration_my.MyConfig", "AutoModelForCausalLM": "modeling_my.MyModel"},
    )
    (folder / "modeling_my.py").write_text(MODELING)
    (folder / "configuration_my.py").write_text(CONFIGURATION)
    return folder


def test_a_folder_with_its_own_code_is_refused_without_running_it(custom_code_model):
    with pytest.raises(ModelLoadError) as info:
        load_model(str(custom_code_model))
    text = str(info.value)
    assert "--trust-remote-code" in text and "only for a model you trust" in text and "\n" not in text
    assert not (custom_code_model / "CODE_RAN").exists()


def test_a_config_string_false_never_turns_remote_code_on(custom_code_model, tmp_path, files_for_cli):
    forget, retain = files_for_cli
    config = tmp_path / "run.json"
    config.write_text(json.dumps({"trust_remote_code": "false", "model": str(custom_code_model)}))
    result = CliRunner().invoke(
        app,
        [
            "--batch",
            "--config",
            str(config),
            "--forget",
            str(forget),
            "--retain",
            str(retain),
            "--sessions-dir",
            str(tmp_path / "s"),
        ],
    )
    assert result.exit_code == ExitCode.USAGE
    assert "trust_remote_code must be true or false" in result.stderr
    assert not (custom_code_model / "CODE_RAN").exists()
    assert not (tmp_path / "s").exists() or not any((tmp_path / "s").iterdir())


def test_weights_that_do_not_fit_the_config_are_refused(micro_model_dir, tmp_path, files_for_cli):
    folder = _variant(micro_model_dir, tmp_path / "gpt2ish", model_type="gpt2", architectures=["GPT2LMHeadModel"])
    with pytest.raises(ModelLoadError) as info:
        load_model(str(folder))
    assert "do not match its config.json" in str(info.value) and "tensors the architecture needs are missing" in str(
        info.value
    )
    forget, retain = files_for_cli
    result = CliRunner().invoke(
        app,
        [
            "--batch",
            "--model",
            str(folder),
            "--forget",
            str(forget),
            "--retain",
            str(retain),
            "--sessions-dir",
            str(tmp_path / "s"),
        ],
    )
    assert result.exit_code == ExitCode.LOAD and "do not match" in result.stderr and "Traceback" not in result.stderr


def test_a_matching_checkpoint_loads(micro_model_dir):
    loaded = load_model(str(micro_model_dir))
    assert loaded.info()["architecture"] == "LlamaForCausalLM"


@pytest.fixture()
def files_for_cli(tmp_path):
    forget = tmp_path / "forget.txt"
    forget.write_text("Q: Where was Alia Brenn born?\nA: In Port Liren.\n")
    retain = tmp_path / "retain.txt"
    retain.write_text("Q: Who wrote The Fox?\nA: Ana Bel.\n")
    return forget, retain


# ---- GGUF files ----


@pytest.fixture(scope="module")
def micro_gguf(micro_model_dir, tmp_path_factory):
    """The micro Llama written as a Q8_0 GGUF file, with a chat template."""
    pytest.importorskip("gguf")
    from micro_gguf import write_micro_gguf

    template = "{% for m in messages %}<s>{{ m.role }}: {{ m.content }}\n{% endfor %}"
    return write_micro_gguf(
        micro_model_dir, tmp_path_factory.mktemp("gguf") / "micro.Q8_0.gguf", chat_template=template
    )


def _logits(model, tokenizer, text="Q: Where was Alia Brenn born?"):
    import torch

    ids = tokenizer(text, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        return model(ids).logits


def test_a_gguf_file_loads_dequantized_with_its_dtype_stated_and_is_cached(micro_gguf, micro_model_dir, tmp_path):
    heard: list[str] = []
    loaded = load_model(str(micro_gguf), device="cpu", models_cache=str(tmp_path / "cache"), log=heard.append)
    info = loaded.info()
    assert info["source"] == "GGUF Q8_0, dequantized to float32" and info["dtype"] == "float32"
    assert info["architecture"] == "LlamaForCausalLM" and info["chat_template"] and info["path"] == str(micro_gguf)
    assert any("dequantizing GGUF Q8_0 (llama) to float32" in line for line in heard)
    original = load_model(str(micro_model_dir), device="cpu")
    gap = (_logits(loaded.model, original.tokenizer) - _logits(original.model, original.tokenizer)).abs().max()
    assert gap < 0.05  # Q8_0's rounding, not another model
    cached = list((tmp_path / "cache" / "gguf").iterdir())
    assert len(cached) == 1 and (cached[0] / "model.safetensors").is_file()

    heard.clear()
    again = load_model(str(micro_gguf), device="cpu", models_cache=str(tmp_path / "cache"), log=heard.append)
    assert heard and "earlier" in heard[0] and "dequantizing" not in " ".join(heard)
    assert _logits(again.model, original.tokenizer).equal(_logits(loaded.model, original.tokenizer))


def test_a_changed_gguf_file_is_dequantized_again(micro_gguf, tmp_path):
    import os

    from tui_unlearn.models.gguf import cache_key

    copy = tmp_path / "m.gguf"
    shutil.copy(micro_gguf, copy)
    first = cache_key(copy)
    st = copy.stat()
    os.utime(copy, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert cache_key(copy) != first
    data = bytearray(copy.read_bytes())
    data[-1] ^= 0xFF
    copy.write_bytes(bytes(data))
    os.utime(copy, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size and mtime, other bytes
    assert cache_key(copy) != first


def test_a_folder_holding_one_gguf_loads_and_two_are_refused(micro_gguf, tmp_path):
    folder = tmp_path / "only"
    folder.mkdir()
    shutil.copy(micro_gguf, folder / "model.gguf")
    loaded = load_model(str(folder), device="cpu", models_cache=str(tmp_path / "cache"))
    assert loaded.path == folder / "model.gguf" and loaded.source
    shutil.copy(micro_gguf, folder / "other.gguf")
    with pytest.raises(ModelLoadError, match="holds 2 GGUF files .*give the one to load"):
        load_model(str(folder), device="cpu", models_cache=str(tmp_path / "cache"))


def test_an_unwritable_models_cache_still_loads_the_gguf(micro_gguf, tmp_path):
    blocked = tmp_path / "cache"
    blocked.write_text("a file where the cache folder would be")
    heard: list[str] = []
    loaded = load_model(str(micro_gguf), device="cpu", models_cache=str(blocked), log=heard.append)
    assert loaded.source and any("using them unsaved" in line for line in heard)


def test_a_gguf_run_saves_a_folder_plain_transformers_loads(micro_gguf, tmp_path, files_for_cli):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    forget, retain = files_for_cli
    args = ["--batch", "--json", "--model", str(micro_gguf), "--forget", str(forget), "--retain", str(retain)]
    args += [
        "--steps",
        "1",
        "--save-model",
        "--sessions-dir",
        str(tmp_path / "s"),
        "--models-cache",
        str(tmp_path / "c"),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.stderr
    assert "dequantizing GGUF Q8_0 (llama) to float32" in result.stderr
    saved = Path(json.loads(result.stdout)["session_path"]) / "model"
    assert "quantization_config" not in json.loads((saved / "config.json").read_text())
    model = AutoModelForCausalLM.from_pretrained(saved)
    tokenizer = AutoTokenizer.from_pretrained(saved)
    assert type(model).__name__ == "LlamaForCausalLM" and tokenizer.chat_template


def test_student_layers_beyond_the_model_are_refused_before_a_session(micro_model_dir, micro_gguf):
    from tui_unlearn.algorithms.distill import smaller_student
    from tui_unlearn.errors import ConfigError
    from tui_unlearn.models.architecture import declared_layer_count

    assert declared_layer_count(str(micro_model_dir)) == 2
    assert declared_layer_count(str(micro_gguf)) == 2
    assert declared_layer_count("owner/not-downloaded") is None
    # A hub model's count is first known at run time: the student builder refuses too.
    model = load_model(str(micro_model_dir), device="cpu").model
    with pytest.raises(ConfigError, match="--student-layers 3 is more than the model's 2 decoder layers"):
        smaller_student(model, 3)
    assert len(smaller_student(model, 1).model.layers) == 1


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_model_pane_loads_a_gguf_file_and_says_it_was_dequantized(micro_gguf, tmp_path, anyio_backend):
    from tui_fakes import settle

    from tui_unlearn.config import RunConfig
    from tui_unlearn.tui.app import create_app

    config = RunConfig(device="cpu", model=str(micro_gguf), models_cache=str(tmp_path / "cache"))
    app = create_app(config, sessions_dir=tmp_path / "sessions")
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+l")
        await settle(pilot, timeout=60)
        pane = app.workbench.model_pane
        assert pane.error is None and pane.loaded_spec == str(micro_gguf)
        assert pane.info["source"] == "GGUF Q8_0, dequantized to float32"
        assert "dequantized to float32" in app.export_screenshot().replace("&#160;", " ")


def test_a_weights_file_that_cannot_be_read_names_the_reason(micro_model_dir, tmp_path, monkeypatch):
    import pathlib

    folder = tmp_path / "locked"
    shutil.copytree(micro_model_dir, folder)
    real_open = pathlib.Path.open

    def refuse(self, *args, **kwargs):  # chmod 000 cannot stop root, which the tests may run as
        if self.name == "model.safetensors":
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "open", refuse)
    with pytest.raises(ModelLoadError) as info:
        load_model(str(folder), device="cpu")
    assert str(info.value) == f"cannot read {folder / 'model.safetensors'}: Permission denied"


def test_a_gguf_without_the_gguf_package_says_what_to_install(micro_gguf, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "gguf", None)  # what an install without the extra sees
    with pytest.raises(ModelLoadError, match=r"needs the gguf package: pip install 'tui-unlearn\[gguf\]'"):
        load_model(str(micro_gguf), device="cpu", models_cache=str(tmp_path / "cache"))
