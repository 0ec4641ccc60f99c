import logging
import sys


def configure_logging(level: str) -> None:
    """Plain lines on stdout; access lines are already JSON (see middleware)."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("uvicorn.access").disabled = True
