"""No input makes a command print a traceback: every command, given hostile arguments, exits
0, 1 (one line of error on stderr) or 2 (click's usage message).

Commands run in-process on a real SQLite database holding the example scenario. A command
that lets an exception through hits the safety net of ``core.cli.app``, which exits 3
(``INTERNAL_ERROR``) and says "internal error": the property asserts that never happens.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cli_contract import assert_clean_exit
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from core.cli import app
from core.program import loader

runner = CliRunner()
PROJECT_EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SCENARIO = PROJECT_EXAMPLES / "events" / "scenario.jsonl"

# Commands with slots ({kind}) that the strategies below fill. Left out: `scheduler` (runs until
# stopped) and `demo` (runs the whole scenario; its bad --dir has its own test). `serve` runs
# until stopped too, so it gets only a port or worker count it refuses (and a guard fails the
# test should it ever start).
TEMPLATES: list[tuple[str, ...]] = [
    ("check", "{dir}"),
    ("check", "{dir}", "--json"),
    ("schema", "{text}"),
    ("schema", "--out", "{out}"),
    ("tick", "--until", "{tick}", "--from", "{instant}"),
    ("tick", "--until", "{tick}", "--json"),
    ("worker", "--processes", "{int}", "--threads", "{int}"),
    ("events", "ingest", "{events}"),
    ("events", "ingest", "{events}", "--json", "--no-program"),
    ("events", "ingest", "{events}", "--replay"),
    ("events", "rejected", "--limit", "{int}"),
    ("events", "rejected", "--json"),
    ("events", "failures", "--limit", "{int}"),
    ("events", "retry", "{text}"),
    ("events", "retry", "--all", "--json"),
    ("db", "upgrade"),
    ("members", "show", "{member}"),
    ("members", "show", "{member}", "--json"),
    ("points", "redeem", "{member}", "{int}", "--order", "{text}", "--total", "{money}"),
    ("points", "redeem", "{member}", "{int}", "--order", "{text}", "--total", "{money}", "--json"),
    ("points", "adjust", "{member}", "{int}", "--reason", "{text}"),
    ("points", "expire"),
    ("points", "verify", "--json"),
    ("points", "refused", "--member", "{member}", "--limit", "{int}"),
    ("points", "refused", "--json"),
    ("tiers", "recalc", "--dry-run"),
    ("coupons", "eligible", "{member}", "--cart", "{cart}"),
    ("coupons", "issue", "{coupon}", "{member}", "--key", "{text}"),
    ("coupons", "generate", "{coupon}", "{count}", "-o", "{out}"),
    ("coupons", "expire"),
    ("coupons", "refused", "--member", "{member}", "--order", "{text}", "--limit", "{int}"),
    ("notifications", "unsubscribe", "{text}"),
    ("notifications", "replay", "--message", "{text}"),
    ("notifications", "log", "--member", "{member}", "--limit", "{int}"),
    ("keys", "create", "{text}", "--scope", "{scope}"),
    ("keys", "create", "{text}", "--scope", "{scope}", "--scope", "{scope}", "--json"),
    ("keys", "create", "{text}"),
    ("keys", "list"),
    ("keys", "list", "--json"),
    ("keys", "revoke", "{key}"),
    ("serve", "--port", "{bad_port}"),
    ("serve", "--host", "{text}", "--port", "{bad_port}", "--workers", "{int}"),
    ("serve", "--workers", "{bad_workers}"),
]

_NUMBERS = ["0", "-1", "-0", "1e3", "0x10", "1_000", " 7", "", "٣", "NaN", "inf", "1.5", "+5"]
_HUGE = ["2147483648", "9223372036854775807", "9223372036854775808", "10" * 30, "9" * 5000]
_MONEY = ["1e9999", "-1e9999", "NaN", "sNaN", "Infinity", "-Infinity", "1e-9999", "0.001"]
_MONEY += ["0", "-5", "99999999999999999999.99", "9999999999999999.99", "1,000.00", "1e2"]
_TEXT = ["", " ", "[/]", "[bold]x", "%s", "'; DROP TABLE members; --", "a" * 500, "\n", "-"]
_TEXT += ["\udcff", "x\x07y", "--", "😀" * 30, "-v", "--json"]
_INSTANTS = ["2026-11-20", "2026-11-20T10:00", "2026-11-20T10:00:00.123456", "next friday", ""]
_INSTANTS += ["0001-01-01T00:00:00+00:00", "9999-12-31T23:59:59-14:00", "2026-02-30T00:00:00Z"]
_INSTANTS += ["2026-11-20T10:00:00+25:00", "2999-12-31T00:00:00Z", "1970-01-01T00:00:00Z"]
_INSTANTS += ["2026-W47-5T10:00Z", "2026-11-20T10:00:00.5+08:00"]
# Refused by click (no int() reading " 7", "+5", "1_000" or "٣" as a number in range).
_BAD_PORTS = ["0", "65536", "-1", "x", "", "1e3", "8000.5", "0x10", "NaN", "--json", "٣٣٣٣٣٣"]
_SCOPES = ["events", "checkout", "admin"]
_MEMBERS = ["m-lin", "m-zhao", "m-ivy", "m-mei", "m-sam", "m-nobody"]
_COUPONS = ["first-brew-15", "welcome-back-20", "free-shipping", "birthday-pot", "no-such"]


def _valid_or(valid: list[str], *hostile: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Half the time a value the command accepts, so a hostile value in another slot of the
    same command is reached; otherwise something hostile."""
    return st.one_of(st.sampled_from(valid), st.one_of(*hostile))


