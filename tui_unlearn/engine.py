"""The one entry point both faces call: ``run(config, on_event, should_stop) -> RunResult``.

It loads the data and the model, evaluates before, runs the unlearning method step by
step (checking ``should_stop`` every step), evaluates during and after, and keeps the
session folder current the whole time. It never imports Textual.
"""

from __future__ import annotations

import copy
import math
import random
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from tui_unlearn import events as ev
from tui_unlearn.algorithms import get_algorithm
from tui_unlearn.algorithms.base import LossInputs, forward, kl_to_reference, reference_logits
from tui_unlearn.config import RunConfig, resolve
from tui_unlearn.errors import ExitCode, RunFailedError, UnlearnError
from tui_unlearn.paths import sessions_dir as default_sessions_dir
from tui_unlearn.sessions import Session, check_sessions_dir_writable

OnEvent = Callable[[ev.Event], None]
ShouldStop = Callable[[], bool]

PROBES_PER_SPLIT = {"forget": 3, "retain": 2}


@dataclass
class RunResult:
    status: str  # finished | interrupted | diverged | failed
    session_id: str | None
    session_path: str | None
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return {
            "finished": ExitCode.OK,
            "interrupted": ExitCode.INTERRUPTED,
        }.get(self.status, ExitCode.RUN_FAILED)


@dataclass
class RunData:
    """The run's records, cleaned, as lists of schema dicts."""

    forget: list[dict]
    retain: list[dict]
    holdout: list[dict]
    report: dict[str, Any]


def load_run_data(config: RunConfig, stdin_text: str | None = None) -> RunData:
    """Load and clean forget/retain/holdout, removing forget records from the retain set."""
    from tui_unlearn.data.loading import load_split, remove_forget_from_retain

    forget = load_split(config.forget, "forget", stdin=stdin_text)
    report: dict[str, Any] = {"forget_format": forget.detected_format}
    retain_records: list[dict] = []
    if config.retain:
        retain = load_split(config.retain, "retain", stdin=stdin_text)
        kept, removed = remove_forget_from_retain(retain.dataset, forget.dataset)
        report["removed_from_retain"] = removed
        retain_records = kept.to_list()
    holdout_records: list[dict] = []
    if config.holdout:
        holdout_records = load_split(config.holdout, "holdout", stdin=stdin_text).dataset.to_list()
    forget_records = forget.dataset.to_list()
    report.update(
        {"forget": len(forget_records), "retain": len(retain_records), "holdout": len(holdout_records)}
    )
    return RunData(forget_records, retain_records, holdout_records, report)


def sample(records: list[dict], n: int, seed: int) -> list[dict]:
    """A fixed random sample of ``n`` records (all when n is 0 or larger than the set)."""
    if n <= 0 or len(records) <= n:
        return list(records)
    rng = random.Random(seed)
    return [records[i] for i in sorted(rng.sample(range(len(records)), n))]


class BatchStream:
    """Endless shuffled batches of encoded examples, reshuffled each epoch from a seed."""

    def __init__(self, examples: list[dict], batch_size: int, seed: int, pad_id: int, device: str):
        self.examples = examples
        self.batch_size = min(batch_size, len(examples))
        self.rng = random.Random(seed)
        self.pad_id = pad_id
        self.device = device
        self.order: list[int] = []

    def next(self) -> dict:
        from tui_unlearn.data.formatting import collate

        picked = []
        while len(picked) < self.batch_size:
            if not self.order:
                self.order = list(range(len(self.examples)))
                self.rng.shuffle(self.order)
            picked.append(self.examples[self.order.pop()])
        batch = collate(picked, self.pad_id)
        return {k: v.to(self.device) for k, v in batch.items()}


