"""Every claim holds on other seeds: notebooks re-run with shifted seed sets print the same verdicts.

The slow test re-executes every solution notebook with ``LR_COURSE_SEED_SHIFT`` = 1
and 2 (``tools/seed_check.py``, two kernels at a time) and fails on a verdict line that
changed, a number quoted in markdown that only the stored run prints, or a
``# NBVAL_CHECK_OUTPUT`` cell whose output depends on the seed. The quick tests show
that each of those is caught.

The sweep tables (``docs/seed_sweeps/<id>.md``, written by ``python3 course.py seedcheck
<id> --shifts 0-19 --write``) are checked without re-running anything: each is current
(the notebook's cell sources hash to the table's fingerprint), sweeps at least 20
shifts, on every one of which every verdict held, and lists every verdict the stored
notebook prints. A notebook that prints verdicts needs a table, unless it is named in
``PENDING``.
"""
from __future__ import annotations

import os
import subprocess
import sys

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from conftest import ASSIGNMENTS, ROOT, solution_path
from seed_check import (TABLES, attach_margins, check, compare, format_shifts, main,
                        margin_disagreements, parse_shifts, printed_verdicts, read_log, read_table, render_table, source_fingerprint,
                        summarize, sweep, sweep_command, table_data, table_path, verdict_lines,
                        write_table)

SHIFTS = [1, 2]  # what CI re-runs; the committed sweep tables cover >= MIN_SWEPT shifts
MIN_SWEPT = 20

# Notebooks that print verdicts but have no sweep table yet: their verdicts are being
# reworked so that they hold on fresh shifts. PENDING only waives the table; once a
# notebook has one, every table test applies to it, and it leaves this list.
PENDING: list[str] = []


def _nb(markdown: str, *cells: tuple[str, str]):
    """A notebook: one markdown cell, then code cells given as (source, printed text)."""
    nb = new_notebook(cells=[new_markdown_cell(markdown)])
    for source, text in cells:
        nb.cells.append(new_code_cell(source, outputs=[new_output("stream", name="stdout", text=text)]))
    return nb


STORED = _nb("With lr = 0.1 the accuracy ends near 96.9%.",
             ("# NBVAL_CHECK_OUTPUT\nhelpers.verdict(...)", "verdict: lr 0.1 beats lr 0.01 (on all 5 seeds): True\n"),
             ("print(acc)", "accuracy 96.9%\n"))


def test_an_unchanged_run_passes():
    assert compare(STORED, STORED, shift=1) == []


def test_a_verdict_that_depends_on_the_seed_is_caught():
    shifted = _nb(STORED.cells[0].source,
                  ("# NBVAL_CHECK_OUTPUT\nhelpers.verdict(...)", "verdict: lr 0.1 beats lr 0.01 (on all 5 seeds): False\n"),
                  ("print(acc)", "accuracy 96.9%\n"))
    problems = compare(STORED, shifted, shift=1)
    assert "verdicts differ" in problems[0] and "False" in problems[0]


def test_a_quoted_training_number_is_caught():
    shifted = _nb(STORED.cells[0].source, (STORED.cells[1].source, STORED.cells[1].outputs[0].text),
                  ("print(acc)", "accuracy 95.0%\n"))
    problems = compare(STORED, shifted, shift=2)
    assert problems == ["the markdown quotes 96.9%, which the stored outputs print but the run at shift 2 does not"]
    # quoted to a coarser precision, "about 97%" is caught too ...
    coarse = _nb("about 97%", *[(c.source, c.outputs[0].text) for c in STORED.cells[1:]])
    assert compare(coarse, shifted, shift=2)
    # ... while a number every run prints (a closed form, a set-up value) is fine
    fixed = _nb("2/λ_max = 0.2725", ("print(limit)", "2/λ_max = 0.2725\n"))
    assert compare(fixed, fixed, shift=1) == []


def test_checked_cells_must_not_print_training_numbers_and_verdicts_must_be_checked():
    stored = _nb("", ("# NBVAL_CHECK_OUTPUT\nprint(loss)", "loss 0.116\n"), ("verdict(...)", "verdict: x: True\n"))
    shifted = _nb("", ("# NBVAL_CHECK_OUTPUT\nprint(loss)", "loss 0.121\n"), ("verdict(...)", "verdict: x: True\n"))
    problems = compare(stored, shifted, shift=1)
    assert any("cell 1" in p and "NBVAL_CHECK_OUTPUT" in p for p in problems)
    assert any("cell 2 prints a verdict but is not marked" in p for p in problems)


