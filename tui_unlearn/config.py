"""The typed configuration of one run: loaded from a file, overridden by flags, saved in every session.

Every setting is declared once, on its ``RunConfig`` field, as a :class:`~tui_unlearn.params.Param`
(type, default, range, help, the faces that show it). The CLI options, the TUI's knobs and the
validation are generated from those declarations (``SETTINGS``), so the faces cannot disagree.

``RunConfig`` holds what the user asked for; ``resolve()`` type-checks every field, fills the
defaults that depend on other fields (a method's own learning rate, the bundled retain set that
goes with a bundled forget split) and validates the combination, so a session's
``config.json`` is exactly what ran and can be fed back with ``--config`` to reproduce it.
"""

from __future__ import annotations

import json
import re
import stat
import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from tui_unlearn.data.sources import BUNDLED_PREFIX, SourceSpec
from tui_unlearn.defaults import (
    DEFAULT_ALGORITHM,
    DEFAULT_FORGET,
    DEFAULT_MODEL,
    DEFAULT_ORACLE,
    DEFAULT_ORACLE_FORGET,
)
from tui_unlearn.errors import ConfigError
from tui_unlearn.params import CLI, EVAL, TUI, Param

# Run-level defaults for knobs a method may override through ``Algorithm.run_defaults``.
RUN_DEFAULTS: dict[str, Any] = {"steps": 60, "lr": 5e-4, "batch_size": 8}
METHOD_DEFAULTED = tuple(RUN_DEFAULTS)
# The methods' own learning rates (5e-4 to 1e-3) suit models trained from scratch as the
# bundled tiny ones are (at 3e-3). On a pretrained model they wreck it within a few steps
# (NPO+LoRA at 5e-4 on SmolLM2-135M-Instruct: general-ability NLL 0.68 -> 5.86, "Why is the
# sky blue?" -> "Brasseurés, néwauRecipeur"). A pretrained model takes the field's rate
# instead, for every method: open-unlearning's 1e-5 when every weight trains, and ten times
# that for LoRA adapters (their update starts at zero and stays low-rank).
PRETRAINED_LR = 1e-5
PRETRAINED_LORA_LR = 1e-4

_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
SEED_MAX = 2**32 - 1  # numpy's seeds stop there; torch's and Python's take it too


def _device_rule(value: str) -> str | None:
    return None if _DEVICE.match(value) else "must be auto, cpu, cuda, cuda:N or mps"


def _not_blank(value: str | None) -> str | None:
    return "must not be empty" if value is not None and not value.strip() else None


def _path_rule(value: str | None) -> str | None:
    """For settings that name a file or folder (or a hub id, which fits the same limits):
    not empty, and no name longer than a file system allows."""
    return _not_blank(value) or _name_fits(value)


def _name_fits(value: str | None) -> str | None:
    """A path's names fit a file system (an empty value stays allowed: "not given")."""
    from tui_unlearn.paths import path_problem

    return path_problem(value) if value else None


def _stop_rule(value: str | None) -> str | None:
    from tui_unlearn.engine.stop_rules import check_stop_when

    return check_stop_when(value)


def _keep_best_metric(value: str | None) -> str | None:
    from tui_unlearn.engine.stop_rules import check_keep_best

    return check_keep_best(value)


def _report_to_rule(value: str) -> str | None:
    from tui_unlearn.engine.trackers import check_report_to

    return check_report_to(value)


def setting(
    default: Any,
    help: str,
    *,
    faces: tuple[str, ...] = (CLI,),
    group: str = "Run",
    factory: Any = None,
    machine: bool = False,
    **rules: Any,
) -> Any:
    """A dataclass field carrying its :class:`Param` declaration, less the name and the type:
    ``_declarations`` takes those from the field (``int | None`` is a nullable "int").

    ``machine``: a setting of where and how this machine reports the run, not of the run
    itself (see ``MACHINE_SETTINGS``): a checkpoint or a sweep is the same run whatever it says.
    """
    declared = {"default": default, "help": help, "faces": frozenset(faces), "group": group, **rules}
    metadata = {"param": declared, "machine": machine}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


