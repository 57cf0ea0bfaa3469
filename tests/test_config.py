import json

import pytest

from tui_unlearn.config import RunConfig, load_config_file, resolve
from tui_unlearn.errors import ConfigError, ExitCode


def test_resolve_fills_method_defaults_and_bundled_sets():
    cfg = resolve(RunConfig(algorithm="idk"))
    assert cfg.lr == 1e-3  # idk's own default
    assert cfg.steps == 60 and cfg.batch_size == 8
    assert cfg.retain == "bundled:retain90" and cfg.holdout == "bundled:holdout"
    assert cfg.hparams == {"target": "refusal", "retain_weight": 1.0}
    assert resolve(RunConfig()).lr == 2e-4  # grad_diff's measured default


def test_forget05_gets_matching_retain_split():
    assert resolve(RunConfig(forget="bundled:forget05")).retain == "bundled:retain95"


def test_flags_override_file(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"algorithm": "npo", "steps": 7, "hparams": {"beta": 0.5}}))
    cfg = load_config_file(path).with_overrides(steps=3, hparams={"retain_weight": 2})
    cfg = resolve(cfg)
    assert cfg.algorithm == "npo" and cfg.steps == 3
    assert cfg.hparams == {"beta": 0.5, "retain_weight": 2.0}


def test_toml_config(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('algorithm = "grad_ascent"\nsteps = 4\n')
    assert resolve(load_config_file(path)).steps == 4


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"steps": 0}, "steps must be >= 1, got 0"),
        ({"steps": -5}, "steps must be >= 1"),
        ({"lr": 0.0}, "lr must be > 0"),
        ({"lr": -1e-3}, "lr must be > 0"),
        ({"lr": 50.0}, "lr must be <= 10"),
        ({"algorithm": "forgetify"}, "unknown algorithm 'forgetify'; choose one of: finetune"),
        ({"algorithm": "npo", "hparams": {"beta": "hot"}}, "beta must be a number"),
        ({"algorithm": "npo", "hparams": {"beta": -1}}, "beta must be >= "),
        ({"hparams": {"nope": 1}}, "grad_diff has no hyperparameter 'nope'"),
        ({"dropout": 1.5}, "dropout must be <= 0.99"),
        ({"kl_retain": float("nan")}, "kl_retain must be a finite number"),
        ({"grad_clip": float("nan")}, "grad_clip must be a finite number"),
        ({"l2_anchor": float("inf")}, "l2_anchor must be a finite number"),
        ({"seed": 2**64}, "seed must be <= 4294967295"),
        ({"seed": 2**40}, "seed must be <= 4294967295"),
        ({"seed": 2**63}, "seed must be <= 4294967295"),  # the declared range, not the integer limit
        ({"device": "gpu"}, "device must be auto, cpu, cuda, cuda:N or mps"),
        ({"model": ""}, "model must not be empty"),
        ({"oracle": "  "}, "oracle must not be empty"),
    ],
)
def test_bad_values_are_one_line_config_errors(kwargs, fragment):
    with pytest.raises(ConfigError) as info:
        resolve(RunConfig(**kwargs))
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)
    assert info.value.exit_code == ExitCode.USAGE


def test_method_needing_retain_without_one(tmp_path):
    forget = tmp_path / "f.txt"
    forget.write_text("a fact\n")
    with pytest.raises(ConfigError, match="needs a retain set"):
        resolve(RunConfig(model=str(tmp_path), forget=str(forget), algorithm="grad_diff", general_retain=False))
    # By default the original's answers to general instructions stand in (engine.collateral.fill_general_retain).
    assert resolve(RunConfig(model=str(tmp_path), forget=str(forget), algorithm="grad_diff")).retain is None


def test_unknown_config_key(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"stepz": 3}))
    with pytest.raises(ConfigError, match="unknown key"):
        load_config_file(path)


def test_missing_and_broken_config_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config_file(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{oops")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config_file(bad)


def test_session_config_round_trips(tmp_path):
    cfg = resolve(RunConfig(algorithm="simnpo", steps=5))
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg.to_dict()))
    assert resolve(load_config_file(path)) == cfg


