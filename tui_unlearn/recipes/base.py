"""What an evaluation recipe declares: its splits, where they come from, how many records,
how long the model may answer, which metrics run on which split, and how the headline
numbers aggregate.

A recipe is data: one :class:`Recipe` per module (``bundled``, ``tofu``, ``muse``,
``wmdp``), registered by name. ``plan.build_plan`` turns a recipe and a run's settings
into loaded records; ``evaluate.evaluate_plan`` runs the model over them;
``recipe.headline`` turns the per-split aggregates (and the oracle) into the headline
numbers, each None with a one-line reason when it cannot be computed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui_unlearn.data.sources import SourceSpec

# How a split is evaluated (what kind of records it holds).
QA = "qa"  # question/answer records: loss, generation, truth ratio, ... (metrics.evaluate)
TEXT = "text"  # plain texts, scored only: membership inference (MUSE's privleak sets)
COMPLETION = "completion"  # (prompt, gt) pairs: MUSE's VerbMem
KNOWMEM = "knowmem"  # few-shot questions: MUSE's KnowMem
CHOICE = "choice"  # multiple-choice questions: WMDP, MMLU
TASKS = (QA, TEXT, COMPLETION, KNOWMEM, CHOICE)

RUN_PREFIX = "run:"  # a split taken from the run's own data: run:forget, run:retain, run:holdout


@dataclass(frozen=True)
class EvalSplit:
    """One split a recipe evaluates.

    ``source`` is ``run:<role>`` (the run's forget / retain / holdout set),
    ``bundled:<split>`` (the bundled benchmark) or a *stem*, ``config@split``, that the
    recipe's data location turns into a file or a hub spec (``Recipe.locate``); ``{forget}``
    in it is replaced by the forget split (``forget10``), ``{number}`` by its number
    (``10``). ``required`` False: a source that cannot be read leaves the split out with a
    reason instead of failing the run. ``retain_eval``: ``--retain-eval`` replaces the
    source. ``shots``: KnowMem's in-context examples (a stem). ``subject``: multiple
    choice's description line ("biology", or ``{subject}``: the recipe's subject of the
    forget split; a record's own ``subject`` wins). ``hub``: where the split lives when
    the recipe reads from the hub (MMLU is not in WMDP's dataset). ``generate`` False: no
    answers are generated (no accuracy, F1, ROUGE); ``truth_ratio`` False: the records'
    paraphrased and perturbed answers are not scored (no truth ratio, no probability
    against the perturbed answers). A membership baseline needs neither: only its
    answers' scores enter the forget-vs-holdout attacks. ``generate_own``: answers are
    generated anyway when the split's records are the user's own, not the bundled
    benchmark's: a holdout of facts the model knows (and was never trained on) is where
    collateral damage shows, as the retain set (trained on) cannot show it.
    """

    name: str
    source: str
    task: str = QA
    generate: bool = True
    generate_own: bool = False
    truth_ratio: bool = True
    required: bool = True
    retain_eval: bool = False
    shots: str | None = None
    subject: str = ""
    hub: str | None = None  # the split's own hub spec, used when the recipe's data is a hub id
    about: str = ""  # what the split is for, in a few words (docs, summary)


@dataclass
class Headline:
    """The headline numbers of one evaluation and why any of them is None."""

    values: dict[str, float | None] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)  # e.g. the nine parts of TOFU's model utility

    def set(self, key: str, value: float | None, reason: str = "") -> None:
        """Record ``value``; a None or non-finite value records ``reason`` instead."""
        import math

        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            self.values[key] = None
            self.reasons[key] = reason or "not computed"
        else:
            self.values[key] = float(value)
            self.reasons.pop(key, None)


@dataclass(frozen=True)
class Recipe:
    """An evaluation recipe. See the module docstring; each field is read by the plan,
    the evaluation, the CLI help or the Benchmarks table (docs/metrics-and-recipes.md)."""

    name: str
    description: str
    splits: tuple[EvalSplit, ...]
    headline: Callable[..., Headline]  # (result, oracle, plan) -> Headline
    headline_keys: tuple[str, ...]
    max_new_tokens: int  # generation length of QA answers
    eval_samples: int = 0  # records per split (0: all)
    max_length: int = 512  # tokens per scored sequence (capped by the model's context); 0: the model's context
    prompt_format: str = "model"  # --prompt-format default (data.prompts): "model" or "open-unlearning"
    # "definition": 1 - k/n, 0 when no suffix is predicted; "open-unlearning": its loop's 1/n then
    extraction_strength: str = "definition"
    forget_splits: tuple[str, ...] = ()  # --forget-split choices; the first is the default
    data: str | None = None  # default --recipe-data (a hub id); None: no data of its own
    folder_layout: Callable[[str, str], str] | None = None  # (config, split) -> path in a --recipe-data folder
    training: Mapping[str, str] = field(default_factory=dict)  # role -> stem of the training sets
    training_note: str = ""  # why a role has no training default (said when one is needed)
    subjects: Mapping[str, str] = field(default_factory=dict)  # forget split -> ``{subject}``
    command: str = ""  # the command the docs show for it

    @property
    def default_forget_split(self) -> str | None:
        return self.forget_splits[0] if self.forget_splits else None

    @property
    def uses_run_data(self) -> bool:
        return any(s.source.startswith(RUN_PREFIX) for s in self.splits)

    def fill(self, stem: str, forget_split: str | None) -> str:
        """``stem`` with ``{forget}``, ``{number}`` and ``{subject}`` replaced."""
        split = forget_split or ""
        number = "".join(ch for ch in split if ch.isdigit())
        subject = self.subjects.get(split, "")
        return stem.replace("{forget}", split).replace("{number}", number).replace("{subject}", subject)

    def locate(self, stem: str, data: str | None, forget_split: str | None) -> str:
        """The data-layer spec of ``stem`` under ``data``: ``hf:owner/name:config@split``
        for a hub id, else the file in the folder ``data`` (``.json``, ``.jsonl``,
        ``.parquet`` or ``.csv``, the first that exists)."""
        from tui_unlearn.errors import ConfigError

        stem = self.fill(stem, forget_split)
        if SourceSpec.parse(stem).is_hub:  # a source of its own (e.g. WMDP's training corpora)
            return stem
        config, _, split = stem.partition("@")
        where = data or self.data
        if where is None:
            raise ConfigError(f"the {self.name} recipe needs --recipe-data (a folder or hf:owner/name) for {stem}")
        if SourceSpec.parse(where).is_hub:
            return f"{where}:{config}@{split or 'train'}"
        relative = self.folder_layout(config, split) if self.folder_layout else config
        folder = Path(where).expanduser()
        for suffix in (".json", ".jsonl", ".parquet", ".csv"):
            candidate = folder / f"{relative}{suffix}"
            if candidate.is_file():
                return str(candidate)
        return str(folder / f"{relative}.json")  # missing: the loader says so, naming the path
