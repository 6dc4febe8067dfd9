"""snnconv on a quiet CPU and beside busy torch jobs: the default thread count vs --threads 1.

    python bench/busy.py [--jobs 2] [--job-threads 2] [--repeats 1] [--timeout 600]
                         [--workloads demo,convert] [--loads quiet,busy] [--threads default,1]

Each workload runs as the CLI does (``python -m snnconv ...``), with the default threads
(OMP_NUM_THREADS and MKL_NUM_THREADS removed from its environment, so snnconv's own rule
decides) and with each count ``--threads`` lists, back to back; first on the machine as it
is, then beside ``--jobs`` matmul loops of ``--job-threads`` torch threads each (a shared CI
runner). ``convert`` converts the bundled digits CNN (``--calib-data digits``). Prints JSON: wall
seconds per run (median over repeats; null when it ran past ``--timeout``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
BUSY_JOB = (
    "import torch\n"
    "torch.set_num_threads({threads})\n"
    "a = torch.randn(384, 384)\n"
    "while True:\n"
    "    a = torch.tanh(a @ a)\n"
)


def workload_args(name: str, out: Path) -> list[str]:
    from snnconv.data import asset_path

    if name == "demo":
        return ["demo"]
    if name == "convert":
        model = asset_path("digits_cnn.onnx")
        return ["convert", str(model), "--calib-data", "digits", "-o", str(out), "--force"]
    raise SystemExit(f"unknown workload {name!r}; expected demo or convert")


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH", "")]))
    return env


def timed(args: list[str], timeout: float) -> tuple[float | None, str]:
    """Wall seconds of ``snnconv ARGS`` (None past ``timeout``) and its thread line."""
    t = time.perf_counter()
    try:
        r = subprocess.run(
            [sys.executable, "-m", "snnconv", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=clean_env(),
        )
    except subprocess.TimeoutExpired:
        return None, ""
    seconds = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"snnconv {' '.join(args)} failed:\n{r.stderr[-2000:]}")
    line = next((ln for ln in r.stderr.splitlines() if "torch threads" in ln), "")
    return seconds, line.strip()


def start_jobs(n: int, threads: int) -> list[subprocess.Popen]:
    code = BUSY_JOB.format(threads=threads)
    env = clean_env()
    return [
        subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL)
        for _ in range(n)
    ]


def stop_jobs(jobs: list[subprocess.Popen]) -> None:
    for j in jobs:
        j.terminate()
    for j in jobs:
        j.wait()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--jobs", type=int, default=2, help="busy torch jobs beside snnconv")
    p.add_argument("--job-threads", type=int, default=2, help="torch threads of each job")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--timeout", type=float, default=600.0, help="seconds before a run is cut")
    p.add_argument("--workloads", default="demo", help="comma-separated: demo, convert")
    p.add_argument("--loads", default="quiet,busy", help="comma-separated: quiet, busy")
    p.add_argument("--threads", default="default,1", help="comma-separated: default or N")
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "m.snn.onnx"
        for load in args.loads.split(","):
            jobs = start_jobs(args.jobs, args.job_threads) if load == "busy" else []
            try:
                if jobs:
                    time.sleep(2)  # let the jobs start their loops
                for name in args.workloads.split(","):
                    for threads in args.threads.split(","):
                        flags = [] if threads == "default" else ["--threads", threads]
                        runs = [
                            timed([*flags, *workload_args(name, out)], args.timeout)
                            for _ in range(args.repeats)
                        ]
                        done = [s for s, _ in runs if s is not None]
                        rows.append(
                            {
                                "workload": name,
                                "load": load,
                                "threads": threads,
                                "thread_line": runs[-1][1],
                                "seconds": statistics.median(done) if done else None,
                                "timed_out": len(done) < len(runs),
                                "loadavg_1min_after": round(os.getloadavg()[0], 2),
                            }
                        )
                        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
            finally:
                stop_jobs(jobs)
    print(
        json.dumps(
            {
                "bench": "busy",
                "cpus_affinity": len(os.sched_getaffinity(0)),
                "busy_jobs": args.jobs,
                "busy_job_threads": args.job_threads,
                "repeats": args.repeats,
                "rows": rows,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
