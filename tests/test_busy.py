"""A request that finds no database connection is told to come back, not shown a 500.

The pool running dry under a real crowd is tests/processes/test_database_connections.py;
here the answer itself, for the exception Django raises when it happens.
"""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace

import psycopg
import pytest
from django.db import OperationalError
from django.db.utils import DatabaseErrorWrapper
from django.urls import get_resolver
from psycopg_pool import PoolTimeout

from pickup import busy, views


def _raised_by_django(error: Exception) -> OperationalError:
    """``error`` as Django's PostgreSQL backend hands it on (its wrapper, on psycopg's exceptions)."""
    with pytest.raises(OperationalError) as raised:
        with DatabaseErrorWrapper(SimpleNamespace(Database=psycopg, errors_occurred=False)):
            raise error
    return raised.value


def _answer_while_handling(error: Exception, rf, **headers):
    try:
        raise error
    except OperationalError:
        assert sys.exc_info()[1] is error
        return views.server_error(rf.get("/", headers=headers))


def test_django_answers_500s_with_the_busy_handler():
    assert get_resolver().resolve_error_handler(500) is views.server_error


def test_a_page_that_waited_in_vain_for_a_pooled_connection_reloads_itself_in_the_customers_language(rf):
    error = _raised_by_django(PoolTimeout("couldn't get a connection after 30.00 sec"))
    response = _answer_while_handling(error, rf, accept="text/html,application/xhtml+xml", accept_language="zh-CN,zh;q=0.9")
    assert response.status_code == 503
    assert response["Retry-After"] == str(busy.RETRY_AFTER_SECONDS)
    page = response.content.decode()
    assert f'http-equiv="refresh" content="{busy.RETRY_AFTER_SECONDS}"' in page
    assert '<html lang="zh-hans">' in page
    assert "服务器繁忙" in page


def test_a_script_is_answered_in_json_and_postgresqls_refusal_counts_too(rf):
    refused = psycopg.OperationalError("sorry, too many clients already")
    refused.sqlstate = busy.TOO_MANY_CONNECTIONS  # as psycopg sets it from the server's error
    response = _answer_while_handling(_raised_by_django(refused), rf, accept="application/json")
    assert response.status_code == 503
    assert json.loads(response.content) == {"code": "server_busy", "retry_after": busy.RETRY_AFTER_SECONDS,
                                            "message": "The server is busy. Please try again in a few seconds."}


def test_any_other_database_error_is_still_a_500(rf):
    error = _raised_by_django(psycopg.OperationalError("server closed the connection unexpectedly"))
    assert _answer_while_handling(error, rf, accept="text/html").status_code == 500
