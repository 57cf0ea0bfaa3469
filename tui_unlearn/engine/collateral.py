"""What a run was never told to touch: the model's general ability and its world knowledge.

General ability (``metrics.general``): the original's answers to everyday prompts, scored on
the model now. World knowledge (``metrics.knowledge``): the share of the probe's facts the
original states that the model still states. Both are measured on the original before
training (cached per model, kept in the session for a resumed run), beside every evaluation,
and by the guard; after the run, what was lost is named (``collateral_damage``). With no
retain set, the original's answers to general instructions stand in as one.
"""

from __future__ import annotations

from typing import Any

from tui_unlearn.engine.context import RunContext
from tui_unlearn.engine.model_access import evaluation_model
from tui_unlearn.phase_names import Phase
from tui_unlearn.setting_names import in_the_tui, setting_name

# ---- general ability (metrics.general) ----

GENERAL_FILE = "general.json"  # in the session: the original's answers, for a resumed run


def _original_answers(ctx: RunContext, key_of: Any, load: Any, store: Any, build: Any) -> Any:
    """What the original model answers to a bundled set (general prompts, the knowledge
    probe): from the evaluation cache when this model was asked before (``load`` gives None
    for a missing or stale entry), else ``build(model, tokenizer, rows)`` in evaluation
    batches, stored for the next run."""
    key = key_of(ctx) if ctx.config.eval_cache else None
    reference = load(ctx.root, key)
    if reference is None:
        model, tokenizer = ctx.loaded.model, ctx.loaded.tokenizer
        with _no_grad():
            reference = ctx.eval_batch.run(lambda rows: build(model, tokenizer, rows))
        if ctx.is_main:
            store(ctx.root, key, reference)
    return reference


def general_reference(ctx: RunContext) -> None:
    """The original model's answers to the bundled general prompts and its NLL of them,
    cached per model; kept in the session too."""
    from tui_unlearn.engine import eval_cache
    from tui_unlearn.metrics.general import build_reference

    reference = _original_answers(
        ctx,
        eval_cache.general_key,
        eval_cache.load_general,
        eval_cache.store_general,
        lambda model, tok, rows: build_reference(model, tok, batch_size=rows, max_length=ctx.plan.max_length),
    )
    ctx.general = reference
    if ctx.session is not None:
        from tui_unlearn.sessions import atomic_write_json

        atomic_write_json(ctx.session.path / GENERAL_FILE, reference.to_json())


def restore_general(ctx: RunContext, session: Any) -> None:
    """A resumed run's reference: the one its session kept (the model now is no original)."""
    from tui_unlearn.metrics.general import GeneralReference
    from tui_unlearn.session_files import read_json_object

    data, problem = read_json_object(session.path / GENERAL_FILE)
    ctx.general = GeneralReference.from_json(data) if problem is None else None
    if ctx.general is None:
        ctx.log("general ability: the session kept no answers of the original; not measured on this resume")


def general_numbers(ctx: RunContext, step: int, model: Any = None) -> tuple[dict[str, float], str | None]:
    """(general-ability numbers, worst prompt) of ``model`` (default: the model being
    trained) at ``step``; one scoring pass, or none when this step was measured already
    (an evaluation and the guard at the same step) or when ``step`` is 0 (the original)."""
    from tui_unlearn.metrics.general import score_nll

    reference = ctx.general
    last = ctx.general_last
    if last is not None and last[0] == step:
        return last[1], last[2]
    if step == 0:
        nll = reference.original_nll
    else:
        model = model if model is not None else evaluation_model(ctx)
        tokenizer = ctx.loaded.tokenizer
        with _no_grad():
            nll = ctx.eval_batch.run(
                lambda rows: score_nll(
                    model,
                    tokenizer,
                    reference.prompts,
                    reference.answers,
                    batch_size=rows,
                    max_length=ctx.plan.max_length,
                )
            )
    numbers, worst = reference.summarize(nll)
    ctx.general_last = (step, numbers, worst)
    return numbers, worst


def add_general(ctx: RunContext, aggregates: dict[str, Any], model: Any, phase: Phase, step: int = 0) -> None:
    """Put the general-ability numbers of ``model`` at ``step`` beside the splits of
    ``aggregates`` (the original's own before training: no pass), and keep the latest in
    the summary."""
    from tui_unlearn.metrics.general import GENERAL

    if ctx.general is None:
        return
    numbers, worst = general_numbers(ctx, 0 if phase == Phase.BEFORE else step, model)
    aggregates[GENERAL] = numbers
    ctx.extra["general_ability"] = {
        "phase": phase,
        "step": step,
        "original_nll": numbers["nll_original"],
        "nll": numbers["nll"],
        "increase": numbers["nll_increase"],
        "worst_prompt": worst,
        "worst_increase": numbers.get("nll_worst_increase"),
        "prompts": len(ctx.general.prompts),
    }


