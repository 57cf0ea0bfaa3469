"""The one entry point both faces call: ``run(config, on_event, should_stop) -> RunResult``.

It loads the data and the model, evaluates before, runs the unlearning method step by
step on the project's one training loop (checking ``should_stop`` every step), evaluates
during and after, and keeps the session folder current the whole time. The same call
works in one process and in each process of ``accelerate launch``. It never imports
Textual.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tui_unlearn import events as ev
from tui_unlearn.config import ResolvedConfig, RunConfig, require_remote_code_consent, resolve
from tui_unlearn.engine import collateral, phases, trackers
from tui_unlearn.engine.context import OnEvent, RunContext, RunResult, ShouldStop, guarded, now
from tui_unlearn.engine.inputs import RunData, eval_splits_for, load_run_data, sample
from tui_unlearn.engine.runtime import apply_threads, make_accelerator
from tui_unlearn.paths import sessions_dir as default_sessions_dir
from tui_unlearn.phase_names import Phase
from tui_unlearn.sessions import check_sessions_dir_writable

__all__ = ["RunResult", "RunData", "run", "evaluate_model", "eval_splits_for", "load_run_data", "sample"]


def _context(
    config: ResolvedConfig, on_event: OnEvent | None, should_stop: ShouldStop | None, sessions_dir: str | Path | None
) -> RunContext:
    root = default_sessions_dir(sessions_dir)  # "~" expanded as every other command does
    ctx = RunContext(config, on_event or (lambda event: None), should_stop or (lambda: False), root)
    trackers.attach(ctx)  # --report-to: experiment trackers read the same events as the face
    return ctx


def run(
    config: RunConfig | None,
    on_event: OnEvent | None = None,
    should_stop: ShouldStop | None = None,
    *,
    sessions_dir: str | Path | None = None,
    stdin_text: str | None = None,
    resume: str | None = None,
    allow_remote_code: bool = False,
    warm: Any = None,
    machine: dict[str, Any] | None = None,
) -> RunResult:
    """Run one unlearning job end to end and return how it ended.

    ``resume``: a session (id, prefix or folder) of a killed or interrupted run to take up
    again from its checkpoint, in that session, with its own config (``config`` is ignored).
    ``allow_remote_code``: the caller's own consent to ``trust_remote_code`` for that resumed
    config (a session folder may come from someone else; its config alone is not consent).
    ``warm``: an ``engine.warm.WarmStart`` shared by the runs of a sweep in this process: the
    records, plan, oracle and loaded model of an earlier run with the same inputs are reused,
    its original weights restored from memory.
    ``machine``: with ``resume``, settings of this machine (``config.MACHINE_SETTINGS``:
    threads, device, evaluation batch size, ...) that replace the session's for the rest
    of the run; its other settings never change.

    Raises UnlearnError (ConfigError, DataError, ModelLoadError) for bad input found
    before the session exists; failures after that mark the session failed and raise
    RunFailedError (or the original UnlearnError) once the session is saved.
    """
    import torch

    from tui_unlearn.algorithms import get_algorithm
    from tui_unlearn.engine import checkpoint
    from tui_unlearn.engine import resume as resuming
    from tui_unlearn.sessions import Session

    root = default_sessions_dir(sessions_dir)
    previous = resuming.open_for_resume(root, resume) if resume is not None else None
    if previous is not None:
        config = resuming.config_of(previous)
        if not allow_remote_code:
            require_remote_code_consent(config, f"session {previous.id}'s config")
    config = resolve(config or RunConfig())
    steps = config.steps
    # Checked before anything is loaded: a damaged checkpoint costs nothing and changes nothing.
    checkpoint_step = checkpoint.verify_checkpoint(previous.path, config) if previous is not None else None
    changed: dict[str, Any] = {}
    # Read before the history after the checkpoint is dropped (a killed run's last events say when it stopped).
    time_before = resuming.time_before(previous, checkpoint_step or 0) if previous is not None else (0.0, 0.0)
    if previous is not None and machine:
        config, changed = resuming.on_this_machine(config, machine)
    ctx = _context(config, on_event, should_stop, root)
    ctx.warm = warm if previous is None else None  # a resumed run starts from its checkpoint
    check_sessions_dir_writable(ctx.root)  # before anything is loaded: a bad folder costs nothing
    ctx.algorithm = algorithm = get_algorithm(config.algorithm)
    threads = apply_threads(config.threads)
    ctx.accelerator = acc = make_accelerator(config)
    ctx.is_main = acc.is_main_process
    torch.manual_seed(config.seed)
    phases.load_inputs(ctx, stdin_text, needs_retain=algorithm.name if algorithm.needs_retain else None)
    phases.load_oracle(ctx)
    ctx.scale = {
        "processes": acc.num_processes,
        "batch_size": config.batch_size,
        "grad_accum": config.grad_accum,
        "effective_batch": config.batch_size * config.grad_accum * acc.num_processes,
        "mixed_precision": acc.mixed_precision,
        "device": str(acc.device),
        "threads": threads,
        "lora_r": config.lora_r,
        "eval_batch_size": ctx.eval_batch.size,
    }
    if previous is not None:
        ctx.session = previous if ctx.is_main else None
    elif ctx.is_main:
        stored = {**config.to_dict(), "_resolved": ctx.scale}
        ctx.session = Session.create(ctx.root, config.algorithm, stored)
    if previous is not None and ctx.session is not None:
        # Outside ``guarded``: a session another process took up meanwhile must not be marked failed.
        resuming.reclaim(ctx.session)
    ctx.wait_for_everyone()

    def body() -> RunResult:
        restored = False
        if previous is not None:
            if ctx.session is not None:
                resuming.drop_history_after(ctx.session, checkpoint_step or 0)
            restored = resuming.restore_before(ctx, previous)
            if acc.num_processes > 1:  # every process must take the same path
                restored = _all_processes(ctx, restored)
            if restored:
                collateral.restore_general(ctx, previous)
                collateral.restore_knowledge(ctx, previous)
            ctx.log(
                f"resuming session {previous.id} from step {checkpoint_step or 0}"
                + ("" if checkpoint_step else " (it had no checkpoint)")
                + resuming.changed_text(changed)
            )
            # The run's clocks go on from where the session's stopped: its time before counts.
            ctx.started -= time_before[0]
            ctx.train_before = time_before[1]
        if not restored:
            ctx.record(
                ev.RunStarted(
                    ctx.session.id if ctx.session else "",
                    str(ctx.session.path) if ctx.session else "",
                    config.to_dict(),
                    steps,
                    ctx.loaded.info(),
                    ctx.data.report,
                    scale=ctx.scale,
                )
            )
            phases.evaluate_before(ctx)
        else:
            phases.choose_probes(ctx)
        # The streams start where the checkpoint's steps left them; the reference and its cached
        # log-probabilities come from the original weights, which the checkpoint then replaces.
        ctx.done = checkpoint_step or 0
        phases.prepare_training(ctx)
        if checkpoint_step and previous is not None:
            checkpoint.load_checkpoint(ctx, previous.path / checkpoint.CHECKPOINT_DIR)
        phases.train(ctx)
        phases.evaluate_after(ctx)
        phases.relearn(ctx)
        phases.save_outputs(ctx)
        return phases.finish(ctx)

    try:
        return guarded(ctx, body)
    finally:
        if ctx.warm is not None:
            ctx.warm.after_run(ctx)


def _all_processes(ctx: RunContext, local: bool) -> bool:
    import torch

    acc = ctx.accelerator
    flag = acc.reduce(torch.tensor([1.0 if local else 0.0], device=acc.device), reduction="sum")
    return bool(flag.item() == acc.num_processes)


def evaluate_model(
    config: RunConfig,
    on_event: OnEvent | None = None,
    *,
    sessions_dir: str | Path | None = None,
    stdin_text: str | None = None,
) -> RunResult:
    """Evaluate ``config.model`` without unlearning, as a session of kind "eval", with the
    recipe ``config.recipe``.

    The summary's ``metrics`` holds only "after" (the model as it is; there is no before)
    and examples.jsonl rows have phase "after", so an eval session lines up with the
    "after" column of unlearning sessions. It also stores ``oracle_reference`` (forget
    truth ratios, MIA AUCs and the recipe, forget split and ids of the records measured),
    so the session can be passed to ``--oracle`` by runs that evaluate the same records.
    With ``config.relearn_steps`` it runs the relearning check too ("recovered" is None:
    there is no original accuracy to recover).
    """
    import torch

    from tui_unlearn.oracle import ORACLE_REFERENCE_KEY, from_result, reference_payload, resolve_oracle
    from tui_unlearn.recipes import get_recipe
    from tui_unlearn.sessions import Session

    config = resolve(config, training=False)
    ctx = _context(config, on_event, None, sessions_dir)
    check_sessions_dir_writable(ctx.root)
    apply_threads(config.threads)
    ctx.accelerator = make_accelerator(config)
    ctx.is_main = ctx.accelerator.is_main_process
    torch.manual_seed(config.seed)
    if get_recipe(config.recipe).uses_run_data:
        phases.load_inputs(ctx, stdin_text)
        phases.prepare_evaluation(ctx)
    else:  # a benchmark's own files: the run's forget / retain / holdout sets are not read
        _load_model(ctx)
        phases.prepare_evaluation(ctx)
        ctx.data = RunData([], [], [], {name: len(recs) for name, recs in ctx.plan.splits.items()})
    plan = ctx.plan
    same = config.oracle is not None and config.oracle == config.model
    if not same and ctx.is_main:
        ctx.oracle = resolve_oracle(
            config,
            {k: plan.splits[k] for k in ("forget", "holdout") if k in plan.splits},
            ctx.root,
            ctx.emit,
            identity=plan.identity(),
            max_length=plan.max_length,
        )
    if ctx.is_main:
        ctx.session = Session.create(ctx.root, "eval", config.to_dict(), kind="eval")
        ctx.session.update_summary(algorithm=None)

    def body() -> RunResult:
        ctx.record(
            ev.RunStarted(
                ctx.session.id if ctx.session else "",
                str(ctx.session.path) if ctx.session else "",
                config.to_dict(),
                0,
                ctx.loaded.info(),
                ctx.data.report,
            )
        )
        collateral.knowledge_reference(ctx)  # the share of the world-knowledge probe this model states
        result = phases.evaluate(ctx, Phase.AFTER, 0, ctx.loaded.model)
        if ctx.session is not None:
            ctx.session.write_examples([{"phase": Phase.AFTER, **row} for row in result.examples])
        oracle = from_result(result, config.oracle, "self", plan.identity()) if same and config.oracle else ctx.oracle
        extra: dict[str, Any] = phases.headline(ctx, Phase.AFTER, result, oracle)
        fm = ctx.field_metrics[Phase.AFTER]
        if config.relearn_steps:
            extra["relearn"] = phases_relearn(ctx, result)
        summary = {}
        if ctx.session is not None:
            summary = ctx.session.update_summary(
                status="finished",
                steps=0,
                total_steps=0,
                seconds=ctx.elapsed(),
                ended=now(),
                data=ctx.data.report,
                metrics={Phase.AFTER: result.aggregates},
                **{key: fm.get(key) for key in (*phases.CORE_HEADLINES, *plan.recipe.headline_keys)},
                field_metrics={Phase.AFTER: fm},
                oracle=oracle.describe() if oracle else None,
                recipe=plan.describe(),
                knowledge=ctx.extra.get("knowledge"),
                **extra,
                **{
                    ORACLE_REFERENCE_KEY: reference_payload(
                        result,
                        plan.identity(),
                        model=config.model,
                        forget=config.forget,
                        holdout=config.holdout,
                        eval_samples=config.eval_samples,
                        seed=config.seed,
                    )
                },
            )
        ctx.record(ev.RunFinished("finished", summary))
        session = ctx.session
        return RunResult("finished", getattr(session, "id", None), str(session.path) if session else None, summary)

    return guarded(ctx, body)


def _load_model(ctx: RunContext) -> None:
    from tui_unlearn.models.loading import load_model

    config = ctx.config
    ctx.log(f"loading model {config.model}")
    ctx.loaded = load_model(
        config.model,
        device=str(ctx.accelerator.device),
        dtype=config.dtype,
        trust_remote_code=config.trust_remote_code,
        models_cache=config.models_cache,
        log=ctx.log,
    )


def phases_relearn(ctx: RunContext, result: Any) -> dict[str, Any]:
    from tui_unlearn.engine.relearn import relearn_check

    if "forget" not in ctx.splits:
        reason = f"the {ctx.plan.recipe.name} recipe has no question-answer forget split"
        ctx.log(f"relearning check skipped: {reason}")
        return {"steps": 0, "skipped": reason}
    return relearn_check(ctx, ctx.loaded.model, None, result)