def _texts() -> st.SearchStrategy[str]:
    printable = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
    return st.one_of(st.sampled_from(_TEXT), st.text(printable, max_size=40))


def _slots(paths: dict[str, list[str]], key_id: str) -> dict[str, st.SearchStrategy[str]]:
    """A strategy per slot kind; ``paths`` holds the hostile files made for this test,
    ``key_id`` an API key that exists."""
    near = st.datetimes(
        min_value=datetime(2025, 1, 1), max_value=datetime(2027, 1, 1), timezones=st.just(UTC)
    ).map(datetime.isoformat)
    return {
        "int": _valid_or(
            ["1", "5", "500", "-5", "2000"],
            st.sampled_from(_NUMBERS + _HUGE),
            st.integers(-(10**25), 10**25).map(str),
        ),
        "count": _valid_or(["1", "3"], st.sampled_from(["0", "-3", "1e3", "x", "1.5", ""])),
        "money": _valid_or(
            ["9.90", "828.00", "5000.00"],
            st.sampled_from(_MONEY),
            st.decimals(allow_nan=True).map(str),
            st.floats().map(str),
        ),
        "text": _valid_or(["o-new", "a reason", "x"], _texts()),
        "member": _valid_or(_MEMBERS, _texts()),
        "coupon": _valid_or(_COUPONS, _texts()),
        "instant": _valid_or(["2026-11-20T10:00:00+08:00"], st.sampled_from(_INSTANTS), near),
        # tick only moves the engine's clock forward: stay near the scenario so ticks are short
        "tick": _valid_or(paths["tick"], st.sampled_from(_INSTANTS[:5])),
        "events": _valid_or(paths["events"], st.sampled_from(paths["file"])),
        "cart": _valid_or(paths["cart"], st.sampled_from(paths["file"])),
        "dir": _valid_or(paths["program"], st.sampled_from(paths["dir"])),
        "out": st.sampled_from(paths["out"]),
        "scope": _valid_or(_SCOPES, st.sampled_from(["ADMIN", "read", "events,admin"]), _texts()),
        "key": _valid_or([key_id], st.sampled_from(["le_x", key_id.upper()]), _texts()),
        "bad_port": st.one_of(
            st.sampled_from(_BAD_PORTS),
            st.integers(max_value=0).map(str),
            st.integers(min_value=65_536).map(str),
        ),
        "bad_workers": st.one_of(
            st.sampled_from(["0", "257", "-3", "x", "1.5"]),
            st.integers(min_value=257).map(str),
        ),
    }


