"""The SQLite manifest: entries, upsert/remove, imports (all or nothing), concurrent look-ups."""

import json
import threading

import pytest

from edge_agent.sorting.manifest import Manifest, ManifestEntry, ManifestError

CSV_GOOD = (
    "barcode,country,postal_code,declared_weight_kg,service\n"
    "RB123456785GB,CN,200001,1.5,standard\n"
    "LP0001,US,10001,,\n"
)


@pytest.fixture
def manifest(tmp_path):
    with Manifest.open(tmp_path / "state") as store:
        yield store


def test_entry_validation_names_the_field():
    assert ManifestEntry(" X1 ", "cn", " 200001 ").to_dict() == {
        "barcode": "X1", "country": "CN", "postal_code": "200001",
        "declared_weight_kg": None, "service": None}
    for kwargs, field in [
        ({"barcode": "", "country": "CN"}, "barcode"),
        ({"barcode": "X", "country": "CHN"}, "country"),
        ({"barcode": "X", "country": "CN", "declared_weight_kg": -1}, "declared_weight_kg"),
        ({"barcode": "X", "country": "CN", "declared_weight_kg": "heavy"}, "declared_weight_kg"),
        ({"barcode": "X", "country": "CN", "postal_code": "x" * 40}, "postal_code"),
    ]:
        with pytest.raises(ManifestError) as caught:
            ManifestEntry(**kwargs)
        assert caught.value.problems[0].startswith(f"{field}: ")


def test_upsert_get_remove(manifest):
    assert manifest.get("A1") is None
    assert manifest.upsert([ManifestEntry("A1", "CN", "200001", 2.0, "std")]) == 1
    assert manifest.get("A1") == ManifestEntry("A1", "CN", "200001", 2.0, "std")
    manifest.upsert([ManifestEntry("A1", "US", "10001")])
    assert manifest.get("A1").country == "US"
    assert manifest.remove(["A1", "missing"]) == 1
    assert manifest.get("A1") is None
    assert manifest.get(None) is None


def test_csv_import_and_stats(manifest, tmp_path):
    path = tmp_path / "m.csv"
    path.write_text(CSV_GOOD)
    report = manifest.import_file(path)
    assert (report.rows, report.total) == (2, 2)
    assert manifest.get("LP0001") == ManifestEntry("LP0001", "US", "10001", None, None)
    stats = manifest.stats()
    assert stats["entries"] == 2 and stats["by_country"] == {"CN": 1, "US": 1}


def test_csv_columns_in_any_order(manifest, tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("country,barcode\nCN,B1\n")
    manifest.import_file(path)
    assert manifest.get("B1").country == "CN"


def test_json_lines_import(manifest, tmp_path):
    path = tmp_path / "m.jsonl"
    lines = [{"barcode": "J1", "country": "CN", "postal_code": "310000",
              "declared_weight_kg": 3}, {"barcode": "J2", "country": "JP"}]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n")
    assert manifest.import_file(path).rows == 2
    assert manifest.get("J1").declared_weight_kg == 3.0


@pytest.mark.parametrize(("name", "text", "problems"), [
    ("bad.csv", CSV_GOOD + "X2,CHINA,1,1,\nX3,CN,1,-2,\n",
     ["line 4: country: 'CHINA' must be an ISO 3166 alpha-2 code such as CN",
      "line 5: declared_weight_kg: '-2' must be above 0 and at most 1000"]),
    ("short.csv", CSV_GOOD + "X4,CN\n", ["line 4: 2 fields, header has 5"]),
    ("bad.jsonl", '{"barcode": "J9", "country": "CN"}\n{oops\n[1]\n{"barcode": "J8"}\n'
     '{"barcode": "J7", "country": "CN", "colour": "red"}\n',
     ["line 2: not JSON (Expecting property name enclosed in double quotes)",
      "line 3: expected a JSON object", "line 4: country: None must be an ISO 3166 alpha-2 "
      "code such as CN", "line 5: colour: unknown field (a typo?)"]),
])
def test_bad_lines_refuse_the_import_and_keep_old_data(manifest, tmp_path, name, text, problems):
    manifest.upsert([ManifestEntry("OLD", "CN", "200001")])
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ManifestError) as caught:
        manifest.import_file(path)
    assert caught.value.problems == problems
    assert manifest.get("OLD") is not None
    assert manifest.get("RB123456785GB") is None and manifest.get("J9") is None
    assert manifest.stats()["entries"] == 1


