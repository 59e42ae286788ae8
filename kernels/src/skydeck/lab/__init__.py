"""skydeck.lab: the data clients every Skydeck kernel preloads.

Importing this package is cheap; heavy libraries (the Butler, lsdb, Dask) are
imported on first use.
"""

from skydeck.lab._discovery import Discovery, where

__all__ = ["Discovery", "where"]
