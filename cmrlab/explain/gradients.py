"""Gradient attributions: which input voxels move the score (:mod:`cmrlab.explain.targets`).

Each function returns a map with the input's shape ``(N, C, *spatial)``:

* :func:`saliency` — ``∂S/∂x`` (Simonyan et al. 2014), by default its absolute value;
* :func:`gradient_x_input` — ``x · ∂S/∂x`` (Shrikumar et al. 2016);
* :func:`smoothgrad` — the gradient averaged over ``n_samples`` noisy copies
  ``x + ε``, ``ε ~ N(0, σ²)`` (Smilkov et al. 2017; the paper's σ is 10–20 % of the input range);
* :func:`integrated_gradients` — ``(x − x₀) · ∫₀¹ ∂S/∂x(x₀ + α(x − x₀)) dα`` (Sundararajan
  et al. 2017), the integral by the midpoint rule with ``steps`` points; its attributions add up to
  ``S(x) − S(x₀)`` (completeness), which ``return_delta`` checks;
* :func:`guided_backprop` — the gradient with every ReLU letting only positive gradients back
  (Springenberg et al. 2015). Adebayo et al. (2018) showed its maps hardly change when the model's
  weights are randomised: it shows edges of the image, not what the model learned.

The model runs in eval mode (:func:`~cmrlab.explain.targets.eval_mode`) and its training flag is
put back afterwards. The tests check every function against captum to float tolerance.
"""
from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from cmrlab.checks import check_bool, check_int, check_number
from cmrlab.errors import ArgumentError
from cmrlab.explain.targets import (
    Target,
    check_explain_input,
    eval_mode,
    explained_score,
    fixed_target,
    model_device,
    select_samples,
)

__all__ = ["saliency", "gradient_x_input", "smoothgrad", "integrated_gradients", "guided_backprop"]


def _prepare(model: nn.Module, x: object) -> torch.Tensor:
    if not isinstance(model, nn.Module):
        raise ArgumentError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    x = check_explain_input(x)
    return x.detach().to(model_device(model))


def _grad(model: nn.Module, x: torch.Tensor, target: Target, region: object) -> tuple[torch.Tensor, torch.Tensor]:
    """``(∂S/∂x, S)`` of the score of every sample of ``x`` (the samples are independent)."""
    x = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        score = explained_score(model(x), target, region)
        if not score.requires_grad:
            raise ArgumentError("the score does not depend on the input through the model (no gradient)")
        (grad,) = torch.autograd.grad(score.sum(), x)
    return grad, score.detach()


def saliency(model: nn.Module, x: torch.Tensor, target: Target = None, *, region: object = None,
             absolute: bool = True) -> torch.Tensor:
    """The gradient of the score with respect to ``x``; ``absolute``: its magnitude (the paper's)."""
    absolute = check_bool("absolute", absolute)
    x = _prepare(model, x)
    with eval_mode(model):
        grad, _ = _grad(model, x, target, region)
    return grad.abs() if absolute else grad


def gradient_x_input(model: nn.Module, x: torch.Tensor, target: Target = None, *,
                     region: object = None) -> torch.Tensor:
    """``x · ∂S/∂x``: the gradient weighted by the input (a first-order share of the score)."""
    x = _prepare(model, x)
    with eval_mode(model):
        grad, _ = _grad(model, x, target, region)
    return grad * x


