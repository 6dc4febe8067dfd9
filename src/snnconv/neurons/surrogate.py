"""The spike nonlinearity with a surrogate gradient.

Forward: the exact Heaviside step ``v >= θ`` the engine uses, so a trained network infers
exactly as it will once saved. Backward: a triangle of half-width θ and height 1/θ centred on
the threshold, ``max(0, 1 - |v - θ| / θ) / θ`` (area 1: the derivative of a ramp from v = 0 to
v = 2θ). Scaling with θ keeps the gradient's reach the same in every layer whatever its
threshold. The threshold gets the opposite gradient (raising θ is lowering v).
"""

from __future__ import annotations

import torch


class _Spike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(v, theta)
        return torch.ge(v, theta).to(v.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        v, theta = ctx.saved_tensors
        pseudo = (1.0 - ((v - theta) / theta).abs()).clamp(min=0.0) / theta
        g = grad * pseudo
        g_theta = None
        if ctx.needs_input_grad[1]:
            g_theta = (-g).sum_to_size(theta.shape)
        return g, g_theta


def spike(v: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """0/1 spikes where the membrane ``v`` reaches ``theta`` (broadcast against ``v``)."""
    return _Spike.apply(v, theta)
