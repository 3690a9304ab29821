"""Program files cannot make the reader build more than they say: aliases, nesting, size."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from ruamel.yaml.constructor import RoundTripConstructor
from ruamel.yaml.nodes import Node
from typer.testing import CliRunner

from core.cli import app
from core.program import yamlbounds
from core.program.yamlsource import ProgramIssue, SourceDocument, parse_document

runner = CliRunner()
PROJECT_PROGRAM = Path(__file__).resolve().parents[2] / "examples" / "program"


def billion_laughs(levels: int = 9) -> str:
    """The classic bomb: each level an anchored list of nine aliases to the level below."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels):
        aliases = ", ".join([f"*l{level - 1}"] * 9)
        lines.append(f"l{level}: &l{level} [{aliases}]")
    return "\n".join(lines) + "\n"


@pytest.fixture
def nothing_is_constructed(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Records every document ruamel would construct (build into Python values)."""
    constructed: list[object] = []
    original = RoundTripConstructor.construct_document

    def spy(self: RoundTripConstructor, node: object) -> object:
        constructed.append(node)
        return original(self, node)

    monkeypatch.setattr(RoundTripConstructor, "construct_document", spy)
    return constructed


def test_a_billion_laughs_is_refused_at_the_alias_before_anything_is_built(
    nothing_is_constructed: list[object],
) -> None:
    text = billion_laughs()
    assert len(text) < 1024

    issue = parse_document(text, file="program.yaml")

    assert isinstance(issue, ProgramIssue)
    assert "would expand to more than 10,000 values" in issue.message
    assert issue.hint and "alias" in issue.hint
    # aliases add 90, 819, 7,380 at levels 1-3; the first alias of level 4 (line 5) crosses
    assert (issue.line, issue.column) == (5, 10)
    assert nothing_is_constructed == []


def test_the_composer_counts_each_node_once_however_often_it_is_aliased(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    counted: list[object] = []
    shape = yamlbounds._shape

    def counting(node: Node, shapes: dict[int, tuple[int, int]]) -> tuple[int, int]:
        counted.append(node)
        return shape(node, shapes)

    monkeypatch.setattr(yamlbounds, "_shape", counting)

    parse_document(billion_laughs(), file="program.yaml")

    assert len(counted) < 60  # bounded work: the nodes written, not the 387 million expanded


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("a: &a [1, *a]\n", "alias *a is inside the value it refers to", 1),
        ("x: &x 1\n" + "".join(f"k{i}: *x\n" for i in range(101)), "more than 100 aliases", 102),
        ("x: " + "[" * 70 + "]" * 70 + "\n", "nested more than 64 levels deep", 1),
        (
            "a: &a " + "[" * 40 + "1" + "]" * 40 + "\nb: " + "[" * 30 + "*a" + "]" * 30 + "\n",
            "alias *a nests values more than 64 levels deep",
            2,
        ),
    ],
)
def test_aliases_and_nesting_past_the_bounds_are_positioned_errors(
    text: str, message: str, line: int
) -> None:
    issue = parse_document(text, file="program.yaml")

    assert isinstance(issue, ProgramIssue)
    assert message in issue.message
    assert issue.line == line
    assert issue.hint


def test_a_few_aliases_and_merge_keys_still_work() -> None:
    text = "base: &base {points: 10}\nrule:\n  <<: *base\n  name: x\nagain: *base\n"

    document = parse_document(text, file="program.yaml")

    assert isinstance(document, SourceDocument)
    assert document.data == {
        "base": {"points": 10},
        "rule": {"name": "x", "points": 10},
        "again": {"points": 10},
    }


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("a: 1\nb: x\x01y\n", "special characters are not allowed (U+0001)", 2),
        ("a: 2026-13-45\n", "month must be in 1..12", None),
    ],
)
def test_characters_and_values_yaml_cannot_read_are_issues(
    text: str, message: str, line: int | None
) -> None:
    issue = parse_document(text, file="program.yaml")

    assert isinstance(issue, ProgramIssue)
    assert message in issue.message
    assert issue.line == line


def _program_copy(tmp_path: Path) -> Path:
    program = tmp_path / "program"
    shutil.copytree(PROJECT_PROGRAM, program)
    return program


def test_check_fails_a_program_with_a_billion_laughs(tmp_path: Path) -> None:
    program = _program_copy(tmp_path)
    (program / "program.yaml").write_text(billion_laughs())

    result = runner.invoke(app, ["check", str(program)])

    assert result.exit_code == 1
    assert "program.yaml:5:10: YAML: aliases here would expand" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_program_file_over_2_mb_is_refused_naming_the_file_and_its_size(
    tmp_path: Path, nothing_is_constructed: list[object]
) -> None:
    program = _program_copy(tmp_path)
    huge = program / "campaigns" / "huge.yaml"
    huge.write_text("# padding\n" * 300_000)  # 3,000,000 bytes

    result = runner.invoke(app, ["check", str(program)])

    assert result.exit_code == 1
    assert "campaigns/huge.yaml: the file is 2.9 MB; program files are at most 2 MB" in (
        result.stderr
    )


def test_the_size_limit_is_checked_before_the_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"a: 1\n" * (yamlbounds.MAX_FILE_BYTES // 5 + 1))

    with pytest.raises(yamlbounds.SourceRefused, match="at most 2 MB"):
        yamlbounds.read_source(path)


def test_text_over_2_mb_is_refused_before_it_is_parsed(
    nothing_is_constructed: list[object],
) -> None:
    issue = parse_document("a: 1\n" * (yamlbounds.MAX_FILE_BYTES // 5 + 1), file="x.yaml")

    assert isinstance(issue, ProgramIssue)
    assert issue.message == "the file is 2.0 MB; program files are at most 2 MB"
    assert nothing_is_constructed == []


def test_a_program_file_that_is_not_a_regular_file_is_refused(tmp_path: Path) -> None:
    program = _program_copy(tmp_path)
    (program / "coupons.yaml").unlink()
    (program / "coupons.yaml").symlink_to("/dev/zero")

    result = runner.invoke(app, ["check", str(program)])

    assert result.exit_code == 1
    assert "coupons.yaml: not a regular file" in result.stderr
