"""Plausible wrong answers to the exercises of notebook 01; each must lose points."""
WRONG = {
    "ex1-gradient-descent": {
        "leaves out theta_0 (returns only steps rows)": '''def gradient_descent(grad, theta0, lr, steps):
    """Iterates of gradient descent, shape (steps + 1, d)."""
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    theta = np.array(theta0, dtype=float)
    path = []
    for _ in range(steps):
        theta = theta - lr * grad(theta)
        path.append(theta)
    return np.array(path)
''',
        "updates theta0 in place (np.asarray does not copy)": '''def gradient_descent(grad, theta0, lr, steps):
    """Iterates of gradient descent, shape (steps + 1, d)."""
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    theta = np.asarray(theta0, dtype=float)
    path = [theta.copy()]
    for _ in range(steps):
        theta -= lr * grad(theta)
        path.append(theta.copy())
    return np.array(path)
''',
        "accepts lr = 0 (checks lr < 0)": '''def gradient_descent(grad, theta0, lr, steps):
    """Iterates of gradient descent, shape (steps + 1, d)."""
    if lr < 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    path = [np.array(theta0, dtype=float)]
    for _ in range(steps):
        path.append(path[-1] - lr * grad(path[-1]))
    return np.array(path)
''',
        "no check of steps (a negative count returns theta_0 alone)": '''def gradient_descent(grad, theta0, lr, steps):
    """Iterates of gradient descent, shape (steps + 1, d)."""
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    path = [np.array(theta0, dtype=float)]
    for _ in range(steps):
        path.append(path[-1] - lr * grad(path[-1]))
    return np.array(path)
''',
        "steps up the gradient (+ instead of -)": '''def gradient_descent(grad, theta0, lr, steps):
    """Iterates of gradient descent, shape (steps + 1, d)."""
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    path = [np.array(theta0, dtype=float)]
    for _ in range(steps):
        path.append(path[-1] + lr * grad(path[-1]))
    return np.array(path)
''',
    },
    "ex2-find-threshold": {
        "returns lo instead of the midpoint": '''def find_threshold(A, lo, hi, tol=1e-4):
    """The learning rate where gradient descent on ½θᵀAθ starts to diverge (bisection)."""
    if diverges(A, lo):
        raise ValueError(f"lo = {lo} already diverges; choose a smaller lo")
    if not diverges(A, hi):
        raise ValueError(f"hi = {hi} does not diverge; choose a larger hi")
    while hi - lo > tol:
        mid = (lo + hi) / 2
        if diverges(A, mid):
            hi = mid
        else:
            lo = mid
    return lo
''',
        "returns hi instead of the midpoint": '''def find_threshold(A, lo, hi, tol=1e-4):
    """The learning rate where gradient descent on ½θᵀAθ starts to diverge (bisection)."""
    if diverges(A, lo):
        raise ValueError(f"lo = {lo} already diverges; choose a smaller lo")
    if not diverges(A, hi):
        raise ValueError(f"hi = {hi} does not diverge; choose a larger hi")
    while hi - lo > tol:
        mid = (lo + hi) / 2
        if diverges(A, mid):
            hi = mid
        else:
            lo = mid
    return hi
''',
        "does not check the bracket": '''def find_threshold(A, lo, hi, tol=1e-4):
    """The learning rate where gradient descent on ½θᵀAθ starts to diverge (bisection)."""
    while hi - lo > tol:
        mid = (lo + hi) / 2
        if diverges(A, mid):
            hi = mid
        else:
            lo = mid
    return (lo + hi) / 2
''',
        "messages do not begin with the end point's name (lower end ...)": '''def find_threshold(A, lo, hi, tol=1e-4):
    """The learning rate where gradient descent on ½θᵀAθ starts to diverge (bisection)."""
    if diverges(A, lo):
        raise ValueError(f"lower end {lo} already diverges, the bracket is too high")
    if not diverges(A, hi):
        raise ValueError(f"higher end {hi} does not diverge, the bracket is too low")
    while hi - lo > tol:
        mid = (lo + hi) / 2
        if diverges(A, mid):
            hi = mid
        else:
            lo = mid
    return (lo + hi) / 2
''',
        "moves the wrong end of the bracket": '''def find_threshold(A, lo, hi, tol=1e-4):
    """The learning rate where gradient descent on ½θᵀAθ starts to diverge (bisection)."""
    if diverges(A, lo):
        raise ValueError(f"lo = {lo} already diverges; choose a smaller lo")
    if not diverges(A, hi):
        raise ValueError(f"hi = {hi} does not diverge; choose a larger hi")
    while hi - lo > tol:
        mid = (lo + hi) / 2
        if diverges(A, mid):
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2
''',
    },
    "ex3-power-iteration": {
        "starts from all ones instead of a random vector": '''def power_iteration(A, steps=100, seed=0):
    """Estimate of the largest eigenvalue of a symmetric PSD matrix A, by power iteration."""
    A = np.asarray(A, dtype=float)
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"A must be a square 2-D matrix, got shape {A.shape}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    v = np.ones(len(A)) / np.sqrt(len(A))
    for _ in range(steps):
        w = A @ v
        v = w / np.linalg.norm(w)
    return float(v @ A @ v)
''',
        "returns the norm |Av| instead of the Rayleigh quotient": '''def power_iteration(A, steps=100, seed=0):
    """Estimate of the largest eigenvalue of a symmetric PSD matrix A, by power iteration."""
    A = np.asarray(A, dtype=float)
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"A must be a square 2-D matrix, got shape {A.shape}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    v = np.random.default_rng(seed).normal(size=len(A))
    v = v / np.linalg.norm(v)
    for _ in range(steps):
        w = A @ v
        lam = np.linalg.norm(w)
        v = w / lam
    return float(lam)
''',
        "one update too few (steps - 1)": '''def power_iteration(A, steps=100, seed=0):
    """Estimate of the largest eigenvalue of a symmetric PSD matrix A, by power iteration."""
    A = np.asarray(A, dtype=float)
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"A must be a square 2-D matrix, got shape {A.shape}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    v = np.random.default_rng(seed).normal(size=len(A))
    v = v / np.linalg.norm(v)
    for _ in range(steps - 1):
        w = A @ v
        v = w / np.linalg.norm(w)
    return float(v @ A @ v)
''',
        "no check that A is square": '''def power_iteration(A, steps=100, seed=0):
    """Estimate of the largest eigenvalue of a symmetric PSD matrix A, by power iteration."""
    A = np.asarray(A, dtype=float)
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    v = np.random.default_rng(seed).normal(size=len(A))
    for _ in range(steps):
        w = A @ v
        v = w / np.linalg.norm(w)
    return float(v @ A @ v)
''',
        "returns the predicted threshold 2/lambda_max instead of lambda_max": '''def power_iteration(A, steps=100, seed=0):
    """Estimate of the largest eigenvalue of a symmetric PSD matrix A, by power iteration."""
    A = np.asarray(A, dtype=float)
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"A must be a square 2-D matrix, got shape {A.shape}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    v = np.random.default_rng(seed).normal(size=len(A))
    for _ in range(steps):
        w = A @ v
        v = w / np.linalg.norm(w)
    return float(2 / (v @ A @ v))
''',
    },
    "ex3-predict-limit": {
        "predicts 1/lambda_max (the rate that jumps to the minimum) instead of 2/lambda_max": '''def predict_limit(A, rtol=1e-6, seed=0):
    """The stability limit 2/λ_max of gradient descent on ½θᵀAθ, predicted with power_iteration."""
    if not 0 < rtol < 1:
        raise ValueError(f"rtol must be in (0, 1), got {rtol}")
    steps = 10
    lam = power_iteration(A, steps, seed)
    while True:
        steps *= 2
        previous, lam = lam, power_iteration(A, steps, seed)
        if abs(lam - previous) <= rtol / 10 * lam:
            return 1 / lam
''',
        "returns lambda_max itself, not the limit": '''def predict_limit(A, rtol=1e-6, seed=0):
    """The stability limit 2/λ_max of gradient descent on ½θᵀAθ, predicted with power_iteration."""
    if not 0 < rtol < 1:
        raise ValueError(f"rtol must be in (0, 1), got {rtol}")
    steps = 10
    lam = power_iteration(A, steps, seed)
    while True:
        steps *= 2
        previous, lam = lam, power_iteration(A, steps, seed)
        if abs(lam - previous) <= rtol / 10 * lam:
            return lam
''',
        "a fixed 100 steps of power iteration (too few when the top eigenvalues are close)": '''def predict_limit(A, rtol=1e-6, seed=0):
    """The stability limit 2/λ_max of gradient descent on ½θᵀAθ, predicted with power_iteration."""
    if not 0 < rtol < 1:
        raise ValueError(f"rtol must be in (0, 1), got {rtol}")
    return 2 / power_iteration(A, seed=seed)
''',
        "a handful of steps (10)": '''def predict_limit(A, rtol=1e-6, seed=0):
    """The stability limit 2/λ_max of gradient descent on ½θᵀAθ, predicted with power_iteration."""
    if not 0 < rtol < 1:
        raise ValueError(f"rtol must be in (0, 1), got {rtol}")
    return 2 / power_iteration(A, 10, seed)
''',
        "stops on an absolute change of rtol (too early for a small lambda_max)": '''def predict_limit(A, rtol=1e-6, seed=0):
    """The stability limit 2/λ_max of gradient descent on ½θᵀAθ, predicted with power_iteration."""
    if not 0 < rtol < 1:
        raise ValueError(f"rtol must be in (0, 1), got {rtol}")
    steps = 10
    lam = power_iteration(A, steps, seed)
    while True:
        steps *= 2
        previous, lam = lam, power_iteration(A, steps, seed)
        if abs(lam - previous) <= rtol:
            return 2 / lam
''',
        "stops as soon as the change is below rtol (no margin for slow convergence)": '''def predict_limit(A, rtol=1e-6, seed=0):
    """The stability limit 2/λ_max of gradient descent on ½θᵀAθ, predicted with power_iteration."""
    if not 0 < rtol < 1:
        raise ValueError(f"rtol must be in (0, 1), got {rtol}")
    steps = 10
    lam = power_iteration(A, steps, seed)
    while True:
        steps *= 2
        previous, lam = lam, power_iteration(A, steps, seed)
        if abs(lam - previous) <= rtol * lam:
            return 2 / lam
''',
        "uses eigvalsh instead of power iteration": '''def predict_limit(A, rtol=1e-6, seed=0):
    """The stability limit 2/λ_max of gradient descent on ½θᵀAθ, predicted with power_iteration."""
    if not 0 < rtol < 1:
        raise ValueError(f"rtol must be in (0, 1), got {rtol}")
    return float(2 / np.linalg.eigvalsh(np.asarray(A, dtype=float))[-1])
''',
        "no check of rtol": '''def predict_limit(A, rtol=1e-6, seed=0):
    """The stability limit 2/λ_max of gradient descent on ½θᵀAθ, predicted with power_iteration."""
    steps = 10
    lam = power_iteration(A, steps, seed)
    while True:
        steps *= 2
        previous, lam = lam, power_iteration(A, steps, seed)
        if abs(lam - previous) <= rtol / 10 * lam:
            return 2 / lam
''',
    },
}
