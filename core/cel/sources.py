"""Member fields kept in a package's own tables, supplied through a registry.

Core does not import feature packages, yet ``member.tier`` lives in loyalty's tables. A package
registers a :class:`MemberFieldSource` from its wiring; :func:`core.cel.history.fetch_histories`
calls every source once per batch (one query for all the batch's members, never one per
member) and :func:`core.cel.variables.member_variables` asks each source for its fields as of
a moment. The fields' names and types are declared in :mod:`core.cel.types`, like every other
field, so ``check`` knows them whichever packages are loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

if TYPE_CHECKING:
    from core.cel.history import Moments

# The sample members of ``check`` (core.cel.samples), by name.
SAMPLE_MEMBERS = ("new", "regular", "top")


@dataclass(frozen=True)
class AsOf:
    """The moment the variables describe, and the order being judged (left out of them)."""

    at: datetime
    exclude_order: str | None = None


@dataclass(frozen=True)
class MemberFieldSource:
    """Some ``member`` fields that a package keeps.

    ``fetch(conn, member_ids, program, moments)`` returns facts (a frozen value) for every id
    given, in one query; ``moments`` (None: any moment) are the only moments they will be read
    at, so facts no reading at them can tell apart may be left out (see
    :class:`~core.cel.history.Moments`); ``read(facts, as_of)`` returns the fields' values as of
    that moment, purely;
    ``sample(program, name)`` returns the facts of a sample member (see ``SAMPLE_MEMBERS``).
    """

    name: str
    fields: tuple[str, ...]
    fetch: Callable[[Connection, Sequence[str], Any, Moments | None], Mapping[str, Any]]
    read: Callable[[Any, AsOf], Mapping[str, Any]]
    sample: Callable[[Any, str], Any]


member_sources: list[MemberFieldSource] = []


def register_member_source(source: MemberFieldSource) -> None:
    """Add a source (again with the same name: replace it, so importing twice is harmless)."""
    member_sources[:] = [known for known in member_sources if known.name != source.name]
    member_sources.append(source)


class MissingSource(LookupError):
    """Raised when member fields are built with no source registered for some of them."""

    def __init__(self, fields: Sequence[str]) -> None:
        super().__init__(
            f"no package supplies member.{', member.'.join(fields)}; "
            "load the packages first (core.packages.load_packages)"
        )