MODEL, DATA, RUN, SCALE, LORA = "Model", "Data", "Run", "Scale", "LoRA"
REGULARISERS, EVALUATION, OUTPUT = "Regularisers", "Evaluation", "Output"
BENCHMARK = "Benchmark"  # the evaluation recipe and its data (not a knob group of the Algorithm tab)


def _recipe_names() -> tuple[str, ...]:
    from tui_unlearn.recipes import recipe_names

    return recipe_names()


@dataclass
class RunConfig:
    # ---- model ----
    model: str = setting(
        DEFAULT_MODEL,
        "Bundled name (tiny-authors, tiny-authors-retain), a local model folder, a .gguf file, or a hub id.",
        faces=(CLI, EVAL),
        group=MODEL,
        short="-m",
        check_value=_path_rule,
    )
    device: str = setting(
        "auto",
        "Where to run: auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps.",
        faces=(CLI, EVAL),
        machine=True,  # may change when a run resumes on another machine
        group=MODEL,
        check_value=_device_rule,
    )
    dtype: str = setting(
        "auto",
        "Weights dtype: auto (bf16 on GPUs that support it, else float32), float32, bfloat16, float16.",
        faces=(CLI, EVAL),
        group=MODEL,
        choices=("auto", "float32", "bfloat16", "float16"),
    )
    trust_remote_code: bool = setting(
        False,
        "Allow a model folder's own Python code to run (off by default: only for models you trust).",
        faces=(CLI, EVAL),
        group=MODEL,
    )
    models_cache: str | None = setting(
        None,
        "Where hub models and dequantized .gguf files are cached (env TUI_UNLEARN_MODELS_CACHE).",
        faces=(CLI, EVAL),
        machine=True,  # may change when a run resumes on another machine
        group=MODEL,
        check_value=_path_rule,
    )
    # ---- data ----
    forget: str = setting(
        DEFAULT_FORGET,
        "Forget set: a file (.txt .json .jsonl .csv .parquet), '-' for stdin, bundled:forget10, or hf:owner/name[:config][@split].",
        faces=(CLI, EVAL),
        group=DATA,
        short="-f",
        check_value=_path_rule,
    )
    retain: str | None = setting(
        None,
        "Retain set, what must survive; trained on, so its numbers flatter (same sources as --forget; "
        "default: the bundled one for bundled data).",
        faces=(CLI, EVAL),
        group=DATA,
        check_value=_name_fits,
    )
    holdout: str | None = setting(
        None,
        "Holdout set, never trained on: the membership baseline, and on your own data facts the model knows "
        "whose answers are graded too, where collateral damage shows (same sources; default: the bundled one "
        "for bundled data).",
        faces=(CLI, EVAL),
        group=DATA,
        check_value=_name_fits,
    )
    retain_eval: str | None = setting(
        None,
        "Retain set the evaluation measures utility on, when it is not the one trained on (e.g. TOFU's "
        "retain_perturbed.json while training on retain90); same sources as --retain (default: the recipe's).",
        faces=(CLI, EVAL),
        group=DATA,
        check_value=_path_rule,
    )
    prompt_format: str | None = setting(
        None,
        "How questions are put to the model: 'model' (its own chat template, the question as the only turn) or "
        "'open-unlearning' (the system prompt, date string or hand-written tags its model configs declare for the "
        "model's family) (default: the recipe's, open-unlearning for tofu and muse).",
        faces=(CLI, EVAL),
        group=DATA,
        choices=("model", "open-unlearning"),
    )
    system_prompt: str | None = setting(
        None,
        "System prompt for a chat template ('' for none; default: the prompt format's, 'You are a helpful "
        "assistant.' for open-unlearning's Llama-3, Qwen2.5, Phi-3.5 and zephyr configs).",
        faces=(CLI, EVAL),
        group=DATA,
        metavar="TEXT",
    )
    date_string: str | None = setting(
        None,
        "Date a chat template writes into its prompts, e.g. '10 Apr 2025' (open-unlearning's for Llama-3); "
        "without one, Llama-3.2's template writes today's date and numbers change with the calendar.",
        faces=(CLI, EVAL),
        group=DATA,
        metavar="DATE",
    )
    # ---- the method ----
    algorithm: str = setting(
        DEFAULT_ALGORITHM,
        "Unlearning method (listed below).",
        group=RUN,
        short="-a",
        check_value=_not_blank,
    )
    # Set through one flag per declared hyperparameter (generated from the methods), not one flag.
    hparams: dict[str, Any] = setting({}, "The method's hyperparameters.", faces=(), factory=dict)
    steps: int | None = setting(
        None,
        "Optimisation steps.",
        faces=(CLI, TUI),
        min=1,
        max=10_000_000,
    )
    lr: float | None = setting(
        None,
        "Learning rate (AdamW, 10% linear warm-up).",
        faces=(CLI, TUI),
        min=0.0,
        min_exclusive=True,
        max=10.0,
    )
    batch_size: int | None = setting(
        None,
        "Forget and retain examples per step.",
        faces=(CLI, TUI),
        min=1,
        max=65536,
    )
    seed: int = setting(
        0, "Random seed (data order, sampling, initialisation).", faces=(CLI, EVAL, TUI), min=0, max=SEED_MAX
    )
    grad_clip: float = setting(
        1.0,
        "Clip the gradient norm to this (0: no clipping).",
        faces=(CLI, TUI),
        min=0.0,
        max=1e6,
    )
    max_length: int = setting(256, "Tokens per training example.", faces=(CLI, EVAL), min=8, max=1_000_000)
    # ---- scale: one GPU or many ----
    grad_accum: int = setting(
        1,
        "Micro-batches accumulated per optimisation step (effective batch = batch size x this x processes).",
        faces=(CLI, TUI),
        group=SCALE,
        min=1,
        max=65536,
    )
    mixed_precision: str = setting(
        "auto",
        "Compute precision: auto (bf16 on GPUs that support it, else no), no, bf16 or fp16.",
        faces=(CLI, TUI),
        group=SCALE,
        choices=("auto", "no", "bf16", "fp16"),
    )
    gradient_checkpointing: bool | None = setting(
        None,
        "Recompute activations in the backward pass: less memory, about a third more time "
        "(default: on with LoRA, where the activations are most of what training holds; off otherwise).",
        faces=(CLI, TUI),
        group=SCALE,
    )
    threads: int | None = setting(
        None,
        "CPU threads for torch (default: half the cores, at most 8; 1 on a 2-core machine).",
        faces=(CLI, EVAL, TUI),
        machine=True,  # may change when a run resumes on another machine
        group=SCALE,
        min=1,
        max=1024,
    )
    lora_r: int = setting(
        0,
        "LoRA rank: train low-rank adapters instead of every weight (0: full fine-tuning).",
        faces=(CLI, TUI),
        group=LORA,
        min=0,
        max=4096,
    )
    lora_alpha: float | None = setting(
        None,
        "LoRA scaling alpha (default: 2 x rank).",
        faces=(CLI, TUI),
        group=LORA,
        min=0.0,
        min_exclusive=True,
        max=1e6,
    )
    lora_dropout: float = setting(
        0.0,
        "Dropout on the LoRA adapters' input.",
        faces=(CLI, TUI),
        group=LORA,
        min=0.0,
        max=0.9,
    )
    lora_targets: list[str] = setting(
        [],
        "A module name LoRA adapts (repeatable; default: every linear layer of attention and MLP).",
        group=LORA,
        factory=list,
        flag="--lora-target",
        metavar="NAME",
    )
    # ---- regularisers usable with any method (0 = off) ----
    l2_anchor: float = setting(
        0.0,
        "Weight of an L2 pull to the original weights (any method).",
        faces=(CLI, TUI),
        group=REGULARISERS,
        min=0.0,
        max=1e6,
    )
    kl_retain: float = setting(
        0.0,
        "Weight of KL(original || model) on retain batches (any method).",
        faces=(CLI, TUI),
        group=REGULARISERS,
        min=0.0,
        max=1e6,
    )
    dropout: float = setting(
        0.0,
        "Dropout on every block's output while unlearning (any method).",
        faces=(CLI, TUI),
        group=REGULARISERS,
        min=0.0,
        max=0.99,
    )
    # ---- evaluation ----
    eval_every: int = setting(
        10,
        "Steps between evaluations during the run (0: before and after only).",
        faces=(CLI, TUI),
        group=EVALUATION,
        min=0,
        max=10_000_000,
    )
    stop_when: str | None = setting(
        None,
        "Stop at the first evaluation where this holds: holdout-parity[:TOL] (forget-vs-holdout MIA AUCs, "
        "LOSS and Min-K%++, within TOL of 0.5; default 0.05), or METRIC>=X / METRIC<=X such as "
        "forget_quality>=0.5 or forget_accuracy<=0.1; join several with ','.",
        faces=(CLI, TUI),
        group=EVALUATION,
        metavar="RULE",
        check_value=_stop_rule,
    )
    keep_best: str | None = setting(
        None,
        "Keep the weights of the best evaluation by this metric (forget_quality, holdout_parity, "
        "forget_accuracy, ...) as the result, among those above --utility-floor.",
        faces=(CLI, TUI),
        group=EVALUATION,
        metavar="METRIC",
        check_value=_keep_best_metric,
    )
    utility_floor: float = setting(
        0.95,
        "With --keep-best (or calibration, on by default): only evaluations keeping model utility >= this x the "
        "original's count (0: no floor).",
        faces=(CLI, TUI),
        group=EVALUATION,
        min=0.0,
        max=1.0,
    )
    calibrate: bool = setting(
        True,
        "With an oracle or a holdout set and no --keep-best or --stop-when: keep the best evaluation's weights "
        "by forget quality (oracle) or holdout parity (holdout), above --utility-floor.",
        faces=(CLI,),
        group=EVALUATION,
    )
    general_retain: bool = setting(
        True,
        "With no retain set: train on the original's own answers to 64 bundled everyday instructions as the "
        "retain set, so the model keeps speaking (methods with a retain term).",
        faces=(CLI,),
        group=EVALUATION,
    )
    guard_general: float = setting(
        0.5,
        "Guard: when the general-ability NLL (the original's answers to general prompts) rises more than "
        "this many nats/token over the original's at an evaluation, stop and keep the last weights within "
        "it (0: no guard).",
        faces=(CLI,),
        group=EVALUATION,
        min=0.0,
        max=100.0,
    )
    guard_knowledge: float = setting(
        0.8,
        "Guard: when the model still states less than this share of the world-knowledge probe's facts the "
        "original states, stop and keep the last weights above it (0: no guard; needs an original stating 20+).",
        faces=(CLI,),
        group=EVALUATION,
        min=0.0,
        max=1.0,
    )
    eval_samples: int | None = setting(
        None,
        "Records per split in the before/after evaluation (0: all; default: the recipe's, all records "
        "for tofu, muse and wmdp, 100 for bundled).",
        faces=(CLI, EVAL, TUI),
        group=EVALUATION,
        min=0,
        max=10_000_000,
    )
    eval_sampling: str = setting(
        "random",
        "Which records --eval-samples N takes: 'random' (a fixed random sample) or 'first' (the first N, as "
        "TOFU's legacy numbers take the first 300).",
        faces=(CLI, EVAL),
        group=EVALUATION,
        choices=("random", "first"),
    )
    probe_samples: int = setting(
        32,
        "Records per split in the evaluations during the run.",
        group=EVALUATION,
        min=0,
        max=1_000_000,
    )
    max_new_tokens: int | None = setting(
        None,
        "Most tokens generated per answer (default: the recipe's, 200 for tofu as TOFU generates, "
        "128 for muse's VerbMem, 48 for bundled).",
        faces=(CLI, EVAL),
        group=EVALUATION,
        min=1,
        max=4096,
    )
    eval_batch_size: int = setting(
        0,
        "Sequences per evaluation batch (0: from the device's memory and the model's size; 64 on a CPU). "
        "Halved by itself when an evaluation runs out of memory.",
        faces=(CLI, EVAL),
        machine=True,  # may change when a run resumes on another machine
        group=EVALUATION,
        min=0,
        max=65_536,
    )
    eval_cache: bool = setting(
        True,
        "Reuse the cached 'before' evaluation when the same model was evaluated on the same "
        "records with the same settings (kept under <sessions dir>/.eval-cache).",
        group=EVALUATION,
    )
    probes: list[str] = setting(
        [],
        "A question to watch during the run (repeatable).",
        group=EVALUATION,
        factory=list,
        flag="--probe",
        metavar="TEXT",
    )
    # Field metrics against a retain-only oracle: a model spec, a saved eval session (id or
    # folder), or "none". None: the bundled tiny-authors-retain when forget is bundled:forget10.
    oracle: str | None = setting(
        None,
        "Retain-only oracle for forget quality and privacy leakage: a model (bundled name, folder, hub id), "
        "a saved eval session (id or folder), or 'none' (default: tiny-authors-retain for bundled:forget10).",
        faces=(CLI, EVAL),
        group=EVALUATION,
        check_value=_path_rule,
    )
    relearn_steps: int = setting(
        0,
        "Relearning check: fine-tune the result for K steps on half of the forget sample and measure how much "
        "of the other half comes back (0: off).",
        faces=(CLI, EVAL),
        group=EVALUATION,
        flag="--relearn",
        metavar="K",
        min=0,
        max=1_000_000,
    )
    relearn_lr: float = setting(
        1e-3,
        "Learning rate of the relearning check.",
        faces=(CLI, EVAL),
        group=EVALUATION,
        min=0.0,
        min_exclusive=True,
        max=10.0,
    )
    checkpoint_every: int | None = setting(
        None,
        "Save a resumable checkpoint every N steps (0: never; default: after every 5 minutes of training, "
        "and whenever the run is stopped). Resume with --resume SESSION.",
        group=OUTPUT,
        min=0,
        max=10_000_000,
    )
    # ---- the evaluation recipe (see tui_unlearn.recipes) ----
    recipe: str = setting(
        "bundled",
        "Evaluation recipe: whose numbers the evaluation reproduces (bundled, tofu, muse, wmdp); it names the "
        "splits, their sources, sizes, generation length and headline metrics.",
        faces=(CLI, EVAL, TUI),
        group=BENCHMARK,
        choices=_recipe_names(),
    )
    forget_split: str | None = setting(
        None,
        "The recipe's forget split: forget01, forget05 or forget10 (tofu, bundled), forget (muse), wmdp-bio, "
        "wmdp-cyber or wmdp-chem (wmdp) (default: the recipe's first).",
        faces=(CLI, EVAL, TUI),
        group=BENCHMARK,
        check_value=_not_blank,
    )
    recipe_data: str | None = setting(
        None,
        "Where the recipe's files are: a folder with the benchmark's published file names, or hf:owner/name "
        "(default: hf:locuslab/TOFU, hf:muse-bench/MUSE-News, hf:cais/wmdp).",
        faces=(CLI, EVAL),
        group=BENCHMARK,
        check_value=_path_rule,
        metavar="DIR",
    )
    privleak_reference_auc: float | None = setting(
        None,
        "The retrained model's forget-vs-holdout Min-40% AUC as MUSE reports it, for privacy leakage without an "
        "oracle (MUSE's retrained Llama-2 7B: News 0.4772, Books 0.5393; open-unlearning assumes 0.5).",
        faces=(CLI, EVAL),
        group=BENCHMARK,
        min=0.0,
        max=1.0,
        metavar="AUC",
    )
    mc_bos: str = setting(
        "none",
        "Multiple-choice scoring (wmdp): 'none' encodes context and options without special tokens, as "
        "lm-evaluation-harness up to 0.4.9.1 (WMDP's and RMU's published numbers); 'tokenizer' adds what the "
        "tokenizer adds (a BOS), as lm-evaluation-harness 0.4.9.2 and later.",
        faces=(CLI, EVAL),
        group=BENCHMARK,
        choices=("none", "tokenizer"),
    )
    # ---- output ----
    report_to: str = setting(
        "none",
        "Experiment trackers that also get the run's losses, evaluations and config: tensorboard, wandb, mlflow, "
        "aim, all (every one installed) or none; join several with ','.",
        faces=(CLI, EVAL),
        group=OUTPUT,
        machine=True,
        metavar="TRACKERS",
        check_value=_report_to_rule,
    )
    logging_dir: str | None = setting(
        None,
        "Where trackers write: TensorBoard's event files (one folder per session), MLflow's runs (mlflow.db, "
        "unless MLFLOW_TRACKING_URI names a store or server), Aim's and W&B's files; default: <sessions dir>/tracking "
        "(env TUI_UNLEARN_LOGGING_DIR).",
        faces=(CLI, EVAL),
        group=OUTPUT,
        machine=True,
        metavar="DIR",
        check_value=_path_rule,
    )
    save_model: bool = setting(
        False,
        "Save the unlearned weights into the session (Hugging Face format, safetensors; LoRA adapters merged in).",
        group=OUTPUT,
    )
    save_adapter: bool = setting(
        False,
        "With LoRA: save only the adapter into the session (safetensors).",
        group=OUTPUT,
    )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def defining_dict(self) -> dict[str, Any]:
        """``to_dict()`` without the machine settings (``MACHINE_SETTINGS``): what makes two
        runs the same run (a checkpoint's config digest, a sweep's identity, trackers' hyperparameters)."""
        return {name: value for name, value in self.to_dict().items() if name not in MACHINE_SETTINGS}

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> RunConfig:
        """A config from a parsed file: unknown keys and wrongly typed values are errors."""
        unknown = sorted(set(data) - set(SETTINGS))
        if unknown:
            raise ConfigError(
                f"{source}: unknown key(s) {', '.join(unknown)}; known keys: {', '.join(sorted(SETTINGS))}"
            )
        checked = {}
        for name, value in data.items():
            try:
                checked[name] = SETTINGS[name].check(value)
            except ConfigError as error:
                raise ConfigError(f"{source}: {error}") from None
        config = cls(**checked)
        if config.hparams:
            from tui_unlearn.algorithms import get_algorithm

            try:
                get_algorithm(config.algorithm).parse_hparams(config.hparams, strict=True)
            except ConfigError as error:
                raise ConfigError(f"{source}: {error}") from None
        return config

    def with_overrides(self, **overrides: Any) -> RunConfig:
        """A copy with every override that is not None applied (flags win over files)."""
        given = {k: v for k, v in overrides.items() if v is not None}
        if "hparams" in given:
            given["hparams"] = {**self.hparams, **given["hparams"]}
        return replace(self, **given)


