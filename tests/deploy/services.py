"""Real processes for the deploy tests: the Procfile's commands, gunicorn, nginx.

Every process starts in its own session, so stopping it stops all it forked; every wait has
a deadline, and `running()` kills what is left even when the test fails.
"""

import contextlib
import fcntl
import ipaddress
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import uvicorn
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
SECRET_KEY = "deploy-tests-secret-key-0123456789abcdef"
SUPERUSER_EMAIL = "admin@example.com"
SUPERUSER_PASSWORD = "admin-password-123"
PASSWORD = "correct-horse-battery"


def procfile() -> dict[str, str]:
    """The Procfile's process types and commands, as a Procfile runner reads them."""
    processes = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, command = line.split(":", 1)
            processes[name.strip()] = command.strip()
    return processes


def command(process_type: str) -> list[str]:
    """The Procfile command split like a shell would, but run without one: it must need none."""
    return shlex.split(procfile()[process_type])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serving_in_thread(application: Any) -> Iterator[str]:
    """An ASGI app served by uvicorn in a thread of this process (lifespan on): its URL."""
    port = free_port()
    config = uvicorn.Config(application, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@contextlib.contextmanager
def migrated_database(prefix: str) -> Iterator[str]:
    """A fresh database on the test server (TEST_DATABASE_URL), migrated by the Procfile's
    release command; its URL. Dropped afterwards."""
    server = make_url(os.environ["TEST_DATABASE_URL"]).set(drivername="postgresql")
    admin = server.set(database="postgres").render_as_string(hide_password=False)
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    url = server.set(database=name).render_as_string(hide_password=False)
    try:
        release = subprocess.run(
            command("release"), cwd=ROOT, env=app_env(url), capture_output=True, timeout=120
        )
        assert release.returncode == 0, release.stdout + release.stderr
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def app_env(database_url: str, **overrides: str) -> dict[str, str]:
    """A production-like environment, free of the suite's own test settings."""
    gunicorn = {"GUNICORN_CMD_ARGS", "FORWARDED_ALLOW_IPS", "WEB_CONCURRENCY", "HOST", "PORT"}
    env = {key: value for key, value in os.environ.items() if key not in gunicorn}
    env.update(
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
        DATABASE_URL=database_url,
        ENVIRONMENT="production",
        SECRET_KEY=SECRET_KEY,
        BCRYPT_ROUNDS="4",
        LOG_LEVEL="INFO",
        WEB_CONCURRENCY="2",
        FIRST_SUPERUSER_EMAIL=SUPERUSER_EMAIL,
        FIRST_SUPERUSER_PASSWORD=SUPERUSER_PASSWORD,
    )
    env.update(overrides)
    return env


def wait_for(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class Service:
    """A process started in its own session, its stdout and stderr kept in files."""

    def __init__(self, argv: list[str], env: Mapping[str, str], logs: Path, name: str) -> None:
        self.name = name
        self.env = dict(env)
        self.stdout_path = logs / f"{name}.stdout"
        self.stderr_path = logs / f"{name}.stderr"
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(
                argv, cwd=ROOT, env=self.env, stdout=out, stderr=err, start_new_session=True
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def describe(self) -> str:
        tail = 4000
        return (
            f"--- {self.name} stdout:\n{self.stdout()[-tail:]}\n"
            f"--- {self.name} stderr:\n{self.stderr()[-tail:]}"
        )

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout=timeout)

    def send_signal(self, signum: int) -> None:
        if self.process.poll() is None:
            os.kill(self.pid, signum)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Ask politely, then kill the whole session; always reaps the process."""
        self.send_signal(signum)
        try:
            return self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def access_lines(self) -> list[dict[str, Any]]:
        """The app's JSON access lines on stdout (a Procfile runner's prefix is skipped)."""
        lines = []
        for line in self.stdout().splitlines():
            start = line.find("{")
            if start == -1:
                continue
            with contextlib.suppress(ValueError):
                record = json.loads(line[start:])
                if isinstance(record, dict) and "request_id" in record:
                    lines.append(record)
        return lines

    def access_line(self, request_id: str, timeout: float = 5) -> dict[str, Any]:
        """The one access line of a request (it is written right after the response)."""

        def matching() -> list[dict[str, Any]]:
            return [line for line in self.access_lines() if line["request_id"] == request_id]

        found = wait_for(matching, timeout, f"the access line of {request_id}")
        assert len(found) == 1, found
        return found[0]


@contextlib.contextmanager
def running(argv: list[str], env: Mapping[str, str], logs: Path, name: str) -> Iterator[Service]:
    service = Service(argv, env, logs, name)
    try:
        yield service
    finally:
        if service.process.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                service.stop(signal.SIGTERM, timeout=30)
        service.kill()


def wait_until_ready(service: Service, port: int, timeout: float = 60) -> None:
    """Until /health/ready answers 200 and every worker has started its app (when logged).

    Fails at once, with the output, if the process died.
    """

    def ready() -> bool:
        if service.process.poll() is not None:
            raise AssertionError(f"{service.name} exited early\n{service.describe()}")
        try:
            response = httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=2)
        except httpx.TransportError:
            return False
        return response.status_code == 200

    wait_for(ready, timeout, f"{service.name} on port {port}", interval=0.2)
    if service.env.get("LOG_LEVEL", "INFO").upper() in {"DEBUG", "INFO"}:
        workers = int(service.env.get("WEB_CONCURRENCY", "1"))

        def all_started() -> bool:
            output = service.stdout() + service.stderr()
            return output.count("Application startup complete") >= workers

        wait_for(all_started, timeout, f"{workers} workers of {service.name}", interval=0.2)


def accepted_connections(port: int) -> int:
    """Established connections to port that a server process has accepted.

    A connection still in the listen backlog has no inode yet: on shutdown it would be reset,
    so only accepted ones count as in flight.
    """
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for row in Path(table).read_text().splitlines()[1:]:
                fields = row.split()
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                if local_port == port and fields[3] == "01" and fields[9] != "0":
                    count += 1
    return count


def _socket_address(hex_address: str) -> str:
    """An address as /proc/net/tcp{,6} writes it: 32-bit words in host byte order, in hex."""
    words = [int(hex_address[i : i + 8], 16) for i in range(0, len(hex_address), 8)]
    packed = struct.pack(f"={len(words)}I", *words)
    return socket.inet_ntop(socket.AF_INET if len(packed) == 4 else socket.AF_INET6, packed)


def listening_sockets(pids: Iterable[int]) -> set[tuple[str, int]]:
    """The (address, port) of each listening TCP socket the processes hold open."""
    inodes = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:["):
                        inodes.add(target.removeprefix("socket:[").removesuffix("]"))
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for row in Path(table).read_text().splitlines()[1:]:
                fields = row.split()
                if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                    address, port = fields[1].split(":")
                    found.add((_socket_address(address), int(port, 16)))
    return found


def non_loopback_address() -> str | None:
    """An IPv4 address of this machine outside 127.0.0.0/8, if it has one.

    A connection to it stays on this machine but does not come from loopback: what another
    host's would reach. Read with the SIOCGIFADDR ioctl, so no tool (ip, ifconfig) is needed.
    """
    siocgifaddr = 0x8915
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _index, name in socket.if_nameindex():
            request = struct.pack("256s", name.encode()[:15])
            try:
                answer = fcntl.ioctl(sock.fileno(), siocgifaddr, request)
            except OSError:  # the interface has no IPv4 address
                continue
            address = socket.inet_ntoa(answer[20:24])
            if not ipaddress.ip_address(address).is_loopback:
                return address
    return None


def _state_and_parent(pid: int | str) -> tuple[str, int] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: read after its closing one.
    state, ppid = stat.rsplit(")", 1)[1].split()[:2]
    return state, int(ppid)


def parent(pid: int) -> int:
    found = _state_and_parent(pid)
    assert found is not None, f"process {pid} is gone"
    return found[1]


def alive(pid: int) -> bool:
    found = _state_and_parent(pid)
    return found is not None and found[0] != "Z"


def children(pid: int) -> set[int]:
    """Live (not zombie) child processes of pid."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (info := _state_and_parent(entry.name)) is not None:
            state, ppid = info
            if ppid == pid and state != "Z":
                found.add(int(entry.name))
    return found


def register(base_url: str, email: str, **kwargs: Any) -> httpx.Response:
    return httpx.post(
        f"{base_url}/api/v1/auth/register",
        json={"email": email, "password": PASSWORD, "full_name": "Deploy Test"},
        timeout=30,
        **kwargs,
    )


def login(base_url: str, email: str, password: str = PASSWORD, **kwargs: Any) -> httpx.Response:
    return httpx.post(
        f"{base_url}/api/v1/auth/login",
        data={"username": email, "password": password},
        timeout=30,
        **kwargs,
    )


def unique_email(prefix: str) -> str:
    return f"{prefix}-{time.monotonic_ns()}@example.com"


def substitute(text: str, pattern: str, replacement: str) -> str:
    """Replace one line of a shipped config; fail loudly if it is not there exactly once."""
    result, count = re.subn(pattern, replacement, text, flags=re.MULTILINE)
    assert count == 1, f"{pattern!r} matched {count} times"
    return result


def nginx_binary() -> str | None:
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")


requires_nginx = pytest.mark.skipif(
    nginx_binary() is None, reason="nginx is not installed (.ci/run installs it)"
)


@dataclass
class RecordingUpstream:
    """A stand-in for the app behind nginx: answers 200 to anything, keeps the headers it got."""

    port: int
    requests: list[Message] = field(default_factory=list)

    def received(self, request_id: str) -> Message:
        """The headers of the one request nginx sent with this X-Request-ID."""
        found = [headers for headers in self.requests if headers["X-Request-ID"] == request_id]
        assert len(found) == 1, f"{len(found)} requests with X-Request-ID {request_id}"
        return found[0]

    def got(self, request_id: str) -> bool:
        return any(headers["X-Request-ID"] == request_id for headers in self.requests)


@contextlib.contextmanager
def recording_upstream() -> Iterator[RecordingUpstream]:
    """A RecordingUpstream on a free 127.0.0.1 port, in a thread of the test process."""
    requests: list[Message] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # nginx keeps its upstream connections alive

        def answer(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            requests.append(self.headers)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        do_GET = do_POST = do_PATCH = do_OPTIONS = answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield RecordingUpstream(server.server_address[1], requests)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def nginx_config(upstream_port: int, listen_port: int, run_dir: Path) -> str:
    """The shipped nginx.conf with only the upstream, the listen port, pid and log paths changed."""
    text = (ROOT / "nginx.conf").read_text()
    for pattern, replacement in [
        (r"server 127\.0\.0\.1:8000;", f"server 127.0.0.1:{upstream_port};"),
        (r"^(\s*)listen 80;", rf"\g<1>listen 127.0.0.1:{listen_port};"),
        (r"^pid /run/nginx\.pid;", f"pid {run_dir}/nginx.pid;"),
        (r"^error_log /var/log/nginx/error\.log", f"error_log {run_dir}/error.log"),
        (r"access_log /var/log/nginx/access\.log", f"access_log {run_dir}/access.log"),
    ]:
        text = substitute(text, pattern, replacement)
    return text


def more_upstreams(*ports: int) -> Callable[[str], str]:
    """An `edit` for running_nginx: these app servers join the first in `upstream app`."""

    def edit(text: str) -> str:
        extra = "".join(rf"\n\g<1>server 127.0.0.1:{port};" for port in ports)
        return substitute(text, r"^(\s*)(server 127\.0\.0\.1:\d+;)", rf"\g<1>\g<2>{extra}")

    return edit


def unprivileged(argv: list[str], run_dir: Path) -> list[str]:
    """As root, run as www-data (nginx's own temp folders belong to it); else as we are."""
    if os.geteuid() != 0:
        return argv
    user = pwd.getpwnam("www-data")
    for path in [run_dir, *run_dir.iterdir()]:
        os.chown(path, user.pw_uid, user.pw_gid)
    return ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups", *argv]


def enable_tls(text: str, run_dir: Path) -> str:
    """The operator's TLS step (listen with ssl, the ssl_* lines uncommented), self-signed."""
    certificate, key = run_dir / "cert.pem", run_dir / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"),
            *("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
            *("-keyout", str(key), "-out", str(certificate)),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    for pattern, replacement in [
        (r"^(\s*listen 127\.0\.0\.1:\d+);", r"\g<1> ssl;"),
        (r"^(\s*)# (ssl_certificate)\s.*$", rf"\g<1>\g<2> {certificate};"),
        (r"^(\s*)# (ssl_certificate_key)\s.*$", rf"\g<1>\g<2> {key};"),
        (r"^(\s*)# (ssl_protocols\s.*)$", r"\g<1>\g<2>"),
        (r"^(\s*)# (ssl_session_cache\s.*)$", r"\g<1>\g<2>"),
    ]:
        text = substitute(text, pattern, replacement)
    return text


@contextlib.contextmanager
def running_nginx(
    upstream_port: int, *, tls: bool = False, edit: Callable[[str], str] | None = None
) -> Iterator[tuple[Service, int]]:
    """nginx in the foreground on a free high port, with its pid and logs in a temp folder.

    tls: as an operator enables it, with a self-signed certificate; edit: a test's own change.
    """
    binary = nginx_binary()
    assert binary is not None
    port = free_port()
    run_dir = Path(tempfile.mkdtemp(prefix="deploy-nginx-"))
    text = nginx_config(upstream_port, port, run_dir)
    if tls:
        text = enable_tls(text, run_dir)
    if edit is not None:
        text = edit(text)
    config = run_dir / "nginx.conf"
    config.write_text(text)
    argv = [binary, "-c", str(config), "-e", str(run_dir / "error.log")]
    # As root, this also creates nginx's temp folders, owned by its `user`, for the run below.
    checked = subprocess.run([*argv, "-t"], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr
    argv += ["-g", "daemon off;"]
    try:
        with running(unprivileged(argv, run_dir), os.environ, run_dir, "nginx") as nginx:

            def listening() -> bool:
                if nginx.process.poll() is not None:
                    error_log = (run_dir / "error.log").read_text(errors="replace")
                    raise AssertionError(f"nginx exited\n{nginx.describe()}\n{error_log}")
                return port_open(port)

            wait_for(listening, 10, f"nginx on port {port}")
            yield nginx, port
            nginx.send_signal(signal.SIGQUIT)
            nginx.wait(timeout=10)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
