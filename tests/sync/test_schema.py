"""The published contract: docs/asyncapi.yaml and docs/schemas/ are generated and up to date."""

from __future__ import annotations

import json
from pathlib import Path

from edge_agent.cli.main import main
from edge_agent.sync.asyncapi import asyncapi_document, render_asyncapi_yaml, write_all

DOCS = Path(__file__).parents[2] / "docs"


def test_committed_contract_is_up_to_date(tmp_path: Path):
    write_all(tmp_path)
    fresh = {p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()}
    committed = {p.relative_to(DOCS) for p in (DOCS / "schemas").glob("*.json")}
    committed.add(Path("asyncapi.yaml"))
    assert committed == fresh, "run: edge-agent schema --out docs"
    for relative in fresh:
        assert (DOCS / relative).read_text() == (tmp_path / relative).read_text(), (
            f"docs/{relative} is out of date: run edge-agent schema --out docs")


def test_every_reference_resolves_and_every_channel_has_an_operation_or_reply():
    document = asyncapi_document()
    text = json.dumps(document)
    refs = {part.split('"')[0] for part in text.split('"$ref": "')[1:]}
    for ref in refs:
        node = document
        for key in ref.removeprefix("#/").split("/"):
            assert key in node, f"unresolved {ref}"
            node = node[key]
    used = {op["channel"]["$ref"] for op in document["operations"].values()}
    used |= {op["reply"]["channel"]["$ref"] for op in document["operations"].values()
             if "reply" in op}
    assert used == {f"#/channels/{name}" for name in document["channels"]}
    assert document["asyncapi"] == "3.0.0"


def test_yaml_output_is_json_after_its_comment_header():
    text = render_asyncapi_yaml()
    assert text.startswith("# ")
    assert json.loads(text.split("\n", 1)[1])["info"]["title"]


def test_cli_writes_the_files_and_refuses_an_unwritable_directory(tmp_path: Path, capsys):
    assert main(["schema", "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "asyncapi.yaml").exists()
    assert (tmp_path / "out" / "schemas" / "parcel-event.json").exists()
    (tmp_path / "file").write_text("")
    assert main(["schema", "--out", str(tmp_path / "file")]) == 2
    assert "cannot write" in capsys.readouterr().err
