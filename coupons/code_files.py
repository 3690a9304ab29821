"""Generated codes written to a file, never out of step with what is stored.

The codes go to a temporary file beside the output (same directory, so the final rename is
atomic) while their transaction is still open: a directory that does not exist, a file that
cannot be written or a full disk rolls the codes back. Once they are committed the temporary
file takes the output's name. A commit that fails removes it, so no file ever lists codes that
were not stored; a shop never hands out codes that do not work.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from core.events.handlers import unit_of_work
from coupons.errors import CodeFileError
from coupons.wallet import generate_coupon_codes


def generate_code_file(
    engine: Engine, program: Any, *, coupon_id: str, count: int, output: Path, now: datetime
) -> list[str]:
    """Store ``count`` new unclaimed codes and write them to ``output``, one per line."""
    written: list[Path] = []  # the temporary file, once written
    try:
        with unit_of_work(engine, now=now, program=program) as ctx:
            codes = generate_coupon_codes(
                ctx.conn, program, coupon_id=coupon_id, count=count, now=now
            )
            written.append(write_pending(output, codes))
    except BaseException:  # the commit failed too: no file may list codes not stored
        for path in written:
            path.unlink(missing_ok=True)
        raise
    publish(written[0], output)
    return codes


def write_pending(output: Path, codes: Sequence[str]) -> Path:
    """Write the codes to a temporary file in the output's directory, flushed to disk."""
    if output.is_dir():
        raise CodeFileError(f"{output} is a directory; give a file name for the codes")
    try:
        handle, name = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.", suffix=".tmp")
    except OSError as exc:
        raise CodeFileError(
            f"cannot write the codes to {output}: {exc.strerror or exc}; no code was stored. "
            "Give a file in a directory that exists and can be written"
        ) from exc
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.writelines(f"{code}\n" for code in codes)
            file.flush()
            os.fsync(file.fileno())
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise CodeFileError(
            f"cannot write the codes to {output}: {exc.strerror or exc}; no code was stored"
        ) from exc
    return Path(name)


def publish(pending: Path, output: Path) -> None:
    """Give the written file its name (after the codes are committed)."""
    try:
        os.replace(pending, output)
    except OSError as exc:
        raise CodeFileError(
            f"the codes are stored, but {output} could not take their file "
            f"({exc.strerror or exc}); they are in {pending}: move it there"
        ) from exc
