"""bench/baseline_trainer.py computes the same NPO and GradDiff objectives as the engine's methods,
so bench_train.py compares the cost of one objective, not of two."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))


@pytest.fixture
def setup(micro_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainingArguments

    from tui_unlearn.data.formatting import encode_example

    model = AutoModelForCausalLM.from_pretrained(micro_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(micro_model_dir)
    forget = [
        encode_example(tokenizer, q, a)
        for q, a in [("Where was Alia born?", "Port Liren."), ("What does Odo write?", "Mystery novels, mostly.")]
    ]
    # Equal answers: open-unlearning's retain NLL is a token mean, ours a mean of per-example means.
    retain = [encode_example(tokenizer, q, "In town nine.") for q in ("Where is Bren?", "Where does Carys live now?")]
    args = TrainingArguments(
        output_dir=str(tmp_path), use_cpu=True, report_to=[], per_device_train_batch_size=2, remove_unused_columns=False
    )
    return model, tokenizer, forget, retain, args


def collated(tokenizer, forget, retain):
    from baseline_trainer import SupervisedCollator

    return SupervisedCollator(tokenizer.pad_token_id)([{"forget": f, "retain": r} for f, r in zip(forget, retain)])


def test_collator_pads_right_and_masks_labels(setup):
    _, tokenizer, forget, retain, _ = setup
    batch = collated(tokenizer, forget, retain)["forget"]
    short = min(range(2), key=lambda i: len(forget[i]["input_ids"]))
    n = len(forget[short]["input_ids"])
    assert batch["input_ids"][short, n:].eq(tokenizer.pad_token_id).all()
    assert batch["labels"][short, n:].eq(-100).all() and not batch["attention_mask"][short, n:].any()


def test_baseline_npo_loss_is_the_engines_npo_loss(setup):
    from baseline_trainer import NPOTrainer

    from tui_unlearn.algorithms.base import LossInputs
    from tui_unlearn.algorithms.npo import _loss as npo_loss
    from tui_unlearn.algorithms.references import References, reference_logprob_table

    model, tokenizer, forget, retain, args = setup
    trainer = NPOTrainer(model=model, args=args, beta=0.1)
    with torch.no_grad():  # move the trained model away from its reference copy
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    batch = collated(tokenizer, forget, retain)
    baseline = trainer.compute_loss(model, batch)

    references = References()
    references.cache("forget", reference_logprob_table(trainer.ref_model, forget, tokenizer.pad_token_id))
    ours_forget = {**batch["forget"], "index": torch.arange(2)}
    ours = npo_loss(LossInputs(model, ours_forget, batch["retain"], references, {"beta": 0.1, "retain_weight": 1.0}, 1))
    assert baseline.item() == pytest.approx(ours["loss"].item(), rel=1e-5)


def test_baseline_grad_diff_loss_is_the_engines_on_equal_length_answers(setup):
    from baseline_trainer import GradDiffTrainer

    from tui_unlearn.algorithms.base import LossInputs
    from tui_unlearn.algorithms.grad_diff import _loss as grad_diff_loss

    model, tokenizer, forget, retain, args = setup
    same = [forget[0], copy.deepcopy(forget[0])]
    batch = collated(tokenizer, same, retain)
    baseline = GradDiffTrainer(model=model, args=args).compute_loss(model, batch)
    ours = grad_diff_loss(
        LossInputs(model, batch["forget"], batch["retain"], None, {"forget_weight": 1.0, "retain_weight": 1.0}, 1)
    )
    assert baseline.item() == pytest.approx(ours["loss"].item(), rel=1e-5)
