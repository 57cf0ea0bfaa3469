"""Calibrated forgetting: measure where a run stands at each evaluation, stop at a rule,
and keep the best weights.

At every ``--eval-every`` step (and once from the evaluation before training) the run
measures the numbers that say whether the forget set now looks like data the model never
saw: the forget-vs-holdout membership AUCs (LOSS and Min-K%++; ``holdout_parity`` is the
larger distance of the two from 0.5) and, with an oracle, forget quality. These need only
scoring passes over the fixed evaluation samples (no generation), so they are always
measured; a stop rule or keep-best metric that needs generated answers (accuracy, model
utility) makes that evaluation a full one, which then also serves as the run's "during"
evaluation.

``--stop-when RULE`` (see ``stop_rules``) ends training at the first evaluation where the
rule holds. ``--keep-best METRIC`` remembers the trainable weights of the best evaluation
by that metric among those whose model utility is at least ``--utility-floor`` x the
original's (retain utility's, the retain set's part of it, on data without TOFU's other
utility splits), and puts them back when training ends, so the "after" evaluation, the saved
model and the relearning check see them; the summary says which step they came from.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

from tui_unlearn import events as ev
from tui_unlearn.engine.collateral import add_general, add_knowledge
from tui_unlearn.engine.model_access import any_process, evaluation_model
from tui_unlearn.engine.stop_rules import (
    PARITY,
    StopRule,
    better,
    canonical,
    holdout_parity,
    needs_generation,
    parse_rule,
    splits_needed,
)
from tui_unlearn.phase_names import Phase

# Always measured when the run has what they need (a holdout set; an oracle).
ALWAYS = ("forget_quality", PARITY, "mia_auc_loss", "mia_auc_min_k_pp")
FORGET_ACCURACY = "forget_accuracy"
# What the Calibration event and the summary's history carry (plus the rule's and keep-best's metrics).
REPORTED = ALWAYS + (
    "model_utility",
    "retain_utility",
    "utility_ratio",
    "privleak",
    FORGET_ACCURACY,
    "forget_truth_ratio",
)
SUMMARY_KEY = "calibration"
KNOWLEDGE_KEPT = "knowledge_knowledge_kept"  # values_from's name for aggregates["knowledge"]["knowledge_kept"]


def values_from(
    aggregates: dict[str, dict[str, float]],
    field: dict[str, Any],
    original_utility: float | None,
    utility: str = "model_utility",
) -> dict[str, float | None]:
    """Every calibration number of one evaluation, flat: ``<split>_<metric>`` for each split
    aggregate, the forget split's ``mia_auc_*``, ``holdout_parity``, and the field metrics
    (forget_quality, model_utility, retain_utility, privleak, mia_auc) with ``utility_ratio``:
    ``utility`` (the one the original was measured by) over ``original_utility``. NaN -> None."""
    values: dict[str, float | None] = {}
    for split, metrics in aggregates.items():
        for name, value in metrics.items():
            values[f"{split}_{name}"] = value
    forget = aggregates.get("forget", {})
    values.update({k: v for k, v in forget.items() if k.startswith("mia_auc_")})
    values[PARITY] = holdout_parity(forget)
    for key in ("forget_quality", "model_utility", "retain_utility", "privleak", "mia_auc"):
        values[key] = field.get(key)
    mu = values.get(utility)
    values["utility_ratio"] = mu / original_utility if mu is not None and original_utility else None
    return {
        k: (None if v is None or (isinstance(v, float) and not math.isfinite(v)) else float(v))
        for k, v in values.items()
    }


@dataclass
class Calibration:
    """A run's stop rule and keep-best choice, and what it has seen so far."""

    rule: StopRule | None = None
    keep_best: str | None = None
    utility_floor: float = 0.0  # fraction of the original's model utility; 0: no floor
    original_utility: float | None = None
    # what utility_ratio divides: model_utility, or retain_utility where the data has no more
    utility_basis: str = "model_utility"
    start_distance: float | None = None
    best_step: int | None = None
    best_value: float | None = None
    best_weights: dict[str, Any] | None = None
    # The weights training started from, held while no evaluation after it has kept the floor:
    # a run none of whose evaluations kept it ends on them (a calibrated run never ends on a
    # model past its floor) rather than on its last step.
    start_weights: dict[str, Any] | None = None
    start_step: int = 0
    floor_missed: bool = False  # the run ended on start_weights: nothing trained kept the floor
    # The model training started from is itself a candidate (step 0 of a run that did not
    # resume): a run none of whose evaluations improves on it by keep_best ends on it.
    start_candidate: bool = False
    no_improvement: bool = False  # the run ended on start_weights: nothing trained beat the start
    floor_kept_after_start: bool = False  # some evaluation after the start kept the floor
    floor_lost_after_start: bool = False  # some evaluation after the start fell past it
    knowledge_measured: bool = False  # some evaluation measured knowledge_kept (the floor then counts it)
    met_step: int | None = None
    is_best: bool = False  # the last observed evaluation is the best so far
    by_default: bool = False  # keep-best chosen by the run (--calibrate), not asked for
    knowledge_floor: float = 0.0  # knowledge_kept an evaluation must keep to count (--guard-knowledge)
    history: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_config(cls, config: Any) -> Calibration:
        return cls(
            rule=parse_rule(config.stop_when) if config.stop_when else None,
            keep_best=canonical(config.keep_best) if config.keep_best else None,
            utility_floor=config.utility_floor if config.keep_best else 0.0,
            knowledge_floor=config.guard_knowledge,
        )

    # ---- what to measure ----
    def wanted(self) -> list[str]:
        names = list(ALWAYS)
        if self.rule is not None:
            names += self.rule.metrics
        if self.keep_best:
            names.append(self.keep_best)
        if self.utility_floor > 0:
            names.append("utility_ratio")
        return list(dict.fromkeys(names))

    @property
    def full(self) -> bool:
        """Whether measuring needs generated answers (then it is a full evaluation)."""
        return any(needs_generation(name) for name in self.wanted())

    def splits(self, available: dict[str, list]) -> dict[str, list]:
        names = set().union(*(splits_needed(n) for n in self.wanted()))
        if self.full:
            names = set(available)  # the full evaluation doubles as the run's "during" evaluation
        return {n: available[n] for n in available if n in names}

    # ---- judging one evaluation ----
    def observe(self, step: int, values: dict[str, float | None]) -> ev.Calibration:
        """Record ``values`` of the evaluation at ``step``; the event says where the run stands.
        Updates the best step (not the weights: the caller snapshots them when ``is_best``)."""
        self.is_best = False
        floor_met = None
        if self.utility_floor > 0:
            ratio = values.get("utility_ratio")
            floor_met = ratio is not None and ratio >= self.utility_floor
            # Knowledge the run was never told to touch counts too, where it was measured
            # (an original stating enough of the probe's facts: engine.collateral.add_knowledge).
            kept = values.get(KNOWLEDGE_KEPT)
            self.knowledge_measured |= kept is not None
            if floor_met and self.knowledge_floor > 0 and kept is not None and kept < self.knowledge_floor:
                floor_met = False
        if step > self.start_step and floor_met is not None:
            self.floor_kept_after_start |= floor_met
            self.floor_lost_after_start |= not floor_met
        if self.keep_best and (step > 0 or self.start_candidate) and floor_met is not False:
            value = values.get(self.keep_best)
            if value is not None and (self.best_value is None or better(self.keep_best, value, self.best_value)):
                self.best_step, self.best_value, self.is_best = step, value, True
        met, distance, progress = False, None, None
        if self.rule is not None:
            met = self.rule.holds(values)
            distance = self.rule.distance(values)
            if step == 0:
                self.start_distance = distance
            if distance is not None and self.start_distance:
                progress = max(0.0, min(1.0, 1.0 - distance / self.start_distance))
            elif met:
                progress = 1.0
            if met and step > 0 and self.met_step is None:
                self.met_step = step
        reported = {k: values.get(k) for k in list(REPORTED) + self.wanted()}
        self.history.append({"step": step, **reported})
        return ev.Calibration(
            step,
            reported,
            self.rule.text if self.rule else None,
            met,
            distance,
            progress,
            self.keep_best,
            self.best_step,
            self.best_value,
            floor_met,
        )

    def summary(self, steps_run: int, kept_step: int | None, stopped_at: int | None) -> dict[str, Any]:
        return {
            "rule": self.rule.text if self.rule else None,
            "rule_met_step": self.met_step,
            "stopped_at": stopped_at,
            "keep_best": self.keep_best,
            "by_default": self.by_default,
            "utility_floor": self.utility_floor if self.keep_best else None,
            "utility_basis": self.utility_basis,
            "best_value": self.best_value,
            "kept_step": kept_step,
            "floor_missed": self.floor_missed,
            "no_improvement": self.no_improvement,
            "steps_run": steps_run,
            "history": self.history,
        }


