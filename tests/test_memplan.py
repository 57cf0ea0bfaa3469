"""The memory plan: exact counts from the meta device, parts that move the way the knobs do,
shards per device, what makes a run fit, and the ``plan`` command."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from typer.testing import CliRunner

from tui_unlearn.config import RunConfig, resolve
from tui_unlearn.errors import ConfigError
from tui_unlearn.memplan import GiB, Knobs, Shape, parse_memory, plan, read_shape, suggestions

SHAPE = Shape(
    parameters=1_000_000_000,
    trainable=1_000_000_000,
    student=0,
    lora=0,
    layers=16,
    hidden=2048,
    intermediate=5632,
    heads=16,
    kv_dim=512,
    query_dim=2048,
    vocab=32000,
    gated_mlp=True,
    eager_attention=False,
    largest_layer=60_000_000,
)
KNOBS = Knobs(
    device="cuda",
    weight_bytes=2,
    compute_bytes=2,
    batch_size=8,
    max_length=512,
    eval_tokens=560,
    eval_rows=32,
    grad_accum=1,
    gradient_checkpointing=False,
    lora_r=0,
    reference_model=False,
    reference_logprobs=True,
    streams=2,
    held_in_one_process=1,
    l2_anchor=False,
    host_snapshots=1,
    relearn=False,
)


def test_parameter_counts_are_exact_against_the_loaded_model(micro_model_dir):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(micro_model_dir)
    shape = read_shape(resolve(RunConfig(model=str(micro_model_dir), oracle="none")))
    assert shape.parameters == sum(p.numel() for p in model.parameters())
    assert shape.trainable == shape.parameters
    assert shape.layers == model.config.num_hidden_layers
    assert shape.largest_layer == sum(p.numel() for p in model.model.layers[0].parameters())


@pytest.mark.slow  # peft on a real model: about 3 s
def test_lora_and_rmu_count_what_the_run_trains(micro_model_dir):
    pytest.importorskip("peft")
    from transformers import AutoModelForCausalLM

    from tui_unlearn.models.lora import add_adapters

    config = resolve(RunConfig(model=str(micro_model_dir), oracle="none", lora_r=4))
    shape = read_shape(config)
    real = add_adapters(
        AutoModelForCausalLM.from_pretrained(micro_model_dir), r=4, alpha=None, dropout=0.0, targets=[], seed=0
    )
    assert shape.lora == shape.trainable == sum(p.numel() for p in real.parameters() if p.requires_grad)
    rmu = read_shape(resolve(RunConfig(model=str(micro_model_dir), oracle="none", algorithm="rmu")))
    assert 0 < rmu.trainable < rmu.parameters


def test_peak_grows_with_batch_and_length_and_falls_with_each_knob():
    def step(shape, knobs):
        return plan(shape, knobs).phases["train step"]

    base = step(SHAPE, KNOBS)
    assert step(SHAPE, replace(KNOBS, batch_size=16)) > base
    assert step(SHAPE, replace(KNOBS, max_length=1024)) > base
    assert step(SHAPE, replace(KNOBS, gradient_checkpointing=True)) < base
    assert step(SHAPE, replace(KNOBS, weight_bytes=4, compute_bytes=4)) > base
    assert step(SHAPE, replace(KNOBS, batch_size=4, grad_accum=2)) < base
    lora = replace(SHAPE, trainable=8_000_000, lora=8_000_000)
    assert step(lora, replace(KNOBS, lora_r=16)) < base
    assert plan(SHAPE, KNOBS).peak >= base


def test_a_reference_copy_costs_the_weights_but_not_under_lora():
    with_copy = plan(SHAPE, replace(KNOBS, reference_model=True))
    assert with_copy.parts["reference"] == SHAPE.parameters * 2
    lora = replace(SHAPE, trainable=8_000_000, lora=8_000_000)
    assert plan(lora, replace(KNOBS, reference_model=True, lora_r=16)).parts["reference"] == 0


def test_fsdp_and_zero3_shard_per_device_and_ddp_does_not():
    single, ddp = plan(SHAPE, KNOBS), plan(SHAPE, KNOBS, "ddp", 8)
    fsdp, zero3 = plan(SHAPE, KNOBS, "fsdp", 8), plan(SHAPE, KNOBS, "zero3", 8)
    assert ddp.parts["optimizer"] == single.parts["optimizer"]
    assert ddp.parts["gradients"] == 2 * single.parts["gradients"]  # DDP's buckets
    assert fsdp.parts["optimizer"] == single.parts["optimizer"] // 8
    assert fsdp.parts["gradients"] == single.parts["gradients"] // 8
    assert zero3.parts["optimizer"] == SHAPE.trainable * 12 // 8  # float32 master weights and moments
    one_pass = replace(KNOBS, streams=1)  # one process takes the forget gradient early; launchers cannot
    assert plan(SHAPE, one_pass, "fsdp", 8).phases["train step"] < plan(SHAPE, one_pass).phases["train step"]
    # Loaded whole on every device before sharding: the load phase is the same.
    assert fsdp.phases["load + evaluate before"] == single.phases["load + evaluate before"]


def test_suggestions_fit_and_are_empty_when_nothing_can():
    peak = plan(SHAPE, KNOBS).peak
    memory = int(peak * 0.8)
    lora_shape = replace(SHAPE, trainable=8_000_000, lora=8_000_000)
    found = suggestions(SHAPE, KNOBS, memory, 8, lambda r: lora_shape)
    assert found and all(change.peak <= memory for change in found)
    assert any("--lora-r" in change.flags for change in found)
    assert suggestions(SHAPE, KNOBS, 2**20, 8, lambda r: lora_shape) == []


def test_parse_memory():
    assert parse_memory("80GiB") == 80 * GiB
    assert parse_memory("24GB") == 24 * 10**9
    assert parse_memory("40960MiB") == 40 * GiB
    assert parse_memory("80") == 80 * GiB
    for bad in ("8OGiB", "", "-1GiB", "12 parsecs", "10KiB"):
        with pytest.raises(ConfigError, match="--gpu-memory"):
            parse_memory(bad)


@pytest.mark.slow  # three CLI runs reading configs: several seconds
def test_plan_command_text_json_and_a_bad_size():
    from tui_unlearn.cli import app

    runner = CliRunner()
    out = runner.invoke(app, ["plan", "--algorithm", "npo", "--gpu-memory", "1MiB", "--devices", "4"])
    assert out.exit_code == 0, out.output
    assert "ZeRO-3" in out.stdout and "fits 1 MiB" in out.stdout
    data = json.loads(runner.invoke(app, ["plan", "--json", "--batch-size", "2"]).stdout)
    assert set(data["plans"]) == {"single", "ddp", "fsdp", "zero3"}
    assert data["settings"]["batch_size"] == 2
    assert data["shape"]["parameters"] > 0 and data["plans"]["single"]["peak_bytes"] > 0
    bad = runner.invoke(app, ["plan", "--gpu-memory", "lots"])
    assert bad.exit_code == 2
    assert bad.stderr.strip().splitlines() == [
        "error: --gpu-memory 'lots' is not a size; give e.g. 80GiB, 24GB or 40960MiB"
    ]


def test_a_gguf_file_is_planned_from_its_metadata(micro_model_dir, tmp_path):
    from micro_gguf import write_micro_gguf
    from transformers import AutoModelForCausalLM

    gguf = tmp_path / "micro.gguf"
    write_micro_gguf(micro_model_dir, gguf)
    shape = read_shape(resolve(RunConfig(model=str(gguf), oracle="none")))
    assert shape.parameters == sum(
        p.numel() for p in AutoModelForCausalLM.from_pretrained(micro_model_dir).parameters()
    )


def test_a_model_that_is_not_there_is_one_line(tmp_path):
    from tui_unlearn.errors import ModelLoadError

    with pytest.raises(ModelLoadError, match="no config.json"):
        read_shape(resolve(RunConfig(model=str(tmp_path), oracle="none")))


def test_a_combination_is_offered_when_no_single_change_fits():
    lora_shape = replace(SHAPE, trainable=8_000_000, lora=8_000_000)
    fp32 = replace(KNOBS, weight_bytes=4, compute_bytes=4, batch_size=16)
    singles = [
        plan(lora_shape, replace(fp32, lora_r=16)).peak,
        plan(SHAPE, replace(fp32, weight_bytes=2, compute_bytes=2)).peak,
    ]
    both = plan(lora_shape, replace(fp32, lora_r=16, weight_bytes=2, compute_bytes=2, gradient_checkpointing=True)).peak
    memory = (both + min(singles)) // 2
    assert both < memory < min(singles)
    found = suggestions(SHAPE, fp32, memory, 8, lambda r: lora_shape)
    assert len(found) == 1 and found[0].peak <= memory
    assert found[0].flags.startswith("--dtype bfloat16 --gradient-checkpointing")  # two changes at least
