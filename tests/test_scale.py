"""Scale features end to end on the micro model: several processes, LoRA, conflicts, out of memory."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from tui_unlearn.cli import app
from tui_unlearn.errors import ExitCode
from tui_unlearn.sessions import list_sessions

FORGET = [{"question": f"Where was author {i} born?", "answer": f"Author {i} was born in town {i}."} for i in range(8)]
RETAIN = [{"question": f"What does writer {i} write?", "answer": f"Writer {i} writes genre {i}."} for i in range(8)]


@pytest.fixture()
def files(tmp_path):
    forget, retain = tmp_path / "forget.jsonl", tmp_path / "retain.jsonl"
    forget.write_text("".join(json.dumps(r) + "\n" for r in FORGET))
    retain.write_text("".join(json.dumps(r) + "\n" for r in RETAIN))
    return forget, retain


def base_args(model, forget, retain, sessions, *extra):
    return [
        "--batch",
        "--sessions-dir",
        str(sessions),
        "--model",
        str(model),
        "--forget",
        str(forget),
        "--retain",
        str(retain),
        "--eval-every",
        "0",
        "--eval-samples",
        "4",
        "--max-new-tokens",
        "4",
        *extra,
    ]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _events(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


@pytest.mark.slow  # several seconds: run by .ci/run's second pass
def test_two_processes_equal_one_process_with_accumulation(micro_model_dir, files, tmp_path):
    """2 processes at batch 4 see the same examples per step as 1 process at batch 4 x 2 accumulation."""
    forget, retain = files
    common = base_args(
        micro_model_dir,
        forget,
        retain,
        tmp_path / "s",
        "--batch-size",
        "4",
        "--steps",
        "3",
        "--lr",
        "1e-2",
        "--jsonl",
        "--device",
        "cpu",
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    launched = subprocess.run(
        [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            "--multi_gpu",
            "--num_processes",
            "2",
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            "--main_process_port",
            str(_free_port()),
            "-m",
            "tui_unlearn",
            *common,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert launched.returncode == 0, launched.stderr[-2000:]
    single = subprocess.run(
        [sys.executable, "-m", "tui_unlearn", *common, "--grad-accum", "2"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert single.returncode == 0, single.stderr[-2000:]
    two, one = _events(launched.stdout), _events(single.stdout)
    assert [e["event"] for e in two].count("started") == 1  # only the main process writes stdout
    assert len(list_sessions(tmp_path / "s")) == 2  # one session per run, not per process
    started = next(e for e in two if e["event"] == "started")
    assert started["scale"]["processes"] == 2 and started["scale"]["effective_batch"] == 8
    steps_two = [e["losses"] for e in two if e["event"] == "step"]
    steps_one = [e["losses"] for e in one if e["event"] == "step"]
    assert len(steps_two) == len(steps_one) == 3
    for a, b in zip(steps_one, steps_two):
        for term in a:
            assert abs(a[term] - b[term]) <= 1e-4 * max(abs(a[term]), 1e-8), (term, a, b)
    after = [e["metrics"] for e in two if e["event"] == "evaluation" and e["phase"] == "after"]
    after_one = [e["metrics"] for e in one if e["event"] == "evaluation" and e["phase"] == "after"]
    assert len(after) == len(after_one) == 1
    # The all-reduce sums the two halves' gradients in another order than accumulation does, so
    # the weights agree to float rounding (about 1e-8 relative), not bit for bit.
    for split, metrics in after_one[0].items():
        assert after[0][split] == pytest.approx(metrics, rel=1e-6, abs=1e-9), split


def test_lora_npo_saves_a_merged_model_and_the_adapter(micro_model_dir, files, tmp_path):
    from transformers import AutoModelForCausalLM

    forget, retain = files
    result = CliRunner().invoke(
        app,
        base_args(
            micro_model_dir,
            forget,
            retain,
            tmp_path / "s",
            "--algorithm",
            "npo",
            "--steps",
            "3",
            "--lr",
            "1e-2",
            "--lora-r",
            "4",
            "--kl-retain",
            "0.5",
            "--save-model",
            "--save-adapter",
            "--json",
        ),
    )
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    session = list_sessions(tmp_path / "s")[0]
    summary = session.summary()
    assert summary["scale"]["lora_r"] == 4
    assert 0 < summary["scale"]["trainable_parameters"] < summary["scale"]["parameters"] / 2
    # The reference for NPO and KL-retain is the base with adapters off: no frozen copy is made.
    logs = [e.get("message", "") for e in session.events() if e.get("event") == "log"]
    assert not any("frozen copy" in line for line in logs)
    merged = AutoModelForCausalLM.from_pretrained(session.path / "model")  # plain transformers, no peft
    original = AutoModelForCausalLM.from_pretrained(micro_model_dir)
    changed = any(not (a == b).all() for a, b in zip(merged.state_dict().values(), original.state_dict().values()))
    assert changed and out["status"] == "finished"
    adapter = session.path / "adapter"
    assert (adapter / "adapter_model.safetensors").exists() and (adapter / "adapter_config.json").exists()
    assert not [p for p in adapter.iterdir() if p.suffix in (".bin", ".pt", ".pkl")]


@pytest.mark.parametrize(
    "extra, fragment",
    [
        (["--algorithm", "distill", "--student-layers", "1", "--lora-r", "4"], "cannot use LoRA"),
        (["--algorithm", "distill", "--student-layers", "1", "--l2-anchor", "0.1"], "cannot use --l2-anchor"),
        (["--save-adapter"], "--save-adapter saves LoRA adapters"),
        (["--mixed-precision", "fp16", "--device", "cpu"], "needs a CUDA GPU"),
    ],
)
def test_settings_that_cannot_work_together_fail_before_a_session(micro_model_dir, files, tmp_path, extra, fragment):
    forget, retain = files
    result = CliRunner().invoke(app, base_args(micro_model_dir, forget, retain, tmp_path / "s", *extra))
    assert result.exit_code == ExitCode.USAGE, result.stderr
    assert fragment in result.stderr and "Traceback" not in result.stderr
    assert not list_sessions(tmp_path / "s")


def test_out_of_memory_is_one_line_naming_the_knobs_and_keeps_the_session(
    micro_model_dir, files, tmp_path, monkeypatch
):
    from dataclasses import replace

    import torch

    from tui_unlearn import algorithms

    original = algorithms.get_algorithm("grad_diff")

    def out_of_memory(x):
        if x.step == 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return original.loss(x)

    monkeypatch.setitem(algorithms._REGISTRY, "grad_diff", replace(original, loss=out_of_memory))
    forget, retain = files
    result = CliRunner().invoke(app, base_args(micro_model_dir, forget, retain, tmp_path / "s", "--steps", "4"))
    assert result.exit_code == ExitCode.RUN_FAILED
    last = result.stderr.strip().splitlines()[-1]
    for knob in ("--lora-r", "--batch-size", "--grad-accum", "--gradient-checkpointing", "--mixed-precision bf16"):
        assert knob in last
    (session,) = list_sessions(tmp_path / "s")
    assert session.summary()["status"] == "failed" and "out of memory" in session.summary()["error"]


@pytest.mark.slow  # several seconds: run by .ci/run's second pass
def test_gradient_checkpointing_and_accumulation_train(micro_model_dir, files, tmp_path):
    forget, retain = files
    result = CliRunner().invoke(
        app,
        base_args(
            micro_model_dir,
            forget,
            retain,
            tmp_path / "s",
            "--steps",
            "2",
            "--grad-accum",
            "2",
            "--batch-size",
            "2",
            "--gradient-checkpointing",
            "--threads",
            "1",
            "--eval-batch-size",
            "3",
            "--json",
        ),
    )
    assert result.exit_code == 0, result.stderr
    summary = list_sessions(tmp_path / "s")[0].summary()
    assert summary["scale"]["effective_batch"] == 4 and summary["scale"]["threads"] == 1
    assert summary["scale"]["eval_batch_size"] == 3
    config = json.loads((list_sessions(tmp_path / "s")[0].path / "config.json").read_text())
    assert config["_resolved"]["effective_batch"] == 4


def test_gradient_checkpointing_engages_while_the_models_dropout_stays_off(
    micro_model_dir, files, tmp_path, monkeypatch
):
    """transformers checkpoints a layer only in training mode, and the engine trains in eval
    mode (no model dropout): without marking the layers, --gradient-checkpointing stored every
    activation anyway (SmolLM2 LoRA: 2.4 GB peak either way)."""
    from tui_unlearn.engine import checkpointing

    calls: list[bool] = []
    real_enable = checkpointing.enable

    def counting_enable(model, log, **kwargs):
        layers = real_enable(model, log, **kwargs)
        for layer in layers:
            inner = layer._gradient_checkpointing_func

            def counted(*args, inner=inner, layer=layer, **kwargs):
                # The layer is checkpointed in training mode; everything under it stays in eval mode.
                calls.append(layer.training and not any(m.training for m in layer.children()))
                return inner(*args, **kwargs)

            layer._gradient_checkpointing_func = counted
        return layers

    monkeypatch.setattr(checkpointing, "enable", counting_enable)
    forget, retain = files
    args = base_args(micro_model_dir, forget, retain, tmp_path / "s", "--steps", "2", "--gradient-checkpointing")
    result = CliRunner().invoke(app, [*args, "--threads", "1", "--eval-every", "1", "--json"])
    assert result.exit_code == 0, result.stderr
    layers = sum(1 for _ in calls)
    assert layers > 0 and all(calls), calls  # every step (after an evaluation too) went through checkpoints


def test_a_layer_that_reads_its_training_flag_is_not_checkpointed():
    import torch

    from tui_unlearn.engine import checkpointing

    class Plain(torch.nn.Module):
        def forward(self, x):
            return x

    class UsesFlag(torch.nn.Module):
        def forward(self, x):
            return torch.nn.functional.dropout(x, 0.1, training=self.training)

    assert not checkpointing._reads_training(Plain())
    assert checkpointing._reads_training(UsesFlag())


def test_checkpointing_a_lora_model_leaves_no_input_grad_hook_behind(micro_model_dir):
    """The embeddings' input-grad hook is registered once, so turning checkpointing off takes it
    away: a second registration (ours beside transformers') was left on the model for good, and
    a sweep's next trial had to load the model again."""
    import torch
    from transformers import AutoModelForCausalLM

    from tui_unlearn.engine import checkpointing
    from tui_unlearn.models import lora

    base = AutoModelForCausalLM.from_pretrained(micro_model_dir)
    model = lora.add_adapters(base, r=2, alpha=4, dropout=0.0, targets=[], seed=0)

    def hooks() -> int:
        return sum(len(m._forward_hooks) for m in base.modules())

    before = hooks()
    checkpointing.enable(model, lambda _: None, input_grads=True)
    assert hooks() == before + 1
    embeddings = base.get_input_embeddings()
    assert embeddings(torch.tensor([[1, 2, 3]])).requires_grad  # what a frozen base needs under checkpointing
    checkpointing.disable(model)
    assert hooks() == before
    assert not any(getattr(m, "gradient_checkpointing", False) for m in base.modules())