# ---- the engine's side: measuring a model, snapshots ----


def start(ctx: Any) -> Calibration | None:
    """The run's Calibration, judged once on the evaluation before training (step 0); None
    when the run never evaluates during training or has neither a stop rule nor a keep-best
    metric. Without either nothing would read the numbers, and measuring them at every
    evaluation costs about as much as the training steps themselves on the bundled model
    (``bench/bench_run.py``); the before and after evaluations report them anyway."""
    config = ctx.config
    if not config.eval_every:
        return None
    calib = Calibration.from_config(config)
    before_field = ctx.field_metrics.get(Phase.BEFORE, {})
    if not (calib.rule or calib.keep_best) and config.calibrate:
        calib.keep_best = default_keep_best(ctx.before.aggregates, before_field)
        calib.utility_floor = config.utility_floor if calib.keep_best else 0.0
        calib.by_default = calib.keep_best is not None
    if not (calib.rule or calib.keep_best):
        return None  # nothing to judge: no extra passes
    if calib.by_default:
        known = known_holdout(ctx.before.aggregates)
        if calib.keep_best == "forget_quality":
            why = "against the oracle"
        elif known is not None:
            why = (
                f"the holdout is no baseline of never-seen facts: the original states {known[0]:.0%} of its answers "
                f"({known[1]:.0%} of the forget set's), so holdout parity would keep the forget set as known"
            )
        else:
            why = "forget vs holdout membership AUCs"
        ctx.log(
            f"calibrating: the run ends on the weights of its evaluation with the best {calib.keep_best} ({why}) "
            f"among those keeping utility >= {calib.utility_floor:g} x the original's, not on where the last step "
            "overshot to (--no-calibrate: the last step's weights)"
        )
    choose_utility(calib, before_field, (ctx.extra.get("null_reasons") or {}), ctx.log)
    values = values_from(ctx.before.aggregates, before_field, calib.original_utility, calib.utility_basis)
    # The original is a candidate where "no better than it" is unambiguous: forget accuracy (the
    # fewest forget answers stated), and only where it states some of them. Parity and forget
    # quality are not: a run that overshoots parity by more than the original missed it still
    # forgot. A resumed run's weights are not the original's.
    calib.start_candidate = (
        ctx.done == 0 and calib.keep_best == FORGET_ACCURACY and (values.get(FORGET_ACCURACY) or 0) > 0
    )
    if calib.keep_best and (calib.utility_floor > 0 or calib.start_candidate):
        calib.start_step, calib.start_weights = ctx.done, snapshot(ctx)
    event = calib.observe(0, values)
    ctx.record(event)
    if calib.rule is not None:
        missing = [c.metric for c in calib.rule.clauses if values.get(c.metric) is None]
        if missing:
            ctx.log(
                f"stop rule: {', '.join(missing)} cannot be measured on this run (no oracle or no holdout set?); "
                "the rule can never hold"
            )
        elif event.rule_met:
            ctx.log(
                f"stop rule {calib.rule.text!r} already holds for the original model; it stops the run at the first evaluation"
            )
    ctx.calibration = calib
    return calib


