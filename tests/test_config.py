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
        ({"steps": 0}, "steps must be a positive integer"),
        ({"steps": -5}, "steps must be a positive integer"),
        ({"lr": 0.0}, "lr must be a positive number"),
        ({"lr": -1e-3}, "lr must be a positive number"),
        ({"algorithm": "forgetify"}, "unknown algorithm 'forgetify'; choose one of: finetune"),
        ({"algorithm": "npo", "hparams": {"beta": "hot"}}, "beta must be a float"),
        ({"algorithm": "npo", "hparams": {"beta": -1}}, "beta must be >= "),
        ({"hparams": {"nope": 1}}, "grad_diff has no hyperparameter 'nope'"),
        ({"dropout": 1.5}, "dropout must be in [0, 1)"),
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
        resolve(RunConfig(model=str(tmp_path), forget=str(forget), algorithm="grad_diff"))


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
    with pytest.raises(ConfigError, match="not valid json"):
        load_config_file(bad)


def test_session_config_round_trips(tmp_path):
    cfg = resolve(RunConfig(algorithm="simnpo", steps=5))
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg.to_dict()))
    assert resolve(load_config_file(path)) == cfg
