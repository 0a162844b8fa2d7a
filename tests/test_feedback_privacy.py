"""Feedback that cannot carry hidden tests, whatever a submission prints.

Fast tests check the parts of tools/grading_feedback.py: which author-written message
a failing test shows, the built-in exception names, the timeout text, the outputs
taken from the submitted notebook, and the last safety net. Every assert of every
test cell of every solution notebook has a message (the feedback shows it).

The slow test runs the documented cycle (generate_assignment, nbgrader autograde,
nbgrader generate_feedback) on notebook 00 in a throw-away course with a class of
attack submissions: each one tries to get the hidden tests into its feedback (printing
``In``, raising them as an error, naming an exception class after them, encoding them,
an IPython hook that prints every cell), and one games the test with an int whose
``==`` is always true. No feedback may hold a hidden-test line or a hidden number,
while an honest submission's feedback still shows its outputs and its score.
"""
from __future__ import annotations

import ast
import base64
import html
import re
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_output

from conftest import (ASSIGNMENTS, ROOT, ensure_grading_sandbox, is_test_cell, nbgrader_meta, read, solution_path,
                      student_path)
from grading_feedback import (ELLIPSIS, ERROR_TEXT, HIDDEN_NOTE, LINE_WITHHELD, OUTPUT_WITHHELD,
                              PASSED, assert_templates, hidden_lines, matching_message, message_template, scrub_cell,
                              submitted_outputs, timed_out, timeout_of, timeout_text, verdict, verdict_output)
from test_grading import Course, grades, nbgrader, solved, submit
from test_wrong_answers import wrong_answers

AID = "00_start_here"

# Notebooks whose test cells still hold an assert without a message; each is being
# given messages, and leaves this list when it has them.
ASSERTS_WITHOUT_MESSAGE_PENDING: set[str] = set()


# ---------------------------------------------------------------- every assert has a message

def bare_asserts(aid: str) -> list[str]:
    found = []
    for cell in read(solution_path(aid)).cells:
        if not is_test_cell(cell):
            continue
        for node in ast.walk(ast.parse(cell.source)):
            template = message_template(node.msg) if isinstance(node, ast.Assert) else None
            # a message the feedback can show: a string, or an f-string with some fixed text
            if isinstance(node, ast.Assert) and (template is None or not template[0].replace(ELLIPSIS, "").strip()):
                found.append(f"{nbgrader_meta(cell)['grade_id']} line {node.lineno}: assert {ast.unparse(node.test)}")
    return found


@pytest.mark.parametrize("aid", ASSIGNMENTS)
def test_every_assert_of_every_test_cell_has_a_message(aid):
    if aid in ASSERTS_WITHOUT_MESSAGE_PENDING:
        pytest.xfail(f"{aid}: messages for its asserts are still being written")
    assert not bare_asserts(aid), f"{aid}: asserts without a message or with no fixed text (the feedback has nothing to show): " \
                                  f"{bare_asserts(aid)}"


# ---------------------------------------------------------------- the verdict of a test cell

SOURCE = '''k = f(2)
assert type(k) is int, f"f should return an int, not {type(k).__name__}"
assert k == 4, "f(2) is 4"
### BEGIN HIDDEN TESTS
assert f(7) == 49, "a larger hidden argument"
assert f(9) == 81, f"{k}"
assert f(11) == 121
### END HIDDEN TESTS
'''


def test_templates_are_the_author_messages_with_each_field_as_an_ellipsis():
    assert [t[1] for t in assert_templates(SOURCE)] == [
        f"f should return an int, not {ELLIPSIS}", "f(2) is 4", "a larger hidden argument", ELLIPSIS]
    assert assert_templates("def oops(:") == []


@pytest.mark.parametrize("evalue, shown", [
    ("f(2) is 4", "f(2) is 4"),  # a literal message: exactly
    ("a larger hidden argument", "a larger hidden argument"),
    ("f should return an int, not MyInt", f"f should return an int, not {ELLIPSIS}"),  # the field is never shown
    ("f should return an int, not assert f(11) == 121", f"f should return an int, not {ELLIPSIS}"),
    ("f(2) is 4 and more", None),  # a literal must match exactly
    ("assert f(11) == 121", None),  # "{k}" alone fits anything: never used
    ("", None),
])
def test_a_message_is_shown_only_when_the_error_fits_its_template(evalue, shown):
    assert matching_message(SOURCE, evalue) == shown


