"""`manage.py asyncapi [--output PATH]`: write the AsyncAPI document of /ws/chat/.

The output is realtime.asyncapi.render(build_document()): the same code always gives the same
bytes, so the committed docs/asyncapi.json changes only when the protocol does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from realtime.asyncapi import build_document, render


class Command(BaseCommand):
    help = "Write the AsyncAPI 3.0 document of the WebSocket protocol (JSON) to stdout or PATH."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--output",
            metavar="PATH",
            help="Write to PATH (e.g. docs/asyncapi.json) instead of stdout.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        text = render(build_document())
        if options["output"]:
            # Bytes, not text mode: no newline translation, whatever the platform.
            Path(options["output"]).write_bytes(text.encode())
        else:
            self.stdout.write(text, ending="")
