"""The bundled fictitious-authors benchmark: shape, splits, determinism."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from tui_unlearn.data import benchmark
from tui_unlearn.data.benchmark import (
    SPLITS,
    benchmark_authors,
    benchmark_fingerprint,
    benchmark_records,
    default_retain_for,
)
from tui_unlearn.data.records import COLUMNS
from tui_unlearn.errors import ConfigError


def _authors(split: str) -> set[str]:
    return {r["group"] for r in benchmark_records(split)}


def test_at_least_100_authors_with_8_facts_each():
    everyone = benchmark_records("trained") + benchmark_records("holdout")
    per_author = Counter(r["group"] for r in everyone)
    assert len(per_author) >= 100
    assert min(per_author.values()) >= 8
    assert len({r["question"] for r in everyone}) == len(everyone)


def test_author_names_are_distinct_and_named_in_questions_and_answers():
    names = benchmark_authors("trained") + benchmark_authors("holdout")
    assert len(names) == len(set(names)) == benchmark.N_AUTHORS
    for r in benchmark_records("trained") + benchmark_records("holdout"):
        assert r["group"] in r["question"]
        assert r["group"] in r["answer"]


def test_records_follow_the_schema():
    for r in benchmark_records("forget10"):
        assert tuple(r) == COLUMNS
        assert r["kind"] == "qa"
        assert r["question"].endswith("?")
        assert r["answer"].endswith(".")


def test_paraphrase_and_perturbed_answers_differ_from_the_answer():
    for r in benchmark_records("trained") + benchmark_records("holdout"):
        assert r["paraphrased_answer"] and r["paraphrased_answer"] != r["answer"]
        wrong = r["perturbed_answers"]
        assert len(wrong) >= 3
        assert len(set(wrong)) == len(wrong)
        assert r["answer"] not in wrong
        assert r["paraphrased_answer"] not in wrong


def test_forget_splits_are_nested_and_retain_is_the_complement():
    trained, holdout = _authors("trained"), _authors("holdout")
    assert len(holdout) == 10 and len(trained) == 100
    assert not trained & holdout
    f01, f05, f10 = _authors("forget01"), _authors("forget05"), _authors("forget10")
    assert (len(f01), len(f05), len(f10)) == (1, 5, 10)
    assert f01 < f05 < f10 < trained
    for forget in ("forget01", "forget05", "forget10"):
        retain = _authors(default_retain_for(forget))
        assert not retain & _authors(forget)
        assert retain | _authors(forget) == trained


def test_default_retain_for():
    assert default_retain_for("forget10") == "retain90"
    assert default_retain_for("forget05") == "retain95"
    assert default_retain_for("forget01") == "retain99"
    with pytest.raises(ConfigError):
        default_retain_for("retain90")


def test_deterministic_and_seed_dependent():
    assert benchmark_records("forget05") == benchmark_records("forget05", seed=benchmark.DEFAULT_SEED)
    assert benchmark_fingerprint() == benchmark_fingerprint(benchmark.DEFAULT_SEED)
    other = benchmark.DEFAULT_SEED + 1
    assert benchmark_records("forget05", seed=other) != benchmark_records("forget05")
    assert benchmark_fingerprint(other) != benchmark_fingerprint()
    assert len(benchmark_fingerprint()) == 64


def test_callers_cannot_mutate_the_cache():
    records = benchmark_records("forget01")
    records[0]["answer"] = "changed"
    records[0]["perturbed_answers"].append("changed")
    fresh = benchmark_records("forget01")
    assert fresh[0]["answer"] != "changed"
    assert "changed" not in fresh[0]["perturbed_answers"]


def test_unknown_split_is_a_one_line_config_error():
    with pytest.raises(ConfigError) as info:
        benchmark_records("forget99")
    message = str(info.value)
    assert "\n" not in message
    assert "forget99" in message
    for name in SPLITS:
        assert name in message


def test_fast():
    start = time.perf_counter()
    for seed in (101, 102):
        for split in SPLITS:
            benchmark_records(split, seed=seed)
        benchmark_fingerprint(seed)
    assert time.perf_counter() - start < 0.5
