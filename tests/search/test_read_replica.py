"""Search reads from a real streaming replica of the embedded server, and from the primary when the
replica is down or too far behind (search/read_replica.py, config/embedded_replica.py).

Which server answered is proven, not assumed: with the replica's replay paused, a product committed on
the primary is missing from what the replica answers and present in what the primary answers.
"""

from __future__ import annotations

import contextlib
import copy
import time

import pytest
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from rest_framework.test import APIClient

from catalog.models import Product
from search.ranking import SearchFilters, _set_scan_options
from search.read_replica import (
    SearchReadRouter,
    replica_state,
    replica_state_forget,
    search_read,
    search_read_alias,
)
from search.selectors import search_by_text
from tests.factories import ProductFactory
from tests.search.conftest import add_product, basis

REPLICA = "replica"
# The same replica through psycopg prepared statements: server-side binding, prepared from the first run.
REPLICA_PREPARED = "replica_prepared"
PREPARED_OPTIONS = {"server_side_binding": True, "prepare_threshold": 0}
pytestmark = pytest.mark.django_db(transaction=True, databases=[DEFAULT_DB_ALIAS, REPLICA, REPLICA_PREPARED])


def _add_alias(alias: str, *, host: str, port: int, options: dict | None = None) -> None:
    """A database alias on the replica for the test database (Django's `connections` reads DATABASES
    once; the test database exists only once the session made it)."""
    primary = connections[DEFAULT_DB_ALIAS].settings_dict
    connections.settings[alias] = {
        **copy.deepcopy(primary),
        "ENGINE": "django.db.backends.postgresql",
        "HOST": host,
        "PORT": str(port),
        "OPTIONS": {**primary.get("OPTIONS", {}), **(options or {})},
        # The test runner creates, flushes and drops nothing there: it is the primary's copy.
        "TEST": {**primary.get("TEST", {}), "MIRROR": DEFAULT_DB_ALIAS},
    }


def _drop_alias(alias: str) -> None:
    if alias in connections.settings:
        connections[alias].close()
        with contextlib.suppress(AttributeError):  # never opened in this thread
            del connections[alias]
        del connections.settings[alias]


@pytest.fixture(scope="module", autouse=True)
def replica_database(django_db_setup, embedded_replica):
    """The alias `replica`: the test database on the replica (it came there through the WAL)."""
    embedded_replica.wait_for_catch_up()
    host, port = str(embedded_replica.socket_dir()), embedded_replica.PORT
    _add_alias(REPLICA, host=host, port=port)
    _add_alias(REPLICA_PREPARED, host=host, port=port, options=PREPARED_OPTIONS)
    yield embedded_replica
    _drop_alias(REPLICA)
    _drop_alias(REPLICA_PREPARED)


@pytest.fixture(autouse=True)
def replica_reads(settings, replica_database):
    """Search reads as config/settings.py sets them up for DATABASE_REPLICA_URL; each measurement fresh."""
    settings.DATABASE_ROUTERS = ["search.read_replica.SearchReadRouter"]
    settings.PRODUCT_SEARCH_REPLICA_ALIAS = REPLICA
    settings.PRODUCT_SEARCH_REPLICA_CHECK_SECONDS = 0
    settings.PRODUCT_SEARCH_REPLICA_RETRY_SECONDS = 0
    settings.PRODUCT_SEARCH_REPLICA_MAX_LAG_SECONDS = 3600
    replica_state_forget()
    yield
    replica_state_forget()
    connections[REPLICA].close()  # it may have met a replica stopped and started again
    if not replica_database.is_running():
        replica_database.start()
    _replay(resume=True)
    replica_database.wait_for_catch_up()


def _replay(*, resume: bool) -> None:
    """Pause or resume WAL replay on the replica (it keeps receiving WAL meanwhile)."""
    with connections[REPLICA].cursor() as cursor:
        if resume:
            cursor.execute("SELECT pg_wal_replay_resume()")
            return
        cursor.execute("SELECT pg_wal_replay_pause()")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            cursor.execute("SELECT pg_get_wal_replay_pause_state()")
            if cursor.fetchone()[0] == "paused":
                return
            time.sleep(0.05)
    raise AssertionError("the replica's replay did not pause")


def _in_recovery(alias: str) -> bool:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT pg_is_in_recovery()")
        return cursor.fetchone()[0]


def _search(**options):
    return search_read(
        search_by_text, query="navy shirt", filters=SearchFilters(), limit=10, mode="vector", **options
    )


def _skus(page) -> list[str]:
    return [hit.product["sku"] for hit in page.hits]


