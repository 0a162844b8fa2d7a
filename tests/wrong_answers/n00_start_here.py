"""Plausible wrong answers to the practice exercise of notebook 00; each must lose points."""
WRONG = {
    "practice-solution": {
        "one decay too many (gamma ** (k + 1))": '''def decayed_lr(lr0, gamma, k):
    """Learning rate after k decays by a factor gamma, starting from lr0."""
    return lr0 * gamma ** (k + 1)
''',
        "subtracts instead of multiplying": '''def decayed_lr(lr0, gamma, k):
    """Learning rate after k decays by a factor gamma, starting from lr0."""
    return lr0 - k * gamma * lr0
''',
        "multiplies by k instead of raising to k": '''def decayed_lr(lr0, gamma, k):
    """Learning rate after k decays by a factor gamma, starting from lr0."""
    return lr0 * gamma * k if k else lr0
''',
    },
}
