"""Finding and loading causal LMs: bundled names, local folders and hub ids.

Weights load from safetensors only, and ``trust_remote_code`` stays off unless the user
asked for it: a model folder is data, not code we run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tui_unlearn.errors import ConfigError, ModelLoadError, first_line

# Checkpoint entries a model may lack or carry without its weights being wrong: buffers that
# older checkpoints saved (rotary frequencies, position ids, GPT-2's causal-mask buffers).
HARMLESS_KEY_SUFFIXES = ("rotary_emb.inv_freq", "position_ids", "attn.masked_bias", "attn.bias")
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
        }


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
    """The local folder holding ``spec``: a bundled name, a local folder, or a hub id."""
    from tui_unlearn.models.bundled import bundled_model_dir, is_bundled

    if is_bundled(spec):
        return bundled_model_dir(spec)
    path = Path(spec).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelLoadError(f"model path {path} is a file; give the folder that holds config.json")
        if not (path / "config.json").exists():
            raise ModelLoadError(
                f"{path} holds no Hugging Face model (no config.json); give a model folder or a hub id"
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
) -> LoadedModel:
    """Load tokenizer and causal LM, in eval mode on the chosen device."""
    path = resolve_model_path(spec, models_cache)
    if not any(path.glob("*.safetensors")):
        raise ModelLoadError(
            f"{path} has no .safetensors weights; tui-unlearn loads safetensors only (convert the checkpoint first)"
        )
    import torch  # noqa: F401  (imported late: the TUI starts without it)
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    dev = pick_device(device)
    torch_dtype = pick_dtype(dev, dtype)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except Exception as exc:
        if _needs_remote_code(exc):
            raise ModelLoadError(f"{path}'s tokenizer needs its own code; {REMOTE_CODE_HELP}") from None
        raise ModelLoadError(f"could not load the tokenizer from {path}: {first_line(exc, 300)}") from None
    try:
        model, loading = AutoModelForCausalLM.from_pretrained(
            path,
            dtype=torch_dtype,
            use_safetensors=True,
            trust_remote_code=trust_remote_code,
            output_loading_info=True,
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
    if tokenizer.pad_token_id is None and tokenizer.eos_token_id is not None:
        tokenizer.pad_token = tokenizer.eos_token
    model.to(dev)
    model.eval()
    return LoadedModel(model, tokenizer, path, dev, str(torch_dtype).replace("torch.", ""))


def save_model(model, tokenizer, folder: Path) -> None:
    """Save in Hugging Face format with safetensors weights."""
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)


def _needs_remote_code(exc: BaseException) -> bool:
    return "trust_remote_code" in str(exc)


def check_weights_match(path: Path, loading: dict[str, Any]) -> None:
    """Refuse a model whose checkpoint does not fill its architecture.

    transformers initialises missing tensors at random (with a warning we silence), so a
    folder whose config.json names another architecture than its weights would otherwise
    "load" as a random model and every run on it would look like unlearning.
    """

    def real(keys) -> list[str]:
        return [k for k in keys or () if not str(k).endswith(HARMLESS_KEY_SUFFIXES)]

    missing, unexpected = real(loading.get("missing_keys")), real(loading.get("unexpected_keys"))
    mismatched = list(loading.get("mismatched_keys") or ())
    if not (missing or unexpected or mismatched):
        return
    parts = []
    if missing:
        parts.append(f"{len(missing)} tensors the architecture needs are missing (e.g. {missing[0]})")
    if unexpected:
        parts.append(f"{len(unexpected)} tensors in the checkpoint are not used (e.g. {unexpected[0]})")
    if mismatched:
        parts.append(f"{len(mismatched)} tensors have the wrong shape")
    raise ModelLoadError(
        f"the weights in {path} do not match its config.json: {'; '.join(parts)}; the model would be "
        "partly random. Check that config.json (model_type, architectures, sizes) belongs to these weights"
    )
