"""Delivery callbacks from providers (delivered, bounced, complained, opened, clicked).

The shop's event types are fixed, so these come in through their own service function and the
``delivery_callback`` actor. Each callback is stored once (its id is the primary key; a
redelivered one changes nothing) and updates its message: ``delivery`` moves forward
(delivered < opened < clicked; a bounce or complaint outranks them), a message left
``unknown`` by an interrupted send is resolved to ``sent``, a hard bounce suppresses the
address, and a complaint suppresses it and unsubscribes the member from the channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Connection, RowMapping, or_, select, update

from core.db import insert_ignoring_conflicts
from notifications.errors import MessageNotFound
from notifications.store import add_suppressions, add_unsubscribe
from notifications.tables import delivery_events, messages

CallbackKind = Literal["delivered", "bounced", "complained", "opened", "clicked"]
RANK = {"delivered": 1, "opened": 2, "clicked": 3, "bounced": 4, "complained": 5}


class DeliveryCallback(BaseModel):
    """A provider's report about one message, found by our id or the provider's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=200, description="the provider's event id")
    kind: CallbackKind
    occurred_at: AwareDatetime
    message_id: str | None = None
    provider_message_id: str | None = None
    bounce: Literal["hard", "soft"] = "hard"
    detail: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _names_a_message(self) -> DeliveryCallback:
        if not (self.message_id or self.provider_message_id):
            raise ValueError("a callback needs message_id or provider_message_id")
        return self


@dataclass(frozen=True)
class CallbackResult:
    message_id: str
    applied: bool  # False: this callback id was recorded before


def record_delivery_callback(
    conn: Connection, callback: DeliveryCallback, *, now: datetime, channel: str | None = None
) -> CallbackResult:
    """Store the callback and apply it to its message (once per callback id). With
    ``channel``, only a message sent on that channel is its message (raises MessageNotFound
    for another channel's, as for one that does not exist)."""
    message = _find_message(conn, callback, channel=channel)
    stored = insert_ignoring_conflicts(conn, delivery_events, ["callback_id"]).values(
        callback_id=callback.id,
        message_id=message["message_id"],
        kind=callback.kind,
        occurred_at=callback.occurred_at,
        received_at=now,
        detail={**callback.detail, "bounce": callback.bounce}
        if callback.kind == "bounced"
        else callback.detail,
    )
    if conn.execute(stored.returning(delivery_events.c.callback_id)).first() is None:
        return CallbackResult(message["message_id"], applied=False)
    _apply(conn, message, callback, now=now)
    return CallbackResult(message["message_id"], applied=True)


def _find_message(
    conn: Connection, callback: DeliveryCallback, *, channel: str | None = None
) -> RowMapping:
    conditions = []
    if callback.message_id:
        conditions.append(messages.c.message_id == callback.message_id)
    if callback.provider_message_id:
        conditions.append(messages.c.provider_message_id == callback.provider_message_id)
    query = select(messages).where(or_(*conditions))
    if channel is not None:
        query = query.where(messages.c.channel == channel)
    row = conn.execute(query.limit(1)).mappings().first()
    if row is None:
        raise MessageNotFound(callback.message_id or callback.provider_message_id or "")
    return row


def _apply(
    conn: Connection, message: RowMapping, callback: DeliveryCallback, *, now: datetime
) -> None:
    changes: dict[str, Any] = {"updated_at": now}
    if RANK[callback.kind] > RANK.get(message["delivery"] or "", 0):
        changes |= {"delivery": callback.kind, "delivery_at": callback.occurred_at}
    if message["status"] == "unknown":  # the provider had it after all
        changes |= {"status": "sent", "reason": "confirmed_by_callback",
                    "sent_at": message["sent_at"] or callback.occurred_at}  # fmt: skip
    conn.execute(
        update(messages).where(messages.c.message_id == message["message_id"]).values(**changes)
    )
    hard_bounce = callback.kind == "bounced" and callback.bounce == "hard"
    if (hard_bounce or callback.kind == "complained") and message["address_hash"]:
        reason = "hard_bounce" if hard_bounce else "complaint"
        _suppress(conn, message, reason=reason, now=now)
    if callback.kind == "complained":
        add_unsubscribe(
            conn,
            member_id=message["member_id"],
            channel=message["channel"],
            now=now,
            message_id=message["message_id"],
            source="complaint",
        )


def _suppress(conn: Connection, message: RowMapping, *, reason: str, now: datetime) -> None:
    add_suppressions(
        conn,
        [
            {
                "channel": message["channel"],
                "address_hash": message["address_hash"],
                "to_masked": message["to_masked"],
                "reason": reason,
                "message_id": message["message_id"],
                "created_at": now,
            }
        ],
    )
