"""An unlearning run as a short sequence of phases over a :class:`RunContext`.

load inputs -> (session) -> evaluate before -> prepare training -> train -> evaluate after
-> relearning check -> save -> finish. Each phase reads and fills the context, so each can
be tested alone. Every process of a launched run goes through every phase (evaluation
runs on each, on the same records, so the numbers do not depend on the process count);
only the main process writes the session and emits events.
"""

from __future__ import annotations

import copy
import random
import time
from typing import Any

from tui_unlearn import events as ev
from tui_unlearn.engine import calibration, checkpointing, guard
from tui_unlearn.engine.collateral import (
    add_general,
    add_knowledge,
    collateral_damage,
    fill_general_retain,
    general_reference,
    knowledge_reference,
    wants_general_retain,
)
from tui_unlearn.engine.context import RunContext, RunResult, now
from tui_unlearn.engine.inputs import eval_splits_for, load_run_data, sample
from tui_unlearn.engine.model_access import any_process, evaluation_model
from tui_unlearn.errors import RunFailedError
from tui_unlearn.metrics.registry import CORE_HEADLINES
from tui_unlearn.metrics.registry import SUMMARY_HEADLINES as HEADLINE_KEYS
from tui_unlearn.phase_names import Phase
from tui_unlearn.setting_names import in_the_tui

PROBES_PER_SPLIT = {"forget": 3, "retain": 2}
# "alternate" shares the forget stream's seed: same order, so its batch i pairs with forget's.
STREAM_SEED_OFFSETS = {"forget": 0, "alternate": 0, "retain": 1}
ADAPTER_DIR = "adapter"
# Records per split whose greedy answers an evaluation during training grades (accuracy, F1),
# so those series move during the run; the scores (loss, token accuracy) use the whole sample.
ANSWERED_DURING = 4


# ---- load (before any session exists: bad input fails here) ----


def load_inputs(ctx: RunContext, stdin_text: str | None, *, needs_retain: str | None = None) -> None:
    """Data, then the model on the accelerator's device; ``needs_retain`` names a method that
    cannot run without retain data."""
    from tui_unlearn.models.loading import load_model

    config = ctx.config
    warm = ctx.warm if stdin_text is None else None  # a sweep's trials share these (engine.warm)
    ctx.log("loading data")
    if warm is not None:
        ctx.data = warm.inputs(config, "data", lambda: load_run_data(config, None), copy_each=True)
    else:
        ctx.data = load_run_data(config, stdin_text)
    overlap = ctx.data.report.get("removed_from_holdout")
    if overlap:
        ctx.log(
            f"warning: {overlap} holdout records are also in the forget set; dropped them from the holdout "
            "(membership-inference figures on shared records mean nothing)"
        )
    if needs_retain and not ctx.data.retain and not wants_general_retain(ctx):
        raise RunFailedError(f"{needs_retain} needs retain data, but the retain set is empty")
    ctx.splits = eval_splits_for(config, ctx.data)
    ctx.log(f"loading model {config.model}")
    device = config.device
    if ctx.accelerator is not None:  # the accelerator's device for this process ("cpu", "cuda:1", ...)
        where = ctx.accelerator.device
        device = "cpu" if where.type == "cpu" else str(where)

    def load() -> Any:
        return load_model(
            config.model,
            device=device,
            dtype=config.dtype,
            trust_remote_code=config.trust_remote_code,
            models_cache=config.models_cache,
            log=ctx.log,
        )

    ctx.loaded = warm.model(config, load, ctx.log) if warm is not None else load()


