"""The CPU thread count: --threads, OMP_NUM_THREADS, else what the machine really grants."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from cli_run import run_in_process

from snnconv import threads
from snnconv.errors import InputError
from snnconv.threads import ThreadChoice, cgroup_quota, choose_threads, default_threads

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _cgroup(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text + "\n")
    return tmp_path


@pytest.mark.parametrize(
    ("files", "quota"),
    [
        ({"cpu.max": "150000 100000"}, 1.5),
        ({"cpu.max": "max 100000"}, None),
        ({"cpu/cpu.cfs_quota_us": "50000", "cpu/cpu.cfs_period_us": "100000"}, 0.5),
        ({"cpu,cpuacct/cpu.cfs_quota_us": "400000", "cpu,cpuacct/cpu.cfs_period_us": "100000"}, 4),
        ({"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"}, None),
        ({"cpu.max": "lots 100000"}, None),
        ({}, None),
    ],
)
def test_cgroup_quota_v2_and_v1(tmp_path, files, quota):
    assert cgroup_quota(_cgroup(tmp_path, files)) == quota


def test_cgroup_root_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(
        threads.CGROUP_ROOT_ENV, str(_cgroup(tmp_path, {"cpu.max": "200000 100000"}))
    )
    assert cgroup_quota() == 2


@pytest.fixture
def eight_cpus(monkeypatch):
    monkeypatch.setattr(threads, "affinity_cpus", lambda: 8)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)


def test_default_is_the_smallest_of_affinity_quota_and_idle_cpus(tmp_path, eight_cpus):
    unlimited = _cgroup(tmp_path / "a", {"cpu.max": "max 100000"})
    assert default_threads(unlimited, load=0.0) == ThreadChoice(8, "CPU affinity")
    quota = _cgroup(tmp_path / "b", {"cpu.max": "250000 100000"})  # 2.5 CPUs: 3 threads
    assert default_threads(quota, load=0.0) == ThreadChoice(3, "cgroup quota")
    idle = default_threads(quota, load=6.2)  # 8 - 6.2 leaves about 2 idle
    assert idle == ThreadChoice(2, "CPUs left idle by other processes")
    assert default_threads(unlimited, load=40.0).count == 1  # never below one


def test_threads_flag_wins_then_omp_num_threads(tmp_path, eight_cpus):
    quota = _cgroup(tmp_path, {"cpu.max": "100000 100000"})
    env = {"OMP_NUM_THREADS": "3"}
    assert choose_threads(5, env, quota, load=0.0) == ThreadChoice(5, "--threads")
    assert choose_threads(None, env, quota, load=0.0) == ThreadChoice(3, "OMP_NUM_THREADS")
    assert choose_threads(None, {"OMP_NUM_THREADS": "4,2"}, quota).count == 4  # nested levels
    assert choose_threads(None, {}, quota, load=0.0) == ThreadChoice(1, "cgroup quota")
    assert str(ThreadChoice(1, "cgroup quota")) == "1 (cgroup quota)"


@pytest.mark.parametrize("text", ["abc", "0", "-2"])
def test_bad_omp_num_threads_is_refused(text):
    with pytest.raises(InputError, match="OMP_NUM_THREADS"):
        choose_threads(None, {"OMP_NUM_THREADS": text})


def test_cli_applies_the_rule_to_torch_and_onnxruntime(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("OMP_NUM_THREADS", "2")
        code, err = run_in_process("inspect", "--help")
        assert code == 0, err
        assert torch.get_num_threads() == 2
        assert threads.current() == ThreadChoice(2, "OMP_NUM_THREADS")
        assert threads.onnxruntime_options().intra_op_num_threads == 2
        monkeypatch.setenv("OMP_NUM_THREADS", "many")
        code, err = run_in_process("inspect", "--help")
        assert code == 2 and "OMP_NUM_THREADS='many'" in err
    finally:
        torch.set_num_threads(before)
        threads.apply(ThreadChoice(before, "--threads"))


CHILD = (
    "import sys, torch\n"
    "from snnconv import threads\n"
    "from snnconv.cli.main import main\n"
    "sys.argv = ['snnconv', 'inspect', '--help']\n"
    "try:\n"
    "    main()\n"
    "except SystemExit:\n"
    "    pass\n"
    "print(torch.get_num_threads(), threads.current(), file=sys.stderr)\n"
)


def _child(cgroup: Path, cpus: set[int]) -> str:
    """What a CLI process restricted to ``cpus`` under the fake ``cgroup`` chose."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env.update(PYTHONPATH=os.pathsep.join([SRC, env.get("PYTHONPATH", "")]))
    env[threads.CGROUP_ROOT_ENV] = str(cgroup)
    r = subprocess.run(
        [sys.executable, "-c", CHILD],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        preexec_fn=lambda: os.sched_setaffinity(0, cpus),
    )
    assert r.returncode == 0, r.stderr
    return r.stderr.strip().splitlines()[-1]


@pytest.mark.slow
def test_a_process_under_a_quota_and_an_affinity_uses_what_it_is_granted(tmp_path):
    cpus = sorted(os.sched_getaffinity(0))
    half = _cgroup(tmp_path / "half", {"cpu.max": "50000 100000"})
    unlimited = _cgroup(tmp_path / "none", {"cpu.max": "max 100000"})
    assert _child(unlimited, {cpus[0]}) == "1 1 (CPU affinity)"
    expected = "cgroup quota" if len(cpus) > 1 else "CPU affinity"
    assert _child(half, set(cpus)) == f"1 1 ({expected})"
