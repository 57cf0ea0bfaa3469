"""The one folder swap that session models and checkpoints share (tui_unlearn.atomic)."""

from __future__ import annotations

import pytest

from tui_unlearn.atomic import write_folder_atomically


def test_a_new_folder_replaces_the_old_one_and_no_temp_folder_stays(tmp_path):
    final = tmp_path / "model"
    final.mkdir()
    (final / "old.bin").write_text("old")
    write_folder_atomically(final, ".model.tmp-", lambda tmp: (tmp / "new.bin").write_text("new"))
    assert sorted(p.name for p in final.iterdir()) == ["new.bin"]
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_a_failed_write_keeps_the_old_folder_whole(tmp_path):
    final = tmp_path / "checkpoint"
    final.mkdir()
    (final / "state.json").write_text("{}")

    def write(tmp):
        (tmp / "half").write_text("x")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_folder_atomically(final, ".checkpoint.tmp-", write)
    assert [p.name for p in final.iterdir()] == ["state.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint"]


def test_the_temp_folder_is_hidden_beside_the_target_while_written(tmp_path):
    seen = []
    write_folder_atomically(tmp_path / "model", ".model.tmp-", lambda tmp: seen.append(tmp))
    assert seen[0].parent == tmp_path and seen[0].name.startswith(".model.tmp-")
    assert (tmp_path / "model").is_dir()
