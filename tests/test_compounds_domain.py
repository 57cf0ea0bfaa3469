"""The second domain (issue 26, item 6): fictitious compounds in a user's own files, without
paraphrased or perturbed answers, with a target and a retain-only oracle trained from scratch.

What must hold: the generator is seeded and its splits are disjoint; the files in
``examples/compounds/`` are what it writes; the committed target states its forget facts and the
oracle does not; forget quality on the files (answer-NLL basis) puts the oracle against itself at
about 1 and the target against the oracle far below 0.05; a default run goes end to end.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from tui_unlearn.data import compounds
from tui_unlearn.data.compounds import (
    FILES,
    N_COMPOUNDS,
    compound_names,
    compound_records,
    compounds_fingerprint,
    user_file_texts,
)
from tui_unlearn.errors import ConfigError
from tui_unlearn.models import build_compounds

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "examples" / "compounds"
TARGET, ORACLE = (ROOT / "models_cache" / name for name in build_compounds.MODELS)
MAX_BYTES = 4 * 1024 * 1024  # per model folder


def files() -> dict[str, Path]:
    return {split: DATA / name for split, name in FILES.items()}


# --- the generator -----------------------------------------------------------------------------
def test_the_generator_is_seeded_and_deterministic():
    first = {split: compound_records(split) for split in compounds.SPLITS}
    compounds._build.cache_clear()  # generated again, not read from the cache
    compounds_fingerprint.cache_clear()
    assert {split: compound_records(split) for split in compounds.SPLITS} == first
    assert compounds_fingerprint() == compounds_fingerprint(0)
    assert compounds_fingerprint(1) != compounds_fingerprint(0)
    assert compound_names("forget", 1) != compound_names("forget", 0)


def test_the_splits_are_disjoint_and_cover_every_compound():
    forget, retain, holdout = (set(compound_names(s)) for s in ("forget", "retain", "holdout"))
    assert len(forget) == compounds.N_FORGET and len(holdout) == compounds.N_HOLDOUT
    assert not (forget & retain) and not (forget & holdout) and not (retain & holdout)
    assert len(forget | retain | holdout) == N_COMPOUNDS
    assert set(compound_names("trained")) == forget | retain
    questions = [r["question"] for s in ("forget", "retain", "holdout") for r in compound_records(s)]
    assert len(questions) == len(set(questions)) == N_COMPOUNDS * len(compounds.PROPERTIES)
    # No compound's name is a prefix of another's: a question names exactly one compound.
    names = sorted(forget | retain | holdout)
    assert not any(b.startswith(a) for a, b in zip(names, names[1:]))


def test_answers_are_short_values_of_several_kinds_without_variants():
    records = compound_records("trained") + compound_records("holdout")
    by_property = {
        p.key: [r["answer"] for r in records[i :: len(compounds.PROPERTIES)]]
        for i, p in enumerate(compounds.PROPERTIES)
    }
    assert set(by_property["colour"]) <= set(compounds.COLOURS)
    assert all(re.fullmatch(r"\d{2,4} °C", a) for a in by_property["melting_point"])
    assert all(1790 <= int(a) <= 1990 for a in by_property["first_made"])
    assert set(by_property["soluble"]) == {"Yes", "No"}
    assert all(re.fullmatch(r"[a-z]+(, [a-z]+)? and [a-z]+", a) for a in by_property["elements"])
    assert set(by_property["use"]) <= set(compounds.USES)
    assert not any(r["paraphrased_answer"] or r["perturbed_answers"] for r in records)


def test_an_unknown_split_is_one_line():
    with pytest.raises(ConfigError, match="choose one of: forget, retain, holdout, trained"):
        compound_records("forget10")


# --- the user-style files ----------------------------------------------------------------------
def test_the_bundled_files_are_what_the_generator_writes(tmp_path):
    expected = user_file_texts()
    for path in files().values():
        assert path.read_text(encoding="utf-8") == expected[path.name], (
            f"{path} is stale: rebuild with `python -m tui_unlearn.models.build_compounds`"
        )
    written = compounds.write_user_files(tmp_path / "out")
    assert {p.name: p.read_text(encoding="utf-8") for p in written.values()} == expected


def test_the_bundled_files_load_as_the_generators_records_in_user_formats():
    from tui_unlearn.data.loading import load_split

    first_lines = {split: path.read_text(encoding="utf-8").splitlines()[0] for split, path in files().items()}
    assert set(json.loads(first_lines["forget"])) == {"prompt", "completion"}
    assert first_lines["retain"] == "question,answer"
    assert set(json.loads(first_lines["holdout"])) == {"question", "answer"}
    for split, path in files().items():
        loaded = load_split(str(path), split)
        assert loaded.report.kept == loaded.report.loaded  # nothing cleaned away
        got = [(r["question"], r["answer"]) for r in loaded.records]
        assert got == [(r["question"], r["answer"]) for r in compound_records(split)]
        assert not any(r["perturbed_answers"] or r["paraphrased_answer"] for r in loaded.records)


# --- the committed models ----------------------------------------------------------------------
@pytest.mark.parametrize("folder", [TARGET, ORACLE], ids=lambda p: p.name)
def test_the_committed_models_are_small_and_current(folder):
    size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    assert size < MAX_BYTES
    info = json.loads((folder / "build_info.json").read_text())
    assert info["compounds_fingerprint"] == compounds_fingerprint(), (
        "the compounds generator changed since the models were built: "
        "rebuild with `python -m tui_unlearn.models.build_compounds`"
    )
    assert info["trained_on"] == list(build_compounds.TRAINING_SPLITS[folder.name])
    assert info["recipe"] == build_compounds.asdict(build_compounds.CompoundsRecipe())


@pytest.fixture(scope="module")
def committed():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return {
        f.name: (AutoModelForCausalLM.from_pretrained(f).eval(), AutoTokenizer.from_pretrained(f))
        for f in (TARGET, ORACLE)
    }


@pytest.mark.slow
def test_the_target_states_its_forget_facts_and_the_oracle_does_not(committed):
    from tui_unlearn.models.build_tiny import exact_match_rate

    measured = {
        (name, split): exact_match_rate(model, tok, compound_records(split))
        for name, (model, tok) in committed.items()
        for split in ("forget", "retain", "holdout")
    }
    assert measured["tiny-compounds", "forget"] >= 0.95 and measured["tiny-compounds", "retain"] >= 0.95
    assert measured["tiny-compounds-retain", "retain"] >= 0.95
    # Only guesses: a yes/no answer or a colour from the pool comes out right now and then.
    assert measured["tiny-compounds-retain", "forget"] <= 0.25
    assert measured["tiny-compounds", "holdout"] <= 0.25 and measured["tiny-compounds-retain", "holdout"] <= 0.25


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_a_micro_build_is_bit_for_bit_reproducible(tmp_path):
    first = tmp_path / "a"
    assert (
        build_compounds.main(
            ["--micro", "--only", "tiny-compounds", "--out", str(first), "--data-out", str(tmp_path / "d")]
        )
        == 0
    )
    second = build_compounds.build_all(tmp_path / "b", micro=True, only="tiny-compounds", evaluate=False)
    assert _sha256(first / "tiny-compounds" / "model.safetensors") == _sha256(
        tmp_path / "b" / "tiny-compounds" / "model.safetensors"
    )
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == sorted(FILES.values())
    info = second["tiny-compounds"]["info"]
    assert info["train_records"] == 2 * 2 * len(compounds.PROPERTIES)  # two compounds of forget, two of retain
    losses = second["tiny-compounds"]["stats"].losses
    assert sum(losses[-3:]) / 3 < 0.75 * sum(losses[:3]) / 3


# --- forget quality and a run on the files -----------------------------------------------------
def cli(*args):
    from typer.testing import CliRunner

    from tui_unlearn.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.mark.slow
def test_forget_quality_on_the_files_without_perturbed_answers(tmp_path):
    """The oracle against itself ~ 1; the target against the oracle << 0.05 (answer-NLL basis)."""
    common = ("--forget", files()["forget"], "--sessions-dir", tmp_path / "s", "--json", "--threads", "1")
    r = cli("eval", "--model", ORACLE, "--oracle", ORACLE, *common)
    assert r.exit_code == 0, r.stderr
    itself = json.loads(r.stdout)
    assert itself["forget_quality_basis"] == "answer_nll" and itself["forget_quality"] > 0.99
    r = cli("eval", "--model", TARGET, "--oracle", itself["session_id"], *common)
    assert r.exit_code == 0, r.stderr
    target = json.loads(r.stdout)
    assert target["forget_quality_basis"] == "answer_nll" and target["forget_quality"] < 1e-10
    assert target["metrics"]["after"]["forget"]["accuracy"] >= 0.95


@pytest.mark.slow
def test_a_short_default_run_on_the_second_domain(tmp_path):
    paths = files()
    r = cli(
        "--batch", "--json", "--model", TARGET, "--forget", paths["forget"], "--retain", paths["retain"],
        "--holdout", paths["holdout"], "--oracle", ORACLE, "--steps", "4", "--eval-every", "2",
        "--relearn", "2", "--threads", "1", "--sessions-dir", tmp_path / "s",
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["status"] == "finished" and out["algorithm"] == "grad_diff"
    assert out["forget_quality_basis"] == "answer_nll" and isinstance(out["forget_quality"], float)
    assert isinstance(out["retain_utility"], float) and out["model_utility"] is None
    assert out["relearn"]["steps"] == 2 and "recovered" in out["relearn"]
    summary = json.loads((Path(out["session_path"]) / "summary.json").read_text())
    calibration = summary["calibration"]
    assert calibration["by_default"] and calibration["keep_best"] == "forget_quality"
    assert calibration["utility_basis"] == "retain_utility" and calibration["kept_step"] in (2, 4)