def test_search_reads_the_replica_and_finds_a_new_product_once_it_caught_up(
    small_catalog, active_version, replica_database
):
    # Given a replica that has replayed the catalogue, then paused its replay
    replica_database.wait_for_catch_up()
    _replay(resume=False)

    # When a product is committed on the primary
    add_product(active_version, sku="NEW", image=basis(0), text=basis(0))

    # Then search answers from the replica, a standby, which has not replayed it yet...
    page = _search()
    assert page.read_from == REPLICA and _in_recovery(page.read_from)
    assert "NEW" not in _skus(page) and _skus(page)[0] == "N1"
    # ...while the primary has it: what the replica answered was not the primary's answer
    assert "NEW" in _skus(
        search_by_text(query="navy shirt", filters=SearchFilters(), limit=10, mode="vector")
    )
    assert not _in_recovery(DEFAULT_DB_ALIAS)

    # And once the replica caught up, search finds it there
    _replay(resume=True)
    replica_database.wait_for_catch_up()
    page = _search()
    assert page.read_from == REPLICA
    assert _skus(page)[:2] == ["N1", "NEW"]


def test_the_api_reads_the_replica(small_catalog, active_version, replica_database):
    replica_database.wait_for_catch_up()
    _replay(resume=False)
    add_product(active_version, sku="NEW", image=basis(0), text=basis(0))

    search = APIClient().get("/api/v1/search/", {"q": "navy shirt", "mode": "vector"})
    detail = APIClient().get("/api/v1/products/NEW/")

    assert search.status_code == 200, search.json()
    assert "NEW" not in [result["sku"] for result in search.json()["results"]]
    assert detail.status_code == 404  # not on the replica yet


def test_search_reads_the_primary_when_the_replica_is_too_far_behind(
    small_catalog, active_version, replica_database, settings
):
    # Given a replica whose replay stopped, and a product committed on the primary since
    settings.PRODUCT_SEARCH_REPLICA_MAX_LAG_SECONDS = 0.5
    replica_database.wait_for_catch_up()
    _replay(resume=False)
    add_product(active_version, sku="NEW", image=basis(0), text=basis(0))
    time.sleep(1.0)  # the last transaction the replica replayed is now over 0.5 s old

    # When a shopper searches, then the primary answers, with the new product
    page = _search()
    assert page.read_from == DEFAULT_DB_ALIAS
    assert _skus(page)[:2] == ["N1", "NEW"]
    state = replica_state(REPLICA)
    assert not state.usable and state.lag_seconds is not None and state.lag_seconds > 0.5
    assert "behind the primary" in state.reason

    # And once it caught up, search reads the replica again
    _replay(resume=True)
    replica_database.wait_for_catch_up()
    page = _search()
    assert page.read_from == REPLICA and _skus(page)[:2] == ["N1", "NEW"]


def test_a_replica_within_the_lag_limit_is_still_read(
    small_catalog, active_version, replica_database, settings
):
    settings.PRODUCT_SEARCH_REPLICA_MAX_LAG_SECONDS = 30
    replica_database.wait_for_catch_up()
    _replay(resume=False)
    add_product(active_version, sku="NEW", image=basis(0), text=basis(0))

    page = _search()

    state = replica_state(REPLICA)
    assert state.usable and 0 < state.lag_seconds < 30  # behind, but by less than allowed
    assert page.read_from == REPLICA and "NEW" not in _skus(page)


def test_search_reads_the_primary_when_the_replica_is_down(
    small_catalog, active_version, replica_database, settings
):
    # Given a replica search has just read from, its state remembered for an hour
    replica_database.wait_for_catch_up()
    settings.PRODUCT_SEARCH_REPLICA_CHECK_SECONDS = 3600
    assert _search().read_from == REPLICA
    add_product(active_version, sku="NEW", image=basis(0), text=basis(0))

    # When the replica goes down between two checks, then the search that meets it dead is answered by
    # the primary, whole and right, not with an error
    replica_database.stop()
    page = _search()
    assert page.read_from == DEFAULT_DB_ALIAS
    assert _skus(page)[:2] == ["N1", "NEW"]
    assert replica_state(REPLICA).reason.startswith("unreachable")

    # And while it stays down, searches go straight to the primary, through the API too
    settings.PRODUCT_SEARCH_REPLICA_CHECK_SECONDS = 0
    page = _search()
    assert page.read_from == DEFAULT_DB_ALIAS and _skus(page)[:2] == ["N1", "NEW"]
    response = APIClient().get("/api/v1/search/", {"q": "navy shirt", "mode": "vector"})
    assert response.status_code == 200
    assert [result["sku"] for result in response.json()["results"]][:2] == ["N1", "NEW"]
    assert APIClient().get("/api/v1/products/NEW/").status_code == 200

    # And once it is back and caught up, search reads it again
    replica_database.start()
    replica_database.wait_for_catch_up()
    assert _search().read_from == REPLICA


