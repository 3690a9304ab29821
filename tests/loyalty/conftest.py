"""Loyalty fixtures: the example program, and the ledger invariant checked after every test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from core.program.loader import load_program
from loyalty.verify import verify_ledger


@pytest.fixture(scope="session")
def program(examples: Path) -> Any:
    return load_program(examples / "program")


@pytest.fixture(autouse=True)
def _ledger_invariant_holds(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test that used a database: per member, lots agree with ledger entries."""
    engines: list[Engine] = [
        request.getfixturevalue(name)
        for name in ("engine", "pg_engine")
        if name in request.fixturenames
    ]
    yield
    for engine in engines:
        with engine.connect() as conn:
            problems = verify_ledger(conn)
        assert not problems, "ledger invariant broken:\n" + "\n".join(map(str, problems))