def error_cell(ename, evalue, seconds=None):
    cell = new_code_cell("x", outputs=[new_output("stream", name="stdout", text="assert f(11) == 121\n"),
                                       new_output("error", ename=ename, evalue=evalue, traceback=[evalue])])
    if seconds is not None:
        cell.metadata["execution"] = {"iopub.execute_input": "2026-01-01T10:00:00.000000Z",
                                      "shell.execute_reply": f"2026-01-01T10:00:{seconds:02d}.500000Z"}
    return cell


def test_timeouts_say_how_long_the_limit_was():
    assert timeout_text(60) == "timed out after 60 s" and timeout_text(2.5) == "timed out after 2.5 s"
    assert verdict(error_cell("CellTimeoutError", ""), SOURCE, 60) == (False, "timed out after 60 s")
    # the kernel's answer to the interrupt, after the limit
    assert verdict(error_cell("KeyboardInterrupt", "", seconds=30), SOURCE, 30) == (False, "timed out after 30 s")
    # a KeyboardInterrupt the learner raised at once is not a timeout
    assert not timed_out("KeyboardInterrupt", error_cell("KeyboardInterrupt", "", seconds=1), 30)
    assert verdict(error_cell("KeyboardInterrupt", "", seconds=1), SOURCE, 30)[1] == ERROR_TEXT


def test_the_timeout_comes_from_the_config():
    from traitlets.config import Config

    c = Config()
    assert timeout_of(c) == 30  # nbgrader's default
    c.ExecutePreprocessor.timeout = 60
    assert timeout_of(c) == 60
    c.Execute.timeout = 5
    assert timeout_of(c) == 5


def test_the_report_reads_the_timeout_from_the_course_config(tmp_path):
    from grading_feedback import configured_timeout

    assert configured_timeout(tmp_path) == 30  # no config: nbgrader's default
    assert configured_timeout(ROOT) == 60
    # a config that does not load on this machine (a check that raises): its line is read
    (tmp_path / "nbgrader_config.py").write_text("c = get_config()\nc.ExecutePreprocessor.timeout = 45\n"
                                                 "raise RuntimeError('not here')\n")
    assert configured_timeout(tmp_path) == 45


@pytest.mark.parametrize("ename, evalue, text", [
    ("AssertionError", "a larger hidden argument", "AssertionError: a larger hidden argument"),
    ("AssertionError", "assert f(11) == 121", ERROR_TEXT),
    ("ValueError", "assert f(11) == 121", ERROR_TEXT),
    ("ZeroDivisionError", "", ERROR_TEXT),  # the error's name is not shown either: it could be chosen to spell a hidden line
    ("assert f(11) == 121", "", ERROR_TEXT),
])
def test_a_failing_test_shows_only_text_the_course_wrote(ename, evalue, text):
    passed, shown = verdict(error_cell(ename, evalue), SOURCE, 60)
    assert (passed, shown) == (False, text)
    out = verdict_output(passed, shown)
    assert "121" not in str(out) and text in "".join(out["traceback"])


def test_a_passing_test_shows_passed_and_none_of_its_output():
    cell = new_code_cell("x", outputs=[new_output("stream", name="stdout", text="assert f(11) == 121\n")])
    assert verdict(cell, SOURCE, 60) == (True, PASSED)
    cell.outputs.append(new_output("stream", name="stderr", text="a warning\n"))
    assert verdict(cell, SOURCE, 60)[0] is False


