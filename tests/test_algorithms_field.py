"""The field's methods (DPO, IdK-DPO, RMU, WGA, UNDIAL, SatImp) on a micro model that knows its data."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from tui_unlearn.algorithms import get_algorithm
from tui_unlearn.algorithms.base import LossInputs, nll
from tui_unlearn.algorithms.references import References
from tui_unlearn.data.formatting import collate, encode_example, pad_token_id
from tui_unlearn.metrics.scoring import score_answers

FORGET = [
    ("Where was Alia Brenn born?", "Alia Brenn was born in Port Liren."),
    ("What does Odo Vask write?", "Odo Vask writes mystery novels."),
]
RETAIN = [
    ("Who wrote The Fox?", "The Fox was written by Ana Bel."),
    ("When was Tor Ek born?", "Tor Ek was born in 1950."),
]
NEW_METHODS = ("dpo", "idk_dpo", "rmu", "wga", "undial", "satimp")


def batch_of(tok, pairs):
    batch = collate([encode_example(tok, q, a) for q, a in pairs], pad_token_id(tok))
    batch["index"] = torch.arange(len(pairs))
    return batch


def frozen(model):
    model = copy.deepcopy(model).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


@pytest.fixture(scope="module")
def knowing(micro_model_dir):
    """(model, tokenizer): the micro model trained until it reproduces forget and retain answers."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(micro_model_dir)
    model = AutoModelForCausalLM.from_pretrained(micro_model_dir)
    torch.manual_seed(0)
    data = batch_of(tok, FORGET + RETAIN)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(150):
        loss = nll(model, data)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    assert token_accuracy(model, tok, FORGET) > 0.95, "the fixture model must know its forget set"
    return model, tok


def token_accuracy(model, tok, pairs) -> float:
    return sum(s.token_accuracy for s in score_answers(model, tok, pairs)) / len(pairs)


@pytest.fixture(scope="module")
def knowing_files(knowing, tmp_path_factory):
    """The knowing model saved as a Hugging Face folder, and the forget / retain / holdout
    files: what a user hands the engine."""
    import json

    model, tok = knowing
    folder = tmp_path_factory.mktemp("knowing")
    model.save_pretrained(folder / "model", safe_serialization=True)
    tok.save_pretrained(folder / "model")
    files = {"model": str(folder / "model")}
    for split, pairs in (("forget", FORGET), ("retain", RETAIN), ("holdout", RETAIN[:1])):
        path = folder / f"{split}.json"
        path.write_text(json.dumps([{"question": q, "answer": a} for q, a in pairs]))
        files[split] = str(path)
    return files


def unlearn(name, knowing_files, tmp_path, steps=30, lr=1e-2, **hp):
    """Run method ``name`` through the engine (``engine.run``: its references, alternate
    stream, trainable subset and training loop) on the knowing model with the whole forget and
    retain sets in every batch. Returns (the saved unlearned model, each step's loss terms,
    the run's result)."""
    from transformers import AutoModelForCausalLM

    from tui_unlearn import events as ev
    from tui_unlearn.config import RunConfig
    from tui_unlearn.engine import run

    steps_seen = []
    result = run(
        RunConfig(
            model=knowing_files["model"],
            dtype="float32",
            algorithm=name,
            hparams=hp,
            forget=knowing_files["forget"],
            retain=knowing_files["retain"],
            holdout=knowing_files["holdout"],
            steps=steps,
            lr=lr,
            batch_size=len(FORGET),
            eval_every=0,
            eval_samples=1,
            max_new_tokens=2,
            calibrate=False,  # the method's own last step is what these tests follow
            guard_general=0.0,
            guard_knowledge=0.0,
            relearn_steps=0,
            eval_cache=False,
            save_model=True,
        ),
        lambda event: steps_seen.append(event) if isinstance(event, ev.StepLosses) else None,
        sessions_dir=tmp_path / "sessions",
    )
    assert result.status == "finished", result
    assert all(math.isfinite(v) for e in steps_seen for v in e.losses.values())
    model = AutoModelForCausalLM.from_pretrained(result.summary["model_saved"]).eval()
    return model, [e.losses for e in steps_seen], result


