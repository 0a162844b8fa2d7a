"""tools/suspicious.py: the learner-written cells of a submission, scanned for reaches into the grading.

Each pattern the guide lists is flagged with its cell, line and a reason; an honest
answer to every exercise of every notebook is not flagged; the course's own cells
(locked cells, test cells, untouched stubs) are never scanned, whatever their
metadata says.
"""
from __future__ import annotations

import pytest
from nbformat.v4 import new_code_cell

from conftest import ASSIGNMENTS, nbgrader_meta, read, solution_path, student_path
from suspicious import Finding, context, learner_cells, scan_notebook, scan_source
from test_grading import solved
from test_wrong_answers import wrong_answers

# (source, words the reason must hold)
PATTERNS = {
    "IPython shell": ("ip = get_ipython()", "get_ipython"),
    "input transformer": ("get_ipython().input_transformers_cleanup.append(lambda lines: lines)",
                          "input_transformers_cleanup"),
    "post transformer": ("shell.input_transformers_post.append(f)", "input_transformers_post"),
    "AST transformer": ("shell.ast_transformers.append(T())", "ast_transformers"),
    "event hook": ("get_ipython().events.register('pre_run_cell', f)", "events.register"),
    "shell escape": ("!cat /etc/passwd", "shell command"),
    "risky magic": ("%run other.py", "%run"),
    "globals": ("globals()['_SCORES'] = {}", "globals()"),
    "locals": ("x = locals()", "locals()"),
    "vars": ("v = vars()", "vars()"),
    "getframe": ("import sys\nf = sys._getframe(1)", "_getframe"),
    "inspect": ("import inspect\nframe = inspect.currentframe()", "inspect.currentframe"),
    "f_back": ("def f(e):\n    return e.__traceback__.tb_frame.f_back", "tb_frame"),
    "function globals": ("g = decays_needed.__globals__", "__globals__"),
    "object graph": ("subs = ().__class__.__base__.__subclasses__()", "__subclasses__"),
    "In": ("print(In[-1])", "In"),
    "_ih": ("text = _ih", "_ih"),
    "Out": ("print(Out)", "Out"),
    "_oh": ("x = _oh", "_oh"),
    "getattr string": ("import __main__ as m\nx = getattr(m, 'In')", "'In'"),
    "__eq__ class": ("class Count(int):\n    def __eq__(self, other):\n        return True", "overrides __eq__"),
    "__ne__ class": ("class C:\n    def __ne__(self, other):\n        return False", "__ne__"),
    "__hash__ class": ("class C:\n    __hash__ = None", "__hash__"),
    "__bool__ class": ("class C:\n    def __bool__(self):\n        return True", "__bool__"),
    "__eq__ patched": ("Count.__eq__ = lambda a, b: True", "__eq__"),
    "builtins": ("import builtins\nbuiltins.isinstance = lambda *a: True", "builtins"),
    "__builtins__": ("__builtins__.len = lambda x: 0", "__builtins__"),
    "test helper": ("def type(x):\n    return int", "redefines type"),
    "test helper by assignment": ("int = object", "redefines int"),
    "extra optimizer": ("import torch\nopt = torch.optim.SGD([torch.zeros(1)], lr=1.0)", "torch.optim.SGD"),
    "imported optimizer": ("from torch.optim import Adam\nopt = Adam([w])", "Adam"),
    "optimizer hook": ("opt.register_step_post_hook(lambda *a: None)", "register_step_post_hook"),
    "module hook": ("model.register_forward_hook(h)", "register_forward_hook"),
    "absolute path": ("text = open('/work/solutions/00/00.ipynb').read()", "/work/solutions"),
    "parent path": ("from pathlib import Path\np = Path('../../gradebook.db')", "../../gradebook.db"),
    "home": ("from pathlib import Path\np = Path.home()", "Path.home"),
    "subprocess": ("import subprocess\nsubprocess.run(['ls'])", "subprocess"),
    "os.system": ("import os\nos.system('ls')", "os.system"),
    "socket": ("import socket\ns = socket.socket()", "socket"),
    "ctypes": ("import ctypes", "ctypes"),
    "exec": ("exec('x = 1')", "exec()"),
    "settrace": ("import sys\nsys.settrace(f)", "sys.settrace"),
    "gc": ("import gc\nobjs = gc.get_objects()", "gc.get_objects"),
}
PROTECTED = {"type", "int"}  # what notebook 00's test cells use besides the answer