# A field's annotation (a string: this module postpones annotations) -> its Param type.
ANNOTATION_TYPES = {
    "float": "float",
    "int": "int",
    "bool": "bool",
    "str": "str",
    "list[str]": "strlist",
    "dict[str, Any]": "dict",
}


if TYPE_CHECKING:

    class ResolvedConfig(RunConfig):
        """A RunConfig as ``resolve()`` returns it: the settings it fills are no longer None.
        Only mypy sees this class; at run time the value is the RunConfig itself."""

        steps: int
        lr: float
        batch_size: int
        eval_samples: int
        max_new_tokens: int
        prompt_format: str
        gradient_checkpointing: bool

else:
    ResolvedConfig = RunConfig


def _declarations() -> dict[str, Param]:
    out = {}
    for f in fields(RunConfig):
        annotation = str(f.type)
        base = annotation.removesuffix(" | None")
        if base not in ANNOTATION_TYPES:
            raise TypeError(
                f"RunConfig.{f.name}: no setting type for {annotation!r}; use one of {list(ANNOTATION_TYPES)}"
            )
        out[f.name] = Param(f.name, ANNOTATION_TYPES[base], nullable=base != annotation, **f.metadata["param"])
    return out


# name -> declaration, in field order: what the CLI, the TUI and resolve() read.
SETTINGS: dict[str, Param] = _declarations()
# Settings of the machine a run happens on, not of the run (declared with ``machine=True``):
# they are saved in config.json like the others, and left out of what identifies a run
# (``RunConfig.defining_dict``: a checkpoint's config digest, a sweep's identity, trackers' hyperparameters).
MACHINE_SETTINGS: frozenset[str] = frozenset(f.name for f in fields(RunConfig) if f.metadata.get("machine"))


