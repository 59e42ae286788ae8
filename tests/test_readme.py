"""The README's two commands are code: CI runs the test command, the tests run the other."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert block, "the README must open with a bash block of commands"
    return [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def test_readme_opens_with_the_two_commands() -> None:
    assert readme_commands() == ["uv run skydeck up", "uv run pytest"]


def test_ci_runs_exactly_the_readme_test_command() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    runs = [line.strip() for line in script.splitlines() if line.strip().startswith("exec ")]
    assert runs == [f"exec {readme_commands()[1]}"]


def test_skydeck_command_is_installed() -> None:
    result = subprocess.run(
        ["uv", "run", "skydeck", "up", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Bring the whole platform up" in result.stdout
