"""Quotas and their administration through the hub.

- `skydeck.hub.quota.model`: the quota model and `effective_quota`, the one decision.
- `skydeck.hub.quota.store`: SQLAlchemy storage (SQLite or PostgreSQL) with the audit log.
- `skydeck.hub.quota.service`: every rule (changes, usage, spawn decision, rate limits).
- `skydeck.hub.quota.app`: the managed JupyterHub service "quota" (REST API and pages).
- `skydeck.hub.quota.spawn`: spawner hooks enforcing lab quotas at spawn time.
- `skydeck.hub.quota.cli`: ``skydeck quota``.

The JSON contract for other services is in ``hub/README.md`` ("Quotas").
"""