def smoothgrad(model: nn.Module, x: torch.Tensor, target: Target = None, *, region: object = None,
               n_samples: int = 25, stdev: float = 0.15, absolute: bool = False,
               batch_size: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """The gradient averaged over ``n_samples`` copies of ``x`` with Gaussian noise of SD ``stdev``.

    ``stdev`` is in the input's units (for min-max normalised images, 0.1–0.2 is the paper's
    10–20 %). ``absolute`` averages the magnitudes instead (captum's ``Saliency`` default inside
    ``NoiseTunnel``). The noise is drawn in one call, ``(N · n_samples, ...)`` with the copies of a
    sample next to each other, from ``generator`` (default: torch's global generator), so a seeded
    call is reproducible. ``batch_size`` bounds how many noisy copies go through the model at once.
    """
    n_samples = check_int("n_samples", n_samples, 1)
    stdev = check_number("stdev", stdev, 0.0)
    absolute = check_bool("absolute", absolute)
    x = _prepare(model, x)
    n = x.shape[0]
    batch = n * n_samples if batch_size is None else check_int("batch_size", batch_size, 1)
    expanded = x.repeat_interleave(n_samples, dim=0)
    noise = torch.normal(0.0, torch.full(expanded.shape, stdev, dtype=x.dtype, device=x.device),
                         generator=generator) if stdev > 0 else torch.zeros_like(expanded)
    noisy = expanded + noise
    index = torch.arange(n, device=x.device).repeat_interleave(n_samples)      # the sample of each copy
    grads = []
    with eval_mode(model):
        target = fixed_target(model, x, target)
        for start in range(0, noisy.shape[0], batch):
            t, r = select_samples(target, region, index[start:start + batch], x)
            g, _ = _grad(model, noisy[start:start + batch], t, r)
            grads.append(g.abs() if absolute else g)
    g = torch.cat(grads)
    return g.reshape(n, n_samples, *x.shape[1:]).mean(1)


def _alphas(steps: int) -> Iterator[float]:
    return ((k + 0.5) / steps for k in range(steps))


def integrated_gradients(model: nn.Module, x: torch.Tensor, target: Target = None, *,
                         region: object = None, baseline: float | torch.Tensor = 0.0, steps: int = 50,
                         batch_size: int | None = None, return_delta: bool = False,
                         ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Integrated gradients from ``baseline`` (a number or a tensor shaped like ``x``) to ``x``.

    The path integral uses the midpoint rule with ``steps`` points (captum's ``riemann_middle``).
    ``return_delta`` also returns the completeness error per sample, ``Σ attributions −
    (S(x) − S(baseline))``: small when ``steps`` is enough. ``batch_size`` bounds how many path
    points (times N) go through the model at once.
    """
    steps = check_int("steps", steps, 1)
    return_delta = check_bool("return_delta", return_delta)
    x = _prepare(model, x)
    if isinstance(baseline, torch.Tensor):
        base = baseline.detach().to(x.device, x.dtype)
        if base.shape != x.shape and base.shape != x.shape[1:]:
            raise ArgumentError(f"baseline must be a number or shaped like x {tuple(x.shape)}, got {tuple(base.shape)}")
        base = base.expand_as(x)
    else:
        base = torch.full_like(x, check_number("baseline", baseline))
    n = x.shape[0]
    per_call = steps if batch_size is None else max(1, check_int("batch_size", batch_size, 1) // n)
    total = torch.zeros_like(x)
    alphas = list(_alphas(steps))
    with eval_mode(model):
        target = fixed_target(model, x, target)
        for start in range(0, steps, per_call):
            chunk = alphas[start:start + per_call]
            a = torch.tensor(chunk, dtype=x.dtype, device=x.device).view(-1, *([1] * x.ndim))
            points = (base.unsqueeze(0) + a * (x - base).unsqueeze(0)).reshape(-1, *x.shape[1:])
            m = len(chunk)
            t, r = select_samples(target, region, torch.arange(n, device=x.device).repeat(m), x)
            g, _ = _grad(model, points, t, r)
            total += g.reshape(m, *x.shape).sum(0)
        attributions = (x - base) * total / steps
        if not return_delta:
            return attributions
        with torch.no_grad():
            s_x = explained_score(model(x), target, region)
            s_0 = explained_score(model(base), target, region)
    delta = attributions.reshape(n, -1).sum(1) - (s_x - s_0)
    return attributions, delta


def guided_backprop(model: nn.Module, x: torch.Tensor, target: Target = None, *,
                    region: object = None) -> torch.Tensor:
    """The gradient with every ``nn.ReLU`` passing back only positive gradients.

    Only ReLU *modules* are changed (as in captum): a model that calls ``torch.relu`` or
    ``F.relu`` in its ``forward`` is refused when it has no ``nn.ReLU`` module at all, since the
    result would be the plain gradient under another name.
    """
    x = _prepare(model, x)
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    if not relus:
        raise ArgumentError(f"guided backprop changes the backward pass of nn.ReLU modules, and "
                            f"{type(model).__name__} has none")

    def forward_hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        if isinstance(output, torch.Tensor) and output.requires_grad:
            output.register_hook(lambda g: g.clamp(min=0))

    handles = [m.register_forward_hook(forward_hook) for m in relus]
    try:
        with eval_mode(model):
            grad, _ = _grad(model, x, target, region)
    finally:
        for h in handles:
            h.remove()
    return grad

