"""General ability: the original's answers to everyday prompts, scored under the model now."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from tui_unlearn.metrics.general import GeneralReference, build_reference, load_prompts, score_nll


@pytest.fixture(scope="module")
def bundled():
    from tui_unlearn.models.loading import load_model

    return load_model("tiny-authors", device="cpu", dtype="float32")


def test_the_bundled_prompts_are_general_instructions():
    prompts = load_prompts()
    assert len(prompts) >= 30 and len(set(prompts)) == len(prompts)
    from tui_unlearn.data.benchmark import benchmark_authors

    # Nothing of any bundled forget set: no author of the benchmark is named.
    names = {
        part for split in ("forget10", "retain90", "holdout") for a in benchmark_authors(split) for part in a.split()
    }
    assert names and not any(name in p.replace("?", " ").replace(".", " ").split() for p in prompts for name in names)


def test_the_original_keeps_its_own_number_and_a_damaged_copy_does_not(bundled):
    import copy

    import torch

    model, tokenizer = bundled.model, bundled.tokenizer
    reference = build_reference(model, tokenizer, batch_size=16, max_length=256)
    assert len(reference.answers) == len(reference.prompts) and all(math.isfinite(x) for x in reference.original_nll)
    again = score_nll(model, tokenizer, reference.prompts, reference.answers, batch_size=7, max_length=256)
    numbers, _ = reference.summarize(again)
    assert abs(numbers["nll_increase"]) < 1e-4  # batching does not change the number

    damaged = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in damaged.parameters():
            p.add_(torch.randn(p.shape, generator=generator) * 0.05)
    nll = score_nll(damaged, tokenizer, reference.prompts, reference.answers, batch_size=16, max_length=256)
    numbers, worst = reference.summarize(nll)
    assert numbers["nll_increase"] > 0.5 and worst in reference.prompts
    assert numbers["nll_worst_increase"] >= numbers["nll_increase"]


def test_a_collapsed_model_gives_nan_not_a_crash():
    reference = GeneralReference(["a", "b"], ["x", "y"], [0.5, 0.7])
    numbers, worst = reference.summarize([float("nan"), float("nan")])
    assert math.isnan(numbers["nll"]) and worst is None
    numbers, worst = reference.summarize([float("nan"), 1.7])
    assert numbers["nll"] == 1.7 and numbers["nll_increase"] == pytest.approx(1.0) and worst == "b"


def test_a_stored_reference_round_trips_and_junk_is_refused():
    reference = GeneralReference(["a"], ["x"], [float("nan")])
    back = GeneralReference.from_json(json.loads(json.dumps(reference.to_json(), allow_nan=True)))
    assert back is not None and back.prompts == ["a"] and math.isnan(back.original_nll[0])
    for junk in (None, [], {"prompts": ["a"]}, {"prompts": ["a"], "answers": [1], "original_nll": [0.1]}):
        assert GeneralReference.from_json(junk) is None
    assert GeneralReference.from_json({"prompts": ["a", "b"], "answers": ["x"], "original_nll": [0.1]}) is None


@pytest.mark.slow
def test_a_run_reports_general_ability_and_caches_the_originals_answers(tmp_path, micro_model_dir, monkeypatch):
    from tui_unlearn.cli import app

    forget = tmp_path / "forget.jsonl"
    forget.write_text(json.dumps({"question": "Where was Alia Brenn born?", "answer": "In Port Liren."}) + "\n")
    retain = tmp_path / "retain.jsonl"
    retain.write_text(json.dumps({"question": "Who wrote The Fox?", "answer": "Ana Bel."}) + "\n")
    args = ["--batch", "--json", "--sessions-dir", str(tmp_path / "s"), "--model", str(micro_model_dir)]
    args += ["--forget", str(forget), "--retain", str(retain), "--steps", "2", "--eval-every", "1"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.stderr
    result = json.loads(first.stdout)
    general = result["general_ability"]
    assert general["prompts"] == len(load_prompts()) and general["phase"] == "after"
    assert math.isfinite(general["nll"]) and general["increase"] == pytest.approx(
        general["nll"] - general["original_nll"]
    )
    assert result["metrics"]["before"]["general"]["nll_increase"] == 0.0
    assert "general nll" in first.stderr  # the evaluation lines say it

    def no_generation(*a, **k):
        raise AssertionError("the original's answers should come from the cache")

    monkeypatch.setattr("tui_unlearn.metrics.general.build_reference", no_generation)
    second = CliRunner().invoke(app, args)
    assert second.exit_code == 0, second.stderr
    assert json.loads(second.stdout)["general_ability"]["original_nll"] == general["original_nll"]


def _run(tmp_path, model, *extra):
    from tui_unlearn.cli import app

    tmp_path.mkdir(parents=True, exist_ok=True)
    forget = tmp_path / "forget.jsonl"
    forget.write_text(
        "".join(
            json.dumps({"question": q, "answer": a}) + "\n"
            for q, a in [("Where was Alia Brenn born?", "In Port Liren."), ("What does Odo Vask write?", "Mysteries.")]
        )
    )
    args = ["--batch", "--json", "--sessions-dir", str(tmp_path / "s"), "--model", str(model), "--forget", str(forget)]
    result = CliRunner().invoke(app, [*args, *extra])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout), result.stderr


@pytest.mark.slow  # several seconds: run by .ci/run's second pass
def test_the_guard_keeps_the_last_weights_that_still_speak(tmp_path, monkeypatch):
    from tui_unlearn.models.bundled import bundled_model_dir

    # The bundled model knows nothing of the world, so by default nothing is guarded on it (below);
    # with no knowledge required it stands in for a real model whose general ability is at stake.
    monkeypatch.setattr("tui_unlearn.engine.collateral.MIN_KNOWN", 0)

    model = bundled_model_dir("tiny-authors")
    wreck = ["--algorithm", "grad_ascent", "--lr", "3e-2", "--grad-clip", "0", "--steps", "6", "--eval-every", "2"]
    wreck += ["--retain", "bundled:retain90", "--eval-samples", "8", "--relearn", "0"]
    guarded, stderr = _run(tmp_path / "a", model, *wreck)
    guard = guarded["guard"]
    assert guard["tripped_at"] is not None and guard["kept_step"] < guard["tripped_at"]
    assert guard["increase_at_trip"] > guard["general_limit"] == 0.5 or not math.isfinite(guard["increase_at_trip"])
    assert guard["reasons"] and guard["reasons"][0].startswith("general ability")
    assert guarded["general_ability"]["increase"] <= 0.5  # the model the run ends with still speaks
    assert "guard: at step" in stderr and "--guard-general 0" in stderr
    # grad_ascent ignores the retain set it was given: the advice names a method that uses one.
    assert "A method with a retain term" in stderr and "A retain set (--retain)" not in stderr

    unguarded, _ = _run(tmp_path / "b", model, *wreck, "--guard-general", "0")
    assert unguarded.get("guard") is None and unguarded["steps"] == 6
    assert not unguarded["general_ability"]["increase"] <= 0.5  # what the guard prevented


@pytest.mark.slow
def test_with_no_retain_set_the_originals_general_answers_are_the_retain_set(tmp_path, micro_model_dir):
    from tui_unlearn.metrics.general import PROMPTS_FILE, RETAIN_FILE

    assert not set(load_prompts(RETAIN_FILE)) & set(load_prompts(PROMPTS_FILE))  # the guard measures on others
    base = ["--steps", "2", "--eval-every", "0", "--relearn", "0"]
    with_general, stderr = _run(tmp_path / "a", micro_model_dir, "--algorithm", "grad_diff", *base)
    session = json.loads((tmp_path / "a" / "s" / with_general["session_id"] / "summary.json").read_text())
    assert session["data"]["retain_source"] == "general" and session["data"]["general_retain"] > 0
    assert "no retain set given" in stderr and "--retain" in stderr

    from tui_unlearn.cli import app

    forget = tmp_path / "a" / "forget.jsonl"
    args = ["--batch", "--sessions-dir", str(tmp_path / "b"), "--model", str(micro_model_dir), "--forget", str(forget)]
    alone = CliRunner().invoke(app, [*args, "--algorithm", "grad_diff", "--no-general-retain", *base])
    assert alone.exit_code == 2 and "needs a retain set" in alone.stderr  # as before: nothing to keep
    npo_alone = CliRunner().invoke(app, [*args, "--algorithm", "npo", "--no-general-retain", "--json", *base])
    assert npo_alone.exit_code == 0 and "no retain set given" not in npo_alone.stderr
