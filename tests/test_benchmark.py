"""The bundled fictitious-authors benchmark: shape, splits, determinism, utility splits."""

from __future__ import annotations

import hashlib
import json
from collections import Counter

import pytest

from tui_unlearn.data import benchmark
from tui_unlearn.data.benchmark import (
    AUTHOR_SPLITS,
    SPLITS,
    UTILITY_SPLITS,
    _facts,
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


# --- the utility splits (TOFU's real_authors / world_facts) ------------------------------------
# sha256 of every author split's records at seeds 0 and 1, as they were before the utility
# splits existed: drawing those from the authors' RNG stream would change every author.
AUTHOR_SPLITS_SHA256 = "6484df9f3d67fffac1d29aeb4d7691e49c9f099fa92e3ecff61572f3728de4b0"


def test_author_splits_are_unchanged_by_the_utility_splits():
    # Over the fields records had then (paraphrased_question came later, empty for the benchmark).
    payload = [[_facts(r) for r in benchmark_records(split, seed)] for seed in (0, 1) for split in AUTHOR_SPLITS]
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode("utf-8")
    assert hashlib.sha256(blob).hexdigest() == AUTHOR_SPLITS_SHA256


def test_utility_split_sizes_and_shape():
    real, world = benchmark_records("real_authors"), benchmark_records("world_facts")
    assert len(real) == 30 and len({r["group"] for r in real}) == benchmark.N_FAMOUS_AUTHORS == 20
    assert len(world) == 30 and len({r["group"] for r in world}) == benchmark.N_WORLD_COUNTRIES == 10
    for r in real + world:
        assert tuple(r) == COLUMNS and r["kind"] == "qa"
        assert r["question"].endswith("?") and r["answer"]
        assert r["paraphrased_answer"] == ""  # as in TOFU: the truth ratio's base is the answer
    assert len({r["question"] for r in real + world}) == 60
    for r in real:
        assert r["answer"] == r["group"]  # every question asks for a famous author


def test_utility_perturbed_answers_are_other_answers_of_the_same_pool():
    for split in UTILITY_SPLITS:
        records = benchmark_records(split)
        for r in records:
            wrong = r["perturbed_answers"]
            assert len(wrong) == benchmark.N_UTILITY_PERTURBED >= 3
            assert len(set(wrong)) == len(wrong) and r["answer"] not in wrong
            # Same pool: each wrong option is the true answer of a question of the same kind
            # (same first word and same last word of the question: "capital"/"river"/...).
            kind = [x["answer"] for x in records if _question_kind(x) == _question_kind(r)]
            assert set(wrong) <= set(kind)


def _question_kind(record) -> str:
    words = record["question"].lower().replace("?", "").split()
    for kind in ("capital", "river", "currency", "money"):
        if kind in words:
            return "currency" if kind == "money" else kind
    return "author"


def test_utility_splits_share_nothing_with_the_benchmark_authors():
    authors = benchmark_records("trained") + benchmark_records("holdout")
    names = {r["group"] for r in authors}
    name_words = {w for n in names for w in n.split()}
    famous = {r["group"] for r in benchmark_records("real_authors")}
    assert not famous & names
    assert not {w for n in famous for w in n.split()} & name_words
    author_text = " ".join(r["answer"] for r in authors)
    for r in benchmark_records("real_authors") + benchmark_records("world_facts"):
        assert r["answer"] not in author_text
        for wrong in r["perturbed_answers"]:
            assert wrong not in author_text
    # world_facts are about the benchmark's own (fictitious) countries
    countries = {r["answer"].split(" is from ")[1].rstrip(".") for r in authors if " is from " in r["answer"]}
    assert {r["group"] for r in benchmark_records("world_facts")} <= countries


def test_utility_splits_are_deterministic_and_seed_dependent():
    for split in UTILITY_SPLITS:
        assert benchmark_records(split) == benchmark_records(split, seed=benchmark.DEFAULT_SEED)
        assert benchmark_records(split, seed=7) != benchmark_records(split)


def test_fingerprint_covers_the_utility_splits(monkeypatch):
    before = benchmark_fingerprint()
    benchmark.benchmark_fingerprint.cache_clear()
    original = benchmark._build_utility(benchmark.DEFAULT_SEED)
    changed = {**original, "world_facts": original["world_facts"][1:]}
    monkeypatch.setattr(benchmark, "_build_utility", lambda seed: changed)
    try:
        assert benchmark_fingerprint() != before
    finally:
        benchmark.benchmark_fingerprint.cache_clear()


def test_benchmark_authors_refuses_utility_splits():
    with pytest.raises(ConfigError) as info:
        benchmark_authors("world_facts")
    assert "\n" not in str(info.value) and "world_facts" in str(info.value)


@pytest.mark.parametrize("split", UTILITY_SPLITS)
def test_utility_splits_load_as_bundled_sources(split):
    from tui_unlearn.data.loading import load_split

    loaded = load_split(f"bundled:{split}", "retain")
    assert len(loaded.records) == 30 and loaded.report.kept == 30
    assert loaded.records[0]["question"] == benchmark_records(split)[0]["question"]
    assert len(loaded.records[0]["perturbed_answers"]) == benchmark.N_UTILITY_PERTURBED
