"""Per-neuron loops over a chunk's steps as single Triton kernels, for CUDA.

The engine's eager loops launch a few kernels per step, each a full pass over the layer:
the IF update (add, compare, reset) moves about 32 bytes per neuron and step, a running sum
12. These kernels keep each neuron's state in a register across the chunk's steps, so they
read each input once and write each output once (8 bytes). They do the same float32
operations in the same order as the eager loops (``v + ((I + b1) + b2)``, ``v >= theta``,
``v - theta`` or ``v * 0``; ``acc + x``), so their results are bit-identical.

Triton ships with torch's CUDA builds; snnconv does not depend on it. Where it cannot be
imported, or the tensors' layouts differ, the engine keeps its eager loops.
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


def runs_on(device: torch.device) -> bool:
    """Whether the kernels can run on ``device`` by default: an NVIDIA GPU Triton compiles
    for (compute capability 7.0 or newer; an AMD one through ROCm's torch), with Triton
    importable."""
    if device.type != "cuda" or not available():
        return False
    return torch.version.hip is not None or torch.cuda.get_device_capability(device) >= (7, 0)


def applies(state: torch.Tensor, inputs: torch.Tensor, static: bool, out: torch.Tensor) -> bool:
    """Whether a kernel can walk these tensors as flat storage in one order: the per-neuron
    ``state`` dense, and each step of ``inputs`` (steps, ...) (or the static ``inputs``) and
    of ``out`` (steps, ...) laid out exactly as it is, steps one after another."""
    dense = state.is_contiguous() or state.is_contiguous(memory_format=torch.channels_last)
    slices = [inputs] if static else [inputs[0]]
    same = all(s.stride() == state.stride() for s in (*slices, out[0]))
    n = state.numel()
    spaced = (static or len(inputs) == 1 or inputs.stride(0) == n) and (
        len(out) == 1 or out.stride(0) == n
    )
    return dense and same and spaced and inputs.dtype == state.dtype == torch.float32


def binary_steps(
    v: torch.Tensor,
    current: torch.Tensor,
    static: bool,
    theta: torch.Tensor | float,
    biases: tuple[torch.Tensor, ...],
    spikes: torch.Tensor,
    reset: str,
) -> None:
    """``snnconv.neurons.binary.binary_steps`` with up to two per-channel biases added to each
    step's current, in order, in one launch: ``v`` is updated in place and ``spikes`` (steps, ...)
    written as 0/1 floats. ``theta`` is a float or broadcasts against ``v`` (one value per
    channel); so does each bias."""
    n = v.numel()
    scalar = not isinstance(theta, torch.Tensor)
    b1, b2 = (*(_like(b, v) for b in biases), v, v)[:2]  # v: a placeholder, never read
    _kernels()[0][(-(-n // BLOCK),)](
        v,
        current,
        theta if scalar else _like(theta, v),
        b1,
        b2,
        spikes,
        n,
        0 if static else n,
        STEPS=len(spikes),
        SCALAR_THETA=scalar,
        BIASES=len(biases),
        RESET_ZERO=reset != "subtract",
        BLOCK=BLOCK,
    )


def running_sum(seq: torch.Tensor, initial: torch.Tensor | None, out: torch.Tensor) -> None:
    """``out[t] = initial + seq[0] + ... + seq[t]``, added one step at a time in float32 as
    ``running_sums.running_sum`` adds them."""
    n = out[0].numel()
    _kernels()[1][(-(-n // BLOCK),)](
        seq,
        out if initial is None else initial,
        out,
        n,
        STEPS=len(seq),
        HAS_INITIAL=initial is not None,
        BLOCK=BLOCK,
    )


def _like(p: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """A per-channel parameter spread over every neuron, in ``v``'s layout (read once per
    neuron by a kernel, not once per step)."""
    return torch.empty_like(v).copy_(p.expand_as(v))


@functools.cache
def _kernels():
    """The kernels, compiled on first use (importing Triton is slow and CUDA-only here)."""
    import triton
    import triton.language as tl

    @triton.jit
    def if_steps(
        v_ptr,
        current_ptr,
        theta,
        bias1_ptr,
        bias2_ptr,
        spikes_ptr,
        n,
        current_step_stride,
        STEPS: tl.constexpr,  # one compilation per chunk length, its loop known in full
        SCALAR_THETA: tl.constexpr,
        BIASES: tl.constexpr,
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
        if BIASES > 0:
            b1 = tl.load(bias1_ptr + offs, mask=mask)
        if BIASES > 1:
            b2 = tl.load(bias2_ptr + offs, mask=mask)
        # pointers advanced step by step: 64-bit, whatever steps x n comes to
        current_at = current_ptr + offs
        spikes_at = spikes_ptr + offs
        for _ in range(STEPS):
            i = tl.load(current_at, mask=mask)
            if BIASES > 0:
                i = i + b1
            if BIASES > 1:
                i = i + b2
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

    @triton.jit
    def prefix_steps(
        seq_ptr, initial_ptr, out_ptr, n, STEPS: tl.constexpr, HAS_INITIAL: tl.constexpr,
        BLOCK: tl.constexpr,
    ):  # fmt: skip
        offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < n
        seq_at = seq_ptr + offs
        out_at = out_ptr + offs
        acc = tl.load(seq_at, mask=mask)
        if HAS_INITIAL:
            acc = tl.load(initial_ptr + offs, mask=mask) + acc
        tl.store(out_at, acc, mask=mask)
        for _ in range(1, STEPS):
            seq_at += n
            out_at += n
            acc = acc + tl.load(seq_at, mask=mask)
            tl.store(out_at, acc, mask=mask)

    return if_steps, prefix_steps
