"""``skydeck quota``: the quota REST API from the command line.

Every command talks to the quota service with a hub token, so the same
authorization applies as on the admin page: ``--url`` (or ``SKYDECK_QUOTA_URL``,
default ``http://127.0.0.1:8000/services/quota/``) and ``--token`` (or
``JUPYTERHUB_API_TOKEN``; an admin gets one on the hub's Token page).

Quota values are given as ``kind.field=value`` (``lab.memory_gib=8``,
``lab.spawn=false``, ``api.requests_per_minute.tap=120``, ``tap.concurrent=none``).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import click
import yaml

DEFAULT_URL = "http://127.0.0.1:8000/services/quota/"


class Client:
    """A tiny client of the quota REST API."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url if url.endswith("/") else url + "/"
        self.token = token

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + "api/" + path,
            data=data,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            try:
                message = json.loads(error.read()).get("message", error.reason)
            except ValueError:
                message = error.reason
            raise click.ClickException(f"{error.code}: {message}") from None
        except urllib.error.URLError as error:
            raise click.ClickException(
                f"cannot reach the quota service at {self.url} ({error.reason}); "
                "is the hub running? (--url / SKYDECK_QUOTA_URL)"
            ) from None
        return json.loads(raw) if raw else None


def _value(text: str) -> Any:
    lowered = text.strip().lower()
    if lowered in ("none", "null", "unlimited"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        pass
    return [s.strip() for s in text.split(",") if s.strip()]


def parse_settings(items: tuple[str, ...]) -> dict[str, Any]:
    """``("lab.memory_gib=8", "api.requests_per_minute.tap=60")`` as a partial quota."""
    patch: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        parts = key.strip().split(".")
        if not sep or len(parts) not in (2, 3) or not all(parts):
            raise click.BadParameter(
                f"{item!r}: write kind.field=value, e.g. lab.memory_gib=8", param_hint="SETTING"
            )
        value = _value(text)
        if len(parts) == 3:
            patch.setdefault(parts[0], {}).setdefault(parts[1], {})[parts[2]] = value
        else:
            patch.setdefault(parts[0], {})[parts[1]] = value
    if not patch:
        raise click.UsageError("give at least one kind.field=value setting")
    return patch


def _print(value: Any) -> None:
    click.echo(json.dumps(value, indent=2))


@click.group()
@click.option("--url", envvar="SKYDECK_QUOTA_URL", default=DEFAULT_URL, show_default=True)
@click.option("--token", envvar="JUPYTERHUB_API_TOKEN", help="A hub API token.")
@click.pass_context
def quota(ctx: click.Context, url: str, token: str | None) -> None:
    """See and change quotas (admins) or your own limits (everyone)."""
    if not token:
        raise click.UsageError(
            "no hub token: pass --token or set JUPYTERHUB_API_TOKEN (hub page: Token)"
        )
    ctx.obj = Client(url, token)


@quota.command()
@click.argument("user", required=False)
@click.option("--effective", is_flag=True, help="Only the effective quota, without usage.")
@click.pass_obj
def show(client: Client, user: str | None, effective: bool) -> None:
    """A user's limits and usage (yours without USER)."""
    if user is None:
        _print(client.call("GET", "me"))
    else:
        what = "quota" if effective else "status"
        _print(client.call("GET", f"users/{quote(user, safe='')}/{what}"))


@quota.command()
@click.pass_obj
def groups(client: Client) -> None:
    """Hub groups with their quota additions."""
    _print(client.call("GET", "groups"))


@quota.command("set-group")
@click.argument("group")
@click.argument("settings", nargs=-1, required=True)
@click.option("--reason", required=True, help="Why (kept in the audit log).")
@click.pass_obj
def set_group(client: Client, group: str, settings: tuple[str, ...], reason: str) -> None:
    """Set what GROUP adds to its members' quotas (replaces its previous additions)."""
    body = {"quota": parse_settings(settings), "reason": reason}
    _print(client.call("PUT", f"groups/{quote(group, safe='')}", body))


@quota.command("remove-group")
@click.argument("group")
@click.option("--reason", required=True)
@click.pass_obj
def remove_group(client: Client, group: str, reason: str) -> None:
    """Remove GROUP's additions."""
    client.call("DELETE", f"groups/{quote(group, safe='')}?" + urlencode({"reason": reason}))
    click.echo(f"removed the additions of {group}")


@quota.command()
@click.argument("user")
@click.argument("settings", nargs=-1, required=True)
@click.option("--reason", required=True)
@click.option("--expires-in", type=float, help="Hours until the override expires.")
@click.pass_obj
def override(
    client: Client, user: str, settings: tuple[str, ...], reason: str, expires_in: float | None
) -> None:
    """Override USER's computed values (replaces an earlier override)."""
    body: dict[str, Any] = {"quota": parse_settings(settings), "reason": reason}
    if expires_in is not None:
        body["expires_in"] = expires_in * 3600
    _print(client.call("PUT", f"users/{quote(user, safe='')}/override", body))


@quota.command("remove-override")
@click.argument("user")
@click.option("--reason", required=True)
@click.pass_obj
def remove_override(client: Client, user: str, reason: str) -> None:
    """Remove USER's override."""
    path = f"users/{quote(user, safe='')}/override?" + urlencode({"reason": reason})
    client.call("DELETE", path)
    click.echo(f"removed the override of {user}")


@quota.command()
@click.option("--all", "show_all", is_flag=True, help="Expired overrides too.")
@click.pass_obj
def overrides(client: Client, show_all: bool) -> None:
    """Per-user overrides."""
    _print(client.call("GET", "overrides" + ("?all=1" if show_all else "")))


@quota.command()
@click.option("--limit", default=50, show_default=True)
@click.pass_obj
def audit(client: Client, limit: int) -> None:
    """Who changed what, when and why."""
    _print(client.call("GET", f"audit?limit={limit}"))


@quota.command()
@click.pass_obj
def usage(client: Client) -> None:
    """Every user's quota, usage and running servers."""
    _print(client.call("GET", "usage"))


@quota.command()
@click.option(
    "--file",
    "path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Replace the policy with this JSON or YAML file.",
)
@click.option("--reason", help="Why (needed with --file).")
@click.pass_obj
def policy(client: Client, path: Path | None, reason: str | None) -> None:
    """Show the policy (defaults, sizes, bypass groups, contact), or replace it."""
    if path is None:
        _print(client.call("GET", "policy"))
        return
    if not reason:
        raise click.UsageError("--reason is needed to change the policy")
    data = yaml.safe_load(path.read_text())
    _print(client.call("PUT", "policy", {"policy": data, "reason": reason}))