def test_learner_cells_take_the_outputs_they_were_submitted_with():
    ran = [new_code_cell("a = 1", outputs=[new_output("stream", name="stdout", text="graded run\n")]),
           new_code_cell("print(In)", outputs=[new_output("stream", name="stdout", text="hidden\n")]),
           new_code_cell("b = 2"), new_code_cell("c = 3")]
    sent = [new_code_cell("a = 1", outputs=[new_output("stream", name="stdout", text="mine\n")]),
            new_code_cell("print(In)", outputs=[new_output("stream", name="stdout", text="my In\n")]),
            new_code_cell("b = 2", outputs=[new_output("stream", name="stdout", text="by position\n")]),
            new_code_cell("other", outputs=[new_output("stream", name="stdout", text="not this\n")])]
    ran[1]["id"] = sent[1]["id"] = "same-id"
    ran[0]["id"], sent[0]["id"] = "x1", "x1"
    for cell in ran[2:] + sent[2:]:
        del cell["id"]
    got = submitted_outputs(ran, sent)
    assert [o[0]["text"] if o else o for o in got] == ["mine\n", "my In\n", "by position\n", None]
    # a test cell the autograder re-added shifts positions: matched in order by source
    readded = [ran[0], new_code_cell("assert True"), ran[2], ran[3]]
    del readded[1]["id"]
    got = submitted_outputs(readded, sent)
    assert [o[0]["text"] if o else o for o in got] == ["mine\n", None, "by position\n", None]


def test_the_safety_net_withholds_any_hidden_line():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(SOURCE)])
    secrets = hidden_lines(nb)
    assert 'assert f(7) == 49, "a larger hidden argument"' in secrets and "assert f(11) == 121" in secrets
    assert not any("f(2) is 4" in s for s in secrets)  # visible lines are not secret
    cell = new_code_cell("x = 1\n    assert f(11) == 121\ny = 2", outputs=[
        new_output("stream", name="stdout", text="ok\n"),
        new_output("display_data", data={"text/html": "<pre>assert f(11) <b>==</b> 121</pre>"}),
        new_output("execute_result", data={"text/plain": "'assert  f(11)\\n == 121'"}),  # repr: not this one
        new_output("error", ename="E", evalue="assert f(11) == 121", traceback=[]),
    ])
    scrub_cell(cell, secrets)
    assert cell.source == f"x = 1\n    {LINE_WITHHELD}\ny = 2"
    texts = [o.get("text") for o in cell.outputs]
    assert texts == ["ok\n", OUTPUT_WITHHELD, None, OUTPUT_WITHHELD]


# ---------------------------------------------------------------- attacks through the documented cycle

ANSWER = solved(next(c.source for c in read(solution_path(AID)).cells if nbgrader_meta(c).get("solution")))
CHEAT = next(code for name, code in wrong_answers(AID)["practice-solution"].items() if "__eq__" in code)
SHELL = "get_ipython().user_ns"
TIMEOUT = 15  # the per-cell limit of the throw-away course, so the endless loop ends soon

# name: (answer cell, cells added after the test cell, does the grading run print hidden lines?)
ATTACKS = {
    "print-in": (ANSWER, ["print(In)\nprint(_ih[-2])",
                          "from IPython.display import HTML, display\ndisplay(HTML('<pre>' + '\\n'.join(In) + '</pre>'))"],
                 True),
    "raise-in": (ANSWER + f"\n\ndef decays_needed(*args):\n    raise AssertionError({SHELL}['In'][-1])\n", [], False),
    "raise-fitting-template": (ANSWER + "\n\ndef decays_needed(*args):\n    raise AssertionError('decays_needed should "
                               f"return a Python int (wrap it in int(...)), not ' + {SHELL}['In'][-1])\n", [], False),
    "raise-builtin": (ANSWER + f"\n\ndef decays_needed(*args):\n    raise ValueError({SHELL}['In'][-1])\n", [], False),
    "class-name": (ANSWER + "\n\ndef decays_needed(*args):\n"
                   f"    lines = [l for l in {SHELL}['In'][-1].splitlines() if 'assert' in l]\n"
                   "    raise type(lines[-1], (Exception,), {})()\n", [], False),
    "base64": (ANSWER + "\n\nimport base64\n_real = decays_needed\n\ndef decays_needed(*args):\n"
               f"    print(base64.b64encode({SHELL}['In'][-1].encode()).decode())\n    return _real(*args)\n",
               ["import base64\nprint(base64.b64encode('\\n'.join(In).encode()).decode())"], True),
    "hook": (ANSWER + "\n\nimport sys\nget_ipython().events.register('post_run_cell', "
             "lambda result: print(result.info.raw_cell, file=sys.stderr))\n", ["x = 1"], True),
    "timeout": ("def decays_needed(*args):\n    while True:\n        pass\n", [], False),
    "int-cheat": (CHEAT, [], False),
}
OWN_OUTPUT = "learner's own output of cell {}"


