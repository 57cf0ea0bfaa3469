"""The retain-only oracle and the field's top-level metrics measured against it.

Forget quality (TOFU) compares the evaluated model's per-example forget truth ratios with
the oracle's; privacy leakage (MUSE) compares its forget-vs-holdout membership AUC with
the oracle's. So an oracle is summarised by an ``OracleReference``: its per-example
forget truth ratios and its MIA AUCs. It comes from

- a saved session of kind "eval" (``tui-unlearn eval --model ORACLE``), whose summary
  stores the reference under ``oracle_reference``: nothing is loaded;
- a model spec (bundled name, folder, hub id): the oracle is evaluated on the run's forget
  and holdout samples (scoring only, no generation). For local models the result is cached
  as JSON under ``<sessions dir>/.oracle-cache/`` keyed by the model's weights and the
  samples, so later runs reuse it.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from tui_unlearn import events as ev
from tui_unlearn.errors import ConfigError

ORACLE_REFERENCE_KEY = "oracle_reference"
PRIVLEAK_ATTACK = "min_k"  # MUSE's PrivLeak uses Min-K% Prob (Min-40%)
CACHE_DIR = ".oracle-cache"  # under the sessions dir; not a session (starts with a dot)
FIELD_KEYS = ("forget_quality", "model_utility", "privleak")


@dataclass
class OracleReference:
    source: str  # the --oracle value as given
    origin: str  # "model" (evaluated now), "cache", "session" or "self"
    forget_truth_ratios: list[float] = field(default_factory=list)
    mia_aucs: dict[str, float] = field(default_factory=dict)

    @property
    def mia_auc(self) -> float | None:
        return self.mia_aucs.get(f"mia_auc_{PRIVLEAK_ATTACK}")

    def describe(self) -> dict[str, Any]:
        """What a summary records about the oracle (not the per-example ratios)."""
        return {
            "source": self.source,
            "origin": self.origin,
            "forget_records": len(self.forget_truth_ratios),
            "privleak_attack": PRIVLEAK_ATTACK,
            **self.mia_aucs,
        }


def reference_payload(result, **meta: Any) -> dict[str, Any]:
    """The ``oracle_reference`` an eval session stores: forget truth ratios and MIA AUCs."""
    forget = result.aggregates.get("forget", {})
    return {
        "forget_truth_ratios": [float(x) for x in result.truth_ratios.get("forget", [])],
        "mia_aucs": {k: float(v) for k, v in forget.items() if k.startswith("mia_auc_")},
        **meta,
    }


def from_result(result, source: str, origin: str) -> OracleReference:
    p = reference_payload(result)
    return OracleReference(source, origin, p["forget_truth_ratios"], p["mia_aucs"])


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def field_metrics(result, oracle: OracleReference | None) -> dict[str, float | None]:
    """forget_quality, model_utility, privleak and the model's MIA AUC for one evaluation.

    model_utility needs only a retain split; the other two need an oracle (else None).
    NaN (a missing ingredient) becomes None so summaries stay valid JSON.
    """
    from tui_unlearn.metrics import mia, tofu
    from tui_unlearn.metrics.evaluate import model_utility_from

    out: dict[str, Any] = {key: None for key in FIELD_KEYS}
    if "retain" in result.aggregates:
        out["model_utility"] = model_utility_from(result.aggregates["retain"])
    auc = result.aggregates.get("forget", {}).get(f"mia_auc_{PRIVLEAK_ATTACK}")
    out["mia_auc"] = auc
    if oracle is not None:
        ratios = result.truth_ratios.get("forget", [])
        if ratios and oracle.forget_truth_ratios:
            out["forget_quality"] = tofu.forget_quality(ratios, oracle.forget_truth_ratios)
        if auc is not None and oracle.mia_auc is not None:
            out["privleak"] = mia.privleak(auc, oracle.mia_auc)
    return {k: _clean(v) for k, v in out.items()}


# ---- finding the oracle ----

def find_oracle_session(spec: str, root: Path):
    """The saved session ``spec`` names (a folder or an id under ``root``), or None."""
    from tui_unlearn.models.bundled import is_bundled
    from tui_unlearn.paths import is_safe_name
    from tui_unlearn.sessions import Session, is_session_dir, open_session

    path = Path(spec).expanduser()
    if is_session_dir(path):
        return Session(path)
    if is_bundled(spec) or not is_safe_name(spec) or not root.is_dir():
        return None
    try:
        return open_session(root, spec)
    except ConfigError:
        return None


def reference_from_session(session, spec: str) -> OracleReference:
    payload = session.summary().get(ORACLE_REFERENCE_KEY)
    if not isinstance(payload, dict) or not payload.get("forget_truth_ratios"):
        raise ConfigError(
            f"session {session.id} holds no oracle evaluation; make one with "
            "'tui-unlearn eval --model ORACLE' and pass that session to --oracle"
        )
    return OracleReference(
        spec, "session", [float(x) for x in payload["forget_truth_ratios"]], dict(payload.get("mia_aucs") or {})
    )


def _fingerprint(spec: str, models_cache: str | None) -> str | None:
    """Size and mtime of a local model's weights (None for hub ids: not cached)."""
    from tui_unlearn.models.bundled import bundled_model_dir, is_bundled

    try:
        folder = bundled_model_dir(spec) if is_bundled(spec) else Path(spec).expanduser()
    except Exception:
        return None
    if not folder.is_dir():
        return None
    parts = [str(folder.resolve())]
    for f in sorted(folder.glob("*.safetensors")):
        st = f.stat()
        parts.append(f"{f.name}:{st.st_size}:{st.st_mtime_ns}")
    return "|".join(parts) if len(parts) > 1 else None


