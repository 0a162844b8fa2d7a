"""The instructor's tools in the browser: nbgrader's formgrader, opened from JupyterLab.

A fresh copy of the course (its own nbgrader_config.py) gets notebook 01 released,
one submission from ada (every exercise solved, her own words in the free-text answer
``q1-answer``) and ``nbgrader autograde``. JupyterLab is started from the course root,
as ``python3 course.py lab`` does, and headless Chromium (Playwright) does what
docs/instructors.md tells an instructor to do: *Nbgrader → Formgrader* lists every
assignment; the number under *# Submissions* shows ada's submission, autograded, with
its score; *Manual Grading → assignment → notebook → Submission #1* shows her answer,
takes a score and a comment typed into their fields (each saved when the field is left
with Tab), and shows both again on a fresh load. ``nbgrader generate_feedback`` then
puts the comment and the score in ada's feedback (and in the total), and the gradebook
holds them. Requests to other hosts are refused, as on an offline machine: the
formgrader then lacks MathJax (from a CDN) and its keyboard shortcuts, but Tab saves.

Needs Debian's ``chromium`` (installed with apt-get when running as root) and
Playwright; skipped with the reason otherwise.
"""
from __future__ import annotations

import html
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from nbgrader.api import Gradebook

from conftest import ASSIGNMENTS, is_test_cell, nbgrader_meta, read, solution_path
from test_grading import edited, exercises, nbgrader, submit
from test_instructor_cycle import fresh_copy

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")
from browser_driver import browser_page, chromium, jupyter_lab  # noqa: E402 (tools/, put on sys.path by conftest)

pytestmark = pytest.mark.slow

AID, STUDENT, ANSWER_ID = "01_why_lr_matters", "ada", "q1-answer"
ANSWER = ("Ada's answer: the new feature of scale 100 makes the largest curvature about "
          "ten thousand times bigger, so the stable limit on the rate drops below 0.01.")
SCORE = "1.5"  # typed, as an instructor would, out of the question's 3 points
COMMENT = "Right diagnosis, but only one fix: standardise the feature OR lower the rate. 1.5 of 3."
LISTED = "() => window.models !== undefined && models.loaded"  # a formgrader list page has its rows
BOUND = ("() => window.formgrader !== undefined && formgrader.grades && formgrader.grades.loaded"
         " && formgrader.comments && formgrader.comments.loaded")  # a submission's fields show the gradebook
WAIT_S = 60  # for anything the browser waits for; the failure message says what did not come


def _points() -> tuple[float, float, float]:
    """(points of the autograded test cells, points of the hand-graded answer, total)."""
    cells = read(solution_path(AID)).cells
    tests = sum(float(nbgrader_meta(c).get("points", 0)) for c in cells if is_test_cell(c))
    answer = next(float(nbgrader_meta(c)["points"]) for c in cells if nbgrader_meta(c).get("grade_id") == ANSWER_ID)
    return tests, answer, sum(float(nbgrader_meta(c).get("points", 0)) for c in cells if nbgrader_meta(c).get("grade"))


def _js_number(x: float) -> str:
    """A score as the formgrader's lists print it (roundToPrecision(x, 2), then JavaScript's toString)."""
    return f"{round(x, 2):g}"


class Instructor:
    """The browser, and what to say when something the instructor should see does not come."""

    def __init__(self, page, url: str, course: Path):
        self.page, self.url, self.course = page, url, course
        self.frame = page.main_frame  # where the formgrader is shown: JupyterLab's iframe, once opened

    def fail(self, what: str) -> None:
        log = self.course.parent / "lab" / "server.log"
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:]) if log.exists() else "(no log)"
        where = self.frame.url if not self.frame.is_detached() else self.page.url
        pytest.fail(f"{what} (waited up to {WAIT_S} s; the browser was at {where}).\n"
                    f"JupyterLab's log ends with:\n{tail}", pytrace=False)

    def see(self, locator, what: str):
        try:
            locator.first.wait_for(state="visible", timeout=WAIT_S * 1000)
            return locator.first
        except sync_api.TimeoutError:
            pass  # fail outside the except block: the message, without Playwright's traceback
        self.fail(f"{what}: not shown")

    def within(self, wait, failure: str) -> None:
        """Run ``wait(timeout_ms)``; on a timeout, fail with ``failure`` (without Playwright's traceback)."""
        try:
            wait(WAIT_S * 1000)
            return
        except sync_api.TimeoutError:
            pass
        self.fail(failure)

    def follow(self, locator, what: str, url: str) -> None:
        """Click a link of the formgrader and wait until its page is the one at ``url`` (a glob)."""
        self.see(locator, what).click()
        self.within(lambda ms: self.frame.wait_for_url(url, timeout=ms), f"{what} did not lead to {url}")

    def wait_for(self, js: str, what: str) -> None:
        self.within(lambda ms: self.frame.wait_for_function(js, timeout=ms), f"{what}: never happened")

    def saved(self, kind: str, action) -> dict:
        """Run ``action`` (a key press) and return the JSON of the PUT that saves the grade or comment."""
        sent = None
        try:
            with self.page.expect_response(lambda r: r.request.method == "PUT" and f"/formgrader/api/{kind}/" in r.url,
                                           timeout=WAIT_S * 1000) as response:
                action()
            sent = response.value
        except sync_api.TimeoutError:
            pass
        if sent is None:
            self.fail(f"the {kind} typed for {ANSWER_ID} was not sent to the server when its field was left")
        assert sent.ok, f"saving the {kind} failed: HTTP {sent.status} {sent.text()[:500]}"
        return sent.json()

    def rows(self, name: str) -> list[str]:
        """The texts of one column of the formgrader's table (each cell's class names the column)."""
        return [t.strip() for t in self.frame.locator(f"#main-table td.{name}").all_inner_texts()]


