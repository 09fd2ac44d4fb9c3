"""Build the dev eval set: reserved seller photos plus degraded copies of source-factory photos.

    python -m evals.make_dev_set [--seed 11] [--per-kind 25] [--out-dir evals/sets/dev]

writes ``<out-dir>/dev.jsonl`` and the degraded photos under ``<out-dir>/images/<kind>/``.

Cases (the eval-set contract of DESIGN.md; image paths relative to the jsonl file):

- ``held_out_view``: every reserved query photo of the demo catalog (``data/catalogs/demo/queries``),
  referenced in place, with the same case ids and the extra ``unseen_colour`` tag as
  ``evals/sets/demo_reserved/demo_reserved.jsonl``.
- one tag per degradation kind (``crop``, ``rotate``, ``jpeg``, ``caption``, ``background``,
  ``screen_photo``), ``--per-kind`` cases each: a photo of the source factory's own listing of a
  product, degraded as a seller's upload would be. Products are drawn per kind, stratified by
  product group (apparel, appliances, gear) so every group appears; the draw is prefix-stable: the
  first n cases of a kind are the same for every ``--per-kind`` >= n.

- ``constraint``: reserved photos asked again with ``max_moq`` just below the source factory's MOQ
  (another supplier of the product still qualifies): the visually best supplier must be left out
  (``expect.excluded_supplier_ids``).

- ``text_only``: products described in words only (name and category, no photo), expecting the
  HS heading.

Every photo case expects ``relevant_product_ids``, ``source_supplier_id`` and ``hs_heading`` as given
by ``data/catalogs/demo/ground_truth.json``.

Deterministic: the same seed gives byte-identical jsonl and images. Inputs are sorted, each case
draws from its own ``random.Random(f"{seed}:{case_id}")`` (string seeds are hashed with SHA-512,
never with ``hash()``), numpy noise comes from a generator seeded by that case's draw, and JPEG
parameters are fixed.
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import math
import os
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

REPO_ROOT = Path(__file__).resolve().parents[1]
CATALOG_DIR = REPO_ROOT / "data" / "catalogs" / "demo"
RESERVED_SET = REPO_ROOT / "evals" / "sets" / "demo_reserved" / "demo_reserved.jsonl"
DEFAULT_OUT_DIR = REPO_ROOT / "evals" / "sets" / "dev"
SET_NAME = "dev"
DEFAULT_SEED = 11
DEFAULT_PER_KIND = 25
MARKET = "US"

# output images: longest side, JPEG encoding (fixed for byte-identical output)
MAX_SIDE = 640
JPEG_QUALITY = 90
JPEG_SUBSAMPLING = "4:2:0"

# stratified draw: interleave the product groups by these weights (smooth weighted round robin)
GROUP_WEIGHTS = (("apparel", 5), ("appliances", 3), ("gear", 2))

# foreground mask (see product_mask): background surface fitted to a frame of border pixels,
# MASK_TOLERANCE (max over channels, 0-255) around it, flood fill from the border
MASK_BORDER_PX = 6
MASK_TOLERANCE = 16.0
MASK_FIT_ROUNDS = 3
MASK_FLOOD_STEP = 3  # largest step between neighbouring background pixels, per channel
MASK_FLOOD_LIMIT = 95.0  # the flood fill stays within this distance of the backdrop surface
MASK_EDGE_THRESHOLDS = (12, 36)  # Canny hysteresis thresholds of the edges that stop the fill
MASK_EDGE_CLOSE = 7  # closing kernel that seals small gaps in those edges, px
BACKDROP_MIN_MATCH = 0.5  # share of the border frame that must match the fitted backdrop
BACKDROP_MIN_LEVEL = 150.0  # mean backdrop level (0-255): light
BACKDROP_MAX_CHROMA = 40.0  # mean max-min channel spread of the backdrop: greyish
MASK_MIN_COMPONENT = 0.004  # foreground blobs smaller than this share of the image are dropped
CUTOUT_OPEN_PX = 9  # see cutout_ok: photos whose mask is not clean are not used for `background`
CUTOUT_MIN_SOLID = 0.975
CUTOUT_MAX_BORDER = 0.2

# crop: a screenshot-like crop
CROP_KEEP = (0.45, 0.75)  # kept share of width and of height, drawn independently
CROP_MIN_PRODUCT = 0.30  # share of the crop that must be foreground
CROP_TRIES = 200

# rotate
ROTATE_DEGREES = (10.0, 35.0)  # magnitude; the sign is drawn too
ROTATE_WHITE_SHARE = 0.5  # otherwise one of ROTATE_FILLS
ROTATE_FILLS = ((236, 236, 236), (225, 214, 196), (30, 30, 30), (205, 225, 240), (240, 205, 215),
                (210, 230, 205), (120, 120, 120))

# jpeg: small and heavily compressed
JPEG_SIDE = (200, 320)  # longest side after downscaling
JPEG_LOW_QUALITY = (10, 25)

# caption: a banner or sticker over CAPTION_AREA of the image plus a price tag
CAPTION_AREA = (0.15, 0.25)
CAPTION_TEXTS = ("NEW ARRIVAL", "HOT SALE", "BEST SELLER", "LIMITED STOCK", "FREE SHIPPING",
                 "50% OFF TODAY", "TRENDING NOW", "MUST HAVE", "DM TO ORDER", "LINK IN BIO",
                 "FLASH DEAL", "RESTOCKED!")
CAPTION_SUBTEXTS = ("shop now @trendy.finds", "order via whatsapp", "ships in 24h",
                    "only a few left", "tap the link to buy", "#ootd #deal #musthave",
                    "wholesale welcome", "free returns")
CAPTION_COLOURS = ((220, 30, 45), (20, 20, 20), (255, 200, 0), (0, 120, 215), (255, 105, 180),
                   (40, 160, 90), (255, 255, 255))
PRICE_TAG_SIDE = (0.16, 0.24)  # tag width as a share of the image width
PRICE_RANGE = (5.0, 89.0)
PRICE_FORMATS = ("${:.2f}", "US${:.2f}", "ONLY ${:.0f}", "${:.0f}.99")

# background: the product cut out and pasted onto clutter
BACKGROUND_SCALE = (0.50, 0.80)
BACKGROUND_STYLES = ("texture", "shapes", "bokeh", "other_photo")
BACKGROUND_SHADOW = (0.25, 0.45)  # darkening under the pasted product
BACKGROUND_FEATHER = 1.2  # Gaussian sigma of the cut-out edge, px

# screen_photo: a photo of the product shown on a phone or monitor
SCREEN_CONTENT_SIDE = 520  # longest side of the picture on the screen, px
SCREEN_BEZEL = (0.03, 0.07)  # bezel width as a share of the longest side
SCREEN_MARGIN = (0.06, 0.14)  # space around the screen in the photo, share of each side
SCREEN_KEYSTONE = (0.06, 0.20)  # how much the far edge of the screen shrinks
SCREEN_CORNER_JITTER = 0.03  # share of each side
SCREEN_TILT_DEGREES = 6.0
MOIRE_PERIOD_PX = (2.2, 3.6)  # grating periods on the screen
MOIRE_ANGLE_DELTA = (1.5, 6.0)  # degrees between the two gratings
MOIRE_AMPLITUDE = (0.07, 0.14)
MOIRE_WOBBLE = 6.0  # radians of smooth phase bending of one grating
GLARE_SIGMA = (0.12, 0.30)  # share of the photo size
GLARE_STRENGTH = (0.30, 0.60)
SCREEN_BLUR_SIGMA = (0.6, 1.2)
SCREEN_NOISE_SIGMA = (3.0, 7.0)
SCREEN_ROOM_LEVEL = (25.0, 90.0)  # grey level of the dim room around the screen
SCREEN_TINT = 0.06  # per-channel colour cast of the screen, up to +-6 %


@dataclass(frozen=True)
class SourcePhoto:
    product_id: str
    group: str
    image: Path  # absolute
    expect: dict[str, Any]


# ---------------------------------------------------------------- helpers


def _fit(img: Image.Image, side: int = MAX_SIDE) -> Image.Image:
    """Downscale so that the longest side is at most ``side``."""
    scale = side / max(img.size)
    if scale >= 1:
        return img
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    return img.resize(size, Image.Resampling.LANCZOS)


def _np_rng(rng: random.Random) -> np.random.Generator:
    return np.random.default_rng(rng.getrandbits(63))


def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=max(8, int(size)))


def _fit_font(draw: ImageDraw.ImageDraw, text: str, width: float, height: float,
              stroke: int = 0) -> ImageFont.FreeTypeFont:
    """The largest default font with which ``text`` fits in width x height."""
    size = max(8, int(height))
    while size > 8:
        left, top, right, bottom = draw.textbbox((0, 0), text, font=_font(size), stroke_width=stroke)
        if right - left <= width and bottom - top <= height:
            break
        size -= 1
    return _font(size)


def _draw_centered(draw: ImageDraw.ImageDraw, box: tuple[float, float, float, float], text: str,
                   font: ImageFont.FreeTypeFont, fill, stroke: int = 0, stroke_fill=None) -> None:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font, stroke_width=stroke)
    x = (box[0] + box[2]) / 2 - (left + right) / 2
    y = (box[1] + box[3]) / 2 - (top + bottom) / 2
    draw.text((x, y), text, font=font, fill=fill, stroke_width=stroke, stroke_fill=stroke_fill)


def _text_colour(background) -> tuple[int, int, int]:
    luma = 0.299 * background[0] + 0.587 * background[1] + 0.114 * background[2]
    return (20, 20, 20) if luma > 150 else (255, 255, 255)


def _backdrop(img: Image.Image) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fit the backdrop surface; return (rgb, distance to it, border frame, backdrop found).

    A quadratic surface per channel is fitted, robustly, to a frame of border pixels. The photo has
    a plain backdrop when most of the frame matches the surface and the surface is light and grey
    (near-white or a studio sweep); close-ups of fabric fill the frame and have none.
    """
    rgb = np.asarray(img.convert("RGB"))
    a = rgb.astype(np.float32)
    h, w = a.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w]
    x, y = xs / w, ys / h
    design = np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], axis=-1)
    b = MASK_BORDER_PX
    frame = np.zeros((h, w), bool)
    frame[:b], frame[-b:], frame[:, :b], frame[:, -b:] = True, True, True, True
    rows, values = design[frame], a[frame]
    keep = np.ones(len(rows), bool)
    for _ in range(MASK_FIT_ROUNDS):  # drop frame pixels that are product (cut at the edge)
        coef, *_ = np.linalg.lstsq(rows[keep], values[keep], rcond=None)
        residual = np.abs(rows @ coef - values).max(axis=1)
        keep = residual < max(MASK_TOLERANCE, float(np.percentile(residual, 50)))
    surface = rows[keep] @ coef
    plain = (float((residual < MASK_TOLERANCE).mean()) >= BACKDROP_MIN_MATCH
             and float(surface.mean()) >= BACKDROP_MIN_LEVEL
             and float((surface.max(axis=1) - surface.min(axis=1)).mean()) <= BACKDROP_MAX_CHROMA)
    return rgb, np.abs(design @ coef - a).max(axis=2), frame, np.bool_(plain)


