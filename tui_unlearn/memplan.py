"""A memory plan before loading: what one device holds at the peak of a run, from the config alone.

The model is built on the meta device from its ``config.json`` (no weights are read), so the
parameter counts are exact: the trained model, a distillation student, RMU's trainable
layers and LoRA adapters are made the way the run makes them, on tensors without storage.
The rest follows what the run does, phase by phase (``engine.run``):

- load: the whole model on every process's device (also under FSDP / ZeRO-3: the run loads,
  then evaluates, then ``accelerate.prepare`` shards), and the oracle model evaluated beside it;
- evaluate before (and during the run, with the optimizer state alive): rows x one row's
  activations, KV cache and answer logits (rows as ``metrics.batching`` picks them);
- prepare: a frozen copy of the original only when the method (or ``--kl-retain``) needs
  its logits and there is no LoRA (LoRA: the base with adapters off, no copy); cached
  reference log-probabilities are one no-grad pass in batches of 16 (4 bytes an example kept);
- train: weights, gradients, AdamW's two moments (in the parameters' dtype; LoRA adapters
  in float32 as peft makes them), an ``--l2-anchor`` copy of the trainable weights, and one
  micro-batch's activations at ``--batch-size`` x ``--max-length`` (every layer's saved
  tensors, or only each layer's input with ``--gradient-checkpointing``, plus the logits
  and their float32 log-softmax and gradient).

Host memory (CPU copies of the trainable weights kept by the guard and by calibration) is
reported apart: on a GPU it is not device memory. Pure functions over :class:`Shape` and
:class:`Knobs`; :func:`read_shape` is the only part that touches transformers.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from tui_unlearn.data.sources import SourceSpec
from tui_unlearn.errors import ConfigError, ModelLoadError, first_line

GiB = 2**30
MODES = ("single", "ddp", "fsdp", "zero3")
MODE_NAMES = {"single": "1 process", "ddp": "DDP", "fsdp": "FSDP", "zero3": "ZeRO-3"}
BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
LORA_BYTES = 4  # peft keeps adapters in float32 even on bf16 weights (autocast_adapter_dtype)
REFERENCE_PASS_ROWS = 16  # algorithms.references.reference_logprob_table's batch
# What the framework itself takes once a run is under way and is no tensor of the model: CPU
# kernels' scratch, the allocator's pools, the run's data and bookkeeping (measured by
# bench/bench_memplan.py on a 0.1 M-parameter model, where no tensor counts); on a GPU, the
# CUDA context and kernels outside torch's allocator.
RUNTIME_OVERHEAD = {"cpu": 125 * 2**20, "cuda": 600 * 2**20}
SUGGESTED_LORA_R = 16
STATISTICS_CHUNKS = 4  # float32 temporaries of one scoring chunk alive at once (metrics.scoring)
# Methods whose per-micro-step forward passes with gradient are all alive at once even in one
# process (the rest take the forget term's gradient before the retain pass: backward_early).
HELD_PASSES = {"dpo": 2, "idk_dpo": 2, "distill": 2}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?\s*$", re.IGNORECASE)
_UNITS = {"": GiB, "b": 1, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12, "ki": 2**10, "mi": 2**20, "gi": GiB, "ti": 2**40}


def parse_memory(text: str) -> int:
    """Bytes of ``80GiB``, ``24GB``, ``80G`` (decimal), ``81920MiB``; a bare number is GiB."""
    found = _SIZE.match(str(text))
    if not found:
        raise ConfigError(f"--gpu-memory {text!r} is not a size; give e.g. 80GiB, 24GB or 40960MiB")
    unit = (found.group(2) or "").lower().rstrip("b")
    value = float(found.group(1)) * _UNITS[unit]
    if value < 2**20:
        raise ConfigError(f"--gpu-memory {text!r} is under 1 MiB; give the device's memory, e.g. 80GiB")
    return int(value)


@dataclass(frozen=True)
class Shape:
    """What the plan needs of a model: exact parameter counts (from the meta-device model) and
    the sizes activations scale with."""

    parameters: int  # the loaded model (tied weights once)
    trainable: int  # what the optimizer updates (LoRA adapters, RMU's layers, a student's all)
    student: int  # a separate distillation student's parameters (0: the model itself is trained)
    lora: int  # LoRA adapter parameters (0 without LoRA)
    layers: int  # decoder layers of the trained model
    hidden: int
    intermediate: int
    heads: int
    kv_dim: int  # key (= value) width: kv heads x head dim
    query_dim: int  # heads x head dim
    vocab: int
    gated_mlp: bool
    eager_attention: bool  # attention scores materialised (T x T per head), not SDPA / flash
    largest_layer: int  # parameters of one decoder layer: what FSDP / ZeRO-3 gather at a time
    oracle: int = 0  # parameters of a model oracle evaluated beside the run's model


@dataclass(frozen=True)
class Knobs:
    """The run settings the plan reads (a resolved ``RunConfig``'s, with the target device)."""

    device: str  # "cuda" or "cpu"
    weight_bytes: int  # 4 float32, 2 bf16 / fp16
    compute_bytes: int  # activations: 2 under bf16/fp16 mixed precision or 16-bit weights
    batch_size: int
    max_length: int
    eval_tokens: int  # max_length + max_new_tokens
    eval_rows: int  # sequences per evaluation batch
    grad_accum: int
    gradient_checkpointing: bool
    lora_r: int
    reference_model: bool  # the method (or --kl-retain) runs the original's forward during training
    reference_logprobs: bool  # reference log-probabilities are cached in a pass before training
    streams: int  # forward passes with gradient per micro-step (forget, alternate, retain)
    held_in_one_process: int  # of those, alive at once in one process
    l2_anchor: bool
    host_snapshots: int  # CPU copies of the trainable weights (guard, calibration)
    relearn: bool  # the relearning check trains a copy of the model after the run


@dataclass(frozen=True)
class Plan:
    """Per-device bytes by part, and the peak with the phase it falls in, for one launch mode."""

    mode: str
    devices: int
    parts: dict[str, int]
    phases: dict[str, int]
    host: int

    @property
    def peak(self) -> int:
        return max(self.phases.values())

    @property
    def peak_phase(self) -> str:
        return max(self.phases, key=lambda k: self.phases[k])

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "devices": self.devices,
            "peak_bytes": self.peak,
            "peak_phase": self.peak_phase,
            "parts_bytes": dict(self.parts),
            "phases_bytes": dict(self.phases),
            "host_bytes": self.host,
        }