def prepare_evaluation(ctx: RunContext) -> None:
    """Load the recipe's evaluation splits (before any session exists, so a missing file
    fails the run at once); their question/answer forget / retain / holdout splits become
    the ones the quick evaluations, the probes and the relearning check use."""
    from tui_unlearn.data.formatting import use_run_format
    from tui_unlearn.metrics.batching import EvalBatch
    from tui_unlearn.recipes.evaluate import first_forget_prompt
    from tui_unlearn.recipes.plan import build_plan, missing_text

    # Before anything is encoded: training, evaluation and probes all ask in this format.
    prompt_format = use_run_format(ctx.config, ctx.loaded.tokenizer, ctx.loaded.model, ctx.log)
    ctx.log(f"prompt format: {prompt_format.name} ({prompt_format.source})")

    def plan() -> Any:
        return build_plan(ctx.config, ctx.data, model_max_length=context_length(ctx.loaded.model))

    ctx.plan = ctx.warm.inputs(ctx.config, "plan", plan) if ctx.warm is not None else plan()
    ctx.plan.prompt = first_forget_prompt(ctx.plan, ctx.loaded.tokenizer)
    for note in ctx.plan.notes:
        ctx.log(f"recipe {ctx.plan.recipe.name}: {note}")
    ctx.eval_batch = EvalBatch.for_model(
        ctx.loaded.model, ctx.plan.batch_tokens(ctx.loaded.tokenizer), ctx.config.eval_batch_size, ctx.log
    )
    ctx.splits.update(ctx.plan.working_splits())
    missing = missing_text(ctx.plan.missing)
    ctx.log(
        f"recipe {ctx.plan.recipe.name}: "
        + ", ".join(f"{n} {len(r)}" for n, r in ctx.plan.splits.items())
        + (f" (left out: {missing})" if missing else "")
    )


def load_oracle(ctx: RunContext) -> None:
    """The evaluation plan, then the oracle measured on its forget and holdout records."""
    from tui_unlearn.oracle import resolve_oracle

    if ctx.plan is None:
        prepare_evaluation(ctx)
    if ctx.is_main:
        plan = ctx.plan

        def oracle() -> Any:
            return resolve_oracle(
                ctx.config,
                {k: plan.splits[k] for k in ("forget", "holdout") if k in plan.splits},
                ctx.root,
                ctx.emit,
                identity=plan.identity(),
                max_length=plan.max_length,
            )

        ctx.oracle = ctx.warm.inputs(ctx.config, "oracle", oracle) if ctx.warm is not None else oracle()


def context_length(model: Any) -> int | None:
    """The model's longest sequence (``max_position_embeddings``), when it says."""
    return getattr(getattr(model, "config", None), "max_position_embeddings", None)


# ---- evaluation ----


def evaluate(ctx: RunContext, phase: Phase, step: int, model: Any = None):
    """Evaluate ``model`` (default: the model being trained) and record it.

    Before and after: the recipe's evaluation, every split and metric (``recipes``);
    during: the quick kind on samples of the forget and retain sets — scores (loss, token
    accuracy) on the sample, and the graded answers (accuracy, F1) of its first
    ``ANSWERED_DURING`` records per split; every record's answers with ``ctx.generate_during``
    (a stop rule on accuracy).
    """
    import torch

    config = ctx.config
    model = model if model is not None else evaluation_model(ctx)
    ctx.log(f"evaluating ({phase})")
    # The weights training ended on were evaluated in full at that step already (calibration):
    # the same weights, the same greedy evaluation, so that result stands (a diverged run's last
    # update may have touched them: evaluated again).
    measured = ctx.full_evaluations.get(step) if phase == Phase.AFTER and ctx.status != "diverged" else None
    with torch.no_grad():
        if measured is not None:
            ctx.log(f"evaluating ({phase}): these are the weights evaluated at step {step}; reusing that evaluation")
            result = copy.deepcopy(measured)
        elif phase != Phase.DURING:
            from tui_unlearn.recipes.evaluate import evaluate_plan

            result = ctx.eval_batch.run(
                lambda rows: evaluate_plan(ctx.plan, model, ctx.loaded.tokenizer, batch_size=rows)
            )
        else:
            from tui_unlearn.metrics.evaluate import evaluate_splits

            splits: dict[str, list[dict]] = {
                name: sample(ctx.splits[name], config.probe_samples, config.seed + 3)
                for name in ("forget", "retain")
                if name in ctx.splits
            }
            result = ctx.eval_batch.run(
                lambda rows: evaluate_splits(
                    model,
                    ctx.loaded.tokenizer,
                    splits,
                    batch_size=rows,
                    max_new_tokens=config.max_new_tokens,
                    field_metrics=False,
                    generate=ctx.generate_during,
                    max_length=ctx.plan.max_length,
                )
            )
            if not ctx.generate_during and ANSWERED_DURING:
                answered = {name: records[:ANSWERED_DURING] for name, records in splits.items()}
                graded = ctx.eval_batch.run(
                    lambda rows: evaluate_splits(
                        model,
                        ctx.loaded.tokenizer,
                        answered,
                        batch_size=rows,
                        max_new_tokens=config.max_new_tokens,
                        field_metrics=False,
                        generate=True,
                        max_length=ctx.plan.max_length,
                    )
                )
                for name, values in graded.aggregates.items():
                    scores = result.aggregates.setdefault(name, {})
                    for metric, value in values.items():
                        scores.setdefault(metric, value)  # the whole sample's scores stay
                if step <= config.eval_every:
                    ctx.log(
                        f"evaluating (during): accuracy and F1 from {ANSWERED_DURING} answered records per split, "
                        f"loss from up to {config.probe_samples}"
                    )
    for note in result.notes:
        ctx.log(f"evaluating ({phase}): {note}")
    add_general(ctx, result.aggregates, model, phase, step)
    add_knowledge(ctx, result.aggregates, model, phase, step)
    ctx.record(ev.Evaluation(step, phase, result.aggregates, ctx.elapsed()))
    return result


