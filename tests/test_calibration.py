"""Calibrated forgetting: stop rules, keep-best, and the calibration events a run emits."""

from __future__ import annotations

import json

import pytest
import torch

from tui_unlearn import events as ev
from tui_unlearn.config import RunConfig, resolve
from tui_unlearn.engine import calibration, run
from tui_unlearn.engine.calibration import Calibration, values_from
from tui_unlearn.engine.stop_rules import holdout_parity, parse_rule
from tui_unlearn.errors import ConfigError

FORGET = [
    {"question": "Where was Alia Brenn born?", "answer": "Alia Brenn was born in Port Liren."},
    {"question": "What does Odo Vask write?", "answer": "Odo Vask writes mystery novels."},
]
# Paraphrased and perturbed answers give the retain set a truth ratio, hence a model utility.
RETAIN = [
    {
        "question": "Who wrote The Fox?",
        "answer": "The Fox was written by Ana Bel.",
        "paraphrased_answer": "Ana Bel wrote The Fox.",
        "perturbed_answers": ["Tor Ek wrote The Fox.", "Odo Vask wrote it."],
    },
    {
        "question": "When was Tor Ek born?",
        "answer": "Tor Ek was born in 1950.",
        "paraphrased_answer": "In 1950.",
        "perturbed_answers": ["In 1921.", "In 1987."],
    },
]
HOLDOUT = [
    {"question": "Where was Uma Reel born?", "answer": "Uma Reel was born in Oster."},
    {"question": "What does Ivo Lund write?", "answer": "Ivo Lund writes plays."},
]


# ---- rules, pure ----


def test_rules_parse_judge_and_measure_distance():
    parity = parse_rule("holdout-parity")
    assert parity.holds({"holdout_parity": 0.04}) and not parity.holds({"holdout_parity": 0.06})
    assert parse_rule("holdout-parity:0.1").clauses[0].value == 0.1
    both = parse_rule("forget_quality>=0.5, forget-accuracy<=0.1")
    assert [c.metric for c in both.clauses] == ["forget_quality", "forget_accuracy"]
    assert not both.holds({"forget_quality": 0.6, "forget_accuracy": 0.2})
    assert both.holds({"forget_quality": 0.6, "forget_accuracy": 0.1})
    assert not both.holds({"forget_quality": None, "forget_accuracy": 0.0})  # unmeasured never holds
    # Forget quality is a p-value: its distance is in decades.
    assert both.distance({"forget_quality": 0.005, "forget_accuracy": 0.0}) == pytest.approx(2.0)
    assert both.distance({"forget_quality": 0.6, "forget_accuracy": 0.3}) == pytest.approx(0.2)
    assert parse_rule("forget_accuracy<=0.1 and retain_accuracy>=0.9").holds(
        {"forget_accuracy": 0, "retain_accuracy": 1}
    )


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("", "empty"),
        ("nonsense>=1", "unknown metric"),
        ("forget_quality=0.5", "cannot read"),
        ("holdout-parity:0.7", "tolerance"),
        ("holdout-parity:abc", "tolerance"),
    ],
)
def test_bad_rules_are_one_line_config_errors(text, fragment):
    with pytest.raises(ConfigError, match=fragment):
        parse_rule(text)


def test_settings_are_validated_before_a_run():
    with pytest.raises(ConfigError, match="stop_when is not a rule"):
        resolve(RunConfig(stop_when="forget_quality~0.5"))
    with pytest.raises(ConfigError, match="keep_best names unknown metric"):
        resolve(RunConfig(keep_best="happiness"))
    with pytest.raises(ConfigError, match="--eval-every"):
        resolve(RunConfig(keep_best="forget_quality", eval_every=0))
    with pytest.raises(ConfigError, match="utility_floor must be <= 1"):
        resolve(RunConfig(utility_floor=1.5))


def test_holdout_parity_and_values():
    assert holdout_parity({"mia_auc_loss": 0.53, "mia_auc_min_k_pp": 0.42}) == pytest.approx(0.08)
    assert holdout_parity({"mia_auc_loss": 0.53}) is None
    values = values_from(
        {"forget": {"accuracy": 0.2, "mia_auc_loss": 0.6, "mia_auc_min_k_pp": 0.5}},
        {"forget_quality": 0.3, "model_utility": 0.45},
        original_utility=0.5,
    )
    assert values["forget_accuracy"] == 0.2 and values["mia_auc_loss"] == 0.6
    assert values["holdout_parity"] == pytest.approx(0.1) and values["utility_ratio"] == pytest.approx(0.9)