# A holdout whose answers the original states this often (as a share of how often it states
# the forget set's, and at least KNOWN_HOLDOUT_MIN) is known to it: no "never seen" baseline.
KNOWN_HOLDOUT = 0.5
KNOWN_HOLDOUT_MIN = 0.2


def known_holdout(aggregates: dict[str, Any]) -> tuple[float, float] | None:
    """(holdout accuracy, forget accuracy) of the original when its graded holdout is facts it
    knows (a user's holdout of real facts a pretrained model states), else None. Parity with
    such a holdout means "as likely as facts the model knows", not "never seen"."""
    holdout = aggregates.get("holdout", {}).get("accuracy")
    forget = aggregates.get("forget", {}).get("accuracy")
    if holdout is None or not forget:
        return None
    if holdout >= KNOWN_HOLDOUT_MIN and holdout >= KNOWN_HOLDOUT * forget:
        return float(holdout), float(forget)
    return None


def default_keep_best(aggregates: dict[str, Any], before_field: dict[str, Any]) -> str | None:
    """What a run calibrates by when not told: forget quality where the original was measured
    against an oracle, else holdout parity where the run has a holdout set of facts the original
    does not know, else forget accuracy where that holdout is known to it (the fewest forget
    answers stated: no never-seen baseline to aim at), else nothing."""
    if before_field.get("forget_quality") is not None:
        return "forget_quality"
    if holdout_parity(aggregates.get("forget", {})) is not None:
        return FORGET_ACCURACY if known_holdout(aggregates) is not None else PARITY
    return None


