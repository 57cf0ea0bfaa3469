"""A recipe made concrete for one run: every split's records loaded and sampled.

``resolve_settings`` fills the run settings a recipe decides (training sources,
generation length, sample size) and is called by ``config.resolve``; ``build_plan``
loads the evaluation splits once, before any session exists, so a missing file fails
the run at once (a split the recipe marks optional is left out with its reason instead).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import Any

from tui_unlearn.data.sources import BUNDLED_PREFIX, SourceSpec
from tui_unlearn.defaults import DEFAULT_FORGET
from tui_unlearn.errors import ConfigError, DataError, UnlearnError, first_line
from tui_unlearn.recipes import get_recipe
from tui_unlearn.recipes.base import QA, RUN_PREFIX, EvalSplit, Headline, Recipe

ROLES = ("forget", "retain", "holdout")
RUN_SEED_OFFSETS = {"forget": 0, "retain": 1, "holdout": 2}  # the samples every run has always used
UNKNOWN_CONTEXT = 2048  # tokens per sequence for a recipe cut only at a context the model does not state


def resolve_settings(config: Any, *, training: bool = True) -> Any:
    """``config`` with the settings its recipe decides filled in (a ``RunConfig``).

    - ``forget_split``: checked against the recipe's, defaulted to its first;
    - the training sets of a benchmark recipe (``--forget`` left at the bundled default,
      ``--retain`` / ``--holdout`` unset): the benchmark's own files;
    - ``max_new_tokens``, ``eval_samples`` and ``prompt_format`` when unset: the recipe's.

    Raises ConfigError for a forget split the recipe does not have, and (``training``)
    when the recipe has no public forget set to train on and none is given.
    """
    recipe = get_recipe(config.recipe)
    split = config.forget_split
    if split is not None and split not in recipe.forget_splits:
        raise ConfigError(
            f"--forget-split {split} is not a split of the {recipe.name} recipe; choose one of: "
            f"{', '.join(recipe.forget_splits) or 'none'}"
        )
    changes: dict[str, Any] = {}
    forget_default = config.forget == DEFAULT_FORGET
    if recipe.uses_run_data:  # bundled: --forget-split names the bundled forget set
        forget = SourceSpec.parse(config.forget)
        if split is None and forget.is_bundled:
            split = forget.rest if forget.rest in recipe.forget_splits else None
        elif split is not None and forget_default:
            changes["forget"] = f"{BUNDLED_PREFIX}{split}"
        elif split is not None and config.forget != f"{BUNDLED_PREFIX}{split}":
            raise ConfigError(f"--forget-split {split} and --forget {config.forget} disagree; give one of them")
    else:
        split = split or recipe.default_forget_split
        for role, current in (
            ("forget", None if forget_default else config.forget),
            ("retain", config.retain),
            ("holdout", config.holdout),
        ):
            if current is not None:
                continue
            stem = recipe.training.get(recipe.fill("{forget}", split) + ":" + role, recipe.training.get(role))
            if stem:
                changes[role] = recipe.locate(stem, config.recipe_data, split)
            elif role == "forget" and training:
                raise ConfigError(
                    f"the {recipe.name} recipe has no forget set to train on for {split}: pass --forget "
                    f"({recipe.training_note or 'a file or hf:owner/name'})"
                )
            elif role != "forget":
                changes[role] = ""  # not the bundled one: resolve() turns "" into None
    changes["forget_split"] = split
    if config.max_new_tokens is None:
        changes["max_new_tokens"] = recipe.max_new_tokens
    if config.eval_samples is None:
        changes["eval_samples"] = recipe.eval_samples
    if config.prompt_format is None:
        changes["prompt_format"] = recipe.prompt_format
    return replace(config, **changes)


def record_id(record: dict[str, Any]) -> str:
    """A short stable id of a record's content (question and answer, or prompt and text)."""
    key = [
        record.get("question") or record.get("prompt") or "",
        record.get("answer") or record.get("gt") or "",
        record.get("choices") or [],
    ]
    return hashlib.sha256(json.dumps(key, ensure_ascii=False).encode("utf-8")).hexdigest()[:16]


