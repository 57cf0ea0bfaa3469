"""The accelerate config files in examples/: each loads with accelerate's own loader, and the DDP
one really launches two processes (on CPU: torchrun underneath, gloo)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
EXPECTED = {  # file -> (distributed type, what its plugin section must say)
    "ddp.yaml": ("MULTI_GPU", {}),
    "fsdp.yaml": ("FSDP", {"fsdp_version": 2, "fsdp_auto_wrap_policy": "TRANSFORMER_BASED_WRAP"}),
    "deepspeed_zero2.yaml": ("DEEPSPEED", {"zero_stage": 2}),
    "deepspeed_zero3.yaml": ("DEEPSPEED", {"zero_stage": 3}),
}


def test_every_example_config_is_listed_here():
    assert sorted(p.name for p in EXAMPLES.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_configs_load_with_accelerates_loader(name):
    from accelerate.commands.config.config_args import (
        ClusterConfig,
        load_config_from_file,
    )

    config = load_config_from_file(str(EXAMPLES / name))
    kind, plugin = EXPECTED[name]
    assert isinstance(config, ClusterConfig)
    assert config.distributed_type.value == kind
    assert config.num_processes >= 2 and config.num_machines == 1
    section = config.fsdp_config if kind == "FSDP" else config.deepspeed_config
    assert {k: section.get(k) for k in plugin} == plugin
    # Accumulation must stay tui-unlearn's --grad-accum: a value here would override it.
    assert "gradient_accumulation_steps" not in section


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # several seconds: run by .ci/run's second pass
def test_the_ddp_example_launches_two_processes(micro_model_dir, tmp_path):
    forget, retain = tmp_path / "forget.jsonl", tmp_path / "retain.jsonl"
    for path, what in ((forget, "born in town"), (retain, "writes genre")):
        path.write_text(
            "".join(
                json.dumps({"question": f"Question {i}?", "answer": f"Author {i} {what} {i}."}) + "\n" for i in range(8)
            )
        )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    launched = subprocess.run(
        [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            "--config_file",
            str(EXAMPLES / "ddp.yaml"),
            "--num_processes",
            "2",
            "--main_process_port",
            str(_free_port()),
            "-m",
            "tui_unlearn",
            "--batch",
            "--jsonl",
            "--sessions-dir",
            str(tmp_path / "s"),
            "--model",
            str(micro_model_dir),
            "--forget",
            str(forget),
            "--retain",
            str(retain),
            "--algorithm",
            "npo",
            "--steps",
            "2",
            "--batch-size",
            "2",
            "--eval-every",
            "0",
            "--eval-samples",
            "2",
            "--max-new-tokens",
            "2",
            "--device",
            "cpu",
            "--mixed-precision",
            "no",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert launched.returncode == 0, launched.stderr[-2000:]
    events = [json.loads(line) for line in launched.stdout.splitlines() if line.strip()]
    started = next(e for e in events if e["event"] == "started")
    assert started["scale"]["processes"] == 2 and started["scale"]["effective_batch"] == 4
    assert [e["event"] for e in events].count("step") == 2  # only the main process prints
