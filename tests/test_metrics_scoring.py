"""One-pass scoring: hand-computed values on a scripted model whose every prediction is
known, and batched == unbatched on a real (random) Llama."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import cache_path_drifts, load_lively_model

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


# ---- answers that share a prompt -------------------------------------------------------

QUESTIONS = [
    "Where was Alia Brenn born?",
    "What genre does Odo Vask write, and which of his novels is best known?",
    "Hi",
]
ANSWERS = [
    "Alia Brenn was born in Port Liren.",
    "Mystery.",
    "",  # EOS alone
    "A very much longer answer that goes on for a while, about Odo Vask and his mystery novels.",
    "In Port Liren, in 1970.",
]
SHARED = [(q, a) for q in QUESTIONS for a in ANSWERS] + [
    ("", "The quick brown fox jumps over the lazy dog."),
    ("", "The quick brown fox jumps over the lazy cat."),
]


def _whole(model, tokenizer, pairs, **kwargs):
    """Every pair scored as one whole sequence, on its own."""
    return [score_answers(model, tokenizer, [pair], batch_size=1, **kwargs)[0] for pair in pairs]


def _assert_same_scores(got, expected, flags):
    for g, e, stats in zip(got, expected, flags):
        assert g.num_tokens == e.num_tokens
        if e.num_tokens == 0:
            assert math.isnan(g.loss)
            continue
        assert g.loss == pytest.approx(e.loss, abs=1e-5)
        np.testing.assert_allclose(g.token_log_probs, e.token_log_probs, atol=1e-5)
        if stats:
            np.testing.assert_allclose(g.min_k_pp_scores, e.min_k_pp_scores, atol=1e-4)
            assert g.token_accuracy == e.token_accuracy or (
                math.isnan(g.token_accuracy) and math.isnan(e.token_accuracy)
            )
            assert g.extraction_strength == e.extraction_strength
        else:
            assert math.isnan(g.token_accuracy) and math.isnan(g.extraction_strength)
            assert np.isnan(g.min_k_pp_scores).all()


@pytest.fixture
def shared_runs(monkeypatch):
    """How many shared-prompt passes ran and how many fell back to whole sequences."""
    from tui_unlearn.metrics import scoring

    runs = {"shared": 0, "fell back": 0}
    real = scoring._SharedPromptScorer.run

    def counted(self):
        result = real(self)
        runs["shared" if result is not None else "fell back"] += 1
        return result

    monkeypatch.setattr(scoring._SharedPromptScorer, "run", counted)
    return runs


@pytest.mark.parametrize("batch_size", [2, 7, 64])  # groups split across batches, and not
def test_answers_sharing_a_prompt_score_as_whole_sequences(lively, shared_runs, batch_size):
    model, tokenizer = lively
    flags = [i % 3 == 0 for i in range(len(SHARED))]
    got = score_answers(model, tokenizer, SHARED, batch_size=batch_size, statistics=flags)
    assert shared_runs == {"shared": 1, "fell back": 0}
    _assert_same_scores(got, _whole(model, tokenizer, SHARED), flags)


def test_truncation_is_the_same_on_the_shared_path(lively, shared_runs):
    model, tokenizer = lively
    long_question = "word " * 30
    pairs = [(QUESTION, ANSWER * 4), (QUESTION, ANSWER), (long_question, "x"), (long_question, "y")]
    got = score_answers(model, tokenizer, pairs, max_length=24)
    assert shared_runs["shared"] == 1
    expected = _whole(model, tokenizer, pairs, max_length=24)
    assert expected[0].num_tokens > 0 and expected[2].num_tokens == 0  # cut, and cut away
    _assert_same_scores(got, expected, [True] * len(pairs))


def test_plain_text_without_bos_shares_its_first_token(micro_model_dir):
    """No BOS: a text's first token is never predicted, so it stands in for the prompt."""
    import copy

    from tui_unlearn.metrics.scoring import _SharedPromptScorer

    model, tokenizer = load_lively_model(micro_model_dir)
    tokenizer = copy.deepcopy(tokenizer)
    tokenizer.bos_token = None
    texts = [("", "Alia wrote mystery novels."), ("", "Alia wrote poetry."), ("", "Alia.")]
    features = [encode_example(tokenizer, q, a, 512) for q, a in texts]
    with torch.inference_mode():
        scorer = _SharedPromptScorer(model, tokenizer, features, [True] * 3, 8)
        assert len(scorer.groups) == 1  # all start with the token for "Alia"
        got = scorer.run()
    assert got is not None
    _assert_same_scores(got, _whole(model, tokenizer, texts), [True] * 3)