def attack_notebook(answer: str, extra: list[str]):
    """The released notebook with ``answer`` in the answer cell and ``extra`` cells after the test cell.

    Every learner cell carries an output the learner "saw" (made without any hidden test).
    """
    nb = read(student_path(AID))
    for i, cell in enumerate(nb.cells):
        meta = nbgrader_meta(cell)
        if meta.get("solution") and cell.cell_type == "code":
            cell.source = answer
            cell.outputs = [new_output("stream", name="stdout", text=OWN_OUTPUT.format("answer") + "\n")]
        if is_test_cell(cell):
            at = i + 1
    for k, code in enumerate(extra):
        nb.cells.insert(at + k, new_code_cell(code, outputs=[
            new_output("stream", name="stdout", text=OWN_OUTPUT.format(k) + "\n")]))
    return nb


def hidden_tokens() -> set[str]:
    """Hidden lines and hidden numbers: text of the hidden region that the student notebook does not hold."""
    source = next(c.source for c in read(solution_path(AID)).cells if is_test_cell(c))
    region = re.search(r"### BEGIN HIDDEN TESTS(.*?)### END HIDDEN TESTS", source, flags=re.S).group(1)
    visible = source.replace(region, "")
    numbers = set(re.findall(r"\d+(?:\.\d+)?(?:e-?\d+)?", region)) - set(re.findall(r"[\d.e-]+", visible))
    lines = {l.strip() for l in region.splitlines() if len(l.strip()) >= 12}
    student = nbformat.writes(read(student_path(AID)))
    # "11" or "1.0" are everywhere in a page, and a number the learner is shown is not hidden
    return {t for t in lines | {n for n in numbers if len(n) >= 4} if t not in student}


def page_text(path: Path) -> tuple[str, str]:
    raw = path.read_text(encoding="utf-8")
    return raw, html.unescape(re.sub(r"<[^>]+>", "", raw))


@pytest.fixture(scope="module")
def attacked(tmp_path_factory):
    ensure_grading_sandbox()  # autograde runs every submission in it
    course = Course(tmp_path_factory.mktemp("feedback-privacy") / "course")
    root = course.root
    with (root / "nbgrader_config.py").open("a") as f:
        f.write(f"\nc.ExecutePreprocessor.timeout = {TIMEOUT}\n")
    nbgrader(root, "generate_assignment", AID, "--force")
    submit(root, "honest", AID, read(solution_path(AID)))
    for name, (answer, extra, _) in ATTACKS.items():
        submit(root, name, AID, attack_notebook(answer, extra))
    nbgrader(root, "autograde", AID)
    nbgrader(root, "generate_feedback", AID)
    return root


@pytest.mark.slow
def test_the_tokens_are_really_hidden():
    tokens = hidden_tokens()
    assert {"0.0011", "3e-4", "1e-4", "0.0005"} <= tokens, tokens
    assert "k = decays_needed(1.0, 0.1, 0.0011)" in tokens


@pytest.mark.slow
@pytest.mark.parametrize("student", ["honest", *ATTACKS])
def test_no_feedback_holds_a_hidden_line_or_number(attacked, student):
    raw, text = page_text(attacked / "feedback" / student / AID / f"{AID}.html")
    tokens = hidden_tokens()
    leaked = [t for t in tokens if t in text or t in raw or html.escape(t) in raw]
    assert not leaked, f"{student}'s feedback holds hidden tokens: {leaked}"
    encoded = [base64.b64encode(line.encode()).decode()[:24] for line in tokens if len(line) > 20]
    assert not [e for e in encoded if e in raw]
    assert HIDDEN_NOTE in text