def test_the_seed_shift_reaches_the_notebook():
    code = ("import os, helpers; os.environ['LR_COURSE_SEED_SHIFT'] = '3'; "
            "print(helpers.seeds(2)); helpers.setup(seed=1); import torch, random; print(random.random())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    import random
    random.seed(3001)
    assert out.splitlines()[0] == "[3000, 3001]" and out.splitlines()[-1] == str(random.random())
    assert "seeds shifted by 3000" in out


def test_verdicts_are_what_nbval_checks():
    """Stored verdict lines exist in the course and sit in cells that nbval compares exactly."""
    total = 0
    for aid in ASSIGNMENTS:
        nb = nbformat.read(solution_path(aid), as_version=4)
        total += len(verdict_lines(nb))
        assert compare(nb, nb, shift=0) == [], aid
    assert total >= 5, "experiments the prose relies on end with verdicts"


@pytest.fixture(scope="module")
def shifted_results():
    paths = [solution_path(aid) for aid in ASSIGNMENTS]
    return check(paths, SHIFTS, workers=min(2, os.cpu_count() or 1))


@pytest.mark.slow
@pytest.mark.parametrize("aid", ASSIGNMENTS)
@pytest.mark.parametrize("shift", SHIFTS)
def test_notebook_tells_the_same_story_on_shifted_seeds(shifted_results, aid, shift):
    problems = shifted_results[aid, shift]
    assert not problems, f"{aid} at seed shift {shift}:\n" + "\n".join(problems)


# --- sweep tables: the command's parts ---------------------------------------------------

def test_shift_lists_and_ranges_parse():
    assert parse_shifts(["0-19"]) == list(range(20))
    assert parse_shifts(["3", "4", "5"]) == [3, 4, 5]
    assert parse_shifts(["0-2", "7", "5-6", "1"]) == [0, 1, 2, 5, 6, 7]
    assert parse_shifts("20-22,30") == [20, 21, 22, 30]
    for bad in (["5-3"], ["-1"], ["x"], ["1.5"], [], [""]):
        with pytest.raises(ValueError, match="shift"):
            parse_shifts(bad)
    for shifts in ([0], [0, 1, 2, 5, 6, 7], list(range(20)) + [25]):
        assert parse_shifts(format_shifts(shifts).split()) == shifts
    with pytest.raises(SystemExit) as exit_info:
        main(["07", "--shifts", "5-3"])
    assert exit_info.value.code == 2


def test_margins_come_from_the_verdict_log(tmp_path):
    """A real verdict log, written by helpers.verdict in another process, matched to printed lines."""
    log = tmp_path / "log.jsonl"
    code = ("import helpers\n"
            "helpers.verdict('A ends lower', [True, True], margin=helpers.margin_below([1, 2], [2, 4]))\n"
            "helpers.verdict('no margin given', True)\n"
            "helpers.verdict('A ends lower', [True, True], margin=0.25)\n"
            "helpers.verdict('fails', [True, False], margin=-0.1)\n")
    env = dict(os.environ, LR_COURSE_VERDICT_LOG=str(log))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    lines = out.splitlines(True)
    hand_written = "verdict: printed by hand: True\n"  # no log entry: no margin
    nb = _nb("", ("# NBVAL_CHECK_OUTPUT\nfirst()", "".join(lines[:2])),
             ("# NBVAL_CHECK_OUTPUT\nsecond()", hand_written + "".join(lines[2:])))
    verdicts = attach_margins(printed_verdicts(nb), read_log(log))
    assert [(v["cell"], v["claim"], v["holds"], v["margin"]) for v in verdicts] == [
        (1, "A ends lower (on all 2 seeds)", True, 0.5),
        (1, "no margin given", True, None),
        (2, "printed by hand", True, None),
        (2, "A ends lower (on all 2 seeds)", True, 0.25),
        (2, "fails (on all 2 seeds)", False, -0.1)]
    assert read_log(tmp_path / "absent.jsonl") == []
    assert margin_disagreements(verdicts) == []


def test_a_margin_of_the_wrong_sign_is_caught():
    """A margin that does not measure the verdict's own test (here: held, yet negative)."""
    verdicts = [{"cell": 3, "claim": "A ends lower", "holds": True, "margin": -0.02},
                {"cell": 4, "claim": "B fails", "holds": False, "margin": 0.1},
                {"cell": 5, "claim": "at the limit", "holds": True, "margin": 0.0},
                {"cell": 6, "claim": "no margin", "holds": False, "margin": None}]
    problems = margin_disagreements(verdicts)
    assert len(problems) == 2 and "cell 3" in problems[0] and "negative" in problems[0]
    assert "cell 4" in problems[1] and "positive" in problems[1]


def _run(shift, *verdicts, problems=()):
    return {"stem": "t", "shift": shift, "seconds": 10.0 + shift, "problems": list(problems),
            "verdicts": [dict(zip(("cell", "claim", "holds", "margin"), v)) for v in verdicts]}


STORED_TWO = _nb("", ("# NBVAL_CHECK_OUTPUT\nv()", "verdict: a | b (on all 3 seeds): True\nverdict: c: True\n"))
RUNS = [_run(0, (1, "a | b (on all 3 seeds)", True, 0.30), (1, "c", True, None)),
        _run(1, (1, "a | b (on all 3 seeds)", True, 0.12), (1, "c", False, None),
             problems=["the markdown quotes 1.5%, which the stored outputs print but the run at shift 1 does not"]),
        _run(2, (1, "a | b (on all 3 seeds)", True, 0.20))]  # "c" not printed at shift 2


def test_the_summary_counts_shifts_and_finds_the_worst_margin():
    rows = summarize(STORED_TWO, RUNS)
    assert [(r["cell"], r["claim"], r["held"], r["failed"], r["worst_margin"], r["worst_shift"]) for r in rows] == [
        (1, "a | b (on all 3 seeds)", [0, 1, 2], [], 0.12, 1),
        (1, "c", [0], [1, 2], None, None)]  # a verdict missing from a run fails there


def test_a_table_reads_back_what_was_written(tmp_path):
    path = tmp_path / "t.md"
    data = write_table(path, STORED_TWO, RUNS, [0, 1, 2], workers=2)
    assert read_table(path) == data
    assert data["fingerprint"] == source_fingerprint(STORED_TWO) and data["shifts"] == [0, 1, 2]
    assert data["seconds_per_run"] == {"min": 10.0, "median": 11.0, "max": 12.0}
    assert data["verdicts"][1] == {"cell": 1, "claim": "c", "holds_on": 1, "failed_shifts": [1, 2],
                                   "worst_margin": None, "worst_shift": None}
    assert data["other_problems"] == [{"problem": "the markdown quotes 1.5%, which the stored outputs "
                                       "print but the run at these shifts does not", "shifts": [1]}]
    text = path.read_text()
    assert text.startswith("# Seed sweep: t\n")  # for people first, JSON last
    assert "| 1 | a \\| b (on all 3 seeds) | 3/3 | 12.0% | 1 |" in text
    assert "| 1 | c | 1/3 (fails at shifts 1-2) | — | — |" in text
    assert sweep_command("t", [0, 1, 2]) in text


def _stale(aid: str, nb) -> str | None:
    """Why the table of ``aid`` does not describe notebook ``nb`` (None when it does)."""
    table = read_table(table_path(aid))
    if table["fingerprint"] != source_fingerprint(nb):
        return (f"docs/seed_sweeps/{aid}.md was made from other cell sources than "
                f"solutions/{aid}/{aid}.ipynb has now; sweep it again:\n    "
                + sweep_command(aid, table["shifts"]))
    return None


def test_a_stale_table_is_caught(tmp_path):
    aid = "07_applied_lr"
    nb = nbformat.read(solution_path(aid), as_version=4)
    fingerprint = source_fingerprint(nb)
    assert source_fingerprint(solution_path(aid)) == fingerprint
    rerun = nbformat.from_dict(nb)  # re-executing changes outputs, counts and metadata, not sources
    for cell in rerun.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cell.metadata["changed"] = True
    assert source_fingerprint(rerun) == fingerprint
    edited = nbformat.from_dict(nb)
    index = next(i for i, c in enumerate(edited.cells) if "verdict(" in c.source)
    edited.cells[index].source = edited.cells[index].source.replace("verdict(", "verdict( ", 1)
    nbformat.write(edited, tmp_path / "edited.ipynb")  # an edited copy on disk
    assert source_fingerprint(tmp_path / "edited.ipynb") != fingerprint
    prose = nbformat.from_dict(nb)
    md = next(c for c in prose.cells if c.cell_type == "markdown")
    md.source += " "
    assert source_fingerprint(prose) != fingerprint
    moved = nbformat.from_dict(nb)
    moved.cells[1], moved.cells[2] = moved.cells[2], moved.cells[1]
    assert source_fingerprint(moved) != fingerprint
    if table_path(aid).exists():  # and the test below would say so, with the command to run
        assert _stale(aid, nb) is None or "sweep it again" in _stale(aid, nb)
        message = _stale(aid, edited)
        assert message and f"seedcheck {aid} --shifts" in message and "--write" in message


def test_a_sweep_collects_margins_from_a_real_kernel(tmp_path):
    code = ("# NBVAL_CHECK_OUTPUT\nimport helpers\n"
            "s = helpers.seed_shift()\n"
            "helpers.verdict('shift is small', s < 3, margin=helpers.margin_below([s], [3]))\n")
    path = tmp_path / "t.ipynb"
    nbformat.write(new_notebook(cells=[new_markdown_cell("t"), new_code_cell(code)]), path)
    runs = sweep([path], [4, 2], workers=1, keep=tmp_path / "kept")
    assert [r["shift"] for r in runs] == [4, 2] and all(r["seconds"] > 0 for r in runs)
    kept = nbformat.read(tmp_path / "kept" / "t-shift4.ipynb", as_version=4)
    assert verdict_lines(kept) == ["verdict: shift is small: False"]
    rows = summarize(nbformat.read(path, as_version=4), runs)
    assert len(rows) == 1 and rows[0]["claim"] == "shift is small"
    assert rows[0]["held"] == [2] and rows[0]["failed"] == [4]
    assert rows[0]["worst_shift"] == 4 and rows[0]["worst_margin"] == pytest.approx(-1 / 3)


# --- sweep tables: the committed ones --------------------------------------------------

TABLED = [aid for aid in ASSIGNMENTS if table_path(aid).exists()]


def test_notebooks_with_verdicts_have_sweep_tables():
    """A notebook whose prose rests on verdicts has a table, unless it is named in PENDING."""
    assert set(PENDING) <= set(ASSIGNMENTS), "PENDING names a notebook that does not exist"
    for aid in ASSIGNMENTS:
        has_verdicts = bool(verdict_lines(nbformat.read(solution_path(aid), as_version=4)))
        if has_verdicts and aid not in PENDING:
            assert table_path(aid).exists(), (
                f"{aid} prints verdicts but has no sweep table; make one:\n    "
                f"python3 course.py seedcheck {aid} --shifts 0-19 --write")
    assert not [p for p in TABLES.glob("*.md") if p.stem not in ASSIGNMENTS], "a table of no notebook"


@pytest.mark.parametrize("aid", TABLED)
def test_sweep_table_is_current(aid):
    nb = nbformat.read(solution_path(aid), as_version=4)
    message = _stale(aid, nb)
    assert message is None, message


@pytest.mark.parametrize("aid", TABLED)
def test_every_verdict_held_on_every_swept_shift(aid):
    table = read_table(table_path(aid))
    shifts = table["shifts"]
    assert len(shifts) >= MIN_SWEPT, (
        f"the sweep of {aid} covers {len(shifts)} shifts, fewer than {MIN_SWEPT}:\n    "
        f"python3 course.py seedcheck {aid} --shifts 0-19 --write")
    failed = [f"cell {v['cell']}: {v['claim']}: fails at shifts {format_shifts(v['failed_shifts'])}"
              for v in table["verdicts"] if v["failed_shifts"] or v["holds_on"] != len(shifts)]
    assert not failed, f"{aid}: verdicts that do not hold on every swept shift:\n" + "\n".join(failed)
    assert not table["other_problems"], f"{aid}: other checks failed on swept shifts: {table['other_problems']}"


@pytest.mark.parametrize("aid", TABLED)
def test_every_stored_verdict_is_in_its_table(aid):
    table = read_table(table_path(aid))
    listed = {(v["cell"], v["claim"]) for v in table["verdicts"]}
    stored = printed_verdicts(nbformat.read(solution_path(aid), as_version=4))
    missing = [f"cell {v['cell']}: {v['claim']}" for v in stored if (v["cell"], v["claim"]) not in listed]
    assert not missing, f"{aid} prints verdicts its sweep table does not list:\n" + "\n".join(missing)
