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


def deblend_footprint(
    sn: np.ndarray, peaks: Sequence[tuple[int, int]], levels: int = 32
) -> np.ndarray:
    """Split one footprint among its peaks: a watershed of the S/N map seeded at the peaks.

    ``sn`` is the PSF-filtered S/N map cut to the footprint's bounding box, with pixels
    outside the footprint at or below zero; ``peaks`` are (x, y) in that box. Returns an
    int map: the index of the peak owning each footprint pixel, -1 outside the footprint.

    The flooding is by thresholds, as SExtractor's and photutils' ``deblend_sources``
    (Bertin & Arnouts 1996): going down ``levels`` logarithmic steps of S/N, the pixels
    that rise above the current level join the nearest pixel already owned, so a
    boundary between two overlapping sources runs along the saddle of light between them.
    """
    inside = sn > 0
    owner = np.full(sn.shape, -1, dtype=np.int32)
    for k, (x, y) in enumerate(peaks):
        owner[y, x] = k
    if not inside.any():
        return owner
    top, low = float(sn[inside].max()), float(sn[inside].min())
    for level in np.geomspace(top, low, levels):
        todo = inside & (sn >= level) & (owner < 0)
        if not todo.any():
            continue
        _, (iy, ix) = ndimage.distance_transform_edt(owner < 0, return_indices=True)
        owner[todo] = owner[iy[todo], ix[todo]]
    owner[~inside] = -1
    return owner


def blendedness(
    image: np.ndarray,
    x: float,
    y: float,
    sigma: float,
    hidden: np.ndarray | None = None,
    box: tuple[slice, slice] | None = None,
) -> tuple[float, bool]:
    """1 - child/parent flux, with Gaussian-weighted sums of absolute pixel values
    (Bosch et al. 2018, PASJ 70, S5, section 4.9.11). ``hidden`` marks, within ``box``,
    the pixels the deblender gave to the other children: the child image is the image
    without them. Isolated sources have 0."""
    r = math.ceil(4 * sigma) + 1
    ix, iy = round(x), round(y)
    H, W = image.shape
    xa, xb, ya, yb = max(0, ix - r), min(W, ix + r + 1), max(0, iy - r), min(H, iy + r + 1)
    if xb <= xa or yb <= ya:
        return float("nan"), True
    yy, xx = np.mgrid[ya:yb, xa:xb]
    w = np.exp(-0.5 * ((xx - x) ** 2 + (yy - y) ** 2) / sigma**2)
    data = np.abs(image[ya:yb, xa:xb].astype(np.float64))
    parent = float((w * data).sum())
    if not parent > 0:
        return float("nan"), True
    child_data = data
    if hidden is not None and box is not None:
        hy, hx = np.nonzero(hidden)
        gy, gx = hy + (box[0].start or 0), hx + (box[1].start or 0)
        keep = (gy >= ya) & (gy < yb) & (gx >= xa) & (gx < xb)
        child_data = data.copy()
        child_data[gy[keep] - ya, gx[keep] - xa] = 0.0
    child = float((w * child_data).sum())
    return 1.0 - child / parent, False


@dataclass
class Moments:
    """Adaptive (HSM) second moments in pixels²."""

    xx: float
    yy: float
    xy: float
    flag: bool

    @classmethod
    def failed(cls) -> Moments:
        return cls(float("nan"), float("nan"), float("nan"), True)


def adaptive_moments(
    image: np.ndarray, bad: np.ndarray, x: float, y: float, sigma: float, r: int
) -> Moments:
    """GalSim's HSM adaptive moments (Bernstein & Jarvis 2002; Hirata & Seljak 2003) of
    the stamp of half-size ``r`` around (x, y), masked pixels excluded."""
    ix, iy = round(x), round(y)
    H, W = image.shape
    xa, xb, ya, yb = max(0, ix - r), min(W, ix + r + 1), max(0, iy - r), min(H, iy + r + 1)
    if xb - xa < 5 or yb - ya < 5:
        return Moments.failed()
    stamp = galsim.Image(
        np.ascontiguousarray(image[ya:yb, xa:xb], dtype=np.float64), xmin=xa + 1, ymin=ya + 1
    )
    badpix = galsim.Image(bad[ya:yb, xa:xb].astype(np.int32), xmin=xa + 1, ymin=ya + 1)
    try:
        res = galsim.hsm.FindAdaptiveMom(
            stamp,
            badpix=badpix,
            guess_sig=sigma,
            guess_centroid=galsim.PositionD(x + 1, y + 1),
            strict=True,
        )
    except galsim.GalSimError:
        return Moments.failed()
    s2 = res.moments_sigma**2
    e1, e2 = res.observed_shape.e1, res.observed_shape.e2
    trace = 2.0 * s2 / math.sqrt(max(1e-12, 1.0 - e1 * e1 - e2 * e2))
    return Moments(trace * (1 + e1) / 2, trace * (1 - e1) / 2, trace * e2 / 2, False)


def psf_moments(psf: PsfModel, r: int) -> Moments:
    """Adaptive moments of the PSF model itself (pixel-integrated, centred)."""
    model, _, _ = psf_model_stamp(psf, float(r), float(r), r)
    sigma = psf_sigma(psf.fwhms[0])
    return adaptive_moments(
        np.asarray(model), np.zeros(model.shape, dtype=bool), float(r), float(r), sigma, r
    )


#: Radii (pixels) of DP0.2's circular apertures ap03Flux ... ap70Flux.
APERTURE_RADII = (3, 6, 9, 12, 17, 25, 35, 50, 70)