def release_submit_autograde(course: Path) -> None:
    """Steps 1 to 3 of the guide for notebook 01: release it, collect ada's work, autograde it."""
    nbgrader(course, "generate_assignment", AID, "--force")  # registers 01 and its graded cells in gradebook.db
    answers = {e.id: e.answer for e in exercises(AID)} | {ANSWER_ID: ANSWER}
    submit(course, STUDENT, AID, edited(AID, answers, student=course / "notebooks" / AID / f"{AID}.ipynb"))
    nbgrader(course, "autograde", AID)


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    """A fresh copy of the course."""
    if chromium() is None:
        pytest.skip("Chromium is missing and cannot be installed here (Debian: apt-get install chromium, as root)")
    return fresh_copy(tmp_path_factory.mktemp("formgrader") / "course")


@pytest.fixture(scope="module")
def instructor(course):
    """JupyterLab started in the course root (where nbgrader finds nbgrader_config.py), a browser on it,
    and the course as it is after ``nbgrader autograde``."""
    # Autograding (~25 s) runs while JupyterLab and Chromium start: the formgrader reads the
    # gradebook only when a page asks, and the first page is asked for after autograde.
    with ThreadPoolExecutor(1) as pool:
        graded = pool.submit(release_submit_autograde, course)
        with jupyter_lab(course, course.parent / "lab", cwd=course) as url, browser_page() as page:
            if page is None:
                pytest.skip("Chromium is not available")
            # Offline, like CI and many classrooms: only the Jupyter server answers.
            page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(url)
                       else route.abort())
            me = Instructor(page, url, course)
            page.goto(f"{url}/lab")
            me.see(page.locator(".lm-MenuBar-item", has_text="Nbgrader"), "JupyterLab's Nbgrader menu")
            graded.result()
            yield me


@pytest.fixture(scope="module")
def formgrader(instructor):
    """JupyterLab's Nbgrader menu → Formgrader: the formgrader in a tab of JupyterLab."""
    page = instructor.page  # JupyterLab, open
    instructor.see(page.locator(".lm-MenuBar-item", has_text="Nbgrader"), "JupyterLab's Nbgrader menu").click()
    instructor.see(page.get_by_role("menuitem", name="Formgrader", exact=True),
                   "the Formgrader item of the Nbgrader menu").click()
    iframe = instructor.see(page.locator("#formgrader iframe"), "the Formgrader tab")
    instructor.frame = iframe.element_handle().content_frame()
    instructor.see(instructor.frame.get_by_role("heading", name="Manage Assignments"),
                   "the formgrader's Manage Assignments page")
    instructor.wait_for(LISTED, "the list of assignments loading")
    return instructor


@pytest.fixture(scope="module")
def submissions(formgrader) -> dict:
    """Manage Assignments → the number under '# Submissions' of notebook 01: ada's row, before any hand grade."""
    fg = formgrader  # on Manage Assignments, where the Formgrader tab opens
    row = fg.frame.locator("#main-table tr", has=fg.frame.locator("td.name", has_text=AID))
    fg.follow(row.locator("td.num-submissions a"), f"the number of submissions of {AID}",
              f"**/formgrader/manage_submissions/{AID}")
    fg.wait_for(LISTED, f"the list of submissions of {AID} loading")
    fg.see(fg.frame.locator("#main-table td.student-id", has_text=STUDENT), f"{STUDENT}'s submission")
    return {col: fg.rows(col) for col in ("student-id", "status", "score")}


