"""``make acceptance``: the product contract's own example (``../shared/examples``, or the
folder ``LOYALTY_SHARED_EXAMPLES`` names) must load, check clean and run unchanged.

Not part of ``make test``: a clone with no ``../shared`` beside it passes the suite, which reads
only the repo (the tests use the Tea House; the benchmarks this example's copy in
``examples/home-goods``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.clock import SystemClock, set_clock
from core.db import dispose_engines
from core.runtime import set_runtime

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LOYALTY_SHARED_EXAMPLES", REPO.parent / "shared" / "examples"))


@pytest.fixture(scope="session")
def shared() -> Path:
    if not (SHARED / "program").is_dir():
        pytest.fail(
            f"{SHARED} has no program/: make acceptance needs the contract's examples beside the "
            "repo (../shared/examples), or LOYALTY_SHARED_EXAMPLES=DIR"
        )
    return SHARED


@pytest.fixture(autouse=True)
def _fresh_process_state() -> Iterator[None]:
    set_clock(SystemClock())
    set_runtime(None)
    yield
    set_clock(SystemClock())
    set_runtime(None)
    dispose_engines()


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, shared: Path) -> Path:
    """The CLI as a shop runs it on the embedded default, with the contract's program."""
    monkeypatch.setenv("LOYALTY_DATABASE_URL", f"sqlite:///{tmp_path / 'loyalty.db'}")
    monkeypatch.delenv("LOYALTY_REDIS_URL", raising=False)
    monkeypatch.setenv("LOYALTY_PROGRAM_DIR", str(shared / "program"))
    monkeypatch.chdir(tmp_path)
    return tmp_path
