"""Staff logins: wrong passwords are throttled, so the admin cannot be guessed into."""

from __future__ import annotations

import pytest
from axes.models import AccessAttempt
from axes.utils import reset
from django.contrib.auth.models import User
from django.urls import reverse

pytestmark = pytest.mark.django_db

PASSWORD = "the kitchen's real password 2026"


@pytest.fixture
def staff(db) -> User:
    return User.objects.create_user("chef", password=PASSWORD, is_staff=True)


def log_in(client, username: str, password: str):
    return client.post(reverse("admin:login"), {"username": username, "password": password, "next": "/admin/"})


def test_after_five_wrong_passwords_even_the_right_one_is_refused(client, staff):
    for _ in range(4):
        assert log_in(client, "chef", "guess").status_code == 200  # the form again, with its error
    assert log_in(client, "chef", "guess").status_code == 429  # the fifth locks the door
    refused = log_in(client, "chef", PASSWORD)
    assert refused.status_code == 429
    assert "_auth_user_id" not in client.session


def test_a_lock_out_is_per_user_name_and_address(client, staff):
    User.objects.create_user("barista", password=PASSWORD, is_staff=True)
    for _ in range(5):
        log_in(client, "chef", "guess")
    assert log_in(client, "barista", PASSWORD).status_code == 302  # logged in, sent on to the admin


def test_clearing_the_lock_out_lets_staff_in_again(client, staff):
    for _ in range(5):
        log_in(client, "chef", "guess")
    assert AccessAttempt.objects.filter(username="chef").exists()  # what the admin's Axes page lists
    reset(username="chef")
    assert log_in(client, "chef", PASSWORD).status_code == 302


def test_a_right_password_before_the_limit_starts_the_count_again(client, staff):
    for _ in range(4):
        log_in(client, "chef", "guess")
    assert log_in(client, "chef", PASSWORD).status_code == 302
    client.logout()
    for _ in range(4):
        log_in(client, "chef", "guess")
    assert log_in(client, "chef", PASSWORD).status_code == 302
