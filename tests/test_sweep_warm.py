"""Trials run one after another in one process share inputs (engine.warm): a trial's numbers
are those of the same trial run alone, and a trial that fails or leaves the model changed
does not change the next one's."""

from __future__ import annotations

import json

import pytest

from tui_unlearn.config import RunConfig
from tui_unlearn.engine import phases, run
from tui_unlearn.engine.warm import WarmStart, inputs_key, model_key
from tui_unlearn.errors import UnlearnError

FORGET = [
    {"question": "Where was Alia Brenn born?", "answer": "Alia Brenn was born in Port Liren."},
    {"question": "What does Odo Vask write?", "answer": "Odo Vask writes mystery novels."},
]
RETAIN = [
    {"question": "Who wrote The Fox?", "answer": "The Fox was written by Ana Bel."},
    {"question": "When was Tor Ek born?", "answer": "Tor Ek was born in 1950."},
]
HOLDOUT = [{"question": "Where was Uma Reel born?", "answer": "Uma Reel was born in Oster."}]


@pytest.fixture()
def base(micro_model_dir, tmp_path):
    paths = {}
    for name, rows in (("forget", FORGET), ("retain", RETAIN), ("holdout", HOLDOUT)):
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(json.dumps(rows))
    return RunConfig(
        model=str(micro_model_dir),
        forget=str(paths["forget"]),
        retain=str(paths["retain"]),
        holdout=str(paths["holdout"]),
        algorithm="grad_diff",
        steps=3,
        eval_every=0,
        max_new_tokens=4,
        lr=5e-3,
    )


def numbers(result) -> dict:
    """What a trial measured: the losses of its last step and every number after."""
    s = result.summary
    return {"losses": s["final_losses"], "after": s["metrics"]["after"], "field": s["field_metrics"]["after"]}


def test_keys_separate_training_settings_from_inputs(base):
    other_lr = base.with_overrides(lr=1e-4, steps=7, hparams={"retain_weight": 2.0})
    assert inputs_key(other_lr) == inputs_key(base) and model_key(other_lr) == model_key(base)
    assert inputs_key(base.with_overrides(eval_samples=3)) != inputs_key(base)  # other records evaluated
    assert model_key(base.with_overrides(eval_samples=3)) == model_key(base)  # the same model though
    assert model_key(base.with_overrides(dtype="float32")) != model_key(base) or base.dtype == "float32"


@pytest.mark.slow  # five short runs of the micro model
def test_a_warm_trial_matches_the_same_trial_alone_even_after_a_failed_one(base, tmp_path, monkeypatch):
    first, second = base, base.with_overrides(lr=2e-3, hparams={"retain_weight": 2.0})
    alone = numbers(run(second, sessions_dir=tmp_path / "alone"))

    warm = WarmStart()
    run(first, sessions_dir=tmp_path / "warm", warm=warm)
    # A trial that fails after training changed the weights in place.
    real_after = phases.evaluate_after

    def broken(ctx):
        raise RuntimeError("the evaluation broke")

    monkeypatch.setattr(phases, "evaluate_after", broken)
    with pytest.raises(UnlearnError, match="the evaluation broke"):
        run(first.with_overrides(lr=5e-2), sessions_dir=tmp_path / "warm", warm=warm)
    monkeypatch.setattr(phases, "evaluate_after", real_after)
    warmed = numbers(run(second, sessions_dir=tmp_path / "warm", warm=warm))
    assert warm.loads == 1 and warm.reused == 2  # one load for three trials
    assert warmed == alone

    # A hook left on the model (a method that failed halfway) costs a fresh load, not a wrong start.
    warm._model.loaded.model.register_forward_hook(lambda module, args, out: out * 0)
    again = numbers(run(second, sessions_dir=tmp_path / "warm", warm=warm))
    assert warm.loads == 2 and again == alone


@pytest.mark.slow  # two short runs of the micro model
def test_lora_adapters_are_taken_out_of_the_kept_model(base, tmp_path):
    second = base.with_overrides(lr=2e-3)
    alone = numbers(run(second, sessions_dir=tmp_path / "alone"))
    warm = WarmStart()
    run(base.with_overrides(lora_r=2, lr=5e-2), sessions_dir=tmp_path / "warm", warm=warm)
    assert numbers(run(second, sessions_dir=tmp_path / "warm", warm=warm)) == alone
    assert warm.loads == 1 and warm.reused == 1


@pytest.mark.slow  # two calibrated runs of the micro model
def test_the_after_evaluation_reuses_calibrations_evaluation_of_the_same_weights(base, tmp_path, monkeypatch):
    from tui_unlearn.engine import calibration
    from tui_unlearn.recipes import evaluate as recipe_evaluate

    calls = []
    real_plan = recipe_evaluate.evaluate_plan
    monkeypatch.setattr(recipe_evaluate, "evaluate_plan", lambda *a, **k: calls.append(1) or real_plan(*a, **k))
    config = base.with_overrides(steps=4, eval_every=2, keep_best="forget_accuracy", eval_cache=False)
    reused = run(config, sessions_dir=tmp_path / "reused")
    n_reused = len(calls)

    real_judge = calibration.judge

    def judge_forgetting(ctx, step, **kw):  # as before the reuse: nothing kept for "after"
        out = real_judge(ctx, step, **kw)
        ctx.full_evaluations.clear()
        return out

    monkeypatch.setattr(calibration, "judge", judge_forgetting)
    calls.clear()
    again = run(config, sessions_dir=tmp_path / "again")
    assert n_reused == len(calls) - 1  # one full evaluation fewer: "after" is the kept step's
    assert numbers(reused) == numbers(again)
    assert reused.summary["calibration"] == again.summary["calibration"]