def headline(ctx: RunContext, phase: Phase, result: Any, oracle: Any = None) -> dict[str, Any]:
    """The recipe's headline numbers of ``result`` (against ``oracle``, default the run's),
    kept in ``ctx.field_metrics[phase]``; returns the summary fields that go with them:
    ``null_reasons`` (metric -> why it is None), ``headline_details`` and
    ``forget_quality_basis`` (what its KS test compared: truth_ratio or answer_nll)."""
    h = ctx.plan.headline(result, oracle if oracle is not None else ctx.oracle)
    values: dict[str, Any] = {key: None for key in HEADLINE_KEYS}
    values.update(h.values)
    ctx.field_metrics[phase] = values
    details = dict(ctx.extra.get("headline_details") or {})
    details[phase] = h.details
    return {
        "null_reasons": dict(h.reasons),
        "headline_details": details,
        "forget_quality_basis": h.details.get("forget_quality_basis"),
    }


def probe(ctx: RunContext, step: int) -> None:
    """Generate the probe questions' answers now and record them beside the original's."""
    from tui_unlearn.metrics.generation import generate_answers

    if not ctx.probes:
        return
    model = evaluation_model(ctx)
    questions = [p["question"] for p in ctx.probes]
    answers = ctx.eval_batch.run(
        lambda rows: generate_answers(
            model,
            ctx.loaded.tokenizer,
            questions,
            batch_size=rows,
            max_new_tokens=ctx.config.max_new_tokens,
            max_length=ctx.plan.max_length,
            log=None if ctx.original_answers else lambda note: ctx.log(f"probe answers: {note}"),  # said once
        )
    )
    record_probes(ctx, step, answers)


def record_probes(ctx: RunContext, step: int, answers: list[str]) -> None:
    if not ctx.original_answers:
        ctx.original_answers = answers
    rows = [{**p, "original": ctx.original_answers[i], "current": answers[i]} for i, p in enumerate(ctx.probes)]
    ctx.record(ev.ProbeAnswers(step, rows))


def choose_probes(ctx: RunContext) -> None:
    ctx.probes = [
        {"split": name, "question": r["question"], "answer": r["answer"]}
        for name, n in PROBES_PER_SPLIT.items()
        for r in [r for r in ctx.splits.get(name, []) if r["question"]][:n]
    ] + [{"split": "custom", "question": q, "answer": ""} for q in ctx.config.probes]


