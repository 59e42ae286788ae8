"""``python -m skydeck.hub`` runs the ``skydeck`` command."""

from skydeck.hub.cli import main

main()
