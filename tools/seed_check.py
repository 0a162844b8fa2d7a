"""Re-run the solution notebooks on shifted seeds and compare what their prose relies on.

    python3 course.py seedcheck                          # every notebook, seed shifts 1 and 2
    python3 course.py seedcheck 01 03 --shifts 3         # notebooks 01 and 03, shift 3 only
    python3 course.py seedcheck 05 --shifts 0-19         # shifts 0 to 19, two runs at a time
    python3 course.py seedcheck 05 --shifts 0-9 12 --workers 1
    python3 course.py seedcheck 05 --shifts 0-19 --write # and write docs/seed_sweeps/<id>.md
    python3 course.py seedcheck 05 --shifts 4 --keep /tmp/runs # and save the executed notebook

A learner re-runs a notebook on another CPU, where chaotic training runs end
differently. So every claim about training is backed by a verdict line
("verdict: ...: True", printed by ``helpers.verdict``), and this check re-runs each
notebook with ``LR_COURSE_SEED_SHIFT`` set, which moves every seed set. It reports

* a verdict line that differs from the stored one (the claim depends on the seed);
* a number quoted in the markdown that the stored outputs print (to the quoted
  precision) but a shifted run does not (the prose quotes a seed-dependent number);
* a cell marked ``# NBVAL_CHECK_OUTPUT`` whose output changes with the seed (nbval
  would compare raw training numbers exactly), or a verdict printed by a cell
  that is not marked (nbval would not check it);
* a verdict whose logged margin has the wrong sign (held with a negative margin,
  failed with a positive one);

and then, per notebook, one row per verdict: on how many shifts it held, and its worst
margin (how far the measured quantity stayed from its threshold, as a fraction of the
threshold, at the worst shift; see ``helpers.margin_below``), read from the verdict log
each run writes (``LR_COURSE_VERDICT_LOG``). "—" marks a verdict that gives no margin.

``--write`` stores those rows in ``docs/seed_sweeps/<id>.md`` (a table, then the same
data as a JSON block), with a fingerprint of the solution notebook's cell sources;
``tests/test_seed_shift.py`` fails when the notebook's cells change after its table
was written, or when a verdict in a table fails on a swept shift.

Exit status 0 when nothing is reported.
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import multiprocessing
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
SHIFT_ENV = "LR_COURSE_SEED_SHIFT"
LOG_ENV = "LR_COURSE_VERDICT_LOG"
CHECKED = "# NBVAL_CHECK_OUTPUT"
VERDICT = "verdict: "
TABLES = ROOT / "docs" / "seed_sweeps"
THIN = 0.05  # a margin below 5 % of the threshold is room a fresh seed may well take away
# Numbers worth checking: with a decimal point, a percent sign or an exponent. Plain
# integers (epochs, seeds, layer sizes) are set by the code, not measured.
_NUMBER = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?%|\d+(?:\.\d+)?e[-+−]?\d+|\d+\.\d+)(?![\w%])")


def parse_shifts(tokens: list[str] | str) -> list[int]:
    """Seed shifts from ``"0-19"``, ``"3 4 5"``, ``"0-4 7,9"`` (ranges inclusive), sorted, once each.

    >>> parse_shifts(["0-3", "7", "2"])
    [0, 1, 2, 3, 7]
    """
    if isinstance(tokens, str):
        tokens = [tokens]
    shifts: set[int] = set()
    for token in (t for chunk in tokens for t in re.split(r"[\s,]+", chunk.strip()) if t):
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", token)
        if not match:
            raise ValueError(f"shifts must be integers >= 0 or ranges such as 0-19, got {token!r}")
        low = int(match.group(1))
        high = int(match.group(2)) if match.group(2) is not None else low
        if high < low:
            raise ValueError(f"a shift range must run upwards (such as 0-19), got {token!r}")
        shifts.update(range(low, high + 1))
    if not shifts:
        raise ValueError("shifts must name at least one shift, got none")
    return sorted(shifts)


def format_shifts(shifts: list[int]) -> str:
    """The inverse of :func:`parse_shifts`: ``[0, 1, 2, 3, 7]`` -> ``"0-3 7"``.

    >>> format_shifts([0, 1, 2, 3, 7])
    '0-3 7'
    """
    parts, shifts = [], sorted(set(shifts))
    i = 0
    while i < len(shifts):
        j = i
        while j + 1 < len(shifts) and shifts[j + 1] == shifts[j] + 1:
            j += 1
        parts.append(str(shifts[i]) if i == j else f"{shifts[i]}-{shifts[j]}")
        i = j + 1
    return " ".join(parts)


def cell_text(cell) -> str:
    """The text a code cell printed or returned (no images, no widget state)."""
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(out.get("text", ""))
        elif out.get("output_type") in {"execute_result", "display_data"}:
            data = out.get("data", {})
            if "image/png" not in data and "application/vnd.jupyter.widget-view+json" not in data:
                parts.append(data.get("text/plain", ""))
        elif out.get("output_type") == "error":
            parts.append(f"{out.get('ename')}: {out.get('evalue')}\n")
    return "".join(parts)


def verdict_lines(nb) -> list[str]:
    return [line for cell in nb.cells if cell.cell_type == "code"
            for line in cell_text(cell).splitlines() if line.startswith(VERDICT)]


def printed_verdicts(nb) -> list[dict]:
    """Every verdict line a notebook printed: ``{"cell", "claim", "holds"}`` in print order.

    ``claim`` is the line between ``verdict: `` and the final ``: True``/``: False`` (with
    its "(on all n seeds)"), so it matches the ``claim`` of the verdict log.
    """
    found = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for line in cell_text(cell).splitlines():
            if line.startswith(VERDICT):
                claim, _, result = line[len(VERDICT):].rpartition(": ")
                if not claim:  # not the verdict() format: keep the whole line as the claim
                    claim, result = line[len(VERDICT):], ""
                found.append({"cell": index, "claim": claim, "holds": result.strip() == "True"})
    return found


def read_log(path: Path | str) -> list[dict]:
    """The JSON lines ``helpers.verdict`` appended to ``LR_COURSE_VERDICT_LOG`` (none if absent)."""
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def attach_margins(verdicts: list[dict], log: list[dict]) -> list[dict]:
    """``verdicts`` (from :func:`printed_verdicts`) with the margin each one logged.

    Log entries are matched to printed lines in order, by claim and result; a printed
    verdict with no log entry (not printed by ``helpers.verdict``) gets margin None.
    """
    out, start = [], 0
    for v in verdicts:
        margin = None
        for j in range(start, len(log)):
            entry = log[j]
            if entry.get("claim") == v["claim"] and bool(entry.get("holds")) == v["holds"]:
                margin, start = entry.get("margin"), j + 1
                break
        out.append({**v, "margin": margin})
    return out


def margin_disagreements(verdicts: list[dict]) -> list[str]:
    """Verdicts whose logged margin has the wrong sign: one that held with a negative margin,
    or failed with a positive one. The margin then measures something other than what the
    verdict tests (another threshold, or only one of its conditions)."""
    problems = []
    for v in verdicts:
        m = v.get("margin")
        if m is not None and ((v["holds"] and m < 0) or (not v["holds"] and m > 0)):
            problems.append(f"cell {v['cell']}: the verdict {v['claim']!r} printed {v['holds']} but logged "
                            f"a {'negative' if m < 0 else 'positive'} margin; the margin must measure "
                            "the verdict's own test")
    return problems


def _value(token: str) -> tuple[float, float, bool]:
    """(value, rounding step, is percent) of a number as written."""
    percent = token.endswith("%")
    body = token.rstrip("%").replace("−", "-")
    mantissa = body.split("e")[0]
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    exponent = int(body.split("e")[1]) if "e" in body else 0
    return float(body), 10.0 ** (exponent - decimals), percent


def numbers(text: str) -> set[str]:
    return set(_NUMBER.findall(text))


def _matches(quoted: str, printed: set[str]) -> bool:
    """Does some printed number equal ``quoted`` when rounded to the precision it is quoted at?"""
    q, step, q_percent = _value(quoted)
    for token in printed:
        v, _, percent = _value(token)
        if percent == q_percent and abs(v - q) <= step / 2 * (1 + 1e-9):
            return True
    return False


def quoted_numbers(nb) -> set[str]:
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    return numbers(text)


def output_numbers(nb) -> set[str]:
    return set().union(*(numbers(cell_text(c)) for c in nb.cells if c.cell_type == "code"))


def compare(stored, shifted, shift: int) -> list[str]:
    """Problems found between the stored outputs and a run at seed shift ``shift``."""
    problems = []
    before, after = verdict_lines(stored), verdict_lines(shifted)
    if before != after:
        changed = [f"    stored:  {a}\n    shift {shift}: {b}" for a, b in zip(before, after) if a != b]
        if len(before) != len(after):
            changed.append(f"    {len(before)} verdict lines stored, {len(after)} at shift {shift}")
        problems.append("verdicts differ:\n" + "\n".join(changed))
    printed_before, printed_after = output_numbers(stored), output_numbers(shifted)
    for quoted in sorted(quoted_numbers(stored)):
        if _matches(quoted, printed_before) and not _matches(quoted, printed_after):
            problems.append(f"the markdown quotes {quoted}, which the stored outputs print "
                            f"but the run at shift {shift} does not")
    for index, (a, b) in enumerate(zip(stored.cells, shifted.cells)):
        if a.cell_type != "code":
            continue
        checked = any(line.strip() == CHECKED for line in a.source.splitlines())  # as nbval reads it: any line
        if checked and cell_text(a) != cell_text(b):
            first = next((l for l in a.source.splitlines()[1:] if l.strip()), "")
            problems.append(f"cell {index} ({first[:60]!r}) is marked NBVAL_CHECK_OUTPUT but prints "
                            f"other text at shift {shift}")
        if not checked and any(l.startswith(VERDICT) for l in cell_text(a).splitlines()):
            problems.append(f"cell {index} prints a verdict but is not marked {CHECKED}")
    return problems


def run_shifted(path: Path, shift: int, timeout: int = 600, log: Path | None = None):
    """Execute a copy of ``path`` with every seed set shifted by ``shift``; return it.

    With ``log``, every verdict the run prints is also appended to that file (JSON lines).
    """
    nb = nbformat.read(path, as_version=4)
    env = dict(os.environ, PYTHONHASHSEED="0", **{SHIFT_ENV: str(shift)})
    env.pop(LOG_ENV, None)
    if log is not None:
        env[LOG_ENV] = str(log)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(path.parent)}},
                            record_timing=False, store_widget_state=False)
    # the kernel's own log lines (not the notebook's output) would break the progress bar
    client.execute(env=env, stderr=subprocess.DEVNULL)
    return nb


def run_one(job: tuple) -> dict:
    """One (notebook, shift) run: its problems, its verdicts with margins, and its run time.

    ``job`` is ``(path, shift)`` or ``(path, shift, keep)``: with a folder ``keep``, the
    executed notebook is also saved there as ``<id>-shift<k>.ipynb``.
    """
    path, shift, keep = (*job, None)[:3]
    stored = nbformat.read(path, as_version=4)
    fd, log = tempfile.mkstemp(prefix=f"verdicts-{path.stem}-{shift}-", suffix=".jsonl")
    os.close(fd)
    try:
        start = time.perf_counter()
        shifted = run_shifted(path, shift, log=Path(log))
        seconds = time.perf_counter() - start
        verdicts = attach_margins(printed_verdicts(shifted), read_log(log))
        if keep is not None:
            nbformat.write(shifted, Path(keep) / f"{path.stem}-shift{shift}.ipynb")
    finally:
        os.unlink(log)
    return {"stem": path.stem, "shift": shift, "seconds": seconds,
            "problems": compare(stored, shifted, shift) + margin_disagreements(verdicts),
            "verdicts": verdicts}


def sweep(paths: list[Path], shifts: list[int], workers: int = 2, progress: bool = False,
          keep: Path | None = None) -> list[dict]:
    """Run every (notebook, shift) pair, ``workers`` at a time; one :func:`run_one` dict each.

    With a folder ``keep``, the executed notebooks are saved there (see :func:`run_one`).
    A run that crashes (its kernel died) is reported as a problem of that run, with no verdicts.
    """
    if workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers}")
    jobs = [(p, s) for p in paths for s in shifts]
    if keep is not None:
        Path(keep).mkdir(parents=True, exist_ok=True)
    results = []
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(jobs), unit="run", desc="seedcheck", file=sys.stderr, dynamic_ncols=True)
    # spawn, not fork: the caller may hold threads (torch, a test runner) that fork would copy badly
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(run_one, (*job, keep)): job for job in jobs}
        for future in as_completed(futures):
            path, shift = futures[future]
            try:
                result = future.result()
            except Exception as error:  # noqa: BLE001 - report it with the run it belongs to
                result = {"stem": path.stem, "shift": shift, "seconds": float("nan"),
                          "problems": [f"the run failed: {type(error).__name__}: {error}"], "verdicts": []}
            results.append(result)
            if bar is not None:
                bar.set_postfix_str(f"{path.stem} shift {shift}: {result['seconds']:.0f} s"
                                    + (f", {len(result['problems'])} problem(s)" if result["problems"] else ""))
                bar.update()
    if bar is not None:
        bar.close()
    order = {(p.stem, s): i for i, (p, s) in enumerate(jobs)}
    return sorted(results, key=lambda r: order[r["stem"], r["shift"]])


def check(paths: list[Path], shifts: list[int], workers: int = 2) -> dict[tuple[str, int], list[str]]:
    """Run every (notebook, shift) pair, ``workers`` at a time; return the problems of each."""
    return {(r["stem"], r["shift"]): r["problems"] for r in sweep(paths, shifts, workers)}


def summarize(stored, runs: list[dict]) -> list[dict]:
    """One row per verdict of a notebook over the ``runs`` of one sweep.

    A verdict is its cell and its claim (the n-th time that pair is printed, for claims
    printed more than once). The stored notebook's verdicts come first, then any only a
    shifted run printed. A shift where a verdict is missing counts as a shift where it
    does not hold. Each row: ``cell``, ``claim``, ``held`` (shifts where it held),
    ``failed`` (shifts where it did not), ``worst_margin`` and ``worst_shift`` (None where
    no run logged a margin).
    """
    def keyed(verdicts):
        seen: dict[tuple[int, str], int] = {}
        out = {}
        for v in verdicts:
            n = seen.get((v["cell"], v["claim"]), 0)
            seen[v["cell"], v["claim"]] = n + 1
            out[v["cell"], v["claim"], n] = v
        return out

    keys = list(keyed(printed_verdicts(stored)))
    per_run = [(r["shift"], keyed(r["verdicts"])) for r in runs]
    for _, verdicts in per_run:
        keys += [k for k in verdicts if k not in keys]
    keys.sort(key=lambda k: k[0])  # by cell; stable, so print order within a cell
    rows = []
    for key in keys:
        held, failed, worst, worst_shift = [], [], None, None
        for shift, verdicts in sorted(per_run, key=lambda item: item[0]):
            v = verdicts.get(key)
            (held if v is not None and v["holds"] else failed).append(shift)
            if v is not None and v.get("margin") is not None and (worst is None or v["margin"] < worst):
                worst, worst_shift = v["margin"], shift
        rows.append({"cell": key[0], "claim": key[1], "held": held, "failed": failed,
                     "worst_margin": worst, "worst_shift": worst_shift})
    return rows


def format_margin(margin: float | None) -> str:
    if margin is None:
        return "—"
    text = f"{margin:.1%}".replace("-", "−")
    return text + (" (thin)" if 0 <= margin < THIN else "")  # below 0 the verdict failed


def summary_text(rows: list[dict], shifts: list[int]) -> str:
    """The per-verdict rows as plain text for the terminal."""
    if not rows:
        return "  (no verdicts)"
    lines = []
    for r in rows:
        n = len(r["held"]) + len(r["failed"])
        where = f" at shift {r['worst_shift']}" if r["worst_margin"] is not None else ""
        failed = f"; fails at {format_shifts(r['failed'])}" if r["failed"] else ""
        lines.append(f"  cell {r['cell']:>3}  holds {len(r['held'])}/{n}  worst margin "
                     f"{format_margin(r['worst_margin'])}{where}{failed}\n            {r['claim']}")
    return "\n".join(lines)


def source_fingerprint(nb) -> str:
    """A hash of a notebook's cell types and sources, not of its outputs or metadata.

    Re-executing a notebook keeps it; editing, adding, removing or moving a cell changes it.
    """
    if isinstance(nb, (str, Path)):
        nb = nbformat.read(nb, as_version=4)
    cells = [[c.cell_type, c.source if isinstance(c.source, str) else "".join(c.source)] for c in nb.cells]
    return hashlib.sha256(json.dumps(cells, ensure_ascii=False).encode("utf-8")).hexdigest()[:16]


def table_path(stem: str) -> Path:
    return TABLES / f"{stem}.md"


def sweep_command(stem: str, shifts: list[int]) -> str:
    """The command that re-makes the table of ``stem`` over ``shifts``."""
    return f"python3 course.py seedcheck {stem} --shifts {format_shifts(shifts)} --write"


def _other_problems(runs: list[dict]) -> list[dict]:
    """Problems other than changed verdicts (the table shows those), each with its shifts."""
    grouped: dict[str, list[int]] = {}
    for r in runs:
        for p in r["problems"]:
            if p.startswith("verdicts differ"):
                continue
            text = re.sub(rf"\bat shift {r['shift']}\b", "at these shifts", p)
            grouped.setdefault(text, []).append(r["shift"])
    return [{"problem": text, "shifts": sorted(shifts)} for text, shifts in grouped.items()]


def table_data(stem: str, fingerprint: str, shifts: list[int], rows: list[dict], runs: list[dict],
               workers: int, date: str | None = None) -> dict:
    """What a sweep table records, as the JSON block of the table file holds it."""
    times = sorted(r["seconds"] for r in runs if r["seconds"] == r["seconds"])
    seconds = ({"min": round(times[0], 1), "median": round(statistics.median(times), 1),
                "max": round(times[-1], 1)} if times else None)
    return {
        "notebook": stem,
        "fingerprint": fingerprint,
        "date": date or datetime.date.today().isoformat(),
        "shifts": sorted(shifts),
        "workers": workers,
        "seconds_per_run": seconds,
        "verdicts": [{"cell": r["cell"], "claim": r["claim"], "holds_on": len(r["held"]),
                      "failed_shifts": r["failed"],
                      "worst_margin": None if r["worst_margin"] is None else round(r["worst_margin"], 6),
                      "worst_shift": r["worst_shift"]} for r in rows],
        "other_problems": _other_problems(runs),
    }


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _dump(data: dict) -> str:
    """JSON with one key per line and one list item per line (readable in a diff)."""
    def one(value) -> str:
        return json.dumps(value, ensure_ascii=False)
    items = []
    for key, value in data.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            inner = ",\n".join(f"  {one(v)}" for v in value)
            items.append(f" {one(key)}: [\n{inner}\n ]")
        else:
            items.append(f" {one(key)}: {one(value)}")
    return "{\n" + ",\n".join(items) + "\n}"


def render_table(data: dict) -> str:
    """The Markdown file of a sweep: the table for people first, the JSON block for tests last."""
    stem, shifts = data["notebook"], data["shifts"]
    n = len(shifts)
    secs = data["seconds_per_run"]
    timing = (f" Run time per shift: min {secs['min']:.0f} s, median {secs['median']:.0f} s, "
              f"max {secs['max']:.0f} s ({data['workers']} runs at a time)." if secs else "")
    lines = [
        f"# Seed sweep: {stem}",
        "",
        f"`solutions/{stem}/{stem}.ipynb` re-run with `LR_COURSE_SEED_SHIFT` = "
        f"{format_shifts(shifts)} ({n} shifts) on {data['date']}.{timing}",
        "",
    ]
    if data["verdicts"]:
        lines += ["| cell | claim | holds on | worst margin | at shift |", "|---:|---|---:|---:|---:|"]
        for v in data["verdicts"]:
            holds = f"{v['holds_on']}/{n}"
            if v["failed_shifts"]:
                holds += f" (fails at shift{'s' if len(v['failed_shifts']) > 1 else ''} {format_shifts(v['failed_shifts'])})"
            at = "—" if v["worst_shift"] is None else str(v["worst_shift"])
            lines.append(f"| {v['cell']} | {_cell(v['claim'])} | {holds} | "
                         f"{format_margin(v['worst_margin'])} | {at} |")
        lines += [
            "",
            "*Holds on*: shifts on which the verdict printed True (a shift on which it was not "
            "printed counts as a failure). *Worst margin*: how far the measured quantity stayed "
            "from the verdict's threshold at its worst seed, as a fraction of the threshold "
            "(`helpers.margin_below` / `margin_above`), at the shift where it came closest; "
            "where the threshold is 0 (one quantity compared with another) it is the absolute "
            "room in the claim's unit, so 0.8% there means 0.008 (nats, points, ...); "
            f"\"(thin)\" from 0 to {THIN:.0%}; \"—\" where the verdict logs no margin.",
        ]
    else:
        lines.append("The notebook prints no verdict.")
    lines += ["", "Other checks (numbers quoted in the markdown, `# NBVAL_CHECK_OUTPUT` cells, "
              "the sign of each margin): "
              + ("none failed." if not data["other_problems"] else "these failed.")]
    for p in data["other_problems"]:
        plural = "s" if len(p["shifts"]) > 1 else ""
        lines.append(f"- shift{plural} {format_shifts(p['shifts'])}: {p['problem']}")
    lines += [
        "",
        f"Made by `{sweep_command(stem, shifts)}`. `tests/test_seed_shift.py` checks that the "
        f"notebook's cell sources still hash to `{data['fingerprint']}` (outputs do not count).",
        "",
        "```json",
        _dump(data),
        "```",
        "",
    ]
    return "\n".join(lines)


def read_table(path: Path | str) -> dict:
    """The JSON block of a sweep table written by :func:`render_table`."""
    text = Path(path).read_text(encoding="utf-8")
    blocks = re.findall(r"^```json\n(.*?)^```", text, flags=re.S | re.M)
    if not blocks:
        raise ValueError(f"{path} holds no ```json block")
    return json.loads(blocks[-1])


def write_table(path: Path, stored, runs: list[dict], shifts: list[int], workers: int) -> dict:
    """Summarize one notebook's ``runs`` and write its table to ``path``; return the data."""
    rows = summarize(stored, runs)
    data = table_data(Path(path).stem, source_fingerprint(stored), shifts, rows, runs, workers)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_table(data), encoding="utf-8")
    return data


