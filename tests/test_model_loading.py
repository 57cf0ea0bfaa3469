"""Loading models safely: no code from a model folder unless asked, no silently random weights."""

from __future__ import annotations

import json
import shutil

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
