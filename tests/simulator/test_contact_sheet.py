"""simulator/contact_sheet.py and `esl-pricing simulate contact-sheet`: every label as shoppers
see it, blank labels marked, one PNG per gateway or one for all, exit 2 on bad input."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from label_gateway.label_templates import load_label_templates
from label_gateway.render import LabelContent, render_image
from pricing.cli.simulate import simulate_app
from pricing.core.data import load_labels, load_products
from simulator.contact_sheet import sheet_image, tiles_from_state
from simulator.gateways import load_state
from simulator.store import generate_store

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("store")
    generate_store(directory, skus=30, seed=7, days=7, gateways=2)
    return directory


def write_state(store: Path, path: Path) -> dict[str, Any]:
    """A state file as `simulate run --state` writes it: label i shows its price, every 4th a
    reduction with its reference, every 5th nothing yet; label 1 is dead."""
    labels = pd.read_csv(store / "labels.csv", dtype=str)
    products = pd.read_csv(store / "products.csv", dtype={"sku": str}).set_index("sku")
    records: dict[str, Any] = {}
    for i, row in enumerate(labels.itertuples()):
        price = int(products.loc[row.sku, "price_cents"])
        shown = i % 5 != 4
        reduced = i % 4 == 0
        records[row.label_id] = {
            "gateway": row.gateway, "sku": row.sku,
            "price_cents": (price - 10 if reduced else price) if shown else None,
            "version": 1 if shown else 0, "content_hash": "h" if shown else None,
            "reference_cents": price if shown and reduced else None, "applied_at": None,
            "battery_mv": 2900, "refreshes": int(shown), "dead": i == 1, "regressions": 0,
        }
    gateways = {g: {"state": "online", "labels": int((labels["gateway"] == g).sum()), "counters": {}}
                for g in sorted(labels["gateway"].unique())}
    state = {"format": "esl-simulator-state", "version": 1, "store": "store-001", "prefix": "esl",
             "written_at": "2026-11-02T10:00:00+00:00", "running": False, "battery_low_mv": 2450,
             "gateways": gateways, "labels": records}
    path.write_text(json.dumps(state), encoding="utf-8")
    return state


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(simulate_app, ["contact-sheet", *args])
    return result.exit_code, result.stdout, result.stderr


def test_tiles_follow_the_state_file(store: Path, tmp_path: Path) -> None:
    state = write_state(store, tmp_path / "sim.json")
    tiles = tiles_from_state(load_state(tmp_path / "sim.json"), load_products(store / "products.csv").frame,
                             load_labels(store / "labels.csv").frame, currency="EUR")
    assert list(tiles) == ["gw-01", "gw-02"]
    flat = {t.label_id: t for found in tiles.values() for t in found}
    assert set(flat) == set(state["labels"])
    for label_id, record in state["labels"].items():
        tile = flat[label_id]
        if record["version"] == 0:
            assert tile.content is None and tile.status == "blank"
        else:
            assert tile.content is not None
            assert tile.content.price_cents == record["price_cents"]
            assert tile.content.reference_cents == record["reference_cents"]
            assert tile.content.promo == (record["reference_cents"] is not None)
    dead = [t for t in flat.values() if t.status == "dead"]
    assert len(dead) == 1


def test_each_tile_is_the_rendered_label(store: Path, tmp_path: Path) -> None:
    write_state(store, tmp_path / "sim.json")
    templates = load_label_templates()
    tiles = tiles_from_state(load_state(tmp_path / "sim.json"), load_products(store / "products.csv").frame,
                             load_labels(store / "labels.csv").frame, currency="EUR")
    drawn = sheet_image(tiles, templates, width=1200)
    sheet = np.asarray(drawn.image)
    assert drawn.labels == 30 and drawn.blank == 6 and drawn.problems == 0
    assert sheet[0, 0].tolist() == [230, 230, 230]  # light grey background
    for found in tiles.values():
        for tile in found:
            x, y = drawn.positions[tile.label_id]
            template = templates.tag(tile.tag_type)
            region = sheet[y : y + template.height, x : x + template.width]
            if tile.content is None:
                assert (region == 255).all(axis=2).mean() > 0.95  # white, with a small grey "blank"
                assert not ((region[..., 0] > 200) & (region[..., 1] < 50)).any()  # nothing red
            else:
                expected = np.asarray(render_image(tile.content, template).convert("RGB"))
                assert (region == expected).all()


def test_contact_sheet_command_one_file_per_gateway(store: Path, tmp_path: Path) -> None:
    write_state(store, tmp_path / "sim.json")
    out = tmp_path / "sheets"
    code, stdout, err = invoke("--state", str(tmp_path / "sim.json"), "--data", str(store), "--out", str(out), "--json")
    assert code == 0, err
    files = json.loads(stdout.strip().splitlines()[-1])["files"]
    assert [Path(f["path"]).name for f in files] == ["contact-sheet-gw-01.png", "contact-sheet-gw-02.png"]
    assert sum(f["labels"] for f in files) == 30 and sum(f["blank"] for f in files) == 6
    for f in files:
        image = Image.open(io.BytesIO(Path(f["path"]).read_bytes()))
        assert image.format == "PNG" and image.width == 1600
    assert "wrote" in err


def test_contact_sheet_progress_on_stderr_and_quiet_with_json(store: Path, tmp_path: Path) -> None:
    """Drawing takes 2-3 ms a label (a minute for a 20,000-label store): the labels drawn so far
    are reported on stderr, across every sheet, and not with --json."""
    write_state(store, tmp_path / "sim.json")
    args = ("--state", str(tmp_path / "sim.json"), "--data", str(store), "--out", str(tmp_path / "sheets"))
    code, stdout, err = invoke(*args)
    assert code == 0, err
    assert "drawing labels: 1/30" in err and "drawing labels: 30/30 (100%)" in err and stdout == ""
    code, stdout, err = invoke(*args, "--json")
    assert code == 0, err
    assert "drawing labels" not in err and "wrote" in err


def test_write_contact_sheets_counts_labels_over_all_sheets(store: Path, tmp_path: Path) -> None:
    from simulator.contact_sheet import write_contact_sheets

    write_state(store, tmp_path / "sim.json")
    tiles = tiles_from_state(load_state(tmp_path / "sim.json"), load_products(store / "products.csv").frame,
                             load_labels(store / "labels.csv").frame, currency="EUR")
    heard: list[tuple[int, int]] = []
    sheets = write_contact_sheets(tmp_path / "out", tiles, load_label_templates(None),
                                  progress=lambda done, total: heard.append((done, total)))
    assert len(sheets) == 2 and heard == [(i, 30) for i in range(1, 31)]


def test_contact_sheet_command_one_gateway_to_one_file(store: Path, tmp_path: Path) -> None:
    write_state(store, tmp_path / "sim.json")
    target = tmp_path / "gw.png"
    code, stdout, err = invoke("--state", str(tmp_path / "sim.json"), "--data", str(store), "--out", str(target),
                               "--gateway", "gw-02", "--width", "900", "--json")
    assert code == 0, err
    files = json.loads(stdout.strip().splitlines()[-1])["files"]
    assert files[0]["path"] == str(target) and files[0]["gateways"] == ["gw-02"]
    assert Image.open(target).width == 900


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--state", "{tmp}/missing.json"], "no such state file"),
        (["--gateway", "gw-99"], "no labels on gateway gw-99 (gateways: gw-01, gw-02)"),
        (["--data", "{tmp}/nowhere"], "not a directory"),
        (["--currency", "euro"], "--currency must be a 3-letter code"),
        (["--templates", "{tmp}/missing.yaml"], "cannot read"),
    ],
)
def test_user_errors_exit_2(store: Path, tmp_path: Path, args: list[str], message: str) -> None:
    write_state(store, tmp_path / "sim.json")
    base = {"--state": str(tmp_path / "sim.json"), "--data": str(store), "--out": str(tmp_path / "out")}
    for i in range(0, len(args), 2):
        base[args[i]] = args[i + 1].format(tmp=tmp_path)
    code, _, err = invoke(*[part for pair in base.items() for part in pair])
    assert code == 2
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_the_simulator_imports_no_engine_internals() -> None:
    script = ("import sys, simulator.contact_sheet\n"
              "print(' '.join(sorted(m for m in sys.modules if m.startswith('pricing.'))))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, check=True)
    loaded = set(done.stdout.split())
    assert "pricing.core.money" in loaded  # the check sees the engine's modules at all
    assert {name for name in loaded if name != "pricing.core" and not name.startswith("pricing.core.")} == set()


def test_a_label_content_for_an_unknown_tag_type_is_not_drawable(store: Path) -> None:
    from simulator.contact_sheet import Tile

    content = LabelContent.build(sku="1", name="x", price_cents=100, currency="EUR")
    drawn = sheet_image({"gw": [Tile("L1", "gw", "1", "9.9", content)]}, load_label_templates())
    assert drawn.problems == 1 and drawn.labels == 1