@pytest.fixture(scope="module")
def hand_grade(submissions, formgrader) -> dict:
    """Manual Grading → 01 → its notebook → Submission #1: a score and a comment typed into the answer's
    fields, and what a fresh load of the page then shows."""
    fg, page = formgrader, formgrader.page
    fg.follow(fg.frame.locator("a", has_text="Manual Grading"), "the Manual Grading link", "**/formgrader/gradebook")
    fg.follow(fg.frame.locator("#main-table td.name a", has_text=AID), f"{AID} under Manual Grading",
              f"**/formgrader/gradebook/{AID}")
    fg.follow(fg.frame.locator("#main-table td.name a", has_text=AID), f"the notebook {AID} of assignment {AID}",
              f"**/formgrader/gradebook/{AID}/{AID}")
    fg.follow(fg.frame.locator("#main-table a.name-hidden", has_text="Submission #1"), "the link 'Submission #1'",
              "**/formgrader/submissions/*/")
    score = fg.see(fg.frame.locator(f"input.score#{ANSWER_ID}"), f"the score field of {ANSWER_ID}")
    cell = fg.frame.locator(".nbgrader_cell", has=score)
    comment = fg.see(cell.locator(f"textarea#{ANSWER_ID}-comment"), f"the comment field of {ANSWER_ID}")
    # The fields are bound to the gradebook once the page has fetched the grades and comments;
    # a value typed before that would be overwritten by the empty one fetched.
    fg.wait_for(BOUND, "the manual grading page loading its grades and comments")
    shown = cell.inner_text()
    submission_url = fg.frame.url

    score.click()
    page.keyboard.type(SCORE)
    grade = fg.saved("grade", lambda: page.keyboard.press("Tab"))
    comment.click()
    page.keyboard.type(COMMENT)
    note = fg.saved("comment", lambda: page.keyboard.press("Tab"))

    # What a fresh load of the page shows (the gradebook's values, not what is left in the fields).
    page.goto(submission_url)
    fg.frame = page.main_frame
    fg.see(page.locator(f"input.score#{ANSWER_ID}"), f"the score field of {ANSWER_ID} after a reload")
    fg.wait_for(BOUND, "the reloaded manual grading page loading its grades and comments")
    reloaded = {"score": page.locator(f"input.score#{ANSWER_ID}").input_value(),
                "comment": page.locator(f"textarea#{ANSWER_ID}-comment").input_value()}
    return {"shown": shown, "grade": grade, "comment": note, "reloaded": reloaded}


def test_formgrader_opens_from_the_lab_menu_and_lists_every_assignment(formgrader):
    names = formgrader.rows("name")
    assert sorted(names) == sorted(ASSIGNMENTS), \
        f"Manage Assignments should list every assignment of solutions/; it lists {names}"


def test_the_submission_is_listed_as_autograded_with_its_score(submissions):
    tests, answer, total = _points()
    assert submissions["student-id"] == [STUDENT], submissions
    assert submissions["status"] == ["needs manual grading"], \
        f"after autograde the free-text answer should wait for a hand grade: {submissions}"
    assert submissions["score"] == [f"{_js_number(tests)} / {_js_number(total)}"], \
        f"every test passed, the answer is not graded yet: {submissions}"


def test_manual_grading_shows_the_answer_and_saves_score_and_comment(hand_grade):
    assert ANSWER in hand_grade["shown"], \
        f"the learner's answer is not shown in {ANSWER_ID}: {hand_grade['shown'][:500]}"
    assert "Student's answer" in hand_grade["shown"]
    grade, note = hand_grade["grade"], hand_grade["comment"]
    assert (grade["name"], grade["student"]) == (ANSWER_ID, STUDENT)
    assert grade["manual_score"] == float(SCORE) and grade["needs_manual_grade"] is False, grade
    assert (note["name"], note["manual_comment"]) == (ANSWER_ID, COMMENT), note
    assert hand_grade["reloaded"] == {"score": SCORE, "comment": COMMENT}, \
        f"a fresh load of the page does not show what was typed: {hand_grade['reloaded']}"


def test_feedback_and_gradebook_hold_the_hand_grade(hand_grade, course):
    tests, answer, total = _points()
    nbgrader(course, "generate_feedback", AID)
    report = course / "feedback" / STUDENT / AID / f"{AID}.html"
    assert report.exists(), f"nbgrader generate_feedback wrote no {report.relative_to(course)}"
    text = html.unescape(report.read_text())
    assert f"{AID} (Score: {tests + float(SCORE):.1f} / {total:.1f})" in text, \
        f"the feedback's total does not count the hand grade: {re.findall(r'Score: [^<]*', text)[:1]}"
    cell = text.split(f'<a name="{ANSWER_ID}"></a>', 1)[1].split("nbgrader_cell", 1)[0]
    assert ANSWER in cell, f"the feedback's {ANSWER_ID} is not ada's answer: {cell[:800]}"
    assert f"Score: {float(SCORE):.1f} / {answer:.1f}" in cell, f"the hand score is not in the feedback: {cell[:800]}"
    comments = re.search(r"<b>Comments:</b>(.*?)</div>", cell, flags=re.S)
    assert comments and COMMENT in re.sub(r"<[^>]+>", "", comments.group(1)), \
        f"the typed comment is not in the feedback: {cell[:1500]}"

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        grade = gb.find_grade(ANSWER_ID, AID, AID, STUDENT)
        assert (grade.manual_score, grade.needs_manual_grade) == (float(SCORE), False)
        assert gb.find_comment(ANSWER_ID, AID, AID, STUDENT).manual_comment == COMMENT
        assert gb.find_submission(AID, STUDENT).score == tests + float(SCORE)
