import logging
import os
import secrets
import tempfile
from contextlib import suppress
from functools import lru_cache
from ipaddress import ip_network
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import URL, make_url

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEV_SECRET_FILE = PROJECT_ROOT / ".secret_key"
MIN_SECRET_LENGTH = 32

logger = logging.getLogger(__name__)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    ENVIRONMENT: Literal["development", "test", "production"] = "development"
    DATABASE_URL: str = "sqlite+aiosqlite:///./app.db"
    # DATABASE_URL is a PgBouncer (or another pooler) in transaction mode: no prepared statements
    # or session settings; LISTEN and the migration lock use DATABASE_DIRECT_URL (docs/scaling.md).
    DB_PGBOUNCER: bool = False
    DATABASE_DIRECT_URL: str | None = None  # the server itself, behind the pooler
    # A streaming replica for generated lists and gets (docs/scaling.md, "Read replicas").
    DATABASE_REPLICA_URL: str | None = None
    REPLICA_STICKY_SECONDS: float = Field(5, ge=0)  # a client's reads after its write: primary
    REPLICA_MAX_LAG_SECONDS: float = Field(5, gt=0)  # a replica further behind is skipped
    REPLICA_CHECK_SECONDS: float = Field(1, gt=0)  # how often each worker measures the lag
    SECRET_KEY: str = ""
    ACCESS_TOKEN_EXPIRE_MINUTES: int = Field(30, gt=0)
    REFRESH_TOKEN_EXPIRE_DAYS: int = Field(14, gt=0)  # each refresh token's lifetime...
    REFRESH_TOKEN_MAX_DAYS: int = Field(30, gt=0)  # ...and its login's, however often refreshed
    BCRYPT_ROUNDS: int = Field(12, ge=4, le=31)
    CORS_ORIGINS: Annotated[list[str], NoDecode] = []
    CORS_MAX_AGE: int = Field(3600, ge=0)  # seconds a browser may reuse a preflight's answer
    FIRST_SUPERUSER_EMAIL: str | None = None
    FIRST_SUPERUSER_PASSWORD: str | None = None
    DB_POOL_SIZE: int = Field(10, ge=1)  # PostgreSQL connections per worker, all uses together
    DB_POOL_TIMEOUT: float = Field(10, gt=0)  # seconds a request waits for a pooled connection
    DB_CONNECT_TIMEOUT: int = Field(3, ge=1)  # seconds; an unreachable database answers 503
    DB_STATEMENT_TIMEOUT_MS: int = Field(10_000, ge=0)  # PostgreSQL only; 0 disables it
    MAX_BODY_BYTES: int = Field(1024 * 1024, gt=0)
    BULK_MAX_ITEMS: int = Field(1000, ge=1)  # items in one bulk write
    MAX_OFFSET: int = Field(10_000, ge=0)  # deeper list pages use cursors
    SYNC_RETENTION_DAYS: int = Field(30, ge=1)  # tombstones kept; older sync tokens are 410
    SSE_MAX_CLIENTS: int = Field(1000, ge=1)  # open event streams per worker; past it, 503
    SSE_QUEUE_EVENTS: int = Field(64, ge=1)  # events a slow stream may lag before it is closed
    SSE_SEND_TIMEOUT: float = Field(30, gt=0)  # seconds a stream write may block; then closed
    SSE_POLL_SECONDS: float = Field(1, gt=0)  # SQLite: how often workers look for changes
    STREAM_TICKET_SECONDS: int = Field(60, ge=1)  # lifetime of an EventSource stream ticket
    MAX_IN_VALUES: int = Field(100, ge=1)  # values of one `__in` filter
    LOGIN_MAX_FAILURES: int = Field(5, ge=1)  # per client address and per account...
    LOGIN_WINDOW_SECONDS: int = Field(60, ge=1)  # ...within this sliding window
    DEVICE_TOKEN_EXPIRE_DAYS: int = Field(90, gt=0)  # a known device's exemption from the above
    REGISTER_MAX_PER_WINDOW: int = Field(10, ge=1)  # sign-ups per client address...
    REGISTER_WINDOW_SECONDS: int = Field(3600, ge=1)  # ...within this sliding window
    # Proxies in front of the app that append to X-Forwarded-For (Heroku-style router: 1).
    # 0 trusts only the connection's peer (as rewritten by FORWARDED_ALLOW_IPS proxies).
    PROXY_HOPS: int = Field(0, ge=0)
    # Peers whose X-Forwarded-* uvicorn believes; app/gunicorn_conf.py passes it on. Here so
    # that start-up can refuse it with PROXY_HOPS in production (check_client_address).
    FORWARDED_ALLOW_IPS: str = "127.0.0.1"
    ADMIN_ENABLED: bool = True  # the admin pages at /admin (superusers only)
    ADMIN_SESSION_HOURS: int = Field(8, ge=1)  # an admin login's lifetime
    LOG_LEVEL: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    # Shown in /docs and /openapi.json (`info.contact`, `info.license`) when set.
    API_CONTACT_EMAIL: str | None = None
    API_CONTACT_URL: str | None = None
    API_LICENSE_NAME: str | None = None
    API_LICENSE_URL: str | None = None  # needs API_LICENSE_NAME

    @field_validator("DATABASE_URL", "DATABASE_DIRECT_URL", "DATABASE_REPLICA_URL")
    @classmethod
    def normalise_database_url(cls, url: str | None) -> str | None:
        # Heroku-style platforms hand out postgres:// or postgresql:// URLs.
        if not url:
            return url
        for prefix in ("postgres://", "postgresql://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url

    @field_validator("CORS_ORIGINS", mode="before")
    @classmethod
    def split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("LOG_LEVEL", mode="before")
    @classmethod
    def upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def check_secret_key(self) -> "Settings":
        if self.ENVIRONMENT == "production":
            if len(self.SECRET_KEY) < MIN_SECRET_LENGTH:
                raise ValueError(
                    f"SECRET_KEY must be set to at least {MIN_SECRET_LENGTH} characters "
                    "when ENVIRONMENT=production"
                )
        elif not self.SECRET_KEY:
            self.SECRET_KEY = _development_secret()
        return self

    @model_validator(mode="after")
    def check_client_address(self) -> "Settings":
        # uvicorn then takes the leftmost X-Forwarded-For entry, which the client writes.
        if self.ENVIRONMENT == "production" and self.PROXY_HOPS == 0 and _trusts_any_peer(self):
            raise ValueError(
                f"FORWARDED_ALLOW_IPS={self.FORWARDED_ALLOW_IPS!r} needs PROXY_HOPS set to the "
                "number of proxies in front (1 behind a Heroku-style router) when "
                "ENVIRONMENT=production: with PROXY_HOPS=0 the client address is the leftmost "
                "X-Forwarded-For entry, which any client writes, so any client could choose the "
                "address the login throttle counts"
            )
        return self

    @model_validator(mode="after")
    def check_replica_stickiness(self) -> "Settings":
        # A writer's reads stay on the primary until any usable replica holds its write.
        if self.DATABASE_REPLICA_URL and self.REPLICA_STICKY_SECONDS < self.REPLICA_MAX_LAG_SECONDS:
            raise ValueError(
                "REPLICA_STICKY_SECONDS must be at least REPLICA_MAX_LAG_SECONDS: a client could "
                "otherwise read from a replica that has not replayed its own write yet"
            )
        return self

    @model_validator(mode="after")
    def check_api_license(self) -> "Settings":
        # OpenAPI's license object requires a name.
        if self.API_LICENSE_URL and not self.API_LICENSE_NAME:
            raise ValueError("API_LICENSE_URL needs API_LICENSE_NAME")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.DATABASE_URL.startswith("sqlite")

    @property
    def sqlalchemy_url(self) -> URL:
        return make_url(self.DATABASE_URL)

    @property
    def direct_url(self) -> str | None:
        """A URL of the server itself, for what a transaction-mode pooler cannot carry (LISTEN,
        the migration lock); None behind PgBouncer without DATABASE_DIRECT_URL."""
        return self.DATABASE_DIRECT_URL or (None if self.DB_PGBOUNCER else self.DATABASE_URL)


def _trusts_any_peer(settings: Settings) -> bool:
    """Whether FORWARDED_ALLOW_IPS believes every peer: `*`, or a network of every address."""
    for entry in settings.FORWARDED_ALLOW_IPS.split(","):
        entry = entry.strip()
        if entry == "*":
            return True
        with suppress(ValueError):
            if ip_network(entry, strict=False).prefixlen == 0:
                return True
    return False


def _development_secret() -> str:
    """Generate the development key once and share it through a git-ignored file.

    The key is written to a private temporary file and hard-linked into place: the link
    fails if the file exists, so concurrent workers agree on one key and never read a
    half-written file.
    """
    path = DEV_SECRET_FILE
    if not path.exists():
        key = secrets.token_urlsafe(48)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f"{path.name}.")
        try:
            with os.fdopen(fd, "w") as file:
                file.write(key)
            os.link(temporary, path)
        except FileExistsError:
            pass
        else:
            logger.warning("SECRET_KEY is not set: generated a development key in %s", path)
            return key
        finally:
            os.unlink(temporary)
    key = path.read_text().strip()
    if not key:
        raise ValueError(f"SECRET_KEY is not set and {path} is empty: delete it or set SECRET_KEY")
    return key


class ConfigurationError(SystemExit):
    """Start-up stops with a message naming each bad variable."""


def describe_errors(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        name = ".".join(str(part) for part in item["loc"]) or "settings"
        lines.append(f"  {name}: {item['msg']}")
    return "Invalid configuration:\n" + "\n".join(lines)


@lru_cache
def get_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as error:
        raise ConfigurationError(describe_errors(error)) from None
