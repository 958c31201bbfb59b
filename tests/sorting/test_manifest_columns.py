"""Manifest columns added after the first format: old files and old stores still work (the new
columns read as unknown), new files carry them, and a bad value is refused naming its line."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from edge_agent.sorting.manifest import MANIFEST_FILE, Manifest, ManifestError

OLD_SCHEMA = ("CREATE TABLE manifest (barcode TEXT PRIMARY KEY, country TEXT NOT NULL, "
              "postal_code TEXT, declared_weight_kg REAL, service TEXT) WITHOUT ROWID")


def _old_store(state_dir: Path) -> None:
    db = sqlite3.connect(state_dir / MANIFEST_FILE)
    db.execute(OLD_SCHEMA)
    db.execute("INSERT INTO manifest VALUES ('A1', 'CN', '200001', 2.0, 'std')")
    db.commit()
    db.close()


def test_an_old_store_reads_the_new_columns_as_unknown_and_gains_them(tmp_path: Path):
    _old_store(tmp_path)
    reader = Manifest.open_read_only(tmp_path)
    assert reader is not None
    entry = reader.get("A1")
    assert entry is not None and entry.order_id is None and entry.country == "CN"
    reader.close()
    with Manifest.open(tmp_path) as manifest:  # the agent opens it: the columns are added
        assert manifest.get("A1").order_id is None
        path = tmp_path / "new.csv"
        path.write_text("barcode,country,order_id\nB2,CN,ORD-7\n")
        manifest.import_file(path)
        assert manifest.get("B2").order_id == "ORD-7"
        assert manifest.get("A1").to_dict() == {  # unknown new columns are left out
            "barcode": "A1", "country": "CN", "postal_code": "200001",
            "declared_weight_kg": 2.0, "service": "std"}


@pytest.mark.parametrize(("text", "problem"), [
    ("barcode,country,order_id\nA1,CN," + "X" * 65 + "\n", "line 2: order_id:"),
    ("barcode,country,order_id\nA1,CN,ORD\x07 1\n", "line 2: order_id:"),
    ('{"barcode": "A1", "country": "CN", "order_id": 7}\n', "line 1: order_id: expected text"),
], ids=["too_long", "control_character", "not_text"])
def test_a_bad_order_id_is_refused_naming_its_line_and_the_store_is_kept(
        tmp_path: Path, text: str, problem: str):
    with Manifest.open(tmp_path) as manifest:
        good = tmp_path / "good.csv"
        good.write_text("barcode,country,order_id\nA1,CN,ORD-1\n")
        manifest.import_file(good)
        bad = tmp_path / "bad.csv"
        bad.write_text(text)
        with pytest.raises(ManifestError) as refused:
            manifest.import_file(bad)
        assert any(p.startswith(problem) for p in refused.value.problems), refused.value
        assert manifest.get("A1").order_id == "ORD-1"


def test_read_only_stores_open_from_a_relative_state_dir(tmp_path: Path, monkeypatch):
    """`--state-dir st` from the shell: a relative path is no file URI until resolved."""
    from edge_agent.sorting.hold_store import HoldStore

    with Manifest.open(tmp_path / "st") as manifest:
        path = tmp_path / "m.csv"
        path.write_text("barcode,country\nA1,CN\n")
        manifest.import_file(path)
    HoldStore.open(tmp_path / "st").close()
    monkeypatch.chdir(tmp_path)
    reader = Manifest.open_read_only(Path("st"))
    assert reader is not None and reader.get("A1").country == "CN"
    reader.close()
    holds = HoldStore.open_read_only(Path("st"))
    assert holds is not None and holds.active(0.0) == []
    holds.close()
