"""Sources: standard input, pasted text that is (or is almost) JSON, and hub datasets without a network."""

from __future__ import annotations

import io
import os
import pty
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tui_unlearn.cli import app
from tui_unlearn.data import hub
from tui_unlearn.data.loading import load_records, load_split, parse_text, read_stdin_text
from tui_unlearn.data.sources import SourceSpec
from tui_unlearn.errors import DataError, ExitCode

ROOT = Path(__file__).resolve().parents[1]
BINARY = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xd8"


def one_line(excinfo) -> str:
    message = str(excinfo.value)
    assert message and "\n" not in message and message == message.strip()
    return message


def piped(data: bytes) -> io.TextIOWrapper:
    """A stand-in for sys.stdin with ``data`` piped in."""
    return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8")


# --- spec prefixes ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "kind", "rest"),
    [
        ("-", "stdin", "-"),
        ("bundled:forget10", "bundled", "forget10"),
        ("hf:locuslab/TOFU:forget10@train", "hub", "locuslab/TOFU:forget10@train"),
        ("hf:./folder", "hub", "./folder"),
        ("locuslab/TOFU", "path", "locuslab/TOFU"),  # a bare hub name is told apart only when read
        ("data/hf:notes.txt", "path", "data/hf:notes.txt"),
        ("--", "path", "--"),
    ],
)
def test_a_spec_is_taken_apart_by_its_prefix(spec, kind, rest):
    source = SourceSpec.parse(spec)
    assert (source.kind, source.rest) == (kind, rest)
    assert source.is_bundled == (kind == "bundled") and source.is_hub == (kind == "hub")


# --- standard input -----------------------------------------------------------------------------
def test_stdin_is_read_as_bytes_and_decoded_like_a_file():
    assert read_stdin_text(piped("\ufeffQ: café?\nA: oui\n".encode("utf-8"))) == "Q: café?\nA: oui\n"
    assert read_stdin_text(piped("Q: café?\nA: oui\n".encode("utf-16"))) == "Q: café?\nA: oui\n"


def test_binary_stdin_is_the_same_one_line_error_a_file_gets(tmp_path):
    with pytest.raises(DataError) as from_stdin:
        read_stdin_text(piped(BINARY))
    path = tmp_path / "image.txt"
    path.write_bytes(BINARY)
    with pytest.raises(DataError) as from_file:
        load_records(str(path))
    assert one_line(from_stdin) == one_line(from_file).replace(str(path), "standard input")
    assert one_line(from_stdin).startswith("standard input is not UTF-8 text (byte 0x89 on line 1)")


def test_stdin_holding_nul_bytes_is_not_text():
    with pytest.raises(DataError) as excinfo:
        read_stdin_text(piped(b"Q: a?\nA: b\x00\x00\n"))
    assert one_line(excinfo).startswith("standard input is not text (a NUL byte on line 2")


def test_a_terminal_on_stdin_raises_at_once_without_reading():
    class Terminal(io.TextIOWrapper):
        def isatty(self):
            return True

        def read(self, *args):
            raise AssertionError("read a terminal: this would wait for Ctrl-D")

    terminal = Terminal(io.BytesIO(b""))
    with pytest.raises(DataError) as excinfo:
        read_stdin_text(terminal)
    message = one_line(excinfo)
    assert "nothing was piped in" in message and "--forget -" in message


def test_the_cli_does_not_wait_on_a_terminal(tmp_path):
    """``--forget -`` typed at a prompt exits with the one-line error instead of waiting for
    Ctrl-D (a hang would end in TimeoutExpired, a failure; no timing is measured)."""
    controller, terminal = pty.openpty()
    try:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.run(
            [sys.executable, "-m", "tui_unlearn", "--batch", "--forget", "-", "--sessions-dir", str(tmp_path)],
            stdin=terminal,
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=env,
            timeout=120,
        )
    finally:
        os.close(terminal)
        os.close(controller)
    assert proc.returncode == ExitCode.LOAD, proc.stderr
    assert "nothing was piped in" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("command", [[], ["eval"]])
