"""The IVOA SODA cutout service (``/services/cutouts/sync``) over the cutout engine."""
