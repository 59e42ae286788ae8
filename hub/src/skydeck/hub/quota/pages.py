"""The quota pages: admins' overview and forms, and each user's own limits and usage."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from skydeck.hub.quota.handlers import PageHandler, Problem, usage_overview
from skydeck.hub.quota.model import QuotaError

#: Lab fields the forms offer as inputs; other kinds go in the JSON box.
_NUMBER_FIELDS = ("cpu", "memory_gib")


def patch_from_form(form: dict[str, str]) -> dict[str, Any]:
    """A partial quota from the admin form (empty inputs are left out)."""
    patch: dict[str, Any] = {}
    extra = form.get("extra", "").strip()
    if extra:
        try:
            patch = json.loads(extra)
        except json.JSONDecodeError as error:
            raise QuotaError(f"the JSON box is not valid JSON: {error}") from error
        if not isinstance(patch, dict):
            raise QuotaError('the JSON box must hold an object like {"tap": {"concurrent": 4}}')
    lab: dict[str, Any] = dict(patch.get("lab", {}))
    for name in _NUMBER_FIELDS:
        value = form.get(f"lab_{name}", "").strip()
        if value:
            try:
                lab[name] = float(value)
            except ValueError as error:
                raise QuotaError(f"lab {name} must be a number, got {value!r}") from error
    sizes = form.get("lab_sizes", "").strip()
    if sizes:
        lab["sizes"] = [s.strip() for s in sizes.split(",") if s.strip()]
    if form.get("lab_no_spawn"):
        lab["spawn"] = False
    if lab:
        patch["lab"] = lab
    if not patch:
        raise QuotaError("nothing to set: fill in at least one field")
    return patch


class RootHandler(PageHandler):
    async def get(self) -> None:
        who = self.need_identity()
        prefix = self.settings["service_prefix"]
        self.redirect(prefix + ("admin" if who.admin else "me"))


class MePage(PageHandler):
    async def get(self) -> None:
        who = self.need_identity()
        if who.kind != "user":
            raise Problem(400, "this page shows a user's own limits; a service has none")
        status = self.quota.status(who.name, await self.groups_of(who.name))
        self.finish(self.render_page("quota_me.html", status=status))


class AdminPage(PageHandler):
    async def get(self, what: str = "") -> None:
        self.need_admin()
        await self._render()

    async def _render(self, error: str | None = None, notice: str | None = None) -> None:
        rows = await usage_overview(self)
        hub_groups = {g["name"]: g for g in await self.hub.groups()}
        rules = self.quota.store.group_rules()
        groups = [
            {
                "name": name,
                "members": hub_groups.get(name, {}).get("users", []),
                "quota": json.dumps(rules[name].quota) if name in rules else "",
                "updated": rules.get(name),
            }
            for name in sorted(set(hub_groups) | set(rules))
        ]
        self.finish(
            self.render_page(
                "quota_admin.html",
                rows=rows,
                groups=groups,
                overrides=self.quota.store.overrides(),
                now=self.quota.clock(),
                audit=self.quota.audit_log(50),
                policy=self.quota.store.get_policy(),
                error=error,
                notice=notice or self.get_argument("notice", None),
            )
        )

    def form(self) -> dict[str, str]:
        return {k: self.get_body_argument(k, "") for k in self.request.body_arguments}

    async def post(self, what: str = "") -> None:
        who = self.need_admin()
        form = self.form()
        reason = form.get("reason", "")
        try:
            if what == "groups":
                group = form.get("group", "").strip()
                if form.get("action") == "remove":
                    if not self.quota.remove_group(group, who.name, reason):
                        raise QuotaError(f"group {group!r} has no quota additions")
                    notice = f"Removed the additions of group {group}."
                else:
                    self.quota.set_group(group, patch_from_form(form), who.name, reason)
                    notice = f"Saved the additions of group {group}; they apply at the next spawn."
            elif what == "overrides":
                user = form.get("user", "").strip()
                if form.get("action") == "remove":
                    if not self.quota.remove_override(user, who.name, reason):
                        raise QuotaError(f"{user} has no override")
                    notice = f"Removed the override of {user}."
                else:
                    if await self.hub.user(user) is None:
                        raise QuotaError(f"no hub user named {user!r}")
                    expires = None
                    hours = form.get("expires_hours", "").strip()
                    if hours:
                        try:
                            expires = self.quota.clock() + timedelta(hours=float(hours))
                        except ValueError as error:
                            raise QuotaError("expires in (hours) must be a number") from error
                    self.quota.set_override(user, patch_from_form(form), who.name, reason, expires)
                    notice = f"Saved the override of {user}."
            else:
                raise Problem(
                    404, f"no admin form {what!r}: post to admin/groups or admin/overrides"
                )
        except QuotaError as error:
            self.set_status(400)
            await self._render(error=str(error))
            return
        self.redirect(self.settings["service_prefix"] + "admin?" + _query(notice=notice))


def _query(**params: str) -> str:
    from urllib.parse import urlencode

    return urlencode(params)
