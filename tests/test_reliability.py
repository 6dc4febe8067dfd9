"""A CI gate users can trust: hostile input is refused cleanly, runs are reproducible,
interrupted writes lose nothing, and a simulation that cannot fit is refused up front.

The hostile-model sweep runs the CLI entry point in-process (the same ``main()`` that maps
errors to exit codes) to stay fast; a few cases, and the whole sweep under ``-m slow``, run
``python -m snnconv`` in a real subprocess.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hostile import HOSTILE
from nets import graph_of, inputs

from snnconv.cli.main import main
from snnconv.convert import ConversionSettings, convert
from snnconv.errors import InputError
from snnconv.ops import ann_forward
from snnconv.save import save_onnx
from snnconv.simulate import SimulationSettings, memory, simulate

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _env(**extra: str) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")]))
    env.update(extra)
    return env


def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "snnconv", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_env(),
    )


def cli(capsys, monkeypatch, *args: str) -> tuple[int, str]:
    """Run ``snnconv ARGS`` in-process; the exit code and stderr (whitespace collapsed)."""
    monkeypatch.setattr(sys, "argv", ["snnconv", *args])
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main()
    return exit_.value.code, " ".join(capsys.readouterr().err.split())


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """An ANN file, an SNN file (thresholds only, fast) and npz data the ANN labels itself."""
    d = tmp_path_factory.mktemp("reliability")
    ann = graph_of("residual")
    save_onnx(ann, d / "model.onnx")
    x = inputs(ann.input_shape, 64)
    y = ann_forward(ann, torch.as_tensor(x))[0].argmax(1).numpy()
    np.savez(d / "data.npz", x=x, y=y)
    snn = convert(ann, x, ConversionSettings(threshold="max", calibrate="none"))
    save_onnx(snn, d / "model.snn.onnx")
    return d


# --- 1. hostile ONNX ---------------------------------------------------------------------


def _hostile_file(tmp_path: Path, case: str) -> Path:
    path = tmp_path / "bad.onnx"
    path.write_bytes(HOSTILE[case][0]())
    return path


def _assert_refused(code: int, err: str, case: str, folder: Path) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    assert "bad.onnx" in err and HOSTILE[case][1] in err, err
    node = HOSTILE[case][2]
    if node is not None:  # as "node 'NAME' (Op): ..." or in the list of unsupported ops
        assert f"node '{node}'" in err or f" {node} (" in err, err
    assert sorted(p.name for p in folder.iterdir()) == ["bad.onnx"]  # no output, no temp file


@pytest.mark.parametrize("verb", ["inspect", "convert"])
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_onnx_exits_2_naming_the_problem(tmp_path, capsys, monkeypatch, case, verb):
    bad = _hostile_file(tmp_path, case)
    args = [verb, str(bad)]
    if verb == "convert":
        args += ["--calib-data", "digits", "-o", str(tmp_path / "out.snn.onnx")]
    code, err = cli(capsys, monkeypatch, *args)
    _assert_refused(code, err, case, tmp_path)


def _subprocess_refusal(tmp_path: Path, case: str) -> None:
    bad = _hostile_file(tmp_path, case)
    r = run("convert", str(bad), "--calib-data", "digits", "-o", str(tmp_path / "o.snn.onnx"))
    _assert_refused(r.returncode, " ".join(r.stderr.split()), case, tmp_path)


def test_hostile_onnx_in_a_real_process(tmp_path):
    _subprocess_refusal(tmp_path, "input declared 1x2x100000x100000")


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_every_hostile_onnx_in_a_real_process(tmp_path, case):
    _subprocess_refusal(tmp_path, case)


def test_tensor_limit_is_configurable(tmp_path, capsys, monkeypatch):
    bad = _hostile_file(tmp_path, "conv padding 50000 (80 GB activation)")
    monkeypatch.setenv("SNNCONV_MAX_TENSOR_GB", "0.000001")  # 1 kB: even tiny.onnx is refused
    code, err = cli(capsys, monkeypatch, "inspect", str(bad))
    assert code == 2 and "limit of 1e-06 GB" in err
    monkeypatch.setenv("SNNCONV_MAX_TENSOR_GB", "lots")
    code, err = cli(capsys, monkeypatch, "inspect", str(bad))
    assert code == 2 and "SNNCONV_MAX_TENSOR_GB='lots'" in err


# --- 2. pickled PyTorch modules ----------------------------------------------------------


@pytest.fixture
def pickled(tmp_path) -> Path:
    path = tmp_path / "model.pt"
    torch.save(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3)), path)
    return path


def test_pickled_module_is_refused_without_trust_pickle(pickled, capsys, monkeypatch):
    code, err = cli(capsys, monkeypatch, "inspect", str(pickled), "--input-shape", "1,4,4")
    assert code == 2 and "Traceback" not in err
    assert "--trust-pickle" in err and "model.pt" in err


@pytest.mark.slow  # the export to ONNX takes ~10 s
def test_pickled_module_loads_with_trust_pickle(pickled, capsys, monkeypatch):
    path = pickled
    monkeypatch.setattr(
        sys, "argv", ["snnconv", "inspect", str(path), "--input-shape", "1,4,4", "--trust-pickle"]
    )
    main()  # returns normally: exit 0
    assert "linear" in capsys.readouterr().out.lower()


# --- 3. data that does not fit ----------------------------------------------------------


def _data_cases(d: Path, tmp: Path) -> dict[str, tuple[str, str]]:
    """name -> (--data SPEC, text the error must hold)."""
    x = inputs(graph_of("residual").input_shape, 4)
    np.savez(tmp / "empty.npz", x=x[:0], y=np.zeros(0, int))
    np.savez(tmp / "labels.npz", x=x, y=np.array([0, 1, 2, 99]))
    np.savez(tmp / "shape.npz", x=inputs((2, 8, 8), 4), y=np.zeros(4, int))
    (tmp / "folder.npz").mkdir()
    (tmp / "mnistfile").write_bytes(b"not a folder")
    (tmp / "locked.npz").write_bytes((tmp / "labels.npz").read_bytes())
    (tmp / "locked.npz").chmod(0)
    return {
        "empty set": (f"npz:{tmp / 'empty.npz'}", "empty.npz"),
        "label outside the classes": (f"npz:{tmp / 'labels.npz'}", "label 99"),
        "wrong image shape": (f"npz:{tmp / 'shape.npz'}", "shape.npz"),
        "folder where a file is expected": (f"npz:{tmp / 'folder.npz'}", "folder.npz is a folder"),
        "file where a folder is expected": (f"mnist:{tmp / 'mnistfile'}", "mnistfile is a file"),
        "unreadable file": (f"npz:{tmp / 'locked.npz'}", "locked.npz"),
    }


DATA_CASES = [
    "empty set",
    "label outside the classes",
    "wrong image shape",
    "folder where a file is expected",
    "file where a folder is expected",
    "unreadable file",
]


@pytest.mark.parametrize(
    ("case", "verb"),
    [
        (c, v)
        for c in DATA_CASES
        for v in ("validate", "convert")
        if (c, v) != ("label outside the classes", "convert")
    ],  # calibration ignores labels
)
def test_bad_data_exits_2_naming_the_file(workdir, tmp_path, capsys, monkeypatch, case, verb):
    if case == "unreadable file" and os.geteuid() == 0:
        pytest.skip("root reads files whatever their permissions")
    spec, expected = _data_cases(workdir, tmp_path)[case]
    out = tmp_path / "out"
    out.mkdir()
    if verb == "validate":
        args = [
            "validate",
            str(workdir / "model.snn.onnx"),
            "--data",
            spec,
            "--min-accuracy",
            "0.5",
            "--json",
            str(out / "gate.json"),
        ]
    else:
        args = [
            "convert",
            str(workdir / "model.onnx"),
            "--calib-data",
            spec,
            "-o",
            str(out / "m.snn.onnx"),
        ]
    code, err = cli(capsys, monkeypatch, *args)
    assert code == 2 and "Traceback" not in err
    assert expected in err, err
    assert list(out.iterdir()) == []


# --- 4. determinism ----------------------------------------------------------------------


def _validate_poisson(capsys, monkeypatch, workdir: Path, path: Path) -> int:
    args = [
        "validate",
        str(workdir / "model.snn.onnx"),
        "--data",
        f"npz:{workdir / 'data.npz'}",
        "--encoding",
        "poisson",
        "-T",
        "16",
        "--min-accuracy",
        "0",
        "--json",
        str(path),
    ]
    if capsys is None:
        r = run(*args)
        return r.returncode
    return cli(capsys, monkeypatch, *args)[0]


@pytest.mark.parametrize(
    "process", ["in-process", pytest.param("subprocess", marks=pytest.mark.slow)]
)
def test_poisson_validate_is_bit_identical_across_runs(
    workdir, tmp_path, capsys, monkeypatch, process
):
    reports = []
    for i in range(2):
        path = tmp_path / f"gate{i}.json"
        fresh = process == "subprocess"
        assert _validate_poisson(None if fresh else capsys, monkeypatch, workdir, path) == 0
        report = json.loads(path.read_text())
        assert report.pop("throughput")
        reports.append(report)
    assert reports[0]["spikes_per_image"] > 0
    assert reports[0] == reports[1]  # floats from JSON: equal means bit-identical here


# --- 5. nothing lost ---------------------------------------------------------------------


def _start_convert(workdir: Path, target: Path) -> subprocess.Popen:
    """A convert over ``target`` (--force) whose progress bars show on stderr."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "snnconv",
            "convert",
            str(workdir / "model.onnx"),
            "--calib-data",
            f"npz:{workdir / 'big.npz'}",
            "--calib-limit",
            "5000",
            "--threshold",
            "percentile:99.9",
            "-o",
            str(target),
            "--force",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(FORCE_COLOR="1", TTY_COMPATIBLE="1", COLUMNS="100"),
    )


