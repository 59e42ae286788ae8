# Extra JupyterHub config: production backends chosen by SKYDECK_* variables.
#
#   export SKYDECK_HUB_DB_URL=postgresql+psycopg://skydeck@db.example.org/skydeck_hub
#   export PGPASSWORD=...            # or ~/.pgpass
#   export SKYDECK_AUTH=github       # and SKYDECK_GITHUB_* (see github_login.py)
#   skydeck up --config hub/deploy/production.py
#
# See skydeck.hub.production for every variable.
# ruff: noqa: F821  (``c`` is provided by JupyterHub)
from skydeck.hub.production import ProductionSettings, configure_production

configure_production(c, ProductionSettings.from_env())  # type: ignore[name-defined]
