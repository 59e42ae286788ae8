"""Skydeck's hub: JupyterHub configuration and plugins, and the ``skydeck`` command."""
