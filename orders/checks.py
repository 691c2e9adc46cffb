"""System checks that warn about risky deployments (``manage.py check --deploy``)."""

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register


@register(Tags.database, deploy=True)
def check_sqlite_in_production(app_configs, **kwargs):
    engine = settings.DATABASES["default"]["ENGINE"]
    if not settings.DEBUG and engine.endswith("sqlite3") and not getattr(settings, "PICKUP_ALLOW_SQLITE", False):
        return [
            Warning(
                "SQLite is the database while DEBUG is off.",
                hint="Set DATABASE_URL to PostgreSQL for production, or PICKUP_ALLOW_SQLITE=true for a single-machine shop.",
                id="pickup.W001",
            )
        ]
    return []


@register(deploy=True)
def check_claim_lease(app_configs, **kwargs):
    if settings.PICKUP_CLAIM_LEASE_SECONDS < 5:
        return [
            Warning(
                "PICKUP_CLAIM_LEASE_SECONDS is below 5 s.",
                hint="A slow worker would lose its claim mid-way and another would redo the work.",
                id="pickup.W002",
            )
        ]
    return []


@register()
def check_delivery_timings(app_configs, **kwargs):
    """Timings that contradict each other break a delivery promise, not just speed."""
    errors = []
    if settings.PICKUP_TIMER_LOOKAHEAD_MS >= settings.PICKUP_CLAIM_LEASE_SECONDS * 1000:
        errors.append(
            Error(
                "PICKUP_TIMER_LOOKAHEAD_MS is not shorter than the claim lease (PICKUP_CLAIM_LEASE_SECONDS).",
                hint="A web timer's claim would run out before its push is due, and another sender would push it too.",
                id="pickup.E001",
            )
        )
    if settings.PICKUP_WEB_TIMERS and settings.PICKUP_KITCHEN_DELAY_MS < settings.PICKUP_RUN_QUEUE_GRACE_MS:
        errors.append(
            Warning(
                "PICKUP_KITCHEN_DELAY_MS is shorter than PICKUP_RUN_QUEUE_GRACE_MS.",
                hint="run_queue's kitchen work would take the database while the web timers push the same orders' alerts.",
                id="pickup.W003",
            )
        )
    return errors


@register(Tags.database, deploy=True)
def check_persistent_connections_without_pool(app_configs, **kwargs):
    database = settings.DATABASES["default"]
    pooled = bool(database.get("OPTIONS", {}).get("pool"))
    if database["ENGINE"].endswith("postgresql") and not pooled and database.get("CONN_MAX_AGE"):
        return [
            Warning(
                "PostgreSQL connections are persistent and not pooled.",
                hint="Under daphne every request thread keeps its own connection until PostgreSQL runs out. "
                "Set DATABASE_POOL_MAX_SIZE above 0, or DATABASE_CONN_MAX_AGE=0 behind PgBouncer.",
                id="pickup.W004",
            )
        ]
    return []


@register(deploy=True)
def check_metrics_of_every_process(app_configs, **kwargs):
    """A scraped /metrics without the shared directory shows one web process, and never run_queue."""
    if settings.METRICS_TOKEN and not settings.PROMETHEUS_MULTIPROC_DIR:
        return [
            Warning(
                "/metrics is on but PROMETHEUS_MULTIPROC_DIR is not set.",
                hint="Each scrape then shows only the web process that answered, and nothing of run_queue "
                "(its pushes, its passes). Give every daphne and run_queue of the machine one directory, "
                "emptied before they start (README, \"Operations\").",
                id="pickup.W006",
            )
        ]
    return []
