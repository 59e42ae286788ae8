"""Deblending and the coadd measurement columns against GalSim truth.

A synthetic coadd of one patch holds two overlapping galaxies, isolated stars and an
isolated galaxy, drawn by GalSim with the coadd's PSF model and Gaussian noise; the
coadd detection and measurement task must split the blend into a parent and two
children (DP0.2's parent/child columns), leave the others isolated, and measure fluxes,
moments and sizes that agree with the truth.
"""

from __future__ import annotations

import json
import math

import astropy.units as u
import galsim
import numpy as np
import pandas as pd
import pytest

from skydeck.images.release import _measure as m
from skydeck.images.release._config import PSF_BETA, SIZES
from skydeck.images.release._geometry import SkyMapSpec
from skydeck.images.release.simulate import mask_schema
from skydeck.images.release.tasks import DetectCoaddTask

SKY_MAP = SkyMapSpec.for_size(SIZES["tiny"])
PATCH = 0
FWHM_ARCSEC = 0.8
NOISE = 10.0  # nJy per pixel
STARS = [(150.0, 150.0, 2e5), (320.0, 140.0, 5e4), (140.0, 330.0, 1e5)]  # x, y, flux (nJy)
#: Two overlapping exponential galaxies 10 px (2") apart: x, y, flux, half-light radius (").
BLEND = [(300.0, 300.0, 4e5, 0.5), (310.0, 303.0, 2e5, 0.4)]
GALAXY = (230.0, 230.0, 3e5, 0.8)


def _psf() -> m.PsfModel:
    return m.moffat(FWHM_ARCSEC / SKY_MAP.pixel_scale, PSF_BETA)


def _coadd(seed: int = 5):
    """A GalSim coadd of the patch's outer region, as `MakeCoaddTask` writes it."""
    from lsst.images import Box, Image, Mask, MaskedImage

    patch = SKY_MAP.patch(PATCH)
    x0, y0, x1, y1 = patch.outer
    shape = (y1 - y0, x1 - x0)
    scene = galsim.ImageF(shape[1], shape[0], scale=1.0)
    psf = _psf().profile
    scale = SKY_MAP.pixel_scale
    objects = [(x, y, f, galsim.DeltaFunction()) for x, y, f in STARS]
    objects += [(x, y, f, galsim.Exponential(half_light_radius=h / scale)) for x, y, f, h in BLEND]
    x, y, f, h = GALAXY
    objects.append((x, y, f, galsim.Exponential(half_light_radius=h / scale)))
    for x, y, flux, profile in objects:
        drawn = galsim.Convolve([profile.withFlux(flux), psf])
        # GalSim offsets are from the image's true centre, ((n - 1) / 2) in 0-based pixels.
        offset = (x - (shape[1] - 1) / 2, y - (shape[0] - 1) / 2)
        drawn.drawImage(scene, offset=offset, add_to_image=True)
    rng = np.random.default_rng(seed)
    pixels = scene.array + rng.normal(0.0, NOISE, shape)
    bbox = Box.from_shape(shape, start=(y0, x0))
    metadata = {
        "PSF_BETA": PSF_BETA,
        "PSF_INPUTS": json.dumps({"fwhm": [FWHM_ARCSEC], "weight": [1.0], "visit": [1]}),
        "NINPUTS": 1,
    }
    return MaskedImage(
        Image(pixels.astype(np.float32), bbox=bbox, unit=u.nJy),
        mask=Mask(schema=mask_schema(), bbox=bbox),
        variance=Image(np.full(shape, NOISE**2, dtype=np.float32), bbox=bbox, unit=u.nJy**2),
        metadata=metadata,
    )


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    result = DetectCoaddTask().run({"r": _coadd()}, SKY_MAP, PATCH).measurement
    ox, oy = SKY_MAP.patch(PATCH).outer[:2]
    result["px"], result["py"] = result["x"] - ox, result["y"] - oy
    return result


def _nearest(table: pd.DataFrame, x: float, y: float, rows: pd.DataFrame | None = None):
    rows = table if rows is None else rows
    d = np.hypot(rows["px"] - x, rows["py"] - y)
    return rows.loc[d.idxmin()], float(d.min())


