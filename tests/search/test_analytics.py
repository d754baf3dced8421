"""Search analytics: every search recorded through the Redis buffer, click and add-to-cart events
validated against their search, the flush, pruning, the admin's report. Real Redis and PostgreSQL."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from search import analytics_buffer
from search.analytics import search_analytics_flush, search_analytics_prune
from search.models import PopularQuery, SearchEvent, SearchLog
from search.tasks import analytics_flush

pytestmark = pytest.mark.django_db

SEARCH_URL = "/api/v1/search/"
EVENTS_URL = "/api/v1/events/"


@pytest.fixture(autouse=True)
def empty_buffer(redis_url):
    analytics_buffer.buffer_clear()
    yield
    analytics_buffer.buffer_clear()


def search(params, **extra):
    return APIClient().get(SEARCH_URL, {"mode": "vector", **params}, **extra)


def send_event(body, **extra):
    return APIClient().post(EVENTS_URL, body, format="json", **extra)


def test_a_search_is_recorded_with_its_id_query_filters_mode_results_latency_and_model(small_catalog):
    response = search(
        {"q": "  Navy  Shirt ", "colour": ["Navy Blue", "Blue"], "limit": 2}, REMOTE_ADDR="203.0.113.9"
    )

    assert response.status_code == 200
    body = response.json()
    search_id = body["search_id"]
    buffered = analytics_buffer.buffer_client().lrange(
        analytics_buffer._key(analytics_buffer.SEARCHES), 0, -1
    )
    assert len(buffered) == 1 and "203.0.113.9" not in buffered[0].decode()  # no client address kept

    report = search_analytics_flush()

    assert report.searches == 1 and analytics_buffer.buffer_length(analytics_buffer.SEARCHES) == 0
    log = SearchLog.objects.get(pk=search_id)
    assert (log.kind, log.query, log.normalized_query, log.mode) == (
        "text",
        "Navy  Shirt",
        "navy shirt",
        "vector",
    )
    assert log.filters == {"colour": ["Navy Blue", "Blue"]}
    assert (log.offset, log.result_count, log.result_skus) == (0, 2, ["N1", "N2"])
    assert log.latency_ms == body["took_ms"] and log.model_version_id == body["model_version"]["id"]


def test_photo_and_similar_searches_are_recorded_too(small_catalog):
    similar = APIClient().get("/api/v1/products/N1/similar/").json()
    search_analytics_flush()
    log = SearchLog.objects.get(pk=similar["search_id"])
    assert (log.kind, log.query, log.result_count) == ("similar", "N1", 4)


def test_click_and_add_to_cart_are_recorded_with_the_products_position(small_catalog):
    first_page = search({"q": "navy shirt", "limit": 2}).json()
    second_page = search({"q": "navy shirt", "limit": 2, "offset": 2}).json()

    click = send_event({"search_id": second_page["search_id"], "sku": "R4", "type": "click"})
    cart = send_event({"search_id": first_page["search_id"], "sku": "N2", "type": "add_to_cart"})

    assert (click.status_code, click.json()) == (202, {"position": 4})
    assert (cart.status_code, cart.json()) == (202, {"position": 2})
    assert SearchEvent.objects.count() == 0  # buffered, not written on the request's path
    assert search_analytics_flush().events == 2
    events = {(e.search_id.hex, e.kind, e.sku, e.position) for e in SearchEvent.objects.all()}
    assert events == {
        (uuid.UUID(second_page["search_id"]).hex, "click", "R4", 4),
        (uuid.UUID(first_page["search_id"]).hex, "add_to_cart", "N2", 2),
    }


def test_an_event_of_a_search_already_flushed_is_validated_against_the_log(small_catalog):
    search_id = search({"q": "navy shirt"}).json()["search_id"]
    search_analytics_flush()
    analytics_buffer.buffer_client().delete(analytics_buffer._key(f"search:{search_id}"))

    assert send_event({"search_id": search_id, "sku": "N3", "type": "click"}).status_code == 202
    assert send_event({"search_id": search_id, "sku": "NOPE", "type": "click"}).status_code == 400


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"search_id": str(uuid.uuid4()), "sku": "N1", "type": "click"}, "search_id"),
        ({"search_id": "not-a-uuid", "sku": "N1", "type": "click"}, "search_id"),
        ({"sku": "N1", "type": "click"}, "search_id"),
        ({"search_id": "{id}", "sku": "NOT-SHOWN", "type": "click"}, "sku"),
        ({"search_id": "{id}", "sku": "N1", "type": "purchase"}, "type"),
        ({"search_id": "{id}", "sku": "N1", "type": "click", "ip": "1.2.3.4"}, "ip"),
    ],
)
def test_a_bad_event_is_a_400_naming_the_field(small_catalog, body, field):
    search_id = search({"q": "navy shirt", "limit": 3}).json()["search_id"]
    body = {name: value.replace("{id}", search_id) for name, value in body.items()}

    response = send_event(body)

    assert response.status_code == 400, response.json()
    assert field in response.json()


def test_an_event_body_that_is_not_a_json_object_is_a_400(small_catalog):
    assert APIClient().post(EVENTS_URL, "[1, 2]", content_type="application/json").status_code == 400
    assert APIClient().post(EVENTS_URL, "{not json", content_type="application/json").status_code == 400
    assert APIClient().post(EVENTS_URL, "sku=N1", content_type="text/plain").status_code == 415


def test_events_are_throttled_like_every_api_call(small_catalog, settings):
    search_id = search({"q": "navy shirt"}).json()["search_id"]
    settings.PRODUCT_SEARCH_THROTTLE_ANON_RATE = "2/min"
    statuses = [
        send_event(
            {"search_id": search_id, "sku": "N1", "type": "click"}, REMOTE_ADDR="198.51.100.7"
        ).status_code
        for _ in range(3)
    ]
    assert statuses == [202, 202, 429]


def test_search_answers_when_the_analytics_redis_is_down(small_catalog, caplog):
    with override_settings(PRODUCT_SEARCH_ANALYTICS_REDIS_URL="redis://127.0.0.1:1/0"):  # nobody listens
        response = search({"q": "navy shirt"})

    assert response.status_code == 200 and len(response.json()["results"]) == 5
    assert "this search is not recorded" in caplog.text
    assert analytics_buffer.buffer_length(analytics_buffer.SEARCHES) == 0
    # Recorded after the response was sent, so it has an id; an event naming it is refused as unknown.
    event = send_event({"search_id": response.json()["search_id"], "sku": "N1", "type": "click"})
    assert event.status_code == 400 and "search_id" in event.json()


def test_the_search_is_recorded_only_once_its_response_is_closed(small_catalog):
    from search.api import SearchPageResponse

    recorded = []
    response = SearchPageResponse({"search_id": "x"}, after_close=lambda: recorded.append("sent"))
    assert recorded == []  # not while the response is built or sent
    response.close()
    response.close()
    assert recorded == ["sent"]


def test_recording_switched_off_keeps_nothing(small_catalog, settings):
    settings.PRODUCT_SEARCH_ANALYTICS_ENABLED = False
    assert search({"q": "navy shirt"}).json()["search_id"] is None
    assert analytics_buffer.buffer_length(analytics_buffer.SEARCHES) == 0


def test_popular_queries_count_first_pages_with_results_once_each(small_catalog, settings):
    settings.PRODUCT_SEARCH_RELAX_BELOW = 0  # a filter that leaves nothing is not relaxed here
    for params in ({"q": "Navy shirt"}, {"q": "navy  shirt"}, {"q": "navy shirt", "offset": 2}):
        search(params)
    search({"q": "navy shirt", "colour": "Green"})  # no results: not a query to suggest
    record = json.loads(
        analytics_buffer.buffer_client().lindex(analytics_buffer._key(analytics_buffer.SEARCHES), 0)
    )
    # A flush that died after writing and before dropping its batch leaves it to be read again.
    analytics_buffer.buffer_client().rpush(
        analytics_buffer._key(analytics_buffer.SEARCHES), json.dumps(record)
    )

    search_analytics_flush()

    assert SearchLog.objects.count() == 4
    assert list(PopularQuery.objects.values_list("normalized_query", "searches")) == [("navy shirt", 2)]
    assert SearchLog.objects.filter(result_count=0).count() == 1


def test_the_flush_task_writes_the_buffer(small_catalog):
    search_id = search({"q": "navy shirt"}).json()["search_id"]
    result = analytics_flush.apply().get()
    assert result["searches"] == 1 and SearchLog.objects.filter(pk=search_id).exists()


def test_pruning_deletes_searches_and_events_past_the_retention(small_catalog, settings):
    settings.PRODUCT_SEARCH_ANALYTICS_RETENTION_DAYS = 30
    old_id = search({"q": "old query"}).json()["search_id"]
    new_id = search({"q": "new query"}).json()["search_id"]
    send_event({"search_id": old_id, "sku": "N1", "type": "click"})
    search_analytics_flush()
    long_ago = timezone.now() - timedelta(days=31)
    SearchLog.objects.filter(pk=old_id).update(created_at=long_ago)
    PopularQuery.objects.filter(normalized_query="old query").update(last_searched_at=long_ago)

    report = search_analytics_prune()

    assert (report.searches, report.events, report.popular_queries) == (1, 1, 1)
    assert list(SearchLog.objects.values_list("pk", flat=True)) == [uuid.UUID(new_id)]
    assert not SearchEvent.objects.exists()


def test_the_admin_report_flushes_first_and_shows_queries_zero_results_click_through_and_latency(
    small_catalog, admin_client
):
    for _ in range(3):
        search_id = search({"q": "navy shirt"}).json()["search_id"]
    send_event({"search_id": search_id, "sku": "N1", "type": "click"})
    search({"q": "green socks", "colour": "Green"})  # nothing is green

    page = admin_client.get(reverse("admin:product_search_searchlog_report"), {"days": 30})

    assert page.status_code == 200
    html = page.content.decode()
    top = html[html.index('id="top-queries"') : html.index('id="zero-result-queries"')]
    assert "<td>navy shirt</td><td>3</td><td>3</td><td>0</td><td>1</td><td>0</td><td>33%</td>" in top
    zero = html[html.index('id="zero-result-queries"') : html.index('id="least-clicked"')]
    assert "green socks" in zero and "navy shirt" not in zero
    latency = html[html.index('id="latency-by-day"') :]
    assert "<td>4</td>" in latency  # today's four requests
    assert "4 searches (4 pages of results), 1 clicks" in html


def test_the_command_flushes_and_prunes(small_catalog, capsys):
    from django.core.management import call_command

    search({"q": "navy shirt"})
    call_command("search_analytics", "--prune")
    assert "Wrote 1 searches and 0 events" in capsys.readouterr().out
    assert SearchLog.objects.count() == 1


def test_the_report_needs_permission_to_view_the_search_log(db, client, django_user_model):
    staff = django_user_model.objects.create_user(username="clerk", password="x" * 12, is_staff=True)
    client.force_login(staff)
    assert client.get(reverse("admin:product_search_searchlog_report")).status_code == 403


def _queued_flushes(broker) -> int:
    messages = [json.loads(raw) for raw in broker.lrange("embed", 0, -1)]
    return sum(message["headers"]["task"] == "search.tasks.analytics_flush" for message in messages)


def test_searches_queue_one_flush_per_interval_for_a_worker_that_knows_the_task(small_catalog, settings):
    import redis

    from workers.celery_app import app

    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    before = _queued_flushes(broker)

    for _ in range(3):
        search({"q": "navy shirt"})

    assert _queued_flushes(broker) == before + 1  # the first search of the interval queued it
    app.loader.import_default_modules()
    assert "search.tasks.analytics_flush" in app.tasks
