"""Where a simulation's time goes: torch's profiler over one run, the busiest kernels first.

Times one warm run of the engine on one of bench/speed.py's networks (random input,
thresholds from it, binary IF) and prints the profiler's table sorted by device time (CUDA)
or CPU time, plus the ANN forward pass on the same batch for comparison.

Usage: python bench/breakdown.py [--model vgg16] [--timesteps 32] [--batch-size 256]
       [--device cuda] [--rows 20] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).parent))
from speed import prepared  # noqa: E402

from snnconv.ops import ann_forward  # noqa: E402
from snnconv.simulate import Simulator  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="vgg16")
    p.add_argument("--timesteps", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--device", default="cpu")
    p.add_argument("--rows", type=int, default=20)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    x, snn, ann = prepared(args.model, args.batch_size, args.device)
    sim = Simulator(snn, args.device)
    xt, y = torch.as_tensor(x).to(args.device), torch.zeros(len(x), dtype=torch.long)
    cuda = args.device.startswith("cuda")
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    key = "self_cuda_time_total" if cuda else "self_cpu_time_total"
    for name, fn in (
        (f"SNN, T = {args.timesteps}", lambda: sim.run(xt, y, args.timesteps)),
        ("ANN, one pass", lambda: ann_forward(ann, xt)),
    ):
        fn()  # warm-up: kernel choice, Triton compilation
        if cuda:
            torch.cuda.synchronize()
        with profile(activities=activities) as prof:
            fn()
            if cuda:
                torch.cuda.synchronize()
        print(f"== {args.model}, batch {args.batch_size}, {name}")
        print(prof.key_averages().table(sort_by=key, row_limit=args.rows, max_name_column_width=60))


if __name__ == "__main__":
    main()
