"""Pure planning of refund reconciliations for a batch (the rules are in ``loyalty.refunds``).

``plan_reconciliations`` walks the requests in order over an in-memory copy of what the
ledger held for the batch's orders and members (``RefundFacts``): each planned restore or
take-back updates that copy (the lots' remaining points, the order's restored and taken-back
totals, the lots its redemption still holds out), so a member's second refund in the batch
sees the lots exactly as the first left them, as if they had been written one by one.

The facts start with the orders' own lots and the lots they drew on, which is all most
refunds touch (a take-back draws on the order's own lots first). A member whose take-back
needs more is reported ``incomplete``; the caller fetches that member's lots and plans again
(a member's plan depends only on that member's lots, so the others' plans do not change).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from loyalty.ledger import EntryDraft, Lot, Move, soonest_expiring_first


@dataclass(frozen=True)
class OrderPoints:
    """What the ledger holds for one order, and how much of it was refunded."""

    order_id: str
    member_id: str
    total_cents: int
    refunded_cents: int
    earned: int
    earn_entry_ids: tuple[int, ...]
    taken_back: int
    redeem_entry_ids: tuple[int, ...]
    redeemed: int
    restore_entry_ids: tuple[int, ...]
    restored: int

    def keep(self) -> int:
        """Earned points the member keeps after the refunds."""
        if self.total_cents <= 0:
            return 0
        return self.earned * (self.total_cents - self.refunded_cents) // self.total_cents

    def to_take_back(self) -> int:
        return self.earned - self.keep() - self.taken_back

    def to_restore(self) -> int:
        if self.total_cents <= 0:
            return 0
        return self.redeemed * self.refunded_cents // self.total_cents - self.restored


class ReconcileRequest(Protocol):
    """One order to bring in line with its refunds, keyed by the event that asked for it."""

    @property
    def order_id(self) -> str: ...
    @property
    def trigger(self) -> str: ...
    @property
    def at(self) -> datetime: ...


@dataclass(frozen=True)
class RefundFacts:
    """What the ledger held for a batch's refunded orders and their members, before it."""

    orders: dict[str, OrderPoints]  # the orders that exist, by id
    drawn: dict[str, dict[int, int]]  # order → lot → points its redemption still holds out
    lots: dict[int, Lot]  # the orders' own lots, the lots they drew on, the lots of `complete`
    recorded: frozenset[str]  # idempotency keys of the orders' entries
    complete: frozenset[str] = frozenset()  # members whose every lot holding points is in lots

    def with_member_lots(self, member_ids: Iterable[str], lots: dict[int, Lot]) -> RefundFacts:
        """These facts, with every lot holding points of ``member_ids`` (as read now)."""
        return replace(self, lots={**self.lots, **lots}, complete=self.complete.union(member_ids))


@dataclass(frozen=True)
class PlannedEntry:
    """A reconciliation entry to append, and the lot moves to apply if it is new."""

    draft: EntryDraft
    moves: tuple[Move, ...]


@dataclass
class ReconcilePlan:
    """Per request: the order as it stood before it (None: no such order) and its entries.

    ``incomplete``: members whose take-back needed more than their order's own lots, and
    whose other lots the facts lack; their requests are to be planned again once fetched.
    """

    states: list[OrderPoints | None] = field(default_factory=list)
    planned: list[tuple[PlannedEntry, ...]] = field(default_factory=list)
    incomplete: set[str] = field(default_factory=set)

    @property
    def entries(self) -> list[PlannedEntry]:
        return [entry for entries in self.planned for entry in entries]

    def replanned(
        self, requests: Sequence[ReconcileRequest], facts: RefundFacts, *, now: datetime
    ) -> ReconcilePlan:
        """This plan with the requests of the incomplete members planned again on ``facts``
        (a member's plan depends only on that member's orders and lots)."""
        again = [
            index
            for index, state in enumerate(self.states)
            if state is not None and state.member_id in self.incomplete
        ]
        redone = plan_reconciliations([requests[i] for i in again], facts, now=now)
        plan = ReconcilePlan(list(self.states), list(self.planned), redone.incomplete)
        for index, state, planned in zip(again, redone.states, redone.planned, strict=True):
            plan.states[index], plan.planned[index] = state, planned
        return plan


def plan_reconciliations(
    requests: Sequence[ReconcileRequest], facts: RefundFacts, *, now: datetime
) -> ReconcilePlan:
    """Pure: the restores and take-backs of the requests, planned one after the other.

    Restores come first, so a take-back can draw on them. A key already recorded means that
    reconciliation already happened: it is planned no further and changes nothing.
    """
    books = _Books.of(facts, now)
    plan = ReconcilePlan(incomplete=books.incomplete)
    for request in requests:
        state = books.orders.get(request.order_id)
        plan.states.append(state)
        entries: list[PlannedEntry] = []
        if state is not None and state.refunded_cents > 0:
            if state.to_restore() > 0:
                entries += books.record(_restore(state, books, request, now))
            if state.to_take_back() > 0:
                entries += books.record(_take_back(state, books, request))
        plan.planned.append(tuple(entries))
    return plan


