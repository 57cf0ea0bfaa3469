import copy
import math
import random

import pytest
import torch

from tui_unlearn.algorithms import all_algorithms, get_algorithm
from tui_unlearn.algorithms.base import HyperParam, LossInputs, nll
from tui_unlearn.algorithms.distill import smaller_student
from tui_unlearn.algorithms.idk import refusals, relabel
from tui_unlearn.algorithms.npo import npo_term
from tui_unlearn.algorithms.references import References, reference_logprob_table
from tui_unlearn.data.formatting import collate, encode_example, pad_token_id
from tui_unlearn.errors import ConfigError

FORGET = [
    ("Where was Alia Brenn born?", "Alia Brenn was born in Port Liren."),
    ("What does Odo Vask write?", "Odo Vask writes mystery novels."),
]
RETAIN = [
    ("Who wrote The Fox?", "The Fox was written by Ana Bel."),
    ("When was Tor Ek born?", "Tor Ek was born in 1950."),
]


@pytest.fixture(scope="module")
def micro(micro_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(micro_model_dir)
    model = AutoModelForCausalLM.from_pretrained(micro_model_dir)
    batch = lambda pairs: collate([encode_example(tok, q, a) for q, a in pairs], pad_token_id(tok))  # noqa: E731
    return model, tok, batch(FORGET), batch(RETAIN)


def train(algorithm_name, micro, steps=8, lr=5e-3, **hp):
    model, tok, forget, retain = micro
    model = copy.deepcopy(model)
    algo = get_algorithm(algorithm_name)
    hparams = algo.parse_hparams(hp)
    needs = algo.needs_reference or algo.reference_logprobs
    reference = References.of_model(copy.deepcopy(model).eval()) if needs else None
    if algo.make_student:
        model = algo.make_student(model, hparams)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    first = None
    for step in range(steps):
        terms = algo.loss(LossInputs(model, forget, retain, reference, hparams, step))
        assert "loss" in terms and torch.isfinite(terms["loss"])
        first = first or {k: float(v.detach()) for k, v in terms.items()}
        opt.zero_grad()
        terms["loss"].backward()
        opt.step()
    with torch.no_grad():
        return model, first, float(nll(model, forget)), float(nll(model, retain))


def base_nll(micro):
    model, _, forget, retain = micro
    with torch.no_grad():
        return float(nll(model, forget)), float(nll(model, retain))


def test_registry_declarations_are_complete():
    algos = all_algorithms()
    for name in ("finetune", "grad_ascent", "grad_diff", "idk", "distill", "npo", "simnpo"):
        assert name in algos
        a = algos[name]
        assert a.description and "\n" not in a.description
        for p in a.hyperparams:
            assert p.parse(p.default) == p.default  # defaults pass their own validation
    with pytest.raises(ConfigError, match="choose one of"):
        get_algorithm("nope")


def test_grad_ascent_raises_forget_loss(micro):
    f0, _ = base_nll(micro)
    _, _, f1, _ = train("grad_ascent", micro)
    assert f1 > f0 + 0.1


def test_finetune_lowers_retain_loss(micro):
    _, r0 = base_nll(micro)
    _, _, _, r1 = train("finetune", micro)
    assert r1 < r0 - 0.1


def test_grad_diff_moves_both_ways(micro):
    f0, r0 = base_nll(micro)
    _, terms, f1, r1 = train("grad_diff", micro, retain_weight=2.0)
    assert math.isclose(terms["loss"], -terms["forget_nll"] + 2.0 * terms["retain_nll"], rel_tol=1e-5)
    assert f1 > f0 and r1 < r0


def test_npo_starts_at_log2_and_raises_forget_loss(micro):
    f0, _ = base_nll(micro)
    _, terms, f1, _ = train("npo", micro, beta=0.5)
    # The model equals the reference at step 0: -(2/beta) log sigmoid(0) = (2/beta) log 2.
    assert math.isclose(terms["npo"], 2 / 0.5 * math.log(2), rel_tol=1e-4)
    assert f1 > f0


def test_npo_term_saturates():
    big_gap = npo_term(torch.tensor([-50.0]), torch.tensor([0.0]), 0.1)
    assert float(big_gap) < float(npo_term(torch.tensor([0.0]), torch.tensor([0.0]), 0.1))


def test_simnpo_raises_forget_loss(micro):
    f0, _ = base_nll(micro)
    _, _, f1, _ = train("simnpo", micro, beta=0.1)  # a random model is far from saturation only at small beta
    assert f1 > f0


def test_idk_relabels_and_learns_refusals(micro):
    records = [{"question": q, "answer": a, "perturbed_answers": []} for q, a in FORGET]
    out = relabel(records, {"target": "refusal"}, random.Random(0))
    assert all(r["answer"] in refusals() for r in out) and len(refusals()) >= 20
    assert [r["answer"] for r in records] == [a for _, a in FORGET]  # originals untouched
    cf = relabel(records, {"target": "counterfactual"}, random.Random(0))
    assert cf[0]["answer"] == FORGET[1][1] and cf[1]["answer"] == FORGET[0][1]
    with_perturbed = [{**records[0], "perturbed_answers": ["wrong one"]}]
    assert relabel(with_perturbed, {"target": "counterfactual"}, random.Random(0))[0]["answer"] == "wrong one"


def test_distill_pushes_away_on_forget_and_matches_on_retain(micro):
    model, terms, f1, _ = train("distill", micro, steps=10)
    assert terms["forget_kl"] == pytest.approx(0.0, abs=1e-6)  # the student starts as the teacher
    f0, _ = base_nll(micro)
    assert f1 > f0


def test_smaller_student_generates(micro):
    model, tok, _, _ = micro
    student = smaller_student(model, 1)
    assert student.config.num_hidden_layers == 1
    assert sum(p.numel() for p in student.parameters()) < sum(p.numel() for p in model.parameters())
    ids = tok("Question: hi\nAnswer:", return_tensors="pt")
    out = student.generate(**ids, max_new_tokens=3, do_sample=False)
    assert out.shape[1] > ids["input_ids"].shape[1]
    _, _, _, _ = train("distill", micro, steps=2, student_layers=1)


def test_hyperparam_parse():
    p = HyperParam("k", "int", 3, "help", 1, 10)
    assert p.parse("4") == 4
    for bad in ("4.5", "x", 0, 11):
        with pytest.raises(ConfigError):
            p.parse(bad)
    b = HyperParam("flag", "bool", False, "help")
    assert b.parse("yes") is True and b.parse("off") is False
    with pytest.raises(ConfigError):
        b.parse("maybe")


def test_cached_reference_logprobs_equal_a_reference_model(micro):
    """NPO's reference term from the one pass before training is what a second model gives."""
    from tui_unlearn.algorithms.base import sequence_logprob_sum

    model, tok, forget, _ = micro
    examples = [encode_example(tok, q, a) for q, a in FORGET]
    table = reference_logprob_table(model, examples, pad_token_id(tok), batch_size=1)
    cached = References(cached={"forget": table})
    batch = {**forget, "index": torch.tensor([1, 0])}
    flipped = {k: v.flip(0) if k != "index" else v for k, v in batch.items()}
    with torch.no_grad():
        direct = sequence_logprob_sum(
            model(input_ids=flipped["input_ids"], attention_mask=flipped["attention_mask"]).logits, flipped["labels"]
        )
    assert torch.allclose(cached.logprob_sums("forget", flipped), direct, atol=1e-4)
