"""Print a new VAPID key pair for Web Push, as lines to paste into .env."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from notifications import vapid


class Command(BaseCommand):
    help = "Print a new VAPID key pair (and the subject, if given) in the form .env takes."

    def add_arguments(self, parser):
        parser.add_argument(
            "--subject", default="",
            help="your contact address for push services, e.g. mailto:kitchen@pickup.example.com",
        )

    def handle(self, *args, subject: str, **options):
        pair = vapid.new_key_pair()
        if subject and any("SUBJECT" in problem for problem in vapid.key_problems(*pair, subject)):
            raise CommandError(f"--subject must be a mailto: or https: address, got {subject!r}")
        self.stdout.write("# Web Push keys: keep the private key secret; a new pair ends every subscription made with the old one.")
        self.stdout.write(f"VAPID_PRIVATE_KEY={pair.private_key}")
        self.stdout.write(f"VAPID_PUBLIC_KEY={pair.public_key}")
        if subject:
            self.stdout.write(f"VAPID_SUBJECT={subject}")
