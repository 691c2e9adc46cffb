"""The counter screen's page: opened by a board link, no login, pickup codes only.

Its labels come in every language of the site at once ("Ready 请取餐"): the
people reading a TV across the room do not share one browser language.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import translation
from django.utils.translation import pgettext
from django.views.decorators.http import require_GET

from orders import boards

_GONE = 410


def _labels() -> dict[str, list[dict[str, str]]]:
    """Each label of the board in every site language ({"lang", "text"}), in the order of settings.LANGUAGES."""
    labels: dict[str, list[dict[str, str]]] = {}
    for code, _name in settings.LANGUAGES:
        with translation.override(code):
            texts = {
                "preparing": pgettext("counter board", "Preparing"),
                "ready": pgettext("counter board", "Ready"),
                "waited": pgettext("counter board", "%(minutes)s min"),
                "offline": pgettext("counter board", "Reconnecting…"),
                "revoked": pgettext("counter board", "This board link was revoked."),
                "unknown": pgettext("counter board", "This board link does not exist."),
                "title": pgettext("counter board", "Pickup counter"),
            }
        for key, text in texts.items():
            labels.setdefault(key, []).append({"lang": code, "text": text})
    return labels


@require_GET
def board_page(request: HttpRequest, token: str) -> HttpResponse:
    link = boards.find_link(token)
    labels = _labels()
    context = {"labels": labels, "token": token, "board": None, "refusal": None}
    if link is None:
        context["refusal"] = labels["unknown"]
        return render(request, "orders/board.html", context, status=404)
    if link.is_revoked:
        context["refusal"] = labels["revoked"]
        return render(request, "orders/board.html", context, status=_GONE)
    context["board"] = boards.board_payload()
    return render(request, "orders/board.html", context)


@require_GET
def board_state(request: HttpRequest, token: str) -> JsonResponse:
    """The board again, for a screen whose socket missed a message; 410 once its link is revoked."""
    board = boards.board_state(token)
    if board is None:
        return JsonResponse({"error": {"code": "board_revoked"}}, status=_GONE)
    return JsonResponse(board)
