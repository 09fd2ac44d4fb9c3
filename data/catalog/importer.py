"""Load and validate a supplier catalog folder (the on-disk contract in DESIGN.md).

``load_catalog(folder)`` reads ``suppliers.csv`` and ``listings.csv`` (UTF-8, an optional BOM is
accepted), checks every row and returns a :class:`~data.catalog.schema.Catalog` only when the whole
catalog is clean. Otherwise it raises :class:`CatalogError` carrying *all* problems found, each
written ``<file>:<line>: <column>: <problem>``, for example::

    listings.csv:12: price_min: not a number: 'abc'

``line`` is the physical line in the file where the record starts (the header is line 1, a quoted
field spanning several lines counts all of them); ``0`` and ``-`` stand for "the whole file" and
"no single column". Unknown extra columns are allowed and ignored; empty optional cells become
``None`` (or an empty tuple for ``|``-separated lists).
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Callable
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from data.catalog.schema import (
    CAPABILITIES,
    LISTING_OPTIONAL,
    LISTING_REQUIRED,
    SUPPLIER_KINDS,
    SUPPLIER_OPTIONAL,
    SUPPLIER_REQUIRED,
    Catalog,
    Listing,
    Supplier,
)

SUPPLIERS_FILE = "suppliers.csv"
LISTINGS_FILE = "listings.csv"

_COUNTRY = re.compile(r"[A-Z]{2}")
_CURRENCY = re.compile(r"[A-Z]{3}")
_INTEGER = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_SUPPLIER_INTS = ("years_in_business", "staff")
_SUPPLIER_RATES = ("response_rate", "on_time_rate", "repurchase_rate", "dispatch_48h_rate")
_SUPPLIER_LISTS = ("certifications", "capabilities", "export_markets", "languages")


class CatalogError(ValueError):
    """A catalog that failed validation; ``problems`` holds one ``file:line: column: why`` each."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))

    def __str__(self) -> str:
        return "\n".join(self.problems)


class _Row:
    """One CSV record with typed accessors that note problems instead of raising."""

    def __init__(self, file: str, line: int, values: dict[str, str], problems: list[str]):
        self.file, self.line, self.values, self._problems = file, line, values, problems

    def problem(self, column: str, message: str) -> None:
        self._problems.append(f"{self.file}:{self.line}: {column}: {message}")

    def text(self, column: str) -> str | None:
        value = self.values.get(column, "")
        return value if value else None

    def required(self, column: str) -> str:
        value = self.values.get(column)
        if value == "":  # None: the whole column is missing, already reported once for the header
            self.problem(column, "required field is empty")
        return value or ""

    def number(self, column: str, minimum: float | None = None) -> float | None:
        raw = self.text(column)
        if raw is None:
            return None
        value = float(raw) if _DECIMAL.fullmatch(raw) else math.nan
        if not math.isfinite(value):
            self.problem(column, f"not a number: {raw!r}")
            return None
        if minimum is not None and value < minimum:
            self.problem(column, f"must be >= {minimum:g}: {raw!r}")
            return None
        return value

    def integer(self, column: str, minimum: int = 0) -> int | None:
        raw = self.text(column)
        if raw is None:
            return None
        if not _INTEGER.fullmatch(raw):
            self.problem(column, f"not an integer: {raw!r}")
            return None
        value = int(raw)
        if value < minimum:
            self.problem(column, f"must be >= {minimum}: {raw!r}")
            return None
        return value

    def rate(self, column: str) -> float | None:
        value = self.number(column)
        if value is not None and not 0.0 <= value <= 1.0:
            self.problem(column, f"rate out of range 0..1: {self.values[column]!r}")
            return None
        return value

    def items(self, column: str) -> tuple[str, ...]:
        return tuple(part.strip() for part in self.values.get(column, "").split("|") if part.strip())


def _read_rows(root: Path, name: str, required: tuple[str, ...], known: tuple[str, ...],
               problems: list[str]) -> tuple[bool, list[_Row]]:
    """The records of one CSV file, and whether its header has every required column.

    File- and header-level problems are noted here; blank lines are skipped.
    """
    path = root / name
    if not path.is_file():
        problems.append(f"{name}:0: -: file not found")
        return False, []
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return _parse(name, csv.reader(handle), required, known, problems)
    except UnicodeDecodeError as exc:
        problems.append(f"{name}:0: -: not UTF-8 text (byte {exc.start})")
    except csv.Error as exc:
        problems.append(f"{name}:0: -: unreadable CSV: {exc}")
    return False, []


