"""Workflow commands in a step's log: what becomes an annotation, and what stays an ordinary line."""

from __future__ import annotations

from statemachines.workflow_commands import parse_line, parse_lines


def test_an_error_with_file_line_and_column_is_a_failure_annotation_on_one_line():
    found = parse_line("::error file=app.py,line=3,col=5::name 'x' is not defined", 7)
    assert found is not None and found.index == 7
    assert found.to_check() == {
        "path": "app.py", "start_line": 3, "end_line": 3, "annotation_level": "failure",
        "message": "name 'x' is not defined", "start_column": 5, "end_column": 5,
    }  # fmt: skip


def test_warning_and_notice_levels_titles_and_ranges():
    warning = parse_line("::warning file=src/a.py,line=2,endLine=4,col=1,title=Unused import::os")
    assert warning is not None
    check = warning.to_check()
    assert check is not None
    assert check["annotation_level"] == "warning" and check["title"] == "Unused import"
    assert (check["start_line"], check["end_line"]) == (2, 4) and "start_column" not in check
    notice = parse_line("  ::notice::deployed to staging")
    assert notice is not None and notice.level == "notice" and notice.message == "deployed to staging"
    assert notice.to_check() is None  # no file: GitHub's API has nowhere to put it


def test_escapes_are_those_of_the_actions_toolkit():
    found = parse_line("::error file=a%2Cb.py,title=x%3Ay::100%25 broken%0Asecond line %250A")
    assert found is not None
    assert found.file == "a,b.py" and found.title == "x:y"
    assert found.message == "100% broken\nsecond line %0A"


def test_other_lines_and_malformed_commands_are_not_annotations():
    lines = [
        "plain output",
        "::debug::not an annotation level",
        "::error file=app.py,line=abc::bad line number",
        "::set-output name=x::y",
        "echo ::error::quoted inside a command",
        ":: error::space",
    ]
    found = parse_lines(lines, start=10)
    assert [(a.index, a.line) for a in found] == [(12, None)]
    assert found[0].to_check() == {
        "path": "app.py", "start_line": 1, "end_line": 1, "annotation_level": "failure",
        "message": "bad line number",
    }  # fmt: skip