def settings_for(face: str, group: str | None = None) -> list[Param]:
    """The declarations shown in ``face`` (and under ``group``), in declaration order."""
    return [p for p in SETTINGS.values() if p.shows_in(face) and (group is None or p.group == group)]


def load_config_file(path: str | Path) -> RunConfig:
    """A RunConfig from a ``.json`` or ``.toml`` file (a session's config.json works)."""
    from tui_unlearn.paths import path_problem

    problem = path_problem(path)
    if problem:
        raise ConfigError(f"--config {problem}")
    from tui_unlearn.data import files

    p = Path(path).expanduser()
    try:
        found = files.stat_path(p)
    except OSError as error:  # a folder on its path that cannot be entered, a link loop
        raise ConfigError(f"--config: {files.unreachable(str(p), error)}") from None
    if found is None:
        raise ConfigError(f"config file {p} does not exist; check the path given to --config")
    if stat.S_ISDIR(found.st_mode):
        raise ConfigError(f"--config {p} is a folder; give a .json or .toml file (a session's config.json works)")
    # A regular file only, opened without blocking and read up to the data size limit.
    raw = files.read_regular(p, f"config file {p}", ConfigError, alternative="give a .json or .toml file")
    try:
        # utf-8-sig: Windows editors save a byte-order mark, which is no setting
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigError(f"config file {p} is not UTF-8 text; give a .json or .toml file") from None
    if not text.strip():
        raise ConfigError(f"config file {p} is empty; it must hold an object of settings")
    try:
        data = tomllib.loads(text) if p.suffix == ".toml" else json.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError, RecursionError) as exc:
        from tui_unlearn.errors import first_line

        kind = "TOML" if p.suffix == ".toml" else "JSON"
        raise ConfigError(f"config file {p} is not valid {kind}: {first_line(exc)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p} must hold an object of settings")
    data.pop("_resolved", None)
    return RunConfig.from_dict(data, source=str(p))


