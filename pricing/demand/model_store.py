"""Save and load a trained demand model with its model card.

A directory holds ``demand_model.joblib`` (the fitted ``DemandModel``) and
``demand_model.card.json`` (what it is, what it was trained on, how well it did, with which
library versions). The card carries the SHA-256 of the model file and a hash of the SKU list;
loading checks both, so a card never describes some other model.

The card is read and the file's hash checked *before* unpickling. joblib files can run code when
loaded: only load models this engine wrote.
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import sklearn

from pricing.core.files import atomic_write
from pricing.demand.model import DemandModel
from pricing.demand.model_view import families
from pricing.demand.training import TrainingResult

MODEL_FILE = "demand_model.joblib"
CARD_SUFFIX = ".card.json"
CARD_FILE = MODEL_FILE.removesuffix(".joblib") + CARD_SUFFIX
CARD_VERSION = 1


class ModelLoadError(Exception):
    """A saved model cannot be used: missing, unreadable, not a DemandModel, or card mismatch."""


def save_model(result: TrainingResult, directory: Path | str) -> Path:
    """Write the model and its card into ``directory``; return the model file's path.

    Both files are written to temporary names and renamed into place, model first, so a reader
    never sees a half-written file; a reader racing a save sees a card/model hash mismatch.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model_path = directory / MODEL_FILE
    atomic_write(model_path, lambda f: joblib.dump(result.model, f))
    card = model_card(result, model_sha256=_sha256(model_path))
    text = json.dumps(card, indent=2, sort_keys=False, allow_nan=False) + "\n"
    atomic_write(_card_path(model_path), lambda f: f.write(text.encode()))
    return model_path


def load_model(path: Path | str) -> tuple[DemandModel, dict[str, Any]]:
    """Load a model saved by ``save_model``: a directory or the ``.joblib`` file. Returns (model, card)."""
    model_path = _model_path(Path(path))
    if not model_path.is_file():
        raise ModelLoadError(f"{model_path}: model file not found")
    card = _read_card(_card_path(model_path))
    if card.get("model_sha256") != _sha256(model_path):
        raise ModelLoadError(f"{model_path}: model card {_card_path(model_path).name} describes a different model file")
    try:
        model = joblib.load(model_path)
    except (AttributeError, ModuleNotFoundError) as exc:  # a class the pickle names is not where it was
        raise ModelLoadError(
            f"{model_path}: cannot read model: saved by an esl-pricing version whose classes lived elsewhere "
            f"({exc}); train a new one with esl-pricing train (the daemon retrains by itself)"
        ) from None
    except Exception as exc:  # unpickling raises many types
        raise ModelLoadError(f"{model_path}: cannot read model: {exc}") from None
    if not isinstance(model, DemandModel):
        raise ModelLoadError(f"{model_path}: contains a {type(model).__name__}, not a DemandModel")
    if not hasattr(model, "skus_"):
        raise ModelLoadError(f"{model_path}: the DemandModel was saved before it was fitted")
    if card.get("sku_hash") != sku_hash(model.skus_):
        raise ModelLoadError(f"{model_path}: the model card's SKU list does not match the model")
    return model, card


def check_model_covers(model: DemandModel, skus: Iterable[str]) -> list[str]:
    """SKUs the model has never seen (distinct, in order): the engine holds these at their price."""
    return model.unknown_skus(list(skus))


def require_model_covers(model: DemandModel, skus: Sequence[str], *, source: str, max_unknown_share: float = 0.5) -> list[str]:
    """Like ``check_model_covers``, but a model that knows too few of the SKUs is an error.

    A few new SKUs are normal (they are held until the next training); a model that does not
    know most of the store's SKUs was trained on another store's data.
    """
    wanted = list(dict.fromkeys(str(s) for s in skus))
    unknown = check_model_covers(model, wanted)
    if wanted and len(unknown) > max_unknown_share * len(wanted):
        examples = ", ".join(repr(s) for s in unknown[:3])
        raise ModelLoadError(
            f"{source}: model was trained on other SKUs: {len(unknown)} of the {len(wanted)} SKUs here are unknown "
            f"to it (e.g. {examples}); train one on this store's sales with esl-pricing train"
        )
    return unknown


