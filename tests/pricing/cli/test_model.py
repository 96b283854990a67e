"""esl-pricing model show: the --json contract, the filters, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pricing.demand.model_store import load_model, save_model
from pricing.demand.training import train_demand_model

pytestmark = pytest.mark.usefixtures("wide_console")

SKU_KEYS = {"sku", "category", "elasticity", "se", "uncertain", "model", "days", "distinct_prices"}
CATEGORY_KEYS = {"category", "model", "n_skus", "mean_elasticity", "elasticity_sd", "n_uncertain"}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model trained on 10 SKUs (tea, coffee) over 60 days; SKU 0004 has 4 distinct prices."""
    rng = np.random.default_rng(11)
    n_skus, n_days = 10, 60
    skus = np.array([f"{i:04d}" for i in range(n_skus)])
    base = rng.integers(100, 900, n_skus)
    factors = np.array([0.8, 0.9, 1.0, 1.1])
    price = np.round(base[:, None] * factors[np.arange(n_days) // 15 % 4][None, :]).astype(np.int64)
    rate = rng.uniform(4, 12, n_skus)[:, None] * (price / base[:, None]) ** -1.5
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
    directory = tmp_path_factory.mktemp("models")
    save_model(train_demand_model(sales, products, holdout_days=7), directory)
    return directory


def last_json(out: str) -> dict:
    return json.loads(out.splitlines()[-1])


def test_json_contract(run, model_dir: Path) -> None:
    code, out, err = run("model", "show", str(model_dir), "--json")
    assert code == 0, err
    payload = last_json(out)
    assert set(payload) == {"model_dir", "skus", "categories", "bounds_binding"}
    assert isinstance(payload["bounds_binding"], list)
    assert [row["sku"] for row in payload["skus"]] == [f"{i:04d}" for i in range(10)]
    assert all(set(row) == SKU_KEYS for row in payload["skus"])
    assert all(set(row) == CATEGORY_KEYS for row in payload["categories"])
    model, _ = load_model(model_dir)
    first = payload["skus"][0]
    assert first["elasticity"] == model.elasticity_[0] and first["se"] == model.elasticity_se_[0]
    assert first["model"] == "loglog" and first["days"] == 60 and first["distinct_prices"] == 4
    assert {c["category"]: c["n_skus"] for c in payload["categories"]} == {"coffee": 5, "tea": 5}
    assert "categories" in err and "SKUs" in err and "0009" in err  # the tables go to stderr


def test_sku_filter(run, model_dir: Path) -> None:
    code, out, err = run("model", "show", str(model_dir), "--sku", "0004", "--json")
    assert code == 0, err
    payload = last_json(out)
    assert [row["sku"] for row in payload["skus"]] == ["0004"]
    assert [c["category"] for c in payload["categories"]] == ["tea"] and payload["categories"][0]["n_skus"] == 5


def test_category_filter(run, model_dir: Path) -> None:
    code, out, _ = run("model", "show", str(model_dir), "--category", "coffee", "--json")
    payload = last_json(out)
    assert code == 0 and {row["category"] for row in payload["skus"]} == {"coffee"} and len(payload["skus"]) == 5


def test_missing_model_dir_is_one_line_exit_2(run, one_line, tmp_path: Path) -> None:
    code, out, err = run("model", "show", str(tmp_path / "nope"), "--json")
    assert code == 2 and one_line(err) and "model file not found" in err and out == ""


def test_unknown_sku_is_one_line_exit_2(run, one_line, model_dir: Path) -> None:
    code, out, err = run("model", "show", str(model_dir), "--sku", "9999", "--json")
    assert code == 2 and one_line(err) and "SKU not in the model: '9999'" in err and out == ""


def test_unknown_category_is_one_line_exit_2(run, one_line, model_dir: Path) -> None:
    code, _, err = run("model", "show", str(model_dir), "--category", "wine")
    assert code == 2 and one_line(err) and "category not in the model: 'wine'" in err
