"""Building the bundled tiny models: reproducibility, loadability, and the committed models."""

from __future__ import annotations

import hashlib
import json

import pytest

from tui_unlearn.data.benchmark import benchmark_fingerprint, benchmark_records
from tui_unlearn.errors import ModelLoadError
from tui_unlearn.models import build_tiny, bundled
from tui_unlearn.models.bundled import BUNDLED_MODELS, bundled_model_dir, is_bundled

MAX_BYTES = 20 * 1024 * 1024


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def micro_builds(tmp_path_factory):
    """The micro target built twice: once through the CLI, once through the function."""
    root = tmp_path_factory.mktemp("micro-builds")
    assert build_tiny.main(["--micro", "--only", "tiny-authors", "--out", str(root / "cli")]) == 0
    result = build_tiny.build_micro_model(root / "fn" / "tiny-authors")
    return root / "cli" / "tiny-authors", root / "fn" / "tiny-authors", result


def test_micro_build_is_bit_for_bit_reproducible(micro_builds):
    first, second, _ = micro_builds
    assert _sha256(first / "model.safetensors") == _sha256(second / "model.safetensors")
    assert _sha256(first / "tokenizer.json") == _sha256(second / "tokenizer.json")


def test_build_restores_the_callers_torch_settings(micro_builds):
    import torch

    assert not torch.are_deterministic_algorithms_enabled()


def test_micro_build_training_loss_goes_down(micro_builds):
    losses = micro_builds[2]["stats"].losses
    assert len(losses) >= 10
    assert sum(losses[-3:]) / 3 < 0.7 * sum(losses[:3]) / 3


def test_micro_build_loads_and_tokenizer_prepends_bos(micro_builds):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = micro_builds[0]
    model = AutoModelForCausalLM.from_pretrained(folder)
    tok = AutoTokenizer.from_pretrained(folder)
    ids = tok("Question: hi\nAnswer:")["input_ids"]
    assert ids[0] == tok.bos_token_id == model.config.bos_token_id
    assert ids.count(tok.bos_token_id) == 1
    assert tok.eos_token_id not in ids and tok.eos_token_id == model.config.eos_token_id
    assert tok.pad_token_id is not None
    assert model.config.tie_word_embeddings
    info = json.loads((folder / "build_info.json").read_text())
    assert info["benchmark_fingerprint"] == benchmark_fingerprint()
    assert info["steps"] == len(micro_builds[2]["stats"].losses)


def test_tokenizer_training_is_deterministic():
    texts = build_tiny.benchmark_texts(authors=2)
    a = build_tiny.train_tokenizer(texts, 400)
    b = build_tiny.train_tokenizer(texts, 400)
    assert a.backend_tokenizer.to_str() == b.backend_tokenizer.to_str()


def test_normalize_answer():
    assert build_tiny.normalize_answer('  Ana Bel\'s book is "The  Tide". ') == "ana bels book is the tide"


# --- the committed bundled models --------------------------------------------------------------
@pytest.mark.parametrize("name", list(BUNDLED_MODELS))
def test_bundled_model_is_committed_small_and_current(name):
    folder = bundled_model_dir(name)
    assert folder.name == name and folder.parent.name == "models_cache"
    size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    assert size < MAX_BYTES
    info = json.loads((folder / "build_info.json").read_text())
    assert info["benchmark_fingerprint"] == benchmark_fingerprint(), (
        "the benchmark changed since the bundled models were built: "
        "rebuild with `python -m tui_unlearn.models.build_tiny`"
    )
    assert info["trained_on"] == build_tiny.TRAINING_SPLITS[name]
    assert info["exact_match"]["retain90"] >= 0.95


@pytest.fixture(scope="module")
def bundled_target():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = bundled_model_dir("tiny-authors")
    return AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)


def test_bundled_target_knows_forget_facts(bundled_target):
    model, tok = bundled_target
    records = benchmark_records("forget10")[:6]
    assert build_tiny.exact_match(model, tok, records) >= 5 / 6


def test_bundled_oracle_loads():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = bundled_model_dir("tiny-authors-retain")
    model = AutoModelForCausalLM.from_pretrained(folder)
    tok = AutoTokenizer.from_pretrained(folder)
    assert model.config.vocab_size == len(tok)


def test_is_bundled():
    assert is_bundled("tiny-authors") and is_bundled("tiny-authors-retain")
    assert not is_bundled("gpt2")


def test_bundled_model_dir_errors_are_one_line(monkeypatch, tmp_path):
    with pytest.raises(ModelLoadError):
        bundled_model_dir("gpt2")
    monkeypatch.setattr(bundled, "_checkout_cache", lambda: tmp_path / "nowhere")
    monkeypatch.setattr(bundled, "_installed_cache", lambda: None)
    with pytest.raises(ModelLoadError) as info:
        bundled_model_dir("tiny-authors")
    assert "\n" not in str(info.value)
    assert "build_tiny" in str(info.value)


def test_bundled_model_dir_falls_back_to_the_installed_package(monkeypatch, tmp_path):
    installed = tmp_path / "site" / "tui_unlearn" / "_models_cache"
    target = installed / "tiny-authors"
    target.mkdir(parents=True)
    (target / "config.json").write_text("{}")
    (target / "model.safetensors").write_bytes(b"")
    monkeypatch.setattr(bundled, "_checkout_cache", lambda: tmp_path / "nowhere")
    monkeypatch.setattr(bundled, "_installed_cache", lambda: installed)
    assert bundled_model_dir("tiny-authors") == target
