"""Reading what a user names as data: regular files only, never blocking, never endless (issue 19)."""

from __future__ import annotations

import errno
import io
import json
import os
import signal

import pytest

from tui_unlearn.data import files
from tui_unlearn.data.loading import load_split, read_stdin_text
from tui_unlearn.data.parsers import parse_json, parse_jsonl
from tui_unlearn.data.sources import load_records
from tui_unlearn.errors import DataError
from tui_unlearn.paths import NAME_MAX, path_problem

ROW = {"question": "Where was Alia Brenn born?", "answer": "Port Liren."}


@pytest.fixture()
def alarm():
    """Fail, not hang, when a read blocks."""

    def ring(signum, frame):
        raise AssertionError("still waiting after 20 s")

    previous = signal.signal(signal.SIGALRM, ring)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def test_a_fifo_without_a_writer_is_refused_at_once(tmp_path, alarm):
    pipe = tmp_path / "forget.jsonl"
    os.mkfifo(pipe)
    with pytest.raises(DataError, match=r"forget.jsonl is a FIFO \(named pipe\), not a regular file; .* pipe it in"):
        load_split(str(pipe), "forget")


def test_devices_are_refused_by_what_they_are(alarm):
    with pytest.raises(DataError, match="/dev/zero is a character device, not a regular file"):
        load_split("/dev/zero", "forget")


def test_a_file_over_the_limit_is_refused_and_the_message_says_how_to_raise_it(tmp_path, monkeypatch):
    path = tmp_path / "big.jsonl"
    path.write_text(json.dumps(ROW) + "\n" + " " * (2 * 2**20))
    monkeypatch.setenv(files.MAX_DATA_ENV, "1")
    with pytest.raises(DataError, match=r"big.jsonl holds 2 MB, over .* limit is 1 MB; raise it with TUI_UNLEARN_"):
        load_split(str(path), "forget")
    monkeypatch.setenv(files.MAX_DATA_ENV, "3")
    assert len(load_split(str(path), "forget")) == 1


@pytest.mark.parametrize(("raw", "megabytes"), [("", 1024), ("2.5", 2.5), ("lots", 1024), ("-1", 1024), ("inf", 1024)])
def test_the_limit_comes_from_the_environment(monkeypatch, raw, megabytes):
    monkeypatch.setenv(files.MAX_DATA_ENV, raw)
    assert files.max_data_bytes() == int(megabytes * 2**20)


def test_an_endless_stream_is_read_only_up_to_the_limit():
    class Endless(io.RawIOBase):
        served = 0

        def readable(self):
            return True

        def readinto(self, buffer):
            buffer[:] = b"a" * len(buffer)
            Endless.served += len(buffer)
            return len(buffer)

    assert files.read_at_most(io.BufferedReader(Endless()), 10_000) is None
    assert Endless.served < 10_000 + 2 * 2**20  # stopped, with at most a chunk or two read ahead
    assert files.read_at_most(io.BytesIO(b"abc"), 3) == b"abc"
    assert files.read_at_most(io.BytesIO(b"abcd"), 3) is None


def test_standard_input_over_the_limit(monkeypatch):
    monkeypatch.setenv(files.MAX_DATA_ENV, "0.001")  # 1048 bytes
    with pytest.raises(DataError, match="standard input holds more than the size limit"):
        read_stdin_text(io.TextIOWrapper(io.BytesIO(b"x" * 2000)))
    assert read_stdin_text(io.TextIOWrapper(io.BytesIO(b"x" * 1000))) == "x" * 1000


def test_a_folder_that_cannot_be_entered_says_so(tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "forget.jsonl").write_text(json.dumps(ROW))
    real = os.stat

    def stat(path, *args, **kwargs):
        if str(path).startswith(str(locked) + os.sep):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", stat)
    with pytest.raises(DataError, match="can't reach .*forget.jsonl: permission denied on a folder of its path"):
        load_split(str(locked / "forget.jsonl"), "forget")


