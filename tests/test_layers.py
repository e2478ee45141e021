"""The import contracts of .importlinter (the layering of CONTRIBUTING.md) hold, and they do catch a broken layer."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytest.importorskip("importlinter")


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    code = (
        "import sys; from importlinter.cli import lint_imports_command; "
        "sys.argv = ['lint-imports', '--no-cache']; sys.exit(lint_imports_command())"
    )
    env = {"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin", "HOME": str(Path.home())}
    return subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, env=env, timeout=120)


def test_import_contracts_are_kept() -> None:
    proc = _lint_imports(ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "3 kept, 0 broken" in proc.stdout


def test_a_torch_import_in_runtime_breaks_the_contracts(tmp_path: Path) -> None:
    """A copy of the tree where runtime imports torch and sdk (lazily, inside a function) breaks two contracts."""
    for pkg in ("sdk", "export", "calibration", "runtime"):
        shutil.copytree(ROOT / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.onnx", "assets"))
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    (tmp_path / "runtime" / "probe.py").write_text(
        "def f():\n    import torch\n    from sdk.recognizer import Recognizer\n    return torch, Recognizer\n"
    )
    proc = _lint_imports(tmp_path)
    assert proc.returncode != 0
    assert "Contracts: 1 kept, 2 broken." in proc.stdout
    assert "runtime.probe -> sdk.recognizer (l.3)" in proc.stdout and "runtime.probe -> torch (l.2)" in proc.stdout