def require_remote_code_consent(config: RunConfig, origin: str, alternative: str = "") -> None:
    """ConfigError unless ``config`` leaves ``trust_remote_code`` off.

    Called where a config comes from a file (``--config``, a session resumed): such files
    travel between people, and a model folder's Python code runs only when the person at
    the keyboard asked for it on the command line (or the TUI was started with the flag)."""
    if config.trust_remote_code:
        raise ConfigError(
            f"{origin} turns on trust_remote_code (it would run {config.model}'s own Python code); "
            f"give --trust-remote-code too if you trust that model{alternative}"
        )


def is_bundled_source(spec: str | None) -> bool:
    return bool(spec) and SourceSpec.parse(str(spec)).is_bundled


def bundled_defaults(forget: str, model: str) -> tuple[str | None, str | None]:
    """The (retain, holdout) sources used when none is given: the bundled benchmark's
    matching splits when the forget set or the model is bundled, else (None, None)."""
    from tui_unlearn.data.benchmark import default_retain_for
    from tui_unlearn.models.bundled import is_bundled

    if not (is_bundled_source(forget) or is_bundled(model)):
        return None, None
    split = SourceSpec.parse(forget).rest if is_bundled_source(forget) else "forget10"
    retain = default_retain_for(split) if split.startswith("forget") else "retain90"
    return f"{BUNDLED_PREFIX}{retain}", f"{BUNDLED_PREFIX}holdout"


