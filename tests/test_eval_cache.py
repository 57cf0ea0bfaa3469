"""The cached "before" evaluation: reused only for the same model, records and settings."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tui_unlearn.cli import app
from tui_unlearn.engine.eval_cache import CACHE_DIR

FORGET = [{"question": f"Where was author {i} born?", "answer": f"Author {i} was born in town {i}."} for i in range(4)]


@pytest.fixture()
def run(micro_model_dir, tmp_path):
    forget = tmp_path / "forget.jsonl"
    forget.write_text("".join(json.dumps(r) + "\n" for r in FORGET))

    def go(*extra):
        result = CliRunner().invoke(
            app,
            [
                "--batch",
                "--json",
                "--sessions-dir",
                str(tmp_path / "s"),
                "--model",
                str(micro_model_dir),
                "--forget",
                str(forget),
                "--algorithm",
                "grad_ascent",
                "--steps",
                "1",
                "--eval-every",
                "0",
                "--max-new-tokens",
                "3",
                *extra,
            ],
        )
        assert result.exit_code == 0, result.stderr
        return json.loads(result.stdout), "reusing the cached evaluation of this model" in result.stderr

    return go


def test_a_rerun_reuses_the_before_evaluation_and_gets_the_same_numbers(run, tmp_path):
    first, reused_first = run()
    second, reused_second = run()
    assert not reused_first and reused_second
    assert second["metrics"]["before"] == first["metrics"]["before"]
    assert len(list((tmp_path / "s" / CACHE_DIR).glob("*.json"))) == 1


@pytest.mark.slow
def test_other_records_settings_or_no_cache_evaluate_again(run, tmp_path):
    run()
    assert not run("--eval-samples", "2")[1]  # other records
    assert not run("--max-new-tokens", "2")[1]  # another generation length
    assert not run("--no-eval-cache")[1]
    for entry in (tmp_path / "s" / CACHE_DIR).glob("*.json"):
        entry.write_text("{broken")
    again, reused = run()
    assert not reused and again["status"] == "finished"  # a broken entry is evaluated again


def test_a_single_file_model_is_fingerprinted_by_its_file(tmp_path):
    # A .gguf model is one file: without a fingerprint nothing of it was ever cached, so every
    # run asked the original its 168 probe questions and 32 general prompts again.
    import os

    from tui_unlearn.engine.eval_cache import model_fingerprint

    gguf = tmp_path / "model.Q4_1.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 60)
    first = model_fingerprint(gguf)
    assert first is not None and "model.Q4_1.gguf:64:" in first
    os.utime(gguf, ns=(1, 1))
    assert model_fingerprint(gguf) not in (None, first)  # rewritten weights: another key
    assert model_fingerprint(tmp_path / "missing.gguf") is None
    assert model_fingerprint(tmp_path) is None  # a folder without safetensors files
