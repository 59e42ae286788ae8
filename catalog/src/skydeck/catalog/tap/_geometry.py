"""Spherical geometry for ADQL regions: SQL definitions, a polygon test, HEALPix coverage."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

#: DuckDB macros installed on every connection.  Angles in degrees.
SQL_MACROS = [
    # haversine: accurate at small separations, which is where cone searches live
    "CREATE OR REPLACE MACRO adql_distance(ra1, dec1, ra2, dec2) AS "
    "degrees(2 * asin(least(1.0, sqrt(pow(sin(radians(dec2 - dec1) / 2), 2) + "
    "cos(radians(dec1)) * cos(radians(dec2)) * pow(sin(radians(ra2 - ra1) / 2), 2)))))",
    # a coordinate box: |dRA| <= w/2 (wrapped at 0/360) and |dDec| <= h/2
    "CREATE OR REPLACE MACRO adql_in_box(ra, dec, ra0, dec0, w, h) AS "
    "abs(dec - dec0) <= h / 2 AND "
    "abs(((((ra - ra0) % 360) + 540) % 360) - 180) <= w / 2",
    "CREATE OR REPLACE MACRO scisql_nanojanskyToAbMag(f) AS "
    "CASE WHEN f > 0 THEN -2.5 * log10(f) + 31.4 ELSE NULL END",
    "CREATE OR REPLACE MACRO scisql_nanojanskyToAbMagSigma(f, ferr) AS "
    "CASE WHEN f > 0 THEN 2.5 / ln(10) * (ferr / f) ELSE NULL END",
    "CREATE OR REPLACE MACRO scisql_s2PtInCircle(ra, dec, ra0, dec0, r) AS "
    "CASE WHEN adql_distance(ra, dec, ra0, dec0) <= r THEN 1 ELSE 0 END",
]


def _unit(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    ra_r = np.radians(ra)
    dec_r = np.radians(dec)
    return np.stack([np.cos(dec_r) * np.cos(ra_r), np.cos(dec_r) * np.sin(ra_r), np.sin(dec_r)], -1)


def parse_vertices(text: str) -> np.ndarray:
    """Vertices encoded as ``"ra1 dec1 ra2 dec2 ..."`` -> array of shape (n, 2)."""
    values = np.array([float(v) for v in text.split()], dtype=float)
    return values.reshape(-1, 2)


def encode_vertices(vertices: list[tuple[float, float]]) -> str:
    return " ".join(f"{ra!r} {dec!r}" for ra, dec in vertices)


def points_in_polygon(ra: np.ndarray, dec: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """Whether each point lies in the spherical polygon with great-circle edges.

    The polygon is the smaller region its edges bound: points are projected
    gnomonically about the vertices' mean direction (great circles become
    straight lines) and tested with the even-odd rule.
    """
    verts = _unit(vertices[:, 0], vertices[:, 1])
    centre = verts.sum(axis=0)
    centre /= np.linalg.norm(centre)
    # an orthonormal frame (e1, e2) in the tangent plane at the centre
    helper = np.array([0.0, 0.0, 1.0]) if abs(centre[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    e1 = np.cross(helper, centre)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(centre, e1)
    vz = verts @ centre
    vx = (verts @ e1) / vz
    vy = (verts @ e2) / vz
    pts = _unit(np.asarray(ra, dtype=float), np.asarray(dec, dtype=float))
    pz = pts @ centre
    with np.errstate(divide="ignore", invalid="ignore"):
        px = (pts @ e1) / pz
        py = (pts @ e2) / pz
    inside = np.zeros(len(pts), dtype=bool)
    n = len(vx)
    for i in range(n):
        x1, y1, x2, y2 = vx[i], vy[i], vx[(i + 1) % n], vy[(i + 1) % n]
        crosses = (y1 > py) != (y2 > py)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_at = x1 + (py - y1) * (x2 - x1) / (y2 - y1)
        inside ^= crosses & (px < x_at)
    return inside & (pz > 0)


def polygon_udf(ra: pa.Array, dec: pa.Array, vertices: pa.Array) -> pa.Array:
    """DuckDB arrow UDF ``adql_in_polygon(ra, dec, 'ra1 dec1 ...')`` -> BOOLEAN."""
    n = len(ra)
    if n == 0:
        return pa.array([], pa.bool_())
    ra_np = ra.to_numpy(zero_copy_only=False).astype(float)
    dec_np = dec.to_numpy(zero_copy_only=False).astype(float)
    result = np.zeros(n, dtype=bool)
    text_values = vertices.to_pylist()
    for text in set(text_values):
        if text is None:
            continue
        rows = np.array([t == text for t in text_values]) if len(set(text_values)) > 1 else None
        verts = parse_vertices(text)
        if rows is None:
            result = points_in_polygon(ra_np, dec_np, verts)
        else:
            result[rows] = points_in_polygon(ra_np[rows], dec_np[rows], verts)
    nulls = np.asarray(ra.is_null()) | np.asarray(dec.is_null())
    return pa.array(result, mask=nulls)


@dataclass(frozen=True)
class Cone:
    """A spherical cap, used to find the HEALPix pixels a region touches."""

    ra: float
    dec: float
    radius: float


def enclosing_cone(vertices: list[tuple[float, float]], samples: int = 64) -> Cone:
    """A cone containing the polygon (great-circle edges) with the given vertices."""
    verts = _unit(np.array([v[0] for v in vertices]), np.array([v[1] for v in vertices]))
    centre = verts.sum(axis=0)
    centre /= np.linalg.norm(centre)
    boundary = []
    n = len(verts)
    for i in range(n):
        a, b = verts[i], verts[(i + 1) % n]
        t = np.linspace(0.0, 1.0, samples)[:, None]
        arc = a * (1 - t) + b * t
        boundary.append(arc / np.linalg.norm(arc, axis=1, keepdims=True))
    pts = np.concatenate(boundary)
    radius = float(np.degrees(np.arccos(np.clip(pts @ centre, -1, 1))).max())
    ra = float(np.degrees(np.arctan2(centre[1], centre[0])) % 360)
    dec = float(np.degrees(np.arcsin(np.clip(centre[2], -1, 1))))
    # chords sampled on an arc understate it by at most ~(edge/samples)^2/8: add a margin
    return Cone(ra, dec, radius * 1.001 + 1e-6)


def box_cone(ra: float, dec: float, width: float, height: float) -> Cone:
    """A cone containing the coordinate box centred on (ra, dec)."""
    lo, hi = dec - height / 2, dec + height / 2
    if lo <= -90 or hi >= 90 or width >= 180:
        return Cone(ra, dec, 180.0)
    ras = ra + np.linspace(-width / 2, width / 2, 129)
    decs = np.linspace(lo, hi, 129)
    edge_ra = np.concatenate([ras, ras, np.full(129, ra - width / 2), np.full(129, ra + width / 2)])
    edge_dec = np.concatenate([np.full(129, lo), np.full(129, hi), decs, decs])
    pts = _unit(edge_ra, edge_dec)
    centre = _unit(np.array([ra]), np.array([dec]))[0]
    radius = float(np.degrees(np.arccos(np.clip(pts @ centre, -1, 1))).max())
    return Cone(ra, dec, radius * 1.001 + 1e-6)


def cone_pixels(cone: Cone) -> tuple[int, np.ndarray] | None:
    """HEALPix (nested) pixels overlapping ``cone``, at an order suited to its size.

    None when the cone is too large to be worth pruning.
    """
    if cone.radius >= 90:
        return None
    import astropy.units as u
    import cdshealpix.nested as nested
    from astropy.coordinates import Latitude, Longitude

    order = 29 if cone.radius <= 0 else math.floor(math.log2(58.6 / cone.radius)) + 2
    order = max(0, min(order, 20))
    ipix, _depth, _ = nested.cone_search(
        Longitude(cone.ra * u.deg),
        Latitude(max(-90.0, min(90.0, cone.dec)) * u.deg),
        max(cone.radius, 1e-9) * u.deg,
        depth=order,
        flat=True,
    )
    return order, np.asarray(ipix, dtype=np.int64)
