"""`GET /api/docs`: a page with no inline script, loading Swagger UI and its start-up script
from our own origin, pointing at the OpenAPI document, and saying so without JavaScript."""

from __future__ import annotations

import pytest
from bs4 import BeautifulSoup
from flask.testing import FlaskClient


@pytest.mark.parametrize("headers", [{}, {"HX-Request": "true"}])
def test_the_docs_page_loads_only_our_own_scripts(client: FlaskClient, headers: dict) -> None:
    response = client.get("/api/docs", headers=headers)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert "script-src 'self';" in response.headers["Content-Security-Policy"]
    soup = BeautifulSoup(response.get_data(as_text=True), "html.parser")
    scripts = soup.find_all("script")
    assert [script["src"] for script in scripts] == [
        "/static/vendor/swagger-ui/swagger-ui-bundle.js",
        "/static/js/api-docs.js",
    ]
    assert all(not script.string for script in scripts)  # nothing inline
    assert not soup.find_all(style=True) and not soup.find_all("style")
    reference = soup.find(id="api-reference")
    assert reference["data-openapi-url"] == "/api/v1/openapi.json"
    fallback = reference.find("noscript")
    assert fallback.find("a")["href"] == "/api/v1/openapi.json"


def test_the_docs_page_needs_no_key_or_sign_in(client: FlaskClient) -> None:
    response = client.get("/api/docs", headers={"Authorization": "Bearer nonsense"})
    assert response.status_code == 200
    assert client.post("/api/docs").status_code == 405
