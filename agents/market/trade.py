"""Trade tables for landed cost: US tariff rates (HTS 2024), additional duties, freight per kg,
marketplace referral and fulfilment fees.

Every lookup returns the row it used (file, record id, value) so the caller can cite it; where a
table holds nothing for a market or a code the lookup returns ``None`` and the caller says so,
never a guessed rate. Files (``data/trade/``):

- ``us_hts_2024/hts_2024_basic_edition.csv``: the official 2024 schedule; a rate is read from the
  8- or 10-digit lines under a 6-digit HS subheading (parsed on first use, about 1 s).
- ``costs/us_additional_duties.csv``: additional duties by origin and HS prefix (Section 301),
  each row with its legal source and date.
- ``costs/freight_rates.csv``: USD per kg by lane and mode (express, air, sea), dated and cited.
- ``costs/marketplace_referral_fees.csv`` and ``costs/marketplace_fulfilment_fees.csv``: fees
  per category (by HS prefix) and per shipping weight, cited.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

HTS_FILE = "us_hts_2024/hts_2024_basic_edition.csv"
ADDITIONAL_FILE = "costs/us_additional_duties.csv"
FREIGHT_FILE = "costs/freight_rates.csv"
REFERRAL_FILE = "costs/marketplace_referral_fees.csv"
FULFILMENT_FILE = "costs/marketplace_fulfilment_fees.csv"
TARIFF_MARKETS = ("US",)  # markets whose general duty rates are bundled
# the currency of every cost table, of landed costs and margins, and of a seller's sale price
COST_CURRENCY = "USD"
ShippingMode = Literal["express", "air", "sea"]
MODES: tuple[str, ...] = get_args(ShippingMode)
HALF_POUND_KG = 0.226796
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


@dataclass(frozen=True)
class TableRow:
    """One cited row: ``source`` (file), ``record_id`` and its fields."""

    source: str
    record_id: str
    fields: dict[str, str]

    def get(self, key: str) -> str:
        return self.fields.get(key) or ""


@dataclass(frozen=True)
class TariffLine:
    """One rate-bearing line of the US HTS under a 6-digit subheading."""

    hts_number: str
    description: str
    general: str
    rate_pct: float | None  # None: specific or compound rate (not a plain percentage)


def parse_rate(text: str) -> float | None:
    """``"Free"`` -> 0, ``"16.5%"`` -> 16.5; specific or compound rates -> ``None``."""
    text = (text or "").strip()
    if text.lower() == "free":
        return 0.0
    match = _PERCENT.match(text)
    return float(match.group(1)) if match else None


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


class TradeData:
    """The trade tables under one folder (``data/trade`` by default); the HTS loads lazily."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        for name in (ADDITIONAL_FILE, FREIGHT_FILE, REFERRAL_FILE, FULFILMENT_FILE):
            if not (self.folder / name).exists():
                raise FileNotFoundError(f"trade table missing: {self.folder / name}")
        self.additional = [TableRow(ADDITIONAL_FILE, f"{r['market']}-{r['origin']}-"
                                    f"{r['hs_prefix']}", r)
                           for r in _read(self.folder / ADDITIONAL_FILE)]
        self.freight = [TableRow(FREIGHT_FILE, f"{r['lane']}-{r['mode']}", r)
                        for r in _read(self.folder / FREIGHT_FILE)]
        self.referral = [TableRow(REFERRAL_FILE, f"{r['market']}-{r['fee_category']}-"
                                  f"{r['price_from_usd']}", r)
                         for r in _read(self.folder / REFERRAL_FILE)]
        self.fulfilment = [TableRow(FULFILMENT_FILE, f"{r['market']}-"
                                    f"{'apparel' if r['apparel'] == 'yes' else 'other'}-"
                                    f"{r['weight_from_kg']}", r)
                           for r in _read(self.folder / FULFILMENT_FILE)]
        self._hts: dict[str, list[TariffLine]] | None = None

    # -- duties ------------------------------------------------------------------------------

    def _tariff(self) -> dict[str, list[TariffLine]]:
        if self._hts is None:
            lines: dict[str, list[TariffLine]] = {}
            for row in _read(self.folder / HTS_FILE):
                number, general = row["HTS Number"].strip(), row["General Rate of Duty"].strip()
                digits = number.replace(".", "")
                if len(digits) < 8 or not general:
                    continue
                lines.setdefault(digits[:6], []).append(TariffLine(
                    number, row["Description"].strip(), general, parse_rate(general)))
            self._hts = lines
        return self._hts

    def general_duty(self, market: str, hs6: str) -> dict[str, Any] | None:
        """The general (MFN) duty for a 6-digit code in ``market``: every rate line under it and
        the rate used (the highest plain percentage: where a subheading splits into lines with
        different rates by facts the catalog does not state, the landed cost takes the upper
        bound). ``None`` when the market has no bundled schedule; ``rate_pct`` is ``None`` when
        the code is not in it or only specific/compound rates apply."""
        if market not in TARIFF_MARKETS:
            return None
        lines = self._tariff().get(str(hs6)[:6], [])
        rates = [line for line in lines if line.rate_pct is not None]
        chosen = max(rates, key=lambda line: line.rate_pct) if rates else None
        return {"market": market, "hs6": str(hs6)[:6], "schedule": "US HTS 2024 basic edition",
                "source": HTS_FILE, "lines": lines,
                "rate_pct": chosen.rate_pct if chosen else None,
                "hts_number": chosen.hts_number if chosen else None,
                "general": chosen.general if chosen else None}

    def additional_duties(self, market: str, origin: str | None, hs6: str) -> list[TableRow]:
        """Additional-duty rows for goods of ``origin`` under ``hs6`` (longest prefix wins)."""
        rows = [row for row in self.additional
                if row.get("market") == market and row.get("origin") == (origin or "")
                and str(hs6).startswith(row.get("hs_prefix"))]
        if not rows:
            return []
        longest = max(len(row.get("hs_prefix")) for row in rows)
        return [row for row in rows if len(row.get("hs_prefix")) == longest]

    # -- freight -----------------------------------------------------------------------------

    def freight_rate(self, origin: str | None, market: str, mode: str) -> TableRow | None:
        if mode not in MODES:
            raise ValueError(f"unknown shipping mode {mode!r}; known: {', '.join(MODES)}")
        lane = f"{origin or ''}-{market}"
        return next((row for row in self.freight
                     if row.get("lane") == lane and row.get("mode") == mode), None)

    # -- marketplace fees --------------------------------------------------------------------

    def referral_rows(self, market: str, hs6: str) -> list[TableRow]:
        """The referral-fee rows of the fee category whose HS prefixes match ``hs6`` best."""
        best: list[TableRow] = []
        best_len = 0
        for row in self.referral:
            if row.get("market") != market:
                continue
            for prefix in row.get("hs_prefixes").split("|"):
                if prefix and str(hs6).startswith(prefix):
                    if len(prefix) > best_len:
                        best, best_len = [row], len(prefix)
                    elif len(prefix) == best_len and row not in best:
                        best.append(row)
        return best

    def fulfilment_row(self, market: str, weight_kg: float, apparel: bool) -> TableRow | None:
        for row in self.fulfilment:
            if row.get("market") != market or (row.get("apparel") == "yes") != apparel:
                continue
            if float(row.get("weight_from_kg")) < weight_kg <= float(row.get("weight_to_kg")) \
                    or (weight_kg == 0 and float(row.get("weight_from_kg")) == 0):
                return row
        return None


