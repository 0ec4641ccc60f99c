"""A throw-away PgBouncer in transaction mode, in front of a PostgreSQL server.

Debian's `pgbouncer` package, run as the `postgres` user (it refuses root) on a free loopback
port, with a small server pool, so that statements from many client connections share few
server connections, as on a managed plan's pooler. `TEST_PGBOUNCER=1` runs the suite through
one (tests/conftest.py); the fault tests start their own.
"""

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from tests.deploy.services import free_port

OWNER = "postgres"
BINARY = "/usr/sbin/pgbouncer"
POOL_SIZE = 5  # server connections per database and user: small, so that they are shared


def binary() -> str | None:
    return BINARY if Path(BINARY).exists() else shutil.which("pgbouncer")


def available() -> bool:
    return binary() is not None


@dataclass
class PgBouncer:
    """One PgBouncer process; `url(...)` is a database URL through it."""

    directory: Path
    port: int
    target_host: str
    target_port: int
    process: subprocess.Popen[bytes] | None = None

    def url(self, database: str, scheme: str = "postgresql") -> str:
        return f"{scheme}://{OWNER}@127.0.0.1:{self.port}/{database}"

    @property
    def log(self) -> Path:
        return self.directory / "pgbouncer.log"

    @property
    def pidfile(self) -> Path:
        return self.directory / "pgbouncer.pid"

    def write_config(self) -> Path:
        (self.directory / "users.txt").write_text(f'"{OWNER}" ""\n')
        config = self.directory / "pgbouncer.ini"
        config.write_text(
            "[databases]\n"
            f"* = host={self.target_host} port={self.target_port}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            f"unix_socket_dir = {self.directory}\n"
            "auth_type = trust\n"
            f"auth_file = {self.directory / 'users.txt'}\n"
            f"admin_users = {OWNER}\n"
            "pool_mode = transaction\n"
            f"default_pool_size = {POOL_SIZE}\n"
            "max_client_conn = 1000\n"
            f"logfile = {self.log}\n"
            f"pidfile = {self.pidfile}\n"
            "log_connections = 0\n"
            "log_disconnections = 0\n"
        )
        return config

    def start(self) -> None:
        """Returns once it accepts connections."""
        self.process = subprocess.Popen(
            [
                "runuser",
                "-u",
                OWNER,
                "--",
                binary() or BINARY,
                str(self.directory / "pgbouncer.ini"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(self.url("pgbouncer"), connect_timeout=2, autocommit=True):
                    return
            except psycopg.OperationalError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"PgBouncer did not start: see {self.log}") from None
                time.sleep(0.1)

    def stop(self, kill: bool = False) -> None:
        """SIGTERM: PgBouncer exits at once, cutting every connection (as a restart does)."""
        if self.process is None:
            return
        with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
            os.kill(int(self.pidfile.read_text()), signal.SIGKILL if kill else signal.SIGTERM)
        self.process.wait(timeout=30)  # runuser exits with it
        self.process = None


@contextlib.contextmanager
def pgbouncer(target_url: str) -> Iterator[PgBouncer]:
    """A running PgBouncer in front of the server of `target_url`; stopped afterwards."""
    target = make_url(target_url)
    directory = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
    owner = pwd.getpwnam(OWNER)
    os.chown(directory, owner.pw_uid, owner.pw_gid)
    bouncer = PgBouncer(directory, free_port(), target.host or "127.0.0.1", target.port or 5432)
    bouncer.write_config()
    try:
        bouncer.start()
        yield bouncer
    finally:
        bouncer.stop(kill=True)
        shutil.rmtree(directory, ignore_errors=True)
