"""Flag submissions whose own code reaches for the grading machinery.

    python3 tools/suspicious.py 00 [--course DIR]     # list the flags of every submission of 00

A learner's code runs in the same kernel as the tests, so it can try to change what
the tests see or do: hook into IPython (input or AST transformers, events), read the
namespace or the call stack, read ``In``/``Out``, redefine a name the tests rely on,
make a value that compares equal to anything, patch ``builtins``, build extra
optimizers or register hooks, read files outside its folder, start programs or open
connections. This module reads only the cells the learner wrote (code cells whose
source is not one of the course's own cells: not a locked cell, not a test cell, not
an untouched stub), parses them (IPython syntax such as ``%magic`` and ``!cmd``
included) and returns one finding per suspicious construct, with its cell, line and a
one-line reason. What the course's own solution does in the same place is not
flagged (an exercise that asks for an optimizer may build one).

A finding is a reason to look, not proof: ``course.py report`` lists the flagged
submissions and docs/instructors.md says what to do with them.
"""
from __future__ import annotations

import argparse
import ast
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import nbformat

HISTORY = re.compile(r"^(In|Out|_ih|_oh|_dh|_i|_ii|_iii|_i\d+)$")
SAFE_MAGICS = {"matplotlib", "time", "timeit", "config", "precision"}
SHELL_METHODS = {"system", "getoutput"}
SHELL_HOOK_ATTRS = {"input_transformers_cleanup", "input_transformers_post", "input_transformer_manager",
                    "ast_transformers", "set_custom_exc", "set_hook", "user_ns", "user_global_ns",
                    "showtraceback", "register_magic_function", "register_magics", "run_cell", "displayhook",
                    "display_pub", "ev", "ex", "push"}
NAMESPACE_CALLS = {"globals", "locals", "vars"}
FRAME_ATTRS = {"_getframe", "f_back", "f_globals", "f_locals", "f_builtins", "tb_frame", "gi_frame", "cr_frame",
               "ag_frame", "__globals__", "__builtins__", "__closure__", "__code__", "__subclasses__", "__mro__",
               "__bases__", "__base__"}
FRAME_FUNCTIONS = {"currentframe", "stack", "getouterframes", "getinnerframes", "trace", "getframeinfo"}
COMPARISON_DUNDERS = {"__eq__", "__ne__", "__hash__", "__bool__", "__len__", "__lt__", "__le__", "__gt__", "__ge__",
                      "__instancecheck__", "__subclasscheck__", "__class__"}
PROCESS_MODULES = {"subprocess", "socket", "ctypes", "cffi", "pty", "multiprocessing", "_posixsubprocess", "posix",
                   "urllib", "http", "requests", "ftplib", "smtplib", "telnetlib", "asyncio", "signal", "resource",
                   "sqlite3", "shutil", "tempfile", "webbrowser"}
OS_PROCESS = re.compile(r"^(system|popen|fork|forkpty|kill|killpg|chdir|chroot|putenv|setuid|setgid|"
                        r"exec\w*|spawn\w*|posix_spawn\w*|_exit|abort)$")
CODE_FROM_STRINGS = {"eval", "exec", "compile", "__import__", "breakpoint"}
INTERPRETER_HOOKS = {("sys", "settrace"), ("sys", "setprofile"), ("sys", "excepthook"), ("sys", "displayhook"),
                     ("sys", "modules"), ("sys", "meta_path"), ("sys", "path_hooks"), ("sys", "audit"),
                     ("sys", "addaudithook"), ("threading", "settrace"), ("gc", "get_objects"),
                     ("gc", "get_referrers"), ("gc", "get_referents"), ("atexit", "register")}
INDIRECT_NAMES = ({"In", "Out", "_ih", "_oh", "get_ipython", "builtins", "__builtins__", "__main__", "globals",
                   "locals", "vars", "eval", "exec", "__import__"} | FRAME_ATTRS | COMPARISON_DUNDERS | PROCESS_MODULES
                  | SHELL_HOOK_ATTRS - {"ev", "ex", "push", "run_cell"} | {"system", "popen", "settrace", "events"})
