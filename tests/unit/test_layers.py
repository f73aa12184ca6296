"""The layering contract (pyproject.toml [tool.importlinter], docs/architecture.md) holds: no import
circle, no lower layer importing a higher one, the venue and the proxy import nothing of the plugin."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

try:
    import tomllib
except ImportError:  # Python 3.10: import-linter brings tomli
    import tomli as tomllib  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "pytest_chaosdrill"
LEAVES = {"venue", "proxy", "dnsstub"}


def _contracts() -> dict[str, dict]:
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return {c["id"]: c for c in cfg["tool"]["importlinter"]["contracts"]}


def test_lint_imports_keeps_every_contract() -> None:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.fail("lint-imports is not installed: pip install -e '.[test]' (import-linter is a test extra)")
    out = subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "0 broken" in out.stdout, out.stdout[-4000:]


def test_leaf_contract_names_every_other_module() -> None:
    """A module added to the package must be named in the leaves contract, or the venue could import it."""
    top = {p.stem if p.suffix == ".py" else p.name for p in PACKAGE.iterdir()
           if (p.suffix == ".py" and p.stem != "__init__") or (p.is_dir() and (p / "__init__.py").exists())}
    forbidden = {m.removeprefix("pytest_chaosdrill.") for m in _contracts()["leaves"]["forbidden_modules"]}
    assert top - LEAVES - forbidden == set(), "add these to the 'leaves' contract in pyproject.toml"
