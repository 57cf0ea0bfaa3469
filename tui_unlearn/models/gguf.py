"""GGUF files (llama.cpp's format) as models to unlearn from.

transformers reads a GGUF and dequantizes it (``gguf_file=``); training needs float weights
anyway, so a quantized file becomes an ordinary float model. Dequantizing and rebuilding the
tokenizer take long (SmolLM2-135M Q4_1: about 30 s on two cores, against about 1 s to read
the same weights as safetensors), so the result is kept in the models cache as a normal
Hugging Face folder, keyed by the file's size, modification time and a hash of its ends,
and the dtype it was dequantized to. Every later run loads that folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from tui_unlearn.errors import ModelLoadError, first_line

SUFFIX = ".gguf"
CACHE_SUBDIR = "gguf"
INSTALL_HINT = "pip install 'tui-unlearn[gguf]'"
# Hash only the ends of the file: its header (metadata and tensor table) and its last
# tensors. With size and mtime this tells files apart without reading gigabytes each run.
HASHED_BYTES = 4 * 2**20
SOURCE_FILE = "gguf_source.json"


def is_gguf(path: Path) -> bool:
    return path.suffix.lower() == SUFFIX


def gguf_in_folder(folder: Path) -> Path | None:
    """The one GGUF file in ``folder`` (a folder without config.json), else None;
    ModelLoadError when there are several to choose from."""
    found = sorted(p for p in folder.iterdir() if is_gguf(p) and p.is_file())
    if len(found) > 1:
        names = ", ".join(p.name for p in found[:4]) + (", ..." if len(found) > 4 else "")
        raise ModelLoadError(f"{folder} holds {len(found)} GGUF files ({names}); give the one to load as --model FILE")
    return found[0] if found else None


@dataclass(frozen=True)
class GGUFFile:
    path: Path
    architecture: str
    quantization: str  # "Q4_1", "Q8_0", "F16", ... (llama.cpp's file type)


def inspect(path: Path) -> GGUFFile:
    """Read the file's header (memory-mapped, no tensors) and refuse an architecture
    transformers cannot load, before any slow work."""
    try:
        from gguf import GGUFReader, LlamaFileType
    except ImportError:
        raise ModelLoadError(f"loading a .gguf model needs the gguf package: {INSTALL_HINT}") from None
    from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

    try:
        reader = GGUFReader(str(path))
        architecture = _string_field(reader, "general.architecture")
    except OSError as exc:
        raise ModelLoadError(f"cannot read {path}: {exc.strerror or first_line(exc)}") from None
    except Exception as exc:  # gguf raises ValueError, KeyError, struct errors on damaged files
        raise ModelLoadError(f"{path} is not a valid GGUF file ({first_line(exc, 150)})") from None
    if architecture not in GGUF_SUPPORTED_ARCHITECTURES:
        # The mapping's table also holds the metadata sections "general" and "tokenizer".
        known = sorted(set(GGUF_SUPPORTED_ARCHITECTURES) - {"general", "tokenizer"})
        raise ModelLoadError(
            f"{path} holds a {architecture!r} model, which transformers' GGUF loader does not support "
            f"(it loads {', '.join(known)}); use the model's Hugging Face folder with safetensors instead"
        )
    field = reader.fields.get("general.file_type")
    if field is not None:
        code = int(field.parts[field.data[0]][0])
        try:
            name = LlamaFileType(code).name
        except ValueError:
            name = f"type {code}"
        quantization = name.removeprefix("MOSTLY_").removeprefix("ALL_")
    else:
        kinds = [t.tensor_type.name for t in reader.tensors]
        quantization = max(set(kinds), key=kinds.count) if kinds else "unknown"
    return GGUFFile(path, architecture, quantization)


def _string_field(reader: Any, key: str) -> str:
    field = reader.fields.get(key)
    if field is None:
        raise ValueError(f"no {key} in its metadata")
    return bytes(field.parts[field.data[0]]).decode("utf-8")


def cache_key(path: Path) -> str:
    """Size, mtime and a SHA-256 of the first and last HASHED_BYTES: what changes when the file does."""
    st = path.stat()
    digest = hashlib.sha256(f"{st.st_size}:{st.st_mtime_ns}".encode())
    with path.open("rb") as f:
        digest.update(f.read(HASHED_BYTES))
        if st.st_size > 2 * HASHED_BYTES:
            f.seek(-HASHED_BYTES, os.SEEK_END)
            digest.update(f.read(HASHED_BYTES))
    return digest.hexdigest()[:16]


def cache_folder(path: Path, dtype: str, models_cache: str | None) -> Path:
    from tui_unlearn.paths import models_cache_dir

    stem = "".join(c if c.isalnum() or c in "._-" else "_" for c in path.stem)[:80]
    return models_cache_dir(models_cache) / CACHE_SUBDIR / f"{stem}-{cache_key(path)}-{dtype}"


def is_complete(folder: Path) -> bool:
    return (folder / SOURCE_FILE).is_file() and (folder / "config.json").is_file()


def dequantize(gguf: GGUFFile, torch_dtype: Any) -> tuple[Any, Any]:
    """(model, tokenizer) read from the file by transformers, weights in ``torch_dtype``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf.path.parent), gguf.path.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    except Exception as exc:
        raise ModelLoadError(f"could not read the tokenizer in {gguf.path}: {first_line(exc, 200)}") from None
    from tui_unlearn.models.weights import check_weights_match

    try:
        # transformers types the result as the model alone; output_loading_info=True makes it a pair.
        model, loading = cast(
            tuple[Any, dict[str, Any]],
            AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch_dtype, output_loading_info=True),
        )
    except Exception as exc:
        raise ModelLoadError(f"could not dequantize {gguf.path}: {first_line(exc, 200)}") from None
    # Checked here, not on the cached copy: that one is saved whole, random parts included.
    check_weights_match(
        gguf.path,
        loading,
        described_by=f"the {gguf.architecture} architecture its metadata names",
        hint="The file's metadata does not fit its tensors; convert the model again",
    )
    # The weights are plain floats now; a saved copy that still claimed GGUF quantization
    # would send plain transformers looking for the file.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    for attr in ("hf_quantizer", "quantization_method"):
        if hasattr(model, attr):
            setattr(model, attr, None)
    model.is_quantized = False
    return model, tokenizer


