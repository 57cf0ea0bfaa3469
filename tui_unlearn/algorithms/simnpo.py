"""SimNPO (Fan et al. 2024): NPO without a reference model, on length-normalised likelihood."""

from tui_unlearn.algorithms import register
from tui_unlearn.algorithms.base import Algorithm, HyperParam, LossInputs, answer_nll, plus_retain_nll, retain_weight


def _loss(x: LossInputs) -> dict:
    import torch.nn.functional as F

    forget_nll = answer_nll(x.model, x.forget)
    beta, gamma = x.hp["beta"], x.hp["gamma"]
    # -(2/beta) log sigmoid(-(beta/|y|) log pi(y|x) - gamma), with -(1/|y|) log pi = mean NLL.
    forget = -(2.0 / beta) * F.logsigmoid(beta * forget_nll - gamma).mean()
    terms = {"simnpo": forget, "forget_nll": forget_nll.mean().detach()}
    return plus_retain_nll(x, forget, terms)


register(
    Algorithm(
        name="simnpo",
        description="SimNPO: reference-free, length-normalised NPO on the forget set, plus retain NLL.",
        loss=_loss,
        hyperparams=(
            HyperParam("beta", "float", 2.5, "inverse temperature", 1e-4, 100.0),
            HyperParam("gamma", "float", 0.0, "reward margin", 0.0, 100.0),
            retain_weight(),
        ),
    )
)