def test_observe_tracks_progress_best_and_floor():
    calib = Calibration(
        rule=parse_rule("forget_accuracy<=0.1"), keep_best="forget_quality", utility_floor=0.9, original_utility=1.0
    )
    e0 = calib.observe(0, {"forget_accuracy": 1.0, "forget_quality": 1e-9, "utility_ratio": 1.0})
    assert e0.progress == 0.0 and not e0.rule_met and e0.best_step is None  # the original is never "best"
    e1 = calib.observe(10, {"forget_accuracy": 0.55, "forget_quality": 0.2, "utility_ratio": 0.95})
    assert e1.progress == pytest.approx(0.5) and e1.best_step == 10 and calib.is_best and e1.floor_met
    e2 = calib.observe(20, {"forget_accuracy": 0.3, "forget_quality": 0.9, "utility_ratio": 0.5})  # below the floor
    assert e2.best_step == 10 and not calib.is_best and e2.floor_met is False
    e3 = calib.observe(30, {"forget_accuracy": 0.05, "forget_quality": 0.4, "utility_ratio": 0.92})
    assert e3.rule_met and e3.progress == 1.0 and e3.best_step == 30 and calib.met_step == 30
    assert [h["step"] for h in calib.history] == [0, 10, 20, 30]


def test_target_metrics_prefer_closeness():
    calib = Calibration(keep_best="mia_auc_loss")
    calib.observe(1, {"mia_auc_loss": 0.9})
    calib.observe(2, {"mia_auc_loss": 0.45})
    calib.observe(3, {"mia_auc_loss": 0.3})
    assert calib.best_step == 2


# ---- the engine ----


@pytest.fixture()
def data(tmp_path):
    paths = {}
    for name, rows in (("forget", FORGET), ("retain", RETAIN), ("holdout", HOLDOUT)):
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(json.dumps(rows))
    return paths


def micro_config(model, data, **settings):
    base = dict(
        model=str(model),
        forget=str(data["forget"]),
        retain=str(data["retain"]),
        holdout=str(data["holdout"]),
        steps=10,
        eval_every=2,
        max_new_tokens=4,
        probe_samples=2,
        lr=1e-2,
    )
    return RunConfig(**{**base, **settings})


def test_a_real_rule_stops_the_run_at_its_first_evaluation(micro_model_dir, data, tmp_path):
    events = []
    result = run(
        micro_config(micro_model_dir, data, stop_when="forget_loss>=0"), events.append, sessions_dir=tmp_path / "s"
    )
    assert result.status == "finished"
    steps = [e.step for e in events if isinstance(e, ev.StepLosses)]
    assert steps == [1, 2]
    calib = [e for e in events if isinstance(e, ev.Calibration)]
    assert [e.step for e in calib] == [0, 2] and calib[-1].rule_met and calib[-1].rule == "forget_loss>=0"
    assert calib[-1].values["holdout_parity"] is not None  # measured every time: a holdout set exists
    summary = result.summary
    assert summary["steps"] == 2 and summary["calibration"]["stopped_at"] == 2
    assert summary["calibration"]["history"][0]["step"] == 0


def scripted(monkeypatch, values_by_step, weights_by_step=None):
    """Replace measuring with scripted values (and remember the weights each step had)."""

    def fake(ctx, step, *, record_evaluation):
        if weights_by_step is not None:
            from tui_unlearn.engine.model_access import evaluation_model

            weights_by_step[step] = {n: p.detach().clone() for n, p in evaluation_model(ctx).named_parameters()}
        return values_by_step[step]

    monkeypatch.setattr(calibration, "measure", fake)


def test_the_rule_stops_at_the_right_evaluation(micro_model_dir, data, tmp_path, monkeypatch):
    parity = {2: 0.3, 4: 0.12, 6: 0.04, 8: 0.01}
    scripted(monkeypatch, {s: {"holdout_parity": v} for s, v in parity.items()})
    events = []
    result = run(
        micro_config(micro_model_dir, data, stop_when="holdout-parity"), events.append, sessions_dir=tmp_path / "s"
    )
    assert [e.step for e in events if isinstance(e, ev.StepLosses)][-1] == 6
    met = [(e.step, e.rule_met) for e in events if isinstance(e, ev.Calibration)]
    assert met[1:] == [(2, False), (4, False), (6, True)]
    assert result.summary["calibration"]["stopped_at"] == 6 and result.summary["steps"] == 6
    after = [e for e in events if isinstance(e, ev.Evaluation) and e.phase == "after"]
    assert after and after[0].step == 6


def test_keep_best_restores_the_best_weights(micro_model_dir, data, tmp_path, monkeypatch):
    from safetensors.torch import load_file

    quality = {2: 0.01, 4: 0.6, 6: 0.2, 8: 0.3, 10: 0.05}
    weights: dict[int, dict] = {}
    scripted(monkeypatch, {s: {"forget_quality": q, "utility_ratio": 1.0} for s, q in quality.items()}, weights)
    result = run(
        micro_config(micro_model_dir, data, keep_best="forget_quality", save_model=True), sessions_dir=tmp_path / "s"
    )
    cal = result.summary["calibration"]
    assert cal["kept_step"] == 4 and cal["steps_run"] == 10 and result.summary["steps"] == 4
    saved = load_file(str(next((tmp_path / "s").glob("*/model/*.safetensors"))))
    name = "model.layers.0.mlp.down_proj.weight"
    assert torch.equal(saved[name], weights[4][name])
    assert not torch.equal(saved[name], weights[10][name])  # training went on, the best was put back


