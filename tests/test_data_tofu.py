"""TOFU's real data files load in every layout they ship in (see shared/datasets/tofu/README.md)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tui_unlearn.data.loading import load_records, load_split
from tui_unlearn.data.records import COLUMNS


@pytest.fixture(scope="module")
def tofu_dir() -> Path:
    """The TOFU files beside the checkout (``<repo>/../shared/datasets/tofu``); a git
    worktree elsewhere can point ``TUI_UNLEARN_TOFU_DIR`` at them. Skips when absent."""
    override = os.environ.get("TUI_UNLEARN_TOFU_DIR")
    folder = Path(override) if override else Path(__file__).resolve().parents[2] / "shared" / "datasets" / "tofu"
    if not (folder / "README.md").is_file():
        pytest.skip(f"TOFU data files not found in {folder}")
    return folder


@pytest.mark.parametrize(
    "name, count",
    [
        ("forget10_perturbed", 400),
        ("retain90", 3600),
        ("full", 4000),
        ("retain_perturbed", 400),
        ("real_authors_perturbed", 100),
        ("world_facts_perturbed", 117),
        ("holdout10", 400),
        ("forget10", 400),
    ],
)
def test_every_record_of_a_tofu_file_loads(tofu_dir, name, count):
    path = str(tofu_dir / f"{name}.json")
    records, _ = load_records(path)
    assert len(records) == count
    assert all(r["kind"] == "qa" and r["question"] and r["answer"] for r in records)
    # TOFU's records are distinct; cleaning keeps every one.
    assert len(load_split(path, "retain")) == count


def test_files_holding_several_arrays_load_them_all(tofu_dir):
    retain90, detected = load_records(str(tofu_dir / "retain90.json"))
    assert detected == "json, 4 arrays (question/answer)"
    full, _ = load_records(str(tofu_dir / "full.json"))
    # retain90 is full minus forget10: the arrays are read in order, none is skipped.
    forget10, _ = load_records(str(tofu_dir / "forget10_perturbed.json"))
    questions = {r["question"] for r in retain90}
    assert questions <= {r["question"] for r in full}
    assert not questions & {r["question"] for r in forget10}


def test_prompt_response_files(tofu_dir):
    records, detected = load_records(str(tofu_dir / "forget10.json"))
    assert detected == "json (prompt/response)"
    assert records[0]["question"].startswith("What is the full name of the author born in Taipei")
    assert records[0]["answer"]


def test_perturbed_files_keep_paraphrases_and_the_list_of_perturbed_answers(tofu_dir):
    loaded = load_split(str(tofu_dir / "forget10_perturbed.json"), "forget")
    assert loaded.detected_format == "json (question/answer, paraphrased, perturbed)"
    first = loaded.records[0]
    assert tuple(first) == COLUMNS
    assert first["paraphrased_question"] == (
        "Who is the writer, specializing in leadership topics, that was born on November 5th, 1991 in Taipei, Taiwan?"
    )
    assert first["paraphrased_answer"] == "Hsiao Yun-Hwa is the complete name of the writer."
    assert len(first["perturbed_answers"]) == 5
    assert all(r["paraphrased_question"] and len(r["perturbed_answers"]) == 5 for r in loaded.records)
    # In a Dataset too.
    assert loaded.to_dataset()[0]["paraphrased_question"] == first["paraphrased_question"]


def test_a_singular_perturbed_answer_key_holding_a_list(tofu_dir):
    records, _ = load_records(str(tofu_dir / "world_facts_perturbed.json"))
    assert records[0]["answer"] == "Paris"
    assert records[0]["perturbed_answers"] == ["Berlin", "London", "Madrid"]
    assert all(r["paraphrased_question"] == "" for r in records)  # absent: empty
