"""Calibrated by default: a run with a holdout set or an oracle ends on its best evaluation
(above the utility floor), not where its last step overshot to; over-forgetting is named."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from tui_unlearn.cli import app
from tui_unlearn.engine.calibration import Calibration, default_keep_best, snapshot
from tui_unlearn.engine.phases import over_forgetting

FORGET = [
    ("Where was Alia Brenn born?", "Alia Brenn was born in Port Liren."),
    ("What does Odo Vask write?", "Odo Vask writes mystery novels."),
]
HOLDOUT = [
    ("Who painted The Blue Door?", "The Blue Door was painted by Mira Sol."),
    ("When was Tor Ek born?", "Tor Ek was born in 1950."),
]


def _write(path, pairs):
    path.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in pairs))
    return path


def test_what_a_run_calibrates_by():
    parity = {"forget": {"mia_auc_loss": 0.9, "mia_auc_min_k_pp": 0.8}}
    assert default_keep_best(parity, {"forget_quality": 1e-9}) == "forget_quality"
    assert default_keep_best(parity, {"forget_quality": None}) == "holdout_parity"
    assert default_keep_best({"forget": {"loss": 1.0}}, {}) is None  # nothing to aim at: the raw run


@pytest.mark.slow
def test_a_run_with_a_holdout_calibrates_unless_told_not_to(tmp_path, micro_model_dir):
    forget, holdout = _write(tmp_path / "f.jsonl", FORGET), _write(tmp_path / "h.jsonl", HOLDOUT)
    args = ["--batch", "--json", "--model", str(micro_model_dir), "--forget", str(forget), "--holdout", str(holdout)]
    args += ["--algorithm", "npo", "--steps", "4", "--eval-every", "2", "--relearn", "0", "--utility-floor", "0"]
    default = CliRunner().invoke(app, [*args, "--sessions-dir", str(tmp_path / "a")])
    assert default.exit_code == 0, default.stderr
    summary = json.loads((tmp_path / "a" / json.loads(default.stdout)["session_id"] / "summary.json").read_text())
    calibration = summary["calibration"]
    assert json.loads(default.stdout)["calibration"] == calibration  # --json says where the run ended, too
    assert calibration["by_default"] is True and calibration["keep_best"] == "holdout_parity"
    assert calibration["kept_step"] in (2, 4) and "calibrating: the run ends on" in default.stderr
    # The user's own holdout is graded as well as scored: where collateral damage on unrelated facts shows.
    holdout_after = summary["metrics"]["after"]["holdout"]
    assert "accuracy" in holdout_after and "f1" in holdout_after and "mia_auc_loss" not in holdout_after
    assert summary["recipe"]["splits"]["holdout"]["generate"] is True

    raw = CliRunner().invoke(app, [*args, "--no-calibrate", "--sessions-dir", str(tmp_path / "b")])
    assert raw.exit_code == 0, raw.stderr
    summary = json.loads((tmp_path / "b" / json.loads(raw.stdout)["session_id"] / "summary.json").read_text())
    assert "calibration" not in summary and "calibrating" not in raw.stderr


def test_over_forgetting_is_named():
    logged: list[str] = []
    ctx = SimpleNamespace(log=logged.append)
    assert over_forgetting(ctx, {"mia_auc": 0.5, "privleak": 0.0}) is None
    assert over_forgetting(ctx, {"mia_auc": None}) is None and not logged
    flagged = over_forgetting(ctx, {"mia_auc": 0.2, "privleak": 64.5})
    assert flagged == {"mia_auc": 0.2, "privleak": 64.5}
    assert logged and logged[0].startswith("over-forgetting: the forget set is now less likely than the holdout")
    # A holdout of facts the original states is no never-seen baseline: less likely than it is no flag.
    known = {"forget": {"accuracy": 0.88}, "holdout": {"accuracy": 0.5}}
    assert over_forgetting(ctx, {"mia_auc": 0.02, "privleak": None}, known) is None
    unknown = {"forget": {"accuracy": 1.0}, "holdout": {"accuracy": 0.0}}
    assert over_forgetting(ctx, {"mia_auc": 0.02, "privleak": None}, unknown) is not None


def test_the_bundled_holdout_stays_a_membership_baseline():
    from tui_unlearn.config import RunConfig, resolve
    from tui_unlearn.data.run_data import load_run_data
    from tui_unlearn.recipes.plan import build_plan

    config = resolve(RunConfig(eval_samples=3))
    plan = build_plan(config, load_run_data(config))
    assert not plan.generates("holdout") and plan.generates("forget")  # fictitious authors: nothing to grade


def test_keep_best_passes_over_an_evaluation_that_lost_knowledge():
    from tui_unlearn.engine.calibration import KNOWLEDGE_KEPT, Calibration

    calib = Calibration(keep_best="forget_quality", utility_floor=0.9, knowledge_floor=0.8)
    calib.observe(2, {"forget_quality": 0.1, "utility_ratio": 0.95, KNOWLEDGE_KEPT: 0.9})
    assert calib.best_step == 2
    calib.observe(4, {"forget_quality": 0.9, "utility_ratio": 0.99, KNOWLEDGE_KEPT: 0.5})  # best, but took knowledge
    assert calib.best_step == 2
    calib.observe(6, {"forget_quality": 0.5, "utility_ratio": 0.99})  # not measured: the utility floor alone
    assert calib.best_step == 6


def test_a_holdout_the_original_knows_is_no_never_seen_baseline():
    from tui_unlearn.engine.calibration import known_holdout

    parity = {"mia_auc_loss": 0.7, "mia_auc_min_k_pp": 0.7}
    # A pretrained model's holdout of real facts it states half of: parity would mean "half-known".
    known = {"forget": {**parity, "accuracy": 0.88}, "holdout": {"accuracy": 0.5}}
    assert known_holdout(known) == (0.5, 0.88)
    assert default_keep_best(known, {}) == "forget_accuracy"
    # Facts it never saw (right guesses at most): parity is "never seen", as before.
    unknown = {"forget": {**parity, "accuracy": 1.0}, "holdout": {"accuracy": 0.1}}
    assert known_holdout(unknown) is None and default_keep_best(unknown, {}) == "holdout_parity"
    scored_only = {"forget": {**parity, "accuracy": 1.0}, "holdout": {"loss": 2.0}}  # TOFU's: nothing graded
    assert known_holdout(scored_only) is None and default_keep_best(scored_only, {}) == "holdout_parity"
    assert default_keep_best(known, {"forget_quality": 0.01}) == "forget_quality"  # an oracle still comes first


def _calibrated_ctx(calib):
    import torch

    model = torch.nn.Linear(2, 2)
    logged: list[str] = []
    ctx = SimpleNamespace(calibration=calib, loop=None, model=model, done=0, status="finished", extra={})
    ctx.log, ctx.record, ctx.full_evaluations, ctx.accelerator = logged.append, lambda event: None, {}, None
    return ctx, model, logged


def test_a_calibrated_run_whose_every_evaluation_fell_past_the_floor_ends_where_it_started():
    import torch

    from tui_unlearn.engine.calibration import Calibration, finish, settle, snapshot

    calib = Calibration(keep_best="forget_quality", utility_floor=0.95)
    ctx, model, logged = _calibrated_ctx(calib)
    start = model.weight.detach().clone()
    calib.start_step, calib.start_weights = 0, snapshot(ctx)
    calib.observe(0, {"forget_quality": 1e-9, "utility_ratio": 1.0})
    with torch.no_grad():
        model.weight.add_(1.0)  # training moved the weights...
    ctx.done = 20
    for step in (10, 20):  # ...and every evaluation found utility past the floor
        settle(ctx, step, {"forget_quality": 0.9, "utility_ratio": 0.3})
    finish(ctx, None)
    assert torch.equal(model.weight, start) and ctx.done == 0
    summary = ctx.extra["calibration"]
    assert summary["kept_step"] == 0 and summary["floor_missed"] is True
    (said,) = [line for line in logged if "ends on the weights it started from (step 0)" in line]
    # No retain set here (and no knowledge measured): the advice says what the run can change.
    assert "A retain set (--retain), a lower --lr, fewer --steps" in said and "knowledge" not in said


def test_an_evaluation_that_kept_the_floor_is_kept_over_the_start():
    import torch

    from tui_unlearn.engine.calibration import Calibration, finish, settle, snapshot

    calib = Calibration(keep_best="forget_quality", utility_floor=0.95)
    ctx, model, logged = _calibrated_ctx(calib)
    calib.start_step, calib.start_weights = 0, snapshot(ctx)
    with torch.no_grad():
        model.weight.add_(1.0)
    kept = model.weight.detach().clone()
    settle(ctx, 10, {"forget_quality": 0.2, "utility_ratio": 0.97})
    with torch.no_grad():
        model.weight.add_(1.0)
    settle(ctx, 20, {"forget_quality": 0.9, "utility_ratio": 0.4})  # better, past the floor
    ctx.done = 20
    finish(ctx, None)
    assert torch.equal(model.weight, kept) and ctx.extra["calibration"]["kept_step"] == 10
    assert ctx.extra["calibration"]["floor_missed"] is False


def test_a_calibrated_run_that_never_beat_the_original_ends_on_it():
    """IDK on a chat model's known facts: forget accuracy 0.88 rose to 1.00 and calibration
    kept step 20, a model stating more forget answers than the original. The original is a
    candidate: a run that never improves on it by keep_best ends on it and says so."""
    import torch

    from tui_unlearn.engine.calibration import Calibration, finish, settle, snapshot

    calib = Calibration(keep_best="forget_accuracy", utility_floor=0.95)
    ctx, model, logged = _calibrated_ctx(calib)
    start = model.weight.detach().clone()
    calib.start_step, calib.start_weights, calib.start_candidate = 0, snapshot(ctx), True
    calib.observe(0, {"forget_accuracy": 0.88, "utility_ratio": 1.0})
    with torch.no_grad():
        model.weight.add_(1.0)
    for step in (10, 20):  # the floor holds, but the forget set is stated as often or more
        settle(ctx, step, {"forget_accuracy": 1.0 if step == 10 else 0.88, "utility_ratio": 1.2})
    ctx.done = 20
    finish(ctx, None)
    assert torch.equal(model.weight, start) and ctx.done == 0
    summary = ctx.extra["calibration"]
    assert summary["kept_step"] == 0 and summary["no_improvement"] is True and summary["floor_missed"] is False
    assert any("did not forget by this measure" in line for line in logged)

    # A step that does improve on it is kept as before.
    calib = Calibration(keep_best="forget_accuracy", utility_floor=0.95)
    ctx, model, logged = _calibrated_ctx(calib)
    calib.start_step, calib.start_weights, calib.start_candidate = 0, snapshot(ctx), True
    calib.observe(0, {"forget_accuracy": 0.88, "utility_ratio": 1.0})
    with torch.no_grad():
        model.weight.add_(1.0)
    kept = model.weight.detach().clone()
    settle(ctx, 10, {"forget_accuracy": 0.5, "utility_ratio": 1.0})
    ctx.done = 10
    finish(ctx, None)
    assert torch.equal(model.weight, kept) and ctx.extra["calibration"]["no_improvement"] is False


def test_the_guard_shares_calibrations_snapshot_of_the_start():
    """One copy of the starting weights, not two: on a full fine-tune that copy is the model."""
    from tui_unlearn.engine import guard

    calib = Calibration(keep_best="forget_quality", utility_floor=0.95)
    ctx, model, _ = _calibrated_ctx(calib)
    ctx.config = SimpleNamespace(guard_general=0.5, guard_knowledge=0.0)
    ctx.general, ctx.knowledge = object(), None  # general ability measured, no probe
    calib.start_weights = snapshot(ctx)
    watch = guard.start(ctx, calib.start_weights)
    assert watch is not None and watch.good_weights is calib.start_weights
    assert guard.start(ctx).good_weights is not calib.start_weights  # alone, it takes its own


def test_the_report_says_where_calibration_ended_the_run():
    from tui_unlearn.analysis.tables import calibration_line

    base = {"keep_best": "forget_accuracy", "utility_floor": 0.95, "steps_run": 60, "best_value": 0.88}
    assert calibration_line({**base, "kept_step": 20, "best_value": 0.0}) == (
        "calibration: kept step 20 of 60 (best forget accuracy 0.000)"
    )
    said = calibration_line({**base, "kept_step": 0, "no_improvement": True})
    assert said is not None and said.startswith("calibration: did not forget") and "(0.880)" in said
    said = calibration_line({**base, "kept_step": 0, "floor_missed": True})
    assert said is not None and "no evaluation kept the utility floor" in said
    assert calibration_line({"keep_best": None}) is None and calibration_line(None) is None
