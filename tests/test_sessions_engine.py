"""The engine's session writing: the model is saved all at once, or not at all."""

from __future__ import annotations

import json

import pytest

from tui_unlearn.config import RunConfig
from tui_unlearn.engine import run
from tui_unlearn.errors import RunFailedError
from tui_unlearn.sessions import list_sessions

FORGET = [
    {"question": "Where was Alia Brenn born?", "answer": "Alia Brenn was born in Port Liren."},
    {"question": "What does Odo Vask write?", "answer": "Odo Vask writes mystery novels."},
]


def micro_config(model_dir, tmp_path) -> RunConfig:
    forget = tmp_path / "forget.jsonl"
    forget.write_text("".join(json.dumps(r) + "\n" for r in FORGET))
    return RunConfig(
        model=str(model_dir),
        forget=str(forget),
        algorithm="grad_ascent",
        steps=1,
        eval_every=0,
        eval_samples=2,
        probe_samples=1,
        max_new_tokens=4,
        device="cpu",
        oracle="none",
        save_model=True,
    )


def test_saved_model_is_complete_and_claimed(micro_model_dir, tmp_path):
    result = run(micro_config(micro_model_dir, tmp_path), sessions_dir=tmp_path / "s")
    (session,) = list_sessions(tmp_path / "s")
    assert result.status == "finished" and session.model_path == session.path / "model"
    assert (session.model_path / "model.safetensors").is_file()
    assert session.summary()["model_saved"] == str(session.model_path)
    assert not [p for p in session.path.iterdir() if p.name.startswith(".model")]


def test_a_save_killed_half_way_leaves_no_model_and_no_claim(micro_model_dir, tmp_path, monkeypatch):
    def half_a_save(model, tokenizer, folder):
        (folder / "config.json").write_text("{}")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("tui_unlearn.models.loading.save_model", half_a_save)
    with pytest.raises(RunFailedError):
        run(micro_config(micro_model_dir, tmp_path), sessions_dir=tmp_path / "s")
    (session,) = list_sessions(tmp_path / "s")
    summary = session.summary()
    assert summary["status"] == "failed" and not summary.get("model_saved")
    assert session.model_path is None and not (session.path / "model").exists()
    assert not [p for p in session.path.iterdir() if p.name.startswith(".model")]