@pytest.mark.parametrize(
    "data, fragment",
    [
        # A non-empty string is truthy: it must never switch remote code on.
        ({"trust_remote_code": "false"}, "trust_remote_code must be true or false (a boolean, not a string)"),
        ({"trust_remote_code": 1}, "trust_remote_code must be true or false"),
        ({"save_model": "yes"}, "save_model must be true or false"),
        ({"hparams": [1, 2]}, "hparams must be an object"),
        ({"dropout": "x"}, "dropout must be a number"),
        ({"device": 5}, "device must be a string"),
        ({"seed": "x"}, "seed must be an integer"),
        ({"seed": 1.5}, "seed must be an integer"),
        ({"steps": True}, "steps must be an integer"),
        ({"retain": ["a"]}, "retain must be a string or null"),
        ({"probes": "abc"}, "probes must be a list of strings"),
        ({"probes": [1]}, "probes must be a list of strings"),
        ({"model": None}, "model must be a string, got null"),
        ({"algorithm": "npo", "hparams": {"beta": "0.5"}}, "beta must be a number"),
    ],
)
def test_config_file_values_are_type_checked(tmp_path, data, fragment):
    path = tmp_path / "run.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError) as info:
        load_config_file(path)
    assert fragment in str(info.value) and str(path) in str(info.value)
    assert "\n" not in str(info.value) and info.value.exit_code == ExitCode.USAGE


def test_toml_booleans_and_typed_values_load(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('trust_remote_code = false\nsave_model = true\nlr = 1\nprobes = ["Who?"]\n')
    cfg = load_config_file(path)
    assert cfg.trust_remote_code is False and cfg.save_model is True
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float) and cfg.probes == ["Who?"]


@pytest.mark.parametrize("what", ["folder", "devnull", "empty"])
def test_config_path_that_is_not_a_config_file(tmp_path, what):
    path = {"folder": tmp_path, "devnull": "/dev/null", "empty": tmp_path / "e.json"}[what]
    if what == "empty":
        path.write_text("")
    with pytest.raises(ConfigError) as info:
        load_config_file(path)
    text = str(info.value)
    assert "does not exist" not in text
    assert {"folder": "is a folder", "devnull": "not a regular file", "empty": "is empty"}[what] in text


def test_eval_does_not_ask_for_a_training_retain_set(tmp_path):
    forget = tmp_path / "f.txt"
    forget.write_text("a fact\n")
    cfg = RunConfig(model=str(tmp_path), forget=str(forget), algorithm="grad_diff")
    assert resolve(cfg, training=False).retain is None


def test_every_setting_is_declared_once_and_read_by_every_face():
    """The TUI's knobs and the CLI's flags are the declarations in SETTINGS, nothing else."""
    from tui_unlearn.cli_options import hparam_declarations
    from tui_unlearn.config import SETTINGS, settings_for
    from tui_unlearn.params import CLI, TUI

    assert set(SETTINGS) == {f for f in RunConfig.__dataclass_fields__}
    assert {p.name for p in settings_for(TUI)} <= {p.name for p in settings_for(CLI)}
    # A value the CLI takes is a value the TUI form takes, and the other way round.
    lr = SETTINGS["lr"]
    for text, ok in [("1e-4", True), ("50", False), ("0", False), ("nan", False)]:
        try:
            lr.parse(text)
            accepted = True
        except ConfigError:
            accepted = False
        assert accepted is ok, text
    beta, owners = hparam_declarations()["beta"]
    assert beta.type == "float" and owners == {
        "npo": 0.1,
        "simnpo": 2.5,
        "dpo": 0.1,
        "idk_dpo": 0.02,
        "wga": 1.0,
        "undial": 10.0,
    }


def test_gradient_checkpointing_defaults_on_with_lora_only():
    # LoRA's frozen base holds no gradients or optimizer state: activations are its memory.
    assert resolve(RunConfig(lora_r=8)).gradient_checkpointing is True
    assert resolve(RunConfig()).gradient_checkpointing is False
    assert resolve(RunConfig(lora_r=8, gradient_checkpointing=False)).gradient_checkpointing is False
    assert resolve(RunConfig(gradient_checkpointing=True)).gradient_checkpointing is True