def _parse(name: str, reader: Any, required: tuple[str, ...], known: tuple[str, ...],
           problems: list[str]) -> tuple[bool, list[_Row]]:
    """Header checks and records of one CSV file (see ``_read_rows``)."""
    header = next(reader, None)
    if header is None:
        problems.append(f"{name}:1: -: empty file, no header")
        return False, []
    header = [column.strip() for column in header]
    for column in sorted({c for c in header if c and header.count(c) > 1}):
        problems.append(f"{name}:1: {column}: duplicate column")
    missing = [column for column in required if column not in header]
    for column in missing:
        problems.append(f"{name}:1: {column}: missing required column")
    wanted = set(required) | set(known)
    rows: list[_Row] = []
    last_line = reader.line_num
    for record in reader:
        line, last_line = last_line + 1, reader.line_num  # first physical line of the record
        if not any(cell.strip() for cell in record):
            continue
        if len(record) > len(header):
            problems.append(
                f"{name}:{line}: -: {len(record)} fields but the header has {len(header)}")
        values = {column: "" for column in header if column in wanted}  # short rows: empty
        values.update((column, cell.strip()) for column, cell in zip(header, record)
                      if column in wanted)
        rows.append(_Row(name, line, values, problems))
    return not missing, rows


def _supplier(row: _Row) -> Supplier:
    supplier_id, name = row.required("supplier_id"), row.required("name")
    kind = row.text("kind")
    if kind is not None and kind not in SUPPLIER_KINDS:
        row.problem("kind", f"must be one of {', '.join(SUPPLIER_KINDS)}: {kind!r}")
        kind = None
    country = row.text("country")
    if country is not None and not _COUNTRY.fullmatch(country):
        row.problem("country", f"not a two-letter ISO 3166 code: {country!r}")
        country = None
    ints = {column: row.integer(column) for column in _SUPPLIER_INTS}
    response_hours = row.number("response_hours", minimum=0)
    rates = {column: row.rate(column) for column in _SUPPLIER_RATES}
    lists = {column: row.items(column) for column in _SUPPLIER_LISTS}
    for capability in lists["capabilities"]:
        if capability not in CAPABILITIES:
            row.problem("capabilities",
                        f"unknown capability {capability!r} (known: {', '.join(CAPABILITIES)})")
    for code in lists["export_markets"]:
        if not _COUNTRY.fullmatch(code):
            row.problem("export_markets", f"not a two-letter ISO 3166 code: {code!r}")
    return Supplier(
        supplier_id=supplier_id,
        name=name,
        kind=kind,  # type: ignore[arg-type]
        country=country,
        province=row.text("province"),
        city=row.text("city"),
        response_hours=response_hours,
        line=row.line,
        **ints,
        **rates,
        **lists,
    )


def _listing(row: _Row, check_image: Callable[[_Row, str], None]) -> Listing:
    listing_id, supplier_id = row.required("listing_id"), row.required("supplier_id")
    title, raw_images = row.required("title"), row.required("images")
    images = row.items("images")
    if raw_images and not images:
        row.problem("images", f"no image path given: {raw_images!r}")
    repeated = sorted({image for image in images if images.count(image) > 1})
    if repeated:  # one photo listed twice would be indexed twice (FAISS) or once (Qdrant)
        row.problem("images", f"photo listed more than once: {', '.join(map(repr, repeated))}")
    for image in images:
        check_image(row, image)
    price_min = row.number("price_min", minimum=0)
    price_max = row.number("price_max", minimum=0)
    if price_min is not None and price_max is not None and price_min > price_max:
        row.problem("price_min", f"greater than price_max: {price_min:g} > {price_max:g}")
    currency = row.text("currency")
    if currency is not None and not _CURRENCY.fullmatch(currency):
        row.problem("currency", f"not a three-letter ISO 4217 code: {currency!r}")
    moq = row.integer("moq", minimum=1)
    lead_time_days = row.integer("lead_time_days")
    weight_kg = row.number("weight_kg", minimum=0)
    attributes: dict[str, Any] = {}
    raw = row.text("attributes")
    if raw is not None:
        try:
            parsed = json.loads(raw, parse_constant=_no_constant)
        except json.JSONDecodeError as exc:
            row.problem("attributes", f"invalid JSON: {exc.msg} at char {exc.pos}")
        except ValueError as exc:
            row.problem("attributes", f"invalid JSON: {exc}")
        else:
            if isinstance(parsed, dict):
                attributes = parsed
                tiers_problem = price_tiers_problem(parsed.get("price_tiers"))
                if tiers_problem:
                    row.problem("attributes", f"price_tiers: {tiers_problem}")
            else:
                row.problem("attributes", f"not a JSON object: {raw[:40]!r}")
    return Listing(
        listing_id=listing_id,
        supplier_id=supplier_id,
        title=title,
        images=images,
        product_id=row.text("product_id"),
        category=row.text("category"),
        hs_code=row.text("hs_code"),
        material=row.text("material"),
        price_min=price_min,
        price_max=price_max,
        currency=currency,
        moq=moq,
        lead_time_days=lead_time_days,
        weight_kg=weight_kg,
        attributes=attributes,
        line=row.line,
    )


