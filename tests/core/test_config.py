import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.core import config
from app.core.config import Settings, describe_errors

ROOT = Path(__file__).resolve().parents[2]
START_APP = "from app.main import create_app; create_app()"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@db:5432/app", "postgresql+psycopg://u:p@db:5432/app"),
        (
            "postgresql://u:p@db/app?sslmode=require",
            "postgresql+psycopg://u:p@db/app?sslmode=require",
        ),
        ("postgresql+psycopg://u@db/app", "postgresql+psycopg://u@db/app"),
        ("sqlite+aiosqlite:///./app.db", "sqlite+aiosqlite:///./app.db"),
    ],
)
def test_database_url_is_normalised(given: str, expected: str) -> None:
    url = Settings(DATABASE_URL=given).DATABASE_URL
    assert url == expected


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ACCESS_TOKEN_EXPIRE_MINUTES", "REFRESH_TOKEN_EXPIRE_DAYS", "MAX_BODY_BYTES"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(_env_file=None, SECRET_KEY="k" * 32)  # type: ignore[call-arg]
    assert settings.ACCESS_TOKEN_EXPIRE_MINUTES == 30
    assert settings.REFRESH_TOKEN_EXPIRE_DAYS == 14
    assert settings.MAX_BODY_BYTES == 1024 * 1024


def test_cors_origins_are_comma_separated() -> None:
    settings = Settings(CORS_ORIGINS=" https://a.example ,https://b.example,, ")
    assert settings.CORS_ORIGINS == ["https://a.example", "https://b.example"]


def start_app(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Start the app in a fresh process, away from any .env of the developer's."""
    environment = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    environment.update(PYTHONPATH=str(ROOT), **env)
    return subprocess.run(
        [sys.executable, "-c", START_APP],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("secret", [None, "x" * 31])
def test_production_refuses_a_missing_or_short_secret(tmp_path: Path, secret: str | None) -> None:
    env = {"ENVIRONMENT": "production"}
    if secret is not None:
        env["SECRET_KEY"] = secret
    result = start_app(tmp_path, **env)
    assert result.returncode != 0
    assert "SECRET_KEY must be set to at least 32 characters" in result.stderr
    assert "Traceback" not in result.stderr


def test_production_starts_with_a_long_secret(tmp_path: Path) -> None:
    result = start_app(tmp_path, ENVIRONMENT="production", SECRET_KEY="x" * 32)
    assert result.returncode == 0, result.stderr


def test_bad_value_names_the_variable(tmp_path: Path) -> None:
    result = start_app(tmp_path, ACCESS_TOKEN_EXPIRE_MINUTES="abc")
    assert result.returncode != 0
    assert "ACCESS_TOKEN_EXPIRE_MINUTES" in result.stderr
    assert "Traceback" not in result.stderr


def test_development_secret_is_generated_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    secret_file = tmp_path / ".secret_key"
    monkeypatch.setattr(config, "DEV_SECRET_FILE", secret_file)
    monkeypatch.delenv("SECRET_KEY")
    monkeypatch.setenv("ENVIRONMENT", "development")

    with caplog.at_level(logging.WARNING, logger="app.core.config"):
        first = Settings(_env_file=None)  # type: ignore[call-arg]
    assert len(first.SECRET_KEY) >= 32
    assert secret_file.read_text() == first.SECRET_KEY
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert [record.levelname for record in caplog.records] == ["WARNING"]
    assert str(secret_file) in caplog.text

    caplog.clear()
    second = Settings(_env_file=None)  # type: ignore[call-arg]
    assert second.SECRET_KEY == first.SECRET_KEY
    assert caplog.records == []
    assert [path.name for path in tmp_path.iterdir()] == [".secret_key"]


def test_development_secret_file_must_not_be_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_file = tmp_path / ".secret_key"
    secret_file.write_text("\n")
    monkeypatch.setattr(config, "DEV_SECRET_FILE", secret_file)
    monkeypatch.delenv("SECRET_KEY")
    monkeypatch.setenv("ENVIRONMENT", "development")
    with pytest.raises(ValueError, match="is empty"):
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_an_explicit_secret_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "DEV_SECRET_FILE", tmp_path / ".secret_key")
    monkeypatch.setenv("ENVIRONMENT", "development")
    assert Settings(SECRET_KEY="given-key").SECRET_KEY == "given-key"
    assert not (tmp_path / ".secret_key").exists()


UNSAFE_PROXY = "FORWARDED_ALLOW_IPS='*' needs PROXY_HOPS"
WHY = "any client could choose the address the login throttle counts"


@pytest.mark.parametrize("trusted", ["*", " 10.0.0.1 , * ", "0.0.0.0/0", "::/0"])
def test_production_refuses_to_trust_every_proxy_without_proxy_hops(trusted: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(
            ENVIRONMENT="production",
            SECRET_KEY="x" * 32,
            FORWARDED_ALLOW_IPS=trusted,
            PROXY_HOPS=0,
        )
    message = " ".join(describe_errors(refused.value).split())
    assert f"FORWARDED_ALLOW_IPS={trusted!r} needs PROXY_HOPS" in message
    assert WHY in message


@pytest.mark.parametrize(
    ("environment", "trusted", "hops"),
    [
        ("production", "*", 1),  # the Heroku recipe
        ("production", "127.0.0.1", 0),  # nginx on the same host
        ("production", "10.0.0.5, 10.0.0.0/8", 0),  # nginx elsewhere
        ("development", "*", 0),
        ("test", "*", 0),
    ],
)
def test_trusting_proxies_is_refused_only_where_clients_choose_the_address(
    environment: str, trusted: str, hops: int
) -> None:
    Settings(  # no ValidationError
        ENVIRONMENT=environment,
        SECRET_KEY="x" * 32,
        FORWARDED_ALLOW_IPS=trusted,
        PROXY_HOPS=hops,
    )


def test_start_up_refuses_to_trust_every_proxy_without_proxy_hops(tmp_path: Path) -> None:
    env = {"ENVIRONMENT": "production", "SECRET_KEY": "x" * 32, "FORWARDED_ALLOW_IPS": "*"}
    result = start_app(tmp_path, **env)
    assert result.returncode != 0
    stderr = " ".join(result.stderr.split())
    assert "Invalid configuration" in stderr
    assert UNSAFE_PROXY in stderr and WHY in stderr
    assert "Traceback" not in stderr
    assert start_app(tmp_path, **env, PROXY_HOPS="1").returncode == 0


def test_replica_stickiness_must_cover_the_allowed_lag() -> None:
    """A writer's reads leave the primary only once any usable replica holds its write."""
    replica = "postgresql://replica.example/app"
    with pytest.raises(ValidationError, match="REPLICA_STICKY_SECONDS must be at least"):
        Settings(DATABASE_REPLICA_URL=replica, REPLICA_STICKY_SECONDS=2, REPLICA_MAX_LAG_SECONDS=5)
    settings = Settings(DATABASE_REPLICA_URL=replica, REPLICA_STICKY_SECONDS=5)
    assert settings.DATABASE_REPLICA_URL == "postgresql+psycopg://replica.example/app"
