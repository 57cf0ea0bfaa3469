"""The one training loop: accumulation, the divergence guard, gradient release, streams."""

from __future__ import annotations

import torch

from tui_unlearn.engine.runtime import default_threads, make_accelerator
from tui_unlearn.engine.streams import BatchStream, global_positions
from tui_unlearn.engine.training import DIVERGED, OK, TrainingLoop


class Config:
    device = "cpu"
    mixed_precision = "auto"
    grad_accum = 1


def accelerator(accum: int = 1):
    config = Config()
    config.grad_accum = accum
    return make_accelerator(config)


def tiny_model(seed: int = 0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))


def data(n: int = 16, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 4, generator=g), torch.randn(n, 1, generator=g)


def test_accumulating_two_halves_is_one_step_on_the_whole_batch():
    x, y = data(8)
    model_a = tiny_model()
    one = TrainingLoop(accelerator(1), model_a, model_a.parameters(), lr=0.1, schedule=lambda s: 1.0)
    out_a = one.step(lambda j: {"loss": ((one.model(x) - y) ** 2).mean()})
    model_b = tiny_model()
    two = TrainingLoop(accelerator(2), model_b, model_b.parameters(), lr=0.1, schedule=lambda s: 1.0)
    halves = [(x[:4], y[:4]), (x[4:], y[4:])]
    out_b = two.step(lambda j: {"loss": ((two.model(halves[j][0]) - halves[j][1]) ** 2).mean()})
    assert out_a.status == out_b.status == OK
    for a, b in zip(model_a.parameters(), model_b.parameters()):
        assert torch.allclose(a, b, atol=1e-6)
    assert abs(out_a.terms["loss"] - out_b.terms["loss"]) < 1e-6


def test_a_nan_in_any_micro_step_stops_before_the_update():
    x, y = data(8)
    model = tiny_model()
    loop = TrainingLoop(accelerator(2), model, model.parameters(), lr=0.1, schedule=lambda s: 1.0)
    first = loop.step(lambda j: {"loss": ((loop.model(x) - y) ** 2).mean()})
    assert first.status == OK
    weights = [p.detach().clone() for p in model.parameters()]
    moments = {k: v.clone() for k, v in loop.optimizer.state_dict()["state"][0].items()}

    def nan_second_half(j):
        loss = ((loop.model(x) - y) ** 2).mean()
        return {"loss": loss * float("nan") if j == 1 else loss}

    second = loop.step(nan_second_half)
    assert second.status == DIVERGED
    for before, after in zip(weights, model.parameters()):
        assert torch.equal(before, after)  # the weights of the last good step
    state = loop.optimizer.state_dict()["state"][0]
    assert all(torch.equal(moments[k], state[k]) for k in moments)  # Adam's moments untouched too
    assert all(p.grad is None for p in model.parameters())


def test_an_infinite_gradient_stops_too():
    x, y = data(4)
    model = tiny_model()
    loop = TrainingLoop(accelerator(1), model, model.parameters(), lr=0.1, schedule=lambda s: 1.0, grad_clip=0)
    weights = [p.detach().clone() for p in model.parameters()]

    def exploding(j):
        out = loop.model(x)
        # finite loss, infinite gradient: sqrt at 0
        return {"loss": (out - out.detach()).abs().sqrt().sum() + ((out - y) ** 2).mean()}

    assert loop.step(exploding).status == DIVERGED
    assert all(torch.equal(a, b) for a, b in zip(weights, model.parameters()))


def test_gradients_are_released_right_after_the_step():
    x, y = data(4)
    model = tiny_model()
    loop = TrainingLoop(accelerator(1), model, model.parameters(), lr=0.1, schedule=lambda s: 1.0)
    loop.step(lambda j: {"loss": ((loop.model(x) - y) ** 2).mean()})
    assert all(p.grad is None for p in model.parameters())


def test_the_schedule_steps_once_per_optimisation_step():
    x, y = data(4)
    model = tiny_model()
    loop = TrainingLoop(accelerator(3), model, model.parameters(), lr=1.0, schedule=lambda s: 1.0 / (s + 1))
    lrs = [loop.step(lambda j: {"loss": ((loop.model(x) - y) ** 2).mean()}).lr for _ in range(3)]
    assert lrs == [0.5, 1 / 3, 0.25]


def test_stream_order_is_a_function_of_the_seed_and_resumes_at_any_position():
    n = 7
    whole = [i for i, _ in zip(global_positions(n, seed=3), range(30))]
    assert sorted(whole[:7]) == list(range(7)) and sorted(whole[7:14]) == list(range(7))
    assert whole[:7] != whole[7:14]  # each epoch reshuffled
    resumed = [i for i, _ in zip(global_positions(n, seed=3, start=11), range(19))]
    assert resumed == whole[11:]


def test_batch_stream_without_accelerator_gives_indexed_batches():
    examples = [{"input_ids": [1, 2, i + 3], "labels": [-100, 2, i + 3]} for i in range(5)]
    stream = BatchStream(examples, 8, seed=0, pad_id=0, accelerator=None)
    batch = stream.next()
    assert stream.batch_size == 5 and sorted(batch["index"].tolist()) == [0, 1, 2, 3, 4]
    assert batch["input_ids"][:, 2].tolist() == [i + 3 for i in batch["index"].tolist()]


def test_default_threads_leave_room_on_small_machines():
    assert default_threads(2) == 1 and default_threads(1) == 1
    assert default_threads(8) == 4 and default_threads(64) == 8
