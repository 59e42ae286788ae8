"""README "Deploying on Kubernetes": the commands name files that exist and agree with them.

The commands need a cluster and a Docker daemon, so they cannot run here; what can be
checked is that every file they use exists and says the same thing.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def _section() -> str:
    text = (REPO / "README.md").read_text()
    start = text.index("## Deploying on Kubernetes")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def _commands() -> list[list[str]]:
    blocks = re.findall(r"```bash\n(.*?)```", _section(), re.S)
    commands = []
    for block in blocks:
        for line in block.strip().splitlines():
            if not line.startswith("export "):
                commands.append(shlex.split(line.split(" --set ")[0]))
    return commands


def test_every_file_the_section_names_exists() -> None:
    paths = set(re.findall(r"`((?:hub|binder)/[\w./-]+)`", _section()))
    for command in _commands():
        paths |= {w for w in command if re.match(r"(hub|binder)/[\w./-]+$", w)}
    assert "hub/deploy/helm/skydeck-values.yaml" in paths
    missing = sorted(p for p in paths if not (REPO / p).exists())
    assert not missing, f"README names files that do not exist: {missing}"


def test_docker_commands_match_the_dockerfiles_and_values() -> None:
    values = yaml.safe_load((REPO / "hub/deploy/helm/skydeck-values.yaml").read_text())
    images = {
        "hub/Dockerfile": values["hub"]["image"],
        "binder/Dockerfile": values["singleuser"]["image"],
    }
    builds = [c for c in _commands() if c[:2] == ["docker", "build"]]
    assert len(builds) == 2
    for command in builds:
        dockerfile = command[command.index("-f") + 1]
        tag = command[command.index("-t") + 1]
        image = images[dockerfile]
        assert tag == f"{image['name']}:{image['tag']}"
        assert " ".join(command) in (REPO / dockerfile).read_text()


def test_secret_names_match_the_values() -> None:
    values_text = (REPO / "hub/deploy/helm/skydeck-values.yaml").read_text()
    values = yaml.safe_load(values_text)
    secrets = {
        c[c.index("generic") + 1]: [
            w.removeprefix("--from-literal=").split("=")[0]
            for w in c
            if w.startswith("--from-literal=")
        ]
        for c in _commands()
        if c[:2] == ["kubectl", "-n"] and "secret" in c
    }
    github_volume = next(v for v in values["hub"]["extraVolumes"] if v["name"] == "github-oauth")
    assert github_volume["secret"]["secretName"] in secrets
    auth = values["hub"]["config"]["SkydeckGitHubOAuthenticator"]
    for key in ("client-id", "client-secret"):
        assert key in secrets["skydeck-github"]
        assert any(p.endswith("/" + key) for p in auth.values() if isinstance(p, str))
    db_secret = values["hub"]["extraEnv"]["PGPASSWORD"]["valueFrom"]["secretKeyRef"]
    assert db_secret["name"] in secrets and db_secret["key"] in secrets[db_secret["name"]]


def test_one_machine_command_is_the_tested_config() -> None:
    (up,) = [c for c in _commands() if "skydeck" in c and "up" in c]
    assert up[-2:] == ["--config", "hub/deploy/production.py"]
    tested = (REPO / "tests/hub/test_production.py").read_text()
    assert '"hub" / "deploy" / "production.py"' in tested