def choose_utility(calib: Calibration, before_field: dict[str, Any], reasons: dict[str, str], log: Any) -> None:
    """The utility ``utility_ratio`` (and so the floor) is measured by: TOFU's model utility
    when the original has it, else the retain set's part of it (a user's own data has no
    real-authors or world-facts splits); no floor, said with the reason, when neither."""
    full, retain = before_field.get("model_utility"), before_field.get("retain_utility")
    calib.utility_basis = "model_utility" if full is not None or retain is None else "retain_utility"
    calib.original_utility = full if full is not None else retain
    if calib.utility_floor <= 0:
        return
    if calib.original_utility is None:
        why = reasons.get("retain_utility") or reasons.get("model_utility") or "not measured"
        log(f"keep-best: no utility floor applies: the original's retain utility could not be measured: {why}")
        calib.utility_floor = 0.0
    elif calib.original_utility <= 0:  # a fraction of nothing: every evaluation would pass
        log(f"keep-best: no utility floor applies: the original's {calib.utility_basis} is 0")
        calib.utility_floor = 0.0
    elif full is None:
        log(
            f"keep-best: the utility floor reads retain_utility (the original's: {retain:.4g}): TOFU's nine-part "
            "model utility cannot be measured on this data (see null_reasons.model_utility)"
        )


def measure(ctx: Any, step: int, *, record_evaluation: bool) -> dict[str, float | None]:
    """Evaluate the model being trained on what the calibration needs: the run's recipe in
    full when a metric needs generated answers, else one scoring pass over the forget,
    holdout (and, if asked, retain) samples; the recipe's headline numbers (forget quality
    against the oracle, model utility, ...) come from ``plan.headline`` as after the run.
    With ``record_evaluation`` (a full evaluation standing in for the quick "during" one)
    it is recorded as the run's Evaluation event."""
    import torch

    from tui_unlearn.metrics.evaluate import evaluate_splits
    from tui_unlearn.recipes.evaluate import evaluate_plan

    calib, plan = ctx.calibration, ctx.plan
    model, tokenizer = evaluation_model(ctx), ctx.loaded.tokenizer
    with torch.no_grad():
        if calib.full:
            result = ctx.eval_batch.run(lambda rows: evaluate_plan(plan, model, tokenizer, batch_size=rows))
            ctx.full_evaluations[step] = copy.deepcopy(result)  # before the general numbers join it
        else:
            splits = scoring_splits(calib.splits(plan.working_splits()), calib.wanted(), ctx.oracle is not None)
            result = ctx.eval_batch.run(
                lambda rows: evaluate_splits(
                    model,
                    tokenizer,
                    splits,
                    batch_size=rows,
                    max_new_tokens=plan.max_new_tokens,
                    generate=False,
                    field_metrics=True,
                    max_length=plan.max_length,
                )
            )
    # What no method should take, measured on the same model (the guard at this step reuses them).
    add_general(ctx, result.aggregates, model, Phase.DURING, step)
    add_knowledge(ctx, result.aggregates, model, Phase.DURING, step)
    if record_evaluation:
        ctx.record(ev.Evaluation(step, Phase.DURING, result.aggregates, ctx.elapsed()))
    return values_from(
        result.aggregates, plan.headline(result, ctx.oracle).values, calib.original_utility, calib.utility_basis
    )


def scoring_splits(splits: dict[str, list[dict]], wanted: list[str], has_oracle: bool) -> dict[str, list[dict]]:
    """The splits a scoring-only measurement passes, without the answer variants nothing
    asked for: paraphrased and perturbed answers cost six extra scorings a record and only
    truth ratios read them (forget quality on the forget split; a rule on a split's truth ratio)."""
    keep = {n.partition("_")[0] for n in wanted if n.endswith("_truth_ratio")}
    if has_oracle and "forget_quality" in wanted:
        keep.add("forget")
    return {
        name: records if name in keep else [_without_variants(r) for r in records] for name, records in splits.items()
    }


def _without_variants(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in ("paraphrased_answer", "perturbed_answers")}


def judge(ctx: Any, step: int, *, record_evaluation: bool) -> bool:
    """Measure and judge the model at ``step``; snapshot it when it is the best so far.
    Returns whether the stop rule holds (the same answer on every process)."""
    return settle(ctx, step, measure(ctx, step, record_evaluation=record_evaluation))