@dataclass
class EvalPlan:
    """The evaluation of one run: the recipe, its splits' records, and what is missing."""

    recipe: Recipe
    forget_split: str | None
    max_new_tokens: int
    eval_samples: int
    max_length: int
    splits: dict[str, list[dict]] = field(default_factory=dict)  # split -> sampled records, in recipe order
    sources: dict[str, str] = field(default_factory=dict)  # split -> what it was read from
    totals: dict[str, int] = field(default_factory=dict)  # split -> records before sampling
    missing: dict[str, str] = field(default_factory=dict)  # split -> why it is not evaluated
    shots: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # KnowMem in-context examples
    privleak_reference_auc: float | None = None
    sampling: str = "random"  # which records eval_samples takes: "random" or "first"
    mc_bos: str = "none"  # multiple choice: "none" (lm-eval <= 0.4.9.1) or "tokenizer" (>= 0.4.9.2)
    prompt: dict[str, Any] = field(default_factory=dict)  # the prompt format and the first forget record's prompt
    notes: list[str] = field(default_factory=list)  # lines for the run's log (what the plan changed or cut)

    def spec(self, name: str) -> EvalSplit:
        return next(s for s in self.recipe.splits if s.name == name)

    def generates(self, name: str) -> bool:
        """Whether split ``name``'s answers are generated (and graded) in this evaluation."""
        spec = self.spec(name)
        own = not SourceSpec.parse(str(self.sources.get(name, ""))).is_bundled
        return spec.generate or (spec.generate_own and own)

    def of_tasks(self, *tasks: str) -> dict[str, list[dict]]:
        return {name: recs for name, recs in self.splits.items() if self.spec(name).task in tasks}

    def working_splits(self) -> dict[str, list[dict]]:
        """The question/answer splits named forget / retain / holdout: what the quick
        evaluations during a run, the probes and the relearning check use."""
        return {name: recs for name, recs in self.of_tasks(QA).items() if name in ROLES}

    def batch_tokens(self, tokenizer: Any) -> int:
        """The longest sequence one evaluation row may hold, for sizing its batches: the
        maximum length plus the new tokens; for a recipe cut only at the model's context
        (muse), which can be 128 k tokens, the longest record's tokens (all its text fields,
        and the split's in-context examples) plus the new tokens when that is less."""
        bound = self.max_length + self.max_new_tokens
        if self.recipe.max_length:
            return bound
        longest = 0
        for name, records in self.splits.items():
            shots = " ".join(f"{q} {a}" for q, a in self.shots.get(name, []))
            for record in records:
                text = " ".join(v for v in record.values() if isinstance(v, str)) + " " + shots
                longest = max(longest, len(tokenizer(text)["input_ids"]))
        return min(bound, longest + self.max_new_tokens + 16)  # 16: the prompt's tags and special tokens

    def headline(self, result: Any, oracle: Any) -> Headline:
        return self.recipe.headline(result, oracle, self)

    def identity(self) -> dict[str, Any]:
        """What an oracle's evaluation must share with this one: recipe, forget split and records."""
        return {
            "recipe": self.recipe.name,
            "forget_split": self.forget_split,
            "forget_ids": [record_id(r) for r in self.splits.get("forget", [])],
            "holdout_ids": [record_id(r) for r in self.splits.get("holdout", [])],
        }

    def describe(self) -> dict[str, Any]:
        """The summary's ``recipe``: name, forget split, generation length, and per split
        its source, records evaluated (of how many) and task, or why it is missing."""
        splits: dict[str, Any] = {}
        for s in self.recipe.splits:
            if s.name in self.splits:
                splits[s.name] = {
                    "source": self.sources[s.name],
                    "records": len(self.splits[s.name]),
                    "of": self.totals[s.name],
                    "task": s.task,
                    "generate": self.generates(s.name),
                    "truth_ratio": s.truth_ratio,
                }
            else:
                splits[s.name] = {"missing": self.missing.get(s.name, "not loaded")}
        return {
            "name": self.recipe.name,
            "forget_split": self.forget_split,
            "max_new_tokens": self.max_new_tokens,
            "eval_samples": self.eval_samples,
            "max_length": self.max_length,
            "sampling": self.sampling,
            "mc_bos": self.mc_bos,
            "extraction_strength": self.recipe.extraction_strength,
            "headline": list(self.recipe.headline_keys),
            "splits": splits,
            "prompt": self.prompt,
        }


