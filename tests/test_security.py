"""Who may see and do what: origins, sessions, other customers' orders, the admin, deploy settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.urls import reverse

from notifications.vapid import new_key_pair
from orders import services
from orders.customers import SESSION_KEY
from tests.conftest import customer_communicator, customer_session, pickup_in

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.django_db(transaction=True)
async def test_websocket_from_another_origin_is_refused():
    session_key, _ = await customer_session()
    communicator = customer_communicator(session_key, origin="https://evil.example")
    connected, _ = await communicator.connect()
    assert not connected
    await communicator.disconnect()


@pytest.mark.django_db
def test_order_page_shows_the_menu_and_starting_a_session_gives_a_customer(client, menu):
    response = client.get("/")
    assert response.status_code == 200
    assert "Pickled-cabbage chicken congee" in response.content.decode()
    assert client.post(reverse("orders:start_session")).status_code == 204
    assert client.session[SESSION_KEY]


@pytest.mark.django_db(transaction=True)
def test_customer_sees_only_their_own_orders(client, menu):
    client.post(reverse("orders:start_session"))
    mine = services.place_order(customer_id=client.session[SESSION_KEY], lines=[(menu["set"].pk, 1)], pickup_at=pickup_in(600))
    theirs = services.place_order(customer_id="somebody-else", lines=[(menu["set"].pk, 1)], pickup_at=pickup_in(600))

    assert client.get(reverse("orders:order_detail", args=[mine.pk])).status_code == 200
    assert client.get(reverse("orders:order_detail", args=[theirs.pk])).status_code == 404
    page = client.get("/").content.decode()
    assert mine.pickup_code in page and theirs.pickup_code not in page


@pytest.mark.django_db
def test_admin_is_for_staff_only(client):
    url = reverse("admin:orders_order_changelist")
    assert client.get(url).status_code == 302  # to the login page
    client.force_login(User.objects.create_user("customer", password="pw-123456789"))  # logged in, not staff
    assert client.get(url).status_code == 302
    staff = User.objects.create_user("cook", password="pw-123456789", is_staff=True, is_superuser=True)
    client.force_login(staff)
    assert client.get(url).status_code == 200


@pytest.mark.django_db
def test_a_staff_password_that_is_too_simple_is_refused_in_the_admin(client):
    manager = User.objects.create_user("manager", password="pw-123456789", is_staff=True, is_superuser=True)
    cook = User.objects.create_user("breakfastcook", password="pw-123456789", is_staff=True)
    client.force_login(manager)
    url = reverse("admin:auth_user_password_change", args=[cook.pk])
    for weak in ("1", "12345678", "password", "breakfastcook!"):
        response = client.post(url, {"password1": weak, "password2": weak, "usable_password": "true"})
        assert response.status_code == 200 and response.context["form"].errors["password2"], weak
    cook.refresh_from_db()
    assert cook.check_password("pw-123456789")
    strong = "toast-and-congee-at-eight"
    assert client.post(url, {"password1": strong, "password2": strong, "usable_password": "true"}).status_code == 302
    cook.refresh_from_db()
    assert cook.check_password(strong)


@pytest.mark.django_db
def test_the_demo_kitchen_login_still_works(client):
    call_command("setup_demo", stdout=StringIO())
    # Through the login form, as staff do (django-axes judges every login by its request).
    login = client.post(reverse("admin:login"), {"username": "kitchen", "password": "kitchen-demo", "next": "/admin/"})
    assert login.status_code == 302
    assert client.get(reverse("admin:orders_kitchen")).status_code == 200


@pytest.mark.django_db
def test_admin_login_is_refused_after_five_wrong_passwords_until_staff_clear_it(client):
    User.objects.create_user("cook", password="the-right-password-42", is_staff=True)
    User.objects.create_user("manager", password="the-managers-password-7", is_staff=True)
    login = reverse("admin:login")
    for attempt in range(1, 6):
        wrong = client.post(login, {"username": "cook", "password": "guess", "next": "/admin/"})
        assert wrong.status_code == (429 if attempt == 5 else 200)  # the form again, then refused
    right = client.post(login, {"username": "cook", "password": "the-right-password-42", "next": "/admin/"})
    assert right.status_code == 429
    assert client.get(reverse("admin:index")).status_code == 302  # not logged in
    # Another staff member at the same counter is not locked out.
    other = client.post(login, {"username": "manager", "password": "the-managers-password-7", "next": "/admin/"})
    assert other.status_code == 302
    client.logout()
    call_command("axes_reset_username", "cook", stdout=StringIO())  # what staff do in the admin, too
    again = client.post(login, {"username": "cook", "password": "the-right-password-42", "next": "/admin/"})
    assert again.status_code == 302 and client.get(reverse("admin:index")).status_code == 200


@pytest.mark.django_db
def test_behind_a_proxy_forged_forwarded_addresses_do_not_escape_the_admin_login_lockout(client, settings):
    settings.PICKUP_TRUSTED_PROXIES = 1
    User.objects.create_user("cook", password="the-right-password-42", is_staff=True)
    login = reverse("admin:login")
    for attempt in range(1, 6):
        # A new invented address each time, then the address our nginx appended.
        forged = f"203.0.113.{attempt}, 198.51.100.7"
        wrong = client.post(login, {"username": "cook", "password": "guess"}, HTTP_X_FORWARDED_FOR=forged)
        assert wrong.status_code == (429 if attempt == 5 else 200)
    right = client.post(login, {"username": "cook", "password": "the-right-password-42"}, HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert right.status_code == 429
    # The cook at another address (a different entry from nginx) is not locked out.
    elsewhere = client.post(
        login, {"username": "cook", "password": "the-right-password-42", "next": "/admin/"}, HTTP_X_FORWARDED_FOR="198.51.100.7, 198.51.100.8"
    )
    assert elsewhere.status_code == 302


@pytest.mark.django_db
def test_a_right_password_before_the_limit_starts_the_count_of_wrong_ones_again(client):
    User.objects.create_user("cook", password="the-right-password-42", is_staff=True)
    login = reverse("admin:login")
    for _round in range(2):
        for _ in range(4):
            assert client.post(login, {"username": "cook", "password": "guess"}).status_code == 200
        assert client.post(login, {"username": "cook", "password": "the-right-password-42"}).status_code == 302
        client.logout()


@pytest.mark.django_db
def test_setlang_form_requires_csrf(menu):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    assert strict.post("/i18n/setlang/", {"language": "zh-hans"}).status_code == 403


# Production has its own Web Push keys (manage.py vapid_keys).
PRODUCTION_VAPID_KEYS = new_key_pair()


def deploy_check(**env: str) -> subprocess.CompletedProcess:
    environment = {
        **os.environ,
        "DEBUG": "false",
        "SECRET_KEY": "x7!q2-production-like-secret-key-with-enough-length-and-variety-9f3k",
        "ALLOWED_HOSTS": "pickup.example.com",
        "DJANGO_SETTINGS_MODULE": "pickup.settings",  # production's, not the test suite's
        "VAPID_PRIVATE_KEY": PRODUCTION_VAPID_KEYS.private_key,
        "VAPID_PUBLIC_KEY": PRODUCTION_VAPID_KEYS.public_key,
        "VAPID_SUBJECT": "mailto:kitchen@pickup.example.com",
        **env,
    }
    command = [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"]
    return subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120)


def test_deploy_check_passes_with_production_settings():
    result = deploy_check(DATABASE_URL="postgres://pickup@db.example.com/pickup")
    assert result.returncode == 0, result.stderr + result.stdout


def test_deploy_check_warns_about_persistent_postgresql_connections_without_the_pool():
    result = deploy_check(DATABASE_URL="postgres://pickup@db.example.com/pickup", DATABASE_POOL_MAX_SIZE="0",
                          DATABASE_CONN_MAX_AGE="600")
    assert result.returncode != 0
    assert "pickup.W004" in result.stderr + result.stdout
    pgbouncer = deploy_check(DATABASE_URL="postgres://pickup@db.example.com/pickup", DATABASE_POOL_MAX_SIZE="0",
                             DATABASE_CONN_MAX_AGE="0")
    assert pgbouncer.returncode == 0, pgbouncer.stderr + pgbouncer.stdout


def test_deploy_check_warns_about_sqlite_in_production():
    result = deploy_check(DATABASE_URL="sqlite:////tmp/pickup-deploy-check.sqlite3")
    assert result.returncode != 0
    assert "pickup.W001" in result.stderr + result.stdout


@pytest.mark.django_db
def test_pages_forbid_inline_scripts_framing_and_other_sites(client, menu):
    policy = client.get("/")["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in policy
