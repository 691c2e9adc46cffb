"""``{% push_panel %}``: the offer of alerts on a locked phone, on the customer's pages."""

from django import template

from notifications import vapid

register = template.Library()


@register.inclusion_tag("notifications/push_panel.html", takes_context=True)
def push_panel(context) -> dict:
    """Nothing when Web Push is off (no keys); static/notifications/push.js brings the panel to life."""
    from orders.models import Restaurant

    return {
        "public_key": vapid.public_key() if vapid.configured() else "",
        "title": Restaurant.current().name,
        "csrf_token": context.get("csrf_token"),
    }