def test_writes_go_to_the_primary_even_inside_a_search_read(db, replica_database):
    # Given a product, caught up on the replica, and read from there
    ProductFactory(sku="P1", title="Navy Shirt")
    replica_database.wait_for_catch_up()
    read = Product.objects.using(REPLICA).get(sku="P1")
    assert read._state.db == REPLICA

    # When it is saved (outside and inside a search read), and another is created inside one
    read.title = "Navy Check Shirt"
    read.save()  # a standby would refuse the UPDATE: the router sends it to the primary

    def write_while_reading() -> str:
        created = Product.objects.create(sku="P2", title="Red Shirt")
        return created._state.db

    written_to = search_read(write_while_reading)

    # Then both are on the primary
    assert written_to == DEFAULT_DB_ALIAS
    titles = dict(Product.objects.using(DEFAULT_DB_ALIAS).values_list("sku", "title"))
    assert titles == {"P1": "Navy Check Shirt", "P2": "Red Shirt"}
    router = SearchReadRouter()
    assert router.db_for_read(Product) is None  # outside a search read: Django's default
    assert router.allow_migrate(REPLICA, "product_search_catalog") is False


def test_search_read_chooses_once_for_a_whole_call_and_only_inside_it(db):
    seen = []

    def selector() -> None:
        seen.append(search_read_alias())
        search_read(lambda: seen.append(search_read_alias()))  # nested: the outer choice holds

    search_read(selector)

    assert seen == [REPLICA, REPLICA]
    assert search_read_alias() == DEFAULT_DB_ALIAS


def test_without_a_replica_alias_search_reads_the_primary(small_catalog, settings):
    settings.PRODUCT_SEARCH_REPLICA_ALIAS = "no_such_database"
    page = _search()
    assert page.read_from == DEFAULT_DB_ALIAS and _skus(page)[0] == "N1"


@pytest.mark.parametrize("alias", [REPLICA, REPLICA_PREPARED])
def test_hnsw_scan_options_hold_per_transaction_on_the_replica(db, alias, settings):
    # psycopg prepares a statement run often enough (at once with prepare_threshold 0); the options are
    # set with set_config(..., is_local) inside each search's transaction, so a prepared statement
    # still sets each search's own value, and none outlives its transaction.
    connection = connections[alias]
    with connection.cursor() as cursor:
        cursor.execute("SELECT '[1]'::vector")  # loads pgvector, which defines its options, in this session
        cursor.execute("SELECT current_setting('hnsw.ef_search')")
        before = cursor.fetchone()[0]
    settings.PRODUCT_SEARCH_HNSW_EF_SEARCH = 100  # a floor: a longer candidate list when k is smaller
    for k in [40, 120, 77, 500, 41, 300, 60, 999]:
        with transaction.atomic(using=alias), connection.cursor() as cursor:
            _set_scan_options(cursor, k=k)
            cursor.execute(
                "SELECT pg_is_in_recovery(), current_setting('hnsw.ef_search'),"
                " current_setting('hnsw.iterative_scan')"
            )
            assert cursor.fetchone() == (True, str(max(k, 100)), "relaxed_order")
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('hnsw.ef_search')")
            assert cursor.fetchone()[0] == before == "40"  # pgvector's default


@pytest.mark.parametrize(("per_million", "expected"), [(0, "160"), (100_000_000, "300"), (10**12, "1000")])
def test_the_candidate_list_grows_with_the_catalogue(db, settings, per_million, expected):
    settings.PRODUCT_SEARCH_HNSW_EF_SEARCH = 160
    settings.PRODUCT_SEARCH_HNSW_EF_SEARCH_PER_MILLION = per_million
    for number in range(3):
        Product.objects.create(sku=f"EF{number}", title="Shirt")
    with transaction.atomic(), connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT '[1]'::vector")
        cursor.execute("ANALYZE catalog_product")  # PostgreSQL's estimate: 3 products
        _set_scan_options(cursor, k=24)
        cursor.execute("SELECT current_setting('hnsw.ef_search')")

        # 3 products x 10^8 per million is 300; the most pgvector takes is 1000.
        assert cursor.fetchone()[0] == expected
