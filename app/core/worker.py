"""The gunicorn worker: uvicorn's, minus what the app already does itself."""

from typing import Any, ClassVar

from uvicorn_worker import UvicornWorker


class AppWorker(UvicornWorker):  # type: ignore[misc]  # uvicorn-worker ships no type hints
    """uvicorn's worker without a `Server` header or uvicorn's access log.

    The app's middleware writes one JSON line per request instead. Proxy headers are trusted
    only from gunicorn's `forwarded_allow_ips`, which the base class passes on to uvicorn.
    """

    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {
        **UvicornWorker.CONFIG_KWARGS,
        "server_header": False,
        "access_log": False,
    }