def layer_activation_elements(shape: Shape, tokens_per_row: int) -> int:
    """Elements one decoder layer saves for the backward pass, per token: its input, the norms'
    outputs, query / key / value, the attention output, and the MLP's intermediates (gate, up,
    the activation and the product for a gated MLP; fc and activation otherwise)."""
    attention = 2 * shape.hidden + shape.query_dim + 2 * shape.kv_dim + shape.query_dim
    mlp = 2 * shape.hidden + (4 if shape.gated_mlp else 2) * shape.intermediate
    scores = 2 * shape.heads * tokens_per_row if shape.eager_attention else 0
    return attention + mlp + scores


def training_activations(shape: Shape, k: Knobs, passes: int) -> int:
    """Bytes alive at the start of the backward pass of one micro-step of ``passes`` forward
    passes with gradient (each ``batch_size`` x ``max_length`` tokens)."""
    tokens = k.batch_size * k.max_length
    per_layer = layer_activation_elements(shape, k.max_length)
    if k.gradient_checkpointing:  # each layer keeps its input; one layer is recomputed at a time
        body = tokens * (shape.layers * shape.hidden + per_layer)
    else:
        body = tokens * shape.layers * per_layer
    body += tokens * 3 * shape.hidden  # embeddings out, final norm in and out
    # Logits in the compute dtype, their float32 copy (none when they already are), the float32
    # log-softmax cross-entropy keeps, and the float32 gradient the backward starts from.
    logits = tokens * shape.vocab * (k.compute_bytes + (4 if k.compute_bytes != 4 else 0) + 8)
    per_pass = body * k.compute_bytes + logits
    reference = tokens * shape.vocab * (k.compute_bytes + 4) if k.reference_model else 0
    return passes * per_pass + reference


