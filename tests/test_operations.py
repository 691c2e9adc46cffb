"""What an operator's tools get: /metrics for the scraper only, /healthz and /readyz for the load balancer, JSON logs."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.core import checks

from orders import services
from pickup import probes
from pickup.errors import PickupError
from pickup.redis_server import free_port
from pickup.testing import metric_samples
from tests.conftest import pickup_in

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "a-scraper-token-of-at-least-32-characters"


@pytest.fixture(autouse=True)
def patient_probes(monkeypatch):
    """What the probes answer is under test here, not how fast a busy machine answers them."""
    monkeypatch.setattr(probes, "TIMEOUT", 30.0)


@pytest.fixture
def scraper_token(settings):
    settings.METRICS_TOKEN = TOKEN
    return TOKEN



@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token-of-at-least-32-characters-long", f"Basic {TOKEN}", TOKEN, "Bearer "],
    ids=["no header", "wrong token", "another scheme", "no scheme", "empty token"],
)
def test_metrics_are_not_found_without_the_scrapers_token(client, scraper_token, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 404
    assert b"pickup_" not in response.content


def test_metrics_are_not_found_by_anyone_when_no_token_is_set(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 404


@pytest.mark.django_db(transaction=True)  # orders count once committed
def test_the_scraper_reads_orders_placed_and_refused_and_the_kitchen_queue(client, scraper_token, menu):
    before = metric_samples(client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).content.decode())
    services.place_order(customer_id="metrics", lines=[(menu["set"].pk, 1)], pickup_at=pickup_in(600))
    with pytest.raises(PickupError):
        services.place_order(customer_id="metrics", lines=[(menu["set"].pk, 1)], pickup_at=pickup_in(-60))

    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    after = metric_samples(response.content.decode())
    placed = ("pickup_orders_placed_total", ())
    refused = ("pickup_orders_refused_total", (("reason", "pickup_time_past"),))
    assert after[placed] - before.get(placed, 0) == 1
    assert after[refused] - before.get(refused, 0) == 1
    assert after[("pickup_kitchen_queue_orders", ())] == 1
    assert after[("pickup_kitchen_queue_overdue_orders", ())] == 0
    assert after[("pickup_alerts_overdue", ())] == 0
    assert after[("pickup_web_pushes_pending", ())] == 0


@pytest.mark.django_db
def test_ready_when_the_database_and_redis_answer(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready", "failed": [], "checks": {"database": "ok", "redis": "ok", "process": "ok"},
    }


@pytest.fixture
def redis_gone(settings):
    """Redis stops answering: the cache (and its connection) points at a port nobody listens on."""
    location = f"redis://127.0.0.1:{free_port()}/0"
    settings.CACHES = {**settings.CACHES, "default": {**settings.CACHES["default"], "LOCATION": location}}


@pytest.mark.django_db
def test_not_ready_without_redis_and_the_body_says_what_failed(client, redis_gone):
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["redis"]
    assert body["checks"]["redis"].startswith("error: ")
    assert body["checks"]["database"] == "ok"


@pytest.mark.django_db
def test_alive_without_redis_so_nothing_restarts_a_web_server_that_is_only_waiting(client, redis_gone):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "alive"}


@pytest.mark.django_db
def test_not_ready_once_stopping(client, monkeypatch):
    monkeypatch.setattr(probes, "_stopping", threading.Event())
    probes.mark_stopping()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failed"] == ["process"]


def test_probes_and_metrics_are_not_redirected_to_https(client, settings, scraper_token, db):
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert client.get("/").status_code == 301  # the pages still are


def test_json_log_format_writes_one_json_object_a_line(tmp_path):
    script = (
        "import logging, django; django.setup()\n"
        "logging.getLogger('pickup.run_queue').info('order %s ready', 'A001', extra={'order_id': 7})\n"
        "try:\n    1 / 0\n"
        "except ZeroDivisionError:\n    logging.getLogger('django.request').exception('it broke')\n"
    )
    environment = {
        **os.environ, "DJANGO_SETTINGS_MODULE": "pickup.settings", "DEBUG": "true", "LOG_FORMAT": "json", "LOG_LEVEL": "INFO",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert [(line["level"], line["logger"], line["message"]) for line in lines] == [
        ("INFO", "pickup.run_queue", "order A001 ready"),
        ("ERROR", "django.request", "it broke"),
    ]
    assert lines[0]["order_id"] == 7
    assert "ZeroDivisionError" in lines[1]["exc_info"]
    assert all(line["time"].endswith("+00:00") for line in lines)


@pytest.mark.parametrize(
    ("name", "value", "complaint"),
    [
        ("LOG_FORMAT", "xml", "LOG_FORMAT must be plain or json"),
        ("METRICS_TOKEN", "secret", "METRICS_TOKEN must be at least 32 characters"),
        ("PROMETHEUS_MULTIPROC_DIR", "/no/such/directory", "is not a directory"),
    ],
)
def test_a_bad_operations_setting_is_refused_at_start(tmp_path, name, value, complaint):
    environment = {**os.environ, "DEBUG": "true", name: value, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert complaint in result.stderr


def test_an_empty_metrics_directory_setting_means_each_process_counts_for_itself(tmp_path):
    """As a copied .env.example could leave it: not multiprocess mode writing into the current directory."""
    script = "import django; django.setup(); from prometheus_client import values; print(values.ValueClass.__name__)"
    environment = {
        **os.environ, "DJANGO_SETTINGS_MODULE": "pickup.settings", "DEBUG": "true", "PROMETHEUS_MULTIPROC_DIR": "",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env={**environment, "PYTHONPATH": str(ROOT)},
                            capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "MutexValue", result.stderr
    assert list(tmp_path.glob("*.db")) == []


def _run_all():
    spec = importlib.util.spec_from_file_location("run_all", ROOT / "scripts" / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_make_run_gives_every_process_one_metrics_directory_emptied_of_the_last_run(tmp_path, monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    chosen = tmp_path / "chosen"
    chosen.mkdir()
    (chosen / "counter_4242.db").write_bytes(b"the last run's counts")
    (chosen / "notes.txt").write_text("not the library's")
    env_file = tmp_path / ".env"
    env_file.write_text(f"PROMETHEUS_MULTIPROC_DIR={chosen}\n")

    directory = _run_all().share_a_fresh_metrics_directory(env_file=env_file, default=tmp_path / "default")

    assert directory == chosen and os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(chosen)  # daphne and run_queue inherit it
    assert sorted(path.name for path in chosen.iterdir()) == ["notes.txt"]
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    assert _run_all().share_a_fresh_metrics_directory(env_file=tmp_path / "no.env", default=tmp_path / "default").is_dir()


def test_the_deploy_check_warns_of_metrics_that_would_leave_out_run_queue(settings, scraper_token):
    settings.PROMETHEUS_MULTIPROC_DIR = ""
    assert "pickup.W006" in {message.id for message in checks.run_checks(include_deployment_checks=True)}
    settings.PROMETHEUS_MULTIPROC_DIR = "/run/pickup-metrics"
    assert "pickup.W006" not in {message.id for message in checks.run_checks(include_deployment_checks=True)}