# ---- world knowledge (metrics.knowledge) ----

KNOWLEDGE_FILE = "knowledge.json"  # in the session: the original's answers to the probe, for a resumed run
# knowledge_kept over fewer facts than this is noise (the bundled tiny model states a handful):
# reported, never guarded on, never called collateral damage.
MIN_KNOWN = 20
COLLATERAL_KEPT = 0.9  # below this share of the original's facts (or holdout accuracy ratio): named


def knowledge_reference(ctx: RunContext) -> None:
    """The original model's answers to the world-knowledge probe, graded; cached per model
    like the "before" evaluation and kept in the session for a resumed run."""
    from tui_unlearn.engine import eval_cache
    from tui_unlearn.metrics.knowledge import build_reference, load_probe

    items = load_probe()

    def load(root: Any, key: str | None) -> Any:
        cached = eval_cache.load_knowledge(root, key)
        return cached if cached is not None and cached.matches(items) else None

    reference = _original_answers(
        ctx,
        eval_cache.knowledge_key,
        load,
        eval_cache.store_knowledge,
        lambda model, tok, rows: build_reference(model, tok, items, batch_size=probe_rows(rows)),
    )
    if ctx.session is not None:
        from tui_unlearn.sessions import atomic_write_json

        atomic_write_json(ctx.session.path / KNOWLEDGE_FILE, reference.to_json())
    ctx.knowledge = _outside_forget(ctx, items, reference)


def _outside_forget(ctx: RunContext, items: list[dict], reference: Any) -> tuple[list[dict], Any]:
    """The probe less the facts the forget set states (their loss is the point of the run,
    not collateral damage), and the original's answers to what is left; says which left."""
    from tui_unlearn.metrics.knowledge import about_forget

    forget = ctx.data.forget if ctx.data is not None else []
    drop = about_forget(items, forget)
    if not any(drop):
        return items, reference
    left_out = [it["question"] for it, d in zip(items, drop) if d]
    ctx.extra["knowledge_left_out"] = left_out
    ctx.log(
        f"knowledge: {len(left_out)} probe question(s) left out, their answer is in the forget set "
        f"(e.g. {left_out[0]!r})"
    )
    return [it for it, d in zip(items, drop) if not d], reference.without(items, drop)


def restore_knowledge(ctx: RunContext, session: Any) -> None:
    from tui_unlearn.metrics.knowledge import ProbeReference, load_probe
    from tui_unlearn.session_files import read_json_object

    data, problem = read_json_object(session.path / KNOWLEDGE_FILE)
    reference = ProbeReference.from_json(data) if problem is None else None
    items = load_probe()
    matched = reference is not None and reference.matches(items)
    ctx.knowledge = _outside_forget(ctx, items, reference) if matched else None
    if ctx.knowledge is None:
        ctx.log("knowledge: the session kept no probe answers of the original; not measured on this resume")


def probe_rows(rows: int) -> int:
    """Rows per batch of the knowledge probe: twice the evaluation's. The evaluation's batch is
    sized for its longest sequences (a record and 48-200 new tokens); the probe's are a short
    question and 16 new tokens, and on a CPU a larger decode batch is faster per token
    (SmolLM2, ``bench/knowledge_probe_check.py``: 21.3 s at 64 rows against 28.4 s at 32).
    Still halved with the evaluation's on running out of memory."""
    return 2 * rows


def knowledge_numbers(ctx: RunContext, step: int, model: Any = None) -> dict[str, Any]:
    """``knowledge`` (share of the probe stated), ``knowledge_kept`` (share of the
    original's stated facts still stated; None when it states none), ``knowledge_original``
    and ``known_by_original`` (a count) of ``model`` at ``step``: one batched greedy pass,
    none at step 0 (the original) or when this step was measured already."""
    from tui_unlearn.metrics.knowledge import answer_probe, grade, knowledge, knowledge_kept

    items, reference = ctx.knowledge
    last = ctx.knowledge_last
    if last is not None and last[0] == step:
        return last[1]
    if step == 0:
        stated = list(reference.stated)
    else:
        model = model if model is not None else evaluation_model(ctx)
        tokenizer = ctx.loaded.tokenizer
        with _no_grad():
            answers = ctx.eval_batch.run(
                lambda rows: answer_probe(model, tokenizer, items, batch_size=probe_rows(rows))
            )
        stated = grade(items, answers)
    numbers = {
        "knowledge": knowledge(stated),
        "knowledge_kept": knowledge_kept(reference.stated, stated),
        "knowledge_original": knowledge(reference.stated),
        "known_by_original": float(sum(reference.stated)),
    }
    ctx.knowledge_last = (step, numbers)
    return numbers


