"""Plausible wrong answers to the practice exercise of notebook 00; each must lose points."""
WRONG = {
    "practice-solution": {
        "one decay too many (counts the step that reaches the target, plus one)": '''def decays_needed(lr0, gamma, target):
    """Smallest k >= 0 (a Python int) with lr0 * gamma**k <= target (0 < gamma < 1)."""
    k, lr = 0, lr0
    while lr >= target:
        lr *= gamma
        k += 1
    return k
''',
        "rounds the logarithm down": '''import math

def decays_needed(lr0, gamma, target):
    """Smallest k >= 0 (a Python int) with lr0 * gamma**k <= target (0 < gamma < 1)."""
    return max(0, math.floor(math.log(target / lr0) / math.log(gamma)))
''',
        "always decays at least once": '''def decays_needed(lr0, gamma, target):
    """Smallest k >= 0 (a Python int) with lr0 * gamma**k <= target (0 < gamma < 1)."""
    k, lr = 1, lr0 * gamma
    while lr > target:
        lr *= gamma
        k += 1
    return k
''',
        "an int that claims to equal anything (gaming the test's ==)": '''class Count(int):
    """An int that says it equals whatever it is compared with."""

    def __eq__(self, other):
        return True

    __hash__ = int.__hash__


def decays_needed(lr0, gamma, target):
    """Smallest k >= 0 (a Python int) with lr0 * gamma**k <= target (0 < gamma < 1)."""
    return Count(0)
''',
    },
}
