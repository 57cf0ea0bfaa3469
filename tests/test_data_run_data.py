"""A run's data: loaded from the config, samples fixed by the seed."""

from __future__ import annotations

from tui_unlearn import engine
from tui_unlearn.config import RunConfig
from tui_unlearn.data import run_data
from tui_unlearn.data.run_data import RunData, load_run_data, sample


def test_the_engine_uses_the_data_layers_run_data():
    assert engine.RunData is RunData and engine.load_run_data is load_run_data and engine.sample is sample


def test_stdin_text_is_the_forget_set(tmp_path):
    data = load_run_data(RunConfig(forget="-"), stdin_text="Q: a?\nA: b\n")
    assert [(r["question"], r["answer"]) for r in data.forget] == [("a?", "b")]
    assert data.report["forget_format"] == "pasted (Q:/A: pairs)"


def test_sample_is_fixed_by_the_seed_and_keeps_order():
    records = [{"i": i} for i in range(20)]
    assert sample(records, 0, 1) == records and sample(records, 50, 1) == records
    picked = sample(records, 5, 7)
    assert picked == sample(records, 5, 7) and len(picked) == 5
    assert [r["i"] for r in picked] == sorted(r["i"] for r in picked)
    assert run_data.sample(records, 5, 8) != picked or run_data.sample(records, 5, 9) != picked