def eval_pass(shape: Shape, k: Knobs, rows: int) -> int:
    """Bytes one evaluation batch adds: per row, at the evaluation's longest sequence, the KV
    cache, one layer's live intermediates and the logits (an upper bound: scoring keeps them at
    the answer positions only), plus the float32 statistics scoring computes over them, which
    work in chunks of ``metrics.scoring.CHUNK_BYTES`` (a few temporaries that size at most)."""
    from tui_unlearn.metrics.scoring import CHUNK_BYTES

    positions = rows * k.eval_tokens
    kv = 2 * shape.layers * shape.kv_dim * k.compute_bytes
    live = (4 * shape.hidden + 2 * shape.intermediate) * k.compute_bytes
    statistics = min(positions * shape.vocab * 8, STATISTICS_CHUNKS * CHUNK_BYTES)
    return positions * (kv + live + shape.vocab * k.compute_bytes) + statistics


def reference_pass(shape: Shape, k: Knobs) -> int:
    """Bytes of the no-grad pass that caches reference log-probabilities (batches of 16)."""
    tokens = REFERENCE_PASS_ROWS * k.max_length
    live = (4 * shape.hidden + 2 * shape.intermediate) * k.compute_bytes
    return tokens * (live + shape.vocab * (k.compute_bytes + 8))


