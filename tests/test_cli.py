"""The batch face end to end on a micro model: output contract, exit codes, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from tui_unlearn.cli import app
from tui_unlearn.sessions import list_sessions

FORGET = [
    {"question": "Where was Alia Brenn born?", "answer": "Alia Brenn was born in Port Liren."},
    {"question": "What does Odo Vask write?", "answer": "Odo Vask writes mystery novels."},
]
RETAIN = [
    {"question": "Who wrote The Fox?", "answer": "The Fox was written by Ana Bel."},
    {"question": "When was Tor Ek born?", "answer": "Tor Ek was born in 1950."},
    {"question": "Where was Alia Brenn born?", "answer": "Alia Brenn was born in Port Liren."},
]


@pytest.fixture()
def files(tmp_path):
    forget = tmp_path / "forget.jsonl"
    forget.write_text("".join(json.dumps(r) + "\n" for r in FORGET))
    retain = tmp_path / "retain.json"
    retain.write_text(json.dumps(RETAIN))
    return forget, retain


def invoke(args, sessions, input=None):
    runner = CliRunner()
    result = runner.invoke(app, ["--batch", "--sessions-dir", str(sessions), *args], input=input)
    return result


def micro_args(model, forget, retain, *extra):
    return [
        "--model",
        str(model),
        "--forget",
        str(forget),
        "--retain",
        str(retain),
        "--steps",
        "2",
        "--eval-every",
        "1",
        *extra,
    ]


def test_json_output_contract(micro_model_dir, files, tmp_path):
    forget, retain = files
    result = invoke(micro_args(micro_model_dir, forget, retain, "--json"), tmp_path / "s")
    assert result.exit_code == 0, result.stderr
    obj = json.loads(result.stdout)  # exactly one JSON object on stdout
    for key in ("session_id", "session_path", "status", "algorithm", "model", "steps", "seconds", "metrics"):
        assert key in obj
    assert obj["status"] == "finished" and obj["steps"] == 2 and obj["algorithm"] == "grad_diff"
    for phase in ("before", "after"):
        for split in ("forget", "retain"):
            assert {"accuracy", "precision", "recall", "f1", "loss"} <= set(obj["metrics"][phase][split])
    (session,) = list_sessions(tmp_path / "s")
    assert session.summary()["status"] == "finished"
    assert session.summary()["data"]["removed_from_retain"] == 1  # the forget duplicate in retain
    assert (session.path / "config.json").exists() and (session.path / "events.jsonl").exists()


def test_jsonl_streams_events(micro_model_dir, files, tmp_path):
    forget, retain = files
    result = invoke(micro_args(micro_model_dir, forget, retain, "--jsonl", "--algorithm", "npo"), tmp_path / "s")
    assert result.exit_code == 0, result.stderr
    kinds = [json.loads(line)["event"] for line in result.stdout.splitlines()]
    kinds = [k for k in kinds if k != "log"]  # progress lines for people are events too
    assert kinds[0] == "started" and kinds[-1] == "finished"
    assert kinds.count("step") == 2 and "evaluation" in kinds and "probes" in kinds


@pytest.mark.slow  # one of the slowest default tests (3-10 s): .ci/run's second pass
def test_save_model_and_reload(micro_model_dir, files, tmp_path):
    forget, retain = files
    result = invoke(micro_args(micro_model_dir, forget, retain, "--json", "--save-model"), tmp_path / "s")
    assert result.exit_code == 0, result.stderr
    path = json.loads(result.stdout)["session_path"]
    saved = os.path.join(path, "model")
    assert os.path.exists(os.path.join(saved, "model.safetensors"))
    assert not [f for f in os.listdir(saved) if f.endswith((".bin", ".pt", ".pkl"))]
    # The saved model is a valid --model for the next run.
    again = invoke(micro_args(saved, forget, retain, "--json"), tmp_path / "s")
    assert again.exit_code == 0, again.stderr


def test_diverged_run_exits_1(micro_model_dir, files, tmp_path, monkeypatch):
    """A NaN loss at step 3 stops the run before that update: exit 1, status diverged, 2 steps kept."""
    from dataclasses import replace

    from tui_unlearn import algorithms

    original = algorithms.get_algorithm("grad_ascent")

    def nan_at_step_3(x):
        terms = original.loss(x)
        if x.step == 3:
            terms["loss"] = terms["loss"] * float("nan")
        return terms

    monkeypatch.setitem(algorithms._REGISTRY, "grad_ascent", replace(original, loss=nan_at_step_3))
    forget, retain = files
    args = micro_args(micro_model_dir, forget, retain, "--json", "--algorithm", "grad_ascent")
    args[args.index("--steps") + 1] = "6"
    result = invoke(args, tmp_path / "s")
    assert result.exit_code == 1, result.stderr
    obj = json.loads(result.stdout)
    assert obj["status"] == "diverged" and obj["steps"] == 2


@pytest.mark.parametrize(
    "args, code, fragment",
    [
        (["--steps", "0"], 2, "steps must be >= 1"),
        (["--lr", "-1"], 2, "lr must be > 0"),
        (["--algorithm", "unlearnify"], 2, "choose one of: finetune, grad_ascent"),
        (["--forget", "missing.jsonl"], 3, "missing.jsonl"),
        (["--model", "no/such/dir/here"], 3, "not found"),
    ],
)
def test_bad_input_exit_codes(args, code, fragment, tmp_path, micro_model_dir, files):
    forget, retain = files
    base = {"--model": str(micro_model_dir), "--forget": str(forget), "--retain": str(retain)}
    for flag, value in zip(args[::2], args[1::2]):
        base[flag] = value
    flat = [x for kv in base.items() for x in kv] + [a for a in args if a not in base and a not in base.values()]
    existing = tmp_path / "s"
    keep = invoke(micro_args(micro_model_dir, forget, retain), existing)  # a session that must survive
    assert keep.exit_code == 0
    before = sorted(p.name for p in existing.iterdir())
    result = invoke(flat, existing)
    assert result.exit_code == code, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()  # progress lines may come first
    errors = [line for line in lines if line.startswith("error: ")]
    assert errors == [lines[-1]] and fragment in lines[-1]
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert sorted(p.name for p in existing.iterdir()) == before  # no session harmed or added


def test_model_folder_without_causal_lm(tmp_path, files):
    forget, retain = files
    folder = tmp_path / "notamodel"
    folder.mkdir()
    (folder / "readme.txt").write_text("hello")
    result = invoke(["--model", str(folder), "--forget", str(forget), "--retain", str(retain)], tmp_path / "s")
    assert result.exit_code == 3 and "no Hugging Face model" in result.stderr


def test_stdin_forget(micro_model_dir, files, tmp_path):
    _, retain = files
    text = "Q: Where was Alia Brenn born?\nA: Alia Brenn was born in Port Liren.\n"
    result = invoke(
        ["--model", str(micro_model_dir), "--forget", "-", "--retain", str(retain), "--steps", "1", "--json"],
        tmp_path / "s",
        input=text,
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["metrics"]["before"]["forget"]


def test_print_config_and_sessions_commands(micro_model_dir, files, tmp_path):
    forget, retain = files
    out = CliRunner().invoke(app, ["--print-config", "--algorithm", "npo", "--beta", "0.3"])
    assert out.exit_code == 0 and json.loads(out.stdout)["hparams"]["beta"] == 0.3
    bad = CliRunner().invoke(app, ["--print-config", "--algorithm", "finetune", "--beta", "0.3"])
    assert bad.exit_code == 2 and "finetune has no hyperparameter 'beta'" in bad.stderr
    invoke(micro_args(micro_model_dir, forget, retain), tmp_path / "s")
    listed = CliRunner().invoke(app, ["sessions", "list", "--sessions-dir", str(tmp_path / "s"), "--json"])
    rows = json.loads(listed.stdout)
    assert len(rows) == 1 and rows[0]["status"] == "finished"
    shown = CliRunner().invoke(app, ["sessions", "show", rows[0]["session_id"], "--sessions-dir", str(tmp_path / "s")])
    assert shown.exit_code == 0 and "forget" in shown.stdout and "accuracy" in shown.stdout
    missing = CliRunner().invoke(app, ["sessions", "show", "../../etc", "--sessions-dir", str(tmp_path / "s")])
    assert missing.exit_code == 2


@pytest.mark.slow  # several seconds: run by .ci/run's second pass
def test_ctrl_c_interrupts_cleanly(micro_model_dir, files, tmp_path):
    forget, retain = files
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [
        sys.executable,
        "-m",
        "tui_unlearn",
        "--batch",
        "--jsonl",
        "--sessions-dir",
        str(tmp_path / "s"),
        "--model",
        str(micro_model_dir),
        "--forget",
        str(forget),
        "--retain",
        str(retain),
        "--steps",
        "100000",
        "--eval-every",
        "0",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    for line in proc.stdout:  # wait until training is under way
        if json.loads(line)["event"] == "step":
            break
    proc.send_signal(signal.SIGINT)
    out, errtext = proc.communicate(timeout=60)
    assert proc.returncode == 130, errtext
    assert "Traceback" not in errtext
    (session,) = list_sessions(tmp_path / "s")
    assert session.summary()["status"] == "interrupted"
    assert json.loads(out.strip().splitlines()[-1])["status"] == "interrupted"


def test_an_exception_inside_the_engine_exits_1_and_keeps_the_traceback(micro_model_dir, files, tmp_path, monkeypatch):
    from dataclasses import replace

    from tui_unlearn import algorithms

    original = algorithms.get_algorithm("grad_diff")

    def broken(x):
        raise ValueError("a bug in a loss\nwith a second line")

    monkeypatch.setitem(algorithms._REGISTRY, "grad_diff", replace(original, loss=broken))
    forget, retain = files
    result = invoke(micro_args(micro_model_dir, forget, retain), tmp_path / "s")
    assert result.exit_code == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: run failed: ValueError: a bug in a loss") and "error.txt" in last
    (session,) = list_sessions(tmp_path / "s")
    assert session.summary()["status"] == "failed"
    assert "Traceback" in (session.path / "error.txt").read_text() and "Traceback" not in result.stderr


def test_json_and_jsonl_together_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(app, ["--batch", "--json", "--jsonl", "--sessions-dir", str(tmp_path)])
    assert result.exit_code == 2 and "pick one" in result.stderr


def test_eval_of_a_model_that_cannot_load_exits_3(tmp_path):
    folder = tmp_path / "empty-model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    result = CliRunner().invoke(app, ["eval", "--model", str(folder), "--sessions-dir", str(tmp_path / "s")])
    assert result.exit_code == 3 and "safetensors" in result.stderr and "Traceback" not in result.stderr


def test_eval_does_not_ask_for_a_retain_set(micro_model_dir, files, tmp_path):
    forget, _ = files
    result = CliRunner().invoke(
        app,
        [
            "eval",
            "--model",
            str(micro_model_dir),
            "--forget",
            str(forget),
            "--eval-samples",
            "2",
            "--max-new-tokens",
            "2",
            "--sessions-dir",
            str(tmp_path / "s"),
        ],
    )
    assert result.exit_code == 0, result.stderr
    assert "needs a retain set" not in result.stderr


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--steps", "x"], "Invalid value for '--steps'"),
        (["--algorithm", "npo", "--beta", "abc"], "Invalid value for '--beta'"),
        (["--no-such-flag"], "No such option: --no-such-flag"),
        (["sessions", "bogus"], "No such command 'bogus'"),
    ],
)
def test_usage_errors_from_the_parser_are_one_line(args, fragment):
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0] and "--help" in lines[0]


def test_batch_help_differs_from_help_and_shows_every_run_option():
    overview = CliRunner().invoke(app, ["--help"]).stdout
    batch = CliRunner().invoke(app, ["--batch", "--help"]).stdout
    assert overview != batch
    assert "--batch --help" in overview and "--lora-r" not in overview
    for flag in ("--lora-r INT", "--grad-accum INT", "--beta FLOAT", "--mixed-precision", "Exit codes"):
        assert flag in batch


def test_gradient_checkpointing_flag_pair():
    def printed(*flags):
        out = CliRunner().invoke(app, ["--print-config", "--lora-r", "8", *flags])
        assert out.exit_code == 0, out.stderr
        return json.loads(out.stdout)["gradient_checkpointing"]

    assert printed() is True  # on by default with LoRA
    assert printed("--no-gradient-checkpointing") is False
    assert printed("--gradient-checkpointing") is True
