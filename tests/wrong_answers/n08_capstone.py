"""Plausible wrong answers to the capstone (notebook 08); each must lose points."""
WRONG = {
    "cap-recipe": {
        "a constant learning rate far too low (SGD at 1e-3, no schedule)": '''
def recipe(model, budget_steps):
    return torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9), None
''',
        "the worked example's recipe copied (AdamW, warmup + linear at 0.015)": '''
def recipe(model, budget_steps):
    return warmup_linear(0.015)(model, budget_steps)
''',
        "the worked example's peak with SGD (warmup + linear to 0 at 0.015)": '''
def recipe(model, budget_steps):
    return warmup_linear(0.015, optimizer=nesterov_sgd)(model, budget_steps)
''',
        "a budget-blind decay: ExponentialLR(0.995) whatever the budget": '''
def recipe(model, budget_steps):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    return optimizer, torch.optim.lr_scheduler.ExponentialLR(optimizer, 0.995)
''',
        "a constant that drops to 0 at the last step only (the letter of a last-step rule)": '''
def recipe(model, budget_steps):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.0 if s >= budget_steps - 1 else 1.0)
''',
        "a constant at the peak that works, no schedule": '''
def recipe(model, budget_steps):
    return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True), None
''',
        "pre-trains the model inside recipe (more updates than the budget)": '''
def recipe(model, budget_steps):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    for start in range(0, 64 * budget_steps, 64):  # a head start on the training text
        optimizer.zero_grad()
        F.cross_entropy(model(X_train[start:start + 64]), y_train[start:start + 64]).backward()
        optimizer.step()
    return optimizer, LambdaLR(optimizer, lambda t: max(0.0, 1 - t / budget_steps))
''',
        "an SGD subclass that makes two updates per step() call": '''
class TwiceSGD(torch.optim.SGD):
    def step(self, closure=None):
        super().step(closure)
        return super().step(closure)


def recipe(model, budget_steps):
    optimizer = TwiceSGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    return optimizer, LambdaLR(optimizer, lambda t: max(0.0, 1 - t / budget_steps))
''',
        "a scheduler whose factor steps the optimizer again": '''
def recipe(model, budget_steps):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)

    def factor(t):
        if t > 0:
            optimizer.step()  # reuses the gradient: an extra update per step
        return max(0.0, 1 - t / budget_steps)

    return optimizer, LambdaLR(optimizer, factor)
''',
        "a second optimizer stepped from a hook after every step": '''
def recipe(model, budget_steps):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    extra = torch.optim.SGD(model.parameters(), lr=0.1)
    optimizer.register_step_post_hook(lambda *args: extra.step())
    return optimizer, LambdaLR(optimizer, lambda t: max(0.0, 1 - t / budget_steps))
''',
        "tuned to the notebook's budget: OneCycleLR with total_steps=200": '''
def recipe(model, budget_steps):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    return optimizer, torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.15, total_steps=200)
''',
        "tuned to the notebook's budget: cosine hard-coded for 200 steps": '''
def recipe(model, budget_steps):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    return optimizer, torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=200)
''',
        "ReduceLROnPlateau (needs a metric the grader does not pass)": '''
def recipe(model, budget_steps):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    return optimizer, torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer)
''',
        "SGD at a learning rate far too high (diverges)": '''
def recipe(model, budget_steps):
    optimizer = torch.optim.SGD(model.parameters(), lr=50.0, momentum=0.9)
    return optimizer, LambdaLR(optimizer, lambda t: max(0.0, 1 - t / budget_steps))
''',
    },
}
