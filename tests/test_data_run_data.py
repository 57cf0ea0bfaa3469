"""A run's data: forget records kept out of the retain and holdout sets, samples fixed by the seed."""

from __future__ import annotations

import json

import pytest

from tui_unlearn import engine
from tui_unlearn.config import RunConfig
from tui_unlearn.data import run_data
from tui_unlearn.data.run_data import RunData, load_run_data, sample
from tui_unlearn.errors import DataError

FORGET = [
    {"question": "Where was Alia Brenn born?", "answer": "Alia Brenn was born in Port Liren."},
    {"question": "What does Odo Vask write?", "answer": "Odo Vask writes mystery novels."},
]
HOLDOUT = [
    {"question": "where was alia brenn born", "answer": "alia brenn was born in port liren"},  # normalised copy
    {"question": "What does Odo Vask write?", "answer": "Odo Vask writes mystery novels."},  # exact copy
    {"question": "When was Tor Ek born?", "answer": "Tor Ek was born in 1950."},
]
RETAIN = [
    {"question": "Who wrote The Fox?", "answer": "The Fox was written by Ana Bel."},
    {"question": "Where was Alia Brenn born?", "answer": "Alia Brenn was born in Port Liren."},
]


def write_jsonl(path, rows) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def config_for(tmp_path, holdout=HOLDOUT, retain=RETAIN) -> RunConfig:
    return RunConfig(
        forget=write_jsonl(tmp_path / "forget.jsonl", FORGET),
        retain=write_jsonl(tmp_path / "retain.jsonl", retain) if retain else None,
        holdout=write_jsonl(tmp_path / "holdout.jsonl", holdout) if holdout else None,
    )


def test_the_engine_uses_the_data_layers_run_data():
    assert engine.RunData is RunData and engine.load_run_data is load_run_data and engine.sample is sample


def test_forget_records_are_dropped_from_the_holdout_set_and_counted(tmp_path):
    data = load_run_data(config_for(tmp_path))
    assert [r["question"] for r in data.holdout] == ["When was Tor Ek born?"]
    assert [r["question"] for r in data.retain] == ["Who wrote The Fox?"]
    assert data.report == {
        "forget_format": "jsonl (question/answer)",
        "removed_from_retain": 1,
        "removed_from_holdout": 2,
        "forget": 2,
        "retain": 1,
        "holdout": 1,
    }
    assert all(isinstance(r, dict) for r in data.forget + data.retain + data.holdout)


def test_without_a_holdout_set_nothing_is_reported_for_it(tmp_path):
    data = load_run_data(config_for(tmp_path, holdout=None, retain=None))
    assert data.holdout == [] and data.retain == []
    assert "removed_from_holdout" not in data.report and "removed_from_retain" not in data.report


def test_a_holdout_set_made_only_of_forget_records_is_an_error(tmp_path):
    with pytest.raises(DataError) as excinfo:
        load_run_data(config_for(tmp_path, holdout=FORGET))
    assert "every record of the holdout set (2) is also in the forget set" in str(excinfo.value)


def test_the_bundled_splits_share_nothing(monkeypatch):
    data = load_run_data(RunConfig(forget="bundled:forget01", retain="bundled:retain99", holdout="bundled:holdout"))
    assert data.report["removed_from_retain"] == 0 and data.report["removed_from_holdout"] == 0
    assert data.report["forget"] > 0 and data.report["holdout"] > 0


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
