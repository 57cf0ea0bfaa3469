"""The retain-only oracle: what the headline metrics compare an evaluated model with.

Forget quality (TOFU) compares the evaluated model's per-example forget truth ratios with
the oracle's (or, on forget records without perturbed answers, their per-example answer
losses: ``recipes.headline``); privacy leakage (MUSE) compares its forget-vs-holdout
membership AUC with the oracle's. So an oracle is summarised by an ``OracleReference``:
its per-example forget truth ratios and answer losses, its MIA AUCs, and which records
they were measured on (the recipe, its forget split and an id per forget and holdout
record). It comes from

- a saved session of kind "eval" (``tui-unlearn eval --model ORACLE``), whose summary
  stores the reference under ``oracle_reference``: nothing is loaded, but a session that
  evaluated other records than this run (another recipe, split or sample) is refused,
  with what differs;
- a model spec (bundled name, folder, hub id): the oracle is evaluated on the run's forget
  and holdout records (scoring only, no generation). For local models the result is cached
  as JSON under ``<sessions dir>/.oracle-cache/`` keyed by the model's weights and the
  records, so later runs reuse it.

The headline numbers themselves are aggregated by the recipe (``recipes.headline``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tui_unlearn import events as ev
from tui_unlearn.errors import ConfigError

ORACLE_REFERENCE_KEY = "oracle_reference"
PRIVLEAK_ATTACK = "min_k"  # MUSE's PrivLeak uses Min-K% Prob (Min-40%)
CACHE_DIR = ".oracle-cache"  # under the sessions dir; not a session (starts with a dot)


@dataclass
class OracleReference:
    source: str  # the --oracle value as given
    origin: str  # "model" (evaluated now), "cache", "session" or "self"
    forget_truth_ratios: list[float] = field(default_factory=list)
    mia_aucs: dict[str, float] = field(default_factory=dict)
    # recipe, forget_split, forget_ids, holdout_ids of the records evaluated (None: unknown)
    identity: dict[str, Any] | None = None
    # mean NLL per answer token of each forget record (nats): forget quality's basis where
    # the records carry no perturbed answers. Empty: measured before it was stored.
    forget_losses: list[float] = field(default_factory=list)

    @property
    def mia_auc(self) -> float | None:
        return self.mia_aucs.get(f"mia_auc_{PRIVLEAK_ATTACK}")

    def describe(self) -> dict[str, Any]:
        """What a summary records about the oracle (not the per-example ratios)."""
        identity = self.identity or {}
        return {
            "source": self.source,
            "origin": self.origin,
            "forget_records": len(self.forget_truth_ratios) or len(self.forget_losses),
            "recipe": identity.get("recipe"),
            "forget_split": identity.get("forget_split"),
            "privleak_attack": PRIVLEAK_ATTACK,
            **self.mia_aucs,
        }


def reference_payload(result, identity: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
    """The ``oracle_reference`` an eval session stores: forget truth ratios and answer
    losses, MIA AUCs and the identity of the records they were measured on
    (``EvalPlan.identity()``)."""
    from tui_unlearn.recipes.headline import answer_losses

    forget = result.aggregates.get("forget", {})
    return {
        "forget_truth_ratios": [float(x) for x in result.truth_ratios.get("forget", [])],
        "forget_losses": answer_losses(result, "forget"),
        "mia_aucs": {k: float(v) for k, v in forget.items() if k.startswith("mia_auc_")},
        **(identity or {}),
        **meta,
    }


def from_result(result, source: str, origin: str, identity: dict[str, Any] | None = None) -> OracleReference:
    p = reference_payload(result)
    return OracleReference(source, origin, p["forget_truth_ratios"], p["mia_aucs"], identity, p["forget_losses"])


def check_same_records(payload: dict[str, Any], identity: dict[str, Any] | None, where: str) -> str | None:
    """Why an oracle evaluation stored as ``payload`` does not fit a run evaluating
    ``identity`` (None when it fits). ``where`` names the oracle in the message."""
    if not identity:
        return None
    theirs = payload.get("forget_ids")
    ours = identity.get("forget_ids") or []
    if theirs is None:  # made before records had ids: the count is all there is to compare
        n = len(payload.get("forget_truth_ratios") or payload.get("forget_losses") or [])
        if n and n != len(ours):
            return (
                f"{where} evaluated {n} forget records and this run evaluates {len(ours)}; make the oracle's "
                "eval session again with this run's --recipe, --forget-split and --eval-samples"
            )
        return None
    differences = []
    for key in ("recipe", "forget_split"):
        if payload.get(key) is not None and payload.get(key) != identity.get(key):
            differences.append(f"{key.replace('_', ' ')} {payload.get(key)} (this run: {identity.get(key)})")
    for split in ("forget", "holdout"):
        a, b = list(payload.get(f"{split}_ids") or []), list(identity.get(f"{split}_ids") or [])
        if split == "holdout" and not a:
            continue
        if set(a) != set(b):
            only_ours = len(set(b) - set(a))
            differences.append(
                f"{len(a)} {split} records (this run: {len(b)}, {only_ours} of them not among the oracle's)"
            )
    if not differences:
        return None
    return (
        f"{where} was evaluated on other records: " + "; ".join(differences) + ". Make the oracle's eval "
        "session with this run's --recipe, --forget-split and --eval-samples, or pass the oracle model"
    )


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


def reference_from_session(session, spec: str, identity: dict[str, Any] | None = None) -> OracleReference:
    """The oracle reference saved in ``session``; ConfigError when it has none, or when
    it was measured on other records than ``identity`` names."""
    payload = session.summary().get(ORACLE_REFERENCE_KEY)
    if not isinstance(payload, dict) or not any(
        payload.get(k) for k in ("forget_truth_ratios", "forget_losses", "mia_aucs")
    ):
        raise ConfigError(
            f"session {session.id} holds no oracle evaluation; make one with "
            "'tui-unlearn eval --model ORACLE' and pass that session to --oracle"
        )
    problem = check_same_records(payload, identity, f"oracle session {session.id}")
    if problem:
        raise ConfigError(problem)
    stored = {k: payload.get(k) for k in ("recipe", "forget_split", "forget_ids", "holdout_ids")}
    return OracleReference(
        spec,
        "session",
        [float(x) for x in payload.get("forget_truth_ratios") or []],
        dict(payload.get("mia_aucs") or {}),
        stored,
        [float(x) for x in payload.get("forget_losses") or []],
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
    *,
    identity: dict[str, Any] | None = None,
    max_length: int = 512,
) -> OracleReference | None:
    """The run's oracle reference (None when ``config.oracle`` is None or "none").

    ``splits`` holds the run's forget and holdout evaluation records, ``identity`` what
    they are (``EvalPlan.identity()``), ``max_length`` the tokens per scored sequence.
    Raises ConfigError for a session without a reference or measured on other records,
    and ModelLoadError for a model that cannot be loaded.
    """
    spec = config.oracle
    if spec is None or spec.strip().lower() == "none":
        return None
    session = find_oracle_session(spec, root)
    if session is not None:
        ref = reference_from_session(session, spec, identity)
        emit(ev.Log(f"oracle: reusing the evaluation saved in session {session.id}"))
        return ref

    oracle_splits: dict[str, list[dict]] = {name: splits[name] for name in ("forget", "holdout") if name in splits}
    fingerprint = _fingerprint(spec, config.models_cache)
    cache_file = None
    if fingerprint is not None:
        key = hashlib.sha256(
            json.dumps(
                [
                    fingerprint,
                    config.dtype,
                    max_length,
                    [getattr(config, k, None) for k in ("prompt_format", "system_prompt", "date_string")],
                    "zlib of the decoded answer tokens",  # what the cached MIA AUCs were computed with
                    _records_digest(oracle_splits.get("forget", [])),
                    _records_digest(oracle_splits.get("holdout", [])),
                ]
            ).encode("utf-8")
        ).hexdigest()[:24]
        cache_file = root / CACHE_DIR / f"{key}.json"
        if cache_file.is_file():
            try:
                data = json.loads(cache_file.read_text(encoding="utf-8"))
                ref = OracleReference(
                    spec, "cache", data["forget_truth_ratios"], data["mia_aucs"], identity, data["forget_losses"]
                )
                emit(ev.Log(f"oracle: reusing the cached evaluation of {spec}"))
                return ref
            except (OSError, ValueError, KeyError):
                pass  # a broken entry, or one written before forget losses were kept: evaluate again

    ref = evaluate_oracle(config, spec, oracle_splits, emit, max_length=max_length)
    ref.identity = identity
    if cache_file is not None:
        from tui_unlearn.sessions import atomic_write_json

        try:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_json(cache_file, {"source": spec, **asdict(ref)})
        except OSError:
            pass  # caching is an optimisation only
    return ref


def evaluate_oracle(
    config, spec: str, splits: dict[str, list[dict]], emit, *, max_length: int = 512
) -> OracleReference:
    """Load the oracle model and score it on the forget (and holdout) records."""
    import torch

    from tui_unlearn.data.formatting import use_run_format
    from tui_unlearn.metrics.batching import EvalBatch
    from tui_unlearn.metrics.evaluate import evaluate_splits
    from tui_unlearn.models.loading import load_model

    emit(ev.Log(f"oracle: evaluating {spec}"))
    loaded = load_model(
        spec,
        device=config.device,
        dtype=config.dtype,
        trust_remote_code=config.trust_remote_code,
        models_cache=config.models_cache,
        log=lambda message: emit(ev.Log(f"oracle: {message}")),
    )
    # Asked in the run's prompt format, for its own family: the same questions the model is asked.
    use_run_format(
        config, loaded.tokenizer, loaded.model, lambda message: emit(ev.Log(f"oracle: {message}")), spec=spec
    )
    length = min(max_length, _context_length(loaded.model) or max_length)
    batch = EvalBatch.for_model(loaded.model, length, config.eval_batch_size, lambda m: emit(ev.Log(f"oracle: {m}")))
    with torch.no_grad():
        result = batch.run(
            lambda rows, model=loaded.model, tokenizer=loaded.tokenizer: evaluate_splits(
                model,
                tokenizer,
                splits,
                batch_size=rows,
                generate=False,
                field_metrics=True,
                max_length=length,
                truth_ratio_splits={"forget"},  # the holdout is a membership baseline: its answers only
            )
        )
    del loaded
    return from_result(result, spec, "model")


def _context_length(model) -> int | None:
    """The model's longest sequence (``max_position_embeddings``), when it says."""
    return getattr(getattr(model, "config", None), "max_position_embeddings", None)