def plan(shape: Shape, k: Knobs, mode: str = "single", devices: int = 1) -> Plan:
    """Per-device memory of one run of ``k`` on ``shape`` under ``mode`` over ``devices``."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode}")
    n = 1 if mode == "single" else max(1, devices)
    shard = n if mode in ("fsdp", "zero3") else 1
    w = k.weight_bytes
    weights = shape.parameters * w
    student = shape.student * w
    lora_bytes = shape.lora * LORA_BYTES
    trainable_bytes = LORA_BYTES if k.lora_r else w
    trained = shape.trainable * trainable_bytes
    gradients = trained
    if mode == "zero3":  # float32 master weights and moments, sharded (DeepSpeed's mixed precision)
        optimizer = shape.trainable * (4 + 4 + 4 if trainable_bytes != 4 else 4 + 4)
    else:
        optimizer = 2 * trained
    # The reference: the base with adapters off under LoRA, the original beside a separate
    # student, else a frozen copy.
    reference = weights if k.reference_model and not k.lora_r and not shape.student else 0
    anchor = trained if k.l2_anchor else 0
    # The trained weights during training: sharded under FSDP / ZeRO-3 (plus the layers being
    # gathered: this one and the next, prefetched); a separate student is trained, the original kept.
    model_bytes = (student or weights) + (lora_bytes if k.lora_r else 0)
    if shard > 1:
        gathered = 2 * shape.largest_layer * w
        training_model = model_bytes // shard + gathered
        gradients, optimizer, anchor = gradients // shard, optimizer // shard, anchor // shard
    else:
        training_model = model_bytes
    if mode == "ddp":  # DDP's gradient buckets: one more copy of the gradients
        gradients *= 2
    original_kept = weights if student else 0
    held = k.streams if mode != "single" else min(k.streams, k.held_in_one_process)
    activations = training_activations(shape, k, max(1, held))
    head_gradient = shape.vocab * shape.hidden * trainable_bytes if not k.lora_r else 0
    if shard > 1:
        head_gradient //= shard
    if k.grad_accum > 1:  # the gradients of earlier micro-batches live through the next forward
        step = activations + gradients
    else:  # backward frees each layer's activations as it fills its gradients
        step = max(activations + head_gradient, gradients)
    fixed = RUNTIME_OVERHEAD[k.device]
    evaluation = eval_pass(shape, k, k.eval_rows)
    during = training_model + original_kept + reference + optimizer + anchor
    phases = {
        "load + evaluate before": fixed + weights + evaluation,
        "train step": fixed + during + step,
        "evaluate during run": fixed + during + evaluation,
    }
    if shape.oracle:
        phases["oracle evaluation"] = fixed + weights + shape.oracle * w + evaluation
    if k.reference_logprobs:
        phases["reference pass"] = fixed + weights + reference + student + lora_bytes + reference_pass(shape, k)
    if k.relearn:
        relearner = shape.parameters * w
        phases["relearning check"] = fixed + weights + 4 * relearner + training_activations(shape, k, 1)
    parts = {
        "weights": training_model if shard > 1 else weights + (student if student else 0),
        "gradients": gradients,
        "optimizer": optimizer,
        "reference": reference,
        "lora": lora_bytes if k.lora_r else 0,
        "l2_anchor": anchor,
        "activations": activations,
        "eval_pass": evaluation,
        "runtime": fixed,
    }
    host = k.host_snapshots * shape.trainable * trainable_bytes
    if k.device == "cpu":  # host memory is the device's memory
        for name in ("train step", "evaluate during run"):
            phases[name] += host
    return Plan(mode, n, parts, phases, host)


def plans(shape: Shape, k: Knobs, devices: int) -> dict[str, Plan]:
    return {mode: plan(shape, k, mode, devices) for mode in MODES}


# ---- what makes it fit ----


@dataclass(frozen=True)
class Change:
    flags: str  # the command-line change, e.g. "--lora-r 16"
    peak: int
    mode: str


def _changes(k: Knobs, shape_for_r: Any) -> list[tuple[str, Knobs, Shape | None]]:
    """Single changes of the four knobs, each with the knobs (and shape) it gives."""
    out: list[tuple[str, Knobs, Shape | None]] = []
    if not k.gradient_checkpointing:
        out.append(("--gradient-checkpointing", replace(k, gradient_checkpointing=True), None))
    if k.batch_size > 1:
        factor = 2
        while k.batch_size // factor > 1 and factor < 16:
            factor *= 2
        for f in sorted({2, factor}):
            smaller = max(1, k.batch_size // f)
            flags = f"--batch-size {smaller} --grad-accum {k.grad_accum * f}"
            out.append((flags, replace(k, batch_size=smaller, grad_accum=k.grad_accum * f), None))
    if not k.lora_r and shape_for_r is not None:
        lora_shape = shape_for_r(SUGGESTED_LORA_R)
        if lora_shape is not None:
            lora_k = replace(k, lora_r=SUGGESTED_LORA_R)
            out.append((f"--lora-r {SUGGESTED_LORA_R}", lora_k, lora_shape))
    if k.weight_bytes == 4:
        out.append(("--dtype bfloat16", replace(k, weight_bytes=2, compute_bytes=2), None))
    return out


def suggestions(shape: Shape, k: Knobs, memory: int, devices: int, shape_for_r: Any = None) -> list[Change]:
    """Changes of --gradient-checkpointing, --batch-size/--grad-accum (same effective batch),
    --lora-r and --dtype that bring the peak under ``memory``: each alone where one suffices,
    else the first combination that does (precision, checkpointing, LoRA, then the batch
    split), for 1 process first, then DDP, FSDP and ZeRO-3."""
    singles = _changes(k, shape_for_r)
    for mode in MODES:
        n = 1 if mode == "single" else devices
        found = []
        for flags, knobs, new_shape in singles:
            peak = plan(new_shape or shape, knobs, mode, n).peak
            if peak <= memory:
                found.append(Change(flags, peak, mode))
        if found:
            return found
        knobs, current, chosen = k, shape, []
        for prefix in ("--dtype", "--gradient-checkpointing", "--lora-r", "--batch-size"):
            # The last (largest) split of the batch when several are offered.
            options = [c for c in _changes(knobs, shape_for_r) if c[0].startswith(prefix)]
            if not options:
                continue
            flags, knobs, new_shape = options[-1]
            current = new_shape or current
            chosen.append(flags)
            peak = plan(current, knobs, mode, n).peak
            if peak <= memory:
                return [Change(" ".join(chosen), peak, mode)]
    return []


# ---- reading the model without its weights ----


def read_shape(
    config: Any, *, lora_r: int | None = None, oracle: bool = True, models_cache: str | None = None
) -> Shape:
    """The :class:`Shape` of a resolved ``RunConfig``'s model: its config read, the model built
    on the meta device, the method's student / trainable layers and the LoRA adapters made on it."""
    import torch
    from accelerate import init_empty_weights

    from tui_unlearn.algorithms import get_algorithm
    from tui_unlearn.models.architecture import decoder_layers

    algorithm = get_algorithm(config.algorithm)
    hf_config = read_config(config.model, config.trust_remote_code, models_cache or config.models_cache)
    model = _meta_model(hf_config, config.trust_remote_code)
    total = sum(p.numel() for p in model.parameters())
    trained = model
    with init_empty_weights():
        if algorithm.make_student is not None:
            trained = algorithm.make_student(model, config.hparams)
    student = sum(p.numel() for p in trained.parameters()) if trained is not model else 0
    r = config.lora_r if lora_r is None else lora_r
    lora = 0
    if r:
        from tui_unlearn.models.lora import add_adapters

        with init_empty_weights():
            trained = add_adapters(
                trained, r=r, alpha=config.lora_alpha, dropout=0.0, targets=config.lora_targets, seed=0
            )
        lora = sum(p.numel() for n, p in trained.named_parameters() if "lora_" in n)
    if algorithm.trainable_parameters is not None:
        keep = set(algorithm.trainable_parameters(trained, config.hparams))
        trainable = sum(p.numel() for n, p in trained.named_parameters() if n in keep)
    else:
        trainable = sum(p.numel() for p in trained.parameters() if p.requires_grad)
    text = hf_config.get_text_config() if hasattr(hf_config, "get_text_config") else hf_config
    hidden = int(_first(text, "hidden_size", "n_embd", "d_model"))
    heads = int(_first(text, "num_attention_heads", "n_head"))
    head_dim = int(getattr(text, "head_dim", None) or hidden // heads)
    kv_heads = int(getattr(text, "num_key_value_heads", None) or heads)
    layers_list = decoder_layers(trained)
    first = layers_list[0]
    mlp_linears = [m for name, m in first.named_modules() if "mlp" in name and isinstance(m, torch.nn.Linear)]
    inner = getattr(text, "intermediate_size", None) or getattr(text, "n_inner", None) or 4 * hidden
    attention = getattr(hf_config, "_attn_implementation", None) or "sdpa"
    oracle_params = _oracle_parameters(config, models_cache) if oracle else 0
    return Shape(
        parameters=total,
        trainable=trainable,
        student=student,
        lora=lora,
        layers=len(layers_list),
        hidden=hidden,
        intermediate=int(inner),
        heads=heads,
        kv_dim=kv_heads * head_dim,
        query_dim=heads * head_dim,
        vocab=int(_first(text, "vocab_size")),
        gated_mlp=len(mlp_linears) >= 3 or hasattr(first, "mlp") and hasattr(first.mlp, "gate_proj"),
        eager_attention=attention == "eager",
        largest_layer=max(sum(p.numel() for p in layer.parameters()) for layer in layers_list),
        oracle=oracle_params,
    )


def _first(config: Any, *names: str) -> Any:
    for name in names:
        value = getattr(config, name, None)
        if value:
            return value
    raise ModelLoadError(f"the model's config has no {names[0]}; the plan cannot size this architecture")


def read_config(spec: str, trust_remote_code: bool = False, models_cache: str | None = None) -> Any:
    """The model's transformers config only: config.json of a bundled name or a folder, the
    metadata of a .gguf file, or a hub id's config.json (downloaded alone, no weights)."""
    from transformers import AutoConfig
    from transformers.utils import logging as hf_logging

    from tui_unlearn.models.bundled import bundled_model_dir, is_bundled
    from tui_unlearn.models.gguf import gguf_in_folder, is_gguf

    hf_logging.set_verbosity_error()
    kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code}
    path = bundled_model_dir(spec) if is_bundled(spec) else Path(spec).expanduser()
    if path.is_file() or (path.is_dir() and not (path / "config.json").exists()):
        found = path if is_gguf(path) else gguf_in_folder(path) if path.is_dir() else None
        if found is None:
            raise ModelLoadError(f"{path} holds no config.json and no .gguf file; give a model folder or a hub id")
        where, kwargs["gguf_file"] = str(found.parent), found.name
    elif path.is_dir():
        where = str(path)
    elif spec.count("/") == 1 and not spec.startswith((".", "/", "~")):
        from tui_unlearn.paths import models_cache_dir

        where, kwargs["cache_dir"] = spec, str(models_cache_dir(models_cache))
    else:
        raise ModelLoadError(f"model {spec!r} not found: not a bundled name, an existing folder or a hub id")
    try:
        return AutoConfig.from_pretrained(where, **kwargs)
    except Exception as exc:  # transformers raises many types; all mean "no readable config"
        if "trust_remote_code" in str(exc):
            raise ModelLoadError(f"{spec} needs its own code to describe itself; pass --trust-remote-code") from None
        raise ModelLoadError(f"could not read the config of {spec}: {first_line(exc, 200)}") from None