def has_backdrop(img: Image.Image) -> bool:
    """Whether the photo shows the product on a plain backdrop that product_mask can remove."""
    return bool(_backdrop(img)[3])


def product_mask(img: Image.Image) -> np.ndarray:
    """Boolean foreground mask of a catalog photo shot on a plain (near-white or studio) backdrop.

    Background is what a flood fill reaches from the border pixels that match the backdrop surface
    (see _backdrop), stepping between neighbours that differ by at most MASK_FLOOD_STEP (so smooth
    gradients, vignettes and soft shadows are background) and stopping at Canny edges and beyond
    MASK_FLOOD_LIMIT, plus the edge-bounded regions within MASK_TOLERANCE of the surface that reach
    the border (backdrop strips behind a faint seam). The rest is the product; holes inside it
    stay product. A photo without a plain backdrop (a close-up) is all product; an estimate that
    covers almost nothing or almost everything falls back to a centred ellipse.
    """
    rgb, distance, frame, plain = _backdrop(img)
    h, w = distance.shape
    if not plain:
        return np.ones((h, w), bool)
    near = distance < MASK_TOLERANCE
    smooth = cv2.medianBlur(rgb, 3)
    edges = cv2.Canny(cv2.cvtColor(smooth, cv2.COLOR_RGB2GRAY), *MASK_EDGE_THRESHOLDS)
    edges = cv2.morphologyEx(cv2.dilate(edges, np.ones((3, 3), np.uint8)), cv2.MORPH_CLOSE,
                             np.ones((MASK_EDGE_CLOSE, MASK_EDGE_CLOSE), np.uint8)) > 0
    flood = np.zeros((h + 2, w + 2), np.uint8)
    flood[1:-1, 1:-1][edges | (distance > MASK_FLOOD_LIMIT)] = 1  # barriers of the fill
    step = (MASK_FLOOD_STEP,) * 3
    seeds = np.argwhere(frame & near)
    for sy, sx in seeds[:: max(1, len(seeds) // 400)]:
        if not flood[sy + 1, sx + 1]:
            cv2.floodFill(smooth, flood, (int(sx), int(sy)), 0, step, step,
                          4 | cv2.FLOODFILL_MASK_ONLY | (255 << 8))
    background = flood[1:-1, 1:-1] == 255
    # backdrop strips that a faint seam kept from the fill: unfilled backdrop-coloured regions,
    # cut apart by the edges, that reach the border of the photo
    strips = (near & ~background & ~edges).astype(np.uint8)
    _, labels = cv2.connectedComponents(strips, connectivity=4)
    background |= np.isin(labels, np.unique(labels[frame & (strips > 0)])) & (strips > 0)
    fg = (~background).astype(np.uint8)
    fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
    keep = [i for i in range(1, count) if stats[i, cv2.CC_STAT_AREA] >= MASK_MIN_COMPONENT * h * w]
    mask = np.isin(labels, keep)
    if not 0.02 < mask.mean() < 0.95:
        ys, xs = np.mgrid[0:h, 0:w]
        mask = ((xs - w / 2) / (0.35 * w)) ** 2 + ((ys - h / 2) / (0.4 * h)) ** 2 <= 1
    return mask


def cutout_ok(img: Image.Image) -> bool:
    """Whether product_mask cuts the product out cleanly enough to paste it elsewhere.

    Needs a plain backdrop, a product that covers at most CUTOUT_MAX_BORDER of the photo's border
    (close-ups fill the frame), and at least CUTOUT_MIN_SOLID of the mask must survive an opening
    with a CUTOUT_OPEN_PX square: a fill that leaked into a white product leaves a lattice of thin
    edge lines behind.
    """
    if not has_backdrop(img):
        return False
    mask = product_mask(img).astype(np.uint8)
    border = np.concatenate([mask[0], mask[-1], mask[:, 0], mask[:, -1]])
    if border.mean() > CUTOUT_MAX_BORDER:
        return False
    opened = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((CUTOUT_OPEN_PX, CUTOUT_OPEN_PX),
                                                           np.uint8))
    return bool(opened.sum() >= CUTOUT_MIN_SOLID * mask.sum())


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


# ---------------------------------------------------------------- degradations
# each takes the source photo (RGB) and the case's random.Random and returns the degraded photo
# and the JPEG quality to save it with


def degrade_crop(img: Image.Image, rng: random.Random, **_: Any) -> tuple[Image.Image, int]:
    """A screenshot-like crop: CROP_KEEP of the width and of the height, on part of the product.

    Positions are drawn until at least CROP_MIN_PRODUCT of the crop is product (the best of
    CROP_TRIES draws otherwise).
    """
    mask = product_mask(img)
    integral = cv2.integral(mask.astype(np.uint8))
    w, h = img.size
    cw = round(w * rng.uniform(*CROP_KEEP))
    ch = round(h * rng.uniform(*CROP_KEEP))
    best, best_share = (0, 0), -1.0
    for _ in range(CROP_TRIES):
        x0, y0 = rng.randint(0, w - cw), rng.randint(0, h - ch)
        inside = (integral[y0 + ch, x0 + cw] - integral[y0, x0 + cw] - integral[y0 + ch, x0]
                  + integral[y0, x0])
        share = inside / (cw * ch)
        if share > best_share:
            best, best_share = (x0, y0), share
        if share >= CROP_MIN_PRODUCT:
            break
    x0, y0 = best
    return img.crop((x0, y0, x0 + cw, y0 + ch)), JPEG_QUALITY


def degrade_rotate(img: Image.Image, rng: random.Random, **_: Any) -> tuple[Image.Image, int]:
    """Rotation by ROTATE_DEGREES (either way) on an expanded canvas filled white or flat colour."""
    angle = rng.uniform(*ROTATE_DEGREES) * rng.choice((-1, 1))
    fill = (255, 255, 255) if rng.random() < ROTATE_WHITE_SHARE else rng.choice(ROTATE_FILLS)
    rotated = img.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=fill)
    return _fit(rotated), JPEG_QUALITY