def test_the_cli_reports_binary_stdin_in_one_line(tmp_path, command):
    args = [*command, "--batch"] if not command else [*command]
    result = CliRunner().invoke(app, [*args, "--forget", "-", "--sessions-dir", str(tmp_path)], input=BINARY)
    assert result.exit_code == ExitCode.LOAD
    assert (
        result.stderr.strip() == "error: standard input is not UTF-8 text (byte 0x89 on line 1); "
        "re-save it as UTF-8 (Save As, encoding UTF-8) and load it again"
    )
    assert not any(tmp_path.iterdir())  # no session was started


def test_deeply_nested_json_on_stdin_is_a_data_error(tmp_path):
    result = CliRunner().invoke(app, ["--batch", "--forget", "-", "--sessions-dir", str(tmp_path)], input="[" * 100_000)
    assert result.exit_code == ExitCode.LOAD, result.output
    assert "nested too deeply" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "text",
    ["[" * 100_000, '{"a":' * 100_000, '[{"text": ' + "[" * 900 + '"x"' + "]" * 900 + "}]"],
)
def test_deep_nesting_is_a_data_error_never_a_recursion_error(text):
    with pytest.raises(DataError) as excinfo:
        load_split("-", "forget", stdin=text)
    assert "nested too deeply" in one_line(excinfo)


# --- pasted text ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, where",
    [
        ('[{"prompt": "Q?" "response": "A"}]', "line 1, column 18"),
        ('[{"prompt": "Q?", "response": "A"},\n {"prompt": "Q2', "line 2, column 13"),  # a truncated paste
        ('{"question": "Q?", "answer": "A"}\n{"question": "R?", "answer": }\n', "line 2, column 30"),
        ("{'question': 'Q?', 'answer': 'A'}", "line 1, column 2"),
    ],
)
def test_pasted_text_that_starts_like_json_but_is_broken_is_an_error(text, where):
    with pytest.raises(DataError) as excinfo:
        load_records("-", stdin=text)
    message = one_line(excinfo)
    assert message.startswith("standard input is not valid JSON:") and where in message


@pytest.mark.parametrize("text", ["[Chapter 1] It was a dark night.", "[1] Smith et al., 2020.\n[2] Doe, 2021."])
def test_pasted_text_with_brackets_that_is_not_meant_as_json_stays_text(text):
    records, detected = load_records("-", stdin=text)
    assert detected == "pasted (lines)" and records[0]["answer"] == text.splitlines()[0]


def test_pasted_labels_say_pasted():
    assert load_records("-", stdin='[{"question": "Q?", "answer": "A"}]')[1] == "pasted json (question/answer)"
    assert load_records("-", stdin='{"text": "a"}\n{"text": "b"}\n')[1] == "pasted jsonl (text)"
    assert load_records("-", stdin='\ufeff[{"text": "a"}]')[1] == "pasted json (text)"
    assert load_records("-", stdin="Q: a?\nA: b\n")[1] == "pasted (Q:/A: pairs)"


@pytest.mark.parametrize("text", ["Q: Who wrote it?\nQ: When?\n", "Notes\n\nQ: Who wrote it?\n"])
def test_questions_without_any_answer_line_are_an_error(tmp_path, text):
    with pytest.raises(DataError) as excinfo:
        parse_text(text, "notes.txt")
    message = one_line(excinfo)
    assert "notes.txt has 'Q:' lines" in message and "no 'A:' line" in message
    assert "put each question's answer on an 'A:' line" in message
    path = tmp_path / "notes.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError):
        load_split(str(path), "forget")
    with pytest.raises(DataError):
        load_split("-", "forget", stdin=text)