@dataclass
class _Books:
    """The batch's working copy of the facts, updated by every planned entry."""

    orders: dict[str, OrderPoints]
    drawn: dict[str, dict[int, int]]
    lots: dict[int, Lot]
    remaining: dict[int, int]  # lot id → points it holds now
    lots_of: dict[str, list[Lot]]  # the member's lots not expired, soonest-expiring first
    recorded: set[str]
    complete: frozenset[str]
    incomplete: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, facts: RefundFacts, now: datetime) -> _Books:
        lots_of: dict[str, list[Lot]] = defaultdict(list)
        for lot in soonest_expiring_first([lot for lot in facts.lots.values() if lot.usable(now)]):
            lots_of[lot.member_id].append(lot)
        return cls(
            orders=dict(facts.orders),
            drawn={order_id: dict(lots) for order_id, lots in facts.drawn.items()},
            lots=facts.lots,
            remaining={lot.id: lot.remaining for lot in facts.lots.values()},
            lots_of=lots_of,
            recorded=set(facts.recorded),
            complete=facts.complete,
        )

    def record(self, planned: PlannedEntry | None) -> list[PlannedEntry]:
        if planned is None or planned.draft.idempotency_key[:400] in self.recorded:
            return []
        draft = planned.draft
        self.recorded.add(draft.idempotency_key[:400])
        for lot_id, points in planned.moves:
            self.remaining[lot_id] += points
        state = self.orders[draft.order_id or ""]
        if draft.rule_id == "refund-restore":
            drawn = self.drawn.setdefault(state.order_id, {})
            for lot_id, points in planned.moves:
                drawn[lot_id] -= points
            state = replace(state, restored=state.restored + draft.points)
        else:
            state = replace(state, taken_back=state.taken_back + draft.debt - draft.points)
        self.orders[state.order_id] = state
        return [planned]

    def draw(self, lots: Sequence[Lot], points: int) -> tuple[list[Move], int]:
        """``plan_draw`` on the lots as the batch left them: the moves and the shortfall."""
        moves: list[Move] = []
        for lot in lots:
            if points <= 0:
                break
            taken = min(self.remaining[lot.id], points)
            if taken > 0:
                moves.append((lot.id, -taken))
                points -= taken
        return moves, max(points, 0)


def _story(state: OrderPoints) -> str:
    return (
        f"order {state.order_id}: {Decimal(state.refunded_cents) / 100} of "
        f"{Decimal(state.total_cents) / 100} refunded"
    )


def _restore(
    state: OrderPoints, books: _Books, request: ReconcileRequest, now: datetime
) -> PlannedEntry | None:
    drawn = books.drawn.get(state.order_id, {})
    found = [books.lots[lot_id] for lot_id in drawn if lot_id in books.lots]
    open_lots = [lot for lot in found if lot.usable(now) and lot.expired_points == 0]
    latest_first = list(reversed(soonest_expiring_first(open_lots)))
    moves = _restore_moves(latest_first, books.remaining, drawn, state.to_restore())
    back = sum(points for _, points in moves)
    if back <= 0:
        return None
    open_ids = {lot.id for lot in open_lots}
    draft = EntryDraft(
        member_id=state.member_id,
        kind="reverse",
        points=back,
        rule_id="refund-restore",
        reason=f"{_story(state)}: {back} of the {state.redeemed} redeemed points come back",
        idempotency_key=f"restore:{request.trigger}",
        occurred_at=request.at,
        order_id=state.order_id,
        source_event_id=request.trigger,
        details={"expired_lots_not_restored": sorted(i for i in drawn if i not in open_ids)},
    )
    return PlannedEntry(draft, tuple(moves))


def _restore_moves(
    lots: list[Lot], remaining: dict[int, int], drawn: dict[int, int], points: int
) -> list[Move]:
    """Back to the lots (latest-expiring first) what the order drew from each, up to full."""
    moves: list[Move] = []
    for lot in lots:
        back = min(drawn[lot.id], points, lot.points - remaining[lot.id])
        if back > 0:
            moves.append((lot.id, back))
            points -= back
    return moves


def _take_back(state: OrderPoints, books: _Books, request: ReconcileRequest) -> PlannedEntry:
    want = state.to_take_back()
    lots = books.lots_of.get(state.member_id, [])
    earned = set(state.earn_entry_ids)  # the order's own lots first, then the member's others
    own = [lot for lot in lots if lot.entry_id in earned]
    if sum(books.remaining[lot.id] for lot in own) < want and state.member_id not in books.complete:
        books.incomplete.add(state.member_id)
    moves, short = books.draw(own + [lot for lot in lots if lot.entry_id not in earned], want)
    draft = EntryDraft(
        member_id=state.member_id,
        kind="reverse",
        points=short - want,
        debt=short,
        rule_id="refund",
        idempotency_key=f"takeback:{request.trigger}",
        occurred_at=request.at,
        reason=f"{_story(state)}: {want} of the {state.earned} earned points taken back"
        + (f", {short} of them already spent and owed" if short else ""),
        order_id=state.order_id,
        source_event_id=request.trigger,
        details={"earned": state.earned, "keep": state.keep(), "owed": short},
    )
    return PlannedEntry(draft, tuple(moves))
