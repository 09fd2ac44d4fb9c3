"""DescriptorEmbedder: a hand-built global descriptor for product photos (no learned weights).

It is the offline default because no CLIP weights can be loaded here. It is not CLIP and knows
nothing of meaning; it describes what a product photo looks like. The query it is built for is a
seller's photo showing *another view* (back, detail, alternate angle) of a product whose other
photos are in the catalog, so it leans on what survives a change of view: the product's colours
and its surface texture, and only lightly on where things are in the frame.

1. **Foreground isolation.** Transparent pixels (cut-out shots) are laid on white. The background
   colour is the median of the image border. It is trusted only when it looks like a backdrop: a
   light, nearly neutral studio colour that most of the border shares, or any colour that almost
   all of the border shares (a plain coloured or grey wall). A close-up whose border is the
   garment itself is therefore described whole, instead of keeping only the few pixels (skin, a
   seam) that differ from the garment. Pixels far from a trusted background (Lab distance) form
   the product mask, cleaned by morphology; the image is cropped to the mask's bounding box and
   padded to a square, so scale and position stop mattering.
2. **Colour, two resolutions** (the dominant cue). Joint hue x saturation x value histograms of
   the foreground, each with a separate value histogram for unsaturated pixels (black, white and
   grey garments): a fine one (24 x 6 x 6 + 16 grey bins) separates close shades, a coarse one
   (16 x 4 x 4 + 8 grey bins) still matches when lighting or a re-encode shifts a colour across
   a fine bin edge. Summing both cosines works as a small pyramid match in colour space.
3. **Lab colour.** A joint 8 x 8 x 8 histogram in CIE Lab, a perceptually even space, which
   complements HSV where hue is unstable (dark and pale colours).
4. **Texture.** A histogram of 8-neighbour local binary patterns of the grey foreground: knit,
   mesh, quilting and print differ from plain fabric and from metal or plastic, whatever the view.
5. **Edges.** A global histogram of gradient orientations (18 bins, magnitude-weighted) and a
   coarse spatial one (4 x 4 cells x 9 bins on a 64 px crop). Kept light: across views the
   spatial layout changes, so it only breaks ties between equally coloured products.
6. **Shape** (colour-invariant). Orientation histograms in 6 x 6 cells of a 96 px grey crop, each
   pixel weighted by a *saturating* function of its gradient magnitude (``m / (m + m90 / 4)``,
   ``m90`` the photo's 90th percentile), so an edge counts about the same whether the product is
   black, white or steel on its backdrop, and unsigned, so a dark-on-light edge equals a
   light-on-dark one. It is what still ranks a colour variant of an appliance that no listing
   shows near the listed colours, and it keeps degraded copies near their originals.

Photos of a display (a seller photographing a listing on a screen) are warped flat first: a dark
bezel ringing a bright convex quadrilateral is found with contours and the quadrilateral is
rectified, so the backdrop around the display does not pass for the product's colours.

Every histogram is divided by its mass and square-rooted (Hellinger), each block is
L2-normalised and weighted (``WEIGHTS``), and the whole vector L2-normalised, so the inner
product of two descriptors is a weighted sum of per-block similarities (by weight squared).
A mean-colour layout grid and a silhouette were dropped: both describe the pose of the photo
rather than the product and made other-view matches worse (v3 re-tried a silhouette HOG beside the
shape block: it helped unseen appliance colours but cost more on garments' other views).
The shape block's weight (1.0) was chosen on evals/sets/dev/dev.jsonl among 0, 0.5, 1, 1.5, 2: higher
weights raise unseen-colour recall but lower held-out garment views at rank 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from PIL import Image

from retrieval.embedders.base import l2_normalise
from retrieval.images import on_white

WORK_SIDE = 256  # photos are first shrunk so the longer side is at most this, px
SIZE = 128  # side of the square crop every feature is computed on, px
BG_DISTANCE = 18.0  # Lab distance from the border colour above which a pixel is foreground
BG_LIGHT = 200  # a studio backdrop: border median with L (0-255) at least this ...
BG_NEUTRAL = 12.0  # ... and chroma at most this ...
BG_SHARED = 0.4  # ... shared (within BG_DISTANCE) by at least this fraction of the border
BG_UNIFORM = 0.85  # any border colour shared by at least this fraction is a backdrop too
SATURATED = 40  # HSV saturation (0-255) below which a pixel counts as grey
FINE = (24, 6, 6, 16)  # hue, saturation, value bins for saturated pixels; grey-level bins
COARSE = (16, 4, 4, 8)
LAB_BINS = 8  # per channel
HOG_CELLS, HOG_BINS, HOG_SIDE = 4, 9, 64  # spatial orientation histograms, 9 unsigned bins
ORIENT_BINS = 18  # global orientation histogram
# block weights; the descriptor's inner product weighs the blocks' cosines by weight squared
WEIGHTS = {"fine": 1.0, "coarse": 1.0, "lab": 0.5, "lbp": 0.5, "orient": 0.5, "hog": 0.5,
           "shape": 1.0, "sil": 0.0}
SHAPE_CELLS, SHAPE_SIDE = 6, 96

SCREEN_DARK = 90  # grey level below which a pixel may belong to a display's bezel
SCREEN_AREA = (0.15, 0.95)  # fraction of the photo a display's inner quadrilateral covers
SCREEN_INSET = 0.03  # fraction of the rectified display trimmed on each side (bezel, edge glare)

_KERNEL = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
# the 8 neighbours of a pixel, clockwise from top-left, for local binary patterns
_NEIGHBOURS = ((-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1))


def foreground_mask(rgb: np.ndarray) -> np.ndarray:
    """Boolean mask of the product; the whole frame when the border is not a backdrop."""
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float32)
    border = np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]])
    background = np.median(border, axis=0)
    shared = float((np.linalg.norm(border - background, axis=1) < BG_DISTANCE).mean())
    chroma = float(np.hypot(background[1] - 128.0, background[2] - 128.0))
    studio = background[0] >= BG_LIGHT and chroma <= BG_NEUTRAL and shared >= BG_SHARED
    whole = np.ones(rgb.shape[:2], dtype=bool)
    if not (studio or shared >= BG_UNIFORM):
        return whole
    mask = (np.linalg.norm(lab - background, axis=2) > BG_DISTANCE).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, _KERNEL)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, _KERNEL)
    coverage = mask.mean()
    if coverage < 0.02 or coverage > 0.97:  # nothing stands out, or nothing is background
        return whole
    return mask.astype(bool)


def _order_corners(quad: np.ndarray) -> np.ndarray:
    """Top-left, top-right, bottom-right, bottom-left."""
    total, diff = quad.sum(axis=1), np.diff(quad, axis=1).ravel()
    return np.array([quad[total.argmin()], quad[diff.argmin()], quad[total.argmax()],
                     quad[diff.argmax()]], dtype=np.float32)


def _unscreen(rgb: np.ndarray) -> np.ndarray:
    """A photo of a display, warped flat to the display's content; other photos unchanged."""
    flat = flatten_screen(rgb)
    return rgb if flat is None else flat


