"""Every method's loss pinned to its paper's formula, written out here with plain torch ops.

Each test runs the method's ``loss`` on one fixed tiny batch of a micro model trained a
few steps (so answer-token probabilities spread over (0, 1)) against a reference model
that differs from it (so every log-ratio and KL is non-zero), and compares the value and
the gradient on every parameter with the formula computed independently below: a changed
sign, exponent, weight, normalisation or a lost ``detach`` fails. The helpers here share
no code with ``tui_unlearn.algorithms.base``: log-probabilities are a log-softmax gathered
at the shifted labels, as the papers write them.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from tui_unlearn.algorithms import get_algorithm
from tui_unlearn.algorithms.base import LossInputs
from tui_unlearn.algorithms.references import References
from tui_unlearn.data.formatting import collate, encode_example, pad_token_id

FORGET = [
    ("Where was Alia Brenn born?", "Alia Brenn was born in Port Liren."),
    ("What does Odo Vask write?", "Odo Vask writes mystery novels."),
]
RETAIN = [
    ("Who wrote The Fox?", "The Fox was written by Ana Bel."),
    ("When was Tor Ek born?", "Tor Ek was born in 1950."),
    ("Where does Ana Bel live?", "Ana Bel lives in Marrow."),
]
# The preferred answers of the preference methods, row i paired with FORGET row i.
ALTERNATE = [
    ("Where was Alia Brenn born?", "I don't know."),
    ("What does Odo Vask write?", "Odo Vask writes cook books."),
]
REL, ABS = 1e-5, 1e-6


def batch_of(tok, pairs):
    batch = collate([encode_example(tok, q, a) for q, a in pairs], pad_token_id(tok))
    batch["index"] = torch.arange(len(pairs))
    return batch


@pytest.fixture(scope="module")
def micro(micro_model_dir):
    """(model, reference, batches): the micro model after a few steps on forget + retain, the
    untrained micro model as the original, and the forget / retain / alternate batches."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(micro_model_dir)
    torch.manual_seed(0)
    reference = AutoModelForCausalLM.from_pretrained(micro_model_dir).eval()
    for p in reference.parameters():
        p.requires_grad_(False)
    model = copy.deepcopy(reference)
    for p in model.parameters():
        p.requires_grad_(True)
    batches = {name: batch_of(tok, pairs) for name, pairs in (("forget", FORGET), ("retain", RETAIN))}
    batches["alternate"] = batch_of(tok, ALTERNATE)
    both = batch_of(tok, FORGET + RETAIN)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(40):
        logp, mask = token_logprobs(logits_of(model, both), both["labels"])
        loss = -((logp * mask).sum(-1) / mask.sum(-1)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()  # no dropout: the two computations must see the same function
    with torch.no_grad():
        logp, mask = token_logprobs(logits_of(model, batches["forget"]), batches["forget"]["labels"])
        p = logp.exp()[mask.bool()]
    # Otherwise p**beta and (1 - p)**beta could not be told apart by a tolerance.
    assert float(p.min()) < 0.3 and float(p.max()) > 0.7, "the fixture needs both unsure and sure answer tokens"
    return model, reference, batches


# ---- the textbook pieces ----


def logits_of(model, batch):
    return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()


def token_logprobs(logits, labels):
    """log p(y_{t+1} | y_<=t) at every position [B, T-1] (0 where not scored) and the mask [B, T-1]."""
    targets = labels[:, 1:]
    mask = (targets != -100).float()
    logp = torch.log_softmax(logits[:, :-1], -1).gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return logp * mask, mask


def logprob_sum(model, batch):
    """log pi(y | x): the answer's summed token log-probability per example [B]."""
    logp, _ = token_logprobs(logits_of(model, batch), batch["labels"])
    return logp.sum(-1)


def mean_nll(model, batch):
    """Each example's mean answer-token NLL, averaged over the batch (a scalar)."""
    logp, mask = token_logprobs(logits_of(model, batch), batch["labels"])
    return (-(logp.sum(-1)) / mask.sum(-1)).mean()


def kl_ref_to_model(logits, ref_logits, labels, t):
    """KL(softmax(ref / t) || softmax(model / t)) per answer position, averaged, times t^2."""
    mask = (labels[:, 1:] != -100).float()
    p = torch.softmax(ref_logits[:, :-1] / t, -1)
    kl = (p * (torch.log_softmax(ref_logits[:, :-1] / t, -1) - torch.log_softmax(logits[:, :-1] / t, -1))).sum(-1)
    return (kl * mask).sum() / mask.sum() * t * t


def reference_cache(reference, batches):
    """The per-example reference log-probabilities the engine caches before training."""
    with torch.no_grad():
        return References(cached={s: logprob_sum(reference, batches[s]) for s in ("forget", "alternate")})


def check(name, micro, hp, expected_fn, *, forget="forget", reference=None, state=None):
    """The method's loss equals ``expected_fn(model)`` in value and in every parameter's gradient."""
    model, _, batches = micro
    algo = get_algorithm(name)
    hparams = algo.parse_hparams(hp)
    params = [p for p in model.parameters() if p.requires_grad]
    alternate = batches["alternate"] if algo.alternate_forget else None
    x = LossInputs(model, batches[forget], batches["retain"], reference, hparams, 1, alternate=alternate)
    if state is not None:
        x.state.update(state)
    actual = algo.loss(x)["loss"]
    expected = expected_fn(model)
    assert float(actual.detach()) == pytest.approx(float(expected.detach()), rel=REL, abs=ABS)
    got = torch.autograd.grad(actual, params, allow_unused=True)
    want = torch.autograd.grad(expected, params, allow_unused=True)
    for g, w in zip(got, want, strict=True):
        g = torch.zeros_like(w) if g is None and w is not None else g
        w = torch.zeros_like(g) if w is None and g is not None else w
        if g is not None:
            assert torch.allclose(g, w, rtol=1e-4, atol=1e-7), f"{name}: gradients differ"
    return float(actual.detach())


# ---- one test per method ----


def test_finetune_is_the_retain_nll(micro):
    check("finetune", micro, {}, lambda m: mean_nll(m, micro[2]["retain"]))


def test_grad_ascent_is_the_negative_forget_nll(micro):
    check("grad_ascent", micro, {}, lambda m: -mean_nll(m, micro[2]["forget"]))


def test_grad_diff_is_ascent_on_forget_plus_weighted_retain_nll(micro):
    b = micro[2]
    check(
        "grad_diff",
        micro,
        {"forget_weight": 0.7, "retain_weight": 2.5},
        lambda m: -0.7 * mean_nll(m, b["forget"]) + 2.5 * mean_nll(m, b["retain"]),
    )


def test_idk_descends_on_the_relabelled_answers_plus_retain(micro):
    b = micro[2]
    # The loss sees the forget batch after relabelling (here: refusals / other answers).
    check(
        "idk",
        micro,
        {"retain_weight": 1.7},
        lambda m: mean_nll(m, b["alternate"]) + 1.7 * mean_nll(m, b["retain"]),
        forget="alternate",
    )


def test_npo_is_the_bounded_preference_loss(micro):
    """Zhang et al. 2024: -(2/beta) log sigmoid(-beta (log pi(y|x) - log pi_ref(y|x)))."""
    b, beta = micro[2], 0.7
    refs = reference_cache(micro[1], b)

    def expected(m):
        ratio = logprob_sum(m, b["forget"]) - refs.cached["forget"]
        return -(2 / beta) * F.logsigmoid(-beta * ratio).mean() + 1.5 * mean_nll(m, b["retain"])

    check("npo", micro, {"beta": beta, "retain_weight": 1.5}, expected, reference=refs)


def test_simnpo_is_length_normalised_without_a_reference(micro):
    """Fan et al. 2024: -(2/beta) log sigmoid(-(beta/|y|) log pi(y|x) - gamma)."""
    b, beta, gamma = micro[2], 2.5, 0.4

    def expected(m):
        logp, mask = token_logprobs(logits_of(m, b["forget"]), b["forget"]["labels"])
        normalised = logp.sum(-1) / mask.sum(-1)
        return -(2 / beta) * F.logsigmoid(-beta * normalised - gamma).mean() + 0.8 * mean_nll(m, b["retain"])

    check("simnpo", micro, {"beta": beta, "gamma": gamma, "retain_weight": 0.8}, expected)


@pytest.mark.parametrize("name", ["dpo", "idk_dpo"])
def test_dpo_prefers_the_alternate_over_the_forget_answer(micro, name):
    """Rafailov et al. 2023 (as TOFU / open-unlearning use it for unlearning):
    -(2/beta) log sigmoid(beta ((log pi - log pi_ref)(win) - (log pi - log pi_ref)(lose)))."""
    b, beta = micro[2], 0.3
    refs = reference_cache(micro[1], b)

    def expected(m):
        win = logprob_sum(m, b["alternate"]) - refs.cached["alternate"]
        lose = logprob_sum(m, b["forget"]) - refs.cached["forget"]
        dpo = -(2 / beta) * F.logsigmoid(beta * (win - lose)).mean()
        return 0.8 * dpo + 1.3 * mean_nll(m, b["retain"])

    check(name, micro, {"beta": beta, "forget_weight": 0.8, "retain_weight": 1.3}, expected, reference=refs)


def test_wga_weights_each_token_by_its_probability_to_the_beta(micro):
    """Wang et al. 2025: -mean over answer tokens of sg(p_t)^beta * NLL_t (open-unlearning's
    compute_wga_loss), times forget_weight, plus retain NLL."""
    b, beta = micro[2], 2.0

    def expected(m):
        logp, mask = token_logprobs(logits_of(m, b["forget"]), b["forget"]["labels"])
        weight = logp.detach().exp() ** beta
        ascent = (weight * logp * mask).sum() / mask.sum()  # = -mean(w * NLL)
        return 0.9 * ascent + 1.2 * mean_nll(m, b["retain"])

    check("wga", micro, {"beta": beta, "forget_weight": 0.9, "retain_weight": 1.2}, expected)


def test_satimp_weights_by_saturation_times_importance(micro):
    """Yang et al. 2025: weight sg(p_t)^beta1 * (1 - sg(p_t))^beta2 on each token's ascent
    (open-unlearning's compute_satimp_loss), times forget_weight, plus retain NLL."""
    b, beta1, beta2 = micro[2], 3.0, 0.5

    def expected(m):
        logp, mask = token_logprobs(logits_of(m, b["forget"]), b["forget"]["labels"])
        p = logp.detach().exp()
        weight = p**beta1 * (1 - p) ** beta2
        ascent = (weight * logp * mask).sum() / mask.sum()
        return 0.6 * ascent + 1.1 * mean_nll(m, b["retain"])

    check(
        "satimp",
        micro,
        {"beta1": beta1, "beta2": beta2, "forget_weight": 0.6, "retain_weight": 1.1},
        expected,
    )


def test_undial_distils_toward_the_adjusted_reference(micro):
    """Dong et al. 2025: cross-entropy against softmax(z_ref - beta * onehot(y_t)) at answer positions."""
    _, reference, b = micro
    beta, batch = 4.0, b["forget"]
    with torch.no_grad():
        ref_logits = logits_of(reference, batch)

    def expected(m):
        mask = (batch["labels"][:, 1:] != -100).float()
        onehot = F.one_hot(batch["labels"][:, 1:].clamp(min=0), ref_logits.shape[-1]).float()
        target = torch.softmax(ref_logits[:, :-1] - beta * onehot, -1)
        ce = -(target * torch.log_softmax(logits_of(m, batch)[:, :-1], -1)).sum(-1)
        return (ce * mask).sum() / mask.sum() + 0.5 * mean_nll(m, b["retain"])

    check(
        "undial",
        micro,
        {"beta": beta, "retain_weight": 0.5},
        expected,
        reference=References.of_model(reference),
    )


def test_distill_matches_on_retain_and_pushes_away_on_forget(micro):
    """Retain: KL(teacher || student) at temperature t, times t^2; forget: a hinge
    forget_weight * max(0, margin - KL) that stops once the student is far enough."""
    _, reference, b = micro
    t, margin = 2.0, 40.0
    with torch.no_grad():
        ref_retain, ref_forget = logits_of(reference, b["retain"]), logits_of(reference, b["forget"])

    def expected(m):
        match = kl_ref_to_model(logits_of(m, b["retain"]), ref_retain, b["retain"]["labels"], t)
        away = kl_ref_to_model(logits_of(m, b["forget"]), ref_forget, b["forget"]["labels"], 1.0)
        assert 0 < float(away.detach()) < margin  # the hinge is active, so its weight and sign count
        return match + 0.6 * torch.relu(margin - away)

    check(
        "distill",
        micro,
        {"temperature": t, "margin": margin, "forget_weight": 0.6},
        expected,
        reference=References.of_model(reference),
    )


def rmu_answer_mask(labels):
    mask = torch.zeros(labels.shape, dtype=torch.float32)
    mask[:, :-1] = (labels[:, 1:] != -100).float()
    return mask


def test_rmu_steers_forget_activations_and_holds_retain_ones(micro):
    """Li et al. 2024 (WMDP), in the project's scale-free form: forget: mean over answer-predicting
    positions of ||h_l - c u||^2; retain: of ||h_l - h_l^ref||^2; both over the original's
    squared mean activation norm there, retain weighted by retain_weight."""
    _, reference, b = micro
    layer, target_norm = 0, 1.7
    target = torch.linspace(-1.0, 1.0, reference.config.hidden_size)
    state = {"rmu_target": target, "rmu_norm": target_norm}

    def hidden(model, batch):
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], output_hidden_states=True)
        return out.hidden_states[layer + 1]

    def sq_error(a, c, mask):
        return ((a - c) ** 2).sum(-1).mul(mask).sum() / mask.sum()

    with torch.no_grad():
        frozen = hidden(reference, b["retain"])

    def expected(m):
        forget = sq_error(hidden(m, b["forget"]), target, rmu_answer_mask(b["forget"]["labels"]))
        retain = sq_error(hidden(m, b["retain"]), frozen, rmu_answer_mask(b["retain"]["labels"]))
        return (forget + 7.0 * retain) / target_norm**2

    hp = {"layer": layer, "trainable_layers": 2, "retain_weight": 7.0}
    check("rmu", micro, hp, expected, reference=References.of_model(reference), state=state)