def _records_digest(records: list[dict]) -> str:
    text = json.dumps(records, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def resolve_oracle(
    config,
    splits: dict[str, list[dict]],
    root: Path,
    emit: Callable[[ev.Event], None],
) -> OracleReference | None:
    """The run's oracle reference (None when ``config.oracle`` is None or "none").

    Raises ConfigError for a session without a reference and ModelLoadError for a model
    that cannot be loaded.
    """
    spec = config.oracle
    if spec is None or spec.strip().lower() == "none":
        return None
    session = find_oracle_session(spec, root)
    if session is not None:
        ref = reference_from_session(session, spec)
        emit(ev.Log(f"oracle: reusing the evaluation saved in session {session.id}"))
        return ref

    oracle_splits = {name: splits[name] for name in ("forget", "holdout") if name in splits}
    fingerprint = _fingerprint(spec, config.models_cache)
    cache_file = None
    if fingerprint is not None:
        key = hashlib.sha256(
            json.dumps(
                [fingerprint, config.dtype, config.max_length, _records_digest(oracle_splits.get("forget", [])),
                 _records_digest(oracle_splits.get("holdout", []))]
            ).encode("utf-8")
        ).hexdigest()[:24]
        cache_file = root / CACHE_DIR / f"{key}.json"
        if cache_file.is_file():
            try:
                data = json.loads(cache_file.read_text(encoding="utf-8"))
                emit(ev.Log(f"oracle: reusing the cached evaluation of {spec}"))
                return OracleReference(spec, "cache", data["forget_truth_ratios"], data["mia_aucs"])
            except (OSError, ValueError, KeyError):
                pass  # a broken cache entry: evaluate again

    ref = evaluate_oracle(config, spec, oracle_splits, emit)
    if cache_file is not None:
        from tui_unlearn.sessions import atomic_write_json

        try:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_json(cache_file, {"source": spec, **asdict(ref)})
        except OSError:
            pass  # caching is an optimisation only
    return ref


def evaluate_oracle(config, spec: str, splits: dict[str, list[dict]], emit) -> OracleReference:
    """Load the oracle model and score it on the forget (and holdout) samples."""
    import torch

    from tui_unlearn.metrics.evaluate import evaluate_splits
    from tui_unlearn.models.loading import load_model

    emit(ev.Log(f"oracle: evaluating {spec}"))
    loaded = load_model(
        spec,
        device=config.device,
        dtype=config.dtype,
        trust_remote_code=config.trust_remote_code,
        models_cache=config.models_cache,
    )
    with torch.no_grad():
        result = evaluate_splits(
            loaded.model, loaded.tokenizer, splits, batch_size=32, generate=False, field_metrics=True
        )
    del loaded
    return from_result(result, spec, "model")
