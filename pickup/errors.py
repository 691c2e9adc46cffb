"""The one exception type business rules raise.

A service refuses an operation with a stable ``code`` (for clients and tests)
and a translatable ``message`` (for people); the edges turn it into a JSON
error on the socket or a form error on a page.
"""

from __future__ import annotations


class PickupError(Exception):
    def __init__(self, code: str, message: str, *, field: str | None = None, retry_after: int | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        # Seconds after which the same request may succeed (``rate_limited``).
        self.retry_after = retry_after

    def as_dict(self) -> dict:
        error = {"code": self.code, "message": str(self.message)}
        if self.field:
            error["field"] = self.field
        if self.retry_after is not None:
            error["retry_after"] = self.retry_after
        return error
