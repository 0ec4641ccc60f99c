"""What the operator docs state about the gunicorn config is what app/gunicorn_conf.py sets."""

import ast
import re

from tests.deploy.services import ROOT

# "recycled after 200,000 to 220,000 requests", or "after about 10,000 requests".
RECYCLING = re.compile(r"recycled after (?:about )?([\d,]+)(?: to ([\d,]+))? requests")


def gunicorn_setting(name: str) -> object:
    """A setting's literal value, read from the config without running it."""
    tree = ast.parse((ROOT / "app" / "gunicorn_conf.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and [ast.unparse(t) for t in node.targets] == [name]:
            return ast.literal_eval(node.value)
    raise AssertionError(f"{name} is not set in app/gunicorn_conf.py")


def recycling_claims(path: str) -> list[tuple[int, int]]:
    text = " ".join((ROOT / path).read_text().split())
    return [
        (int(low.replace(",", "")), int((high or low).replace(",", "")))
        for low, high in RECYCLING.findall(text)
    ]


def test_docs_state_the_worker_recycling_range() -> None:
    low = gunicorn_setting("max_requests")
    jitter = gunicorn_setting("max_requests_jitter")
    assert isinstance(low, int) and isinstance(jitter, int)
    # gunicorn recycles a worker after max_requests + randint(0, max_requests_jitter) requests.
    assert recycling_claims("docs/deploy.md") == [(low, low + jitter)]
    for claim in recycling_claims("README.md"):
        assert claim == (low, low + jitter), "README.md"
