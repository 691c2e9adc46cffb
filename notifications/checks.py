"""System checks for Web Push (``manage.py check --deploy``)."""

from django.conf import settings
from django.core.checks import Warning, register

from notifications import vapid


@register(deploy=True)
def check_vapid_keys(app_configs, **kwargs):
    """Without working keys the page offers no alerts on a locked phone: say so before production."""
    if settings.DEBUG:
        return []
    problems = vapid.key_problems(settings.VAPID_PRIVATE_KEY, settings.VAPID_PUBLIC_KEY, settings.VAPID_SUBJECT)
    if not problems:
        return []
    return [
        Warning(
            "Web Push is off: " + "; ".join(problems) + ".",
            hint="Run `python manage.py vapid_keys --subject mailto:you@example.com` and put its lines in the "
            "environment (README, \"Web Push\"). Customers then get alerts on a locked phone.",
            id="pickup.W005",
        )
    ]
