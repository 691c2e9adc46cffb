"""Pickup codes read well at the counter and never run out."""

import pytest

from orders.services import format_pickup_code


@pytest.mark.parametrize(
    ("number", "code"),
    [(1, "A001"), (17, "A017"), (999, "A999"), (1000, "B001"), (999 * 24, "Z999"), (999 * 24 + 1, "AA001")],
)
def test_pickup_code_format(number, code):
    assert format_pickup_code(number) == code
