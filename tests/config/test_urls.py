"""The project's URLs: a JSON 404 under /api/, Django's page elsewhere, with DEBUG off as in production."""

import json

import pytest
from django.test import Client


@pytest.fixture
def production(settings):
    settings.DEBUG = False  # Django answers an unknown URL through handler404 only with DEBUG off
    return Client()


@pytest.mark.parametrize("path", ["/api/v1/nope/", "/api/v1/products/", "/api/v2/search/", "/api/"])
def test_an_unknown_api_url_is_a_json_404(production, path):
    response = production.get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "detail": f"No API endpoint at {path}. The endpoints are listed at /api/v1/docs/."
    }


def test_an_unknown_page_outside_the_api_is_django_s_html_404(production):
    response = production.get("/no-such-page/")
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")


def test_a_missing_trailing_slash_still_redirects(production):
    response = production.get("/api/v1/search", {"q": "x"})
    assert response.status_code == 301 and response["Location"] == "/api/v1/search/?q=x"


def test_a_server_error_under_the_api_is_json_that_tells_nothing_of_the_failure(rf):
    from config.urls import handler500, server_error

    assert handler500 is server_error
    response = server_error(rf.get("/api/v1/search/", {"q": "x"}))
    page = server_error(rf.get("/"))

    assert response.status_code == 500 and response["Content-Type"] == "application/json"
    assert json.loads(response.content) == {
        "detail": "The server failed to answer this request; it has been logged.",
        "code": "server_error",
    }
    assert page.status_code == 500 and b"<h1>Server Error (500)</h1>" in page.content
