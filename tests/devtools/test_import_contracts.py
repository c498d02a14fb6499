"""The import contracts (`make lint`) hold on the tree, and each one fails on a deliberate
violation: a copy of the packages gets one bad import and `lint-imports` must name the
broken contract (and, for the public face, the offending import)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
PACKAGES = ("webapp", "jobs", "emails", "devtools")


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(tree / "pyproject.toml")],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin", "NO_COLOR": "1", "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the packages and the configuration, to break on purpose."""
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _add_import(tree: Path, module: str, statement: str) -> None:
    path = tree / (module.replace(".", "/") + ".py")
    path.write_text(path.read_text() + f"\n{statement}  # noqa\n")


def test_the_tree_keeps_every_contract() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 4 kept, 0 broken." in result.stdout


@pytest.mark.parametrize(
    ("module", "statement", "contract", "named"),
    [
        (
            "emails.rendering",
            "import webapp.db",
            "emails renders and sends mail, knowing nothing of the app BROKEN",
            "emails.rendering -> webapp.db",
        ),
        (
            "webapp.donations.records",
            "import jobs",
            "the app never imports the jobs that drive it BROKEN",
            "webapp.donations.records -> jobs",
        ),
        (
            "webapp.subscribers.links",
            "import webapp.digests.models",
            "features are stacked: each imports only the features below it BROKEN",
            "webapp.subscribers is not allowed to import webapp.digests",
        ),
        (
            "webapp.digests.content",
            "import webapp.donations.books",
            "a feature is used from outside only through its services and models BROKEN",
            "webapp.digests.content -> webapp.donations.books",
        ),
        (
            "jobs.cleanup",
            "from webapp.subscribers import csv_io",
            "a feature is used from outside only through its services and models BROKEN",
            "jobs.cleanup -> webapp.subscribers.csv_io",
        ),
    ],
)
def test_a_deliberate_violation_breaks_its_contract(
    tree: Path, module: str, statement: str, contract: str, named: str
) -> None:
    assert _lint(tree).returncode == 0
    _add_import(tree, module, statement)
    result = _lint(tree)
    assert result.returncode == 1
    assert contract in result.stdout
    assert named in result.stdout
    assert "Contracts: 3 kept, 1 broken." in result.stdout


def test_the_composition_root_may_wire_private_modules(tree: Path) -> None:
    _add_import(tree, "webapp.features", "import webapp.donations.books")
    assert _lint(tree).returncode == 0
