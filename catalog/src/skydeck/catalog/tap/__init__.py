"""An IVOA TAP 1.1 service straight over the release's HATS catalogs.

ADQL is translated to DuckDB SQL (sqlglot), spatial constraints prune HEALPix
partitions before any file is opened, results are written as VOTable (BINARY2)
or CSV/TSV/FITS/parquet, and async jobs persist in a SQL database.

Run it on its own::

    python -m skydeck.catalog.tap --release <data>/release --port 8081

or let ``skydeck up`` start it as the JupyterHub service ``tap``
(entry point ``skydeck.services: tap``).
"""

from .app import create_app
from .config import TapSettings

__all__ = ["TapSettings", "create_app"]