def _wait_for_calibration(proc: subprocess.Popen, timeout: float = 120) -> None:
    os.set_blocking(proc.stderr.fileno(), False)
    seen, end = b"", time.monotonic() + timeout
    while b"calibrating" not in seen:
        assert proc.poll() is None, "convert finished before it could be interrupted"
        assert time.monotonic() < end, "calibration never started"
        seen += proc.stderr.read() or b""
        time.sleep(0.05)


@pytest.fixture
def precious(workdir, tmp_path):
    ann = graph_of("residual")
    np.savez(workdir / "big.npz", x=inputs(ann.input_shape, 5000, seed=3), y=np.zeros(5000, int))
    target = tmp_path / "out.snn.onnx"
    target.write_bytes((workdir / "model.snn.onnx").read_bytes())
    return target, target.read_bytes()


@pytest.mark.slow
def test_sigkill_during_convert_keeps_the_old_file(workdir, precious):
    target, old = precious
    proc = _start_convert(workdir, target)
    try:
        _wait_for_calibration(proc)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        proc.kill()
    assert target.read_bytes() == old
    assert [p.name for p in target.parent.iterdir()] == [target.name]


@pytest.mark.slow
def test_ctrl_c_during_convert_exits_130_and_keeps_the_old_file(workdir, precious):
    target, old = precious
    proc = _start_convert(workdir, target)
    try:
        _wait_for_calibration(proc)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert b"interrupted" in err and b"Traceback" not in err
    assert target.read_bytes() == old
    assert [p.name for p in target.parent.iterdir()] == [target.name]


