"""The relearning check: how much of what was unlearned comes back after a little fine-tuning."""

from __future__ import annotations

import copy
import random
from typing import Any

from tui_unlearn import events as ev


def relearn_check(ctx: Any, model: Any, before: Any, after: Any) -> dict[str, Any]:
    """Fine-tune a copy of ``model`` on a seeded half of the evaluated forget sample for
    ``config.relearn_steps`` steps (with the run's training loop) and measure how much of
    the other half comes back.

    ``before`` / ``after`` are the EvalResults of the original and the unlearned model
    (``before`` None for an eval session); their forget rows line up with the forget sample.
    "recovered" is (acc after relearn - acc before relearn) / (original acc - acc before
    relearn): the share of the accuracy that unlearning removed and relearning restored.
    """
    import torch

    from tui_unlearn.data.formatting import encode_example, pad_token_id
    from tui_unlearn.engine.streams import BatchStream
    from tui_unlearn.engine.training import TrainingLoop
    from tui_unlearn.metrics.evaluate import evaluate_splits

    config, tok = ctx.config, ctx.loaded.tokenizer
    forget_eval = ctx.splits["forget"]
    steps = config.relearn_steps
    qa = [i for i, r in enumerate(forget_eval) if r.get("question")]
    if len(qa) < 2:
        ctx.log("relearning check skipped: it needs at least 2 question-answer forget records")
        return {"steps": 0, "skipped": "needs at least 2 question-answer forget records"}
    order = list(qa)
    random.Random(config.seed + 4).shuffle(order)
    train_idx, eval_idx = sorted(order[: len(order) // 2]), sorted(order[len(order) // 2 :])

    def mean_of(result, key: str, idx: list[int]) -> float | None:
        rows = [r for r in result.examples if r["split"] == "forget"]
        values = [rows[i].get(key) for i in idx if rows[i].get(key) is not None]
        return float(sum(values) / len(values)) if values else None

    ctx.log(f"relearning check: {steps} steps on {len(train_idx)} forget records")
    relearner = copy.deepcopy(model)
    relearner.train(False)
    params = [p for p in relearner.parameters() if p.requires_grad]
    loop = TrainingLoop(
        ctx.accelerator, relearner, params, lr=config.relearn_lr, schedule=lambda step: 1.0, grad_clip=1.0
    )
    train = [
        encode_example(tok, forget_eval[i]["question"], forget_eval[i]["answer"], config.max_length) for i in train_idx
    ]
    stream = BatchStream(train, config.batch_size, config.seed + 5, pad_token_id(tok), ctx.accelerator)

    def micro_step(j: int) -> dict:
        batch = stream.next()
        out = loop.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"])
        return {"loss": out.loss}

    with torch.enable_grad():
        for _ in range(steps):
            loop.step(micro_step)
    relearned_model = ctx.accelerator.unwrap_model(loop.model)
    relearned_model.eval()
    with torch.no_grad():
        relearned = ctx.eval_batch.run(
            lambda rows, model=relearned_model: evaluate_splits(
                model,
                tok,
                {"forget": [forget_eval[i] for i in eval_idx]},
                batch_size=rows,
                max_new_tokens=config.max_new_tokens,
                field_metrics=False,
            )
        )
    del relearner, relearned_model
    acc_before = mean_of(after, "accuracy", eval_idx)
    acc_after = relearned.aggregates["forget"].get("accuracy")
    original = mean_of(before, "accuracy", eval_idx) if before is not None else None
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
    if ctx.is_main:
        ctx.emit(
            ev.Log(
                f"relearning check: forget accuracy {_fmt(acc_before)} -> {_fmt(acc_after)} (recovered {_fmt(recovered)})"
            )
        )
    return out


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.3f}"
