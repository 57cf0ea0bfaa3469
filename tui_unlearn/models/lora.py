"""LoRA adapters (peft) for any method: train a few million parameters of an 8 B model.

The reference a method compares with is the same model with its adapters disabled, so
LoRA runs never hold a second copy of the weights. Saving writes either the merged model
(loadable by plain ``AutoModelForCausalLM``) or the adapter alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tui_unlearn.errors import ConfigError

ALL_LINEAR = "all-linear"  # peft: every linear layer of attention and MLP, not the output head


def peft_available() -> bool:
    try:
        import peft  # noqa: F401
    except ImportError:
        return False
    return True


def require_peft() -> None:
    if not peft_available():
        raise ConfigError("--lora-r needs the peft package: pip install 'tui-unlearn[lora]'")


def add_adapters(model: Any, *, r: int, alpha: float | None, dropout: float, targets: list[str], seed: int) -> Any:
    """``model`` wrapped with fresh LoRA adapters (B = 0, so it still computes the original)."""
    import torch
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=r,
        # peft annotates an int, but only divides by it (alpha / r): a float alpha is exact.
        lora_alpha=alpha if alpha is not None else 2.0 * r,  # type: ignore[arg-type]
        lora_dropout=dropout,
        target_modules=list(targets) if targets else ALL_LINEAR,
        task_type="CAUSAL_LM",
    )
    # Adapter initialisation draws from torch's RNG: seed it so runs are reproducible.
    torch.manual_seed(seed)
    try:
        return get_peft_model(model, config)
    except ValueError as exc:
        from tui_unlearn.errors import first_line

        raise ConfigError(f"cannot add LoRA adapters: {first_line(exc)}; check --lora-target names") from None


def is_peft(model: Any) -> bool:
    return hasattr(model, "disable_adapter") and hasattr(model, "merge_and_unload")


def trainable_counts(model: Any) -> tuple[int, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, total


def merged(model: Any) -> Any:
    """The base model with the adapters merged into its weights (in place: call once, at the end)."""
    return model.merge_and_unload() if is_peft(model) else model


def save_adapter(model: Any, folder: Path) -> None:
    """Only the adapter (adapter_config.json + adapter_model.safetensors)."""
    model.save_pretrained(folder, safe_serialization=True)