def aperture_fluxes(
    image: np.ndarray,
    variance: np.ndarray,
    bad: np.ndarray,
    x: float,
    y: float,
    radii: Sequence[int] = APERTURE_RADII,
) -> list[tuple[float, float, bool]]:
    """Fluxes in circles of ``radii`` (whole) pixels around (x, y): (flux, err, flag) each.

    Pixels on the edge count by the fraction of their area inside (approximated by the
    distance of their centre from the circle, exact to ~1e-3 of the area for r >= 3);
    an aperture leaving the image or touching a masked pixel gives NaN and the flag.
    """
    H, W = image.shape
    fits = [
        x - r >= -0.5 and y - r >= -0.5 and x + r <= W - 0.5 and y + r <= H - 0.5 for r in radii
    ]
    failed = (float("nan"), float("nan"), True)
    if not any(fits):
        return [failed] * len(radii)
    # One pass over the largest stamp: pixels binned by distance into the disc inside
    # r - 1/2 (weight 1) and the annulus r +- 1/2 (weight r + 1/2 - d) of each radius.
    ix, iy = round(x), round(y)
    half = math.ceil(max(r for r, ok in zip(radii, fits, strict=True) if ok)) + 1
    xa, xb = max(0, ix - half), min(W, ix + half + 1)
    ya, yb = max(0, iy - half), min(H, iy + half + 1)
    dx, dy = np.arange(xa, xb) - x, np.arange(ya, yb) - y
    d = np.sqrt(dy[:, None] ** 2 + dx[None, :] ** 2).ravel()
    # u = n for n - 1/2 <= d < n + 1/2: the disc inside r - 1/2 is u < r, the annulus u = r.
    u = np.floor(d + 0.5).astype(np.intp)
    n = int(u.max()) + 1
    data = image[ya:yb, xa:xb].ravel().astype(np.float64)
    var = variance[ya:yb, xa:xb].ravel().astype(np.float64)
    s_i, s_di = np.bincount(u, data, n), np.bincount(u, d * data, n)
    s_v, s_dv = np.bincount(u, var, n), np.bincount(u, d * var, n)
    s_ddv = np.bincount(u, d * d * var, n)
    c_i, c_v = np.cumsum(s_i), np.cumsum(s_v)
    c_bad = np.cumsum(np.bincount(u, bad[ya:yb, xa:xb].ravel().astype(np.float64), n))
    out: list[tuple[float, float, bool]] = [failed] * len(radii)
    for k, radius in enumerate(radii):
        if not fits[k] or c_bad[radius] > 0:
            continue
        top = radius + 0.5
        flux = c_i[radius - 1] + top * s_i[radius] - s_di[radius]
        v = c_v[radius - 1] + top * top * s_v[radius] - 2 * top * s_dv[radius] + s_ddv[radius]
        out[k] = (float(flux), float(math.sqrt(max(v, 0.0))), False)
    return out


@dataclass
class Kron:
    flux: float
    err: float
    radius: float
    flag: bool


#: Kron aperture in units of the Kron radius, and the window (in units of the
#: moments radius) over which the Kron radius is measured (Kron 1980; SExtractor).
KRON_FACTOR = 2.5
KRON_WINDOW = 6.0


def kron_flux(
    image: np.ndarray,
    variance: np.ndarray,
    bad: np.ndarray,
    x: float,
    y: float,
    shape: Moments,
) -> Kron:
    """Kron photometry: the first-moment radius r1 = Σ r I / Σ I in the elliptical
    radius of the object's second moments (out to KRON_WINDOW moments radii), and the
    flux inside KRON_FACTOR r1. The radius is sqrt(a b) in pixels, as DP0.2's kronRad."""
    if shape.flag:
        return Kron(float("nan"), float("nan"), float("nan"), True)
    det = shape.xx * shape.yy - shape.xy**2
    if not det > 0:
        return Kron(float("nan"), float("nan"), float("nan"), True)
    size = det**0.25  # sqrt(a b) of the moments ellipse
    half = (shape.xx - shape.yy) / 2
    major = math.sqrt((shape.xx + shape.yy) / 2 + math.hypot(half, shape.xy))
    r = math.ceil(KRON_WINDOW * major) + 2
    ix, iy = round(x), round(y)
    H, W = image.shape
    xa, xb, ya, yb = ix - r, ix + r + 1, iy - r, iy + r + 1
    if xa < 0 or ya < 0 or xb > W or yb > H:
        return Kron(float("nan"), float("nan"), float("nan"), True)
    yy, xx = np.mgrid[ya:yb, xa:xb]
    dx, dy = xx - x, yy - y
    # Elliptical radius, in units where the moments ellipse has radius sqrt(a b).
    q = (shape.yy * dx * dx - 2 * shape.xy * dx * dy + shape.xx * dy * dy) / det
    rell = np.sqrt(q) * size
    data = image[ya:yb, xa:xb].astype(np.float64)
    good = ~bad[ya:yb, xa:xb]
    window = (rell <= KRON_WINDOW * size) & good
    total = float(data[window].sum())
    if not total > 0:
        return Kron(float("nan"), float("nan"), float("nan"), True)
    r1 = float((rell[window] * data[window]).sum() / total)
    if not r1 > 0:
        return Kron(float("nan"), float("nan"), float("nan"), True)
    frac = np.clip(KRON_FACTOR * r1 + 0.5 - rell, 0.0, 1.0)
    used = frac > 0
    if (~good[used]).any() or KRON_FACTOR * r1 * major / size > r - 1:
        return Kron(float("nan"), float("nan"), r1, True)
    flux = float((frac * data).sum())
    err = float(math.sqrt((frac**2 * variance[ya:yb, xa:xb]).sum()))
    return Kron(flux, err, r1, False)