def build_plan(config: Any, data: Any = None, *, model_max_length: int | None = None) -> EvalPlan:
    """Load and sample every split of ``config.recipe`` (``config`` resolved).

    ``data`` is the run's ``RunData`` (for ``run:`` sources); ``model_max_length`` caps
    the tokens per scored sequence (the model's context). Raises DataError for a required
    split that cannot be read, naming the recipe and the split.
    """
    from tui_unlearn.data.run_data import sample
    from tui_unlearn.recipes.sources import read_split

    recipe = get_recipe(config.recipe)
    notes = []
    if recipe.max_length:
        max_length = recipe.max_length if not model_max_length else min(recipe.max_length, model_max_length)
    elif model_max_length:  # the recipe's benchmark cuts nothing: only the model's context does
        max_length = model_max_length
    else:
        max_length = UNKNOWN_CONTEXT
        notes.append(
            f"the model does not say its context length (max_position_embeddings); the {recipe.name} recipe's "
            f"texts are cut at {UNKNOWN_CONTEXT} tokens"
        )
    plan = EvalPlan(
        recipe,
        config.forget_split,
        config.max_new_tokens,
        config.eval_samples,
        max_length,
        privleak_reference_auc=config.privleak_reference_auc,
        sampling=config.eval_sampling,
        mc_bos=config.mc_bos,
        notes=notes,
    )
    for index, spec in enumerate(recipe.splits):
        try:
            records, source = _load(spec, config, data, recipe)
            if spec.shots:
                shots_source = recipe.locate(spec.shots, config.recipe_data, config.forget_split)
                plan.shots[spec.name] = [(r["question"], r["answer"]) for r in read_split(shots_source, spec.task)]
        except UnlearnError as error:
            if spec.required:
                raise DataError(f"{recipe.name} recipe, {spec.name} split: {error}") from error
            if spec.retain_eval and config.retain_eval:  # asked for by name: never dropped quietly
                raise DataError(f"--retain-eval {config.retain_eval}: {error}") from error
            plan.missing[spec.name] = str(error)
            continue
        if not records:
            if spec.retain_eval and config.retain_eval:
                raise DataError(f"--retain-eval {config.retain_eval} holds no records; give a file with some")
            plan.missing[spec.name] = f"{source} has no records"
            continue
        role = spec.source[len(RUN_PREFIX) :] if spec.source.startswith(RUN_PREFIX) else None
        seed = config.seed + (RUN_SEED_OFFSETS[role] if role in RUN_SEED_OFFSETS else 10 + index)
        if config.eval_sampling == "first":
            plan.splits[spec.name] = records[: config.eval_samples] if config.eval_samples > 0 else list(records)
        else:
            plan.splits[spec.name] = sample(records, config.eval_samples, seed)
        plan.sources[spec.name] = source
        plan.totals[spec.name] = len(records)
    return plan


def missing_text(missing: dict[str, str], *, brackets: bool = False) -> str:
    """Splits left out and why, each reason once: ``real_authors, world_facts: why; holdout:
    why`` (``brackets``: ``real_authors, world_facts (why)``). Splits that share a reason
    (the bundled benchmark's utility splits beside a user's own forget set) would otherwise
    repeat it, the forget set's path with it."""
    by_reason: dict[str, list[str]] = {}
    for name, why in missing.items():
        by_reason.setdefault(why, []).append(name)
    if brackets:
        return "; ".join(f"{', '.join(names)} ({why})" for why, names in by_reason.items())
    return "; ".join(f"{', '.join(names)}: {why}" for why, names in by_reason.items())


def _load(spec: EvalSplit, config: Any, data: Any, recipe: Recipe) -> tuple[list[dict], str]:
    """(records, source label) of one split, before sampling."""
    from tui_unlearn.recipes.sources import read_split

    if spec.retain_eval and config.retain_eval:
        return read_split(config.retain_eval, spec.task), config.retain_eval
    if spec.source.startswith(RUN_PREFIX):
        role = spec.source[len(RUN_PREFIX) :]
        records = list(getattr(data, role, None) or [])
        given = getattr(config, role, None)
        if not records:
            raise DataError(f"the run has no {role} set" + ("" if given else f": pass --{role}"))
        return records, given or role
    split_source = SourceSpec.parse(spec.source)
    if split_source.is_bundled:
        from tui_unlearn.data.benchmark import SPLITS

        if split_source.rest not in SPLITS:
            raise DataError(f"{spec.source} is not in this version of the bundled benchmark")
        if not SourceSpec.parse(config.forget).is_bundled:
            # Without the split's own name: several splits share this reason and are told once (``missing_text``).
            raise DataError(
                f"part of the bundled benchmark, and this run's forget set ({config.forget}) is not from it"
            )
        return read_split(spec.source, spec.task), spec.source
    where = config.recipe_data or recipe.data or ""
    if spec.hub and SourceSpec.parse(where).is_hub:
        source = spec.hub
    else:
        source = recipe.locate(spec.source, config.recipe_data, config.forget_split)
    try:
        return read_split(source, spec.task), source
    except DataError:
        raise
    except UnlearnError as error:  # e.g. a ConfigError from a hub spec
        raise DataError(first_line(error)) from error
