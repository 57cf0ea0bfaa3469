"""Loss helpers that save memory: label log-probabilities without copying the logits, and the
forget term's gradient taken before the retain forward pass (``backward_early``)."""

from __future__ import annotations

import pytest
import torch

from tui_unlearn.algorithms.base import (
    LossInputs,
    backward_early,
    backward_in_parts,
    forward,
    plus_retain_nll,
    sequence_logprob_sum,
    token_logprobs,
)
from tui_unlearn.data.formatting import collate, encode_example
from tui_unlearn.engine.runtime import make_accelerator
from tui_unlearn.engine.training import DIVERGED, OK, TrainingLoop


def reference_token_logprobs(logits, labels):
    """The textbook form: log-softmax of the shifted logits, gathered at the labels."""
    shift = logits[:, :-1, :].float()
    labels = labels[:, 1:]
    mask = labels != -100
    logp = torch.log_softmax(shift, -1).gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return logp * mask, mask.float()


def test_token_logprobs_match_the_textbook_form_in_value_and_gradient():
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 11, (3, 7), generator=g)
    labels[0, :3] = -100  # a prompt
    labels[2, 5:] = -100  # padding
    logits = torch.randn(3, 7, 11, generator=g, requires_grad=True)
    logp, mask = token_logprobs(logits, labels)
    grad = torch.autograd.grad(logp.sum(), logits)[0]
    ref_logp, ref_mask = reference_token_logprobs(logits, labels)
    ref_grad = torch.autograd.grad(ref_logp.sum(), logits)[0]
    assert logp.shape == (3, 6) and torch.equal(mask, ref_mask)
    assert torch.allclose(logp, ref_logp, atol=1e-6) and torch.allclose(grad, ref_grad, atol=1e-6)
    assert torch.all(logp[mask == 0] == 0)
    assert torch.all(grad[:, -1] == 0)  # the last position predicts nothing


def test_token_logprobs_of_bfloat16_logits_are_float32():
    logits = torch.randn(2, 5, 9).to(torch.bfloat16)
    labels = torch.randint(0, 9, (2, 5))
    logp, _ = token_logprobs(logits, labels)
    assert logp.dtype == torch.float32
    assert torch.allclose(logp, reference_token_logprobs(logits, labels)[0], atol=1e-5)


def test_outside_the_training_loop_nothing_is_backpropagated_early():
    w = torch.ones(3, requires_grad=True)
    loss = (w * 2).sum()
    assert backward_early(loss) is loss and w.grad is None


def accelerator():
    class Config:
        device, mixed_precision, grad_accum = "cpu", "no", 1

    return make_accelerator(Config())


def batches(tokenizer):
    pairs = [("Where was Alia Brenn born?", "Port Liren."), ("What does Odo Vask write?", "Mystery novels.")]
    forget = collate([encode_example(tokenizer, q, a) for q, a in pairs], tokenizer.pad_token_id)
    retain = collate([encode_example(tokenizer, a, q) for q, a in pairs], tokenizer.pad_token_id)
    return forget, retain


def npo_like_loss(model, forget, retain, seen: list):
    """A forget term then plus_retain_nll, recording whether gradients existed at the retain pass."""

    def micro_step(j):
        logp = sequence_logprob_sum(forward(model, forget), forget["labels"])
        forget_term = torch.nn.functional.softplus(logp).mean()
        handle = model.register_forward_pre_hook(
            lambda module, args: seen.append(any(p.grad is not None for p in module.parameters()))
        )
        try:
            x = LossInputs(model, forget, retain, None, {"retain_weight": 0.5}, 1)
            return plus_retain_nll(x, forget_term, {"forget": forget_term})
        finally:
            handle.remove()

    return micro_step


