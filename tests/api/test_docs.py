"""The interactive API docs work offline: every asset the page loads is served by the app."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient

pytestmark = pytest.mark.services

DOCS = "/api/v1/docs"
JAVASCRIPT = {"text/javascript", "application/javascript"}


class _References(HTMLParser):
    """Every ``src`` and ``href`` of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.extend(value for name, value in attrs if name in ("src", "href") and value)


def test_the_docs_page_names_no_outside_host_and_every_asset_is_served(
    client: FlaskClient,
) -> None:
    page = client.get(DOCS)  # no key, like the OpenAPI document
    assert page.status_code == 200, page.data
    assert page.mimetype == "text/html"
    text = page.data.decode()
    assert "://" not in text, "the docs page refers to another host"
    parser = _References()
    parser.feed(text)
    assert {ref.rsplit("/", 1)[-1] for ref in parser.found} >= {
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "swagger-ui-standalone-preset.js",
    }
    for ref in parser.found:
        parts = urlsplit(ref)
        assert not parts.scheme and not parts.netloc, ref
        assert ref.startswith("/api/v1/docs/"), ref
        asset = client.get(ref)
        assert asset.status_code == 200, ref
        assert len(asset.data) > 1000, ref
        expected = {"text/css"} if ref.endswith(".css") else JAVASCRIPT
        assert asset.mimetype in expected, (ref, asset.mimetype)
    assert client.get("/api/v1/openapi.json").status_code == 200  # what the page loads next
    assert client.get("/api/v1/docs/static/no-such-file.js").status_code == 404
