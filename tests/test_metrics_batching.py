"""Evaluation batch sizes: from the memory of the GPU or the machine, halved on running out."""

from __future__ import annotations

import pytest

from tui_unlearn.metrics.batching import CPU_ROWS, GPU_MAX_ROWS, EvalBatch, auto_batch_size, row_bytes, rows_that_fit

GIB = 1 << 30


def test_a_cpu_model_gets_the_cpu_batch(lively):
    model, _ = lively
    assert auto_batch_size(model, 512) == CPU_ROWS
    assert EvalBatch.for_model(model, 512).size == CPU_ROWS
    assert EvalBatch.for_model(model, 512, requested=5).size == 5


def test_a_cpu_batch_follows_the_machines_memory(lively, monkeypatch):
    """Issue 18: a fixed 64 rows on any CPU; now the GPU's rule with the machine's RAM."""
    import psutil

    model, _ = lively
    per_row = row_bytes(model, 512)
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    total = weights + 2 * 10 * per_row  # half of what the weights leave: 10 rows -> 8
    monkeypatch.setattr(psutil, "virtual_memory", lambda: type("Memory", (), {"total": total})())
    assert auto_batch_size(model, 512) == 8


def test_rows_follow_the_memory_left_by_the_weights():
    per_row = 100 << 20  # 100 MiB
    # 80 GiB device, 16 GiB of weights: half of 64 GiB is 327 rows -> 256 (the cap)
    assert rows_that_fit(80 * GIB, 16 * GIB, per_row) == GPU_MAX_ROWS
    # 24 GiB device, 16 GiB of weights: half of 8 GiB is 40 rows -> 32
    assert rows_that_fit(24 * GIB, 16 * GIB, per_row) == 32
    # weights that fill the device still leave one row to try (and halving to report)
    assert rows_that_fit(16 * GIB, 16 * GIB, per_row) == 1


def test_a_row_costs_its_logits_and_cache(lively):
    model, _ = lively
    config = model.config
    width = next(model.parameters()).element_size()
    cost = row_bytes(model, 100)
    assert cost >= 100 * config.vocab_size * width + 2 * config.num_hidden_layers * config.hidden_size * 100 * width
    assert row_bytes(model, 200) == 2 * cost  # linear in the sequence length


def _out_of_memory_above(limit, calls):
    def evaluate(rows):
        calls.append(rows)
        if rows > limit:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return f"ran {rows}"

    return evaluate


def test_out_of_memory_halves_the_batch_and_keeps_it_halved():
    said, calls = [], []
    batch = EvalBatch(64, said.append)
    assert batch.run(_out_of_memory_above(20, calls)) == "ran 16"
    assert calls == [64, 32, 16] and batch.size == 16
    assert said == [
        "evaluation ran out of memory; retrying with 32 sequences per batch",
        "evaluation ran out of memory; retrying with 16 sequences per batch",
    ]
    calls.clear()
    assert batch.run(_out_of_memory_above(20, calls)) == "ran 16" and calls == [16]  # the next one starts there


def test_other_errors_and_a_batch_of_one_are_not_retried():
    batch = EvalBatch(8)
    with pytest.raises(ValueError):
        batch.run(lambda rows: (_ for _ in ()).throw(ValueError("bad record")))
    assert batch.size == 8
    calls = []
    with pytest.raises(RuntimeError, match="out of memory"):
        EvalBatch(2).run(_out_of_memory_above(0, calls))
    assert calls == [2, 1]
