"""The one-way arrows of docs/architecture.md hold (import-linter's contracts in
pyproject.toml), and the contracts would catch a back arrow."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(source_root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(ROOT / "pyproject.toml")],
        env={**os.environ, "PYTHONPATH": str(source_root)},
        cwd=source_root,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_tree_keeps_its_arrows() -> None:
    result = lint_imports(ROOT / "src")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("module", "back_arrow"),
    [
        ("engine/states.py", "import obpilot.inventory.models"),
        ("hosts/executor.py", "import obpilot.engine.states"),
        ("db/base.py", "import obpilot.iam.models"),
        ("inventory/service.py", "import obpilot.operations.service"),
        ("iam/service.py", "import obpilot.api.envelope"),
    ],
)
def test_a_back_arrow_breaks_a_contract(tmp_path: Path, module: str, back_arrow: str) -> None:
    source = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "obpilot", source / "obpilot")
    path = source / "obpilot" / module
    path.write_text(path.read_text() + f"\n{back_arrow}  # noqa\n")
    result = lint_imports(source)
    assert result.returncode != 0, result.stdout
    assert "BROKEN" in result.stdout
