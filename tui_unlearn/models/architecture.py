"""Finding the parts of a Hugging Face causal LM that methods and regularisers act on."""

from __future__ import annotations

from typing import Any

from tui_unlearn.errors import ConfigError

# Where the decoder blocks live in the common layouts (Llama/Mistral/Qwen, GPT-2, GPT-NeoX, OPT).
LAYER_PATHS = ("model.layers", "transformer.h", "gpt_neox.layers", "model.decoder.layers")


def find_decoder_layers(model: Any):
    """(parent module, attribute name, ModuleList) of the model's decoder blocks, or None."""
    import torch

    base = model
    # Look through wrappers (peft's PeftModel, DDP) to the transformers model.
    for attr in ("module", "base_model", "model"):
        inner = getattr(base, attr, None)
        if inner is not None and hasattr(inner, "config") and not isinstance(inner, torch.nn.ModuleList):
            if any(_resolve(inner, p) is not None for p in LAYER_PATHS):
                base = inner
    for path in LAYER_PATHS:
        parent_path, _, attr = path.rpartition(".")
        parent = _resolve(base, parent_path) if parent_path else base
        layers = getattr(parent, attr, None) if parent is not None else None
        if isinstance(layers, torch.nn.ModuleList):
            return parent, attr, layers
    return None


def decoder_layers(model: Any):
    """The ModuleList of the model's transformer blocks; ConfigError when the layout is unknown."""
    found = find_decoder_layers(model)
    if found is None:
        raise ConfigError(
            f"cannot find the decoder layers of {type(model).__name__} (looked for {', '.join(LAYER_PATHS)}); "
            "this method or regulariser needs them"
        )
    return found[2]


def _resolve(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


LAYER_COUNT_KEYS = ("num_hidden_layers", "n_layer", "num_layers")


def declared_layer_count(spec: str) -> int | None:
    """The decoder layer count a local model declares (config.json, or a GGUF's block_count),
    read without loading it; None for hub ids and anything unreadable. Lets settings that
    depend on it be refused before a run begins."""
    import json
    from pathlib import Path

    from tui_unlearn.models.bundled import bundled_model_dir, is_bundled

    try:
        path = bundled_model_dir(spec) if is_bundled(spec) else Path(spec).expanduser()
        if path.is_dir() and (path / "config.json").is_file():
            config = json.loads((path / "config.json").read_text(encoding="utf-8"))
            config = config.get("text_config", config)  # multimodal configs nest the language model's
            for key in LAYER_COUNT_KEYS:
                if isinstance(config.get(key), int):
                    return int(config[key])
            return None
        from tui_unlearn.models.gguf import gguf_in_folder, is_gguf

        found = path if path.is_file() and is_gguf(path) else gguf_in_folder(path) if path.is_dir() else None
        if found is None:
            return None
        from gguf import GGUFReader

        reader = GGUFReader(str(found))
        architecture = bytes(reader.fields["general.architecture"].parts[-1]).decode()
        field = reader.fields[f"{architecture}.block_count"]
        return int(field.parts[field.data[0]][0])
    except Exception:  # only a hint: the run itself reports a model it cannot load
        return None