@pytest.mark.parametrize("name", PATTERNS)
def test_each_pattern_is_flagged_with_line_and_reason(name):
    source, words = PATTERNS[name]
    found = scan_source("x = 0\n" + source, PROTECTED)
    assert found, f"{name} not flagged"
    assert any(words in reason for _, _, reason in found), (name, found)
    assert all(line >= 2 for line, _, _ in found), found  # the line of the construct, not the cell's first
    assert all("\n" not in reason for _, _, reason in found)


def test_re_importing_a_module_the_tests_use_is_not_a_redefinition():
    assert scan_source("import numpy as np\nimport math", {"np", "math"}, {"np": "numpy", "math": "math"}) == []
    assert scan_source("import torch as np", {"np"}, {"np": "numpy"})[0][2] == "redefines np, which the test cells use"


def test_names_inside_functions_are_not_redefinitions():
    assert scan_source("def f(type, int):\n    k = int\n    return type", PROTECTED) == []


def test_notebook_00_protects_what_its_tests_use_but_not_the_answer():
    protected, _, allowed = context(read(solution_path("00_start_here")))
    assert {"type", "int"} <= protected and "decays_needed" not in protected and "k" not in protected
    assert not allowed  # its answer does nothing suspicious


def honest(aid: str):
    """The student notebook answered with the course's solutions, reworded so that each answer is the learner's."""
    nb = read(student_path(aid))
    answers = {nbgrader_meta(c)["grade_id"]: solved(c.source) for c in read(solution_path(aid)).cells
               if nbgrader_meta(c).get("solution") and c.cell_type == "code"}
    for cell in nb.cells:
        if nbgrader_meta(cell).get("grade_id") in answers:
            cell.source = answers[nbgrader_meta(cell)["grade_id"]] + "\n# my own answer\n"
    return nb, len(answers)


@pytest.mark.parametrize("aid", ASSIGNMENTS)
def test_an_honest_submission_is_not_flagged(aid):
    nb, n = honest(aid)
    nb.cells.append(new_code_cell("import numpy as np\nimport matplotlib.pyplot as plt\n%matplotlib inline\n"
                                  "xs = np.linspace(0, 1, 5)\nprint(xs.mean(), f'{xs.sum():.2f}')\n"))
    assert scan_notebook(nb, read(solution_path(aid)), read(student_path(aid))) == []
    if n:
        assert len(learner_cells(nb, [read(solution_path(aid)), read(student_path(aid))])) == n + 1


@pytest.mark.parametrize("mistake", list(wrong_answers("00_start_here")["practice-solution"]))
def test_plausible_wrong_answers_are_not_flagged_but_the_cheat_is(mistake):
    aid = "00_start_here"
    code = wrong_answers(aid)["practice-solution"][mistake]
    nb = read(student_path(aid))
    for cell in nb.cells:
        if nbgrader_meta(cell).get("solution"):
            cell.source = code
    found = scan_notebook(nb, read(solution_path(aid)), read(student_path(aid)))
    if "__eq__" in code:
        assert found and all(isinstance(f, Finding) for f in found)
        assert "practice-solution" in str(found[0]) and "overrides __eq__" in str(found[0])
        assert found[0].line == 4, found
    else:
        assert found == []


def test_course_cells_are_not_scanned_even_with_edited_metadata():
    aid = "00_start_here"
    nb = read(student_path(aid))
    for cell in nb.cells:  # an added cell dressed up as a locked test cell is still the learner's
        if nbgrader_meta(cell).get("grade") and not nbgrader_meta(cell).get("solution"):
            fake = new_code_cell("print(In)", metadata={"nbgrader": dict(nbgrader_meta(cell), grade_id="t9")})
    nb.cells.append(fake)
    found = scan_notebook(nb, read(solution_path(aid)), read(student_path(aid)))
    assert [f.cell for f in found] == [len(nb.cells)] and "In" in found[0].reason