OUTSIDE_PATH = re.compile(r"^(/[^\s/]|~)|(^|/)\.\.(/|$)")
OPTIMIZER_MODULES = ("torch.optim",)
# Modules whose functions the grading relies on (the capstone scores in a separate
# interpreter started with subprocess, from helpers.capstone): replacing one of their
# attributes changes what the tests run.
PATCHABLE_MODULES = {"helpers", "torch", "subprocess", "sys", "os", "json", "pickle", "cloudpickle", "math",
                     "numpy", "warnings", "importlib", "inspect", "io", "pathlib"}
# Methods that run when an object is copied (pickled) to the capstone's scoring interpreter.
PICKLE_DUNDERS = {"__reduce__", "__reduce_ex__", "__setstate__", "__getstate__", "__getnewargs__",
                  "__getnewargs_ex__", "__set_name__", "__init_subclass__", "__class_getitem__"}
MARKER = re.compile(r"^[ \t]*### (BEGIN|END) (SOLUTION|HIDDEN TESTS)[ \t]*\n?", re.M)


@dataclass(frozen=True)
class Finding:
    """One suspicious construct: where it is (cell position, 1-based, and its label) and why."""

    cell: int
    label: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.label}, line {self.line}: {self.reason}"


# ---------------------------------------------------------------- one cell's source

def python_source(source: str) -> str:
    """``source`` as plain Python: IPython's %magics and !commands become the calls they stand for."""
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        return TransformerManager().transform_cell(source)
    except Exception:  # noqa: BLE001 (IPython cannot read it: parse it as it is)
        return source