def _no_constant(name: str) -> Any:
    """``json.loads`` reads NaN and Infinity, which are not JSON and would reach prices."""
    raise ValueError(f"{name} is not a JSON number")


def price_tiers_problem(tiers: Any) -> str | None:
    """What is wrong with ``attributes.price_tiers`` (``None`` when absent or right): a list of
    ``{"min_qty": whole number >= 1, "unit_price": number > 0}``, ``min_qty`` ascending and
    distinct. Unit prices, landed costs and the price filter are computed from these rows, so a
    bad one is refused here rather than failing or misleading every run that reaches it."""
    if tiers is None:
        return None
    if not isinstance(tiers, list) or not tiers:
        return f"must be a non-empty list of {{min_qty, unit_price}} objects, got {tiers!r:.40}"
    previous = 0
    for number, tier in enumerate(tiers):
        if not isinstance(tier, dict):
            return f"tier {number}: not an object: {tier!r:.40}"
        qty, price = tier.get("min_qty"), tier.get("unit_price")
        if isinstance(qty, bool) or not isinstance(qty, int) or qty < 1:
            return f"tier {number}: min_qty must be a whole number >= 1, got {qty!r}"
        if isinstance(price, bool) or not isinstance(price, int | float) or not price > 0:
            return f"tier {number}: unit_price must be a number > 0, got {price!r}"
        if qty <= previous:
            return f"tier {number}: min_qty {qty} must be above the previous tier's {previous}"
        previous = qty
    return None


def _image_checker(root: Path) -> Callable[[_Row, str], None]:
    base = root.resolve()

    def check(row: _Row, image: str) -> None:
        posix, windows = PurePosixPath(image), PureWindowsPath(image)
        if posix.is_absolute() or windows.is_absolute() or windows.drive or image.startswith("\\"):
            row.problem("images", f"image path must be relative to the catalog folder: {image!r}")
            return
        target = (base / image).resolve()
        if ".." in windows.parts or not target.is_relative_to(base):
            row.problem("images", f"image path escapes the catalog folder: {image!r}")
            return
        if not target.is_file():
            row.problem("images", f"image not found: {image!r}")

    return check


def _position(problem: str) -> tuple[int, int]:
    """Sort key putting problems in file order (suppliers first), then line order (stable)."""
    file, line, _ = problem.split(":", 2)
    return (0 if file == SUPPLIERS_FILE else 1), int(line)


def load_catalog(folder: str | Path) -> Catalog:
    """Read and validate the catalog in ``folder``; raise :class:`CatalogError` listing all problems."""
    root = Path(folder)
    if not root.is_dir():
        raise CatalogError([f"{root}:0: -: catalog folder not found"])
    problems: list[str] = []

    suppliers: dict[str, Supplier] = {}
    first_line: dict[str, int] = {}
    suppliers_readable, rows = _read_rows(
        root, SUPPLIERS_FILE, SUPPLIER_REQUIRED, SUPPLIER_OPTIONAL, problems)
    for row in rows:
        supplier = _supplier(row)
        if not supplier.supplier_id:
            continue
        if supplier.supplier_id in suppliers:
            row.problem("supplier_id", f"duplicate supplier_id {supplier.supplier_id!r} "
                                       f"(first on line {first_line[supplier.supplier_id]})")
            continue
        suppliers[supplier.supplier_id] = supplier
        first_line[supplier.supplier_id] = row.line

    listings: dict[str, Listing] = {}
    first_line = {}
    check_image = _image_checker(root)
    _, rows = _read_rows(root, LISTINGS_FILE, LISTING_REQUIRED, LISTING_OPTIONAL, problems)
    for row in rows:
        listing = _listing(row, check_image)
        # references are checked only against a suppliers.csv that could be read at all
        if suppliers_readable and listing.supplier_id and listing.supplier_id not in suppliers:
            row.problem("supplier_id",
                        f"unknown supplier {listing.supplier_id!r} (not in {SUPPLIERS_FILE})")
        if not listing.listing_id:
            continue
        if listing.listing_id in listings:
            row.problem("listing_id", f"duplicate listing_id {listing.listing_id!r} "
                                      f"(first on line {first_line[listing.listing_id]})")
            continue
        listings[listing.listing_id] = listing
        first_line[listing.listing_id] = row.line

    if not listings and not problems:
        # a truncated export must not replace a good index with an empty one
        problems.append(f"{LISTINGS_FILE}:1: -: no listings (a catalog needs at least one)")
    if problems:
        raise CatalogError(sorted(problems, key=_position))
    return Catalog(root=root, suppliers=suppliers, listings=listings)