def settle(ctx: Any, step: int, values: dict[str, float | None]) -> bool:
    """Judge the measured ``values`` of the model at ``step`` (``judge``'s second half)."""
    calib = ctx.calibration
    event = calib.observe(step, values)
    ctx.record(event)
    # Only the weights training may end on are evaluated "after": the best so far and the latest.
    ctx.full_evaluations = {s: r for s, r in ctx.full_evaluations.items() if s in (step, calib.best_step)}
    if calib.keep_best and calib.is_best:
        calib.best_weights = snapshot(ctx)
        calib.start_weights = None  # an evaluation kept the floor: the start is no longer the fallback
    if calib.rule is not None:
        shown = ", ".join(f"{m} {_fmt(event.values.get(m))}" for m in dict.fromkeys(calib.rule.metrics))
        ctx.log(
            f"stop rule {calib.rule.text!r} at step {step}: {shown}" + (" — met, stopping" if event.rule_met else "")
        )
    return any_process(ctx, event.rule_met)


def snapshot(ctx: Any) -> dict[str, Any]:
    """CPU copies of the trainable parameters (all the run can change), by name."""
    return {
        name: p.detach().to("cpu", copy=True) for name, p in evaluation_model(ctx).named_parameters() if p.requires_grad
    }


def restore(ctx: Any, weights: dict[str, Any]) -> None:
    import torch

    params = dict(evaluation_model(ctx).named_parameters())
    with torch.no_grad():
        for name, saved in weights.items():
            params[name].copy_(saved.to(params[name].device))


def finish(ctx: Any, stopped_at: int | None) -> None:
    """After training: put the best weights back (keep-best) and write the summary entry.
    ``stopped_at``: the step at which the stop rule ended training (None: it did not)."""
    calib = ctx.calibration
    if calib is None:
        return
    steps_run = ctx.done
    kept = None
    if calib.keep_best and ctx.status in ("finished", "diverged"):
        utility = calib.utility_basis.replace("_", " ")
        floor = f" with {utility} >= {calib.utility_floor:g} x the original's" if calib.utility_floor else ""
        if (
            calib.best_weights is None
            and calib.start_weights is not None
            and calib.floor_lost_after_start
            and not calib.floor_kept_after_start
        ):
            # Every evaluation of the trained model fell past the floor: the last weights are
            # damaged beyond what the run may end on, so it ends where it started, and says so.
            restore(ctx, calib.start_weights)
            kept, calib.floor_missed = calib.start_step, True
            ctx.done = kept
            knowledge = (
                f" and knowledge kept >= {calib.knowledge_floor:g}"
                if calib.knowledge_floor and calib.knowledge_measured
                else ""
            )
            data = getattr(ctx, "data", None)
            retain = "" if getattr(data, "retain", None) else "a retain set (--retain), "
            ctx.log(
                f"keep-best: no evaluation after step {kept} kept{floor.replace(' with', '')}{knowledge}; "
                f"the run ends on the weights it started from (step {kept}): nothing it learned kept the floor. "
                f"{retain[0].upper() + retain[1:] if retain else ''}{'a' if retain else 'A'} lower --lr, fewer "
                "--steps or a lower --utility-floor may; --no-calibrate keeps the last step's"
            )
        elif calib.best_weights is None and calib.best_step == calib.start_step and calib.start_weights is not None:
            # No evaluation of the trained model beat the one training started from (IDK on
            # facts a chat model knows: its refusals never displaced an answer, and forget
            # accuracy rose): ending on a later step would keep a model no better by the very
            # number calibration aims at, and worse by what training did to it.
            restore(ctx, calib.start_weights)
            kept, calib.no_improvement = calib.start_step, True
            ctx.done = kept
            ctx.log(
                f"keep-best: no evaluation after step {kept}{floor} improved on its {calib.keep_best} "
                f"({_fmt(calib.best_value)}): the run did not forget by this measure and ends on the weights it "
                f"started from (step {kept}). A higher --lr, more --steps or another --algorithm may; "
                "--no-calibrate keeps the last step's"
            )
        elif calib.best_weights is None:
            ctx.log(
                f"keep-best: no evaluation{floor} measured {calib.keep_best}; keeping the last weights (step {steps_run})"
            )
        else:
            kept = calib.best_step
            if kept != steps_run:
                restore(ctx, calib.best_weights)
                ctx.log(f"keep-best: restored the weights of step {kept} ({calib.keep_best} {_fmt(calib.best_value)})")
            ctx.done = kept
        calib.best_weights = None
    calib.start_weights = None
    ctx.extra[SUMMARY_KEY] = calib.summary(steps_run, kept, stopped_at)


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3g}"