def degrade_jpeg(img: Image.Image, rng: random.Random, **_: Any) -> tuple[Image.Image, int]:
    """Downscale to JPEG_SIDE on the longest side; saved at JPEG_LOW_QUALITY."""
    side = rng.randint(*JPEG_SIDE)
    quality = rng.randint(*JPEG_LOW_QUALITY)
    scale = side / max(img.size)
    small = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                       Image.Resampling.BILINEAR)
    return small, quality


def _price_tag(draw: ImageDraw.ImageDraw, img_size: tuple[int, int], rng: random.Random,
               avoid_top: bool) -> None:
    """A price tag (rounded label with a punched hole) in a corner away from the caption."""
    w, h = img_size
    tw = round(w * rng.uniform(*PRICE_TAG_SIDE))
    th = round(tw * rng.uniform(0.42, 0.55))
    margin = round(0.03 * w)
    x0 = margin if rng.random() < 0.5 else w - tw - margin
    y0 = h - th - margin if avoid_top else margin
    price = rng.uniform(*PRICE_RANGE)
    text = rng.choice(PRICE_FORMATS).format(price)
    colour = rng.choice(((255, 214, 0), (230, 30, 40), (255, 255, 255), (20, 20, 20)))
    draw.rounded_rectangle((x0, y0, x0 + tw, y0 + th), radius=th // 4, fill=colour,
                           outline=(60, 60, 60), width=max(1, th // 18))
    hole = th // 7
    cx, cy = x0 + hole * 2, y0 + th // 2
    draw.ellipse((cx - hole // 2, cy - hole // 2, cx + hole // 2, cy + hole // 2),
                 fill=(200, 200, 200), outline=(60, 60, 60))
    box = (x0 + hole * 3, y0 + th * 0.12, x0 + tw - th * 0.12, y0 + th * 0.88)
    font = _fit_font(draw, text, box[2] - box[0], box[3] - box[1])
    _draw_centered(draw, box, text, font, _text_colour(colour))


def degrade_caption(img: Image.Image, rng: random.Random, **_: Any) -> tuple[Image.Image, int]:
    """A caption banner or a round sticker over CAPTION_AREA of the photo, plus a price tag."""
    out = img.convert("RGBA")
    layer = Image.new("RGBA", out.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    w, h = out.size
    area = rng.uniform(*CAPTION_AREA) * w * h
    colour = rng.choice(CAPTION_COLOURS)
    text = rng.choice(CAPTION_TEXTS)
    sub = rng.choice(CAPTION_SUBTEXTS)
    ink = _text_colour(colour)
    caption_on_top = True
    if rng.random() < 0.6:  # banner across the photo
        bh = round(area / w)
        caption_on_top = rng.random() < 0.5
        y0 = round(h * rng.uniform(0.0, 0.12)) if caption_on_top else h - bh - round(
            h * rng.uniform(0.0, 0.12))
        alpha = rng.randint(200, 255)
        draw.rectangle((0, y0, w, y0 + bh), fill=(*colour, alpha))
        pad = 0.06 * bh
        main_box = (0.05 * w, y0 + pad, 0.95 * w, y0 + bh * 0.64)
        sub_box = (0.1 * w, y0 + bh * 0.66, 0.9 * w, y0 + bh - pad)
        _draw_centered(draw, main_box, text,
                       _fit_font(draw, text, main_box[2] - main_box[0], main_box[3] - main_box[1],
                                 stroke=2), ink, stroke=2 if ink == (255, 255, 255) else 0,
                       stroke_fill=(0, 0, 0))
        _draw_centered(draw, sub_box, sub,
                       _fit_font(draw, sub, sub_box[2] - sub_box[0], sub_box[3] - sub_box[1]), ink)
    else:  # a round sticker overlapping the product
        r = math.sqrt(area / math.pi)
        cx = rng.uniform(r * 0.7, w - r * 0.7)
        cy = rng.uniform(r * 0.7, h * 0.55)
        caption_on_top = cy < h / 2
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(*colour, 255),
                     outline=(255, 255, 255, 255), width=max(2, round(r / 14)))
        box = (cx - r * 0.72, cy - r * 0.45, cx + r * 0.72, cy + r * 0.1)
        _draw_centered(draw, box, text, _fit_font(draw, text, box[2] - box[0], box[3] - box[1]),
                       ink)
        sub_box = (cx - r * 0.62, cy + r * 0.15, cx + r * 0.62, cy + r * 0.45)
        _draw_centered(draw, sub_box, sub,
                       _fit_font(draw, sub, sub_box[2] - sub_box[0], sub_box[3] - sub_box[1]), ink)
        angle = rng.uniform(-20, 20)
        layer = layer.rotate(angle, resample=Image.Resampling.BICUBIC, center=(cx, cy))
        draw = ImageDraw.Draw(layer)
    _price_tag(draw, (w, h), rng, avoid_top=caption_on_top)
    return Image.alpha_composite(out, layer).convert("RGB"), JPEG_QUALITY


def _value_noise(nrng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Smooth noise in [0, 1]: a coarse random grid upscaled bicubically."""
    grid = nrng.random((cells + 3, cells + 3)).astype(np.float32)
    big = cv2.resize(grid, (w + w // cells * 3, h + h // cells * 3), interpolation=cv2.INTER_CUBIC)
    return np.clip(big[:h, :w], 0, 1)


def _clutter(size: tuple[int, int], rng: random.Random, nrng: np.random.Generator,
             other: Image.Image | None) -> Image.Image:
    """A cluttered backdrop in one of BACKGROUND_STYLES."""
    w, h = size
    style = rng.choice(BACKGROUND_STYLES if other is not None else BACKGROUND_STYLES[:3])
    c1 = np.array([rng.randint(40, 230) for _ in range(3)], np.float32)
    c2 = np.array([rng.randint(20, 240) for _ in range(3)], np.float32)
    if style == "texture":  # wood / fabric / stone-like multi-octave noise
        t = sum(_value_noise(nrng, h, w, cells) * weight
                for cells, weight in ((3, 0.5), (9, 0.25), (27, 0.15), (81, 0.1)))
        if rng.random() < 0.5:  # grain streaks
            t = 0.5 * t + 0.5 * (0.5 + 0.5 * np.sin(np.arange(w)[None, :] * rng.uniform(0.05, 0.2)
                                                      + 8 * t))
        arr = c1 * (1 - t[..., None]) + c2 * t[..., None]
        return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    if style == "other_photo":  # a crop of another catalog photo, filling the frame
        ow, oh = other.size
        keep = rng.uniform(0.45, 0.8)
        cw, ch = round(ow * keep), round(oh * keep)
        x0, y0 = rng.randint(0, ow - cw), rng.randint(0, oh - ch)
        crop = other.crop((x0, y0, x0 + cw, y0 + ch))
        scale = max(w / cw, h / ch)
        crop = crop.resize((math.ceil(cw * scale), math.ceil(ch * scale)), Image.Resampling.BICUBIC)
        return crop.crop((0, 0, w, h)).filter(ImageFilter.GaussianBlur(rng.uniform(0, 1.5)))
    # a gradient, then shapes or blurred bokeh discs
    ramp = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    arr = c1 * (1 - ramp) + c2 * ramp
    base = Image.fromarray(np.clip(np.broadcast_to(arr, (h, w, 3)), 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(base)
    if style == "shapes":
        for _ in range(rng.randint(14, 28)):
            colour = tuple(rng.randint(0, 255) for _ in range(3))
            x0, y0 = rng.uniform(-0.2, 1.0) * w, rng.uniform(-0.2, 1.0) * h
            x1, y1 = x0 + rng.uniform(0.05, 0.5) * w, y0 + rng.uniform(0.05, 0.5) * h
            kind = rng.choice(("rect", "ellipse", "line"))
            if kind == "rect":
                draw.rectangle((x0, y0, x1, y1), fill=colour)
            elif kind == "ellipse":
                draw.ellipse((x0, y0, x1, y1), fill=colour)
            else:
                draw.line((x0, y0, x1, y1), fill=colour, width=rng.randint(3, 18))
        return base.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 2.0)))
    for _ in range(rng.randint(18, 40)):  # bokeh: an out-of-focus room
        r = rng.uniform(0.03, 0.14) * max(w, h)
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        glow = tuple(min(255, int(v + rng.randint(40, 120))) for v in c1)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=glow)
    return base.filter(ImageFilter.GaussianBlur(rng.uniform(6, 14)))


def degrade_background(img: Image.Image, rng: random.Random, other: Image.Image | None = None,
                       **_: Any) -> tuple[Image.Image, int]:
    """The product cut out by its background mask, shrunk to BACKGROUND_SCALE, on clutter.

    The backdrop is textured noise, a gradient with shapes, blurred bokeh or a crop of ``other``
    (another product's catalog photo); a soft shadow sits under the product.
    """
    nrng = _np_rng(rng)
    mask = product_mask(img)
    x0, y0, x1, y1 = _bbox(mask)
    cut = img.crop((x0, y0, x1, y1))
    alpha = Image.fromarray((mask[y0:y1, x0:x1] * 255).astype(np.uint8)).filter(
        ImageFilter.GaussianBlur(BACKGROUND_FEATHER))
    scale = rng.uniform(*BACKGROUND_SCALE)
    size = (max(1, round(cut.width * scale)), max(1, round(cut.height * scale)))
    cut = cut.resize(size, Image.Resampling.LANCZOS)
    alpha = alpha.resize(size, Image.Resampling.LANCZOS)
    canvas = _clutter(img.size, rng, nrng, other).convert("RGB")
    px = rng.randint(0, img.width - size[0])
    py = rng.randint(0, img.height - size[1])
    shadow = Image.new("L", img.size, 0)
    offset = (round(size[0] * rng.uniform(-0.03, 0.03)), round(size[1] * rng.uniform(0.01, 0.04)))
    shadow.paste(alpha, (px + offset[0], py + offset[1]))
    shadow = shadow.filter(ImageFilter.GaussianBlur(max(2.0, 0.02 * max(size))))
    dark = np.asarray(shadow, np.float32)[..., None] / 255 * rng.uniform(*BACKGROUND_SHADOW)
    canvas = Image.fromarray(np.clip(np.asarray(canvas, np.float32) * (1 - dark), 0, 255)
                             .astype(np.uint8))
    canvas.paste(cut, (px, py), alpha)
    return canvas, JPEG_QUALITY


def _moire(content: np.ndarray, rng: random.Random, nrng: np.random.Generator) -> np.ndarray:
    """Multiply by the product of two slightly rotated sinusoidal gratings.

    Their product holds the difference frequency: broad interference bands (moire) across the fine
    pixel pattern; a smooth random phase (MOIRE_WOBBLE radians) bends the bands as a real screen
    and lens do.
    """
    h, w = content.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    theta = math.radians(rng.uniform(0, 180))
    delta = math.radians(rng.uniform(*MOIRE_ANGLE_DELTA))
    p1 = rng.uniform(*MOIRE_PERIOD_PX)
    p2 = p1 * rng.uniform(0.97, 1.03)
    wobble = MOIRE_WOBBLE * (2 * _value_noise(nrng, h, w, 3) - 1)
    g1 = np.sin(2 * np.pi * (xs * math.cos(theta) + ys * math.sin(theta)) / p1)
    g2 = np.sin(2 * np.pi * (xs * math.cos(theta + delta) + ys * math.sin(theta + delta)) / p2
                + wobble)
    amplitude = rng.uniform(*MOIRE_AMPLITUDE)
    return content * (1 + amplitude * g1 * g2)[..., None]


def degrade_screen_photo(img: Image.Image, rng: random.Random, **_: Any) -> tuple[Image.Image, int]:
    """The photo shown on a screen and photographed at an angle.

    Moire gratings on the screen, a dark bezel, a perspective warp (keystone, corner jitter, tilt)
    onto a dim room backdrop, a soft glare blob on the glass, slight blur and sensor noise.
    """
    nrng = _np_rng(rng)
    content = np.asarray(_fit(img, SCREEN_CONTENT_SIDE), np.float32)
    tint = np.array([1 + rng.uniform(-SCREEN_TINT, SCREEN_TINT) for _ in range(3)], np.float32)
    content = _moire(content * tint * rng.uniform(0.85, 0.97), rng, nrng)
    bezel = round(max(content.shape[:2]) * rng.uniform(*SCREEN_BEZEL))
    shade = rng.randint(8, 32)
    screen = cv2.copyMakeBorder(np.clip(content, 0, 255), bezel, bezel, bezel, bezel,
                                cv2.BORDER_CONSTANT, value=(shade, shade, shade))
    sh, sw = screen.shape[:2]
    mx, my = rng.uniform(*SCREEN_MARGIN), rng.uniform(*SCREEN_MARGIN)
    cw, ch = round(sw * (1 + 2 * mx)), round(sh * (1 + 2 * my))
    # destination corners: tl, tr, br, bl, with one edge shrunk (the far side) and jitter
    dst = np.array([[cw * mx, ch * my], [cw - cw * mx, ch * my],
                    [cw - cw * mx, ch - ch * my], [cw * mx, ch - ch * my]], np.float32)
    keystone = rng.uniform(*SCREEN_KEYSTONE)
    side = rng.choice(("left", "right", "top", "bottom"))
    if side in ("left", "right"):
        idx = (0, 3) if side == "left" else (1, 2)
        shift = keystone * sh / 2
        dst[idx[0], 1] += shift
        dst[idx[1], 1] -= shift
    else:
        idx = (0, 1) if side == "top" else (3, 2)
        shift = keystone * sw / 2
        dst[idx[0], 0] += shift
        dst[idx[1], 0] -= shift
    jitter = SCREEN_CORNER_JITTER
    dst += np.array([[rng.uniform(-jitter, jitter) * sw, rng.uniform(-jitter, jitter) * sh]
                     for _ in range(4)], np.float32)
    tilt = math.radians(rng.uniform(-SCREEN_TILT_DEGREES, SCREEN_TILT_DEGREES))
    centre = np.array([cw / 2, ch / 2], np.float32)
    rot = np.array([[math.cos(tilt), -math.sin(tilt)], [math.sin(tilt), math.cos(tilt)]],
                   np.float32)
    dst = (dst - centre) @ rot.T + centre
    src = np.array([[0, 0], [sw, 0], [sw, sh], [0, sh]], np.float32)
    matrix = cv2.getPerspectiveTransform(src, dst)
    warped = cv2.warpPerspective(screen, matrix, (cw, ch), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    on_screen = cv2.warpPerspective(np.ones((sh, sw), np.float32), matrix, (cw, ch),
                                    flags=cv2.INTER_LINEAR)[..., None]
    # the room: a dim gradient with large soft blotches
    level = rng.uniform(*SCREEN_ROOM_LEVEL)
    room_colour = np.array([level * rng.uniform(0.8, 1.2) for _ in range(3)], np.float32)
    ramp = np.linspace(0.6, 1.2, ch, dtype=np.float32)[:, None, None]
    blotch = _value_noise(nrng, ch, cw, 4)[..., None] * 0.5 + 0.75
    room = room_colour * ramp * blotch
    photo = warped * on_screen + room * (1 - on_screen)
    # glare: a soft bright elliptical blob on the glass (screen blend)
    gx, gy = rng.uniform(0.2, 0.8) * cw, rng.uniform(0.15, 0.7) * ch
    sx, sy = rng.uniform(*GLARE_SIGMA) * cw, rng.uniform(*GLARE_SIGMA) * ch
    ys, xs = np.mgrid[0:ch, 0:cw].astype(np.float32)
    blob = np.exp(-(((xs - gx) / sx) ** 2 + ((ys - gy) / sy) ** 2) / 2)[..., None]
    strength = rng.uniform(*GLARE_STRENGTH)
    photo = photo + (255 - photo) * blob * strength * on_screen
    photo = cv2.GaussianBlur(photo, (0, 0), rng.uniform(*SCREEN_BLUR_SIGMA))
    photo = photo + nrng.normal(0, rng.uniform(*SCREEN_NOISE_SIGMA), photo.shape)
    return _fit(Image.fromarray(np.clip(photo, 0, 255).astype(np.uint8))), JPEG_QUALITY


DEGRADATIONS: dict[str, Callable[..., tuple[Image.Image, int]]] = {
    "crop": degrade_crop,
    "rotate": degrade_rotate,
    "jpeg": degrade_jpeg,
    "caption": degrade_caption,
    "background": degrade_background,
    "screen_photo": degrade_screen_photo,
}
KINDS = tuple(DEGRADATIONS)


# ---------------------------------------------------------------- the set


def _group(product: dict[str, Any]) -> str:
    if product.get("source_catalog") == "appliances":
        return "appliances"
    return "apparel" if product.get("category", "").split("/")[0] in ("Men", "Women") else "gear"


def _expect(product: dict[str, Any], product_id: str) -> dict[str, Any]:
    return {"relevant_product_ids": [product_id],
            "source_supplier_id": product["source_supplier_id"],
            "hs_heading": str(product["hs_code"])[:4]}


def source_photos(catalog: Path = CATALOG_DIR) -> dict[str, list[SourcePhoto]]:
    """Per product group, the photos of every product's source-factory listing, sorted."""
    truth = json.loads((catalog / "ground_truth.json").read_text(encoding="utf-8"))["products"]
    with (catalog / "listings.csv").open(encoding="utf-8", newline="") as handle:
        listings = list(csv.DictReader(handle))
    photos: dict[str, list[SourcePhoto]] = {group: [] for group, _ in GROUP_WEIGHTS}
    for product_id in sorted(truth):
        product = truth[product_id]
        images = sorted({path for row in listings
                         if row.get("product_id") == product_id
                         and row["supplier_id"] == product["source_supplier_id"]
                         for path in row["images"].split("|") if path})
        for path in images:
            photos[_group(product)].append(SourcePhoto(product_id, _group(product),
                                                       catalog / path,
                                                       _expect(product, product_id)))
    return photos


def _group_sequence(n: int) -> list[str]:
    """Smooth weighted round robin over GROUP_WEIGHTS: every prefix is close to the weights."""
    current = {group: 0 for group, _ in GROUP_WEIGHTS}
    total = sum(weight for _, weight in GROUP_WEIGHTS)
    out = []
    for _ in range(n):
        for group, weight in GROUP_WEIGHTS:
            current[group] += weight
        pick = max(current, key=lambda g: (current[g], -[x for x, _ in GROUP_WEIGHTS].index(g)))
        current[pick] -= total
        out.append(pick)
    return out


def draw_sources(photos: dict[str, list[SourcePhoto]], kind: str, n: int, seed: int,
                 accept: Callable[[SourcePhoto], bool] | None = None) -> list[SourcePhoto]:
    """The first n source photos of a kind: products shuffled per group, one photo each.

    With ``accept``, only photos it accepts are drawn and products without one are skipped; the
    check runs lazily, in draw order, so the draw stays prefix-stable.
    """
    rng = random.Random(f"{seed}:{kind}:draw")
    orders = {}
    for group, _ in GROUP_WEIGHTS:
        products = sorted({photo.product_id for photo in photos[group]})
        rng.shuffle(products)
        orders[group] = products
    position = {group: 0 for group in orders}
    drawn: list[SourcePhoto] = []
    for group in _group_sequence(n):
        products = orders[group]
        for _ in range(2 * len(products)):
            product_id = products[position[group] % len(products)]
            position[group] += 1
            choices = [photo for photo in photos[group] if photo.product_id == product_id
                       and (accept is None or accept(photo))]
            if choices:
                drawn.append(rng.choice(choices))
                break
        else:
            raise ValueError(f"{kind}: no usable photo in group {group}")
    return drawn


def _usable_cutout(photo: SourcePhoto) -> bool:
    return _cutout_ok_at(photo.image)


@functools.cache
def _cutout_ok_at(path: Path) -> bool:
    with Image.open(path) as opened:
        return cutout_ok(opened.convert("RGB"))


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in text.lower()).strip("-")


def held_out_cases(out_dir: Path, catalog: Path = CATALOG_DIR,
                   reserved_set: Path = RESERVED_SET) -> list[dict[str, Any]]:
    """One case per reserved query photo, referenced in place, ids and tags as the demo set."""
    truth = json.loads((catalog / "ground_truth.json").read_text(encoding="utf-8"))["products"]
    demo = {}
    for line in reserved_set.read_text(encoding="utf-8").splitlines():
        if line.strip():
            raw = json.loads(line)
            demo[Path(raw["image"]).name] = raw
    cases = []
    for product_id in sorted(truth):
        for query in sorted(truth[product_id]["reserved_queries"], key=lambda q: q["image"]):
            image = catalog / query["image"]
            known = demo.get(image.name)
            if known is None:
                raise ValueError(f"{reserved_set.name}: no case for reserved photo {query['image']}")
            tags = ["held_out_view", *[t for t in known.get("tags") or [] if t != "held_out_view"]]
            cases.append({"id": known["id"],
                          "image": Path(os.path.relpath(image, out_dir)).as_posix(),
                          "market": known.get("market") or MARKET, "tags": tags,
                          "expect": _expect(truth[product_id], product_id)})
    return cases


def _save_jpeg(img: Image.Image, path: Path, quality: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.convert("RGB").save(path, "JPEG", quality=quality, optimize=False, progressive=False,
                            subsampling=JPEG_SUBSAMPLING)


def degraded_cases(out_dir: Path, seed: int, per_kind: int,
                   catalog: Path = CATALOG_DIR) -> list[dict[str, Any]]:
    """Draw, degrade and save ``per_kind`` photos per kind; return their cases."""
    photos = source_photos(catalog)
    every = [photo for group, _ in GROUP_WEIGHTS for photo in photos[group]]
    cases = []
    for kind in KINDS:
        accept = _usable_cutout if kind == "background" else None
        for index, source in enumerate(draw_sources(photos, kind, per_kind, seed, accept)):
            case_id = f"{SET_NAME}-{kind.replace('_', '-')}-{index:03d}-{_slug(source.product_id)}"
            rng = random.Random(f"{seed}:{case_id}")
            with Image.open(source.image) as opened:
                img = opened.convert("RGB")
            other = None
            if kind == "background":
                others = [p for p in every if p.product_id != source.product_id]
                with Image.open(rng.choice(others).image) as opened:
                    other = opened.convert("RGB")
            degraded, quality = DEGRADATIONS[kind](img, rng, other=other)
            relative = Path("images") / kind / f"{case_id}.jpg"
            _save_jpeg(_fit(degraded), out_dir / relative, quality)
            cases.append({"id": case_id, "image": relative.as_posix(), "market": MARKET,
                          "tags": [kind], "expect": source.expect})
    return cases


CONSTRAINT_CASES = 20  # reserved photos re-asked with a constraint that excludes the source


def constraint_cases(held_out: list[dict[str, Any]], catalog: Path = CATALOG_DIR,
                     n: int = CONSTRAINT_CASES) -> list[dict[str, Any]]:
    """Reserved photos asked again with ``max_moq`` set just below the source factory's MOQ and
    at or above another supplier's: the visually best supplier must drop out of the shortlist
    while another supplier of the product still qualifies. Products are taken in id order (one
    case per product, the first of its reserved photos), the first ``n`` that allow it."""
    import csv

    with (catalog / "listings.csv").open(newline="", encoding="utf-8") as handle:
        listings = list(csv.DictReader(handle))
    cases, used = [], set()
    for case in held_out:
        product = case["expect"]["relevant_product_ids"][0]
        source = case["expect"]["source_supplier_id"]
        if product in used or len(cases) >= n:
            continue
        offers = [row for row in listings if row["product_id"] == product and row["moq"]]
        source_moq = min((int(r["moq"]) for r in offers if r["supplier_id"] == source),
                         default=None)
        others = sorted(int(r["moq"]) for r in offers if r["supplier_id"] != source)
        if source_moq is None or not others or others[0] >= source_moq:
            continue
        used.add(product)
        limit = source_moq - 1
        cases.append({"id": f"{SET_NAME}-constraint-{len(cases):03d}-{_slug(product)}",
                      "image": case["image"], "market": case["market"],
                      "constraints": {"max_moq": limit}, "tags": ["constraint"],
                      "expect": {**case["expect"], "excluded_supplier_ids": [source]}})
    return cases


TEXT_CASES = 20  # products described in words only (no photo)


def text_only_cases(catalog: Path = CATALOG_DIR, n: int = TEXT_CASES) -> list[dict[str, Any]]:
    """Products described by a seller who has no photo yet: the product's name as the title and
    its catalog category as the description (``Category: <path>.``), market US; every
    ``len(truth) // n``-th product in id order. They test HS classification from words and the
    text-only path of an agent; they expect the HS heading only."""
    truth = json.loads((catalog / "ground_truth.json").read_text(encoding="utf-8"))["products"]
    ids = sorted(truth)
    step = max(1, len(ids) // n)
    cases = []
    for product_id in ids[::step][:n]:
        product = truth[product_id]
        cases.append({"id": f"{SET_NAME}-text-{len(cases):03d}-{_slug(product_id)}",
                      "title": product["name"],
                      "description": f"Category: {product['category']}.",
                      "market": MARKET, "tags": ["text_only"],
                      "expect": {"hs_heading": product["hs_code"][:4]}})
    return cases


def build_dev_set(out_dir: str | Path = DEFAULT_OUT_DIR, seed: int = DEFAULT_SEED,
                  per_kind: int = DEFAULT_PER_KIND, catalog: Path = CATALOG_DIR,
                  reserved_set: Path = RESERVED_SET) -> Path:
    """Write ``<out_dir>/dev.jsonl`` and ``<out_dir>/images/``; return the jsonl path.

    The images folder is emptied first, so it holds exactly the photos of this set.
    """
    out_dir = Path(out_dir).resolve()
    images = out_dir / "images"
    if images.exists():
        shutil.rmtree(images)
    held_out = held_out_cases(out_dir, catalog, reserved_set)
    cases = (held_out + degraded_cases(out_dir, seed, per_kind, catalog)
             + constraint_cases(held_out, catalog) + text_only_cases(catalog))
    path = out_dir / f"{SET_NAME}.jsonl"
    path.write_bytes("".join(json.dumps(case, ensure_ascii=False) + "\n"
                             for case in cases).encode("utf-8"))
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--per-kind", type=int, default=DEFAULT_PER_KIND,
                        help="degraded cases per degradation kind")
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT_DIR,
                        help="folder for dev.jsonl and images/")
    args = parser.parse_args(argv)
    path = build_dev_set(args.out_dir, seed=args.seed, per_kind=args.per_kind)
    lines = path.read_text(encoding="utf-8").splitlines()
    print(f"{path}: {len(lines)} cases")


if __name__ == "__main__":
    main()
