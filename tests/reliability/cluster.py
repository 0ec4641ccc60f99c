"""A throw-away PostgreSQL cluster on a free port, for tests that stop and start the database.

It runs as the `postgres` user from a temporary data directory, listens on 127.0.0.1 only,
and is never the machine's main server: `cluster()` removes it even when the test fails.
Its binaries are those of the major version the suite's server runs (TEST_DATABASE_URL),
wherever the distribution put them. Without them the tests skip, unless
REQUIRE_CLUSTER_TESTS=1 (CI), where they fail.
"""

import contextlib
import functools
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from app.core.config import get_settings
from tests.deploy.services import free_port

OWNER = "postgres"
MAIN_PORT = 5432
REQUIRED = "REQUIRE_CLUSTER_TESTS"
_VERSION = re.compile(r"\(PostgreSQL\) (\d+)")


def required() -> bool:
    """CI sets REQUIRE_CLUSTER_TESTS=1: a missing prerequisite is then a failure, not a skip."""
    return os.environ.get(REQUIRED) == "1"


def server_major() -> int:
    """The major version of the server the suite runs on (`SHOW server_version_num`)."""
    url = get_settings().sqlalchemy_url.set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False), connect_timeout=5) as db:
        row = db.execute("SHOW server_version_num").fetchone()
    assert row is not None
    return int(row[0]) // 10_000


def _major_of(bindir: Path) -> int | None:
    """The major version of the pg_ctl in bindir, or None when there is none that runs."""
    try:
        version = subprocess.run(
            [str(bindir / "pg_ctl"), "--version"], capture_output=True, text=True, timeout=10
        ).stdout
    except OSError:
        return None
    match = _VERSION.search(version)
    return int(match.group(1)) if match else None


def _candidates(major: int) -> Iterator[Path]:
    yield Path(f"/usr/lib/postgresql/{major}/bin")  # Debian, Ubuntu
    yield Path(f"/usr/pgsql-{major}/bin")  # RHEL (PGDG)
    yield Path(f"/opt/homebrew/opt/postgresql@{major}/bin")
    yield Path(f"/usr/local/opt/postgresql@{major}/bin")
    if pg_config := shutil.which("pg_config"):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            bindir = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
            yield Path(bindir)
    for name in ("pg_ctl", "initdb"):
        if found := shutil.which(name):
            yield Path(found).resolve().parent


def find_binaries(major: int) -> Path | None:
    """The directory holding initdb and pg_ctl of this major version, if one is installed."""
    for bindir in _candidates(major):
        if (bindir / "initdb").is_file() and _major_of(bindir) == major:
            return bindir
    return None


@functools.cache
def prerequisites() -> tuple[Path | None, str | None]:
    """(the binaries' directory, None), or (None, why no cluster can be made here)."""
    try:
        pwd.getpwnam(OWNER)
    except KeyError:
        return None, f"there is no `{OWNER}` user to run a cluster as"
    if os.geteuid() != 0:
        return None, f"becoming `{OWNER}` (runuser) needs root"
    major = server_major()
    bindir = find_binaries(major)
    if bindir is None:
        return None, f"no initdb/pg_ctl of PostgreSQL {major} (the server's version) was found"
    return bindir, None


def binaries() -> Path:
    """The binaries' directory; the test skips without them (fails under
    REQUIRE_CLUSTER_TESTS=1)."""
    bindir, missing = prerequisites()
    if bindir is None:
        if required():
            pytest.fail(f"{REQUIRED}=1, but {missing}", pytrace=False)
        pytest.skip(f"no throw-away cluster: {missing} (set {REQUIRED}=1 to fail)")
    return bindir


@dataclass
class Cluster:
    data: Path
    port: int
    bindir: Path

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{OWNER}@127.0.0.1:{self.port}/postgres"

    @property
    def log(self) -> Path:
        return self.data.parent / "server.log"

    def run(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["runuser", "-u", OWNER, "--", *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )

    def pg_ctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return self.run(str(self.bindir / "pg_ctl"), *args, "-D", str(self.data), timeout=timeout)

    def start(self) -> None:
        """Returns once the server accepts connections (`pg_ctl start -w`)."""
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data.parent} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self.pg_ctl("start", "-l", str(self.log), "-o", options, "-w", "-t", "30")

    def stop(self) -> None:
        """Fast shutdown: open sessions are cut, as when a managed database restarts."""
        self.pg_ctl("stop", "-m", "fast", "-w")

    def running(self) -> bool:
        status = subprocess.run(
            ["runuser", "-u", OWNER, "--", str(self.bindir / "pg_ctl"), "status",
             "-D", str(self.data)],
            capture_output=True,
            timeout=30,
        )  # fmt: skip
        return status.returncode == 0


@contextlib.contextmanager
def cluster(bindir: Path) -> Iterator[Cluster]:
    """A started cluster in a temporary directory; stopped and deleted afterwards."""
    base = Path(tempfile.mkdtemp(prefix="reliability-pg-"))
    owner = pwd.getpwnam(OWNER)
    os.chown(base, owner.pw_uid, owner.pw_gid)
    port = free_port()
    assert port != MAIN_PORT
    server = Cluster(base / "data", port, bindir)
    try:
        server.run(
            str(bindir / "initdb"), "-D", str(server.data), "-U", OWNER, "--auth=trust",
            "-E", "UTF8", "--no-sync", timeout=120,
        )  # fmt: skip
        server.start()
        yield server
    finally:
        with contextlib.suppress(subprocess.SubprocessError):
            if server.data.exists() and server.running():
                server.pg_ctl("stop", "-m", "immediate", "-w")
        shutil.rmtree(base, ignore_errors=True)