def _meta_model(hf_config: Any, trust_remote_code: bool) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    try:
        with torch.device("meta"):  # storage-less tensors, tied weights tied (counted once)
            return AutoModelForCausalLM.from_config(hf_config, trust_remote_code=trust_remote_code)
    except Exception as exc:
        raise ModelLoadError(f"cannot build this model from its config: {first_line(exc, 200)}") from None


def _oracle_parameters(config: Any, models_cache: str | None) -> int:
    """Parameters of the oracle when it is a model the run loads and evaluates (0 for none,
    a saved eval session, or one that cannot be read here)."""
    spec = config.oracle
    if not spec or spec == "none" or spec == config.model:
        return 0
    try:
        hf_config = read_config(spec, False, models_cache or config.models_cache)
        return sum(p.numel() for p in _meta_model(hf_config, False).parameters())
    except ModelLoadError:  # a session id or folder: its numbers are read, no model is loaded
        return 0


def knobs_for(config: Any, shape: Shape, *, device: str, memory: int | None = None) -> Knobs:
    """The :class:`Knobs` of a resolved ``RunConfig`` on ``device`` ("cuda" or "cpu") whose
    memory is ``memory`` bytes (None: this machine's RAM for "cpu", else 80 GiB)."""
    from tui_unlearn.algorithms import get_algorithm
    from tui_unlearn.engine.regularisers import ActiveRegularisers
    from tui_unlearn.recipes.plan import resolve_settings

    algorithm = get_algorithm(config.algorithm)
    dtype = config.dtype if config.dtype != "auto" else ("bfloat16" if device == "cuda" else "float32")
    precision = config.mixed_precision if config.mixed_precision != "auto" else ("bf16" if device == "cuda" else "no")
    weight_bytes = BYTES[dtype]
    compute = 2 if precision in ("bf16", "fp16") or weight_bytes == 2 else 4
    has_retain = bool(config.retain) or (algorithm.needs_retain and config.general_retain)
    streams = (1 if algorithm.needs_forget else 0) + (1 if algorithm.alternate_forget else 0) + (1 if has_retain else 0)
    max_new = config.max_new_tokens if config.max_new_tokens is not None else resolve_settings(config).max_new_tokens
    eval_tokens = int(config.max_length) + int(max_new or 0)
    return Knobs(
        device=device,
        weight_bytes=weight_bytes,
        compute_bytes=compute,
        batch_size=int(config.batch_size),
        max_length=int(config.max_length),
        eval_tokens=eval_tokens,
        eval_rows=eval_rows(config, shape, device, memory, weight_bytes, eval_tokens),
        grad_accum=int(config.grad_accum),
        gradient_checkpointing=bool(config.gradient_checkpointing),
        lora_r=int(config.lora_r),
        reference_model=algorithm.needs_reference or ActiveRegularisers.need_reference(config),
        reference_logprobs=bool(algorithm.reference_logprobs),
        streams=max(1, streams),
        held_in_one_process=HELD_PASSES.get(algorithm.name, 1),
        l2_anchor=bool(config.l2_anchor),
        host_snapshots=(1 if config.guard_general or config.guard_knowledge else 0) + (1 if config.calibrate else 0),
        relearn=bool(config.relearn_steps),
    )


