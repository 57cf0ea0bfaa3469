"""Hostile models: damaged, quantized or mislabelled model folders and GGUF files, and
settings the model cannot satisfy. Each must fail before a session exists, in one line,
with the documented exit code."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from hostile import Case, check, make_world

from tui_unlearn.errors import ExitCode

BASE = "base"  # the micro model, copied into each row's folder: setups build their variants from it
BASE_GGUF = "base.gguf"


def variant(tmp: Path, name: str) -> Path:
    folder = tmp / name
    shutil.copytree(tmp / BASE, folder)
    return folder


def int8_weights(tmp: Path) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    folder = variant(tmp, "int8")
    weights = load_file(folder / "model.safetensors")
    save_file({k: (v * 100).to(torch.int8) for k, v in weights.items()}, folder / "model.safetensors")


def other_sizes(tmp: Path) -> None:
    folder = variant(tmp, "sizes")
    config = json.loads((folder / "config.json").read_text())
    config["intermediate_size"] = 48
    (folder / "config.json").write_text(json.dumps(config))


def failing_template(tmp: Path) -> None:
    folder = variant(tmp, "template")
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["chat_template"] = "{{ raise_exception('this template refuses every conversation') }}"
    (folder / "tokenizer_config.json").write_text(json.dumps(config))


def dangling_link(tmp: Path) -> None:
    folder = variant(tmp, "dangling")
    (folder / "model.safetensors").unlink()
    os.symlink(tmp / "blobs" / "gone", folder / "model.safetensors")


def missing_shard(tmp: Path) -> None:
    folder = variant(tmp, "sharded")
    weights = folder / "model.safetensors"
    weights.rename(folder / "model-00001-of-00002.safetensors")
    index = {"metadata": {}, "weight_map": {"lm_head.weight": "model-00002-of-00002.safetensors"}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))


def folder_for_weights(tmp: Path) -> None:
    folder = variant(tmp, "folderweights")
    (folder / "model.safetensors").unlink()
    (folder / "model.safetensors").mkdir()


def truncated(tmp: Path) -> None:
    folder = variant(tmp, "truncated")
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])


def unsupported_gguf(tmp: Path) -> None:
    from micro_gguf import write_micro_gguf

    write_micro_gguf(tmp / BASE, tmp / "rwkv.gguf", architecture="rwkv6")


def mislabelled_gguf(tmp: Path) -> None:
    from micro_gguf import write_micro_gguf

    write_micro_gguf(tmp / BASE, tmp / "mamba.gguf", architecture="mamba")  # Llama tensors, Mamba metadata


def not_gguf(tmp: Path) -> None:
    (tmp / "notes.gguf").write_text("these are notes, not a model\n")


def two_ggufs(tmp: Path) -> None:
    folder = tmp / "ggufs"
    folder.mkdir()
    shutil.copy(tmp / BASE_GGUF, folder / "a.Q8_0.gguf")
    shutil.copy(tmp / BASE_GGUF, folder / "b.Q8_0.gguf")


def plain_file(tmp: Path) -> None:
    (tmp / "model.bin").write_bytes(b"\0" * 64)


RUN = ("--batch", "--forget", "{forget}", "--retain", "{retain}", "--sessions-dir", "{sessions}", "--steps", "1")
LOAD = ExitCode.LOAD
CASES = [
    Case("int8-weights", (*RUN, "--model", "{tmp}/int8"), LOAD, "are int8 (", int8_weights),
    Case(
        "shape-mismatch-names-tensors",
        (*RUN, "--model", "{tmp}/sizes"),
        LOAD,
        "wrong shape (e.g. model.layers.0.mlp.down_proj.weight: (32, 64) in the checkpoint, (32, 48)",
        other_sizes,
    ),
    Case("failing-chat-template", (*RUN, "--model", "{tmp}/template"), LOAD, "TemplateError", failing_template),
    Case("dangling-weights-link", (*RUN, "--model", "{tmp}/dangling"), LOAD, "which does not exist", dangling_link),
    Case(
        "missing-shard",
        (*RUN, "--model", "{tmp}/sharded"),
        LOAD,
        "model-00002-of-00002.safetensors is missing",
        missing_shard,
    ),
    Case(
        "weights-are-a-folder",
        (*RUN, "--model", "{tmp}/folderweights"),
        LOAD,
        "is a folder, not a weights file",
        folder_for_weights,
    ),
    Case("truncated-weights", (*RUN, "--model", "{tmp}/truncated"), LOAD, "is not a valid safetensors file", truncated),
    Case(
        "student-layers-beyond-model",
        (*RUN, "--model", "{model}", "--algorithm", "distill", "--student-layers", "99"),
        ExitCode.USAGE,
        "--student-layers 99 is more than the model's 2 decoder layers",
    ),
    Case(
        "gguf-unsupported-architecture",
        (*RUN, "--model", "{tmp}/rwkv.gguf"),
        LOAD,
        "holds a 'rwkv6' model",
        unsupported_gguf,
    ),
    Case(
        "gguf-tensors-do-not-fit-its-architecture",
        (*RUN, "--model", "{tmp}/mamba.gguf"),
        LOAD,
        "do not match the mamba architecture its metadata names",
        mislabelled_gguf,
    ),
    Case("gguf-not-a-gguf", (*RUN, "--model", "{tmp}/notes.gguf"), LOAD, "is not a valid GGUF file", not_gguf),
    Case("gguf-two-in-a-folder", (*RUN, "--model", "{tmp}/ggufs"), LOAD, "holds 2 GGUF files", two_ggufs),
    Case(
        "gguf-unsupported-in-eval",
        ("eval", "--model", "{tmp}/rwkv.gguf", "--forget", "{forget}", "--sessions-dir", "{sessions}"),
        LOAD,
        "holds a 'rwkv6' model",
        unsupported_gguf,
    ),
    Case(
        "gguf-unsupported-as-oracle",
        (*RUN, "--model", "{model}", "--oracle", "{tmp}/rwkv.gguf"),
        LOAD,
        "holds a 'rwkv6' model",
        unsupported_gguf,
    ),
    Case(
        "gguf-unsupported-in-sweep",
        ("sweep", "--model", "{tmp}/rwkv.gguf", "--grid", "lr=0.001,0.002", "--forget", "{forget}")
        + ("--retain", "{retain}", "--steps", "1", "--sessions-dir", "{sessions}"),
        LOAD,
        "holds a 'rwkv6' model",
        unsupported_gguf,
    ),
    Case("a-file-not-a-model", (*RUN, "--model", "{tmp}/model.bin"), LOAD, "or a .gguf file", plain_file),
]


@pytest.fixture(scope="module")
def base_gguf(micro_model_dir, tmp_path_factory):
    pytest.importorskip("gguf")
    from micro_gguf import write_micro_gguf

    return write_micro_gguf(micro_model_dir, tmp_path_factory.mktemp("gguf") / BASE_GGUF)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_hostile_models(case, tmp_path, micro_model_dir, base_gguf, monkeypatch):
    monkeypatch.setenv("TUI_UNLEARN_MODELS_CACHE", str(tmp_path / "models-cache"))  # never the user's cache
    shutil.copytree(micro_model_dir, tmp_path / BASE)
    shutil.copy(base_gguf, tmp_path / BASE_GGUF)
    check(case, make_world(tmp_path, micro_model_dir))
