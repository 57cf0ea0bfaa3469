"""Checking a model's weights: a folder's safetensors files before transformers reads them,
and (``check_weights_match``) that what it read fills the architecture.

transformers' own errors for a damaged folder are a bare "No such file or directory", a
missing-file message for a dangling link, or nothing at all: integer (quantized) tensors
are cast to float and the model runs as garbage. Reading each file's header here costs
milliseconds and lets every failure name the file and the reason.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from tui_unlearn.errors import ModelLoadError, first_line

# Checkpoint entries a model may lack or carry without its weights being wrong: buffers that
# older checkpoints saved (rotary frequencies, position ids, GPT-2's causal-mask buffers).
HARMLESS_KEY_SUFFIXES = ("rotary_emb.inv_freq", "position_ids", "attn.masked_bias", "attn.bias")
INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"
FLOAT_DTYPES = {"F64", "F32", "F16", "BF16"}
DTYPE_NAMES = {
    "I8": "int8",
    "U8": "uint8",
    "I16": "int16",
    "U16": "uint16",
    "I32": "int32",
    "U32": "uint32",
    "I64": "int64",
    "U64": "uint64",
    "BOOL": "bool",
    "F8_E4M3": "float8_e4m3",
    "F8_E5M2": "float8_e5m2",
}
# Buffers some checkpoints store as integers next to float weights (GPT-2's causal mask, position ids).
INTEGER_BUFFERS = ("position_ids", "attn.bias", "attn.masked_bias")


def weight_files(folder: Path) -> list[Path]:
    """The files transformers will read: the shards the index names, else model.safetensors."""
    index = folder / INDEX_FILE
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
            shards = sorted(set(weight_map.values()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ModelLoadError(f"{index} is not a readable safetensors index ({first_line(exc, 120)})") from None
        return [folder / name for name in shards]
    single = folder / SINGLE_FILE
    if single.exists() or single.is_symlink():
        return [single]
    others = sorted(p.name for p in folder.glob("*.safetensors"))
    if others:
        raise ModelLoadError(
            f"{folder} has no {SINGLE_FILE} or {INDEX_FILE} (it has {', '.join(others[:3])}); "
            f"a Hugging Face folder names its weights {SINGLE_FILE}"
        )
    raise ModelLoadError(
        f"{folder} has no .safetensors weights; tui-unlearn loads safetensors only (convert the checkpoint first)"
    )


def check_weight_files(folder: Path, quant_method: str | None = None) -> None:
    """Every weights file exists, can be read, is safetensors, and holds float tensors."""
    from safetensors import safe_open

    not_float: dict[str, list[str]] = {}
    for file in weight_files(folder):
        _check_readable(file)
        try:
            with safe_open(str(file), framework="pt") as handle:
                for key in handle.keys():  # noqa: SIM118  (safe_open is not a mapping)
                    dtype = handle.get_slice(key).get_dtype()
                    if dtype not in FLOAT_DTYPES and not key.endswith(INTEGER_BUFFERS):
                        not_float.setdefault(dtype, []).append(key)
        except OSError as exc:
            raise ModelLoadError(f"cannot read {file}: {exc.strerror or first_line(exc)}") from None
        except Exception as exc:  # safetensors' own error type: a damaged or truncated file
            raise ModelLoadError(f"{file} is not a valid safetensors file ({first_line(exc, 150)})") from None
    if not_float:
        dtype, keys = max(not_float.items(), key=lambda item: len(item[1]))
        kind = f"quantized ({quant_method})" if quant_method else "quantized or not model weights"
        raise ModelLoadError(
            f"the weights in {folder} are {DTYPE_NAMES.get(dtype, dtype)} ({len(keys)} tensors, e.g. {keys[0]}): "
            f"{kind}; tui-unlearn trains float weights, so give the float16, bfloat16 or float32 checkpoint"
        )


def _check_readable(file: Path) -> None:
    if not file.exists():
        if file.is_symlink():
            raise ModelLoadError(
                f"{file} is a link to {os.readlink(file)}, which does not exist (an interrupted download? "
                "fetch the model again)"
            )
        raise ModelLoadError(f"{file} is missing (it is listed in {INDEX_FILE}); fetch or copy the model again")
    try:
        mode = file.stat().st_mode
    except OSError as exc:
        raise ModelLoadError(f"cannot read {file}: {exc.strerror or first_line(exc)}") from None
    if stat.S_ISDIR(mode):
        raise ModelLoadError(f"{file} is a folder, not a weights file")
    if not stat.S_ISREG(mode):  # a FIFO or device would block or stream forever
        raise ModelLoadError(f"{file} is not a regular file")
    try:
        with file.open("rb") as f:
            f.read(8)
    except OSError as exc:
        raise ModelLoadError(f"cannot read {file}: {exc.strerror or first_line(exc)}") from None


def _shape_mismatch(entry: Any) -> str:
    if isinstance(entry, tuple) and len(entry) == 3:  # (key, checkpoint shape, shape the config gives)
        key, saved, wanted = entry
        return f"{key}: {tuple(saved)} in the checkpoint, {tuple(wanted)} from config.json"
    return str(entry)


def check_weights_match(
    path: Path,
    loading: dict[str, Any],
    *,
    described_by: str = "its config.json",
    hint: str = "Check that config.json (model_type, architectures, sizes) belongs to these weights",
) -> None:
    """Refuse a model whose checkpoint does not fill its architecture.

    transformers initialises missing tensors at random (with a warning we silence), so a
    folder whose config.json names another architecture than its weights would otherwise
    "load" as a random model and every run on it would look like unlearning.
    """

    def real(keys) -> list[str]:
        return [k for k in keys or () if not str(k).endswith(HARMLESS_KEY_SUFFIXES)]

    missing, unexpected = real(loading.get("missing_keys")), real(loading.get("unexpected_keys"))
    mismatched = sorted(loading.get("mismatched_keys") or (), key=str)
    if not (missing or unexpected or mismatched):
        return
    parts = []
    if missing:
        parts.append(f"{len(missing)} tensors the architecture needs are missing (e.g. {missing[0]})")
    if unexpected:
        parts.append(f"{len(unexpected)} tensors in the checkpoint are not used (e.g. {unexpected[0]})")
    if mismatched:
        parts.append(f"{len(mismatched)} tensors have the wrong shape (e.g. {_shape_mismatch(mismatched[0])})")
    raise ModelLoadError(
        f"the weights in {path} do not match {described_by}: {'; '.join(parts)}; the model would be "
        f"partly random. {hint}"
    )
