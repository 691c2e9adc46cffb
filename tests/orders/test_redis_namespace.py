"""A Redis key prefix belongs to one database: a second installation sharing it is refused."""

from __future__ import annotations

import uuid

import pytest

from orders import kitchen_queue
from orders.models import Restaurant

pytestmark = pytest.mark.django_db


def test_the_first_process_marks_the_prefix_and_the_same_installation_passes(restaurant, clean_redis):
    kitchen_queue.claim_namespace()
    kitchen_queue.claim_namespace()  # every later process of this database
    assert clean_redis.get("pickup-test:installation").decode() == str(restaurant.installation)


def test_another_database_on_the_same_prefix_is_refused_with_what_to_do(restaurant, clean_redis):
    kitchen_queue.claim_namespace()
    Restaurant.objects.filter(pk=restaurant.pk).update(installation=uuid.uuid4())  # as if another database
    Restaurant.forget_current()
    with pytest.raises(kitchen_queue.NamespaceTaken, match="REDIS_KEY_PREFIX"):
        kitchen_queue.claim_namespace()
    assert clean_redis.get("pickup-test:installation").decode() == str(restaurant.installation)  # unchanged


def test_a_redis_that_lost_its_memory_is_marked_again(restaurant, clean_redis):
    kitchen_queue.claim_namespace()
    clean_redis.flushdb()
    kitchen_queue.claim_namespace()
    assert clean_redis.get("pickup-test:installation").decode() == str(restaurant.installation)