def flatten_screen(rgb: np.ndarray) -> np.ndarray | None:
    """The content of the display a photo shows, warped flat; ``None`` when it shows none.

    A display shows as a dark bezel ringing a bright convex quadrilateral: the smallest large
    four-cornered hole in the dark pixels that is itself mostly not dark.
    """
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    dark = (grey < SCREEN_DARK).astype(np.uint8)
    contours, _ = cv2.findContours(dark, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    best, best_area = None, np.inf
    for contour in contours:
        area = cv2.contourArea(contour)
        if not SCREEN_AREA[0] * grey.size <= area <= SCREEN_AREA[1] * grey.size or area >= best_area:
            continue
        quad = cv2.approxPolyDP(contour, 0.03 * cv2.arcLength(contour, True), True)
        if len(quad) != 4 or not cv2.isContourConvex(quad):
            continue
        inside = np.zeros_like(dark)
        cv2.fillConvexPoly(inside, quad, 1)
        if dark[inside.astype(bool)].mean() > 0.4:
            continue
        best, best_area = quad.reshape(4, 2).astype(np.float32), area
    if best is None:
        return None
    corners = _order_corners(best)
    width = int(max(np.linalg.norm(corners[1] - corners[0]), np.linalg.norm(corners[2] - corners[3])))
    height = int(max(np.linalg.norm(corners[3] - corners[0]), np.linalg.norm(corners[2] - corners[1])))
    dx, dy = SCREEN_INSET * width, SCREEN_INSET * height
    target = np.array([[-dx, -dy], [width + dx, -dy], [width + dx, height + dy], [-dx, height + dy]],
                      dtype=np.float32)
    warp = cv2.getPerspectiveTransform(corners, target)
    return cv2.warpPerspective(rgb, warp, (max(width, 8), max(height, 8)), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE)


def _square_crop(rgb: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Crop to the mask's bounding box, pad to a square with white, resize to SIZE."""
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    rgb, mask = rgb[y0:y1, x0:x1], mask[y0:y1, x0:x1]
    h, w = mask.shape
    side = max(h, w)
    # shrunk to SIZE, a strip thinner than two output pixels (a 2000 x 1 photo) would blur
    # into the white padding; thickened to that, it keeps its colours (no usual photo is this
    # thin, and photos smaller than SIZE are enlarged, not shrunk)
    thin = 2 * -(-side // SIZE)
    if side > SIZE and min(h, w) < thin:
        size = (w, thin) if h < thin else (thin, h)  # OpenCV sizes are (width, height)
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_NEAREST)
        mask = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
        h, w = mask.shape
    top, left = (side - h) // 2, (side - w) // 2
    canvas = np.full((side, side, 3), 255, dtype=np.uint8)
    canvas[top:top + h, left:left + w] = rgb
    square_mask = np.zeros((side, side), dtype=np.uint8)
    square_mask[top:top + h, left:left + w] = mask
    canvas = cv2.resize(canvas, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    square_mask = cv2.resize(square_mask, (SIZE, SIZE), interpolation=cv2.INTER_NEAREST)
    return canvas, square_mask.astype(bool)


def _hellinger(counts: np.ndarray) -> np.ndarray:
    """Square root of a histogram divided by its mass."""
    counts = np.asarray(counts, dtype=np.float32)
    total = float(counts.sum())
    return np.sqrt(counts / total) if total > 0 else counts


def _hsv_histogram(h: np.ndarray, s: np.ndarray, v: np.ndarray,
                   bins: tuple[int, int, int, int]) -> np.ndarray:
    """Joint hue x saturation x value histogram of saturated pixels, then the rest's grey levels."""
    hue_bins, sat_bins, val_bins, grey_bins = bins
    saturated = s >= SATURATED
    hs, ss, vs = h[saturated], s[saturated], v[saturated]
    joint = ((hs * hue_bins // 180) * sat_bins + ss * sat_bins // 256) * val_bins \
        + vs * val_bins // 256
    colour = np.bincount(joint, minlength=hue_bins * sat_bins * val_bins)
    grey = np.bincount(v[~saturated] * grey_bins // 256, minlength=grey_bins)
    return _hellinger(np.concatenate([colour, grey]))


def _lbp_histogram(grey: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """256-bin histogram of 8-neighbour local binary patterns over the mask's interior pixels."""
    grey = grey.astype(np.int16)
    centre = grey[1:-1, 1:-1]
    codes = np.zeros(centre.shape, dtype=np.int32)
    rows, cols = grey.shape
    for bit, (dy, dx) in enumerate(_NEIGHBOURS):
        neighbour = grey[1 + dy:rows - 1 + dy, 1 + dx:cols - 1 + dx]
        codes |= (neighbour >= centre).astype(np.int32) << bit
    return _hellinger(np.bincount(codes[mask[1:-1, 1:-1]], minlength=256))


def _gradients(grey: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sobel gradient magnitude and unsigned orientation in [0, 1)."""
    grey = grey.astype(np.float32)
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    orientation = (np.arctan2(gy, gx) % np.pi) / np.pi
    return np.hypot(gx, gy), np.minimum(orientation, 1.0 - 1e-6)


def _hog(grey: np.ndarray) -> np.ndarray:
    """Histograms of oriented gradients, magnitude-weighted, per cell of a HOG_CELLS grid."""
    magnitude, orientation = _gradients(grey)
    bins = (orientation * HOG_BINS).astype(int)
    cell = grey.shape[0] // HOG_CELLS
    rows = np.minimum(np.arange(grey.shape[0]) // cell, HOG_CELLS - 1)
    cols = np.minimum(np.arange(grey.shape[1]) // cell, HOG_CELLS - 1)
    flat = (rows[:, None] * HOG_CELLS + cols[None, :]) * HOG_BINS + bins
    hist = np.bincount(flat.ravel(), weights=magnitude.ravel(),
                       minlength=HOG_CELLS * HOG_CELLS * HOG_BINS)
    return _hellinger(hist)


def _shape_hog(grey: np.ndarray, cells: int) -> np.ndarray:
    """Contrast-saturated orientation histograms per cell: edges count, not how dark they are."""
    magnitude, orientation = _gradients(grey)
    typical = float(np.percentile(magnitude, 90)) + 1e-3
    weight = magnitude / (magnitude + 0.25 * typical)
    bins = (orientation * HOG_BINS).astype(int)
    side = grey.shape[0]
    rows = np.minimum(np.arange(side) * cells // side, cells - 1)
    flat = (rows[:, None] * cells + rows[None, :]) * HOG_BINS + bins
    return _hellinger(np.bincount(flat.ravel(), weights=weight.ravel(),
                                  minlength=cells * cells * HOG_BINS))


def _orientation_histogram(grey: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Global magnitude-weighted histogram of gradient orientations over the mask."""
    magnitude, orientation = _gradients(grey)
    bins = (orientation[mask] * ORIENT_BINS).astype(int)
    return _hellinger(np.bincount(bins, weights=magnitude[mask], minlength=ORIENT_BINS))


def _block(values: np.ndarray, weight: float) -> np.ndarray:
    values = values.astype(np.float32).ravel()
    norm = float(np.linalg.norm(values))
    return values * (weight / norm) if norm > 0 else values


def _to_rgb(image: Image.Image) -> np.ndarray:
    """RGB pixels; transparent parts (cut-out product shots) are laid on a white backdrop."""
    return np.ascontiguousarray(np.asarray(on_white(image).convert("RGB")))


def working_rgb(image: Image.Image) -> np.ndarray:
    """The photo's RGB pixels shrunk so the longer side is at most ``WORK_SIDE`` px.

    Each side is kept at least 1 px: a very wide or tall photo (2000 x 1) would otherwise round
    its short side to 0 and OpenCV refuses an empty size. Other photos keep the scale-factor
    call, whose pixels (and so the vectors of indexes already built) differ from a call given
    an explicit size.
    """
    rgb = _to_rgb(image)
    height, width = rgb.shape[:2]
    scale = WORK_SIDE / max(height, width)
    if scale < 1:
        if round(height * scale) >= 1 and round(width * scale) >= 1:
            rgb = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        else:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    return rgb


def describe(image: Image.Image) -> np.ndarray:
    """The unnormalised, weighted descriptor of one photo (see module docstring)."""
    rgb = _unscreen(working_rgb(image))
    crop, mask = _square_crop(rgb, foreground_mask(rgb))
    fg = mask if mask.any() else np.ones_like(mask)

    hsv = cv2.cvtColor(crop, cv2.COLOR_RGB2HSV)
    h, s, v = (hsv[..., i][fg].astype(np.int64) for i in range(3))
    lab = cv2.cvtColor(crop, cv2.COLOR_RGB2LAB)[fg].astype(np.int64) * LAB_BINS // 256
    lab_hist = _hellinger(np.bincount((lab[:, 0] * LAB_BINS + lab[:, 1]) * LAB_BINS + lab[:, 2],
                                      minlength=LAB_BINS ** 3))
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    small = cv2.resize(grey, (HOG_SIDE, HOG_SIDE), interpolation=cv2.INTER_AREA)

    return np.concatenate([
        _block(_hsv_histogram(h, s, v, FINE), WEIGHTS["fine"]),
        _block(_hsv_histogram(h, s, v, COARSE), WEIGHTS["coarse"]),
        _block(lab_hist, WEIGHTS["lab"]),
        _block(_lbp_histogram(grey, fg), WEIGHTS["lbp"]),
        _block(_orientation_histogram(grey, fg), WEIGHTS["orient"]),
        _block(_hog(small), WEIGHTS["hog"]),
        _block(_shape_hog(cv2.resize(grey, (SHAPE_SIDE, SHAPE_SIDE),
                                     interpolation=cv2.INTER_AREA), SHAPE_CELLS), WEIGHTS["shape"]),
        _block(_shape_hog(cv2.resize(mask.astype(np.uint8) * 255, (HOG_SIDE, HOG_SIDE),
                                     interpolation=cv2.INTER_AREA), HOG_CELLS), WEIGHTS["sil"]),
    ])


def raw_descriptor(image: Image.Image) -> np.ndarray:
    """``describe`` L2-normalised: the input of the projection (``retrieval.embedders.projection``)."""
    return l2_normalise(describe(image)[None, :])[0]


class DescriptorEmbedder:
    """Colour, texture and edge descriptor of product photos; see the module docstring.

    By default the raw descriptor is passed through the shipped linear discriminant projection
    (``descriptor-v4``, 2,542 -> 217 floats; ``retrieval.embedders.projection``), fitted on the
    demo catalog's listing photos grouped by product. ``projection=None`` gives the raw
    hand-weighted descriptor (``descriptor-v3``); a path loads a projection fitted on another
    catalog. The projection's digest is part of ``version``, so an index built with one
    projection refuses queries embedded with another.
    """

    def __init__(self, projection: str | Path | None | Literal["default"] = "default") -> None:
        if projection is None:
            self._projection = None
            self.name, self.version = "descriptor-v3", "3"
            self.dim = int(describe(Image.new("RGB", (8, 8), "white")).shape[0])
            return
        from retrieval.embedders.projection import DEFAULT_PATH, load_projection

        self._projection = load_projection(DEFAULT_PATH if projection == "default" else projection)
        self.name, self.version = "descriptor-v4", f"4+{self._projection.digest}"
        self.dim = self._projection.dim

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        raw = np.stack([raw_descriptor(image) for image in images])
        if self._projection is None:
            return raw
        return l2_normalise(self._projection.apply(raw))