def solution_paths(prefixes: list[str] | None = None) -> list[Path]:
    paths = sorted(p for p in (ROOT / "solutions").glob("*/*.ipynb") if p.stem == p.parent.name)
    if prefixes:
        paths = [p for p in paths if p.stem.startswith(tuple(prefixes))]
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prefixes", nargs="*", help="notebook id prefixes (default: all)")
    parser.add_argument("--shifts", nargs="+", default=["1", "2"],
                        help="seed shifts: integers and inclusive ranges, e.g. 0-19 or 3 4 5 (default: 1 2)")
    parser.add_argument("--workers", type=int, default=2, help="notebook runs at a time (default: 2)")
    parser.add_argument("--keep", metavar="FOLDER", type=Path,
                        help="also save every executed notebook there, as <id>-shift<k>.ipynb")
    parser.add_argument("--write", action="store_true",
                        help="write each notebook's table to docs/seed_sweeps/<id>.md")
    args = parser.parse_args(argv)
    try:
        shifts = parse_shifts(args.shifts)
    except ValueError as error:
        parser.error(str(error))
    if args.workers < 1:
        parser.error(f"--workers must be an integer >= 1, got {args.workers}")
    paths = solution_paths(args.prefixes)
    if not paths:
        print(f"no solution notebook matches {args.prefixes}", file=sys.stderr)
        return 2
    print(f"seedcheck: {', '.join(p.stem for p in paths)} at shifts {format_shifts(shifts)} "
          f"({len(paths) * len(shifts)} runs, {args.workers} at a time)", file=sys.stderr, flush=True)
    before = {p: source_fingerprint(p) for p in paths}
    results = sweep(paths, shifts, args.workers, progress=True, keep=args.keep)
    bad = 0
    for r in results:
        problems = r["problems"]
        print(f"{r['stem']} at shift {r['shift']} ({r['seconds']:.0f} s): "
              + ("ok" if not problems else f"{len(problems)} problem(s)"))
        for p in problems:
            print("  - " + p)
        bad += bool(problems)
    for path in paths:
        runs = [r for r in results if r["stem"] == path.stem]
        rows = summarize(nbformat.read(path, as_version=4), runs)
        times = [r["seconds"] for r in runs if r["seconds"] == r["seconds"]]
        timing = (f"; run time min {min(times):.0f} s, median {statistics.median(times):.0f} s, "
                  f"max {max(times):.0f} s") if times else ""
        print(f"\n{path.stem}: verdicts over shifts {format_shifts(shifts)}{timing}")
        print(summary_text(rows, shifts))
        if args.write:
            if source_fingerprint(path) != before[path]:
                print(f"not writing {table_path(path.stem).relative_to(ROOT)}: {path.relative_to(ROOT)} "
                      "changed during the sweep; run it again", file=sys.stderr)
                bad += 1
                continue
            write_table(table_path(path.stem), nbformat.read(path, as_version=4), runs, shifts, args.workers)
            print(f"wrote {table_path(path.stem).relative_to(ROOT)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