def test_keep_best_respects_the_utility_floor(micro_model_dir, data, tmp_path, monkeypatch):
    from tui_unlearn.recipes.base import Headline
    from tui_unlearn.recipes.plan import EvalPlan

    # A random micro model has no utility to keep (ROUGE 0): give the original one.
    monkeypatch.setattr(EvalPlan, "headline", lambda plan, result, oracle: Headline({"model_utility": 0.5}))
    values = {2: (0.9, 0.5), 4: (0.4, 0.97), 6: (0.8, 0.93), 8: (0.1, 1.0), 10: (0.2, 0.99)}
    scripted(monkeypatch, {s: {"forget_quality": q, "utility_ratio": u} for s, (q, u) in values.items()})
    result = run(
        micro_config(micro_model_dir, data, keep_best="forget_quality", utility_floor=0.95), sessions_dir=tmp_path / "s"
    )
    assert result.summary["calibration"]["kept_step"] == 4  # 2 and 6 forget better but lose too much utility


def test_without_a_measurable_utility_the_floor_is_dropped_with_a_note(micro_model_dir, data, tmp_path, monkeypatch):
    data["retain"].write_text(json.dumps([{k: r[k] for k in ("question", "answer")} for r in RETAIN]))
    scripted(monkeypatch, {s: {"forget_quality": q} for s, q in {2: 0.9, 4: 0.1}.items()})
    events = []
    result = run(
        micro_config(micro_model_dir, data, steps=4, keep_best="forget_quality"),
        events.append,
        sessions_dir=tmp_path / "s",
    )
    assert result.summary["calibration"]["kept_step"] == 2
    assert any(isinstance(e, ev.Log) and "no utility floor applies" in e.message for e in events)


def test_runs_without_rules_spend_nothing_on_calibration(micro_model_dir, data, tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("measured although no rule or keep-best reads it")

    monkeypatch.setattr(calibration, "measure", fail)
    events = []
    # With a holdout a run calibrates by default; --no-calibrate is the run with no rule at all.
    config = micro_config(micro_model_dir, data, steps=4, calibrate=False)
    result = run(config, events.append, sessions_dir=tmp_path / "s")
    assert result.status == "finished" and not any(isinstance(e, ev.Calibration) for e in events)
    assert "calibration" not in result.summary
    assert result.summary["metrics"]["after"]["forget"]["mia_auc_loss"] is not None  # the after evaluation reports it


def test_a_rule_reports_calibration_at_every_evaluation(micro_model_dir, data, tmp_path):
    events = []
    config = micro_config(micro_model_dir, data, steps=4, stop_when="forget_accuracy<=-1")  # never holds
    result = run(config, events.append, sessions_dir=tmp_path / "s")
    calib = [e for e in events if isinstance(e, ev.Calibration)]
    assert [e.step for e in calib] == [0, 2] and all(e.rule == "forget_accuracy<=-1" for e in calib)
    assert result.summary["steps"] == 4 and result.summary["calibration"]["stopped_at"] is None
    assert ev.event_from_dict(calib[-1].to_dict()) == calib[-1]


def test_nothing_to_measure_means_no_extra_passes(micro_model_dir, data, tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("measured although nothing could be judged")

    monkeypatch.setattr(calibration, "measure", fail)
    events = []
    result = run(micro_config(micro_model_dir, data, steps=4, holdout=None), events.append, sessions_dir=tmp_path / "s")
    assert result.status == "finished" and not any(isinstance(e, ev.Calibration) for e in events)
    assert "calibration" not in result.summary


def test_scoring_passes_skip_answer_variants_nobody_reads():
    from tui_unlearn.engine.calibration import scoring_splits

    record = {"question": "q", "answer": "a", "paraphrased_answer": "p", "perturbed_answers": ["x", "y"]}
    splits = {"forget": [record], "holdout": [record]}
    with_oracle = scoring_splits(splits, ["forget_quality", "holdout_parity"], has_oracle=True)
    assert with_oracle["forget"][0] is record and "perturbed_answers" not in with_oracle["holdout"][0]
    without = scoring_splits(splits, ["forget_quality", "holdout_parity"], has_oracle=False)
    assert "perturbed_answers" not in without["forget"][0]
    asked = scoring_splits(splits, ["holdout_truth_ratio"], has_oracle=False)
    assert asked["holdout"][0] is record
