"""docs/architecture.md draws the features' arrows; this keeps the drawing true to the code.

The "arrows" block lists, for each feature (and `jobs`), every feature it imports; the test
builds the real import graph with grimp (import-linter's engine) and compares."""

from __future__ import annotations

import re
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]


def _documented() -> dict[str, set[str]]:
    text = (ROOT / "docs" / "architecture.md").read_text()
    block = re.search(r"```arrows\n(.*?)```", text, re.S)
    assert block, "docs/architecture.md has no arrows block"
    arrows: dict[str, set[str]] = {}
    for line in block.group(1).strip().splitlines():
        source, targets = line.split("->")
        arrows[source.strip()] = {target.strip() for target in targets.split(",")}
    return arrows


def _in_code() -> dict[str, set[str]]:
    graph = grimp.build_graph("webapp", "jobs", "emails", cache_dir=None)
    features = {
        module.split(".")[1]
        for module in graph.find_children("webapp")
        if graph.find_children(module)
    }

    def feature_of(module: str) -> str | None:
        parts = module.split(".")
        if parts[0] != "webapp":
            return parts[0]
        return parts[1] if len(parts) > 1 and parts[1] in features else None

    arrows: dict[str, set[str]] = {}
    for importer in graph.modules:
        source = feature_of(importer)
        if source is None:
            continue
        for imported in graph.find_modules_directly_imported_by(importer):
            target = feature_of(imported)
            if target is not None and target != source:
                arrows.setdefault(source, set()).add(target)
    return arrows


def test_the_documented_arrows_are_the_imports() -> None:
    assert _documented() == _in_code()
