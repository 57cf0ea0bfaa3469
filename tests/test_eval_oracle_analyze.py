"""`eval` sessions, the retain-only oracle and the field's top-level metrics, the relearning
check, and `analyze` with its exports, through the CLI on the bundled models."""

from __future__ import annotations

import csv
import io
import json

import pytest
from typer.testing import CliRunner

from tui_unlearn import oracle as oracle_mod
from tui_unlearn.cli import app
from tui_unlearn.config import RunConfig, resolve
from tui_unlearn.errors import ConfigError
from tui_unlearn.sessions import open_session


def cli(*args, input=None):
    return CliRunner().invoke(app, [str(a) for a in args], input=input)


# Every test here reads three real sessions of the bundled models (a ~10 s module fixture):
# run by .ci/run's second pass.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bundled(tmp_path_factory):
    """Eval sessions of the bundled oracle and target, and a short bundled unlearning run."""
    root = tmp_path_factory.mktemp("sessions")
    out = {"root": root}
    r = cli("eval", "--model", "tiny-authors-retain", "--sessions-dir", root, "--json")
    assert r.exit_code == 0, r.stderr
    out["oracle"] = json.loads(r.stdout)
    # The target against the saved oracle session: the oracle model must not be loaded.
    with pytest.MonkeyPatch.context() as mp:

        def no_load(*a, **k):
            raise AssertionError("the oracle model was evaluated although a saved session was given")

        mp.setattr(oracle_mod, "evaluate_oracle", no_load)
        r = cli(
            "eval", "--model", "tiny-authors", "--oracle", out["oracle"]["session_id"], "--sessions-dir", root, "--json"
        )
    assert r.exit_code == 0, r.stderr
    out["target"] = json.loads(r.stdout)
    out["target_stderr"] = r.stderr
    r = cli(
        "--batch",
        "--json",
        "--sessions-dir",
        root,
        "--steps",
        "3",
        "--eval-every",
        "0",
        "--eval-samples",
        "20",
        "--relearn",
        "3",
    )
    assert r.exit_code == 0, r.stderr
    out["run"] = json.loads(r.stdout)
    out["run_stderr"] = r.stderr
    return out


def test_oracle_against_itself_scores_forget_quality_one(bundled):
    o = bundled["oracle"]
    assert o["kind"] == "eval" and o["status"] == "finished"
    assert o["forget_quality"] == pytest.approx(1.0)
    assert o["privleak"] == pytest.approx(0.0)
    auc = o["metrics"]["after"]["forget"]["mia_auc_min_k"]
    assert 0.3 < auc < 0.7  # near chance: the oracle never saw the forget set
    assert "before" not in o["metrics"]  # an eval session has only "after"
    summary = open_session(bundled["root"], o["session_id"]).summary()
    assert len(summary["oracle_reference"]["forget_truth_ratios"]) == 100
    assert summary["oracle"]["origin"] == "self"


def test_target_is_told_apart_from_the_oracle(bundled):
    t = bundled["target"]
    assert "reusing the evaluation saved in session" in bundled["target_stderr"]
    assert t["forget_quality"] < 0.05
    assert t["metrics"]["after"]["forget"]["mia_auc_min_k"] > 0.9
    assert t["privleak"] < -50  # MUSE's sign: about -100 for a model that memorised the forget set
    from tui_unlearn.data.benchmark import SPLITS

    if "real_authors" in SPLITS:  # TOFU's nine-part utility needs the bundled utility splits
        assert isinstance(t["model_utility"], float)
    else:
        assert t["model_utility"] is None and "needs nine numbers" in t["null_reasons"]["model_utility"]


def test_batch_run_reports_field_metrics_and_relearn(bundled):
    run = bundled["run"]
    # The bundled forget10 run has the bundled oracle: every headline number is computed.
    for key in ("forget_quality", "model_utility", "privleak"):
        assert isinstance(run[key], float), key
    assert 0.0 <= run["forget_quality"] <= 1.0 and 0.0 < run["model_utility"] <= 1.0
    summary = open_session(bundled["root"], run["session_id"]).summary()
    assert set(summary["field_metrics"]) == {"before", "after"}
    assert summary["field_metrics"]["after"]["forget_quality"] == run["forget_quality"]
    assert summary["oracle"]["source"] == "tiny-authors-retain"
    rel = run["relearn"]
    assert rel["steps"] == 3 and rel["train_records"] + rel["eval_records"] == 20
    for key in ("forget_accuracy_before_relearn", "forget_accuracy_after_relearn"):
        assert 0.0 <= rel[key] <= 1.0
    assert rel["forget_accuracy_original"] == pytest.approx(1.0)
    # "recovered" is defined only when unlearning removed some accuracy from the evaluated half.
    removed = rel["forget_accuracy_original"] - rel["forget_accuracy_before_relearn"]
    if removed > 0:
        expected = (rel["forget_accuracy_after_relearn"] - rel["forget_accuracy_before_relearn"]) / removed
        assert rel["recovered"] == pytest.approx(expected)
    else:
        assert rel["recovered"] is None
    # The bundled oracle's evaluation is cached under the sessions dir and reused.
    assert list((bundled["root"] / oracle_mod.CACHE_DIR).glob("*.json"))
    # The same run again reads the oracle from the cache and gets exactly the same forget quality.
    r = cli(
        "--batch",
        "--json",
        "--sessions-dir",
        bundled["root"],
        "--steps",
        "3",
        "--eval-every",
        "0",
        "--eval-samples",
        "20",
    )
    assert r.exit_code == 0, r.stderr
    assert "reusing the cached evaluation of tiny-authors-retain" in r.stderr
    assert json.loads(r.stdout)["forget_quality"] == run["forget_quality"]


