"""Create demo users and a public room on an empty database, and print the credentials."""

from __future__ import annotations

import secrets

from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import User
from realtime import services

DEMO_USERS = (("alice", False), ("bob", False), ("admin", True))


class Command(BaseCommand):
    help = "Create demo users (alice, bob, admin) and the 'lobby' room when there are no users."

    def handle(self, *args: object, **options: object) -> None:
        if User.objects.exists():
            self.stdout.write("Users exist already; no demo users created.")
            return
        credentials = []
        with transaction.atomic():
            for username, is_admin in DEMO_USERS:
                password = secrets.token_urlsafe(12)
                create = User.objects.create_superuser if is_admin else User.objects.create_user
                create(username=username, email=f"{username}@example.com", password=password)
                credentials.append((username, password))
            alice = User.objects.get(username="alice")
            services.room_create(creator=alice, slug="lobby", title="Lobby", is_private=False)
        self.stdout.write(self.style.SUCCESS("Demo users (shown once; not stored anywhere else):"))
        for username, password in credentials:
            self.stdout.write(f"  {username:<6} {password}")
