"""The admin login locks a client out after repeated wrong passwords (django-axes)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

pytestmark = pytest.mark.django_db

PASSWORD = "the-right-password-42"


@pytest.fixture
def staff_user():
    return get_user_model().objects.create_superuser("shopkeeper", "shop@example.com", PASSWORD)


def _login(client: Client, password: str, address: str = "192.0.2.10") -> int:
    response = client.post(
        "/admin/login/?next=/admin/",
        {"username": "shopkeeper", "password": password},
        REMOTE_ADDR=address,
    )
    return response.status_code


def test_repeated_wrong_passwords_lock_the_client_out_even_with_the_right_one(staff_user, settings):
    client = Client()
    failures = [_login(client, f"wrong-{n}") for n in range(settings.AXES_FAILURE_LIMIT)]

    assert set(failures[:-1]) == {200}  # the form again, with its error
    assert _login(client, PASSWORD) == 429
    assert "_auth_user_id" not in client.session


def test_the_lockout_is_per_address_so_the_shopkeeper_elsewhere_still_logs_in(staff_user, settings):
    attacker = Client()
    for n in range(settings.AXES_FAILURE_LIMIT):
        _login(attacker, f"wrong-{n}", address="198.51.100.66")

    assert _login(Client(), PASSWORD, address="192.0.2.10") == 302


def test_a_right_password_before_the_limit_logs_in(staff_user):
    client = Client()
    _login(client, "wrong")

    assert _login(client, PASSWORD) == 302