def trained_from_scratch(model: str) -> bool:
    """Whether ``model`` is one this project trained from scratch: a bundled tiny model (by
    name) or a folder ``build_tiny`` wrote (it leaves ``build_info.json`` beside the weights)."""
    from tui_unlearn.models.bundled import is_bundled

    if is_bundled(model):
        return True
    try:
        return (Path(model).expanduser() / "build_info.json").is_file()
    except (OSError, ValueError):
        return False


def method_run_defaults(algorithm: Any, model: str, *, lora: bool) -> dict[str, Any]:
    """Steps, learning rate and batch size a run of ``algorithm`` on ``model`` takes when the
    person sets none: the method's own for models trained from scratch, the field's learning
    rate for pretrained ones (``PRETRAINED_LR``; ``PRETRAINED_LORA_LR`` with LoRA)."""
    run = {**RUN_DEFAULTS, **algorithm.run_defaults}
    if not trained_from_scratch(model):
        run["lr"] = PRETRAINED_LORA_LR if lora else PRETRAINED_LR
    return run


def resolve(config: RunConfig, *, training: bool = True) -> ResolvedConfig:
    """Type-check every field, fill dependent defaults and validate; raises ConfigError (one line).

    ``training`` False (an ``eval``) skips what only training needs (a method's retain set).
    """
    from tui_unlearn.algorithms import get_algorithm
    from tui_unlearn.recipes.plan import resolve_settings

    for name, param in SETTINGS.items():
        param.check(getattr(config, name))
    # The recipe decides the training sets of a benchmark, the generation length and the sample size.
    config = resolve_settings(config, training=training)
    algorithm = get_algorithm(config.algorithm)
    hparams = algorithm.parse_hparams(config.hparams)
    run = method_run_defaults(algorithm, config.model, lora=bool(config.lora_r))
    dependent = {
        name: getattr(config, name) if getattr(config, name) is not None else SETTINGS[name].parse(run[name])
        for name in METHOD_DEFAULTED
    }

    retain, holdout = config.retain, config.holdout
    default_retain, default_holdout = bundled_defaults(config.forget, config.model)
    retain = default_retain if retain is None else retain
    holdout = default_holdout if holdout is None else holdout
    if config.report_to != "none":
        from tui_unlearn.engine.trackers import require_trackers

        require_trackers(config.report_to)
    if training:
        if algorithm.needs_retain and not retain and not config.general_retain:
            raise ConfigError(
                f"{algorithm.name} needs a retain set: pass --retain PATH (or drop --no-general-retain to train "
                "on the original's answers to general instructions)"
            )
        _check_training_settings(config, algorithm, hparams)
    oracle = config.oracle
    if oracle is None and config.forget == DEFAULT_ORACLE_FORGET:
        oracle = DEFAULT_ORACLE
    # With LoRA the base weights are frozen and hold no gradients or optimizer state, so the
    # activations are most of training's memory: checkpointing them is the default there, as
    # TRL's trainers and peft's k-bit preparation do (SmolLM2-135M LoRA: 2.38 -> 1.82 GB peak).
    checkpointing = config.gradient_checkpointing
    if checkpointing is None:
        checkpointing = bool(config.lora_r)
    resolved = replace(
        config,
        hparams=hparams,
        retain=retain or None,
        holdout=holdout or None,
        oracle=oracle,
        gradient_checkpointing=checkpointing,
        **dependent,
    )
    # The method's defaults filled steps, lr and batch_size, the recipe the evaluation's settings.
    return cast(ResolvedConfig, resolved)


def _check_training_settings(config: RunConfig, algorithm: Any, hparams: dict[str, Any]) -> None:
    """Settings that cannot work together fail here, before any session exists."""
    if config.lora_r:
        from tui_unlearn.models.lora import require_peft

        require_peft()
    elif config.save_adapter:
        raise ConfigError("--save-adapter saves LoRA adapters: add --lora-r R (or use --save-model)")
    if config.mixed_precision == "fp16" and config.dtype == "float16" and not config.lora_r:
        raise ConfigError(
            "fp16 mixed precision needs float32 weights to train (the loss scaler cannot update fp16 weights); "
            "use --dtype float32, --mixed-precision bf16, or LoRA"
        )
    if (config.stop_when or config.keep_best) and not config.eval_every:
        flag = "--stop-when" if config.stop_when else "--keep-best"
        raise ConfigError(f"{flag} judges the evaluations during the run: set --eval-every N (N > 0)")
    if algorithm.check_config is not None:
        problem = algorithm.check_config(config, hparams)
        if problem:
            raise ConfigError(problem)
