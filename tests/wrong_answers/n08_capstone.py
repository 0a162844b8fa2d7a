"""Plausible wrong answers to the capstone (notebook 08); each must lose points."""
WRONG = {
    "cap-recipe": {
        "a constant learning rate far too low (AdamW at 1e-4, no schedule)": '''
def recipe(model, budget_steps):
    return torch.optim.AdamW(model.parameters(), lr=1e-4), None
''',
        "pre-trains the model inside recipe (more updates than the budget)": '''
def recipe(model, budget_steps):
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.015, weight_decay=0.0)
    for start in range(0, 64 * budget_steps, 64):  # a head start on the training text
        optimizer.zero_grad()
        F.cross_entropy(model(X_train[start:start + 64]), y_train[start:start + 64]).backward()
        optimizer.step()
    return optimizer, LambdaLR(optimizer, lambda t: max(0.0, 1 - t / budget_steps))
''',
        "an optimizer that makes two updates per step() call": '''
class TwiceAdamW(torch.optim.AdamW):
    def step(self, closure=None):
        super().step(closure)
        return super().step(closure)


def recipe(model, budget_steps):
    optimizer = TwiceAdamW(model.parameters(), lr=0.015, weight_decay=0.0)
    return optimizer, LambdaLR(optimizer, lambda t: max(0.0, 1 - t / budget_steps))
''',
        "a scheduler whose factor steps the optimizer again": '''
def recipe(model, budget_steps):
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.015, weight_decay=0.0)

    def factor(t):
        if t > 0:
            optimizer.step()  # reuses the gradient: an extra update per step
        return max(0.0, 1 - t / budget_steps)

    return optimizer, LambdaLR(optimizer, factor)
''',
        "a second optimizer stepped from a hook after every step": '''
def recipe(model, budget_steps):
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.015, weight_decay=0.0)
    extra = torch.optim.AdamW(model.parameters(), lr=0.015, weight_decay=0.0)
    optimizer.register_step_post_hook(lambda *args: extra.step())
    return optimizer, LambdaLR(optimizer, lambda t: max(0.0, 1 - t / budget_steps))
''',
        "a budget-blind decay: ExponentialLR(0.99) whatever the budget": '''
def recipe(model, budget_steps):
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.015, weight_decay=0.0)
    return optimizer, torch.optim.lr_scheduler.ExponentialLR(optimizer, 0.99)
''',
        "tuned to the notebook's budget: OneCycleLR with total_steps=200": '''
def recipe(model, budget_steps):
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.015, weight_decay=0.0)
    return optimizer, torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.015, total_steps=200)
''',
        "tuned to the notebook's budget: cosine hard-coded for 200 steps": '''
def recipe(model, budget_steps):
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.015, weight_decay=0.0)
    return optimizer, torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=200)
''',
        "ReduceLROnPlateau (needs a metric the grader does not pass)": '''
def recipe(model, budget_steps):
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.015, weight_decay=0.0)
    return optimizer, torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer)
''',
        "SGD at a learning rate far too high (diverges)": '''
def recipe(model, budget_steps):
    optimizer = torch.optim.SGD(model.parameters(), lr=50.0, momentum=0.9)
    return optimizer, LambdaLR(optimizer, lambda t: max(0.0, 1 - t / budget_steps))
''',
    },
}
