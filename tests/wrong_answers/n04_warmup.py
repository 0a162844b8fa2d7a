"""Plausible wrong answers to the exercises of notebook 04; each must lose points."""
WRONG = {
    "exA-noam": {
        "evaluates the formula at step instead of step + 1 (guarding step 0)": '''def noam_lr(step, d_model, warmup_steps):
    for name, value, low in [("step", step, 0), ("d_model", d_model, 1), ("warmup_steps", warmup_steps, 1)]:
        if value < low:
            raise ValueError(f"{name} must be >= {low}, got {value}")
    s = max(step, 1)
    return float(d_model ** -0.5 * min(s ** -0.5, s * warmup_steps ** -1.5))
''',
        "warmup branch with w^-0.5 instead of w^-1.5": '''def noam_lr(step, d_model, warmup_steps):
    for name, value, low in [("step", step, 0), ("d_model", d_model, 1), ("warmup_steps", warmup_steps, 1)]:
        if value < low:
            raise ValueError(f"{name} must be >= {low}, got {value}")
    s = step + 1
    return float(d_model ** -0.5 * min(s ** -0.5, s * warmup_steps ** -0.5))
''',
        "no validation of the arguments": '''def noam_lr(step, d_model, warmup_steps):
    s = step + 1
    return float(d_model ** -0.5 * min(s ** -0.5, s * warmup_steps ** -1.5))
''',
        "one ValueError message that names no parameter": '''def noam_lr(step, d_model, warmup_steps):
    if step < 0 or d_model < 1 or warmup_steps < 1:
        raise ValueError("invalid argument")
    s = step + 1
    return float(d_model ** -0.5 * min(s ** -0.5, s * warmup_steps ** -1.5))
''',
    },
    "exB-lambda": {
        "warmup off by one step: starts at 1/w instead of 0": '''def warmup_cosine_multiplier(warmup_steps, total_steps, min_ratio=0.0):
    if not (isinstance(warmup_steps, int) and isinstance(total_steps, int) and 0 <= warmup_steps < total_steps):
        raise ValueError(f"need integers 0 <= warmup_steps < total_steps, got {warmup_steps}, {total_steps}")
    if not 0 <= min_ratio <= 1:
        raise ValueError(f"min_ratio must lie in [0, 1], got {min_ratio}")

    def factor(step):
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(step - warmup_steps, total_steps - warmup_steps) / (total_steps - warmup_steps)
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor
''',
        "cosine climbs back after total_steps (no clamp)": '''def warmup_cosine_multiplier(warmup_steps, total_steps, min_ratio=0.0):
    if not (isinstance(warmup_steps, int) and isinstance(total_steps, int) and 0 <= warmup_steps < total_steps):
        raise ValueError(f"need integers 0 <= warmup_steps < total_steps, got {warmup_steps}, {total_steps}")
    if not 0 <= min_ratio <= 1:
        raise ValueError(f"min_ratio must lie in [0, 1], got {min_ratio}")

    def factor(step):
        if step < warmup_steps:
            return step / warmup_steps
        progress = (step - warmup_steps) / (total_steps - warmup_steps)
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor
''',
        "floor added on top of the cosine instead of blending": '''def warmup_cosine_multiplier(warmup_steps, total_steps, min_ratio=0.0):
    if not (isinstance(warmup_steps, int) and isinstance(total_steps, int) and 0 <= warmup_steps < total_steps):
        raise ValueError(f"need integers 0 <= warmup_steps < total_steps, got {warmup_steps}, {total_steps}")
    if not 0 <= min_ratio <= 1:
        raise ValueError(f"min_ratio must lie in [0, 1], got {min_ratio}")

    def factor(step):
        if step < warmup_steps:
            return step / warmup_steps
        progress = min(step - warmup_steps, total_steps - warmup_steps) / (total_steps - warmup_steps)
        return max(min_ratio, 0.5 * (1 + math.cos(math.pi * progress)))

    return factor
''',
        "arguments checked at every step instead of when the multiplier is built": '''def warmup_cosine_multiplier(warmup_steps, total_steps, min_ratio=0.0):
    def factor(step):
        if not 0 <= warmup_steps < total_steps:
            raise ValueError(f"need 0 <= warmup_steps < total_steps, got {warmup_steps}, {total_steps}")
        if not 0 <= min_ratio <= 1:
            raise ValueError(f"min_ratio must lie in [0, 1], got {min_ratio}")
        if step < warmup_steps:
            return step / warmup_steps
        progress = min(step - warmup_steps, total_steps - warmup_steps) / (total_steps - warmup_steps)
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor
''',
    },
    "exC-recipe": {
        "linear scaling applied to Adam too": '''def scale_recipe(recipe, k, optimizer="sgd"):
    if optimizer not in ("sgd", "adam"):
        raise ValueError(f"optimizer must be 'sgd' or 'adam', got {optimizer!r}")
    batch = k * recipe["batch_size"]
    if not k > 0 or batch != round(batch):
        raise ValueError(f"k must be > 0 and k * batch_size a whole number, got k = {k}")
    batch = round(batch)
    old, new = math.ceil(recipe["train_size"] / recipe["batch_size"]), math.ceil(recipe["train_size"] / batch)
    return dict(recipe, batch_size=batch, lr=recipe["lr"] * k, warmup_steps=round(recipe["warmup_steps"] * new / old),
                total_steps=round(recipe["total_steps"] * new / old))
''',
        "warmup steps not rescaled with the batch": '''def scale_recipe(recipe, k, optimizer="sgd"):
    if optimizer not in ("sgd", "adam"):
        raise ValueError(f"optimizer must be 'sgd' or 'adam', got {optimizer!r}")
    batch = k * recipe["batch_size"]
    if not k > 0 or batch != round(batch):
        raise ValueError(f"k must be > 0 and k * batch_size a whole number, got k = {k}")
    batch = round(batch)
    old, new = math.ceil(recipe["train_size"] / recipe["batch_size"]), math.ceil(recipe["train_size"] / batch)
    lr = recipe["lr"] * (k if optimizer == "sgd" else math.sqrt(k))
    return dict(recipe, batch_size=batch, lr=lr, total_steps=round(recipe["total_steps"] * new / old))
''',
        "steps divided by k (ignores the smaller last batch of each epoch)": '''def scale_recipe(recipe, k, optimizer="sgd"):
    if optimizer not in ("sgd", "adam"):
        raise ValueError(f"optimizer must be 'sgd' or 'adam', got {optimizer!r}")
    batch = k * recipe["batch_size"]
    if not k > 0 or batch != round(batch):
        raise ValueError(f"k must be > 0 and k * batch_size a whole number, got k = {k}")
    lr = recipe["lr"] * (k if optimizer == "sgd" else math.sqrt(k))
    return dict(recipe, batch_size=round(batch), lr=lr, warmup_steps=round(recipe["warmup_steps"] / k),
                total_steps=round(recipe["total_steps"] / k))
''',
        "changes the recipe it was given": '''def scale_recipe(recipe, k, optimizer="sgd"):
    if optimizer not in ("sgd", "adam"):
        raise ValueError(f"optimizer must be 'sgd' or 'adam', got {optimizer!r}")
    batch = k * recipe["batch_size"]
    if not k > 0 or batch != round(batch):
        raise ValueError(f"k must be > 0 and k * batch_size a whole number, got k = {k}")
    old, new = math.ceil(recipe["train_size"] / recipe["batch_size"]), math.ceil(recipe["train_size"] / round(batch))
    recipe.update(batch_size=round(batch), lr=recipe["lr"] * (k if optimizer == "sgd" else math.sqrt(k)),
                  warmup_steps=round(recipe["warmup_steps"] * new / old), total_steps=round(recipe["total_steps"] * new / old))
    return recipe
''',
        "step counts truncated with int() instead of rounded": '''import math


def scale_recipe(recipe, k, optimizer="sgd"):
    if optimizer not in ("sgd", "adam"):
        raise ValueError(f"optimizer must be 'sgd' or 'adam', got {optimizer!r}")
    batch = k * recipe["batch_size"]
    if not k > 0 or batch != round(batch):
        raise ValueError(f"k must be > 0 and k * batch_size a whole number, got k = {k}")
    batch = round(batch)
    old, new = math.ceil(recipe["train_size"] / recipe["batch_size"]), math.ceil(recipe["train_size"] / batch)
    lr = recipe["lr"] * (k if optimizer == "sgd" else math.sqrt(k))
    return dict(recipe, batch_size=batch, lr=lr, warmup_steps=int(recipe["warmup_steps"] * new / old),
                total_steps=int(recipe["total_steps"] * new / old))
''',
        "step counts rounded up with math.ceil instead of to the nearest step": '''import math


def scale_recipe(recipe, k, optimizer="sgd"):
    if optimizer not in ("sgd", "adam"):
        raise ValueError(f"optimizer must be 'sgd' or 'adam', got {optimizer!r}")
    batch = k * recipe["batch_size"]
    if not k > 0 or batch != round(batch):
        raise ValueError(f"k must be > 0 and k * batch_size a whole number, got k = {k}")
    batch = round(batch)
    old, new = math.ceil(recipe["train_size"] / recipe["batch_size"]), math.ceil(recipe["train_size"] / batch)
    lr = recipe["lr"] * (k if optimizer == "sgd" else math.sqrt(k))
    return dict(recipe, batch_size=batch, lr=lr, warmup_steps=math.ceil(recipe["warmup_steps"] * new / old),
                total_steps=math.ceil(recipe["total_steps"] * new / old))
''',
        "square-root rule for SGD as well": '''def scale_recipe(recipe, k, optimizer="sgd"):
    if optimizer not in ("sgd", "adam"):
        raise ValueError(f"optimizer must be 'sgd' or 'adam', got {optimizer!r}")
    batch = k * recipe["batch_size"]
    if not k > 0 or batch != round(batch):
        raise ValueError(f"k must be > 0 and k * batch_size a whole number, got k = {k}")
    batch = round(batch)
    old, new = math.ceil(recipe["train_size"] / recipe["batch_size"]), math.ceil(recipe["train_size"] / batch)
    return dict(recipe, batch_size=batch, lr=recipe["lr"] * math.sqrt(k),
                warmup_steps=round(recipe["warmup_steps"] * new / old), total_steps=round(recipe["total_steps"] * new / old))
''',
    },
}