def add_knowledge(ctx: RunContext, aggregates: dict[str, Any], model: Any, phase: Phase, step: int = 0) -> None:
    """Put the world-knowledge numbers beside the splits of ``aggregates`` and the latest
    in the summary (``knowledge``; ``knowledge_kept`` at its top)."""
    from tui_unlearn.metrics.knowledge import KNOWLEDGE

    if ctx.knowledge is None:
        return
    if phase == Phase.DURING and sum(ctx.knowledge[1].stated) < MIN_KNOWN:
        return  # a generation pass for a number that is noise (and that nothing guards on): before and after only
    numbers = knowledge_numbers(ctx, 0 if phase == Phase.BEFORE else step, model)
    aggregates[KNOWLEDGE] = numbers
    ctx.extra["knowledge"] = {"phase": phase, "step": step, "probe": len(ctx.knowledge[0]), **numbers}
    ctx.extra["knowledge_kept"] = numbers["knowledge_kept"]


def collateral_damage(ctx: RunContext, before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any] | None:
    """Knowledge the run was never told to touch, lost: the probe's facts the original
    stated kept below 0.9, or graded holdout accuracy below 0.9x the original's. Said by name."""
    found: dict[str, Any] = {}
    knowledge = after.get("knowledge") or {}
    kept = knowledge.get("knowledge_kept")
    if isinstance(kept, (int, float)) and (knowledge.get("known_by_original") or 0) >= MIN_KNOWN:
        if kept < COLLATERAL_KEPT:
            found["knowledge_kept"] = kept
    b, a = (before.get("holdout") or {}).get("accuracy"), (after.get("holdout") or {}).get("accuracy")
    if isinstance(b, (int, float)) and isinstance(a, (int, float)) and b > 0 and a < COLLATERAL_KEPT * b:
        found["holdout_accuracy_ratio"] = a / b
    if not found:
        return None
    shown = ", ".join(f"{k.replace('_', ' ')} {v:.2f}" for k, v in found.items())
    ctx.log(
        f"collateral damage: {shown} (below {COLLATERAL_KEPT:g} of the original's): the run took knowledge it was "
        "never told to forget; a retain set near the forget set, fewer --steps or a lower --lr take less"
        + in_the_tui("retain", "steps", "lr")
    )
    return found


def wants_general_retain(ctx: RunContext) -> bool:
    """Whether training takes the original's answers to general instructions as its retain
    set: the user gave none (``--retain``), the data has none, and the method has a retain term."""
    config = ctx.config
    if not config.general_retain or config.retain is not None or ctx.data is None or ctx.data.retain:
        return False
    return has_retain_term(ctx)


def has_retain_term(ctx: RunContext) -> bool:
    """Whether the run's method trains on a retain set (one without ignores it)."""
    algorithm = ctx.algorithm
    return algorithm is not None and (algorithm.needs_retain or "retain_weight" in ctx.config.hparams)


def fill_general_retain(ctx: RunContext) -> None:
    """With no retain set: the original's own greedy answers to the bundled general
    instructions become one, so the retain term keeps the model speaking as it did."""
    from tui_unlearn.engine import eval_cache
    from tui_unlearn.metrics.general import RETAIN_FILE, build_reference

    if not wants_general_retain(ctx):
        return
    reference = _original_answers(
        ctx,
        lambda c: eval_cache.general_key(c, RETAIN_FILE),
        eval_cache.load_general,
        eval_cache.store_general,
        lambda model, tok, rows: build_reference(
            model, tok, batch_size=rows, max_length=ctx.plan.max_length, prompts_file=RETAIN_FILE
        ),
    )
    ctx.data.retain = [{"question": q, "answer": a} for q, a in zip(reference.prompts, reference.answers) if a.strip()]
    ctx.data.report["retain_source"] = "general"
    ctx.data.report["general_retain"] = len(ctx.data.retain)
    ctx.log(
        f"no retain set given: training keeps the model near the original with its own answers to "
        f"{len(ctx.data.retain)} general instructions as the retain set (--no-general-retain: the forget set "
        f"alone). Give {setting_name('retain')} with what must survive (facts near the forget set) to protect it too"
    )


def _no_grad():
    import torch

    return torch.no_grad()