def test_a_file_that_cannot_be_opened_names_the_real_reason(tmp_path, monkeypatch):
    path = tmp_path / "forget.jsonl"
    path.write_text(json.dumps(ROW))
    real = os.open

    def refuse(target, *args, **kwargs):
        if str(target) == str(path):
            raise PermissionError(errno.EACCES, "Permission denied\n", str(target))
        return real(target, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(DataError) as caught:
        load_split(str(path), "forget")
    assert str(caught.value).endswith("can't read " + str(path) + ": permission denied; check its permissions")


def test_links_that_lead_nowhere_or_in_circles(tmp_path):
    dangling, loop = tmp_path / "dangling.jsonl", tmp_path / "loop.jsonl"
    dangling.symlink_to(tmp_path / "gone.jsonl")
    loop.symlink_to(loop)
    with pytest.raises(DataError, match="is a link to .*gone.jsonl, which does not exist"):
        load_records(str(dangling))
    with pytest.raises(DataError, match="its symbolic links loop"):
        load_records(str(loop))


def test_the_file_system_root_is_no_dataset_folder():
    with pytest.raises(DataError, match="/ is the root of the file system, not a dataset folder"):
        load_records("/")


def test_names_too_long_for_a_file_system():
    assert path_problem("a" * NAME_MAX) is None and path_problem("hf:owner/name") is None
    assert "name of 256 bytes" in (path_problem("/x/" + "a" * 256 + "/y") or "")
    assert "name of 256 bytes" in (path_problem("é" * 128) or "")  # bytes, not characters
    assert "over the 4095 a path may have" in (path_problem("/ab" * 1400) or "")
    with pytest.raises(DataError, match=r"^n{77}\.\.\. has a name of 306 bytes"):
        load_records("n" * 300 + ".jsonl")


def test_json_lines_split_on_newlines_only():
    text = json.dumps({"question": "a\u2028b", "answer": "x\u0085y\u2029z\x1cw"}, ensure_ascii=False) + "\r\n\n"
    rows, numbers = parse_jsonl(text, "f.jsonl")
    assert rows == [{"question": "a\u2028b", "answer": "x\u0085y\u2029z\x1cw"}] and numbers == [1]


def test_ragged_columns_are_refused():
    with pytest.raises(DataError, match=r"columns of different lengths \(question 2, answer 1\)"):
        parse_json('{"question": ["a", "b"], "answer": ["x"]}', "cols.json")
    rows, *_ = parse_json('{"question": ["a", "b"], "answer": ["x", "y"]}', "cols.json")
    assert rows == [{"question": "a", "answer": "x"}, {"question": "b", "answer": "y"}]


def test_a_lone_surrogate_is_refused_where_it_is(tmp_path):
    path = tmp_path / "forget.jsonl"
    path.write_text(json.dumps(ROW) + "\n" + '{"question": "q", "answer": "a\\udc00"}\n')
    with pytest.raises(DataError, match=r"line 2 of .*forget.jsonl: its answer holds a lone surrogate \(\\udc00\)"):
        load_split(str(path), "forget")
    with pytest.raises(DataError, match=r"record 1 of standard input: its answer holds a lone surrogate"):
        load_split("-", "forget", stdin="some text \ud800 pasted")


def test_recipe_sources_read_through_the_same_gate(tmp_path, alarm):
    """The benchmark recipes' reader (multiple choice, completion) once said "file not found" for a
    FIFO, and would have blocked on one reached another way."""
    from tui_unlearn.recipes.sources import read_rows

    pipe = tmp_path / "choices.jsonl"
    os.mkfifo(pipe)
    with pytest.raises(DataError, match="choices.jsonl is a FIFO"):
        read_rows(str(pipe))
    with pytest.raises(DataError, match="is a character device"):
        read_rows("/dev/zero")
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps(ROW) + "\n")
    assert read_rows(str(good)) == [ROW]