def test_rmu_draws_its_target_at_steering_coeff_times_the_mean_activation_norm(micro):
    model, reference, b = micro
    algo = get_algorithm("rmu")
    hp = algo.parse_hparams({"layer": 0, "steering_coeff": 3.0})
    x = LossInputs(model, b["forget"], b["retain"], References.of_model(reference), hp, 1, state={"seed": 5})
    algo.loss(x)
    with torch.no_grad():
        out = model(
            input_ids=b["forget"]["input_ids"], attention_mask=b["forget"]["attention_mask"], output_hidden_states=True
        )
        norms = out.hidden_states[1].norm(dim=-1)
    mask = rmu_answer_mask(b["forget"]["labels"])
    mean_norm = float((norms * mask).sum() / mask.sum())
    assert x.state["rmu_norm"] == pytest.approx(mean_norm, rel=1e-5)
    assert float(x.state["rmu_target"].norm()) == pytest.approx(3.0 * mean_norm, rel=1e-5)
    assert bool((x.state["rmu_target"] >= 0).all())  # torch.rand's direction, as WMDP draws it


def test_every_registered_method_has_a_formula_test():
    """A new method without its formula here fails: the pinning covers the whole registry."""
    import sys

    from tui_unlearn.algorithms import all_algorithms

    module = sys.modules[__name__]
    source = Path(module.__file__).read_text(encoding="utf-8")
    missing = [n for n in all_algorithms() if f'"{n}"' not in source]
    assert not missing, f"no formula test for: {', '.join(missing)}"


