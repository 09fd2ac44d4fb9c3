"""Payloads of an in-process index held as numpy columns, one row per photo vector.

Filtering a million vectors must not loop over rows in Python, so each payload field is a
column: text fields (listing, supplier, product, category, kind, country) as ``int32`` codes into
a vocabulary (``-1`` = unknown), numbers (MOQ in pieces, lowest unit price) as ``float64`` with
``NaN`` for unknown, and set fields (certifications, capabilities) as a boolean matrix with one
column per known value. A :class:`~retrieval.filters.SearchFilter` becomes a boolean row mask in
a handful of vectorised operations.

Rows are appended in batches and consolidated lazily, so building from many small batches stays
linear in the number of rows.

Image paths, and a copy of the listing ids beside their vocabulary, are held as fixed-width
UTF-8 byte columns rather than lists of ``str``: a search's hits read each value with one memory
access into a flat array instead of two (a list slot, then the object). Right after FAISS has
swept the CPU caches every such read is a cache miss, and for the ten hits of an IVF search on
100,000 photos this took 5 µs off the 40-45 the project spent around FAISS's call (``make
bench``). A column is as wide as its longest value, so it takes rows x the longest path's UTF-8
length: less than a list of ``str`` for paths of similar lengths (no pointer and object header
per row), more when one path is far longer than the rest. (NumPy's 4-byte-a-character text
columns read 1-2 µs faster still, for four times the memory.)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.filters import SearchFilter

KEYWORD_FIELDS = ("listing_id", "supplier_id", "product_id", "category", "supplier_kind",
                  "country")
NUMBER_FIELDS = ("moq", "price_min")
SET_FIELDS = ("certifications", "capabilities")
ARRAYS_FILE = "payloads.npz"
TABLES_FILE = "payloads.json"
FLUSH_ROWS = 65_536  # queued rows turned into columns at once


class PayloadColumns:
    """Column store of vector payloads; row ``i`` describes the index's ``i``-th live vector."""

    def __init__(self) -> None:
        self.vocab: dict[str, list[str]] = {name: [] for name in KEYWORD_FIELDS + SET_FIELDS}
        self._lookup: dict[str, dict[str, int]] = {name: {} for name in self.vocab}
        self._codes = {name: np.empty(0, np.int32) for name in KEYWORD_FIELDS}
        self._numbers = {name: np.empty(0, np.float64) for name in NUMBER_FIELDS}
        self._sets = {name: np.zeros((0, 0), bool) for name in SET_FIELDS}
        self._images = _utf8_column([])  # image path per row
        self._listing_ids = _utf8_column([])  # vocab["listing_id"], grown as it grows
        self._pending: list[tuple[str, Mapping[str, Any]]] = []

    def __len__(self) -> int:
        return len(self._images) + len(self._pending)

    # -- writing -------------------------------------------------------------------------------

    def append(self, rows: Iterable[tuple[str, Mapping[str, Any]]]) -> None:
        """Queue rows of ``(image, payload)``; ``payload["listing_id"]`` is required. Queued
        payloads are turned into columns every ``FLUSH_ROWS`` rows, so a build of millions of
        rows never holds more than that many payload dicts."""
        self._pending.extend(rows)
        if len(self._pending) >= FLUSH_ROWS:
            self._flush()

    def keep(self, mask: np.ndarray) -> None:
        """Keep only the rows where ``mask`` is true (the others are dropped, order kept)."""
        self._flush()
        for store in (self._codes, self._numbers, self._sets):
            for name, column in store.items():
                store[name] = column[mask]
        self._images = self._images[mask]

    def set_rows(self, rows: np.ndarray, payload: Mapping[str, Any]) -> None:
        """Overwrite every field named in ``payload`` (except the image) on ``rows``."""
        self._flush()
        for name in KEYWORD_FIELDS:
            if name in payload:
                self._codes[name][rows] = self._code(name, payload[name])
        for name in NUMBER_FIELDS:
            if name in payload:
                self._numbers[name][rows] = _number(payload[name])
        for name in SET_FIELDS:
            if name in payload:
                codes = [self._code(name, value) for value in _values(name, payload[name])]
                self._widen(name)
                matrix = self._sets[name]
                matrix[rows] = False
                for code in codes:
                    matrix[rows, code] = True

    # -- reading -------------------------------------------------------------------------------

    def codes(self, name: str) -> np.ndarray:
        self._flush()
        return self._codes[name]

    def image(self, row: int) -> str:
        self._flush()
        return self._images[row].decode()

    def images_at(self, rows: Sequence[int]) -> list[str]:
        """The image paths of several rows (a search's hits), in one gather."""
        self._flush()
        return [path.decode() for path in self._images[rows].tolist()]

    def listing_ids_at(self, codes: Sequence[int]) -> list[str]:
        """The listing ids of several listing codes (a search's hits), in one gather."""
        self._flush()
        names = self.vocab["listing_id"]
        column = self._listing_ids
        if len(column) < len(names):  # the vocabulary only grows: add its new tail
            column = self._listing_ids = np.concatenate(
                [column, _utf8_column(names[len(column):])])
        return [name.decode() for name in column[codes].tolist()]

    def hit_columns(self) -> tuple[np.ndarray, list[str], np.ndarray]:
        """What a search's hits are read from, for ``retrieval._walk``: each row's listing code
        (``int32``), the listing ids by code, each row's image path (fixed-width UTF-8)."""
        self._flush()
        return self._codes["listing_id"], self.vocab["listing_id"], self._images

    def rows_of(self, listing_ids: Iterable[str]) -> np.ndarray:
        """Row numbers of every photo of the given listings, ascending."""
        codes = self.codes("listing_id")
        return np.flatnonzero(self.marks("listing_id", listing_ids)[codes])

    def marks(self, name: str, values: Iterable[str]) -> np.ndarray:
        """A lookup table of the keyword field ``name``'s codes: ``marks[codes]`` is true on the
        rows whose value is one of ``values``. One entry past the vocabulary stays false, so
        the code of an unknown value (-1) reads false too."""
        self._flush()
        lookup = self._lookup[name]
        table = np.zeros(len(self.vocab[name]) + 1, bool)
        table[[lookup[value] for value in values if value in lookup]] = True
        return table

    def code_of(self, name: str, value: str) -> int | None:
        """The code of a keyword field's value, ``None`` when no row ever held it."""
        return self._lookup[name].get(value)

    def payload(self, row: int) -> dict[str, Any]:
        """The payload of one row as a dict (for inspection and tests)."""
        self._flush()
        out: dict[str, Any] = {"image": self._images[row].decode()}
        for name in KEYWORD_FIELDS:
            code = int(self._codes[name][row])
            out[name] = self.vocab[name][code] if code >= 0 else None
        for name in NUMBER_FIELDS:
            value = float(self._numbers[name][row])
            out[name] = None if np.isnan(value) else value
        if out["moq"] is not None:
            out["moq"] = int(out["moq"])
        for name in SET_FIELDS:
            out[name] = sorted(self.vocab[name][code]
                               for code in np.flatnonzero(self._sets[name][row]))
        return out

    def mask(self, search_filter: SearchFilter) -> np.ndarray:
        """Boolean mask of the rows that pass ``search_filter`` (unknown values fail)."""
        self._flush()
        f = search_filter
        passing = np.ones(len(self._images), bool)
        for name, wanted in (("category", f.categories), ("country", f.countries),
                             ("supplier_id", f.supplier_ids), ("product_id", f.product_ids),
                             ("supplier_kind", (f.supplier_kind,) if f.supplier_kind else ())):
            if wanted:
                passing &= np.isin(self._codes[name], self._known_codes(name, wanted))
        for name, limit in (("moq", f.max_moq), ("price_min", f.max_unit_price)):
            if limit is not None:
                passing &= self._numbers[name] <= limit  # NaN (unknown) compares false
        for name, wanted in (("certifications", f.certifications),
                             ("capabilities", f.capabilities)):
            for value in wanted:
                code = self._lookup[name].get(value)
                if code is None:
                    passing[:] = False
                else:
                    passing &= self._sets[name][:, code]
        return passing

    # -- persistence ---------------------------------------------------------------------------

    def write(self, folder: Path, ids: np.ndarray) -> None:
        """Write ``payloads.npz`` (numeric columns and ``ids``) and ``payloads.json`` (texts)."""
        self._flush()
        arrays = {"ids": ids, **{f"code_{k}": v for k, v in self._codes.items()},
                  **{f"number_{k}": v for k, v in self._numbers.items()},
                  **{f"set_{k}": v for k, v in self._sets.items()}}
        np.savez(folder / ARRAYS_FILE, **arrays)
        tables = {"vocab": self.vocab,
                  "images": [path.decode() for path in self._images.tolist()]}
        (folder / TABLES_FILE).write_text(json.dumps(tables, ensure_ascii=False),
                                          encoding="utf-8")

    @classmethod
    def read(cls, folder: Path) -> tuple[PayloadColumns, np.ndarray]:
        """The columns and the vector ids written by :meth:`write`."""
        columns = cls()
        tables = json.loads((folder / TABLES_FILE).read_text(encoding="utf-8"))
        columns.vocab = {name: list(tables["vocab"][name]) for name in columns.vocab}
        columns._lookup = {name: {value: code for code, value in enumerate(values)}
                           for name, values in columns.vocab.items()}
        columns._images = _utf8_column(tables["images"])
        columns._listing_ids = _utf8_column(columns.vocab["listing_id"])  # not at first search
        with np.load(folder / ARRAYS_FILE, allow_pickle=False) as arrays:
            ids = arrays["ids"].astype(np.int64)
            columns._codes = {k: arrays[f"code_{k}"].astype(np.int32) for k in KEYWORD_FIELDS}
            columns._numbers = {k: arrays[f"number_{k}"].astype(np.float64)
                                for k in NUMBER_FIELDS}
            columns._sets = {k: arrays[f"set_{k}"].astype(bool) for k in SET_FIELDS}
        return columns, ids

    # -- internals -----------------------------------------------------------------------------

    def _code(self, name: str, value: Any) -> int:
        if value is None:
            return -1
        value = str(value)
        lookup = self._lookup[name]
        code = lookup.get(value)
        if code is None:
            code = lookup[value] = len(self.vocab[name])
            self.vocab[name].append(value)
        return code

    def _known_codes(self, name: str, values: Iterable[str]) -> list[int]:
        return [self._lookup[name][v] for v in values if v in self._lookup[name]]

    def _widen(self, name: str) -> None:
        matrix = self._sets[name]
        missing = len(self.vocab[name]) - matrix.shape[1]
        if missing > 0:
            self._sets[name] = np.hstack([matrix, np.zeros((matrix.shape[0], missing), bool)])

    def _flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        codes = {name: np.fromiter((self._code(name, payload.get(name)) for _, payload in pending),
                                   np.int32, len(pending))
                 for name in KEYWORD_FIELDS}
        numbers = {name: np.fromiter((_number(payload.get(name)) for _, payload in pending),
                                     np.float64, len(pending))
                   for name in NUMBER_FIELDS}
        for name in KEYWORD_FIELDS:
            self._codes[name] = np.concatenate([self._codes[name], codes[name]])
        for name in NUMBER_FIELDS:
            self._numbers[name] = np.concatenate([self._numbers[name], numbers[name]])
        for name in SET_FIELDS:
            members = [[self._code(name, v) for v in _values(name, payload.get(name))]
                       for _, payload in pending]
            self._widen(name)
            block = np.zeros((len(pending), len(self.vocab[name])), bool)
            for row, row_codes in enumerate(members):
                block[row, row_codes] = True
            self._sets[name] = np.vstack([self._sets[name], block])
        self._images = np.concatenate([self._images,
                                       _utf8_column([image for image, _ in pending])])


def _utf8_column(values: Sequence[str]) -> np.ndarray:
    """``values`` as a fixed-width byte array (``S``), each UTF-8 encoded. NumPy drops trailing
    NUL bytes, which no path or id ends with."""
    return np.array([value.encode() for value in values], dtype="S")


def _number(value: Any) -> float:
    return np.nan if value is None else float(value)


def _values(name: str, values: Any) -> list[str]:
    """Set-field values in canonical case: certifications upper, capabilities lower."""
    if not values:
        return []
    if isinstance(values, str):
        values = values.split("|")
    fold = str.upper if name == "certifications" else str.lower
    return sorted({fold(str(v)) for v in values if str(v)})
