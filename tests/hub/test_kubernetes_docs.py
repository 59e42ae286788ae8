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
        "hub/deploy/lab/Dockerfile": values["singleuser"]["image"],
    }
    builds = [c for c in _commands() if c[:2] == ["docker", "build"]]
    assert len(builds) == 2
    for command in builds:
        dockerfile = command[command.index("-f") + 1]
        tag = command[command.index("-t") + 1]
        image = images[dockerfile]
        assert tag == f"{image['name']}:{image['tag']}"
        assert " ".join(command) in (REPO / dockerfile).read_text()


def _secret_refs(node: object) -> list[tuple[str, str]]:
    """Every (secret, key) a values file or manifest reads, found anywhere in it."""
    found = []
    if isinstance(node, dict):
        ref = node.get("secretKeyRef")
        if isinstance(ref, dict):
            found.append((ref["name"], ref["key"]))
        for value in node.values():
            found += _secret_refs(value)
    elif isinstance(node, list):
        for value in node:
            found += _secret_refs(value)
    return found


def test_every_secret_read_is_created_by_the_commands() -> None:
    """Secrets the deployment reads are created by the README's commands (or by the chart)."""
    created = {
        c[c.index("generic") + 1]: {
            w.removeprefix("--from-literal=").split("=")[0]
            for w in c
            if w.startswith("--from-literal=")
        }
        for c in _commands()
        if c[:2] == ["kubectl", "-n"] and "secret" in c
    }
    values = yaml.safe_load((REPO / "hub/deploy/helm/skydeck-values.yaml").read_text())
    manifests = list(
        yaml.safe_load_all((REPO / "hub/deploy/kubernetes/skydeck-services.yaml").read_text())
    )
    refs = set(_secret_refs(values)) | set(_secret_refs(manifests))
    assert ("skydeck-quota-db", "url") in refs
    for name, key in sorted(refs):
        if name == "hub":  # the chart's own secret, with the services' generated tokens
            assert key.startswith("hub.services.") and key.endswith(".apiToken")
            continue
        assert key in created.get(name, set()), f"README never creates secret {name} key {key}"
    # The GitHub secret is mounted as files the authenticator reads.
    github_volume = next(v for v in values["hub"]["extraVolumes"] if v["name"] == "github-oauth")
    secret_keys = created[github_volume["secret"]["secretName"]]
    auth = values["hub"]["config"]["SkydeckGitHubOAuthenticator"]
    for trait in ("client_id_file", "client_secret_file"):
        assert auth[trait].rsplit("/", 1)[1] in secret_keys


def test_one_machine_command_is_the_tested_config() -> None:
    (up,) = [c for c in _commands() if "skydeck" in c and "up" in c]
    assert up[-2:] == ["--config", "hub/deploy/production.py"]
    tested = (REPO / "tests/hub/test_production.py").read_text()
    assert '"hub" / "deploy" / "production.py"' in tested