# --- 6. memory estimate before simulating -----------------------------------------------


def test_estimate_grows_with_steps_at_once_and_batch(workdir):
    snn = graph_of("residual")
    one = memory.estimate_peak_bytes(snn, 1, 1)
    assert one > 0
    assert memory.estimate_peak_bytes(snn, 8, 4) == 32 * one


def _sim_args(workdir, *extra: str) -> list[str]:
    model, data = str(workdir / "model.snn.onnx"), f"npz:{workdir / 'data.npz'}"
    return ["simulate", model, "--data", data, "-T", "32", *extra]


def test_memory_budget_shortens_chunks_and_keeps_results(workdir, monkeypatch):
    from snnconv.load import load_onnx

    snn = load_onnx(workdir / "model.snn.onnx")
    data = np.load(workdir / "data.npz")
    step = memory.bytes_per_image(snn, 1) * 64  # one step of a 64-image batch
    monkeypatch.setattr(memory, "available_bytes", lambda device="cpu": 10 * step + 2)
    reports = {
        budget: simulate(snn, data["x"], data["y"], SimulationSettings(32, memory_budget=budget))
        for budget in (100 * step, None, f"{step}B")
    }
    full, five, one = reports.values()  # None: half the free memory, room for 5 steps
    assert (full.chunk, five.chunk, one.chunk) == (32, 5, 1)  # this small net folds all 32
    assert full.memory_budget_bytes == 100 * step and one.memory_budget_bytes == step
    assert five.memory_budget_bytes is None  # the default follows the free memory: not kept
    for r in (five, one):
        assert r.accuracy_per_step == full.accuracy_per_step
        assert r.spikes_per_image == full.spikes_per_image
        assert r.synops_per_image == full.synops_per_image
        assert r.layers == full.layers