def eval_rows(config: Any, shape: Shape, device: str, memory: int | None, width: int, tokens: int) -> int:
    """Sequences per evaluation batch as the run picks them (``metrics.batching``), at most the
    records an evaluation has (``--eval-samples``, ``--probe-samples``)."""
    from tui_unlearn.metrics.batching import CPU_ROWS, GPU_MAX_ROWS, row_bytes_of, rows_that_fit

    if config.eval_batch_size:
        rows = int(config.eval_batch_size)
    else:
        if memory is None:
            import psutil

            memory = psutil.virtual_memory().total if device == "cpu" else 80 * GiB
        per_row = row_bytes_of(shape.vocab, shape.hidden, shape.layers, width, tokens)
        cap = CPU_ROWS if device == "cpu" else GPU_MAX_ROWS
        rows = rows_that_fit(memory, shape.parameters * width, per_row, cap=cap)
    records = max(config.eval_samples or 100, config.probe_samples or 0)
    return max(1, min(rows, records * answers_per_record(config)))


def answers_per_record(config: Any) -> int:
    """Sequences an evaluation scores per record: the gold answer, a paraphrase and five
    perturbed answers on the bundled benchmark and TOFU, the answer alone on other data."""
    sources = (config.forget, config.retain, config.holdout)
    with_variants = config.recipe == "tofu" or any(SourceSpec.parse(str(s or "")).is_bundled for s in sources)
    return 7 if with_variants else 1