def test_analyze_prints_tables_and_charts_and_exports(bundled, tmp_path):
    ids = [bundled[k]["session_id"] for k in ("oracle", "target", "run")]
    paths = {ext: tmp_path / f"cmp.{ext}" for ext in ("csv", "json", "md")}
    r = cli(
        "analyze",
        *ids,
        "--sessions-dir",
        bundled["root"],
        "--csv",
        paths["csv"],
        "--json",
        paths["json"],
        "--markdown",
        paths["md"],
    )
    assert r.exit_code == 0, r.stderr
    assert "forget quality" in r.stdout and "eval tiny-authors-retain" in r.stdout
    from tui_unlearn.data.benchmark import SPLITS

    if "real_authors" in SPLITS:  # the scatter needs model utility, which needs the bundled utility splits
        assert "forget quality against model utility" in r.stdout  # the scatter chart's title
    rows = list(csv.DictReader(io.StringIO(paths["csv"].read_text())))
    assert [row["session_id"] for row in rows] == ids
    assert {"after.forget_quality", "after.model_utility", "after.privleak", "after.forget.accuracy"} <= set(rows[0])
    data = json.loads(paths["json"].read_text())
    assert len(data["sessions"]) == 3 and data["rows"][1]["after.forget_quality"] == bundled["target"]["forget_quality"]
    md = paths["md"].read_text()
    header = next(line for line in md.splitlines() if line.startswith("| session"))
    assert [cell.strip() for cell in header.strip("|").split("|")][:2] == ["session", "kind"]
    assert any(set(line) == {"|", "-"} for line in md.splitlines())  # the header rule
    r = cli("analyze", ids[0], "--sessions-dir", bundled["root"], "--no-charts")
    assert r.exit_code == 0 and "forget quality against" not in r.stdout


def test_analyze_bad_session_id_is_a_one_line_error(tmp_path):
    r = cli("analyze", "no-such-session", "--sessions-dir", tmp_path)
    assert r.exit_code == 2
    assert r.stderr.strip().count("\n") == 0 and "no-such-session" in r.stderr


def test_oracle_defaults_and_validation():
    assert resolve(RunConfig()).oracle == "tiny-authors-retain"
    assert resolve(RunConfig(forget="bundled:forget05")).oracle is None
    assert resolve(RunConfig(oracle="none")).oracle == "none"
    with pytest.raises(ConfigError):
        resolve(RunConfig(relearn_steps=-1))
    with pytest.raises(ConfigError):
        resolve(RunConfig(oracle=""))


def test_session_without_reference_is_refused_as_oracle(bundled):
    r = cli(
        "eval", "--model", "tiny-authors", "--oracle", bundled["run"]["session_id"], "--sessions-dir", bundled["root"]
    )
    assert r.exit_code == 2 and "holds no oracle evaluation" in r.stderr


def test_relearn_on_micro_model_without_oracle(micro_model_dir, tmp_path):
    forget = tmp_path / "forget.jsonl"
    forget.write_text(
        "".join(json.dumps({"question": f"What is fact {i}?", "answer": f"Fact {i} is blue."}) + "\n" for i in range(4))
    )
    r = cli(
        "--batch",
        "--json",
        "--sessions-dir",
        tmp_path / "s",
        "--model",
        micro_model_dir,
        "--forget",
        forget,
        "--algorithm",
        "grad_ascent",
        "--steps",
        "2",
        "--relearn",
        "2",
    )
    assert r.exit_code == 0, r.stderr
    obj = json.loads(r.stdout)
    assert obj["forget_quality"] is None and obj["privleak"] is None  # no oracle for a user's data
    rel = obj["relearn"]
    assert rel["train_records"] == 2 and rel["eval_records"] == 2 and rel["steps"] == 2