@pytest.mark.slow  # six engine runs of 30 steps
@pytest.mark.parametrize("name", NEW_METHODS)
def test_each_new_method_lowers_forget_accuracy_and_keeps_retain(name, knowing, knowing_files, tmp_path):
    model, tok = knowing
    forget_before, retain_before = token_accuracy(model, tok, FORGET), token_accuracy(model, tok, RETAIN)
    after_model, _, _ = unlearn(name, knowing_files, tmp_path)
    forget_after, retain_after = token_accuracy(after_model, tok, FORGET), token_accuracy(after_model, tok, RETAIN)
    assert forget_after < forget_before - 0.3, (
        f"{name}: forget token accuracy {forget_before:.2f} -> {forget_after:.2f}"
    )
    assert retain_after > retain_before - 0.15, (
        f"{name}: retain token accuracy {retain_before:.2f} -> {retain_after:.2f}"
    )


@pytest.mark.parametrize("name", NEW_METHODS)
def test_new_methods_are_registered_with_cited_docstrings_and_search_spaces(name):
    import importlib

    algo = get_algorithm(name)
    module = importlib.import_module(f"tui_unlearn.algorithms.{name}")
    assert re_year(module.__doc__), f"{name} must cite its paper (authors, year) in its docstring"
    assert algo.search_space, f"{name} declares where a sweep should look"
    for p in algo.hyperparams:
        assert p.parse(p.default) == p.default


def re_year(text: str | None) -> bool:
    import re

    return bool(text and re.search(r"(19|20)\d\d", text) and "et al" in text)


@pytest.mark.slow  # two engine runs
def test_dpo_starts_at_log2_and_prefers_the_alternate(knowing_files, tmp_path):
    _, losses, _ = unlearn("dpo", knowing_files, tmp_path / "dpo", steps=1, beta=0.5)
    # At step 1 the model is the reference: both log ratios are 0 and the loss is (2/beta) log 2.
    assert math.isclose(losses[0]["dpo"], 2 / 0.5 * math.log(2), rel_tol=1e-4)
    _, losses, _ = unlearn("idk_dpo", knowing_files, tmp_path / "idk", steps=20)
    # The refusals became likelier than under the original, the forget answers less likely.
    assert losses[-1]["alternate_logratio"] > 0 > losses[-1]["forget_logratio"]


def test_dpo_pairs_are_checked(knowing):
    model, tok = knowing
    algo = get_algorithm("dpo")
    forget = batch_of(tok, FORGET)
    shifted = {**forget, "index": torch.tensor([1, 0])}
    reference = References(cached={"forget": torch.zeros(2), "alternate": torch.zeros(2)})
    with pytest.raises(RuntimeError, match="out of step"):
        algo.loss(LossInputs(model, forget, None, reference, algo.defaults(), 1, alternate=shifted))


@pytest.mark.slow  # an engine run of 30 steps
def test_rmu_trains_only_the_chosen_layers_and_holds_retain_activations(knowing, knowing_files, tmp_path):
    from tui_unlearn.algorithms.base import layer_activations
    from tui_unlearn.algorithms.rmu import chosen_layer

    assert (
        chosen_layer(32, -1) == 8 and chosen_layer(3, -1) == 1 and chosen_layer(2, -1) == 0 and chosen_layer(12, 5) == 5
    )
    model, tok = knowing
    trained, losses, _ = unlearn("rmu", knowing_files, tmp_path, layer=0, trainable_layers=1)
    original = dict(model.named_parameters())
    changed = {n for n, p in trained.named_parameters() if not torch.equal(p, original[n])}
    assert changed and all(".layers.0." in n for n in changed)  # the engine froze every other layer
    assert losses[0]["rmu_retain"] == pytest.approx(0.0, abs=1e-6)  # the model starts as the reference
    with torch.no_grad():
        retain, forget = batch_of(tok, RETAIN), batch_of(tok, FORGET)
        moved_retain = (layer_activations(trained, retain, 0) - layer_activations(model, retain, 0)).norm()
        moved_forget = (layer_activations(trained, forget, 0) - layer_activations(model, forget, 0)).norm()
    assert moved_forget > 1.5 * moved_retain  # forget answers pushed away far more than retain ones


def test_rmu_param_filter_and_unknown_layer(knowing):
    from tui_unlearn.errors import ConfigError

    model, _ = knowing
    algo = get_algorithm("rmu")
    names = algo.trainable_parameters(model, algo.parse_hparams({"layer": 1, "param_filter": "mlp.down_proj"}))
    assert names == ["model.layers.0.mlp.down_proj.weight", "model.layers.1.mlp.down_proj.weight"]
    with pytest.raises(ConfigError, match="layer 7 does not exist"):
        algo.trainable_parameters(model, algo.parse_hparams({"layer": 7}))


