# Extra JupyterHub config: log in with GitHub, settings from SKYDECK_GITHUB_* variables.
#
#   export SKYDECK_GITHUB_CLIENT_ID=... SKYDECK_GITHUB_CLIENT_SECRET_FILE=/run/secrets/gh
#   export SKYDECK_GITHUB_ALLOWED="my-org,partner-org:astro"
#   export SKYDECK_GITHUB_ADMIN_TEAMS="my-org:platform-admins"
#   skydeck up --config hub/deploy/github_login.py
#
# See skydeck.hub.github for every variable; on Kubernetes, helm/skydeck-values.yaml
# sets the same traits through the chart's hub.config instead.
# ruff: noqa: F821  (``c`` is provided by JupyterHub)
from skydeck.hub.github import GitHubLogin, configure_github

configure_github(c, GitHubLogin.from_env())  # type: ignore[name-defined]
