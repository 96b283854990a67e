"""save_model / load_model / check_model_covers: round trip, model card, and every refusal."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest

from pricing.demand.model import DemandModel
from pricing.demand.model_store import (
    CARD_FILE,
    MODEL_FILE,
    ModelLoadError,
    check_model_covers,
    load_model,
    require_model_covers,
    save_model,
    sku_hash,
)
from pricing.demand.training import TrainingResult, train_demand_model


def make_store_data(n_skus: int = 12, n_days: int = 70, seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Small sales (data-contract shape) and products with known elasticities around -1.5."""
    rng = np.random.default_rng(seed)
    skus = np.array([f"00{i:02d}" for i in range(n_skus)])
    base_price = rng.integers(100, 900, n_skus)
    price = np.round(base_price[:, None] * rng.choice([0.8, 1.0, 1.2], size=(n_skus, n_days))).astype(np.int64)
    rate = rng.uniform(4, 12, n_skus)[:, None] * (price / base_price[:, None]) ** -1.5
    sales = pd.DataFrame(
        {
            "date": np.tile(pd.date_range("2024-05-01", periods=n_days, freq="D"), n_skus),
            "store": "S1",
            "sku": np.repeat(skus, n_days),
            "units": rng.poisson(rate).ravel(),
            "price_cents": price.ravel(),
            "promo": False,
        }
    )
    products = pd.DataFrame({"sku": skus, "category": np.where(np.arange(n_skus) % 2 == 0, "tea", "coffee")})
    return sales, products


@lru_cache(maxsize=1)
def result() -> TrainingResult:
    return train_demand_model(*make_store_data())


def saved(tmp_path: Path) -> Path:
    return save_model(result(), tmp_path / "models")


def rewrite_card(directory: Path, **changes: object) -> None:
    path = directory / CARD_FILE
    card = json.loads(path.read_text())
    card.update(changes)
    path.write_text(json.dumps(card))


def file_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_round_trip_predicts_the_same(tmp_path: Path) -> None:
    path = saved(tmp_path)
    assert path == tmp_path / "models" / MODEL_FILE
    assert (tmp_path / "models" / CARD_FILE).is_file()
    original = result().model
    for where in (path, path.parent, str(path.parent)):
        model, card = load_model(where)
        assert isinstance(model, DemandModel)
        assert list(model.skus_) == list(original.skus_)
        prices = np.tile(np.array([150, 300, 600]), (len(model.skus_), 1))
        assert model.predict_grid(model.skus_, prices) == pytest.approx(original.predict_grid(original.skus_, prices))
        assert card["n_skus"] == 12
    assert sorted(p.name for p in path.parent.iterdir()) == sorted([MODEL_FILE, CARD_FILE])  # no temp files left


def test_model_card_contents(tmp_path: Path) -> None:
    path = saved(tmp_path)
    card = json.loads((path.parent / CARD_FILE).read_text())  # strict JSON: no NaN
    assert card["model_class"] == "pricing.demand.model.DemandModel"
    assert card["params"] == DemandModel().get_params()
    created = datetime.fromisoformat(card["created_at"])
    assert created.utcoffset() == timedelta(0)
    assert (card["data_start"], card["data_end"]) == ("2024-05-01", "2024-07-09")
    assert card["n_rows"] == 12 * 70 and card["n_skus"] == 12
    assert set(card["metrics"]) >= {"wape", "bias", "baseline_wape", "baseline_bias"}
    assert card["features"] == ["sku", "category", "price_cents", "promo", "date"]
    # 70 days of data without promotions: weekday, trend and the substitutes' index, no yearly season yet.
    assert card["model_terms"] == ["own_log_price", "category_price_index", "day_of_week", "trend"]
    assert set(card["category_effects"]) == {"coffee", "tea"}
    assert set(card["category_effects"]["tea"]) == {
        "elasticity", "pooling_strength", "cross_elasticity", "promo_uplift", "trend_per_year", "season_amplitude_log"
    }
    assert 0 <= card["uncertain_skus"] <= 12
    assert set(card["versions"]) == {"python", "numpy", "pandas", "scikit-learn", "joblib"}
    assert card["sku_hash"] == sku_hash([f"00{i:02d}" for i in range(12)])
    assert card["model_sha256"] == file_sha(path)
    by_category = card["elasticity_by_category"]
    assert set(by_category) == {"coffee", "tea"}
    for summary in by_category.values():
        assert summary["n_skus"] == 6
        assert summary["p10"] <= summary["mean"] <= summary["p90"]
        assert -3.0 < summary["mean"] < -0.5