def test_a_model_that_takes_no_cache_is_scored_whole(tokenizer, shared_runs):
    vocab = len(tokenizer)
    lp_top, *_ = hand_values(vocab)
    pairs = [(QUESTION, ANSWER), (QUESTION, "Port Liren."), (QUESTION, "Varn.")]
    scores = score_answers(ScriptedLM(vocab), tokenizer, pairs)  # forward(input_ids, attention_mask) only
    assert shared_runs == {"shared": 0, "fell back": 1}
    for (q, a), score in zip(pairs, scores):
        assert score.num_tokens == len(answer_ids(tokenizer, q, a))
        assert score.loss == pytest.approx(-lp_top, rel=1e-5)


def test_a_cached_pass_that_disagrees_is_not_trusted(lively, shared_runs):
    """A model whose continuation from the cache differs from its whole-sequence pass
    (as positions would in a model with learned ones) is scored whole."""
    model, tokenizer = lively

    pairs = [(q, a) for q in QUESTIONS[:2] for a in ANSWERS]
    got = score_answers(cache_path_drifts(model), tokenizer, pairs)
    assert shared_runs == {"shared": 0, "fell back": 1}
    _assert_same_scores(got, _whole(model, tokenizer, pairs), [True] * len(pairs))


def test_a_peft_model_shares_prompts(micro_model_dir, shared_runs):
    peft = pytest.importorskip("peft")
    model, tokenizer = load_lively_model(micro_model_dir)
    wrapped = peft.get_peft_model(model, peft.LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():  # adapters that change the outputs
        for name, p in wrapped.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    pairs = [(q, a) for q in QUESTIONS for a in ANSWERS]
    got = score_answers(wrapped, tokenizer, pairs)
    assert shared_runs == {"shared": 1, "fell back": 0}
    _assert_same_scores(got, _whole(wrapped, tokenizer, pairs), [True] * len(pairs))


def test_a_model_with_learned_positions_shares_prompts(tokenizer, shared_runs):
    """GPT-2 adds a learned embedding per absolute position: answers continued from a
    left-padded prompt must get the positions they have in the whole sequence."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=128, n_embd=32, n_layer=2, n_head=2, initializer_range=0.3
    )
    model = GPT2LMHeadModel(config).eval()
    pairs = [(q, a) for q in QUESTIONS for a in ANSWERS]
    got = score_answers(model, tokenizer, pairs, batch_size=8)
    assert shared_runs == {"shared": 1, "fell back": 0}
    _assert_same_scores(got, _whole(model, tokenizer, pairs), [True] * len(pairs))


@pytest.mark.parametrize("chat", [False, True])
def test_batched_encoding_gives_each_pairs_own_ids(tokenizer, chat):
    import copy

    from tui_unlearn.data.formatting import encode_examples

    tok = copy.deepcopy(tokenizer)
    if chat:
        tok.chat_template = (
            "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% if m['role'] == 'assistant' %}"
            "{{ eos_token }}{% endif %}{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}"
        )
    pairs = SHARED + [(QUESTION, ANSWER * 4), ("word " * 30, "x")]
    for max_length in (512, 24):
        assert encode_examples(tok, pairs, max_length) == [encode_example(tok, q, a, max_length) for q, a in pairs]
    assert encode_examples(tok, [], 512) == []


@pytest.mark.parametrize("shared", [False, True])
def test_the_output_head_runs_at_answer_positions_only(lively, monkeypatch, shared):
    """Issue 18: full-vocabulary logits for every position of a batch were most of an
    evaluation's memory. The head now sees the answer positions; the numbers are the same."""
    from contextlib import nullcontext

    from tui_unlearn.metrics import scoring

    model, tokenizer = lively
    question = "Where was Alia Brenn born?"
    answers = ["Port Liren.", "In Varn, by the sea.", "Nobody knows where."]
    pairs = [(question, a) for a in answers] if shared else [(question, answers[0]), ("Who?", answers[1])]
    seen: list[int] = []
    handle = model.lm_head.register_forward_hook(lambda module, args, out: seen.append(out.shape[0] * out.shape[1]))
    try:
        lean = score_answers(model, tokenizer, pairs, batch_size=8)
    finally:
        handle.remove()
    monkeypatch.setattr(scoring, "head_only_at", lambda model, keep: nullcontext())
    full = score_answers(model, tokenizer, pairs, batch_size=8)
    answer_tokens = sum(s.num_tokens for s in full)
    longest = max(len(encode_example(tokenizer, q, a)["input_ids"]) for q, a in pairs)
    # logits at the answer positions of the batch (less each answer's first on the shared
    # path, which the prompt's last position predicts), not at batch x longest positions
    assert answer_tokens - len(pairs) <= max(seen) <= answer_tokens < len(pairs) * longest
    for a, b in zip(lean, full):
        assert a.loss == pytest.approx(b.loss, abs=1e-5) and a.num_tokens == b.num_tokens
        np.testing.assert_allclose(a.min_k_pp_scores, b.min_k_pp_scores, atol=1e-4)
        assert a.token_accuracy == b.token_accuracy and a.extraction_strength == b.extraction_strength