@pytest.fixture
def model_and_tokenizer(micro_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(micro_model_dir), AutoTokenizer.from_pretrained(micro_model_dir)


def one_step(model, tokenizer, *, in_parts: bool):
    forget, retain = batches(tokenizer)
    loop = TrainingLoop(accelerator(), model, model.parameters(), lr=0.01, schedule=lambda s: 1.0)
    seen: list[bool] = []
    step = npo_like_loss(loop.model, forget, retain, seen)
    if not in_parts:

        def joint(j):
            with backward_in_parts(None):  # what a launched run does
                return step(j)

        outcome = loop.step(joint)
    else:
        outcome = loop.step(step)
    return outcome, seen


def test_the_forget_gradient_is_taken_before_the_retain_pass_and_the_step_is_the_same(model_and_tokenizer):
    import copy

    model, tokenizer = model_and_tokenizer
    joint_model = copy.deepcopy(model)
    split, seen_split = one_step(model, tokenizer, in_parts=True)
    joint, seen_joint = one_step(joint_model, tokenizer, in_parts=False)
    assert split.status == joint.status == OK
    assert seen_split == [True] and seen_joint == [False]  # the retain pass ran after the forget backward
    assert split.terms["loss"] == pytest.approx(joint.terms["loss"], rel=1e-6)
    assert split.terms["forget"] == pytest.approx(joint.terms["forget"], rel=1e-6)
    for a, b in zip(model.parameters(), joint_model.parameters()):
        assert torch.allclose(a, b, atol=1e-6)


def test_a_nan_forget_term_taken_early_still_stops_before_the_update(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    forget, retain = batches(tokenizer)
    loop = TrainingLoop(accelerator(), model, model.parameters(), lr=0.01, schedule=lambda s: 1.0)
    weights = [p.detach().clone() for p in model.parameters()]

    def micro_step(j):
        forget_term = sequence_logprob_sum(forward(loop.model, forget), forget["labels"]).mean() * float("nan")
        return plus_retain_nll(LossInputs(loop.model, forget, retain, None, {"retain_weight": 1.0}, 1), forget_term, {})

    assert loop.step(micro_step).status == DIVERGED
    assert all(torch.equal(a, b) for a, b in zip(weights, model.parameters()))
    assert all(p.grad is None for p in model.parameters())


def test_answer_only_head_gives_the_full_head_values_and_gradients(model_and_tokenizer):
    from tui_unlearn.algorithms.base import answer_logprob_sums, nll, sequence_nll

    model, tokenizer = model_and_tokenizer
    forget, _ = batches(tokenizer)
    full = sequence_nll(forward(model, forget), forget["labels"]).mean()
    full_grads = torch.autograd.grad(full, list(model.parameters()))
    cut = nll(model, forget)
    cut_grads = torch.autograd.grad(cut, list(model.parameters()))
    assert cut.item() == pytest.approx(full.item(), rel=1e-6)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(cut_grads, full_grads))
    sums = answer_logprob_sums(model, forget)
    assert torch.allclose(sums, sequence_logprob_sum(forward(model, forget), forget["labels"]), atol=1e-5)


def test_the_output_head_runs_on_answer_positions_only(model_and_tokenizer):
    from tui_unlearn.algorithms.base import nll

    model, tokenizer = model_and_tokenizer
    forget, _ = batches(tokenizer)
    shapes = []
    handle = model.get_output_embeddings().register_forward_hook(lambda m, args, out: shapes.append(tuple(out.shape)))
    try:
        nll(model, forget)
    finally:
        handle.remove()
    scored = int((forget["labels"][:, 1:] != -100).sum())
    assert shapes == [(1, scored, model.config.vocab_size)]
    assert scored < forget["input_ids"].numel() // 2  # the prompts and padding were skipped


def test_a_wrapper_without_an_output_head_falls_back_to_the_full_logits(model_and_tokenizer):
    from tui_unlearn.algorithms.base import nll

    model, tokenizer = model_and_tokenizer
    forget, _ = batches(tokenizer)

    class Opaque(torch.nn.Module):  # hides get_output_embeddings
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, **kwargs):
            return self.inner(**kwargs)

    assert nll(Opaque(model), forget).item() == pytest.approx(nll(model, forget).item(), rel=1e-6)


def test_answer_only_head_through_lora_adapters(model_and_tokenizer):
    from tui_unlearn.algorithms.base import nll, sequence_nll
    from tui_unlearn.models.lora import add_adapters

    model, tokenizer = model_and_tokenizer
    forget, _ = batches(tokenizer)
    wrapped = add_adapters(model, r=4, alpha=None, dropout=0.0, targets=[], seed=0)
    shapes = []
    head = wrapped.get_output_embeddings()
    handle = head.register_forward_hook(lambda m, args, out: shapes.append(out.shape[0]))
    try:
        value = nll(wrapped, forget)
    finally:
        handle.remove()
    assert shapes == [1]
    assert value.item() == pytest.approx(
        sequence_nll(forward(wrapped, forget), forget["labels"]).mean().item(), rel=1e-6
    )