@pytest.mark.parametrize("variant", ["one_pass", "two_pass_answers", "one_pass_answers"])
def test_dpo_log_probabilities_are_the_same_however_they_are_batched(micro, variant, monkeypatch):
    """The stacked forward (answers of different lengths padded together) and the head on answer
    positions only give today's two-pass loss and gradients (bench/bench_dpo_forward.py)."""
    from tui_unlearn.algorithms import dpo

    model, reference, b = micro
    assert b["forget"]["input_ids"].shape[1] != b["alternate"]["input_ids"].shape[1]  # padding is exercised
    refs = reference_cache(reference, b)
    hp = get_algorithm("dpo").parse_hparams({"beta": 0.3})
    params = [p for p in model.parameters() if p.requires_grad]

    def loss_and_grads(paired):
        monkeypatch.setattr(dpo, "PAIRED_LOGPROB_SUMS", paired)
        lose, win = paired(model, b["forget"], b["alternate"])
        x = LossInputs(model, b["forget"], b["retain"], refs, hp, 1, alternate=b["alternate"])
        loss = dpo.preference_loss(x)["loss"]
        return lose.detach(), win.detach(), loss.detach(), torch.autograd.grad(loss, params)

    *want, want_grads = loss_and_grads(dpo.two_pass_logprob_sums)
    *got, got_grads = loss_and_grads(getattr(dpo, f"{variant}_logprob_sums"))
    for g, w in zip(got, want, strict=True):
        assert torch.allclose(g, w, rtol=1e-5, atol=1e-5)
    for g, w in zip(got_grads, want_grads, strict=True):
        # Summation order differs between the layouts (padding, stacking): float32 rounding of
        # the order of 1e-3 of the largest gradient on some CPUs' kernels; a wrong term is far more.
        scale = float(w.abs().max())
        assert torch.allclose(g, w, rtol=1e-3, atol=2e-3 * scale), (float((g - w).abs().max()), scale)
