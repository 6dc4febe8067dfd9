"""The engine's value type: a node's output over a chunk of steps, and layout helpers."""

from __future__ import annotations

from dataclasses import dataclass

import torch


class Value:
    """A node's output in the current chunk.

    ``static`` values have no time axis (B, ...); others are (steps*B, ...). Spiking values
    also carry ``events``: how many spike events each position holds, and ``channel_events``:
    the same summed over channels (dim 1), all that synops need, since a spike's fan-out does
    not depend on its channel. Both are made only when asked for, so wiring ops cost nothing
    when unused, and channel events avoid a full pass over the spikes where they can.
    ``readout`` values belong to the ANN part of a hybrid network: at step t they hold what
    the ANN part would read out if the run stopped there. A ``scale`` (per channel,
    broadcastable) means the value is ``data * scale``: spikes stay binary and their threshold
    amplitude is applied by the layer that receives them, whose weights are scaled once.
    A ``bias`` (per channel) means the value is ``data + bias``: a conv's output, whose bias
    the one IF layer it feeds adds as it reads the current (see ``_biases_to_fuse``).
    """

    __slots__ = (
        "data",
        "static",
        "readout",
        "scale",
        "bias",
        "_events",
        "_make_events",
        "_channel_events",
        "_make_channel_events",
    )

    def __init__(
        self,
        data: torch.Tensor,
        static: bool,
        events: torch.Tensor | None = None,
        make_events=None,
        readout: bool = False,
        scale: torch.Tensor | None = None,
        channel_events: torch.Tensor | None = None,
        make_channel_events=None,
        bias: torch.Tensor | None = None,
    ):
        self.data = data
        self.static = static
        self.readout = readout
        self.scale = scale
        self.bias = bias
        self._events = events
        self._make_events = make_events
        self._channel_events = channel_events
        self._make_channel_events = make_channel_events

    @property
    def spiking(self) -> bool:
        return self._events is not None or self._make_events is not None

    @property
    def events(self) -> torch.Tensor | None:
        if self._events is None and self._make_events is not None:
            self._events, self._make_events = self._make_events(), None
        return self._events

    @property
    def channel_events(self) -> torch.Tensor:
        """Spike events summed over channels: (steps*B, *spatial), or (steps*B,) for 1-D data.
        Integer sums far below 2**24, so exact in float32 in any order."""
        if self._channel_events is None:
            if self._make_channel_events is not None:
                self._channel_events = self._make_channel_events()
                self._make_channel_events = None
            else:
                self._channel_events = self.events.sum(1)
        return self._channel_events

    def value(self, steps: int) -> torch.Tensor:
        """The data with its scale applied and, if static, repeated over the chunk's steps."""
        data = expand(self, steps)
        return data if self.scale is None else data * self.scale


def is_spikes(v: Value) -> bool:
    """Whether the data are a neuron's binary spikes themselves (0/1, before their scale), as
    the fast pooling of spikes requires."""
    return v._events is not None and v._events is v.data


def expand(v: Value, steps: int) -> torch.Tensor:
    if not v.static:
        return v.data
    return v.data.unsqueeze(0).expand((steps,) + tuple(v.data.shape)).flatten(0, 1)


def channels_last(x: torch.Tensor) -> bool:
    """Whether a 4-D ``x`` is laid out channels-last (and not also plain contiguous)."""
    return (
        x.dim() == 4
        and x.is_contiguous(memory_format=torch.channels_last)
        and not x.is_contiguous()
    )


def empty(shape: tuple[int, ...], nhwc: bool, like: torch.Tensor) -> torch.Tensor:
    """An empty tensor of ``shape`` (..., C, H, W) with ``like``'s dtype and device, laid out
    channels-last if ``nhwc``: then every (C, H, W) slice is channels-last, and flattening
    the leading axes (time into batch) stays a view."""
    if not nhwc:
        return torch.empty(shape, device=like.device, dtype=like.dtype)
    *lead, c, h, w = shape
    return torch.empty((*lead, h, w, c), device=like.device, dtype=like.dtype).movedim(-1, -3)


def channel(p: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return p.reshape((1, -1) + (1,) * (like.dim() - 2)) if p.numel() > 1 else p.reshape(())


@dataclass(slots=True)
class Chunk:
    """What every op the engine runs over one chunk of steps shares: the steps, the first
    step's index, the state carried between chunks, the counts and what is recorded."""

    steps: int
    t0: int
    state: dict
    counts: object  # snnconv.simulate.counts.Counts
    recorded: dict
    probes: dict