def test_memory_budget_too_small_for_one_step_is_refused(workdir, monkeypatch, capsys):
    from snnconv.load import load_onnx

    snn = load_onnx(workdir / "model.snn.onnx")
    data = np.load(workdir / "data.npz")
    per_image = memory.bytes_per_image(snn, 1)
    with pytest.raises(
        InputError, match=r"budget .*\(--memory-budget\); use --batch-size 10 or less"
    ):
        simulate(snn, data["x"], data["y"], SimulationSettings(32, memory_budget=10 * per_image))
    # the free memory sets the budget when none is given
    monkeypatch.setattr(memory, "available_bytes", lambda device="cpu": per_image)
    code, err = cli(capsys, monkeypatch, *_sim_args(workdir))
    assert code == 2 and "even one image needs" in err and "raise --memory-budget" in err
    # a budget given is the user's call, even above the free memory
    r = simulate(snn, data["x"], data["y"], SimulationSettings(32, memory_budget="2GiB"))
    assert r.memory_budget_bytes == 2 * 2**30


@pytest.mark.parametrize("text", ["lots", "2 GiBs", "-1MB", "0", "1e9"])
def test_bad_memory_budget_is_refused_naming_the_option(workdir, monkeypatch, capsys, text):
    code, err = cli(capsys, monkeypatch, *_sim_args(workdir, "--memory-budget", text))
    assert code == 2 and "--memory-budget" in err and "Traceback" not in err


def test_memory_budget_sizes():
    assert memory.parse_size("512MB") == 512 * 10**6
    assert memory.parse_size("2GiB") == 2 * 2**30
    assert memory.parse_size("1.5 gb") == 1_500_000_000
    assert memory.parse_size("4096") == memory.parse_size(4096) == 4096


def test_unknown_available_memory_skips_the_check(workdir, monkeypatch):
    assert memory.available_bytes() is None or memory.available_bytes() > 0
    monkeypatch.setattr(memory, "available_bytes", lambda device="cpu": None)
    snn = graph_of("residual")
    budget, _ = memory.budget(None, "cpu")
    assert budget is None
    assert memory.plan_chunk(snn, 10**6, 10**6, budget) == 10**6  # petabytes; not refused
