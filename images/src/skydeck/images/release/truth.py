"""The simulated sky: stars (some variable) and bulge+disk galaxies in ugrizy.

The truth table has one row per object, with DP0.2-style flux columns in nJy
(``flux_<band>``: for variable stars the *mean* flux) and the shape and
variability parameters the renderer needs. Everything follows from the seed.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from skydeck.images.release._config import BANDS, FIELD_DEC, FIELD_RA, ReleaseSize, mag_to_njy

#: Star colours relative to r (mag), drawn per star from a main-sequence-like locus.
_STAR_LOCUS = np.array(
    # g-r, u-g, r-i, i-z, z-y  along a temperature sequence (hot -> cool)
    [
        [-0.2, 0.9, -0.1, -0.05, 0.0],
        [0.2, 1.0, 0.05, 0.0, 0.0],
        [0.5, 1.2, 0.15, 0.05, 0.02],
        [0.8, 1.8, 0.3, 0.12, 0.05],
        [1.2, 2.5, 0.6, 0.3, 0.15],
        [1.4, 2.6, 1.2, 0.6, 0.3],
    ]
)


def _radec_uniform(
    rng: np.random.Generator, n: int, side_deg: float
) -> tuple[np.ndarray, np.ndarray]:
    """Uniform positions on the sphere inside a square of ``side_deg`` at the field centre."""
    half = math.radians(side_deg / 2.0)
    dec0 = math.radians(FIELD_DEC)
    # Uniform in sin(dec) within the band, then RA scaled by cos(dec) at the centre (the field
    # is small: the tangent-plane square and this differ by far less than a pixel at its edge).
    sin_lo, sin_hi = math.sin(dec0 - half), math.sin(dec0 + half)
    dec = np.degrees(np.arcsin(rng.uniform(sin_lo, sin_hi, n)))
    ra = FIELD_RA + rng.uniform(-1, 1, n) * (side_deg / 2.0) / np.cos(np.radians(dec))
    return ra, dec


def _power_law_mags(
    rng: np.random.Generator, n: int, lo: float, hi: float, slope: float
) -> np.ndarray:
    """Magnitudes with dN/dm proportional to 10**(slope * m) between ``lo`` and ``hi``."""
    a = 10 ** (slope * lo)
    b = 10 ** (slope * hi)
    return np.log10(a + rng.uniform(0, 1, n) * (b - a)) / slope


def make_truth(size: ReleaseSize, seed: int) -> pd.DataFrame:
    """The truth catalog for ``size`` and ``seed``.

    Columns: ``id`` (int64), ``truth_type`` (1 star, 2 galaxy), ``ra``, ``dec`` (deg),
    ``flux_<band>`` (nJy, mean flux for variables), ``is_variable``, ``period`` (days),
    ``amplitude`` (fractional semi-amplitude), ``phase`` (cycles), bulge and disk
    half-light radii (arcsec), ``bulge_fraction`` (of the flux), ``ellipticity`` (e1, e2 of
    the disk), ``redshift``.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 2024]))
    area = size.field_arcmin2
    n_star = int(rng.poisson(size.star_density * area))
    n_gal = int(rng.poisson(size.galaxy_density * area))

    # Stars: r from 16 to 24.5 with a shallow slope (high galactic latitude counts).
    r_star = _power_law_mags(rng, n_star, 16.0, 24.5, 0.15)
    locus = _STAR_LOCUS[rng.integers(0, len(_STAR_LOCUS), n_star)]
    locus = locus + rng.normal(0.0, 0.05, locus.shape)
    g = r_star + locus[:, 0]
    u = g + locus[:, 1]
    i = r_star - locus[:, 2]
    z = i - locus[:, 3]
    y = z - locus[:, 4]
    star_mags = {"u": u, "g": g, "r": r_star, "i": i, "z": z, "y": y}
    star_ra, star_dec = _radec_uniform(rng, n_star, size.field_deg)
    variable = rng.uniform(0, 1, n_star) < size.variable_fraction
    period = np.where(variable, 10 ** rng.uniform(-0.7, 1.3, n_star), 0.0)
    amplitude = np.where(variable, rng.uniform(0.05, 0.4, n_star), 0.0)
    phase = np.where(variable, rng.uniform(0, 1, n_star), 0.0)

    # Galaxies: i from 18 to 24.5, steep counts; colours from a red/blue mixture.
    i_gal = _power_law_mags(rng, n_gal, 18.0, 24.5, 0.33)
    red = rng.uniform(0, 1, n_gal) < 0.35
    redshift = np.clip(rng.gamma(2.0, 0.25, n_gal) + 0.05 * (i_gal - 20), 0.02, 3.0)
    gr = np.where(red, 0.9, 0.4) + 0.4 * redshift + rng.normal(0, 0.1, n_gal)
    ug = np.where(red, 1.6, 0.8) + rng.normal(0, 0.15, n_gal)
    ri = np.where(red, 0.45, 0.25) + 0.2 * redshift + rng.normal(0, 0.08, n_gal)
    iz = np.where(red, 0.3, 0.15) + rng.normal(0, 0.06, n_gal)
    zy = np.where(red, 0.15, 0.08) + rng.normal(0, 0.05, n_gal)
    r_gal = i_gal + ri
    g_gal = r_gal + gr
    gal_mags = {
        "u": g_gal + ug,
        "g": g_gal,
        "r": r_gal,
        "i": i_gal,
        "z": i_gal - iz,
        "y": i_gal - iz - zy,
    }
    gal_ra, gal_dec = _radec_uniform(rng, n_gal, size.field_deg)
    # Sizes shrink with magnitude (a loose size-luminosity relation), log-normal scatter.
    disk_hlr = np.clip(
        10 ** (rng.normal(0.0, 0.18, n_gal) - 0.12 * (i_gal - 20.0)) * 0.9, 0.15, 4.0
    )
    bulge_frac = np.where(red, rng.uniform(0.5, 0.9, n_gal), rng.uniform(0.0, 0.3, n_gal))
    bulge_hlr = np.clip(disk_hlr * rng.uniform(0.25, 0.6, n_gal), 0.08, 2.0)
    e_mod = np.clip(np.abs(rng.normal(0, 0.25, n_gal)), 0, 0.7)
    e_ang = rng.uniform(0, np.pi, n_gal)

    n = n_star + n_gal
    table = pd.DataFrame(
        {
            "id": np.arange(1, n + 1, dtype=np.int64) + (np.int64(seed % 1000) << np.int64(40)),
            "truth_type": np.concatenate([np.ones(n_star), 2 * np.ones(n_gal)]).astype(np.int16),
            "ra": np.concatenate([star_ra, gal_ra]),
            "dec": np.concatenate([star_dec, gal_dec]),
        }
    )
    for band in BANDS:
        mags = np.concatenate([star_mags[band], gal_mags[band]])
        table[f"mag_{band}"] = mags
        table[f"flux_{band}"] = np.array([mag_to_njy(m) for m in mags])
    zeros = np.zeros(n_gal)
    table["is_variable"] = np.concatenate([variable, np.zeros(n_gal, bool)])
    table["period"] = np.concatenate([period, zeros])
    table["amplitude"] = np.concatenate([amplitude, zeros])
    table["phase"] = np.concatenate([phase, zeros])
    table["bulge_hlr"] = np.concatenate([np.zeros(n_star), bulge_hlr])
    table["disk_hlr"] = np.concatenate([np.zeros(n_star), disk_hlr])
    table["bulge_fraction"] = np.concatenate([np.zeros(n_star), bulge_frac])
    table["e1"] = np.concatenate([np.zeros(n_star), e_mod * np.cos(2 * e_ang)])
    table["e2"] = np.concatenate([np.zeros(n_star), e_mod * np.sin(2 * e_ang)])
    table["redshift"] = np.concatenate([np.zeros(n_star), redshift])
    return table


def flux_at(table: pd.DataFrame, band: str, mjd: float) -> np.ndarray:
    """Flux (nJy) of every truth object in ``band`` at time ``mjd`` (variables vary)."""
    mean = table[f"flux_{band}"].to_numpy()
    period = table["period"].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        cycles = np.where(period > 0, mjd / np.where(period > 0, period, 1.0), 0.0)
    factor = 1.0 + table["amplitude"].to_numpy() * np.sin(
        2 * np.pi * (cycles + table["phase"].to_numpy())
    )
    return np.asarray(mean * factor)