def referral_fee(rows: list[TableRow], price: float) -> tuple[float, list[TableRow]]:
    """Referral fee (USD) for one unit sold at ``price`` and the rows it used. ``total_price``
    rows apply their rate to the whole price (the row whose band holds the price); ``portion``
    rows apply each rate to the part of the price inside their band. The category's minimum fee
    applies."""
    used: list[TableRow] = []
    fee = 0.0
    for row in sorted(rows, key=lambda r: float(r.get("price_from_usd") or 0)):
        low = float(row.get("price_from_usd") or 0)
        high = float(row.get("price_to_usd")) if row.get("price_to_usd") else float("inf")
        rate = float(row.get("referral_pct")) / 100
        if row.get("applies_to") == "portion":
            if price > low:
                fee += (min(price, high) - low) * rate
                used.append(row)
        elif (low < price <= high) or (price == 0 and low == 0):
            fee = price * rate
            used = [row]
    minimum = max((float(row.get("minimum_fee_usd") or 0) for row in used), default=0.0)
    return max(fee, minimum), used


def fulfilment_fee(row: TableRow, weight_kg: float) -> float:
    """FBA fee for one unit of ``weight_kg`` shipping weight from its weight row."""
    fee = float(row.get("fee_usd"))
    extra = float(row.get("extra_per_half_lb_usd") or 0)
    if extra:
        above = max(0.0, weight_kg - float(row.get("weight_from_kg")))
        steps = -(-round(above / HALF_POUND_KG, 6) // 1)  # whole half-pounds, rounded up
        fee += extra * steps
    return fee