def evaluate_before(ctx: RunContext) -> None:
    """The original model's evaluation and probe answers, from the cache when the same model
    was already evaluated on the same records with the same settings."""
    from tui_unlearn.engine import eval_cache

    choose_probes(ctx)
    general_reference(ctx)
    knowledge_reference(ctx)
    questions = [p["question"] for p in ctx.probes]
    key = eval_cache.cache_key(ctx, questions) if ctx.config.eval_cache else None
    cached = eval_cache.load(ctx.root, key)
    if cached is not None and len(cached["probe_answers"]) == len(questions):
        ctx.log("evaluating (before): reusing the cached evaluation of this model on these records")
        ctx.before = eval_cache.as_result(cached)
        add_general(ctx, ctx.before.aggregates, None, Phase.BEFORE)
        add_knowledge(ctx, ctx.before.aggregates, None, Phase.BEFORE)
        ctx.record(ev.Evaluation(0, Phase.BEFORE, ctx.before.aggregates, ctx.elapsed()))
        record_probes(ctx, 0, cached["probe_answers"])
    else:
        ctx.before = evaluate(ctx, Phase.BEFORE, 0, ctx.loaded.model)
        probe(ctx, 0)
        if ctx.is_main:
            eval_cache.store(ctx.root, key, ctx.before, ctx.original_answers)
    ctx.examples = [{"phase": Phase.BEFORE, **row} for row in ctx.before.examples]
    # An interrupted run keeps the reasons of its last evaluation.
    ctx.extra.update(headline(ctx, Phase.BEFORE, ctx.before), recipe=ctx.plan.describe())
    if ctx.session is not None:
        ctx.session.write_examples(ctx.examples)
        ctx.session.update_summary(
            metrics={Phase.BEFORE: ctx.before.aggregates},
            field_metrics=ctx.field_metrics,
            oracle=ctx.oracle.describe() if ctx.oracle else None,
            **ctx.extra,
        )


def evaluate_after(ctx: RunContext) -> None:
    if ctx.status == "diverged":
        ctx.log(f"loss diverged at step {ctx.done + 1}; keeping the weights of step {ctx.done}")
    if ctx.status == "interrupted":
        return
    ctx.after = evaluate(ctx, Phase.AFTER, ctx.done)
    probe(ctx, ctx.done)
    ctx.examples += [{"phase": Phase.AFTER, **row} for row in ctx.after.examples]
    ctx.extra.update(headline(ctx, Phase.AFTER, ctx.after))
    ctx.extra["over_forgetting"] = over_forgetting(ctx, ctx.field_metrics[Phase.AFTER], ctx.before.aggregates)
    ctx.extra["collateral_damage"] = collateral_damage(ctx, ctx.before.aggregates, ctx.after.aggregates)
    # The recipe's own headline numbers sit at the top of the summary, as forget quality always has.
    ctx.extra.update({key: ctx.field_metrics[Phase.AFTER].get(key) for key in ctx.plan.recipe.headline_keys})
    if ctx.session is not None:
        ctx.session.write_examples(ctx.examples)


