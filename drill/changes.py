"""The drill's edits and deletes. Each sender edits some of its messages and deletes others once
they are acknowledged, through its connection's outbox (sent again on every new socket until a
push or a history read shows the change stored, as the chat page does), and after the restore
every region's history must hold each of them in the state its author left it: the edited text,
or deleted with no text; and no region may hold a deleted message with text."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

EDIT_EVERY = 4  # each sender's 4th, 8th... message is edited
DELETE_EVERY = 6  # its 6th, 12th... deleted (where both fall, deleted)


@dataclass
class Changes:
    """One sender's edits and deletes: text for an edit, None for a delete."""

    planned: dict[str, str | None] = field(default_factory=dict)  # waiting for the message's ack
    wanted: dict[str, str | None] = field(default_factory=dict)  # asked for: the final state
    outbox: dict[str, str | None] = field(default_factory=dict)  # asked for, not yet seen stored

    def plan(self, message_id: str, sequence: int, text: str) -> None:
        if sequence % DELETE_EVERY == 0:
            self.planned[message_id] = None
        elif sequence % EDIT_EVERY == 0:
            self.planned[message_id] = f"{text}, edited"

    def acked(self, message_id: str) -> None:
        """The message is stored: its change (if any) goes out now."""
        if message_id in self.planned:
            change = self.planned.pop(message_id)
            self.wanted[message_id] = self.outbox[message_id] = change

    def observe(self, message: dict[str, Any]) -> None:
        """A pushed or read state of one of our messages: the change is stored once it shows."""
        if message["id"] in self.outbox and holds(message, self.outbox[message["id"]]):
            del self.outbox[message["id"]]

    @staticmethod
    def frame(room: str, message_id: str, change: str | None) -> dict[str, Any]:
        if change is None:
            return {"action": "deleteMessage", "room": room, "id": message_id}
        return {"action": "editMessage", "room": room, "id": message_id, "text": change}


def holds(message: dict[str, Any], change: str | None) -> bool:
    if change is None:
        return bool(message.get("deleted")) and message.get("text") is None
    return not message.get("deleted") and message.get("text") == change


class HasChanges(Protocol):
    changes: Changes


def check(held: dict[str, list[dict[str, Any]]], clients: Iterable[HasChanges]) -> dict[str, Any]:
    """Whether every region holds every asked-for change, and no deleted message with text."""
    wanted = {message_id: change for c in clients for message_id, change in c.changes.wanted.items()}
    wrong: list[dict[str, Any]] = []
    for region, messages in held.items():
        by_id = {m["id"]: m for m in messages}
        for message_id, change in wanted.items():
            message = by_id.get(message_id)
            if message is None or not holds(message, change):
                wrong.append({"region": region, "id": message_id, "wanted": change, "held": message})
        wrong += [
            {"region": region, "id": m["id"], "wanted": None, "held": m}
            for m in messages
            if m.get("deleted") and m.get("text") is not None
        ]
    return {
        "edits": sum(change is not None for change in wanted.values()),
        "deletes": sum(change is None for change in wanted.values()),
        "ok": not wrong,
        "wrong": wrong[:5],
    }
