"""A throw-away PostgreSQL cluster on a free port, for tests that stop and start the database.

It runs as the `postgres` user from a temporary data directory, listens on 127.0.0.1 only,
and is never the machine's main server: `cluster()` removes it even when the test fails.
"""

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.deploy.services import free_port

BIN = Path("/usr/lib/postgresql/15/bin")
OWNER = "postgres"
MAIN_PORT = 5432


def available() -> bool:
    """initdb and pg_ctl are installed, the `postgres` user exists and we may become it."""
    try:
        pwd.getpwnam(OWNER)
    except KeyError:
        return False
    return (BIN / "initdb").exists() and (BIN / "pg_ctl").exists() and os.geteuid() == 0


@dataclass
class Cluster:
    data: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{OWNER}@127.0.0.1:{self.port}/postgres"

    @property
    def log(self) -> Path:
        return self.data.parent / "server.log"

    def _run(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["runuser", "-u", OWNER, "--", *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data.parent} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            str(BIN / "pg_ctl"), "start", "-D", str(self.data), "-l", str(self.log),
            "-o", options, "-w", "-t", "30",
        )  # fmt: skip

    def stop(self) -> None:
        """Fast shutdown: open sessions are cut, as when a managed database restarts."""
        self._run(str(BIN / "pg_ctl"), "stop", "-D", str(self.data), "-m", "fast", "-w")

    def running(self) -> bool:
        status = subprocess.run(
            ["runuser", "-u", OWNER, "--", str(BIN / "pg_ctl"), "status", "-D", str(self.data)],
            capture_output=True,
            timeout=30,
        )
        return status.returncode == 0


@contextlib.contextmanager
def cluster() -> Iterator[Cluster]:
    """A started cluster in a temporary directory; stopped and deleted afterwards."""
    base = Path(tempfile.mkdtemp(prefix="reliability-pg-"))
    owner = pwd.getpwnam(OWNER)
    os.chown(base, owner.pw_uid, owner.pw_gid)
    port = free_port()
    assert port != MAIN_PORT
    server = Cluster(base / "data", port)
    try:
        server._run(
            str(BIN / "initdb"), "-D", str(server.data), "-U", OWNER, "--auth=trust",
            "-E", "UTF8", "--no-sync", timeout=120,
        )  # fmt: skip
        server.start()
        yield server
    finally:
        with contextlib.suppress(subprocess.SubprocessError):
            if server.data.exists() and server.running():
                server._run(
                    str(BIN / "pg_ctl"), "stop", "-D", str(server.data), "-m", "immediate", "-w"
                )
        shutil.rmtree(base, ignore_errors=True)
