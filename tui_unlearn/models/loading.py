"""Finding and loading causal LMs: bundled names, local folders, GGUF files and hub ids.

Weights load from safetensors only (a GGUF file is dequantized into a cached safetensors
folder first), and ``trust_remote_code`` stays off unless the user asked for it: a model
folder is data, not code we run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from tui_unlearn.errors import ConfigError, ModelLoadError, first_line

REMOTE_CODE_HELP = (
    "--trust-remote-code runs the folder's own .py files on this machine with your permissions; "
    "pass it only for a model you trust"
)

# Only what a causal LM needs; never pickled weights (*.bin, *.pt).
HUB_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "*.jinja", "tokenizer*"]


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    path: Path
    device: str
    dtype: str
    source: str | None = None  # how the weights got here when not as saved, e.g. "GGUF Q4_1, dequantized"

    def info(self) -> dict[str, Any]:
        n = sum(p.numel() for p in self.model.parameters())
        size = sum(p.numel() * p.element_size() for p in self.model.parameters())
        return {
            "path": str(self.path),
            "architecture": type(self.model).__name__,
            "parameters": n,
            "device": self.device,
            "dtype": self.dtype,
            "memory_mb": round(size / 2**20, 1),
            "chat_template": bool(getattr(self.tokenizer, "chat_template", None)),
        } | ({"source": self.source} if self.source else {})


def pick_device(requested: str = "auto") -> str:
    import torch

    if requested == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {requested!r} asked for, but CUDA is not available here; use --device cpu")
    if requested == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device 'mps' asked for, but MPS is not available here; use --device cpu")
    if requested not in {"cpu", "mps"} and not requested.startswith("cuda"):
        raise ConfigError(f"unknown device {requested!r}; use auto, cpu, cuda, cuda:N or mps")
    return requested


def pick_dtype(device: str, requested: str = "auto"):
    import torch

    if requested != "auto":
        return getattr(torch, requested)
    if device.startswith("cuda") and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def resolve_model_path(spec: str, models_cache: str | None = None) -> Path:
    """The local folder holding ``spec`` (a bundled name, a local folder, or a hub id), or
    the GGUF file it names (the file itself, or the one in a folder without config.json)."""
    from tui_unlearn.models.bundled import bundled_model_dir, is_bundled
    from tui_unlearn.models.gguf import gguf_in_folder, is_gguf

    if is_bundled(spec):
        return bundled_model_dir(spec)
    path = Path(spec).expanduser()
    if path.exists():
        if not path.is_dir():
            if is_gguf(path):
                return path
            raise ModelLoadError(
                f"model path {path} is a file; give the folder that holds config.json, or a .gguf file"
            )
        if not (path / "config.json").exists():
            found = gguf_in_folder(path)
            if found is not None:
                return found
            raise ModelLoadError(
                f"{path} holds no Hugging Face model (no config.json) and no .gguf file; "
                "give a model folder, a .gguf file or a hub id"
            )
        return path
    looks_local = spec.startswith((".", "/", "~")) or os.sep in spec.rstrip("/").split("/", 1)[-1]
    if looks_local or spec.count("/") != 1:
        raise ModelLoadError(
            f"model {spec!r} not found: not a bundled name (tiny-authors, tiny-authors-retain), "
            "not an existing folder, and not a hub id like owner/name"
        )
    return _download(spec, models_cache)


def _download(repo_id: str, models_cache: str | None) -> Path:
    from huggingface_hub import snapshot_download

    from tui_unlearn.paths import models_cache_dir

    cache = models_cache_dir(models_cache)
    try:
        return Path(snapshot_download(repo_id, cache_dir=str(cache), allow_patterns=HUB_PATTERNS))
    except Exception as exc:  # the hub client raises many types; all mean "not loadable"
        offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
        hint = "it is not in the models cache and HF_HUB_OFFLINE is set" if offline else type(exc).__name__
        raise ModelLoadError(
            f"could not get model {repo_id!r} from the hub ({hint}); check the id or download it first"
        ) from None


def load_model(
    spec: str,
    *,
    device: str = "auto",
    dtype: str = "auto",
    trust_remote_code: bool = False,
    models_cache: str | None = None,
    log: Callable[[str], None] | None = None,
) -> LoadedModel:
    """Load tokenizer and causal LM, in eval mode on the chosen device. ``log`` hears about
    slow steps (dequantizing a GGUF file)."""
    from tui_unlearn.models.gguf import is_gguf

    path = resolve_model_path(spec, models_cache)
    import torch  # noqa: F401  (imported late: the TUI starts without it)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    dev = pick_device(device)
    torch_dtype = pick_dtype(dev, dtype)
    dtype_name = str(torch_dtype).replace("torch.", "")
    if not is_gguf(path):
        model, tokenizer = _load_folder(path, torch_dtype, trust_remote_code)
        source = None
    else:
        from tui_unlearn.models import gguf

        folder, in_memory, found = gguf.prepare(path, torch_dtype, models_cache, log or (lambda message: None))
        # The cached folder is loaded like any other, so it gets the same checks.
        if in_memory is not None:
            model, tokenizer = in_memory
        else:
            assert folder is not None  # prepare gives a folder whenever it gives no model
            model, tokenizer = _load_folder(folder, torch_dtype, False)
        source = f"GGUF {found.quantization}, dequantized to {dtype_name}"
    check_chat_template(path, tokenizer)
    if tokenizer.pad_token_id is None and tokenizer.eos_token_id is not None:
        tokenizer.pad_token = tokenizer.eos_token
    model.to(dev)
    model.eval()
    return LoadedModel(model, tokenizer, path, dev, dtype_name, source)


def _load_folder(path: Path, torch_dtype: Any, trust_remote_code: bool) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tui_unlearn.models.weights import check_weight_files, check_weights_match

    check_weight_files(path, _quant_method(path))
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except Exception as exc:
        if _needs_remote_code(exc):
            raise ModelLoadError(f"{path}'s tokenizer needs its own code; {REMOTE_CODE_HELP}") from None
        raise ModelLoadError(f"could not load the tokenizer from {path}: {first_line(exc, 300)}") from None
    try:
        # transformers types the result as the model alone; output_loading_info=True makes it a pair.
        model, loading = cast(
            tuple[Any, dict[str, Any]],
            AutoModelForCausalLM.from_pretrained(
                path,
                dtype=torch_dtype,
                use_safetensors=True,
                trust_remote_code=trust_remote_code,
                output_loading_info=True,
                # Shape mismatches come back in the loading info (which names them) instead of
                # an error pointing at a report that silenced logging never shows.
                ignore_mismatched_sizes=True,
            ),
        )
    except ValueError as exc:
        if _needs_remote_code(exc):
            raise ModelLoadError(
                f"{path} needs its own model code (auto_map in config.json); {REMOTE_CODE_HELP}"
            ) from None
        raise ModelLoadError(f"{path} does not hold a causal language model: {first_line(exc, 300)}") from None
    except Exception as exc:
        raise ModelLoadError(f"could not load the model from {path}: {first_line(exc, 300)}") from None
    check_weights_match(path, loading)
    return model, tokenizer


def _quant_method(path: Path) -> str | None:
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        return str(config["quantization_config"]["quant_method"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def check_chat_template(path: Path, tokenizer: Any) -> None:
    """Render the chat template on a sample question and answer, the way runs will, so a
    broken template is a load error now rather than a failed run after the session began."""
    from tui_unlearn.data.formatting import answer_ids, build_prompt, has_chat_template

    if not has_chat_template(tokenizer):
        return
    question, answer = "What is the capital of France?", "Paris."
    try:
        build_prompt(tokenizer, question)
        answer_ids(tokenizer, question, answer)
    except Exception as exc:  # jinja2's TemplateError family, or whatever the template raises
        raise ModelLoadError(
            f"the chat template of {path} fails on a sample question ({type(exc).__name__}: {first_line(exc, 150)}); "
            "fix chat_template in its tokenizer_config.json or chat_template.jinja"
        ) from None


def save_model(model, tokenizer, folder: Path) -> None:
    """Save in Hugging Face format with safetensors weights."""
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)


def _needs_remote_code(exc: BaseException) -> bool:
    return "trust_remote_code" in str(exc)
