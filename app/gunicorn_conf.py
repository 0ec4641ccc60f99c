"""gunicorn settings for both deploys (Procfile `web:` and scripts/serve), read from the env.

Any setting can still be overridden with GUNICORN_CMD_ARGS (e.g. "--timeout 60").
"""

import os

from gunicorn.arbiter import Arbiter

# Every address for a platform's router (Procfile); scripts/serve sets HOST=127.0.0.1, so on a
# VM only nginx on the same host can reach gunicorn.
bind = f"{os.environ.get('HOST') or '0.0.0.0'}:{os.environ.get('PORT', '8000')}"
# Async workers: one per core is enough; Heroku-style platforms set WEB_CONCURRENCY.
workers = int(os.environ.get("WEB_CONCURRENCY") or max(2, os.cpu_count() or 1))
worker_class = "app.core.worker.AppWorker"
# Measured here: without it, keep-alive clients often all land on one worker.
reuse_port = True
# X-Forwarded-Proto/For are honoured only from these addresses (nginx on the same host).
# Settings.FORWARDED_ALLOW_IPS reads the same variable: `*` needs PROXY_HOPS in production.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

# Heroku-style routers give up after 30 s and kill 30 s after SIGTERM.
timeout = 30
graceful_timeout = 25
# Longer than nginx's upstream keepalive_timeout (60 s), so nginx closes idle connections first.
keepalive = 75
# Recycle workers now and then; the jitter keeps them from restarting together.
max_requests = 200_000  # at ~2,000 req/s a worker, about every 100 s
max_requests_jitter = 20_000

# The app writes its own JSON access lines on stdout; gunicorn's own messages go to stderr.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
proc_name = "crud-backend"
# No control socket under $HOME (read-only or ephemeral file systems).
control_socket_disable = True
# Worker heartbeats on tmpfs, not on a disk that may block.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None


def when_ready(server: Arbiter) -> None:
    # With reuse_port the master binds nothing (its "Listening at" is empty): each worker does.
    server.log.info("Workers listen on %s (one SO_REUSEPORT socket each)", bind)


def on_starting(server: Arbiter) -> None:
    """Validate the settings in the master, before any worker binds the port.

    A bad configuration raises ConfigurationError (a SystemExit): gunicorn exits non-zero
    with a message naming each bad variable.
    """
    from app.core.config import get_settings

    settings = get_settings()
    if not settings.is_sqlite:
        # Each worker's one pool (app/core/database.py) holds at most DB_POOL_SIZE.
        server.log.info(
            "PostgreSQL connection budget: %d workers \N{MULTIPLICATION SIGN} DB_POOL_SIZE %d"
            " = %d connections",
            workers,
            settings.DB_POOL_SIZE,
            workers * settings.DB_POOL_SIZE,
        )
