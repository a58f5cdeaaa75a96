"""docs/protocol.md's tables are the contract clients are written against: each code the
code can send is documented there, and nothing is documented that the code cannot send."""

from __future__ import annotations

import re
from pathlib import Path

from realtime.frames import SERVER_FRAMES
from realtime.protocol import FRAME_TYPES, CloseCode, ErrorCode

PROTOCOL_MD = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
# Seen by clients and documented, but never sent by the server.
NEVER_SENT = {1006}


def section(title: str) -> str:
    text = PROTOCOL_MD.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def first_column(markdown: str) -> list[str]:
    """The backquoted first cell of every table row."""
    return re.findall(r"^\| `([^`]+)` \|", markdown, flags=re.MULTILINE)


def test_every_close_code_is_documented_once_and_only_those():
    documented = [int(code) for code in first_column(section("Close codes"))]
    assert len(documented) == len(set(documented))
    assert set(documented) - NEVER_SENT == {int(code) for code in CloseCode}


def test_every_error_code_is_documented_once_and_only_those():
    documented = first_column(section("Error codes"))
    assert len(documented) == len(set(documented))
    assert set(documented) == {str(code) for code in ErrorCode}


def test_every_frame_type_is_documented_in_its_direction():
    client_table, server_table = section("Frames").split("### Server", 1)
    server_table = server_table.split("\n### ", 1)[0]
    assert set(first_column(client_table)) == set(FRAME_TYPES)
    assert set(first_column(server_table)) == set(SERVER_FRAMES)
