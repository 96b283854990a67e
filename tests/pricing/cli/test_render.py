"""`esl-pricing render` (pricing/cli/render.py) on a local Typer app: PNGs, --json, the price
book, previews, and one-line user errors with exit 2."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from pricing.cli.render import register
from pricing.core.database import open_engine
from pricing.store.price_book import PriceBook
from simulator.store import generate_store

runner = CliRunner()
app = typer.Typer(no_args_is_help=True, pretty_exceptions_show_locals=False)


@app.callback()
def _root() -> None:
    """A stand-in for esl-pricing."""


register(app)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("store")
    generate_store(directory, skus=40, seed=7, days=7, gateways=2)
    return directory


@pytest.fixture(scope="module")
def labels(store: Path) -> pd.DataFrame:
    return pd.read_csv(store / "labels.csv", dtype=str)


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["render", *args])
    return result.exit_code, result.stdout, result.stderr


def last_json(stdout: str) -> dict[str, Any]:
    return json.loads(stdout.strip().splitlines()[-1])


def sku_on(labels: pd.DataFrame, tag: str) -> str:
    return str(labels.loc[labels["tag_type"] == tag, "sku"].iloc[0])


def test_render_sku_writes_a_png_per_tag_type_of_its_labels(store: Path, labels: pd.DataFrame, tmp_path: Path) -> None:
    sku = sku_on(labels, "4.2")
    code, out, err = invoke("--sku", sku, "--data", str(store), "--out", str(tmp_path), "--json")
    assert code == 0, err
    files = last_json(out)["files"]
    assert [f["tag_type"] for f in files] == ["4.2"]
    path = Path(files[0]["path"])
    assert path == tmp_path / f"label-{sku}-4.2.png"
    png = path.read_bytes()
    assert files[0]["sha256"] == hashlib.sha256(png).hexdigest()
    assert Image.open(io.BytesIO(png)).size == (400, 300)
    price = int(pd.read_csv(store / "products.csv", dtype={"sku": str}).set_index("sku").loc[sku, "price_cents"])
    assert files[0]["price_cents"] == price and files[0]["reference_cents"] is None
    assert f"wrote {path}" in err


def test_render_with_tag_type_and_default_out_in_cwd(
    store: Path, labels: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    sku = sku_on(labels, "2.9")
    code, out, err = invoke("--sku", sku, "--data", str(store), "--tag-type", "1.54", "--json")
    assert code == 0, err
    assert (tmp_path / f"label-{sku}-1.54.png").is_file()
    assert last_json(out)["files"][0]["path"] == f"label-{sku}-1.54.png"


def test_render_label_to_a_file_and_preview_a_reduction(store: Path, labels: pd.DataFrame, tmp_path: Path) -> None:
    label = str(labels["label_id"].iloc[0])
    target = tmp_path / "one.png"
    code, out, err = invoke("--label", label, "--data", str(store), "--out", str(target), "--json")
    assert code == 0, err
    plain = last_json(out)["files"][0]
    assert plain["path"] == str(target) and plain["tag_type"] == str(labels["tag_type"].iloc[0])
    code, out, err = invoke("--label", label, "--data", str(store), "--out", str(tmp_path / "two.png"),
                            "--price", "0.99", "--reference", "99.99", "--json")
    assert code == 0, err
    preview = last_json(out)["files"][0]
    assert preview["price_cents"] == 99 and preview["reference_cents"] == 9999
    assert preview["sha256"] != plain["sha256"]
    assert "reference 99.99 €" in err


def test_price_and_reference_come_from_the_price_book(store: Path, labels: pd.DataFrame, tmp_path: Path) -> None:
    sku = sku_on(labels, "2.9")
    db = tmp_path / "engine.db"
    book = PriceBook(open_engine(db), str(labels["store"].iloc[0]))
    now = datetime.now(UTC)
    book.seed({sku: 449}, at=now - timedelta(days=60), currency="EUR", source="test")
    book.record({sku: 429}, at=now - timedelta(days=20), currency="EUR", correlation="p1")
    book.record({sku: 479}, at=now - timedelta(days=10), currency="EUR", correlation="p2")
    book.record({sku: 399}, at=now - timedelta(days=1), currency="EUR", correlation="p3")
    code, out, err = invoke("--sku", sku, "--data", str(store), "--db", str(db), "--out", str(tmp_path), "--json")
    assert code == 0, err
    shown = last_json(out)["files"][0]
    assert (shown["price_cents"], shown["reference_cents"], shown["currency"]) == (399, 429, "EUR")
    # A preview below the current price gets the reference the book would give it now.
    code, out, err = invoke("--sku", sku, "--data", str(store), "--db", str(db), "--out", str(tmp_path),
                            "--price", "3.49", "--json")
    assert code == 0, err
    assert (last_json(out)["files"][0]["price_cents"], last_json(out)["files"][0]["reference_cents"]) == (349, 399)
    # A price rise shows no reference.
    book.record({sku: 499}, at=now, currency="EUR", correlation="p4")
    code, out, err = invoke("--sku", sku, "--data", str(store), "--db", str(db), "--out", str(tmp_path), "--json")
    assert code == 0, err
    assert (last_json(out)["files"][0]["price_cents"], last_json(out)["files"][0]["reference_cents"]) == (499, None)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give exactly one of --sku SKU or --label ID"),
        (["--sku", "X", "--label", "Y"], "give exactly one of --sku SKU or --label ID"),
        (["--sku", "no-such-sku"], "sku 'no-such-sku' is not in"),
        (["--label", "no-such-label"], "label 'no-such-label' is not in"),
        (["--sku", "{sku}", "--price", "99999999999.99", "--tag-type", "1.54"],
         'price 99999999999.99 € does not fit the price box of the 1.54" label at 24 px'),
        (["--sku", "{sku}", "--price", "two euros"], "--price: not a money amount"),
        (["--sku", "{sku}", "--price", "0"], "--price: 0 is not a price"),
        (["--sku", "{sku}", "--price", "2.49", "--reference", "1.99"], "--reference 1.99 is not above the price 2.49"),
        (["--sku", "{sku}", "--tag-type", "7.5"], "no label template for tag type '7.5' (templates: 1.54, 2.9, 4.2)"),
        (["--sku", "{sku}", "--currency", "euro"], "--currency must be a 3-letter code"),
        (["--sku", "{sku}", "--db", "{tmp}/missing.db"], "no such file"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(
    store: Path, labels: pd.DataFrame, tmp_path: Path, args: list[str], message: str
) -> None:
    sku = sku_on(labels, "2.9")
    filled = [a.format(sku=sku, tmp=tmp_path) for a in args]
    code, out, err = invoke(*filled, "--data", str(store), "--out", str(tmp_path))
    assert code == 2, (out, err)
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not list(tmp_path.glob("*.png"))


def test_more_errors(store: Path, labels: pd.DataFrame, tmp_path: Path) -> None:
    code, _, err = invoke("--sku", "1", "--data", str(tmp_path / "nowhere"))
    assert code == 2 and "not a directory" in err
    bad = tmp_path / "templates.yaml"
    bad.write_text("tags:\n  '2.9':\n    width: ten\n", encoding="utf-8")
    code, _, err = invoke("--sku", sku_on(labels, "2.9"), "--data", str(store), "--templates", str(bad))
    assert code == 2 and f"{bad}:3: tags.2.9.width: must be a valid integer" in err.splitlines()[-1]
    assert err.splitlines()[0] == f"{bad}:2: tags.2.9.height: required key is missing"


def test_a_sku_on_several_tag_types(store: Path, labels: pd.DataFrame, tmp_path: Path) -> None:
    data = tmp_path / "store"
    data.mkdir()
    (data / "products.csv").write_bytes((store / "products.csv").read_bytes())
    sku = sku_on(labels, "2.9")
    extra = labels.iloc[[0]].assign(label_id="EXTRA-1", sku=sku, tag_type="1.54")
    pd.concat([labels, extra]).to_csv(data / "labels.csv", index=False)
    code, out, err = invoke("--sku", sku, "--data", str(data), "--out", str(tmp_path / "pngs"), "--json")
    assert code == 0, err
    assert [f["tag_type"] for f in last_json(out)["files"]] == ["1.54", "2.9"]
    code, _, err = invoke("--sku", sku, "--data", str(data), "--out", str(tmp_path / "x.png"))
    assert code == 2 and "give a directory or --tag-type" in err