def over_forgetting(
    ctx: RunContext, field: dict[str, Any], before: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """Forget answers now *less* likely than never-seen ones (forget-vs-holdout AUC below
    0.5 by more than holdout parity's tolerance): the model avoids exactly what it was told
    to forget, which gives that set away as surely as remembering it. Said by name. Not where
    the holdout is facts the original knows (``before``: its evaluation): forgotten answers
    less likely than known ones are what forgetting means there."""
    from tui_unlearn.engine.stop_rules import DEFAULT_PARITY_TOLERANCE

    auc = field.get("mia_auc")
    if not isinstance(auc, (int, float)) or auc >= 0.5 - DEFAULT_PARITY_TOLERANCE:
        return None
    if before is not None and calibration.known_holdout(before) is not None:
        return None
    privleak = field.get("privleak")
    ctx.log(
        f"over-forgetting: the forget set is now less likely than the holdout (forget-vs-holdout AUC {auc:.2f}"
        + (f", privleak {privleak:+.1f}" if isinstance(privleak, (int, float)) else "")
        + "); calibration (on by default), fewer --steps or a lower --lr stop nearer 'never seen'"
        + in_the_tui("steps", "lr")
    )
    return {"mia_auc": auc, "privleak": privleak}


# ---- training ----


def prepare_training(ctx: RunContext) -> None:
    """The trained model (student, LoRA adapters), the reference it is compared with, the
    regularisers, the batch streams and the training loop."""
    from tui_unlearn.algorithms.references import References, reference_logprob_table
    from tui_unlearn.data.formatting import encode_examples, pad_token_id
    from tui_unlearn.engine.regularisers import ActiveRegularisers
    from tui_unlearn.engine.streams import BatchStream
    from tui_unlearn.engine.training import TrainingLoop, warmup_schedule
    from tui_unlearn.models import lora

    config, algorithm, acc = ctx.config, ctx.algorithm, ctx.accelerator
    hp = config.hparams
    original = ctx.loaded.model
    tok = ctx.loaded.tokenizer
    model = algorithm.make_student(original, hp) if algorithm.make_student is not None else original
    separate_student = model is not original
    if config.lora_r:
        model = lora.add_adapters(
            model,
            r=config.lora_r,
            alpha=config.lora_alpha,
            dropout=config.lora_dropout,
            targets=config.lora_targets,
            seed=config.seed,
        )
    if config.gradient_checkpointing:
        ctx.checkpointed = checkpointing.enable(model, ctx.log, input_grads=bool(config.lora_r))
    ctx.model = model
    if algorithm.trainable_parameters is not None:
        keep = set(algorithm.trainable_parameters(model, hp))
        # Frozen for this run only: train() gives them back their gradients at the end.
        ctx.method_state["frozen"] = [p for name, p in model.named_parameters() if p.requires_grad and name not in keep]
        for p in ctx.method_state["frozen"]:
            p.requires_grad_(False)
    ctx.method_state["seed"] = config.seed
    ctx.regularisers = ActiveRegularisers(config, model)

    # The reference: cached log-probabilities always; a model only when logits are needed.
    needs_model = algorithm.needs_reference or ActiveRegularisers.need_reference(config)
    if not needs_model:
        ctx.references = References()
    elif config.lora_r and not separate_student:
        ctx.references = References.of_model(model, disable_adapter=True, pause=ctx.regularisers.paused)
    elif separate_student:
        ctx.references = References.of_model(_frozen(original))
    else:
        ctx.log("keeping a frozen copy of the original as the reference model")
        ctx.references = References.of_model(_frozen(copy.deepcopy(original)))

    fill_general_retain(ctx)
    rng = random.Random(config.seed)
    forget_records = ctx.data.forget
    if algorithm.relabel_forget is not None:
        forget_records = algorithm.relabel_forget(forget_records, hp, rng)

    def encode(records):
        return encode_examples(tok, [(r["question"], r["answer"]) for r in records], config.max_length)

    pad_id = pad_token_id(tok)
    encoded = {}
    if algorithm.needs_forget:
        encoded["forget"] = encode(forget_records)
    if algorithm.alternate_forget is not None:
        encoded["alternate"] = encode(algorithm.alternate_forget(forget_records, hp, rng))
    if ctx.data.retain:
        encoded["retain"] = encode(ctx.data.retain)
    # Before the first update the trained model still computes the original (LoRA's B is 0),
    # unless it is a separate student: then the original itself is the reference.
    reference_source = original if separate_student else model
    for stream in algorithm.reference_logprobs:
        ctx.log(f"caching the original's log-probabilities of the {stream} set")
        table = reference_logprob_table(
            reference_source, encoded[stream], pad_id, device=acc.device, autocast=acc.autocast
        )
        ctx.references.cache(stream, table)

    for name, examples in encoded.items():
        offset = STREAM_SEED_OFFSETS[name]
        # A resumed run continues each stream at the position the steps done had reached.
        per_step = max(1, min(config.batch_size, len(examples))) * config.grad_accum * acc.num_processes
        ctx.streams[name] = BatchStream(
            examples, config.batch_size, config.seed + offset, pad_id, acc, start=ctx.done * per_step
        )

    model.train(False)  # the model's own dropout stays off: only --dropout adds noise
    params = [p for p in model.parameters() if p.requires_grad]
    ctx.loop = TrainingLoop(
        acc, model, params, lr=config.lr, schedule=warmup_schedule(config.steps), grad_clip=config.grad_clip
    )
    trainable, total = lora.trainable_counts(model)
    ctx.scale["trainable_parameters"] = trainable
    ctx.scale["parameters"] = total


def _frozen(model):
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def train(ctx: RunContext) -> None:
    """Step the method's loss on the training loop until ``config.steps``, a stop request,
    a divergence, or the stop rule (``--stop-when``). Evaluates every ``eval_every`` steps;
    with ``--keep-best`` the best evaluation's weights are put back at the end."""
    from tui_unlearn.algorithms.base import LossInputs
    from tui_unlearn.engine.checkpoint import CheckpointPolicy, save_checkpoint

    config, algorithm = ctx.config, ctx.algorithm
    policy = CheckpointPolicy(config.checkpoint_every)
    loop, regs = ctx.loop, ctx.regularisers
    model = loop.model
    ctx.train_started = time.monotonic() - ctx.train_before
    ctx.log(f"unlearning with {algorithm.name} for {config.steps} steps")
    streams = {name: ctx.streams.get(name) for name in ("forget", "retain", "alternate")}
    calib = calibration.start(ctx)
    watch = guard.start(ctx, calib.start_weights if calib is not None else None)
    stopped_at = None
    try:
        for step in range(ctx.done + 1, config.steps + 1):
            if any_process(ctx, bool(ctx.stop())):
                ctx.status = "interrupted"
                if ctx.done and config.checkpoint_every != 0:
                    ctx.log(
                        f"saving a checkpoint at step {ctx.done} (resume with --resume or from the Sessions screen)"
                    )
                    save_checkpoint(ctx)
                break

            def micro_step(j: int, step: int = step) -> dict:
                batches = {name: s.next() if s else None for name, s in streams.items()}
                inputs = LossInputs(
                    model=model,
                    forget=batches["forget"],
                    retain=batches["retain"],
                    reference=ctx.references,
                    hp=config.hparams,
                    step=step,
                    alternate=batches["alternate"],
                    state=ctx.method_state,
                )
                terms = dict(algorithm.loss(inputs))
                return regs.add_terms(inputs, terms)

            # Block dropout stays on through the backward passes too: gradient checkpointing
            # recomputes the forward there and must see the same network.
            regs.begin_step()
            checkpointing.arm(ctx.checkpointed)  # an evaluation since the last step put them in eval mode
            try:
                outcome = loop.step(micro_step)
            finally:
                regs.end_step()
            if outcome.status != "ok":
                ctx.status = "diverged"
                break
            ctx.done = step
            # Significant digits, not decimals: a loss of 3e-5 must not read as 0.
            ctx.last_losses = {k: float(f"{v:.7g}") for k, v in outcome.terms.items()}
            ctx.record(
                ev.StepLosses(
                    step, config.steps, ctx.last_losses, outcome.lr, round(time.monotonic() - ctx.train_started, 3)
                )
            )
            if ctx.session is not None:
                ctx.session.record_progress(step, config.steps)
            if step < config.steps and any_process(ctx, policy.due(step)):
                save_checkpoint(ctx)
                policy.saved()
            during = bool(config.eval_every) and step % config.eval_every == 0 and step < config.steps
            if during:
                # A full calibration evaluation stands in for the quick one.
                if calib is None or not calib.full:
                    evaluate(ctx, Phase.DURING, step)
                probe(ctx, step)
            # The guard looks at every evaluation and at the last step (before keep-best judges it).
            if watch is not None and (during or step == config.steps):
                backed_off = len(watch.backed_off)
                if guard.check(ctx, watch, step, loop):
                    break
                if len(watch.backed_off) > backed_off:
                    continue  # this step's weights are gone: nothing of it for keep-best to judge
            # The last step is a keep-best candidate too (the "after" evaluation comes later).
            if calib is not None and (during or (step == config.steps and calib.keep_best)):
                if calibration.judge(ctx, step, record_evaluation=during and calib.full) and step < config.steps:
                    stopped_at = step
                    break
    finally:
        regs.close()
        if config.gradient_checkpointing:
            checkpointing.disable(ctx.model)  # the evaluations and the relearning check run without
        # Parameters a method froze for the run (RMU's untouched layers) train again later
        # (the relearning check fine-tunes every weight).
        for p in ctx.method_state.pop("frozen", []):
            p.requires_grad_(True)
    guard.finish(ctx, watch)
    calibration.finish(ctx, stopped_at)


# ---- outputs ----


def save_outputs(ctx: RunContext) -> None:
    """The unlearned model (merged when LoRA) and/or the adapter, into the session."""
    from tui_unlearn.models import lora
    from tui_unlearn.models.loading import save_model

    config = ctx.config
    if not (config.save_model or config.save_adapter):
        return
    ctx.wait_for_everyone()
    if not ctx.is_main or ctx.session is None:
        return
    model = evaluation_model(ctx)
    # Each into a temp folder renamed into place when complete: a kill mid-save leaves no half model.
    if config.save_adapter and lora.is_peft(model):
        ctx.log("saving the LoRA adapter")
        folder = ctx.session.save_model(lambda tmp: lora.save_adapter(model, tmp), name=ADAPTER_DIR)
        ctx.extra["adapter_saved"] = str(folder)
    if config.save_model:
        # Merging is in place (no second copy of the weights): saving is the run's last use of the model.
        ctx.log("saving the unlearned model" + (" (adapters merged)" if lora.is_peft(model) else ""))
        weights = lora.merged(model)
        folder = ctx.session.save_model(lambda tmp: save_model(weights, ctx.loaded.tokenizer, tmp))
        ctx.extra["model_saved"] = str(folder)


def relearn(ctx: RunContext) -> None:
    from tui_unlearn.engine.relearn import relearn_check

    if ctx.after is None or not ctx.config.relearn_steps:
        return
    ctx.extra["relearn"] = relearn_check(ctx, evaluation_model(ctx), ctx.before, ctx.after)


def finish(ctx: RunContext) -> RunResult:
    from tui_unlearn.engine.checkpoint import discard_checkpoint

    config = ctx.config
    if ctx.status in ("finished", "diverged") and ctx.session is not None:
        discard_checkpoint(ctx.session.path)  # nothing left to resume
    metrics = {Phase.BEFORE: ctx.before.aggregates}
    extra: dict[str, Any] = dict(ctx.extra)
    if ctx.after is not None:
        metrics[Phase.AFTER] = ctx.after.aggregates
        extra.update({key: ctx.field_metrics[Phase.AFTER][key] for key in CORE_HEADLINES})
    train_seconds = round(time.monotonic() - ctx.train_started, 2) if ctx.train_started else 0.0
    summary = {}
    if ctx.session is not None:
        summary = ctx.session.update_summary(
            status=ctx.status,
            steps=ctx.done,
            total_steps=config.steps,
            seconds=ctx.elapsed(),
            train_seconds=train_seconds,
            ended=now(),
            hparams=config.hparams,
            data=ctx.data.report,
            scale=ctx.scale,
            final_losses=ctx.last_losses,
            metrics=metrics,
            model_saved=extra.pop("model_saved", None),
            field_metrics=ctx.field_metrics,
            **extra,
        )
    ctx.record(ev.RunFinished(ctx.status, summary))
    session = ctx.session
    return RunResult(ctx.status, getattr(session, "id", None), str(session.path) if session else None, summary)
