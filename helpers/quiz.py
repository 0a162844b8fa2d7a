"""Quick checks: multiple-choice questions with immediate feedback.

>>> q = quick_check("2 + 2 = ?", {"3": "Off by one.", "4": "Right."}, answer="4")
>>> q.choose("3").correct
False
>>> q.choose("4").feedback.value.endswith("Right.")
True

Choosing an option shows at once whether it is right and why. Where no widget front
end exists, the question and its options are shown as plain HTML.
"""
from __future__ import annotations

import html
from typing import Mapping

import ipywidgets as W

from ._display import widget_bundle

__all__ = ["QuickCheck", "quick_check"]


class QuickCheck:
    """One multiple-choice question; see :func:`quick_check`.

    >>> QuickCheck("1 + 1?", {"2": "Yes.", "3": "No."}, answer="2").choose("3").feedback.value
    "<span style='color:#cf222e'>✘ Not quite.</span> No."
    """

    def __init__(self, question: str, options: Mapping[str, str], answer: str):
        if not isinstance(question, str) or not question.strip():
            raise ValueError(f"question must be a non-empty string, got {question!r}")
        if len(options) < 2:
            raise ValueError(f"options must hold at least 2 choices, got {len(options)}")
        if answer not in options:
            raise ValueError(f"answer must be one of the options {list(options)}, got {answer!r}")
        self.question, self.options, self.answer = question, dict(options), answer
        self.buttons = W.RadioButtons(options=list(options), value=None,
                                      layout=W.Layout(width="max-content"))
        self.feedback = W.HTML("")
        self.buttons.observe(self._on_choose, names="value")
        self.widget = W.VBox([W.HTML(f"<b>Quick check.</b> {html.escape(question)}"),
                              self.buttons, self.feedback])

    @property
    def correct(self) -> bool | None:
        """Whether the chosen option is right (None before a choice)."""
        chosen = self.buttons.value
        return None if chosen is None else chosen == self.answer

    def choose(self, option: str) -> "QuickCheck":
        """Pick ``option`` as a learner clicking it would."""
        if option not in self.options:
            raise ValueError(f"option must be one of {list(self.options)}, got {option!r}")
        self.buttons.value = option
        return self

    def _on_choose(self, change) -> None:
        option = change["new"]
        if option is None:
            self.feedback.value = ""
            return
        verdict = ("<span style='color:#1a7f37'>✔ Correct.</span>" if option == self.answer
                   else "<span style='color:#cf222e'>✘ Not quite.</span>")
        self.feedback.value = f"{verdict} {html.escape(self.options[option])}"

    def _repr_mimebundle_(self, include=None, exclude=None):
        items = "".join(f"<li>{html.escape(o)}</li>" for o in self.options)
        static = (f"<p><b>Quick check.</b> {html.escape(self.question)}</p><ul>{items}</ul>"
                  "<p><i>Run the notebook to check your answer.</i></p>")
        text = f"Quick check: {self.question}\n" + "\n".join(f"  - {o}" for o in self.options)
        return widget_bundle(self.widget, {"text/html": static}, text)


def quick_check(question: str, options: Mapping[str, str], answer: str) -> QuickCheck:
    """A multiple-choice question with immediate feedback.

    Parameters
    ----------
    question : str
        The question.
    options : mapping of str to str
        Each option's text (as shown on its button) mapped to the feedback shown when it
        is chosen: say *why* it is right or wrong. At least two options.
    answer : str
        The right option (a key of ``options``).

    Examples
    --------
    >>> q = quick_check("Which LR diverges on L = 5θ²?", {"0.19": "|1 - 1.9| < 1", "0.21": "2/10 = 0.2"},
    ...                 answer="0.21")
    >>> q.choose("0.19").correct, q.choose("0.21").correct
    (False, True)
    """
    return QuickCheck(question, options, answer)
