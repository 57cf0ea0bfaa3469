"""One-pass scoring: hand-computed values on a scripted model whose every prediction is
known, and batched == unbatched on a real (random) Llama."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from tui_unlearn.data.formatting import answer_ids, collate, encode_example
from tui_unlearn.metrics.scoring import extraction_strength, score_answers

HIGH = 4.0  # logit of the predicted token; all others are 0


class ScriptedLM(torch.nn.Module):
    """Predicts the true next token with logit HIGH, except before tokens in ``wrong``,
    where it puts HIGH on another token instead."""

    def __init__(self, vocab_size: int, wrong=()):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.vocab_size = vocab_size
        self.wrong = set(wrong)

    def forward(self, input_ids, attention_mask=None):
        nxt = torch.roll(input_ids, -1, dims=1)
        miss = torch.tensor([[int(t) in self.wrong for t in row] for row in nxt.tolist()], dtype=torch.bool)
        predicted = torch.where(miss, (nxt + 1) % self.vocab_size, nxt)
        logits = torch.zeros(*input_ids.shape, self.vocab_size)
        logits.scatter_(2, predicted[..., None], HIGH)
        return SimpleNamespace(logits=logits)


def hand_values(vocab_size: int):
    """(log p of the top token, log p of any other, mu, sigma) of a one-HIGH distribution."""
    log_z = math.log(math.exp(HIGH) + vocab_size - 1)
    lp_top, lp_other = HIGH - log_z, -log_z
    p_top = math.exp(lp_top)
    mu = p_top * lp_top + (1 - p_top) * lp_other
    sigma = math.sqrt(p_top * (lp_top - mu) ** 2 + (1 - p_top) * (lp_other - mu) ** 2)
    return lp_top, lp_other, mu, sigma


@pytest.fixture(scope="module")
def tokenizer(micro_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(micro_model_dir)


QUESTION, ANSWER = "Where was Alia Brenn born?", "Alia Brenn was born in Port Liren."


def test_extraction_strength_hand_computed():
    assert extraction_strength([True, True, True]) == 1.0
    assert extraction_strength([False, True, True]) == pytest.approx(2 / 3)
    assert extraction_strength([True, False, True]) == pytest.approx(1 / 3)
    assert extraction_strength([True, True, False]) == 0.0
    assert math.isnan(extraction_strength([]))


def test_perfect_predictions(tokenizer):
    vocab = len(tokenizer)
    lp_top, _, mu, sigma = hand_values(vocab)
    [score] = score_answers(ScriptedLM(vocab), tokenizer, [(QUESTION, ANSWER)])
    n = len(answer_ids(tokenizer, QUESTION, ANSWER))  # answer + EOS, prompt excluded
    assert score.num_tokens == n
    assert score.loss == pytest.approx(-lp_top, rel=1e-6)
    assert score.total_nll == pytest.approx(-lp_top * n, rel=1e-6)
    assert score.token_accuracy == 1.0 and score.extraction_strength == 1.0
    # memorisation statistics leave the closing EOS out (open-unlearning's tokenwise_logprobs)
    np.testing.assert_allclose(score.token_log_probs, [lp_top] * (n - 1), rtol=1e-6)
    np.testing.assert_allclose(score.min_k_pp_scores, [(lp_top - mu) / sigma] * (n - 1), rtol=1e-5)


def test_a_wrong_eos_counts_in_the_loss_but_not_in_memorisation(tokenizer):
    vocab = len(tokenizer)
    lp_top, lp_other, mu, sigma = hand_values(vocab)
    model = ScriptedLM(vocab, wrong={tokenizer.eos_token_id})
    [score] = score_answers(model, tokenizer, [(QUESTION, ANSWER)])
    n = score.num_tokens
    assert score.loss == pytest.approx(-((n - 1) * lp_top + lp_other) / n, rel=1e-6)
    assert score.token_accuracy == 1.0 and score.extraction_strength == 1.0
    assert len(score.token_log_probs) == n - 1 and lp_other not in score.token_log_probs


def test_a_wrong_last_answer_token_zeroes_extraction_strength(tokenizer):
    ids = answer_ids(tokenizer, QUESTION, ANSWER)
    assert ids[-1] == tokenizer.eos_token_id and ids[-2] not in ids[:-2]
    vocab = len(tokenizer)
    lp_top, lp_other, mu, sigma = hand_values(vocab)
    [score] = score_answers(ScriptedLM(vocab, wrong={ids[-2]}), tokenizer, [(QUESTION, ANSWER)])
    m = score.num_tokens - 1  # without EOS
    assert score.token_accuracy == pytest.approx((m - 1) / m)
    assert score.extraction_strength == 0.0
    assert score.min_k_pp_scores[-1] == pytest.approx((lp_other - mu) / sigma, rel=1e-5)


def test_a_wrong_middle_token(tokenizer):
    ids = answer_ids(tokenizer, QUESTION, ANSWER)
    j = 2
    assert ids[j] not in ids[j + 1 :] and ids[j] not in ids[:j]
    model = ScriptedLM(len(tokenizer), wrong={ids[j]})
    [score] = score_answers(model, tokenizer, [(QUESTION, ANSWER)])
    m = len(ids) - 1  # the closing EOS is not a memorisation position
    assert score.token_accuracy == pytest.approx((m - 1) / m)
    assert score.extraction_strength == pytest.approx(1 - (j + 1) / m)


def test_plain_text_is_scored_in_full(tokenizer):
    text = "The quick brown fox jumps over the lazy dog."
    [score] = score_answers(ScriptedLM(len(tokenizer)), tokenizer, [("", text)])
    n = len(tokenizer(text, add_special_tokens=False)["input_ids"])
    assert score.num_tokens == n + 1  # + EOS, in the loss
    assert len(score.token_log_probs) == n  # Min-K% over the text alone


def test_an_answer_cut_by_max_length_keeps_its_last_token(tokenizer):
    # No EOS survives the cut, so nothing is dropped from the memorisation statistics.
    [score] = score_answers(ScriptedLM(len(tokenizer)), tokenizer, [(QUESTION, ANSWER * 4)], max_length=40)
    assert 0 < score.num_tokens and len(score.token_log_probs) == score.num_tokens


def test_an_answer_truncated_away_gives_nan(tokenizer):
    long_question = "word " * 100
    [score] = score_answers(ScriptedLM(len(tokenizer)), tokenizer, [(long_question, "x")], max_length=16)
    assert score.num_tokens == 0 and math.isnan(score.loss)


# ---- a real random Llama -------------------------------------------------------------

PAIRS = [
    (QUESTION, ANSWER),
    ("Hi", "A very much longer answer that goes on for a while, about Odo Vask and his mystery novels."),
    ("What genre does Odo Vask write?", "Mystery."),
    ("", "The quick brown fox jumps over the lazy dog. 0123456789"),
    ("Who?", ""),
    ("Where was Odo Vask born, and when did he first publish?", "In Port Liren, in 1970."),
]


def test_batched_equals_unbatched(lively):
    model, tokenizer = lively
    batched = score_answers(model, tokenizer, PAIRS, batch_size=4)
    for pair, b in zip(PAIRS, batched):
        [u] = score_answers(model, tokenizer, [pair], batch_size=1)
        assert b.num_tokens == u.num_tokens
        assert b.loss == pytest.approx(u.loss, abs=1e-5)
        np.testing.assert_allclose(b.token_log_probs, u.token_log_probs, atol=1e-5)
        np.testing.assert_allclose(b.min_k_pp_scores, u.min_k_pp_scores, atol=1e-5)
        assert b.token_accuracy == u.token_accuracy
        assert b.extraction_strength == u.extraction_strength


def test_loss_and_statistics_match_an_independent_computation(lively):
    model, tokenizer = lively
    scores = score_answers(model, tokenizer, PAIRS, batch_size=3)
    for (question, answer), score in zip(PAIRS, scores):
        batch = collate([encode_example(tokenizer, question, answer)], tokenizer.pad_token_id)
        with torch.no_grad():
            out = model(**batch)
        assert score.loss == pytest.approx(float(out.loss), abs=1e-5)  # HF's own mean CE
        logits = out.logits[0, :-1].double()
        labels = batch["labels"][0, 1:]
        keep = labels != -100
        log_probs = torch.log_softmax(logits[keep], -1)
        target = labels[keep]
        token_lp = log_probs.gather(1, target[:, None]).squeeze(1)
        mu = (log_probs.exp() * log_probs).sum(-1)
        sigma = ((log_probs.exp() * log_probs**2).sum(-1) - mu**2).sqrt()
        assert score.total_nll == pytest.approx(float(-token_lp.sum()), abs=1e-4)
        # without the closing EOS, as open-unlearning's memorisation and MIA statistics
        m = len(token_lp) - 1 if int(target[-1]) == tokenizer.eos_token_id else len(token_lp)
        np.testing.assert_allclose(score.token_log_probs, token_lp[:m].numpy(), atol=1e-5)
        np.testing.assert_allclose(score.min_k_pp_scores, ((token_lp - mu) / sigma)[:m].numpy(), atol=1e-4)
        correct = (logits[keep].argmax(-1) == target).numpy()[:m]
        if m:
            assert score.token_accuracy == pytest.approx(correct.mean())
        else:
            assert math.isnan(score.token_accuracy)


def test_scoring_keeps_the_training_mode(lively):
    model, tokenizer = lively
    model.train()
    try:
        score_answers(model, tokenizer, PAIRS[:2])
        assert model.training
    finally:
        model.eval()