def test_two_overlapping_galaxies_become_a_parent_and_two_children(table):
    parents = table[table["deblend_nChild"] > 0]
    assert len(parents) == 1
    parent = parents.iloc[0]
    children = table[table["parentObjectId"] == parent["objectId"]]
    assert len(children) == parent["deblend_nChild"] == 2
    assert not parent["detect_isPrimary"] and parent["parentObjectId"] == 0
    assert not parent["detect_isIsolated"] and not parent["detect_fromBlend"]
    for x, y, flux, _ in BLEND:
        child, dist = _nearest(table, x, y, children)
        assert dist < 0.5, (x, y, dist)
        assert child["detect_isPrimary"] and child["detect_fromBlend"]
        assert child["detect_isDeblendedSource"] and child["detect_isDeblendedModelSource"]
        assert not child["detect_isIsolated"] and child["deblend_nChild"] == 0
        # The deblended child's model flux is its own, not the blend's: within 15 %.
        assert child["r_cModelFlux"] == pytest.approx(flux, rel=0.15)
        assert 0 < child["r_blendedness"] < 1 and not child["r_blendedness_flag"]
    # The parent is measured on the undeblended image: it holds (most of) both.
    assert parent["r_kronFlux"] > 1.2 * BLEND[0][2]
    # Every pixel of the footprint went to one child.
    assert children["footprintArea"].sum() == parent["footprintArea"]


def test_isolated_objects_are_isolated_and_primary(table):
    assert len(table) == len(STARS) + 1 + len(BLEND) + 1  # + isolated galaxy + parent
    for x, y, *_ in [*STARS, GALAXY]:
        row, dist = _nearest(table, x, y)
        assert dist < 0.3
        assert row["detect_isIsolated"] and row["detect_isPrimary"]
        assert row["detect_isDeblendedSource"] and not row["detect_isDeblendedModelSource"]
        assert row["parentObjectId"] == 0 and row["deblend_nChild"] == 0
        assert not row["detect_fromBlend"] and not row["deblend_skipped"]
        assert row["r_blendedness"] == 0.0
    assert not table["sky_object"].any()
    assert (table["detect_isPrimary"] == (table["deblend_nChild"] == 0)).all()


def _moffat_enclosed(radius: float) -> float:
    """Fraction of a Moffat's flux within ``radius`` pixels."""
    fwhm = FWHM_ARCSEC / SKY_MAP.pixel_scale
    alpha = fwhm / (2 * math.sqrt(2 ** (1 / PSF_BETA) - 1))
    return 1 - (1 + (radius / alpha) ** 2) ** (1 - PSF_BETA)


def test_star_fluxes_moments_and_sizes_match_the_truth(table):
    psf_moments = m.psf_moments(_psf(), 20)
    for x, y, flux in STARS:
        row, _ = _nearest(table, x, y)
        # Aperture fluxes follow the Moffat's enclosed flux (pixelisation aside) within 4 sigma.
        for r in m.APERTURE_RADII:
            got, err = row[f"r_ap{r:02d}Flux"], row[f"r_ap{r:02d}FluxErr"]
            expected = flux * _moffat_enclosed(r)
            assert abs(got - expected) < 4 * err + 0.02 * expected, (r, got, expected)
            assert not row[f"r_ap{r:02d}Flux_flag"]
        assert row["r_calibFlux"] == row["r_ap12Flux"] and not row["r_calibFlux_flag"]
        assert not row["r_calibFlux_flag_apertureTruncated"]
        assert abs(row["r_kronFlux"] - flux * 0.93) < 0.07 * flux + 4 * row["r_kronFluxErr"]
        # A star's moments are the PSF's; the PSF moments are those of the PSF model.
        assert row["r_ixx"] == pytest.approx(row["r_ixxPSF"], rel=0.05)
        assert row["r_iyy"] == pytest.approx(row["r_iyyPSF"], rel=0.05)
        assert abs(row["r_ixy"]) < 0.05 * row["r_ixxPSF"]
        assert row["r_ixxPSF"] == pytest.approx(psf_moments.xx, rel=1e-6)
        assert row["shape_xx"] == row["r_ixx"] and not row["shape_flag"]
        assert row["r_extendedness"] == 0.0 and not row["r_extendedness_flag"]


def test_galaxy_is_extended_and_larger_than_the_psf(table):
    row, _ = _nearest(table, *GALAXY[:2])
    assert row["r_extendedness"] == 1.0
    assert row["r_ixx"] > 1.5 * row["r_ixxPSF"] and row["r_iyy"] > 1.5 * row["r_iyyPSF"]
    star, _ = _nearest(table, *STARS[0][:2])
    assert row["r_kronRad"] > 1.3 * star["r_kronRad"]
    assert row["r_kronFlux"] == pytest.approx(GALAXY[2], rel=0.12)