def prepare(
    path: Path, torch_dtype: Any, models_cache: str | None, log: Callable[[str], None]
) -> tuple[Path | None, tuple[Any, Any] | None, GGUFFile]:
    """The cached Hugging Face folder for ``path`` at ``torch_dtype``, dequantizing it first when
    it is not cached yet. When the cache cannot be written, (None, (model, tokenizer), info):
    the run goes on with the weights in memory and the next run dequantizes again."""
    gguf = inspect(path)
    dtype = str(torch_dtype).replace("torch.", "")
    try:
        folder = cache_folder(path, dtype, models_cache)
    except OSError as exc:
        raise ModelLoadError(f"cannot read {path}: {exc.strerror or first_line(exc)}") from None
    if is_complete(folder):
        log(f"{path.name}: GGUF {gguf.quantization}, dequantized to {dtype} earlier (cached in {folder})")
        return folder, None, gguf
    log(f"{path.name}: dequantizing GGUF {gguf.quantization} ({gguf.architecture}) to {dtype}; the first time is slow")
    started = time.perf_counter()
    model, tokenizer = dequantize(gguf, torch_dtype)
    took = time.perf_counter() - started
    try:
        _store(folder, model, tokenizer, gguf, took)
    except OSError as exc:
        log(f"cannot cache the dequantized weights in {folder.parent} ({exc.strerror or exc}); using them unsaved")
        return None, (model, tokenizer), gguf
    log(f"{path.name}: dequantized in {took:.1f} s; cached in {folder}")
    return folder, None, gguf


def _store(folder: Path, model: Any, tokenizer: Any, gguf: GGUFFile, seconds: float) -> None:
    # Written beside its final place and renamed into it, so a run killed half-way never
    # leaves a folder that looks complete; two runs racing both write and one rename wins.
    folder.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=folder.name + ".", suffix=".partial", dir=folder.parent))
    try:
        model.save_pretrained(partial, safe_serialization=True)
        tokenizer.save_pretrained(partial)
        source = {"gguf": str(gguf.path.resolve()), "quantization": gguf.quantization, "seconds": round(seconds, 2)}
        (partial / SOURCE_FILE).write_text(json.dumps(source, indent=1))
        try:
            partial.rename(folder)
        except OSError:
            if not is_complete(folder):  # not another run that finished first
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