def model_card(result: TrainingResult, *, model_sha256: str) -> dict[str, Any]:
    """The JSON-ready model card for a training result."""
    model = result.model
    return {
        "card_version": CARD_VERSION,
        "model_class": f"{type(model).__module__}.{type(model).__qualname__}",
        "params": _jsonable(model.get_params()),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "data_start": result.data_start.isoformat(),
        "data_end": result.data_end.isoformat(),
        "holdout_start": result.holdout_start.isoformat() if result.holdout_start else None,
        "n_rows": int(result.n_rows),
        "n_skus": int(result.n_skus),
        "zero_days_filled": int(result.zero_days_filled),
        "listing": {k: int(v) for k, v in result.listing.items()},
        "dropped_rows": _dropped_rows(result),
        "data_counts": {name: {k: int(v) for k, v in counts.items()} for name, counts in result.data_counts.items()},
        "training_seconds": round(float(result.seconds), 3),
        "metrics": _jsonable(result.metrics),
        "features": list(result.features),
        "model_terms": model.terms(),
        "category_effects": {
            str(cat): {k: round(float(v), 4) for k, v in row.items()} for cat, row in model.category_table().iterrows()
        },
        "uncertain_skus": int(model.uncertain_.sum()),
        "model_family_by_category": families(model),
        "model_selection": _jsonable(getattr(model, "selection_", None)),
        "bounds_binding": [str(b) for b in getattr(model, "bounds_binding_", [])],
        "elasticity_by_category": elasticity_summary(model),
        "versions": library_versions(),
        "sku_hash": sku_hash(model.skus_),
        "model_file": MODEL_FILE,
        "model_sha256": model_sha256,
    }


def _dropped_rows(result: TrainingResult) -> int:
    """Sales rows read but not trained on: rejected and exact duplicates (when the loader's counts
    are known), plus the rows training itself dropped (SKU not in products)."""
    sales = result.data_counts.get("sales.csv") or result.data_counts.get("receipts.csv", {})
    return int(result.dropped_rows) + int(sales.get("rejected", 0)) + int(sales.get("duplicates", 0))


def elasticity_summary(model: DemandModel) -> dict[str, dict[str, float]]:
    """Per category: number of SKUs, mean, p10 and p90 of the SKU elasticities, and the category's."""
    table = model.elasticities()
    grouped = table.groupby("category", sort=True)["elasticity"]
    summary = pd.DataFrame(
        {
            "n_skus": grouped.size(),
            "mean": grouped.mean(),
            "p10": grouped.quantile(0.1),
            "p90": grouped.quantile(0.9),
            "category_elasticity": model.category_elasticity_,
        }
    )
    return {
        str(cat): {k: (int(v) if k == "n_skus" else round(float(v), 4)) for k, v in row.items()}
        for cat, row in summary.iterrows()
        if row["n_skus"] > 0
    }


def library_versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "scikit-learn": sklearn.__version__,
        "joblib": joblib.__version__,
    }


def sku_hash(skus: Sequence[str] | pd.Index) -> str:
    """SHA-256 of the SKU list in model order, one SKU per line."""
    digest = hashlib.sha256()
    for sku in skus:
        digest.update(str(sku).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def _model_path(path: Path) -> Path:
    return path / MODEL_FILE if path.is_dir() else path


def _card_path(model_path: Path) -> Path:
    return model_path.with_name(model_path.name.removesuffix(".joblib") + CARD_SUFFIX)


def _read_card(card_path: Path) -> dict[str, Any]:
    if not card_path.is_file():
        raise ModelLoadError(f"{card_path}: model card not found (a model without its card is not loaded)")
    try:
        card = json.loads(card_path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{card_path}: cannot read model card: {exc}") from None
    if not isinstance(card, dict) or "model_sha256" not in card:
        raise ModelLoadError(f"{card_path}: not a model card (no model_sha256)")
    return card


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _jsonable(value: Any) -> Any:
    """Plain JSON types; NaN and infinities become None (JSON has no NaN)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if value is None or isinstance(value, str):
        return value
    return str(value)
