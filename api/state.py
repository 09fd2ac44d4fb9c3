"""What the app holds while it runs: settings, run store, run queue, access guard, services."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agents.context import Services
from api.jobs import RunQueue
from api.security import AccessGuard
from api.settings import Settings
from api.store import RunStore


@dataclass
class AppState:
    settings: Settings
    store: RunStore
    queue: RunQueue
    guard: AccessGuard
    services: Services | None = None
    graph: Any = None
    load_error: str | None = None
    _catalog_images: frozenset[str] | None = field(default=None, repr=False)
    _text_search: Any = field(default=None, repr=False)

    def text_search(self) -> Any:
        """The text search over this catalog (its title matrix is built on first use)."""
        if self._text_search is None and self.services is not None:
            from retrieval.text_search import TextSearch

            services = self.services
            self._text_search = TextSearch(services.catalog, services.text_embedder,
                                           services.image_embedder, services.index)
        return self._text_search

    def catalog_images(self) -> frozenset[str]:
        """Every photo path the catalog lists: the only files ``/v1/images`` serves."""
        if self._catalog_images is None and self.services is not None:
            self._catalog_images = frozenset(
                image for listing in self.services.catalog.listings.values()
                for image in listing.images)
        return self._catalog_images or frozenset()
