"""Small, correct measurement algorithms shared by the pipeline tasks.

* detection: PSF-matched filter, S/N threshold, one source per local peak;
* centroid: iterated Gaussian-weighted first moments (SDSS-like), exact for a
  symmetric profile, with errors from the variance plane;
* PSF flux: linear least-squares fit of the known PSF (pixel-integrated GalSim
  Moffat) at the centroid, weights from the variance plane, masked pixels
  excluded; the error is the formal one;
* cModel-like flux: best of PSF and PSF-convolved exponential profiles (a grid
  of half-light radii), each fitted linearly for its flux;
* aperture flux in a circle of given radius (sum of pixels, error from variance).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import galsim
import numpy as np
from scipy import ndimage

#: Detection threshold (S/N of the PSF-matched filtered image).
DETECTION_THRESHOLD = 5.0

#: Half-light radii (arcsec) of the exponential models tried by the cModel-like fit.
EXP_RADII = (0.15, 0.25, 0.4, 0.6, 0.9, 1.3, 2.0, 3.0)


@dataclass
class Peak:
    x: float
    y: float
    sn: float
    footprint: int
    area: int


def detect(
    image: np.ndarray, variance: np.ndarray, bad: np.ndarray, sigma: float, threshold: float
) -> tuple[list[Peak], np.ndarray]:
    """Peaks above ``threshold`` in the PSF-matched S/N map, and the footprint mask."""
    img = np.where(bad, 0.0, image).astype(np.float64)
    var = np.where(bad | ~np.isfinite(variance), np.nan, variance).astype(np.float64)
    fill = np.nanmedian(var) if np.isfinite(var).any() else 1.0
    var = np.where(np.isnan(var), fill * 1e6, var)
    num = ndimage.gaussian_filter(img, sigma, mode="constant")
    # Variance of the filtered image: sum g^2 V, with sum g^2 = 1/(4 pi sigma^2) for smooth V.
    den = np.sqrt(ndimage.gaussian_filter(var, sigma / math.sqrt(2.0), mode="nearest"))
    sn = num / (den / (2.0 * math.sqrt(math.pi) * sigma))
    above = sn > threshold
    labels, nlab = ndimage.label(above)
    if nlab == 0:
        return [], above
    local_max = (sn == ndimage.maximum_filter(sn, size=5, mode="constant")) & above
    areas = ndimage.sum_labels(np.ones_like(sn), labels, index=np.arange(1, nlab + 1))
    ys, xs = np.nonzero(local_max)
    peaks = [
        Peak(float(x), float(y), float(sn[y, x]), int(labels[y, x]), int(areas[labels[y, x] - 1]))
        for y, x in zip(ys, xs, strict=True)
    ]
    return peaks, above


def _stamp(
    arr: np.ndarray, xc: int, yc: int, r: int
) -> tuple[np.ndarray, tuple[slice, slice], int, int] | None:
    ny, nx = arr.shape
    x0, x1, y0, y1 = xc - r, xc + r + 1, yc - r, yc + r + 1
    if x0 < 0 or y0 < 0 or x1 > nx or y1 > ny:
        return None
    return arr[y0:y1, x0:x1], (slice(y0, y1), slice(x0, x1)), x0, y0


def centroid(
    image: np.ndarray,
    variance: np.ndarray,
    bad: np.ndarray,
    x: float,
    y: float,
    sigma: float,
    iterations: int = 8,
) -> tuple[float, float, float, float, bool]:
    """Iterated Gaussian-weighted centroid: (x, y, xErr, yErr, flag)."""
    r = math.ceil(4 * sigma) + 1
    xc, yc = x, y
    err_x = err_y = float("nan")
    for _ in range(iterations):
        ix, iy = round(xc), round(yc)
        cut = _stamp(image, ix, iy, r)
        if cut is None:
            return x, y, float("nan"), float("nan"), True
        data, sl, x0, y0 = cut
        var = variance[sl]
        good = ~bad[sl]
        yy, xx = np.mgrid[y0 : y0 + 2 * r + 1, x0 : x0 + 2 * r + 1]
        w = np.exp(-0.5 * ((xx - xc) ** 2 + (yy - yc) ** 2) / sigma**2) * good
        wi = w * data
        norm = wi.sum()
        if not norm > 0:
            return x, y, float("nan"), float("nan"), True
        # For a Gaussian weight matched to the profile, the weighted first moment is
        # half-way to the true centre, so the step is doubled (SDSS centroid logic).
        dx = 2.0 * float((wi * (xx - xc)).sum() / norm)
        dy = 2.0 * float((wi * (yy - yc)).sum() / norm)
        dx, dy = float(np.clip(dx, -1.0, 1.0)), float(np.clip(dy, -1.0, 1.0))
        xc, yc = xc + dx, yc + dy
        err_x = 2.0 * float(np.sqrt((w**2 * var * (xx - xc) ** 2).sum()) / norm)
        err_y = 2.0 * float(np.sqrt((w**2 * var * (yy - yc) ** 2).sum()) / norm)
        if abs(dx) < 1e-4 and abs(dy) < 1e-4:
            break
    flag = abs(xc - x) > 3 * sigma or abs(yc - y) > 3 * sigma
    return xc, yc, err_x, err_y, flag


#: Sub-pixel grid of the cached model stamps: positions are rounded to 1/SUBPIXEL pixel
#: (at most 0.05 px off, a flux error below 1e-3 for the PSFs here).
SUBPIXEL = 10


@dataclass(frozen=True)
class PsfModel:
    """A PSF as a weighted sum of Moffat profiles, in pixel units.

    Plain numbers, so it hashes cheaply and keys the stamp cache (hashing GalSim
    objects goes through their ``repr``, which costs more than drawing small stamps).
    """

    fwhms: tuple[float, ...]
    weights: tuple[float, ...]
    beta: float

    @functools.cached_property
    def profile(self) -> galsim.GSObject:
        if len(self.fwhms) == 1:
            return galsim.Moffat(beta=self.beta, fwhm=self.fwhms[0])
        return galsim.Add(
            [
                galsim.Moffat(beta=self.beta, fwhm=f).withFlux(w)
                for f, w in zip(self.fwhms, self.weights, strict=True)
            ]
        )


#: Pixels drawn around a model stamp so that the Fourier shift's wrap-around stays
#: outside it (the shifted stamp then matches GalSim's own offset drawing to 1e-5).
_SHIFT_PAD = 10


@functools.lru_cache(maxsize=1024)
def _centred_spectrum(psf: PsfModel, hlr_pixels: float, r: int) -> np.ndarray:
    """The Fourier transform of the model drawn by GalSim, centred on a padded stamp."""
    profile = psf.profile
    if hlr_pixels > 0:
        profile = galsim.Convolve([galsim.Exponential(half_light_radius=hlr_pixels), profile])
    n = 2 * (r + _SHIFT_PAD) + 1
    img = profile.drawImage(nx=n, ny=n, scale=1.0)
    return np.fft.rfft2(np.asarray(img.array, dtype=np.float64))


@functools.lru_cache(maxsize=16384)
def _drawn(psf: PsfModel, hlr_pixels: float, qx: int, qy: int, r: int) -> np.ndarray:
    """The model offset by (qx, qy)/`SUBPIXEL` pixels: one GalSim drawing per model and
    stamp size, shifted in Fourier space (5x cheaper than drawing each offset)."""
    spectrum = _centred_spectrum(psf, hlr_pixels, r)
    n = spectrum.shape[0]
    phase_x = np.exp(-2j * np.pi * np.fft.rfftfreq(n) * (qx / SUBPIXEL))
    phase_y = np.exp(-2j * np.pi * np.fft.fftfreq(n) * (qy / SUBPIXEL))
    shifted = np.fft.irfft2(spectrum * phase_y[:, None] * phase_x[None, :], s=(n, n))
    out = np.ascontiguousarray(shifted[_SHIFT_PAD:-_SHIFT_PAD, _SHIFT_PAD:-_SHIFT_PAD])
    out.flags.writeable = False
    return out


def psf_model_stamp(
    psf: PsfModel, x: float, y: float, r: int, hlr_pixels: float = 0.0
) -> tuple[np.ndarray, int, int]:
    """The pixel-integrated PSF (convolved with an exponential of half-light radius
    ``hlr_pixels`` if positive) centred at (x, y) on a (2r+1)² stamp.

    Stamps are cached on a 1/`SUBPIXEL` pixel grid of offsets.
    """
    ix, iy = round(x), round(y)
    qx, qy = round((x - ix) * SUBPIXEL), round((y - iy) * SUBPIXEL)
    return _drawn(psf, hlr_pixels, qx, qy, r), ix - r, iy - r


def linear_flux(
    image: np.ndarray,
    variance: np.ndarray,
    bad: np.ndarray,
    model: np.ndarray,
    x0: int,
    y0: int,
) -> tuple[float, float, float, bool]:
    """Least-squares amplitude of a unit-flux ``model`` at (x0, y0): flux, err, chi2, flag."""
    ny, nx = model.shape
    H, W = image.shape
    xa, ya = max(0, x0), max(0, y0)
    xb, yb = min(W, x0 + nx), min(H, y0 + ny)
    if xb <= xa or yb <= ya:
        return float("nan"), float("nan"), float("nan"), True
    m = model[ya - y0 : yb - y0, xa - x0 : xb - x0]
    d = image[ya:yb, xa:xb].astype(np.float64)
    v = variance[ya:yb, xa:xb].astype(np.float64)
    good = ~bad[ya:yb, xa:xb] & np.isfinite(v) & (v > 0)
    if good.sum() < 5:
        return float("nan"), float("nan"), float("nan"), True
    wv = np.where(good, 1.0 / np.where(good, v, 1.0), 0.0)
    a = float((m * m * wv).sum())
    if a <= 0:
        return float("nan"), float("nan"), float("nan"), True
    flux = float((m * d * wv).sum() / a)
    chi2 = float((((d - flux * m) ** 2) * wv).sum())
    truncated = (xb - xa) < nx or (yb - ya) < ny
    return flux, 1.0 / math.sqrt(a), chi2, truncated or bool((~good).any())


def psf_flux(
    image: np.ndarray,
    variance: np.ndarray,
    bad: np.ndarray,
    psf: PsfModel,
    x: float,
    y: float,
    radius: int,
) -> tuple[float, float, bool]:
    """PSF-fit flux at (x, y): flux, error, flag (masked pixels inside or off the image)."""
    model, x0, y0 = psf_model_stamp(psf, x, y, radius)
    flux, err, _, flag = linear_flux(image, variance, bad, model, x0, y0)
    return flux, err, flag


def cmodel_flux(
    image: np.ndarray,
    variance: np.ndarray,
    bad: np.ndarray,
    psf: PsfModel,
    pixel_scale: float,
    x: float,
    y: float,
    radius: int,
) -> tuple[float, float, float, float]:
    """Best of PSF and PSF⊗exponential models: (flux, err, psf_flux_same_stamp, hlr_arcsec)."""
    best: tuple[float, float, float, float] | None = None
    psf_f = float("nan")
    for hlr in (0.0, *EXP_RADII):
        model, x0, y0 = psf_model_stamp(psf, x, y, radius, hlr / pixel_scale)
        flux, err, chi2, _ = linear_flux(image, variance, bad, model, x0, y0)
        if hlr == 0.0:
            psf_f = flux
        if math.isfinite(chi2) and (best is None or chi2 < best[2]):
            best = (flux, err, chi2, hlr)
    if best is None:
        return float("nan"), float("nan"), psf_f, float("nan")
    return best[0], best[1], psf_f, best[3]


def aperture_flux(
    image: np.ndarray, variance: np.ndarray, x: float, y: float, radius: float
) -> tuple[float, float, bool]:
    """Sum of pixels whose centres lie within ``radius`` of (x, y): flux, err, truncated flag."""
    r = math.ceil(radius) + 1
    ix, iy = round(x), round(y)
    H, W = image.shape
    xa, xb = max(0, ix - r), min(W, ix + r + 1)
    ya, yb = max(0, iy - r), min(H, iy + r + 1)
    yy, xx = np.mgrid[ya:yb, xa:xb]
    inside = (xx - x) ** 2 + (yy - y) ** 2 <= radius**2
    flux = float(image[ya:yb, xa:xb][inside].sum())
    err = float(math.sqrt(variance[ya:yb, xa:xb][inside].sum()))
    truncated = ix - r < 0 or iy - r < 0 or ix + r + 1 > W or iy + r + 1 > H
    return flux, err, truncated


def moffat(fwhm_pixels: float, beta: float) -> PsfModel:
    """A Moffat PSF in pixel units."""
    return PsfModel((float(fwhm_pixels),), (1.0,), float(beta))


def weighted_psf(fwhms: Sequence[float], weights: Sequence[float], beta: float) -> PsfModel:
    """The PSF of a weighted mean of images with Moffat PSFs (pixel units)."""
    total = float(sum(weights))
    return PsfModel(
        tuple(float(f) for f in fwhms), tuple(float(w) / total for w in weights), float(beta)
    )


def cached_planes(mask_get: Callable[[str], np.ndarray]) -> Callable[[str], np.ndarray]:
    """``mask_get`` remembering each plane: `pixel_flags` asks for the same planes per source."""
    return functools.cache(mask_get)


def pixel_flags(
    mask_get: Callable[[str], np.ndarray], x: float, y: float, r: int
) -> dict[str, bool]:
    """DP0.2 pixelFlags_bad/_edge/_saturated(Center) around (x, y) within ``r`` pixels."""
    out: dict[str, bool] = {}
    for plane, name in (("BAD", "bad"), ("SAT", "saturated"), ("EDGE", "edge")):
        arr = mask_get(plane)
        ix, iy = round(x), round(y)
        H, W = arr.shape
        inside = 0 <= ix < W and 0 <= iy < H
        cut = arr[max(0, iy - r) : iy + r + 1, max(0, ix - r) : ix + r + 1]
        out[f"pixelFlags_{name}"] = bool(cut.any()) if inside else True
        if name == "saturated":
            out["pixelFlags_saturatedCenter"] = bool(arr[iy, ix]) if inside else True
    return out


def psf_sigma(fwhm_pixels: float) -> float:
    """Sigma (pixels) of the Gaussian with the same FWHM, for filtering and weights."""
    return fwhm_pixels / (2.0 * math.sqrt(2.0 * math.log(2.0)))
