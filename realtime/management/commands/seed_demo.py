"""Create demo users and a public room on an empty database, and print the credentials.

    python manage.py seed_demo                                  # on an empty database only
    python manage.py seed_demo --reset-passwords [alice bob admin]

The passwords are printed once and stored nowhere else. `--reset-passwords` gives the demo
users that exist new random passwords and prints them, whatever other users exist: a
developer who lost the first printout gets new ones. It only touches the demo accounts as
this command made them (username and `<username>@example.com`), never another account that
took one of their names. Changing a password ends that user's sign-in sessions
(accounts.receivers), so their tokens stop working and their sockets close.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from accounts.models import User
from realtime import services

DEMO_USERS = (("alice", False), ("bob", False), ("admin", True))
DEMO_USERNAMES = tuple(username for username, _ in DEMO_USERS)
RESET_COMMAND = "python manage.py seed_demo --reset-passwords"


def demo_email(username: str) -> str:
    # example.com is reserved (RFC 2606): no real account has such an address.
    return f"{username}@example.com"


def new_password() -> str:
    return secrets.token_urlsafe(12)


class Command(BaseCommand):
    help = (
        "Create demo users (alice, bob, admin) and the 'lobby' room when there are no users; "
        "with --reset-passwords, give the existing demo users new passwords."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--reset-passwords",
            action="store_true",
            help="set and print new random passwords for the demo users that exist",
        )
        parser.add_argument(
            "usernames",
            nargs="*",
            metavar="USERNAME",
            help=f"with --reset-passwords: only these demo users ({', '.join(DEMO_USERNAMES)})",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["reset_passwords"]:
            self.reset_passwords(options["usernames"] or list(DEMO_USERNAMES))
            return
        if options["usernames"]:
            raise CommandError("Usernames are only taken with --reset-passwords.")
        if User.objects.exists():
            self.stdout.write(
                "Users exist already; no demo users created. To get new passwords for the "
                f"demo users ({', '.join(DEMO_USERNAMES)}), run: {RESET_COMMAND}"
            )
            return
        credentials = []
        with transaction.atomic():
            for username, is_admin in DEMO_USERS:
                password = new_password()
                create = User.objects.create_superuser if is_admin else User.objects.create_user
                create(username=username, email=demo_email(username), password=password)
                credentials.append((username, password))
            alice = User.objects.get(username="alice")
            services.room_create(creator=alice, slug="lobby", title="Lobby", is_private=False)
        self.stdout.write(self.style.SUCCESS("Demo users (shown once; not stored anywhere else):"))
        self.write_credentials(credentials)
        self.stdout.write(f"Lost them? {RESET_COMMAND}")

    def reset_passwords(self, usernames: list[str]) -> None:
        unknown = [name for name in usernames if name not in DEMO_USERNAMES]
        if unknown:
            raise CommandError(
                f"Not a demo user: {', '.join(unknown)}. Only the demo users "
                f"({', '.join(DEMO_USERNAMES)}) can have their passwords reset here; use "
                "`python manage.py changepassword USERNAME` for any other account."
            )
        credentials = []
        with transaction.atomic():
            for username in dict.fromkeys(usernames):
                user = User.objects.select_for_update().filter(username=username).first()
                if user is None:
                    self.stderr.write(f"{username}: no such user; skipped.")
                    continue
                if user.email != demo_email(username):
                    # Someone's real account under a demo name: not ours to change.
                    self.stderr.write(
                        self.style.WARNING(
                            f"{username}: not a demo user (its email is not "
                            f"{demo_email(username)}); password left unchanged."
                        )
                    )
                    continue
                password = new_password()
                user.set_password(password)
                user.save(update_fields=["password"])
                credentials.append((username, password))
        if not credentials:
            raise CommandError(
                "No demo user to reset. On an empty database, `python manage.py seed_demo` "
                "creates them."
            )
        self.stdout.write(
            self.style.SUCCESS("New demo passwords (shown once; not stored anywhere else):")
        )
        self.write_credentials(credentials)

    def write_credentials(self, credentials: list[tuple[str, str]]) -> None:
        for username, password in credentials:
            self.stdout.write(f"  {username:<6} {password}")