class BlockDropout:
    """Dropout on every decoder block's output while active (a regulariser for any model)."""

    def __init__(self, model, p: float):
        self.p = p
        self.active = False
        self.handles = []
        if p > 0:
            from tui_unlearn.algorithms.distill import decoder_layers

            for layer in decoder_layers(model):
                self.handles.append(layer.register_forward_hook(self._hook))

    def _hook(self, module, inputs, output):
        if not self.active:
            return None
        import torch.nn.functional as F

        if isinstance(output, tuple):
            return (F.dropout(output[0], self.p, training=True),) + output[1:]
        return F.dropout(output, self.p, training=True)

    def remove(self):
        for h in self.handles:
            h.remove()


def _finite(x) -> bool:
    value = float(x)
    return math.isfinite(value)


def run(
    config: RunConfig,
    on_event: OnEvent | None = None,
    should_stop: ShouldStop | None = None,
    *,
    sessions_dir: str | Path | None = None,
    stdin_text: str | None = None,
) -> RunResult:
    """Run one unlearning job end to end and return how it ended.

    Raises UnlearnError (ConfigError, DataError, ModelLoadError) for bad input found
    before the session exists; failures after that mark the session failed and raise
    RunFailedError (or the original UnlearnError) once the session is saved.
    """
    emit = on_event or (lambda event: None)
    stop = should_stop or (lambda: False)
    config = resolve(config)
    check_sessions_dir_writable(Path(sessions_dir) if sessions_dir else default_sessions_dir())
    algorithm = get_algorithm(config.algorithm)

    data, loaded = _load_inputs(config, stdin_text, emit, needs_retain=algorithm.needs_retain and algorithm.name)

    root = Path(sessions_dir) if sessions_dir else default_sessions_dir()
    splits = eval_splits_for(config, data)
    from tui_unlearn.oracle import resolve_oracle

    oracle = resolve_oracle(config, splits, root, emit)
    session = Session.create(root, config.algorithm, config.to_dict())
    started = time.monotonic()
    body = lambda: _run_in_session(config, algorithm, data, loaded, session, emit, stop, started, splits, oracle)  # noqa: E731
    return _guarded(session, started, emit, body)


def _load_inputs(config: RunConfig, stdin_text: str | None, emit: OnEvent, needs_retain: str | bool = False):
    """Load the data, then the model (bad input fails here, before any session exists).

    ``needs_retain`` is the name of a method that cannot run without retain data, if any.
    """
    emit(ev.Log("loading data"))
    data = load_run_data(config, stdin_text)
    if needs_retain and not data.retain:
        raise RunFailedError(f"{needs_retain} needs retain data, but the retain set is empty")
    emit(ev.Log(f"loading model {config.model}"))
    from tui_unlearn.models.loading import load_model

    loaded = load_model(
        config.model,
        device=config.device,
        dtype=config.dtype,
        trust_remote_code=config.trust_remote_code,
        models_cache=config.models_cache,
    )
    return data, loaded


def evaluate_model(
    config: RunConfig,
    on_event: OnEvent | None = None,
    *,
    sessions_dir: str | Path | None = None,
    stdin_text: str | None = None,
) -> RunResult:
    """Evaluate ``config.model`` without unlearning, as a session of kind "eval".

    The summary's ``metrics`` holds only "after" (the model as it is; there is no before)
    and examples.jsonl rows have phase "after", so an eval session lines up with the
    "after" column of unlearning sessions. It also stores ``oracle_reference`` (forget
    truth ratios and MIA AUCs), so the session can be passed to ``--oracle`` later. With
    ``config.relearn_steps`` it runs the relearning check too ("recovered" is None: there
    is no original accuracy to recover).
    """
    emit = on_event or (lambda event: None)
    config = resolve(config)
    check_sessions_dir_writable(Path(sessions_dir) if sessions_dir else default_sessions_dir())
    data, loaded = _load_inputs(config, stdin_text, emit)
    root = Path(sessions_dir) if sessions_dir else default_sessions_dir()
    splits = eval_splits_for(config, data)
    from tui_unlearn.oracle import resolve_oracle

    same = config.oracle is not None and config.oracle == config.model
    oracle = None if same else resolve_oracle(config, splits, root, emit)
    session = Session.create(root, "eval", config.to_dict(), kind="eval")
    session.update_summary(algorithm=None)
    started = time.monotonic()
    body = lambda: _eval_in_session(config, data, loaded, session, emit, started, splits, oracle, same)  # noqa: E731
    return _guarded(session, started, emit, body)


