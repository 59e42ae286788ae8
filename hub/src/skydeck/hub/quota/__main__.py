"""``python -m skydeck.hub.quota`` runs the quota service (started by the hub)."""

from skydeck.hub.quota.app import main

main()
