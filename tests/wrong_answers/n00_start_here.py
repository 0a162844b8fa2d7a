"""Plausible wrong answers to the practice exercise of notebook 00; each must lose points."""
WRONG = {
    "practice-solution": {
        "one decay too many (counts the step that reaches the target, plus one)": '''def decays_needed(lr0, gamma, target):
    """Smallest k >= 0 with lr0 * gamma**k <= target (0 < gamma < 1)."""
    k, lr = 0, lr0
    while lr >= target:
        lr *= gamma
        k += 1
    return k
''',
        "rounds the logarithm down": '''import math

def decays_needed(lr0, gamma, target):
    """Smallest k >= 0 with lr0 * gamma**k <= target (0 < gamma < 1)."""
    return max(0, math.floor(math.log(target / lr0) / math.log(gamma)))
''',
        "always decays at least once": '''def decays_needed(lr0, gamma, target):
    """Smallest k >= 0 with lr0 * gamma**k <= target (0 < gamma < 1)."""
    k, lr = 1, lr0 * gamma
    while lr > target:
        lr *= gamma
        k += 1
    return k
''',
    },
}