def _eval_in_session(config, data, loaded, session, emit, started, splits, oracle, same) -> RunResult:
    import torch

    from tui_unlearn.metrics.evaluate import evaluate_splits
    from tui_unlearn.oracle import ORACLE_REFERENCE_KEY, field_metrics, from_result, reference_payload

    def record(event: ev.Event) -> None:
        session.append_event(event.to_dict())
        emit(event)

    torch.manual_seed(config.seed)
    model, tok = loaded.model, loaded.tokenizer
    record(ev.RunStarted(session.id, str(session.path), config.to_dict(), 0, loaded.info(), data.report))
    emit(ev.Log("evaluating"))
    with torch.no_grad():
        result = evaluate_splits(model, tok, splits, batch_size=32, max_new_tokens=config.max_new_tokens, field_metrics=True)
    record(ev.Evaluation(0, "after", result.aggregates, round(time.monotonic() - started, 2)))
    session.write_examples([{"phase": "after", **row} for row in result.examples])
    if same:
        oracle = from_result(result, config.oracle, "self")
    fm = field_metrics(result, oracle)
    relearn = None
    if config.relearn_steps:
        relearn = relearn_check(model, tok, config, splits["forget"], None, result, emit, loaded.device)
    extra = {"relearn": relearn} if relearn is not None else {}
    summary = session.update_summary(
        status="finished",
        steps=0,
        total_steps=0,
        seconds=round(time.monotonic() - started, 2),
        ended=_now(),
        data=data.report,
        metrics={"after": result.aggregates},
        forget_quality=fm["forget_quality"],
        model_utility=fm["model_utility"],
        privleak=fm["privleak"],
        field_metrics={"after": fm},
        oracle=oracle.describe() if oracle else None,
        **extra,
        **{
            ORACLE_REFERENCE_KEY: reference_payload(
                result, model=config.model, forget=config.forget, holdout=config.holdout,
                eval_samples=config.eval_samples, seed=config.seed,
            )
        },
    )
    record(ev.RunFinished("finished", summary))
    return RunResult("finished", session.id, str(session.path), summary)


def eval_splits_for(config: RunConfig, data: RunData) -> dict[str, list[dict]]:
    """The fixed samples every before/after evaluation (and the oracle's) uses."""
    splits = {"forget": sample(data.forget, config.eval_samples, config.seed)}
    if data.retain:
        splits["retain"] = sample(data.retain, config.eval_samples, config.seed + 1)
    if data.holdout:
        splits["holdout"] = sample(data.holdout, config.eval_samples, config.seed + 2)
    return splits


