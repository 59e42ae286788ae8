# JupyterHub configuration file for Skydeck; ``skydeck up`` points JupyterHub here.
# ruff: noqa: F821  (``c`` and ``load_subconfig`` are provided by JupyterHub)
from skydeck.hub.config import HubSettings, configure_hub

settings = HubSettings.from_env()
configure_hub(c, settings)  # type: ignore[name-defined]
for extra in settings.extra_config:
    load_subconfig(str(extra))  # type: ignore[name-defined]