# ---- the plan of a run config, as the CLI and the TUI show it ----


@dataclass
class PlanReport:
    model: str
    shape: Shape
    knobs: Knobs
    devices: int
    plans: dict[str, Plan]
    memory: int | None  # the device's memory given (--gpu-memory), bytes
    changes: list[Change]

    def fits(self, mode: str) -> bool | None:
        return None if self.memory is None else self.plans[mode].peak <= self.memory

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "device": self.knobs.device,
            "devices": self.devices,
            "memory_bytes": self.memory,
            "shape": asdict(self.shape),
            "settings": asdict(self.knobs),
            "plans": {mode: {**p.to_json(), "fits": self.fits(mode)} for mode, p in self.plans.items()},
            "makes_it_fit": [asdict(c) for c in self.changes],
        }

    def one_line(self) -> str:
        """The TUI's summary: the peak of one process, and what shards bring it to."""
        single = self.plans["single"]
        where = "GPU" if self.knobs.device == "cuda" else "CPU"
        fsdp = self.plans["fsdp"]
        return (
            f"plan: {gib(single.peak)} peak on one {where} ({single.peak_phase}); "
            f"FSDP x{self.devices}: {gib(fsdp.peak)} a device; "
            f"{_count(self.shape.trainable)} of {_count(self.shape.parameters)} parameters trained"
        )

    def text(self) -> str:
        k, shape = self.knobs, self.shape
        where = "GPU" if k.device == "cuda" else "CPU"
        dtype = {4: "float32", 2: "16-bit"}[k.weight_bytes]
        lines = [
            f"memory plan for {self.model}: {_count(shape.parameters)} parameters ({dtype} weights), "
            f"{_count(shape.trainable)} trained; batch {k.batch_size} x {k.max_length} tokens, "
            f"grad-accum {k.grad_accum}, gradient checkpointing {'on' if k.gradient_checkpointing else 'off'}, "
            f"LoRA r {k.lora_r}; per {where}, {self.devices} devices for DDP / FSDP / ZeRO-3",
            "",
        ]
        header = f"{'':24}" + "".join(f"{MODE_NAMES[m]:>12}" for m in MODES)
        lines.append(header)
        for part in self.plans["single"].parts:
            lines.append(
                f"{part.replace('_', ' '):24}" + "".join(f"{gib(self.plans[m].parts[part]):>12}" for m in MODES)
            )
        lines.append(f"{'peak':24}" + "".join(f"{gib(self.plans[m].peak):>12}" for m in MODES))
        lines.append(f"{'  in phase':24}" + "".join(f"{_short(self.plans[m].peak_phase):>12}" for m in MODES))
        if self.plans["single"].host:
            lines.append(f"{'host copies (RAM)':24}" + "".join(f"{gib(self.plans[m].host):>12}" for m in MODES))
        if self.memory is not None:
            lines.append(
                f"{'fits ' + gib(self.memory):24}" + "".join(f"{'yes' if self.fits(m) else 'no':>12}" for m in MODES)
            )
            if not self.fits("single"):
                if self.changes:
                    shown = "; ".join(f"{c.flags} ({gib(c.peak)}, {MODE_NAMES[c.mode]})" for c in self.changes)
                    lines.append(f"makes it fit: {shown}")
                else:
                    lines.append(
                        "nothing among --gradient-checkpointing, --batch-size/--grad-accum, --lora-r and --dtype makes it fit"
                    )
        lines.append("")
        lines.append(
            "Sequences counted at the full --max-length, evaluations at --max-length + --max-new-tokens "
            f"in batches of {k.eval_rows}; the model is loaded whole on every device before sharding."
        )
        return "\n".join(lines)


