"""The world-knowledge probe inside a run: measured at every evaluation, reported, guarded
(only where the original states enough facts to mean something), collateral damage named."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from tui_unlearn.cli import app
from tui_unlearn.engine.collateral import MIN_KNOWN, collateral_damage


@pytest.mark.slow
def test_a_run_reports_knowledge_and_caches_the_originals_answers(tmp_path, micro_model_dir, monkeypatch):
    forget = tmp_path / "forget.jsonl"
    forget.write_text(json.dumps({"question": "Where was Alia Brenn born?", "answer": "In Port Liren."}) + "\n")
    args = ["--batch", "--json", "--sessions-dir", str(tmp_path / "s"), "--model", str(micro_model_dir)]
    args += ["--forget", str(forget), "--algorithm", "npo", "--steps", "2", "--eval-every", "1", "--relearn", "0"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.stderr
    result = json.loads(first.stdout)
    before, after = result["metrics"]["before"]["knowledge"], result["metrics"]["after"]["knowledge"]
    assert 0.0 <= before["knowledge"] <= 1.0 and before["knowledge_original"] == before["knowledge"]
    assert before["knowledge_kept"] in (1.0, None)  # the original keeps all it states (None: it states none)
    assert "knowledge_kept" in result and "knowledge" in first.stderr
    session = tmp_path / "s" / result["session_id"]
    assert (session / "knowledge.json").is_file()
    # A random micro model states almost nothing: far below MIN_KNOWN, so it is never guarded on.
    assert result.get("guard") is None and "guard: off: the original states" in first.stderr
    assert after["known_by_original"] < MIN_KNOWN
    analyzed = CliRunner().invoke(app, ["analyze", result["session_id"], "--sessions-dir", str(tmp_path / "s")])
    assert analyzed.exit_code == 0 and "knowledge kept" in analyzed.stdout and "general NLL +" in analyzed.stdout

    def no_generation(*a, **k):
        raise AssertionError("the original's probe answers should come from the cache")

    monkeypatch.setattr("tui_unlearn.metrics.knowledge.build_reference", no_generation)
    second = CliRunner().invoke(app, args)
    assert second.exit_code == 0, second.stderr


def test_collateral_damage_is_named_only_where_it_means_something():
    logged: list[str] = []
    ctx = SimpleNamespace(log=logged.append)
    known = {"known_by_original": float(MIN_KNOWN)}
    assert collateral_damage(ctx, {}, {"knowledge": {"knowledge_kept": 0.95, **known}}) is None
    assert collateral_damage(ctx, {}, {"knowledge": {"knowledge_kept": 0.2, "known_by_original": 3.0}}) is None
    found = collateral_damage(
        ctx,
        {"holdout": {"accuracy": 1.0}},
        {"knowledge": {"knowledge_kept": 0.6, **known}, "holdout": {"accuracy": 0.5}},
    )
    assert found == {"knowledge_kept": 0.6, "holdout_accuracy_ratio": 0.5}
    assert logged and logged[-1].startswith("collateral damage: knowledge kept 0.60, holdout accuracy ratio 0.50")
    assert collateral_damage(ctx, {"holdout": {"accuracy": 0.0}}, {"holdout": {"accuracy": 0.0}}) is None


def test_the_guard_trips_on_lost_knowledge_and_puts_the_last_good_weights_back(monkeypatch):
    from tui_unlearn.engine import collateral, guard

    kept_by_step = {2: 0.95, 4: 0.5}
    monkeypatch.setattr(collateral, "knowledge_numbers", lambda ctx, step: {"knowledge_kept": kept_by_step[step]})
    monkeypatch.setattr(guard, "any_process", lambda ctx, local: local)
    monkeypatch.setattr(guard, "snapshot", lambda ctx: {"step": ctx.done})
    restored = []
    monkeypatch.setattr(guard, "restore", lambda ctx, weights: restored.append(weights))
    logged: list[str] = []
    ctx = SimpleNamespace(log=logged.append, done=0, extra={})
    watch = guard.Guard(limit=0.0, knowledge_floor=0.8, good_step=0, good_weights={"step": 0})
    ctx.done = 2
    assert guard.check(ctx, watch, 2) is False and watch.good_step == 2
    ctx.done = 4
    assert guard.check(ctx, watch, 4) is True
    assert restored == [{"step": 2}] and ctx.done == 2 and watch.tripped_at == 4
    assert "knowledge kept 0.50" in logged[-1] and "--guard-knowledge 0" in logged[-1]
    guard.finish(ctx, watch)
    assert ctx.extra["guard"]["kept_step"] == 2 and ctx.extra["guard"]["knowledge_kept_at_trip"] == 0.5


def test_eval_reports_the_share_of_the_probe_a_model_states(tmp_path, micro_model_dir):
    forget = tmp_path / "forget.jsonl"
    forget.write_text(json.dumps({"question": "Where was Alia Brenn born?", "answer": "In Port Liren."}) + "\n")
    args = ["eval", "--json", "--model", str(micro_model_dir), "--forget", str(forget), "--eval-samples", "2"]
    result = CliRunner().invoke(app, [*args, "--sessions-dir", str(tmp_path / "s")])
    assert result.exit_code == 0, result.stderr
    knowledge = json.loads(result.stdout)["knowledge"]
    assert knowledge["probe"] >= 150 and 0.0 <= knowledge["knowledge"] <= 1.0


@pytest.mark.slow
def test_a_probe_fact_the_forget_set_states_is_not_counted_as_collateral(tmp_path, micro_model_dir):
    from tui_unlearn.metrics.knowledge import load_probe

    item = load_probe()[0]
    forget = tmp_path / "forget.jsonl"
    forget.write_text(json.dumps({"question": item["question"], "answer": f"It is {item['answer']}."}) + "\n")
    args = ["--batch", "--json", "--sessions-dir", str(tmp_path / "s"), "--model", str(micro_model_dir)]
    args += ["--forget", str(forget), "--algorithm", "grad_ascent", "--steps", "1", "--relearn", "0"]
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["knowledge"]["probe"] == len(load_probe()) - 1
    assert "1 probe question(s) left out" in done.stderr and item["question"] in done.stderr


def test_a_tripped_guard_goes_on_from_the_last_good_weights_at_a_lower_rate(monkeypatch):
    from tui_unlearn.engine import collateral, guard

    kept_by_step = {2: 0.95, 4: 0.5, 6: 0.9, 8: 0.4, 10: 0.3, 12: 0.2, 14: 0.1}
    monkeypatch.setattr(collateral, "knowledge_numbers", lambda ctx, step: {"knowledge_kept": kept_by_step[step]})
    monkeypatch.setattr(guard, "any_process", lambda ctx, local: local)
    monkeypatch.setattr(guard, "snapshot", lambda ctx: {"step": ctx.done})
    restored = []
    monkeypatch.setattr(guard, "restore", lambda ctx, weights: restored.append(weights))

    class Loop:
        lr = 1e-5

        def back_off(self, factor):
            self.lr *= factor
            return self.lr

    logged: list[str] = []
    ctx = SimpleNamespace(log=logged.append, done=0, extra={}, config=SimpleNamespace(steps=20))
    watch = guard.Guard(limit=0.0, knowledge_floor=0.8, good_step=0, good_weights={"step": 0})
    loop = Loop()
    for step in (2, 4):
        ctx.done = step
        assert guard.check(ctx, watch, step, loop) is False
    # Step 4 lost knowledge: step 2's weights are back and the run goes on at a quarter of the rate.
    assert restored == [{"step": 2}] and loop.lr == 2.5e-6 and "going on at 0.25 x the rate" in logged[-1]
    assert watch.tripped_at is None and watch.backed_off[0]["kept_step"] == 2
    for step in (6, 8, 10):  # 6 is good again; 8 and 10 back off twice more: three tries in all
        ctx.done = step
        assert guard.check(ctx, watch, step, loop) is False
    assert [b["step"] for b in watch.backed_off] == [4, 8, 10] and restored[-1] == {"step": 6}
    ctx.done = 12
    assert guard.check(ctx, watch, 12, loop) is True  # no tries left: it stops, as without a loop
    assert watch.tripped_at == 12 and ctx.done == 6 and "stopping" in logged[-1]
    guard.finish(ctx, watch)
    assert len(ctx.extra["guard"]["backed_off"]) == 3 and ctx.extra["guard"]["kept_step"] == 6


def test_backing_off_scales_the_schedule_and_forgets_the_moments():
    import torch
    from accelerate import Accelerator

    from tui_unlearn.engine.training import TrainingLoop, warmup_schedule

    model = torch.nn.Linear(3, 1)
    loop = TrainingLoop(Accelerator(cpu=True), model, model.parameters(), lr=1e-3, schedule=warmup_schedule(10))
    x = torch.ones(2, 3)
    for _ in range(3):
        loop.step(lambda j: {"loss": loop.model(x).pow(2).mean()})
    rate = loop.lr
    assert loop.scheduler.optimizer.state  # AdamW's moments exist
    assert loop.back_off(0.25) == rate * 0.25 and not loop.scheduler.optimizer.state
    loop.step(lambda j: {"loss": loop.model(x).pow(2).mean()})
    assert abs(loop.lr - 1e-3 * 0.25 * warmup_schedule(10)(4)) < 1e-12  # the schedule goes on at the new base