def relearn_check(model, tok, config, forget_eval, before, after, emit, device) -> dict[str, Any]:
    """Fine-tune a copy of ``model`` on a seeded half of the evaluated forget sample for
    ``config.relearn_steps`` steps and measure how much of the other half comes back.

    ``before`` / ``after`` are the EvalResults of the original and the unlearned model
    (``before`` None for an eval session); their forget rows line up with ``forget_eval``.
    "recovered" is (acc after relearn - acc before relearn) / (original acc - acc before
    relearn): the share of the accuracy that unlearning removed and relearning restored.
    """
    import torch

    from tui_unlearn.data.formatting import encode_example, pad_token_id
    from tui_unlearn.metrics.evaluate import evaluate_splits

    steps = config.relearn_steps
    qa = [i for i, r in enumerate(forget_eval) if r.get("question")]
    if len(qa) < 2:
        emit(ev.Log("relearning check skipped: it needs at least 2 question-answer forget records"))
        return {"steps": 0, "skipped": "needs at least 2 question-answer forget records"}
    order = list(qa)
    random.Random(config.seed + 4).shuffle(order)
    train_idx, eval_idx = sorted(order[: len(order) // 2]), sorted(order[len(order) // 2 :])

    def mean_of(result, key: str, idx: list[int]) -> float | None:
        rows = [r for r in result.examples if r["split"] == "forget"]
        values = [rows[i].get(key) for i in idx if rows[i].get(key) is not None]
        return float(sum(values) / len(values)) if values else None

    emit(ev.Log(f"relearning check: {steps} steps on {len(train_idx)} forget records"))
    relearner = copy.deepcopy(model)
    relearner.train(False)
    params = [p for p in relearner.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.relearn_lr, weight_decay=0.0)
    pad_id = pad_token_id(tok)
    train = [encode_example(tok, forget_eval[i]["question"], forget_eval[i]["answer"], config.max_length) for i in train_idx]
    stream = BatchStream(train, config.batch_size, config.seed + 5, pad_id, device)
    with torch.enable_grad():
        for _ in range(steps):
            batch = stream.next()
            loss = relearner(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
    relearner.eval()
    with torch.no_grad():
        relearned = evaluate_splits(
            relearner, tok, {"forget": [forget_eval[i] for i in eval_idx]}, batch_size=32,
            max_new_tokens=config.max_new_tokens, field_metrics=False,
        )
    del relearner
    acc_before = mean_of(after, "exact_match", eval_idx)
    acc_after = relearned.aggregates["forget"].get("accuracy")
    original = mean_of(before, "exact_match", eval_idx) if before is not None else None
    recovered = None
    if original is not None and acc_before is not None and acc_after is not None and original - acc_before > 0:
        recovered = (acc_after - acc_before) / (original - acc_before)
    out = {
        "steps": steps,
        "lr": config.relearn_lr,
        "train_records": len(train_idx),
        "eval_records": len(eval_idx),
        "forget_accuracy_original": original,
        "forget_accuracy_before_relearn": acc_before,
        "forget_accuracy_after_relearn": acc_after,
        "forget_f1_before_relearn": mean_of(after, "f1", eval_idx),
        "forget_f1_after_relearn": relearned.aggregates["forget"].get("f1"),
        "recovered": recovered,
    }
    emit(ev.Log(f"relearning check: forget accuracy {_fmt(acc_before)} -> {_fmt(acc_after)} (recovered {_fmt(recovered)})"))
    return out


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def _guarded(session, started, emit, body) -> RunResult:
    """Run ``body`` in ``session``; keep the session and say in one line what went wrong."""
    try:
        return body()
    except KeyboardInterrupt:
        summary = session.update_summary(status="interrupted", ended=_now(), seconds=round(time.monotonic() - started, 2))
        emit(ev.RunFinished("interrupted", summary))
        return RunResult("interrupted", session.id, str(session.path), summary)
    except Exception as exc:  # any failure: keep the session, say what happened in one line
        detail = traceback.format_exc()
        (session.path / "error.txt").write_text(detail, encoding="utf-8")
        error = _describe_failure(exc)
        summary = session.update_summary(status="failed", error=error, ended=_now(), seconds=round(time.monotonic() - started, 2))
        failed = ev.RunFailed(error, int(getattr(exc, "exit_code", ExitCode.RUN_FAILED)), str(session.path))
        session.append_event(failed.to_dict())
        emit(failed)
        if isinstance(exc, UnlearnError):
            raise
        raise RunFailedError(error) from exc


def _describe_failure(exc: BaseException) -> str:
    if isinstance(exc, UnlearnError):
        return str(exc)
    name = type(exc).__name__
    if "OutOfMemory" in name:
        return "out of memory: lower --batch-size or --max-length, or use a smaller model"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"run failed: {name}: {first[:200]} (traceback in the session's error.txt)"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _run_in_session(config, algorithm, data, loaded, session, emit, stop, started, eval_splits, oracle) -> RunResult:
    import torch

    from tui_unlearn.data.formatting import encode_example, pad_token_id
    from tui_unlearn.metrics.evaluate import evaluate_splits
    from tui_unlearn.metrics.generation import generate_answers

    def record(event: ev.Event) -> None:
        session.append_event(event.to_dict())
        emit(event)

    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    tok = loaded.tokenizer
    pad_id = pad_token_id(tok)
    device = loaded.device
    hp = dict(config.hparams)

    probe_splits = {
        name: sample(eval_splits[name], config.probe_samples, config.seed + 3)
        for name in ("forget", "retain")
        if name in eval_splits
    }
    probes = [
        {"split": name, "question": r["question"], "answer": r["answer"]}
        for name, n in PROBES_PER_SPLIT.items()
        for r in [r for r in eval_splits.get(name, []) if r["question"]][:n]
    ] + [{"split": "custom", "question": q, "answer": ""} for q in config.probes]

    model = loaded.model
    record(
        ev.RunStarted(
            session.id,
            str(session.path),
            config.to_dict(),
            config.steps,
            loaded.info(),
            data.report,
        )
    )

    def evaluate(phase: str, step: int, splits: dict[str, list[dict]], full: bool):
        model.eval()
        emit(ev.Log(f"evaluating ({phase})"))
        result = evaluate_splits(
            model, tok, splits,
            batch_size=32 if full else 64,
            max_new_tokens=config.max_new_tokens,
            field_metrics=full,
        )
        record(ev.Evaluation(step, phase, result.aggregates, round(time.monotonic() - started, 2)))
        return result

    def probe(step: int, original: list[str] | None) -> list[str]:
        if not probes:
            return []
        answers = generate_answers(model, tok, [p["question"] for p in probes], max_new_tokens=config.max_new_tokens)
        rows = [
            {**p, "original": (original or answers)[i], "current": answers[i]} for i, p in enumerate(probes)
        ]
        record(ev.ProbeAnswers(step, rows))
        return answers

    with torch.no_grad():
        before = evaluate("before", 0, eval_splits, full=True)
        original_answers = probe(0, None)
    examples = [{"phase": "before", **row} for row in before.examples]
    session.write_examples(examples)
    from tui_unlearn.oracle import field_metrics

    field = {"before": field_metrics(before, oracle)}
    session.update_summary(metrics={"before": before.aggregates}, field_metrics=field, oracle=oracle.describe() if oracle else None)

    # The frozen original: reference for NPO/KL, teacher for distillation, anchor for L2.
    reference = None
    if algorithm.needs_reference or config.kl_retain > 0:
        reference = copy.deepcopy(model).eval()
        for p in reference.parameters():
            p.requires_grad_(False)
    if algorithm.make_student is not None:
        model = algorithm.make_student(model, hp)
    params = [p for p in model.parameters() if p.requires_grad]
    anchor = None
    if config.l2_anchor > 0:
        source = list(reference.parameters()) if reference is not None else params
        anchor = [p.detach().clone() for p in source]
        if [a.shape for a in anchor] != [p.shape for p in params]:
            raise RunFailedError("l2_anchor needs the trained model to have the original's shape; set it to 0 for smaller students")

    forget_records = data.forget
    if algorithm.relabel_forget is not None:
        forget_records = algorithm.relabel_forget(forget_records, hp, rng)
    encode = lambda r: encode_example(tok, r["question"], r["answer"], config.max_length)  # noqa: E731
    forget_stream = BatchStream([encode(r) for r in forget_records], config.batch_size, config.seed, pad_id, device) if algorithm.needs_forget else None
    retain_stream = BatchStream([encode(r) for r in data.retain], config.batch_size, config.seed + 1, pad_id, device) if data.retain else None

    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=0.0)
    warmup = max(1, config.steps // 10)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup))
    dropout = BlockDropout(model, config.dropout)
    status, done, last_losses = "finished", 0, {}
    train_started = time.monotonic()
    emit(ev.Log(f"unlearning with {algorithm.name} for {config.steps} steps"))
    try:
        for step in range(1, config.steps + 1):
            if stop():
                status = "interrupted"
                break
            model.train(False)  # keep the model's own dropout off: only --dropout adds noise
            dropout.active = True
            inputs = LossInputs(
                model=model,
                forget=forget_stream.next() if forget_stream else None,
                retain=retain_stream.next() if retain_stream else None,
                reference=reference,
                hp=hp,
                step=step,
            )
            terms = dict(algorithm.loss(inputs))
            loss = terms["loss"]
            if config.kl_retain > 0 and inputs.retain is not None:
                kl = kl_to_reference(forward(model, inputs.retain), reference_logits(reference, inputs.retain), inputs.retain["labels"])
                terms["kl_retain"] = kl
                loss = loss + config.kl_retain * kl
            if anchor is not None:
                l2 = sum(((p - a) ** 2).sum() for p, a in zip(params, anchor))
                terms["l2_anchor"] = l2
                loss = loss + config.l2_anchor * l2
            terms["loss"] = loss
            # Divergence is caught before the update is applied, so the weights stay the last good ones.
            if not _finite(loss.detach()):
                status = "diverged"
                break
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(params, config.grad_clip if config.grad_clip > 0 else float("inf"))
            if not _finite(norm):
                status = "diverged"
                break
            optimizer.step()
            scheduler.step()
            done = step
            last_losses = {k: round(float(v.detach() if hasattr(v, "detach") else v), 6) for k, v in terms.items()}
            dropout.active = False
            record(ev.StepLosses(step, config.steps, last_losses, scheduler.get_last_lr()[0], round(time.monotonic() - train_started, 3)))
            if config.eval_every and step % config.eval_every == 0 and step < config.steps:
                with torch.no_grad():
                    evaluate("during", step, probe_splits, full=False)
                    probe(step, original_answers)
    finally:
        dropout.remove()
        dropout.active = False

    if status == "diverged":
        emit(ev.Log(f"loss diverged at step {done + 1}; keeping the weights of step {done}"))
    after = None
    if status != "interrupted":
        with torch.no_grad():
            after = evaluate("after", done, eval_splits, full=True)
            probe(done, original_answers)
        examples += [{"phase": "after", **row} for row in after.examples]
        session.write_examples(examples)
        field["after"] = field_metrics(after, oracle)

    model_dir = None
    if config.save_model:
        from tui_unlearn.models.loading import save_model

        emit(ev.Log("saving the unlearned model"))
        # Into a temp folder renamed to model/ when complete: a kill mid-save leaves no half model.
        model_dir = session.save_model(lambda folder: save_model(model, tok, folder))

    metrics = {"before": before.aggregates}
    extra: dict[str, Any] = {}
    if after is not None:
        metrics["after"] = after.aggregates
        extra = {key: field["after"][key] for key in ("forget_quality", "model_utility", "privleak")}
        if config.relearn_steps:
            extra["relearn"] = relearn_check(model, tok, config, eval_splits["forget"], before, after, emit, device)
    summary = session.update_summary(
        status=status,
        steps=done,
        total_steps=config.steps,
        seconds=round(time.monotonic() - started, 2),
        train_seconds=round(time.monotonic() - train_started, 2),
        ended=_now(),
        hparams=hp,
        data=data.report,
        final_losses=last_losses,
        metrics=metrics,
        model_saved=str(model_dir) if model_dir else None,
        field_metrics=field,
        **extra,
    )
    record(ev.RunFinished(status, summary))
    return RunResult(status, session.id, str(session.path), summary)
