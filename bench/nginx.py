"""The project's nginx.conf, rewritten to run for a benchmark: a free port, temp paths, and the
given gunicorn instances in `upstream app`.

Everything else (keepalive to the upstreams, the access log, gzip, the proxy headers,
`worker_processes auto`) is the shipped file as an operator installs it, so what nginx costs
here is what it costs in production. The rewriting follows tests/deploy/services.py
(`nginx_config`, `more_upstreams`) but is not imported from there: scripts/bench runs a frozen
copy of bench/ (tests/ is not copied, and is edited independently), and a benchmark should not
depend on the test suite's helpers. Each line it changes must match exactly once, so a change
to nginx.conf that moves one of them fails here loudly instead of benchmarking another set-up.

    python -m bench.nginx --source nginx.conf --run-dir DIR --listen PORT --upstream PORT...

writes DIR/nginx.conf; start it with `nginx -p DIR/ -c DIR/nginx.conf -e DIR/error.log`.
"""

import argparse
import re
from pathlib import Path

# nginx's own temp folders (request bodies, buffered responses): in the run folder, so it
# needs neither root nor the distribution's /var/lib/nginx.
TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def substitute(text: str, pattern: str, replacement: str) -> str:
    """Replace one line of the shipped config; fail if it is not there exactly once."""
    result, count = re.subn(pattern, replacement, text, flags=re.MULTILINE)
    if count != 1:
        raise SystemExit(f"nginx.conf: {pattern!r} matched {count} times, expected once")
    return result


def config(source: str, listen: int, upstreams: list[int], run_dir: Path) -> str:
    """The shipped config with only the upstreams, the listen port and the paths changed."""
    servers = "".join(rf"\g<1>server 127.0.0.1:{port};\n" for port in upstreams)
    temp = "".join(f"    {name}_temp_path {run_dir}/{name}_temp;\n" for name in TEMP_PATHS)
    text = source
    for pattern, replacement in [
        (r"^([ \t]*)server 127\.0\.0\.1:8000;.*\n", servers),
        (r"^([ \t]*)listen 80;", rf"\g<1>listen 127.0.0.1:{listen};"),
        (r"^pid /run/nginx\.pid;", f"pid {run_dir}/nginx.pid;"),
        (r"^error_log /var/log/nginx/error\.log", f"error_log {run_dir}/error.log"),
        (r"access_log /var/log/nginx/access\.log", f"access_log {run_dir}/access.log"),
        (r"^http \{\n", f"http {{\n{temp}"),
    ]:
        text = substitute(text, pattern, replacement)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", type=Path, required=True, help="the project's nginx.conf")
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--listen", type=int, required=True)
    parser.add_argument("--upstream", type=int, action="append", required=True)
    args = parser.parse_args()
    run_dir = args.run_dir.resolve()
    text = config(args.source.read_text(), args.listen, args.upstream, run_dir)
    (run_dir / "nginx.conf").write_text(text)


if __name__ == "__main__":
    main()
