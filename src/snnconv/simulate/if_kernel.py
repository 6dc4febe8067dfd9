"""The binary IF update over a chunk of steps as one Triton kernel, for CUDA.

The eager update (``engine._binary_steps``) runs three kernels per step (add, compare,
reset), each a full pass over the membranes: about 32 bytes moved per neuron and step. This
kernel keeps each membrane in a register across the chunk's steps, so it reads each current
once and writes each spike once: 8 bytes. It does the same float32 operations in the same
order (``v + (I + bias)``, ``v >= theta``, ``v - theta`` or ``v * 0``), so its spikes and
membranes are bit-identical to the eager update's.

Triton ships with torch's CUDA builds; snnconv does not depend on it. Where it cannot be
imported, or the tensors' layouts differ, the engine keeps the eager update.
"""

from __future__ import annotations

import functools

import torch

#: Neurons per Triton program: 4 warps x 32 threads x 8 consecutive float32s.
BLOCK = 1024


def available() -> bool:
    """Whether Triton can be imported (it ships with torch's CUDA builds)."""
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def applies(v: torch.Tensor, current: torch.Tensor, static: bool, spikes: torch.Tensor) -> bool:
    """Whether the kernel can walk these tensors as flat storage in one order: the membranes
    dense, and each step's current and spikes laid out exactly as the membranes."""
    dense = v.is_contiguous() or v.is_contiguous(memory_format=torch.channels_last)
    steps = [current] if static else [current[0]]
    if len(spikes) > 1 and not static:
        steps.append(current[1])
    same = all(s.stride() == v.stride() for s in (*steps, spikes[0]))
    spaced = (static or current.stride(0) == v.numel()) and spikes.stride(0) == v.numel()
    return dense and same and spaced and current.dtype == v.dtype == torch.float32


def binary_steps(
    v: torch.Tensor,
    current: torch.Tensor,
    static: bool,
    theta: torch.Tensor,
    bias: torch.Tensor | None,
    spikes: torch.Tensor,
    reset: str,
) -> None:
    """``engine._binary_steps`` with the layer's bias added to each step's current, in one
    launch: ``v`` is updated in place and ``spikes`` (steps, ...) written as 0/1 floats.
    ``theta`` and ``bias`` broadcast against ``v`` (a scalar or one value per channel)."""
    n = v.numel()
    scalar = theta.dim() == 0
    theta_arg = float(theta) if scalar else _like(theta, v)
    bias_arg = v if bias is None else _like(bias, v)  # a placeholder pointer when None
    grid = (-(-n // BLOCK),)
    _kernel()[grid](
        v,
        current,
        theta_arg,
        bias_arg,
        spikes,
        n,
        0 if static else n,
        STEPS=len(spikes),
        SCALAR_THETA=scalar,
        HAS_BIAS=bias is not None,
        RESET_ZERO=reset != "subtract",
        BLOCK=BLOCK,
    )


def _like(p: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """A per-channel parameter spread over every neuron, in ``v``'s layout (read once per
    neuron by the kernel, not once per step)."""
    return torch.empty_like(v).copy_(p.expand_as(v))


@functools.cache
def _kernel():
    """The kernel, compiled on first use (importing Triton is slow and CUDA-only here)."""
    import triton
    import triton.language as tl

    @triton.jit
    def if_steps(
        v_ptr,
        current_ptr,
        theta,
        bias_ptr,
        spikes_ptr,
        n,
        current_step_stride,
        STEPS: tl.constexpr,  # one compilation per chunk length, its loop known in full
        SCALAR_THETA: tl.constexpr,
        HAS_BIAS: tl.constexpr,
        RESET_ZERO: tl.constexpr,
        BLOCK: tl.constexpr,
    ):
        offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < n
        v = tl.load(v_ptr + offs, mask=mask)
        if SCALAR_THETA:
            th = theta
        else:
            th = tl.load(theta + offs, mask=mask)
        if HAS_BIAS:
            b = tl.load(bias_ptr + offs, mask=mask)
        # pointers advanced step by step: 64-bit, whatever steps x n comes to
        current_at = current_ptr + offs
        spikes_at = spikes_ptr + offs
        for _ in range(STEPS):
            i = tl.load(current_at, mask=mask)
            if HAS_BIAS:
                i = i + b
            v = v + i
            s = (v >= th).to(tl.float32)
            if RESET_ZERO:
                v = v * (1.0 - s)
            else:
                v = v - s * th  # s * th is exact (s is 0 or 1): as the eager sub
            tl.store(spikes_at, s, mask=mask)
            current_at += current_step_stride
            spikes_at += n
        tl.store(v_ptr + offs, v, mask=mask)

    return if_steps