def _dotted(node: ast.expr) -> str:
    """``a.b.c`` for a chain of attributes on a name, else ''."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


def _is_get_ipython(node: ast.expr) -> bool:
    return isinstance(node, ast.Call) and _dotted(node.func) in ("get_ipython", "IPython.get_ipython")


def _top_level_bindings(tree: ast.Module) -> list[tuple[str, int, str]]:
    """(name, line, module or '') of every global name a module binds, outside functions and classes.

    A name bound by ``import`` carries the module it names, so re-importing the same
    module under the same name is not a redefinition. ``global`` inside a function
    counts as binding the name.
    """
    found = []

    def targets(node, line):
        if isinstance(node, ast.Name):
            found.append((node.id, line, ""))
        elif isinstance(node, (ast.Tuple, ast.List)):
            for elt in node.elts:
                targets(elt, line)
        elif isinstance(node, ast.Starred):
            targets(node.value, line)

    def visit(stmts):
        for node in stmts:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                found.append((node.name, node.lineno, ""))
                for inner in ast.walk(node):
                    if isinstance(inner, ast.Global):
                        found.extend((name, inner.lineno, "") for name in inner.names)
                continue
            if isinstance(node, ast.Assign):
                for t in node.targets:
                    targets(t, node.lineno)
            elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
                targets(node.target, node.lineno)
            elif isinstance(node, (ast.For, ast.AsyncFor)):
                targets(node.target, node.lineno)
            elif isinstance(node, (ast.With, ast.AsyncWith)):
                for item in node.items:
                    if item.optional_vars is not None:
                        targets(item.optional_vars, node.lineno)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    found.append((alias.asname or alias.name.split(".")[0], node.lineno,
                                  alias.name if alias.asname else alias.name.split(".")[0]))
            elif isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    found.append((alias.asname or alias.name, node.lineno, f"{node.module}.{alias.name}"))
            elif isinstance(node, ast.Delete):
                for t in node.targets:
                    targets(t, node.lineno)
            for name in ("body", "orelse", "finalbody", "handlers"):
                visit(getattr(node, name, []) if isinstance(getattr(node, name, None), list) else [])
        for node in ast.walk(ast.Module(body=list(stmts), type_ignores=[])):
            if isinstance(node, ast.NamedExpr) and isinstance(node.target, ast.Name):
                found.append((node.target.id, node.lineno, ""))

    visit(tree.body)
    return found


def _optimizer_names(tree: ast.Module) -> set[str]:
    """Names this source imports from torch.optim (``from torch.optim import SGD``)."""
    return {alias.asname or alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
            and (node.module or "").startswith(OPTIMIZER_MODULES) and "lr_scheduler" not in (node.module or "")
            for alias in node.names}


class _Scanner(ast.NodeVisitor):
    """Collects (line, key, reason) for one parsed cell."""

    def __init__(self, protected: set[str], imports: dict[str, str], optimizers: set[str]):
        self.found: list[tuple[int, str, str]] = []
        self.protected, self.imports, self.optimizers = protected, imports, optimizers
        self.safe_calls: set[int] = set()
        self.depth = 0  # functions (def or lambda) the visitor is inside
        self.aliases: dict[str, str] = {}  # names this cell binds to modules by import

    def add(self, node, key: str, reason: str):
        self.found.append((getattr(node, "lineno", 1), key, reason))

    # -- calls
    def visit_Call(self, node: ast.Call):
        func, name = node.func, _dotted(node.func)
        if isinstance(func, ast.Attribute) and _is_get_ipython(func.value):
            arg = node.args[0].value if node.args and isinstance(node.args[0], ast.Constant) else None
            if func.attr in ("run_line_magic", "run_cell_magic") and arg in SAFE_MAGICS:
                self.safe_calls.add(id(func.value))
            elif func.attr in ("run_line_magic", "run_cell_magic"):
                self.add(node, f"magic:{arg}", f"runs the IPython magic %{arg}, which can reach outside the notebook")
                self.safe_calls.add(id(func.value))
            elif func.attr in SHELL_METHODS:
                self.add(node, "shell", "runs a shell command (!command)")
                self.safe_calls.add(id(func.value))
        if _is_get_ipython(node) and id(node) not in self.safe_calls:
            self.add(node, "get_ipython", "uses the IPython shell (get_ipython()), which can change how the test "
                                          "cells run")
        last = name.rsplit(".", 1)[-1]
        if name in NAMESPACE_CALLS:
            self.add(node, name, f"reads or changes the notebook's namespace ({name}())")
        elif name in CODE_FROM_STRINGS or name in ("importlib.import_module",):
            self.add(node, name, f"runs code built from strings ({name}())")
        elif name.startswith("inspect.") and last in FRAME_FUNCTIONS or \
                self.imports.get(name, "").startswith("inspect.") and last in FRAME_FUNCTIONS:
            self.add(node, "frame", f"reads the call stack ({name}())")
        elif last == "open" and name in ("open", "io.open", "os.open") or last in ("expanduser", "home"):
            pass  # judged by the path they are given (visit_Constant)
        if (name.startswith("torch.optim.") or name.startswith("optim.") or name in self.optimizers) \
                and "lr_scheduler" not in name and last[:1].isupper() and last != "Optimizer":
            self.add(node, "optimizer", f"builds an optimizer ({name}) outside the answer the exercise asks for")
        if isinstance(func, ast.Attribute) and func.attr.startswith("register_") and func.attr.endswith("hook"):
            self.add(node, "hook", f"registers a hook ({func.attr}), which runs code inside every step or "
                                   "forward pass")
        if name in ("os.path.expanduser", "Path.home", "pathlib.Path.home", "os.chdir"):
            self.add(node, "path", f"reaches for a folder outside the working copy ({name})")
        if name == "setattr" and node.args and self._module_root(node.args[0]):
            self.add(node, "patch", f"replaces a function of the module {_dotted(node.args[0])} (setattr), which "
                                    "the tests may use")
        if isinstance(func, ast.Attribute) and func.attr == "step" and self.depth >= 2:
            self.add(node, "nested-step", "calls .step() from a function inside a function (a schedule's factor "
                                          "or a hook): an update the grader's loop does not count")
        self.generic_visit(node)

    def _module_root(self, node: ast.expr) -> bool:
        """``node`` names a module the grading relies on (directly or through an import of the course's)."""
        top = _dotted(node).split(".")[0]
        module = self.aliases.get(top) or self.imports.get(top, top if top in PATCHABLE_MODULES
                                                           or top in ("np", "F", "nn", "optim", "capstone") else "")
        if top == "capstone":
            return True
        return bool(top) and module.split(".")[0] in PATCHABLE_MODULES | {"np", "F", "nn", "optim"}

    # -- functions: how deep the visitor is, for .step() inside a nested function
    def visit_FunctionDef(self, node):
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_AsyncFunctionDef = visit_Lambda = visit_FunctionDef

    # -- names and attributes
    def visit_Name(self, node: ast.Name):
        if HISTORY.match(node.id) and isinstance(node.ctx, ast.Load):
            self.add(node, "history", f"reads IPython's history of cells ({node.id}), which holds the test cells")
        elif node.id in ("__builtins__",):
            self.add(node, "builtins", "reads or patches the built-in functions (__builtins__)")
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute):
        root = _dotted(node.value)
        if node.attr in FRAME_ATTRS:
            self.add(node, "frame", f"reaches into frames or function internals (.{node.attr})")
        elif node.attr in SHELL_HOOK_ATTRS and (root in ("", "ip", "shell", "ipython") or _is_get_ipython(node.value)
                                                or node.attr.startswith(("input_transformer", "ast_transformers"))):
            self.add(node, "shell-hook", f"changes the IPython shell ({node.attr}): it can rewrite or hide what the "
                                         "test cells do")
        elif node.attr in ("register", "unregister") and isinstance(node.value, ast.Attribute) \
                and node.value.attr == "events":
            self.add(node, "shell-hook", "registers an IPython event callback (events.register), which runs around "
                                         "every cell, the test cells included")
        elif (root, node.attr) in INTERPRETER_HOOKS:
            self.add(node, "interpreter", f"hooks into the interpreter ({root}.{node.attr})")
        elif root == "os" and OS_PROCESS.match(node.attr):
            self.add(node, "process", f"starts programs or changes the process (os.{node.attr})")
        elif root == "builtins":
            self.add(node, "builtins", f"reads or patches the built-in functions (builtins.{node.attr})")
        elif node.attr in COMPARISON_DUNDERS and isinstance(node.ctx, ast.Store):
            self.add(node, "dunder", f"replaces {node.attr} of a type: a value that compares equal to anything "
                                     "passes ==")
        elif isinstance(node.ctx, (ast.Store, ast.Del)) and self._module_root(node.value):
            self.add(node, "patch", f"replaces {_dotted(node)}, part of a module the tests may use")
        self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript):
        if _dotted(node.value) == "sys.modules":
            self.add(node, "interpreter", "reaches into loaded modules (sys.modules[...])")
        self.generic_visit(node)

    # -- definitions
    def visit_ClassDef(self, node: ast.ClassDef):
        for item in node.body:
            names = [item.name] if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) else \
                [t.id for t in getattr(item, "targets", []) if isinstance(t, ast.Name)] if isinstance(item, ast.Assign) \
                else []
            for name in names:
                if name in COMPARISON_DUNDERS:
                    self.add(item, "dunder", f"class {node.name} overrides {name}: a value that compares equal "
                                             "to anything passes ==")
                elif name in PICKLE_DUNDERS:
                    self.add(item, "pickle", f"class {node.name} defines {name}, which runs code when the grader "
                                             "copies the answer to its scoring interpreter")
        bases = {_dotted(b) for b in node.bases}
        if bases & {"torch.optim.Optimizer", "optim.Optimizer", "Optimizer"}:
            self.add(node, "optimizer", f"defines an optimizer class ({node.name})")
        self.generic_visit(node)

    # -- imports
    def visit_Import(self, node: ast.Import):
        for alias in node.names:
            self._module(node, alias.name)
            self.aliases[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else \
                alias.name.split(".")[0]
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom):
        module = node.module or ""
        self._module(node, module)
        for alias in node.names:
            self.aliases[alias.asname or alias.name] = f"{module}.{alias.name}"
            if module == "inspect" and alias.name in FRAME_FUNCTIONS or module == "sys" and alias.name == "_getframe":
                self.add(node, "frame", f"imports {alias.name} from {module} (call-stack access)")
            if module == "IPython" and alias.name == "get_ipython" or module.startswith("IPython.core"):
                self.add(node, "get_ipython", f"imports the IPython shell ({module}.{alias.name})")
            if module == "os" and OS_PROCESS.match(alias.name):
                self.add(node, "process", f"imports os.{alias.name}, which starts programs")
        self.generic_visit(node)

    def _module(self, node, module: str):
        top = module.split(".")[0]
        if top in PROCESS_MODULES:
            self.add(node, f"module:{top}", f"imports {module}, which can start programs, open connections or "
                                            "reach outside the working copy")
        elif top == "builtins":
            self.add(node, "builtins", "imports builtins (patching the built-in functions changes the tests)")
        elif top == "__main__":
            self.add(node, "namespace", "imports __main__, the notebook's namespace")

    # -- strings
    def visit_Constant(self, node: ast.Constant):
        if isinstance(node.value, str):
            text = node.value
            if "capstone-result" in text:
                self.add(node, "forged-result", "writes the line the capstone's scoring interpreter reports its "
                                                "result with: a forged score")
            elif text in INDIRECT_NAMES or HISTORY.match(text):
                self.add(node, f"string:{text}", f"names {text!r} in a string (indirect access, e.g. through "
                                                 "getattr or a namespace)")
            elif OUTSIDE_PATH.search(text.strip()) and len(text) < 300 and "\n" not in text:
                self.add(node, "path", f"a path outside the working copy ({text[:60]!r})")