@pytest.mark.parametrize(("text", "problem"), [
    ("barcode,weight\nX,1\n", "line 1: header must name barcode, country"),
])
def test_bad_header(manifest, tmp_path, text, problem):
    path = tmp_path / "h.csv"
    path.write_text(text)
    with pytest.raises(ManifestError) as caught:
        manifest.import_file(path)
    assert caught.value.problems[0].startswith(problem)


def test_unreadable_files(manifest, tmp_path):
    with pytest.raises(ManifestError, match="cannot read"):
        manifest.import_file(tmp_path / "absent.csv")
    binary = tmp_path / "b.csv"
    binary.write_bytes(b"barcode,country\n\xff\xfe,CN\n")
    with pytest.raises(ManifestError, match="not UTF-8"):
        manifest.import_file(binary)


def test_data_survives_reopen(tmp_path):
    with Manifest.open(tmp_path) as first:
        first.upsert([ManifestEntry("P1", "CN", "200001")])
    with Manifest.open(tmp_path) as second:
        assert second.get("P1").postal_code == "200001"


def test_lookups_are_served_while_an_import_runs(tmp_path):
    """WAL: a reader on another connection sees the old data during a long import."""
    rows = 50_000
    path = tmp_path / "big.csv"
    path.write_text("barcode,country\n" + "".join(f"B{i},CN\n" for i in range(rows)))
    with Manifest.open(tmp_path / "s") as writer, Manifest.open(tmp_path / "s") as reader:
        writer.upsert([ManifestEntry("OLD", "HK")])
        finished = threading.Event()
        result = {}

        def run_import():
            result["report"] = writer.import_file(path)
            finished.set()

        thread = threading.Thread(target=run_import)
        thread.start()
        lookups = 0
        while not finished.is_set():
            assert reader.get("OLD").country == "HK"  # never blocked, never an error
            lookups += 1
        thread.join()
        assert lookups > 0
        assert result["report"].total == rows + 1
        assert reader.get(f"B{rows - 1}") is not None


def test_unopenable_state_dir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ManifestError, match="cannot open the manifest"):
        Manifest.open(blocker / "sub")


@pytest.mark.parametrize(("fields", "stored"), [
    ("A1,cn,200001,2.50,std", ("A1", "CN", "200001", 2.5, "std")),  # clean row: inserted as read
    ("A1,CN,,,", ("A1", "CN", None, None, None)),
    ("A1,CN, 200001 ,1e1,std ", ("A1", "CN", "200001", 10.0, "std")),  # careful path: normalised
    ("A1,CN,200001,1000,std", ("A1", "CN", "200001", 1000.0, "std")),
    ("A1,CN,200001,0.001,std", ("A1", "CN", "200001", 0.001, "std")),
])
def test_both_import_paths_store_the_same_values(manifest, tmp_path, fields, stored):
    path = tmp_path / "m.csv"
    path.write_text("barcode,country,postal_code,declared_weight_kg,service\n" + fields + "\n")
    manifest.import_file(path)
    assert tuple(manifest.get("A1"))[:5] == stored  # the columns added later: unknown
    assert set(manifest.get("A1")[5:]) == {None}


@pytest.mark.parametrize("weight", ["0", "0.0", "00", "1000.5", "-1", "nan", "inf", "heavy"])
def test_import_refuses_impossible_weights(manifest, tmp_path, weight):
    path = tmp_path / "m.csv"
    path.write_text(f"barcode,country,declared_weight_kg\nA1,CN,{weight}\n")
    with pytest.raises(ManifestError) as caught:
        manifest.import_file(path)
    assert caught.value.problems[0].startswith("line 2: declared_weight_kg: ")