def _hostile_paths(root: Path) -> dict[str, list[str]]:
    """Files and folders a user might point a command at by mistake, made under ``root``."""
    files = root / "files"
    files.mkdir()
    scenario = SCENARIO.read_text().splitlines()
    cart = {"items": [{"sku": "K", "category": "kitchen", "price": "9.90", "qty": 1}]}
    absurd_cart = {"items": [{"sku": "K", "price": "NaN", "qty": 1e9}], "total": "1e9999"}
    writes = {
        "events.jsonl": "\n".join(scenario[:3]) + "\n",
        "cart.json": json.dumps(cart),
        "cart-nan.json": json.dumps(absurd_cart),
        "cart-list.json": "[]",
        "null.json": "null",
        "deep.json": "[" * 100_000,
        "empty.json": "",
        "bad.jsonl": '{"id": "x", "type": "order.paid"\n{oops\n[/]\n',
    }
    for name, text in writes.items():
        (files / name).write_text(text)
    (files / "binary.bin").write_bytes(bytes(range(256)) * 4)
    (files / "locked.json").write_text("{}")
    os.chmod(files / "locked.json", 0)  # unreadable (except to root)
    (files / "folder").mkdir()
    (files / "loop").symlink_to(files / "loop")
    listed = [
        str(files / name) for name in [*writes, "binary.bin", "locked.json", "folder", "loop"]
    ]
    listed += [str(files / "missing.json"), str(files / "events.jsonl" / "x"), "/dev/null", "/"]
    listed += ["x" * 300, "-"]
    valid_program, *bad_programs = _program_dirs(root)
    return {
        "file": listed,
        "events": [
            str(files / "events.jsonl"),
            str(PROJECT_EXAMPLES / "events" / "scenario.jsonl"),
        ],
        "cart": [str(files / "cart.json")],
        "program": [valid_program],
        "dir": [*bad_programs, str(files / "cart.json"), str(files / "missing"), "/"],
        "out": [str(root / "new-out"), str(files / "cart.json"), "/dev/full", "/proc/x/y", "/"],
        "tick": ["2026-12-01T00:00:00+08:00", "2026-12-03T00:00:00Z", "2026-11-01T00:00:00Z"],
    }


def _program_dirs(root: Path) -> list[str]:
    valid = root / "program"
    shutil.copytree(PROJECT_EXAMPLES / "program", valid)
    broken = root / "broken-program"
    shutil.copytree(valid, broken)
    (broken / "program.yaml").write_text("tiers: [\n")
    bomb = root / "bomb-program"
    shutil.copytree(valid, bomb)
    laughs = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for below, level in zip("abcdefg", "bcdefgh", strict=True):
        laughs.append(f"{level}: &{level} [{', '.join([f'*{below}'] * 9)}]")
    (bomb / "coupons.yaml").write_text("\n".join(laughs) + "\n")
    empty = root / "empty-program"
    empty.mkdir()
    return [str(valid), str(broken), str(bomb), str(empty)]


@pytest.fixture
def hostile(cli_env: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, st.SearchStrategy[str]]:
    """The example scenario ingested and ticked once; strategies for every slot."""
    monkeypatch.setenv("LOYALTY_PROGRAM_DIR", str(PROJECT_EXAMPLES / "program"))
    # Loading the program is the same work every run; do it once per directory (speed only).
    monkeypatch.setattr(loader, "load_program", functools.lru_cache(loader.load_program))
    runner.invoke(app, ["events", "ingest", str(SCENARIO)])
    ticked = runner.invoke(app, ["tick", "--until", "2026-11-30T00:00:00+08:00"])
    assert ticked.exit_code == 0, ticked.output
    created = runner.invoke(app, ["keys", "create", "shop", "--scope", "admin", "--json"])
    assert created.exit_code == 0, created.output
    monkeypatch.setattr("core.http.serving.serve", _never_serve)
    return _slots(_hostile_paths(cli_env), json.loads(created.stdout)["key_id"])


def _never_serve(*args: object, **kwargs: object) -> None:
    pytest.fail("serve started a server on arguments it should have refused")


@st.composite
def command_lines(draw: st.DrawFn, slots: dict[str, st.SearchStrategy[str]]) -> list[str]:
    """A command from TEMPLATES with its slots filled, maybe after hostile global options."""
    args: list[str] = []
    if draw(st.booleans()):
        args += ["--now", draw(slots["instant"])]
    if draw(st.integers(0, 4)) == 0:
        args += ["--program", draw(slots["dir"])]
    for part in draw(st.sampled_from(TEMPLATES)):
        args.append(draw(slots[part[1:-1]]) if part.startswith("{") else part)
    return args


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_no_argument_makes_any_command_print_a_traceback(
    hostile: dict[str, st.SearchStrategy[str]],
) -> None:
    @settings(
        max_examples=250,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(args=command_lines(hostile))
    def run(args: list[str]) -> None:
        assert_clean_exit(args, runner.invoke(app, args))

    run()