def scan_source(source: str, protected: set[str] = frozenset(), imports: dict[str, str] | None = None
                ) -> list[tuple[int, str, str]]:
    """(line, key, reason) of every suspicious construct in one cell's source, in line order.

    ``protected``: names the test cells use and the learner is not asked to define; a
    cell that binds one of them at the top level is flagged. ``imports``: the module
    each such name is bound to by the course's own cells (re-importing it is fine).
    """
    imports = imports or {}
    try:
        tree = ast.parse(python_source(source))
    except SyntaxError as e:
        return [(e.lineno or 1, "syntax", "does not parse, so it was not checked")]
    scanner = _Scanner(set(protected), imports, _optimizer_names(tree))
    scanner.visit(tree)
    for name, line, module in _top_level_bindings(tree):
        if name in protected and not (module and imports.get(name) == module):
            scanner.found.append((line, f"redefines:{name}", f"redefines {name}, which the test cells use"))
    return sorted(set(scanner.found))


# ---------------------------------------------------------------- a notebook

def _meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def _key(source: str) -> str:
    return "\n".join(line.rstrip() for line in MARKER.sub("", source).strip().splitlines())


def _loaded_names(tree: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def context(source_nb) -> tuple[set[str], dict[str, str], Counter]:
    """What the course's source notebook allows: (protected names, their imports, solution findings).

    Protected: names the test cells load and do not bind themselves, less the names the
    solution cells define (the learner is asked to write those). Solution findings:
    what the course's own answers do, which is never held against a learner.
    """
    used, bound_in_tests, answers, imports = set(), set(), set(), {}
    allowed: Counter = Counter()
    for cell in source_nb.cells if source_nb is not None else []:
        if cell.cell_type != "code":
            continue
        meta = _meta(cell)
        try:
            tree = ast.parse(python_source(MARKER.sub("", cell.source)))
        except SyntaxError:
            continue
        bindings = _top_level_bindings(tree)
        if meta.get("grade") and not meta.get("solution"):
            used |= _loaded_names(tree)
            bound_in_tests |= {name for name, _, _ in bindings}
        elif meta.get("solution"):
            answers |= {name for name, _, _ in bindings}
            allowed.update(key for _, key, _ in scan_source(cell.source))
        else:
            imports.update({name: module for name, _, module in bindings if module})
    protected = used - bound_in_tests - answers
    return protected, {k: v for k, v in imports.items() if k in protected}, allowed


def learner_cells(submitted, course_notebooks: list) -> list[tuple[int, object]]:
    """(position, cell) of the code cells the learner wrote.

    A cell whose source is one of the course's own code cells (release or source
    version, solution markers ignored) is the course's: locked cells, test cells and
    untouched stubs. Without any course notebook, cells marked locked or as tests are
    left out (metadata a learner could edit, hence the course notebooks first).
    """
    known = {_key(c.source) for nb in course_notebooks if nb is not None for c in nb.cells
             if c.cell_type == "code"}
    found = []
    for i, cell in enumerate(submitted.cells):
        if cell.cell_type != "code" or not cell.source.strip():
            continue
        if known:
            if _key(cell.source) in known:
                continue
        elif _meta(cell).get("locked") or (_meta(cell).get("grade") and not _meta(cell).get("solution")):
            continue
        found.append((i, cell))
    return found


def scan_notebook(submitted, source=None, release=None) -> list[Finding]:
    """Every finding in the learner-written cells of ``submitted``, in cell and line order."""
    protected, imports, allowed = context(source)
    allowed = Counter(allowed)
    findings = []
    for i, cell in learner_cells(submitted, [source, release]):
        gid = _meta(cell).get("grade_id")
        label = f"cell {i + 1}" + (f" ({gid})" if gid else "")
        for line, key, reason in scan_source(cell.source, protected, imports):
            if allowed[key] > 0:  # the course's own answer does the same
                allowed[key] -= 1
                continue
            findings.append(Finding(i + 1, label, line, reason))
    return findings


def _read(path: Path):
    try:
        return nbformat.read(path, as_version=4)
    except (OSError, ValueError):
        return None


def scan_submission(course: Path, student: str, aid: str) -> dict[str, list[Finding]]:
    """{notebook name: findings} for one student's submission of ``aid`` in the course directory.

    Reads submitted/<student>/<aid>/ (autograded/ if it is gone); the course's versions
    come from solutions/ (or nbgrader's source/) and notebooks/ (or release/).
    """
    folder = course / "submitted" / student / aid
    if not folder.is_dir():
        folder = course / "autograded" / student / aid
    out = {}
    for path in sorted(folder.glob("*.ipynb")):
        submitted = _read(path)
        if submitted is None:
            out[path.stem] = [Finding(0, "notebook", 0, "not a readable notebook")]
            continue
        source = next((nb for d in ("solutions", "source") if (nb := _read(course / d / aid / path.name))), None)
        release = next((nb for d in ("notebooks", "release") if (nb := _read(course / d / aid / path.name))), None)
        out[path.stem] = scan_notebook(submitted, source, release)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assignment", help="assignment id or its number (00)")
    parser.add_argument("--course", default=".", help="course directory (default: the current folder)")
    args = parser.parse_args(argv)
    course = Path(args.course)
    folders = sorted(p for p in (course / "submitted").glob(f"*/{args.assignment}*") if p.is_dir())
    if not folders:
        print(f"suspicious: no submissions of '{args.assignment}' in {course / 'submitted'}", file=sys.stderr)
        return 2
    for folder in folders:
        for name, findings in scan_submission(course, folder.parent.name, folder.name).items():
            for f in findings:
                print(f"{folder.parent.name} {name} {f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
