"""Building the bundled tiny models: reproducibility, loadability, and the committed models."""

from __future__ import annotations

import hashlib
import json

import pytest

from tui_unlearn.data.benchmark import UTILITY_SPLITS, benchmark_fingerprint, benchmark_records
from tui_unlearn.errors import ModelLoadError
from tui_unlearn.models import build_tiny, bundled
from tui_unlearn.models.bundled import BUNDLED_MODELS, bundled_model_dir, is_bundled

MAX_BYTES = 8 * 1024 * 1024  # per bundled model folder


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def micro_builds(tmp_path_factory):
    """The micro target built twice from the same seed: once through the CLI, once in-process.

    ``MICRO_RECIPE`` is a 2-layer toy trained for a few dozen steps on one author of each
    split, so the pair costs seconds yet runs every line a real build runs.
    """
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


def test_deterministic_torch_sets_and_restores_threads_and_kernels():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(build_tiny.TRAIN_THREADS + 2)
    try:
        with build_tiny.deterministic_torch(0):
            assert torch.get_num_threads() == build_tiny.TRAIN_THREADS
            assert torch.are_deterministic_algorithms_enabled()
            first = torch.rand(3)
        with build_tiny.deterministic_torch(0):
            assert torch.equal(torch.rand(3), first)
        assert torch.get_num_threads() == build_tiny.TRAIN_THREADS + 2
        assert not torch.are_deterministic_algorithms_enabled()
    finally:
        torch.set_num_threads(threads)


def test_micro_build_training_loss_goes_down(micro_builds):
    losses = micro_builds[2]["stats"].losses
    assert len(losses) >= 20
    # From about ln(vocab) (a random model) down by a clear margin.
    assert sum(losses[-5:]) / 5 < 0.75 * sum(losses[:3]) / 3


def test_micro_build_trains_on_the_utility_splits_too(micro_builds):
    info = micro_builds[2]["info"]
    assert info["trained_on"] == ["trained", *UTILITY_SPLITS]
    # 1 forget + 1 retain author (10 QA records + 10 paraphrase sentences each), 1 famous
    # author (2 questions), 1 country (3 facts).
    assert info["train_records"] == 40 + 2 + 3


def test_micro_build_loads_and_reports_every_split(micro_builds):
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
    assert info["train_threads"] == build_tiny.TRAIN_THREADS
    # The CLI build evaluates: one exact-match figure per reported split, a fraction.
    assert set(info["exact_match"]) == set(build_tiny.REPORT_SPLITS)
    assert all(0.0 <= v <= 1.0 for v in info["exact_match"].values())


def test_tokenizer_training_is_deterministic():
    texts = build_tiny.benchmark_texts(authors=2)
    a = build_tiny.train_tokenizer(texts, 400)
    b = build_tiny.train_tokenizer(texts, 400)
    assert a.backend_tokenizer.to_str() == b.backend_tokenizer.to_str()


def test_tokenizer_texts_cover_the_utility_splits():
    texts = "\n".join(build_tiny.benchmark_texts())
    for split in UTILITY_SPLITS:
        for record in benchmark_records(split):
            assert record["question"] in texts
            assert all(wrong in texts for wrong in record["perturbed_answers"])


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
    assert info["trained_on"] == list(build_tiny.TRAINING_SPLITS[name])


SAMPLE = 20  # records per author split: every k-th one, so all authors of a split are spread over
# (share of the sample answered exactly: at least, at most) per model and split; the
# utility splits are measured whole (30 records each).
PROPERTIES = {
    "tiny-authors": {
        "forget10": (0.95, 1.0),
        "retain90": (0.95, 1.0),
        "holdout": (0.0, 0.05),
        "real_authors": (0.8, 1.0),
        "world_facts": (0.8, 1.0),
    },
    "tiny-authors-retain": {
        "forget10": (0.0, 0.05),
        "retain90": (0.95, 1.0),
        "holdout": (0.0, 0.05),
        "real_authors": (0.8, 1.0),
        "world_facts": (0.8, 1.0),
    },
}


def _sample(split: str) -> list[dict]:
    records = benchmark_records(split)
    if split in UTILITY_SPLITS:
        return records
    return records[:: len(records) // SAMPLE][:SAMPLE]


@pytest.fixture(scope="module")
def committed_models():
    """(model, tokenizer) of each committed bundled model, loaded once."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return {
        name: (
            AutoModelForCausalLM.from_pretrained(bundled_model_dir(name)).eval(),
            AutoTokenizer.from_pretrained(bundled_model_dir(name)),
        )
        for name in BUNDLED_MODELS
    }


@pytest.mark.parametrize("name", list(BUNDLED_MODELS))
def test_bundled_model_knows_what_it_was_trained_on(committed_models, name):
    """Measured with the project's exact match: the target knows forget and retain, the oracle
    only retain, neither the holdout authors, and both the well-known utility facts."""
    model, tokenizer = committed_models[name]
    assert model.config.vocab_size == len(tokenizer)
    measured = {split: build_tiny.exact_match_rate(model, tokenizer, _sample(split)) for split in PROPERTIES[name]}
    for split, (low, high) in PROPERTIES[name].items():
        assert low <= measured[split] <= high, f"{name} on {split}: {measured}"


def test_exact_match_rate_is_the_projects_metric(committed_models):
    """SQuAD normalisation drops articles: "the Oron River" matches a gold "Oron River" (the
    builder's old normalisation kept them, so build_info.json disagreed with the README)."""
    model, tokenizer = committed_models["tiny-authors"]
    with_article = [r for r in benchmark_records("world_facts") if r["answer"].startswith("the ")]
    rate = build_tiny.exact_match_rate(model, tokenizer, with_article)
    assert rate >= 0.8
    bare = [{**r, "answer": r["answer"].removeprefix("the ")} for r in with_article]
    assert build_tiny.exact_match_rate(model, tokenizer, bare) == rate
    wrong = [{**r, "answer": r["perturbed_answers"][0]} for r in with_article]
    assert build_tiny.exact_match_rate(model, tokenizer, wrong) <= 0.2


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
