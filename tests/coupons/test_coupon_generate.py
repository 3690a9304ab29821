"""`coupons generate`: bounded per call, and its file never out of step with the stored codes."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select
from typer.testing import CliRunner

from core.cli import app
from core.program.loader import load_program
from coupons import code_files
from coupons.code_files import generate_code_file
from coupons.codes import MAX_CODES_PER_CALL
from coupons.errors import CodeFileError, TooManyCodes
from coupons.tables import coupon_codes
from coupons.wallet import generate_coupon_codes

NOW = datetime(2026, 11, 5, 4, 0, tzinfo=UTC)
runner = CliRunner()


def _open_ended_coupon(program: Any) -> str:
    """A coupon of the program that can be issued at any time."""
    return next(c.id for c in program.coupons.values() if c.valid_between is None)


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """A directory of its own for the codes (the SQLite database lives in tmp_path)."""
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def _stored(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(select(coupon_codes.c.code)).scalars())


@pytest.mark.parametrize("count", [0, -1, MAX_CODES_PER_CALL + 1, 10**30])
def test_a_call_for_too_many_codes_is_refused_before_any_is_made(
    engine: Engine, program: Any, count: int
) -> None:
    refused = pytest.raises(TooManyCodes, match="give 1 to 1,000,000")
    with refused, engine.begin() as conn:
        generate_coupon_codes(
            conn, program, coupon_id=_open_ended_coupon(program), count=count, now=NOW
        )

    assert _stored(engine) == []


def test_the_file_lists_exactly_the_stored_codes(engine: Engine, program: Any, out: Path) -> None:
    output = out / "codes.txt"

    codes = generate_code_file(
        engine, program, coupon_id=_open_ended_coupon(program), count=25, output=output, now=NOW
    )

    assert output.read_text(encoding="utf-8").splitlines() == codes
    assert sorted(codes) == _stored(engine)
    assert os.listdir(out) == ["codes.txt"]  # no temporary file left


@pytest.mark.parametrize("where", ["missing/codes.txt", "."])
def test_a_file_that_cannot_be_written_stores_no_code(
    engine: Engine, program: Any, out: Path, where: str
) -> None:
    with pytest.raises(CodeFileError, match=r"cannot write the codes|is a directory"):
        generate_code_file(
            engine,
            program,
            coupon_id=_open_ended_coupon(program),
            count=5,
            output=out / where,
            now=NOW,
        )

    assert _stored(engine) == []


def test_a_failed_commit_leaves_no_file(engine: Engine, program: Any, out: Path) -> None:
    def refuse(_conn: Any) -> None:
        raise RuntimeError("the database went away")

    event.listen(engine, "commit", refuse)
    try:
        with pytest.raises(RuntimeError, match="went away"):
            generate_code_file(
                engine,
                program,
                coupon_id=_open_ended_coupon(program),
                count=5,
                output=out / "codes.txt",
                now=NOW,
            )
    finally:
        event.remove(engine, "commit", refuse)

    assert os.listdir(out) == []
    assert _stored(engine) == []


def test_stored_codes_whose_file_cannot_take_its_name_are_kept_in_the_written_file(
    engine: Engine, program: Any, out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(_src: Any, _dst: Any) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(code_files.os, "replace", refuse)

    with pytest.raises(CodeFileError, match="the codes are stored") as raised:
        generate_code_file(
            engine,
            program,
            coupon_id=_open_ended_coupon(program),
            count=5,
            output=out / "codes.txt",
            now=NOW,
        )

    [written] = list(out.iterdir())
    assert str(written) in str(raised.value)
    assert sorted(written.read_text(encoding="utf-8").splitlines()) == _stored(engine)


def _command_coupon() -> str:
    return _open_ended_coupon(load_program(Path(os.environ["LOYALTY_PROGRAM_DIR"])))


@pytest.mark.parametrize(
    ("count", "output", "message"),
    [
        ("1000001", None, "cannot generate 1000001 codes in one call: give 1 to 1,000,000"),
        ("5", "/nonexistent/x", "cannot write the codes to /nonexistent/x"),
    ],
)
def test_the_command_refuses_in_one_line_and_stores_nothing(
    cli_env: Path, engine: Engine, count: str, output: str | None, message: str
) -> None:
    args = ["coupons", "generate", _command_coupon(), count]
    result = runner.invoke(app, [*args, *(["-o", output] if output else [])])

    assert result.exit_code == 1, result.output
    assert message in result.stderr and result.stderr.strip().count("\n") == 0
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(coupon_codes)).scalar_one() == 0


def test_the_command_writes_the_file_it_names(cli_env: Path, engine: Engine) -> None:
    result = runner.invoke(app, ["coupons", "generate", _command_coupon(), "7", "-o", "c.txt"])

    assert result.exit_code == 0, result.output
    assert sorted((cli_env / "c.txt").read_text(encoding="utf-8").splitlines()) == _stored(engine)