# --- hub datasets without a network ---------------------------------------------------------------
@pytest.fixture
def online(monkeypatch):
    """The environment of a user with no offline mode set and no proxy (the suite sets
    HF_HUB_OFFLINE); ``datasets.load_dataset`` is replaced by the test."""
    for name in (*hub.OFFLINE_VARIABLES, "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "HF_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    calls: list[tuple] = []

    def forbidden(*args, **kwargs):
        calls.append(args)
        raise AssertionError("datasets.load_dataset was called")

    monkeypatch.setattr("datasets.load_dataset", forbidden)
    return calls


def test_an_unreachable_hub_fails_after_one_short_attempt(monkeypatch, online):
    attempts = []

    def no_dns(address, timeout=None, *args, **kwargs):
        attempts.append((address, timeout))
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(hub.socket, "create_connection", no_dns)
    with pytest.raises(DataError) as excinfo:
        load_split("hf:locuslab/TOFU:forget10", "forget")
    message = one_line(excinfo)
    assert message.startswith("forget set: can't reach the Hugging Face Hub for locuslab/TOFU")
    assert "Name or service not known" in message
    assert "set HF_HUB_OFFLINE=1" in message and "pass a local path" in message
    assert attempts == [(("huggingface.co", 443), hub.PROBE_TIMEOUT_S)] and hub.PROBE_TIMEOUT_S <= 5
    assert online == []  # the hub client (and its retries) never ran


def test_the_probe_follows_hf_endpoint_and_names_a_timeout(monkeypatch, online):
    attempts = []

    def silent(address, timeout=None, *args, **kwargs):
        attempts.append(address)
        raise TimeoutError("timed out")

    monkeypatch.setattr(hub.socket, "create_connection", silent)
    monkeypatch.setenv("HF_ENDPOINT", "http://mirror.example:8080/")
    with pytest.raises(DataError) as excinfo:
        load_records("hf:owner/name")
    assert attempts == [("mirror.example", 8080)]
    assert f"mirror.example: no answer within {hub.PROBE_TIMEOUT_S:g} s" in one_line(excinfo)


def _client_errors() -> list[BaseException]:
    """Connection errors as the hub client stack raises them, those importable here."""
    from huggingface_hub.errors import OfflineModeIsEnabled

    errors: list[BaseException] = [
        ConnectionError("Couldn't reach 'owner/name' on the Hub (LocalEntryNotFoundError)"),
        OfflineModeIsEnabled("Cannot reach https://huggingface.co: offline mode is enabled."),
    ]
    for module, name in (("httpx2", "ConnectError"), ("httpx", "ConnectError"), ("requests", "ConnectionError")):
        try:
            errors.append(getattr(__import__(module), name)("[Errno -2] Name or service not known"))
        except (ImportError, AttributeError):
            pass
    try:
        raise RuntimeError("dataset info failed") from socket.gaierror(-3, "Temporary failure in name resolution")
    except RuntimeError as wrapped:
        errors.append(wrapped)
    return errors


@pytest.mark.parametrize("error", _client_errors(), ids=lambda e: type(e).__name__)
def test_connection_errors_from_the_hub_client_are_one_line_with_what_to_do(monkeypatch, online, error):
    monkeypatch.setattr(hub, "hub_unreachable", lambda *a, **k: None)  # the probe got through
    calls = []

    def load_dataset(*args, **kwargs):
        calls.append(args)
        raise error

    monkeypatch.setattr("datasets.load_dataset", load_dataset)
    with pytest.raises(DataError) as excinfo:
        load_split("hf:owner/name@test", "retain")
    message = one_line(excinfo)
    assert message.startswith("retain set: can't reach the Hugging Face Hub for owner/name")
    assert "set HF_HUB_OFFLINE=1" in message and "pass a local path" in message
    assert calls == [("owner/name", None)]  # one attempt, no retry


def test_no_probe_when_offline_or_behind_a_proxy(monkeypatch, online):
    probes = []
    monkeypatch.setattr(hub.socket, "create_connection", lambda *a, **k: probes.append(a))
    monkeypatch.setattr("datasets.load_dataset", lambda *a, **k: (_ for _ in ()).throw(ConnectionError("offline")))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError) as excinfo:
        load_records("hf:owner/name")
    assert "not in the local cache and offline mode is on" in one_line(excinfo)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    with pytest.raises(DataError):
        load_records("hf:owner/name")
    assert probes == []


@pytest.mark.parametrize(
    "text, suffix",
    [
        ('{"question": "Q?", "answer": "A"}\n{"text": "b"}\n', ".jsonl"),
        ('[{"question": "Q?", "answer": "A"}]', ".json"),
        ('[{"text": "a"}]\n[{"text": "b"}]\n', ".json"),  # several arrays, as TOFU's files
        ("Q: Q?\nA: A\n", ".txt"),
        ("Some paragraph.\n\nAnother.", ".txt"),
    ],
)
def test_saved_pasted_text_loads_as_the_paste_did(tmp_path, text, suffix):
    from tui_unlearn.tui.widgets.data_pane import paste_suffix

    pasted, detected = load_records("-", stdin=text)
    assert paste_suffix(detected) == suffix
    path = tmp_path / f"pasted{suffix}"
    path.write_text(text, encoding="utf-8")
    assert load_records(str(path))[0] == pasted