def test_missing_model_file(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="model file not found"):
        load_model(tmp_path)
    with pytest.raises(ModelLoadError, match="model file not found"):
        load_model(tmp_path / "nope.joblib")


def test_missing_card(tmp_path: Path) -> None:
    path = saved(tmp_path)
    (path.parent / CARD_FILE).unlink()
    with pytest.raises(ModelLoadError, match="model card not found"):
        load_model(path.parent)


def test_unreadable_card(tmp_path: Path) -> None:
    path = saved(tmp_path)
    (path.parent / CARD_FILE).write_text("{not json")
    with pytest.raises(ModelLoadError, match="cannot read model card"):
        load_model(path)


def test_card_of_another_model(tmp_path: Path) -> None:
    path = saved(tmp_path)
    other = train_demand_model(*make_store_data(seed=9))
    other_dir = tmp_path / "other"
    save_model(other, other_dir)
    (path.parent / CARD_FILE).write_bytes((other_dir / CARD_FILE).read_bytes())
    with pytest.raises(ModelLoadError, match="describes a different model file"):
        load_model(path)


def test_card_sku_list_mismatch(tmp_path: Path) -> None:
    path = saved(tmp_path)
    rewrite_card(path.parent, sku_hash=sku_hash(["0001"]))
    with pytest.raises(ModelLoadError, match="SKU list does not match"):
        load_model(path)


def test_not_a_demand_model(tmp_path: Path) -> None:
    path = saved(tmp_path)
    joblib.dump({"weights": [1, 2, 3]}, path)
    rewrite_card(path.parent, model_sha256=file_sha(path))
    with pytest.raises(ModelLoadError, match="contains a dict, not a DemandModel"):
        load_model(path)


def test_not_a_joblib_file(tmp_path: Path) -> None:
    path = saved(tmp_path)
    path.write_text("sku,units\n0001,3\n")
    rewrite_card(path.parent, model_sha256=file_sha(path))
    with pytest.raises(ModelLoadError, match="cannot read model"):
        load_model(path)


def test_a_model_saved_before_the_demand_package_moved(tmp_path: Path) -> None:
    """Models pickled when the estimator was pricing.demand.DemandModel: one line that says to retrain."""
    path = saved(tmp_path)
    path.write_bytes(b"\x80\x04cpricing.demand\nDemandModel\n)\x81.")  # GLOBAL, EMPTY_TUPLE, NEWOBJ, STOP
    rewrite_card(path.parent, model_sha256=file_sha(path))
    with pytest.raises(ModelLoadError, match="classes lived elsewhere .* esl-pricing train"):
        load_model(path)


def test_tampered_model_is_refused_before_unpickling(tmp_path: Path) -> None:
    path = saved(tmp_path)
    path.write_text("garbage")
    with pytest.raises(ModelLoadError, match="describes a different model file"):
        load_model(path)


def test_check_model_covers() -> None:
    model = result().model
    assert check_model_covers(model, ["0001", "0002"]) == []
    assert check_model_covers(model, ["0001", "9999", "1", "9999"]) == ["9999", "1"]
    assert check_model_covers(model, iter(["0003"])) == []


def test_a_model_of_another_store_is_refused() -> None:
    model = result().model
    assert require_model_covers(model, ["0001", "0002", "new"], source="m") == ["new"]
    with pytest.raises(ModelLoadError, match=r"m: model was trained on other SKUs: 2 of the 3 SKUs here are unknown"):
        require_model_covers(model, ["0001", "x1", "x2"], source="m")