def gib(value: int) -> str:
    return f"{value / GiB:.2f} GiB" if value >= GiB / 10 else f"{value / 2**20:.0f} MiB"


def _count(n: int) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return str(n)


def _short(phase: str) -> str:
    return {"load + evaluate before": "load", "evaluate during run": "eval", "train step": "train"}.get(
        phase, phase.split()[0]
    )


def target_device(config: Any, memory: int | None) -> str:
    """ "cuda" (any accelerator) or "cpu": the device the plan is for."""
    if config.device == "cpu":
        return "cpu"
    if config.device != "auto" or memory is not None:
        return "cuda"
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


_SHAPES: dict[str, Shape] = {}  # by what a shape depends on: the TUI replans as knobs change


def cached_shape(config: Any, lora_r: int | None = None) -> Shape:
    """:func:`read_shape`, remembered per model, method, hyperparameters, LoRA and oracle."""
    import json

    key = json.dumps(
        [
            config.model,
            config.models_cache,
            config.trust_remote_code,
            config.algorithm,
            config.hparams,
            config.lora_r if lora_r is None else lora_r,
            config.lora_alpha,
            list(config.lora_targets),
            config.oracle,
        ],
        sort_keys=True,
        default=str,
    )
    if key not in _SHAPES:
        _SHAPES[key] = read_shape(config, lora_r=lora_r)
    return _SHAPES[key]


def make_plan(config: Any, *, memory: int | None = None, devices: int = 8) -> PlanReport:
    """The plan of a resolved ``RunConfig``: every mode, whether it fits ``memory``, what would."""
    shape = cached_shape(config)
    device = target_device(config, memory)
    knobs = knobs_for(config, shape, device=device, memory=memory)
    all_plans = plans(shape, knobs, devices)
    changes: list[Change] = []
    if memory is not None and all_plans["single"].peak > memory:
        changes = suggestions(shape, knobs, memory, devices, lambda r: cached_shape(config, lora_r=r))
    return PlanReport(config.model, shape, knobs, devices, all_plans, memory, changes)