def test_layer_activations_stop_early_and_match_hidden_states(knowing):
    from tui_unlearn.algorithms.base import layer_activations

    model, tok = knowing
    batch = batch_of(tok, FORGET)
    with torch.no_grad():
        hidden = model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], output_hidden_states=True
        ).hidden_states
        assert torch.allclose(layer_activations(model, batch, 0), hidden[1], atol=1e-5)


def test_wga_and_satimp_weights_fade_for_forgotten_tokens():
    from tui_unlearn.algorithms.wga import weighted_ascent

    losses = torch.tensor([[0.01, 5.0]])  # a token still known, one forgotten
    mask = torch.tensor([[True, True]])
    w = (-losses).exp()
    assert float(weighted_ascent(losses, mask, w)) == pytest.approx(-(0.99 * 0.01 + math.exp(-5) * 5) / 2, rel=1e-3)


def test_undial_target_lowers_the_true_token():
    from tui_unlearn.algorithms.undial import adjusted_distillation

    ref = torch.zeros(1, 2, 4)
    ref[0, 0, 2] = 5.0  # the original is sure of token 2
    labels = torch.tensor([[-100, 2]])
    logits = ref.clone().requires_grad_(True)
    loss = adjusted_distillation(logits, ref, labels, beta=10.0)
    loss.backward()
    assert logits.grad[0, 0, 2] > 0  # descending the loss lowers the true token's logit


@pytest.fixture(scope="module")
def chat_model_dir(micro_model_dir, tmp_path_factory):
    """The micro model with a chat template, as a user's instruction-tuned model would have."""
    import shutil

    from transformers import AutoTokenizer

    folder = tmp_path_factory.mktemp("chat-model")
    shutil.copytree(micro_model_dir, folder, dirs_exist_ok=True)
    tok = AutoTokenizer.from_pretrained(folder)
    tok.chat_template = (
        "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}</s>{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}"
    )
    tok.save_pretrained(folder)
    return folder


@pytest.mark.parametrize("name", NEW_METHODS)
def test_each_new_method_runs_in_the_engine_on_a_chat_model(name, chat_model_dir, tmp_path, monkeypatch):
    import json

    import tui_unlearn.engine.relearn
    from tui_unlearn.config import RunConfig
    from tui_unlearn.data.formatting import has_chat_template
    from tui_unlearn.engine import run
    from tui_unlearn.models.loading import load_model

    assert has_chat_template(load_model(str(chat_model_dir), device="cpu", dtype="float32").tokenizer)
    files = {}
    for split, pairs in (("forget", FORGET), ("retain", RETAIN), ("holdout", RETAIN[:1])):
        files[split] = tmp_path / f"{split}.json"
        files[split].write_text(json.dumps([{"question": q, "answer": a} for q, a in pairs]))
    seen = {}

    def relearn_check(ctx, model, before, after):  # what the relearning check would fine-tune
        seen["frozen"] = [n for n, p in model.named_parameters() if not p.requires_grad]
        return {"steps": 0}

    monkeypatch.setattr(tui_unlearn.engine.relearn, "relearn_check", relearn_check)
    result = run(
        RunConfig(
            model=str(chat_model_dir),
            algorithm=name,
            forget=str(files["forget"]),
            retain=str(files["retain"]),
            holdout=str(files["holdout"]),
            steps=2,
            eval_every=1,
            max_new_tokens=4,
            relearn_steps=1,
            calibrate=False,  # the method's own last step is the result: what this test follows
            guard_general=0.0,
        ),
        sessions_dir=tmp_path / "s",
    )
    assert result.status == "finished" and result.summary["steps"] == 2
    losses = result.summary["final_losses"]
    assert losses and all(math.isfinite(v) for v in losses.values())
    from tui_unlearn.events import RunScale

    assert set(result.summary["scale"]) == set(RunScale.__annotations__) | {"trainable_parameters", "parameters"}
    if name == "rmu":  # only the chosen layers trained; afterwards every weight can train again
        assert result.summary["scale"]["trainable_parameters"] < result.summary["scale"]["parameters"]
    assert seen["frozen"] == []