@pytest.mark.slow
@pytest.mark.parametrize("student", [name for name, (_, _, prints) in ATTACKS.items() if prints])
def test_the_attacks_did_print_hidden_tests_in_the_grading_run(attacked, student):
    """Without the filter they would leak: the autograded notebook holds them (or their encoding)."""
    ran = (attacked / "autograded" / student / AID / f"{AID}.ipynb").read_text(encoding="utf-8")
    decoded = ran + "".join(base64.b64decode(m + "==").decode("utf-8", "replace")
                            for m in re.findall(r"[A-Za-z0-9+/]{80,}", ran))
    assert any(t in decoded for t in hidden_tokens() if len(t) > 12)


@pytest.mark.slow
@pytest.mark.parametrize("student", [name for name, (_, extra, _) in ATTACKS.items() if extra])
def test_learner_cells_show_what_was_submitted(attacked, student):
    _, text = page_text(attacked / "feedback" / student / AID / f"{AID}.html")
    for k in range(len(ATTACKS[student][1])):
        assert OWN_OUTPUT.format(k) in text
    assert OWN_OUTPUT.format("answer") in text


@pytest.mark.slow
def test_each_failure_says_what_the_course_wrote(attacked):
    def shown(student):
        return page_text(attacked / "feedback" / student / AID / f"{AID}.html")[1]

    assert ERROR_TEXT in shown("raise-in")
    assert f"decays_needed should return a Python int (wrap it in int(...)), not {ELLIPSIS}" in \
        shown("raise-fitting-template")
    assert ERROR_TEXT in shown("raise-builtin") and "raised ValueError" not in shown("raise-builtin")
    assert ERROR_TEXT in shown("class-name")
    assert f"timed out after {TIMEOUT} s" in shown("timeout")
    assert "decays_needed should return a Python int (wrap it in int(...)), not" in shown("int-cheat")
    assert PASSED in shown("base64") and PASSED in shown("honest")


@pytest.mark.slow
def test_honest_feedback_keeps_outputs_and_score_and_cheats_score_zero(attacked):
    raw, text = page_text(attacked / "feedback" / "honest" / AID / f"{AID}.html")
    assert "Score: 1.0 / 1.0" in text
    solution = read(solution_path(AID))
    printed = [o["text"].strip().splitlines()[0] for c in solution.cells if c.cell_type == "code" and not is_test_cell(c)
               for o in c.get("outputs", []) if o.get("output_type") == "stream" and o.get("text", "").strip()]
    assert printed, "the solution notebook prints something"
    assert all(html.unescape(line) in text for line in printed), printed
    assert raw.count("<img") >= sum(1 for c in solution.cells for o in c.get("outputs", [])
                                    if "image/png" in o.get("data", {}))
    scores = grades(attacked)
    assert scores["honest", AID, "practice-tests"][0] == 1
    for student in ("int-cheat", "timeout", "raise-in", "class-name"):
        assert scores[student, AID, "practice-tests"][0] == 0, student


@pytest.mark.slow
def test_the_report_lists_the_attacks_as_suspicious_and_names_the_timeout(attacked, tmp_path):
    from test_course_commands import course_py

    done = course_py("report", "00", "--course", str(attacked), "--out", str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    flagged = report.split("## Suspicious submissions", 1)[1].split("\n## ", 1)[0]  # up to the next section
    for student in ("print-in", "raise-in", "raise-fitting-template", "raise-builtin", "class-name", "base64",
                    "hook", "int-cheat"):
        assert f"**{student}**" in flagged, student
    assert "**honest**" not in flagged and "**timeout**" not in flagged
    assert "overrides __eq__" in flagged and "events.register" in flagged
    import csv

    rows = {r["student"]: r for r in csv.DictReader((tmp_path / "scores.csv").open(encoding="utf-8"))}
    assert rows["timeout"]["message"] == rows["timeout"]["error"] == f"timed out after {TIMEOUT} s"
    assert "overrides __eq__" in rows["int-cheat"]["suspicious"] and rows["honest"]["suspicious"] == ""
    assert "KeyboardInterrupt" not in report and "CellTimeoutError" not in report
