"""QCFS preparation (``snnconv prepare``) of the Fashion-MNIST bench nets: one JSON line per
model and setting.

For each net (VGG-style, ResNet-style of bench/models.py), each L of ``--levels`` and each
epoch count up to ``--epochs`` (one training run per L, measured after every epoch): the
prepared ANN's accuracy, the binary-IF SNN's accuracy at T = 1, 2, 4, 8, 16 converted with
``--threshold qcfs`` and no layer-wise calibration (one conversion, the anytime curve) and with
``search+bias`` on top (converted per T), synops per image and the energy ratio against the
ANN at T = 4, and preparation CPU seconds per epoch (``time.process_time``, 1 thread). After
the last epoch, the NIR target (``--target nir``: binary IF, max pools from relus) as well, and
the SNN converted with qcfs thresholds then fine-tuned (``snnconv finetune``, one epoch at
T = 4).

``--convert-saved DIR`` instead converts the prepared ANNs saved there (``--save``) with the
prepared defaults, for the snnconv target and the NIR target, per T of
``--calibrated-timesteps``.

``--reference`` instead gives, for the original ANN, today's default conversion (``--neuron
auto``, mse thresholds, search+bias) and ``--neuron if`` with the rest of the default, per T
of ``--reference-timesteps``.

Usage: ``python bench/prepare.py [--models vgg,resnet] [--levels 2,4,8] [--epochs 5]
[--train-limit 60000] [--lr 1e-4] [--test-limit 1000]`` or ``... --reference``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from models import FASHION_MNIST, train_or_load  # noqa: E402

from snnconv.convert import ConversionSettings, convert, prepared_defaults  # noqa: E402
from snnconv.data import load_dataset  # noqa: E402
from snnconv.finetune import FinetuneSettings, finetune  # noqa: E402
from snnconv.finetune.prepare import PrepareSettings, ann_accuracy, prepare  # noqa: E402
from snnconv.load import load_onnx  # noqa: E402
from snnconv.save import save_onnx  # noqa: E402
from snnconv.simulate import SimulationSettings, simulate  # noqa: E402

TIMESTEPS = (1, 2, 4, 8, 16)
COST_T = 4
#: T converted for with search+bias on top (per T: each conversion fits its T)
NIR_CALIBRATED_T = (4, 8)
CALIB_IMAGES = 1000


def snn_figures(graph, calib_x, test, settings: ConversionSettings, per_t=()) -> dict:
    """Accuracy at every T of TIMESTEPS (one conversion), or converted for each T of
    ``per_t``; synops and energy ratio at T = COST_T."""
    acc, cost = {}, {}
    targets = per_t or (max(TIMESTEPS),)
    for t in targets:
        snn = convert(graph, calib_x, _at(settings, t))
        r = simulate(snn, test.x, test.y, SimulationSettings(timesteps=t))
        if per_t:
            acc[str(t)] = r.snn_accuracy
        else:
            acc = {str(s): r.accuracy_per_step[s - 1] for s in TIMESTEPS}
        if t == COST_T or not per_t:
            cost_snn = snn if t == COST_T else convert(graph, calib_x, _at(settings, COST_T))
            c = r if t == COST_T else simulate(cost_snn, test.x, test.y, SimulationSettings(COST_T))
            cost = {
                "synops_per_image_t4": round(c.synops_per_image),
                "energy_ratio_t4": c.energy.ratio,
            }
    return {"accuracy": acc, **cost}


def _at(settings: ConversionSettings, t: int) -> ConversionSettings:
    return replace(settings, target_timesteps=t)


def prepared_rows(name, graph, train, test, args) -> None:
    calib_x = train.x[:CALIB_IMAGES]
    original = ann_accuracy(graph, test.x, test.y)
    for levels in [int(v) for v in args.levels.split(",")]:
        settings = PrepareSettings(
            levels=levels,
            epochs=args.epochs,
            lr=args.lr,
            lr_schedule=args.lr_schedule,
            seed=args.seed,
        )

        def on_epoch(epoch: int, prepared, levels=levels) -> None:
            meta = json.loads(prepared.metadata["snnconv.prepare"])
            row = {
                "bench": "prepare",
                "model": name,
                "levels": levels,
                "epochs": epoch,
                "lr": args.lr,
                "lr_schedule": args.lr_schedule,
                "train_images": len(train.x),
                "test_images": len(test.x),
                "original_ann_accuracy": original,
                "prepared_ann_accuracy": ann_accuracy(prepared, test.x, test.y),
                "prepare_cpu_seconds_per_epoch": meta["seconds_per_epoch"][-1],
                "train_accuracy": meta["train_accuracy"][-1],
            }
            qcfs = ConversionSettings(threshold="qcfs", neuron="if", calibrate="none")
            row["if_qcfs"] = snn_figures(prepared, calib_x, test, qcfs)
            if epoch in args.calibrated_epochs or epoch == args.epochs:
                sb = ConversionSettings(threshold="qcfs", neuron="if", calibrate="search+bias")
                row["if_qcfs_search_bias"] = snn_figures(
                    prepared, calib_x, test, sb, per_t=args.calibrated_timesteps
                )
            if epoch == args.epochs and args.save:
                save_onnx(prepared, Path(args.save) / f"{name}-L{levels}.onnx", force=True)
            if epoch == args.epochs and "finetune" in args.extras:
                row["if_qcfs_finetuned"] = finetuned(prepared, calib_x, train, test, args)
            if epoch == args.epochs and "nir" in args.extras:
                for calibrate, per_t in (("none", ()), ("search+bias", NIR_CALIBRATED_T)):
                    nir = ConversionSettings(threshold="qcfs", calibrate=calibrate, target="nir")
                    row[f"nir_qcfs_{calibrate}"] = snn_figures(prepared, calib_x, test, nir, per_t)
            row.update(threads=args.threads, torch=torch.__version__)
            print(json.dumps(row), flush=True)

        prepare(graph, train.x, train.y, settings, on_epoch=on_epoch)


def finetuned(prepared, calib_x, train, test, args, calibrate: str = "none") -> dict:
    """Converted (qcfs thresholds, ``calibrate`` on top), then ``snnconv finetune``: one epoch
    of BPTT at T = COST_T on the first ``--finetune-images`` training images."""
    snn = convert(prepared, calib_x, ConversionSettings(threshold="qcfs", neuron="if",
                  calibrate=calibrate, target_timesteps=COST_T))  # fmt: skip
    n = args.finetune_images
    start = time.process_time()
    settings = FinetuneSettings(
        epochs=1,
        timesteps=COST_T,
        lr=args.finetune_lr,
        lr_schedule=args.finetune_lr_schedule,
        seed=args.seed,
    )
    tuned, _ = finetune(snn, train.x[:n], train.y[:n], settings)
    seconds = round(time.process_time() - start, 1)
    r = simulate(tuned, test.x, test.y, SimulationSettings(timesteps=max(TIMESTEPS)))
    c = simulate(tuned, test.x, test.y, SimulationSettings(timesteps=COST_T))
    return {
        "accuracy": {str(t): r.accuracy_per_step[t - 1] for t in TIMESTEPS},
        "synops_per_image_t4": round(c.synops_per_image),
        "energy_ratio_t4": c.energy.ratio,
        "calibrate": calibrate,
        "finetune_lr": args.finetune_lr,
        "finetune_lr_schedule": args.finetune_lr_schedule,
        "finetune_images": min(n, len(train.x)),
        "finetune_timesteps": COST_T,
        "finetune_cpu_seconds": seconds,
    }


def finetune_rows(name, graph, train, test, args) -> None:
    """``--finetune-saved DIR``: the prepared ANNs bench saved (``--save``), converted and
    fine-tuned as SNNs with more images or calibration first."""
    for path in sorted(Path(args.finetune_saved).glob(f"{name}-L*.onnx")):
        prepared = load_onnx(path)
        for calibrate in args.finetune_calibrate.split(","):
            row = {"bench": "prepare-finetune", "model": name, "prepared": path.name}
            row |= finetuned(prepared, train.x[:CALIB_IMAGES], train, test, args, calibrate)
            print(json.dumps(row), flush=True)


def target_rows(name, graph, train, test, args) -> None:
    """``--convert-saved DIR``: the prepared ANNs saved there, converted with the prepared
    defaults (qcfs thresholds, binary IF, search+bias) for each deployment target and T."""
    for path in sorted(Path(args.convert_saved).glob(f"{name}-L*.onnx")):
        prepared = load_onnx(path)
        for target in ("snnconv", "nir"):
            for t in args.calibrated_timesteps:
                settings = {**prepared_defaults(prepared), "target_timesteps": t, "target": target}
                start = time.process_time()
                snn = convert(prepared, train.x[:CALIB_IMAGES], ConversionSettings(**settings))
                seconds = round(time.process_time() - start, 1)
                r = simulate(snn, test.x, test.y, SimulationSettings(timesteps=t))
                row = {"bench": "prepare-targets", "model": name, "prepared": path.name}
                row |= {"target": target, "T": t, "accuracy": r.snn_accuracy}
                row |= {"conversion_cpu_seconds": seconds, "test_images": len(test.x)}
                print(json.dumps(row), flush=True)


def reference_rows(name, graph, train, test, args) -> None:
    calib_x = train.x[:CALIB_IMAGES]
    ts = [int(v) for v in args.reference_timesteps.split(",")]
    row = {"bench": "prepare-reference", "model": name, "test_images": len(test.x)}
    row["original_ann_accuracy"] = ann_accuracy(graph, test.x, test.y)
    for label, neuron in (("auto", "auto"), ("if", "if")):
        acc, seconds = {}, {}
        for t in ts:
            start = time.process_time()
            snn = convert(graph, calib_x, ConversionSettings(neuron=neuron, target_timesteps=t))
            seconds[str(t)] = round(time.process_time() - start, 1)
            r = simulate(snn, test.x, test.y, SimulationSettings(timesteps=t))
            acc[str(t)] = r.snn_accuracy
            if t == COST_T:
                row[f"{label}_synops_per_image_t4"] = round(r.synops_per_image)
                row[f"{label}_energy_ratio_t4"] = r.energy.ratio
            print(
                f"{name} {label} T={t}: {100 * r.snn_accuracy:.1f} %", file=sys.stderr, flush=True
            )
        row[label] = {"accuracy": acc, "conversion_cpu_seconds": seconds}
    row.update(threads=args.threads, torch=torch.__version__)
    print(json.dumps(row), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="vgg,resnet")
    p.add_argument("--levels", default="2,4,8")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument(
        "--calibrated-epochs",
        default="",
        help="epochs also measured with search+bias (and the last)",
    )
    # the settings docs/prepare-bench.jsonl was measured with, not today's defaults
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--lr-schedule", default="constant")
    p.add_argument("--train-limit", type=int, default=60000)
    p.add_argument("--test-limit", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--calibrated-timesteps", default="1,2,4,8", help="T fitted by search+bias")
    p.add_argument("--extras", default="finetune,nir", help="after the last epoch")
    p.add_argument("--finetune-images", type=int, default=10000)
    p.add_argument("--finetune-lr", type=float, default=1e-4)
    p.add_argument("--finetune-lr-schedule", default="constant")
    p.add_argument("--finetune-saved", metavar="DIR", help="only fine-tune the ANNs saved here")
    p.add_argument("--finetune-calibrate", default="none,search+bias")
    p.add_argument("--convert-saved", metavar="DIR", help="only convert the ANNs saved here")
    p.add_argument("--save", metavar="DIR", help="write each prepared ANN of the last epoch here")
    p.add_argument("--reference", action="store_true")
    p.add_argument("--reference-timesteps", default="1,2,4,8,16")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    args.calibrated_epochs = {int(v) for v in args.calibrated_epochs.split(",") if v}
    args.calibrated_timesteps = tuple(int(v) for v in args.calibrated_timesteps.split(","))
    torch.set_num_threads(args.threads)
    for name in args.models.split(","):
        graph = load_onnx(train_or_load(name, threads=1))
        train = load_dataset(FASHION_MNIST, split="train", limit=args.train_limit)
        test = load_dataset(FASHION_MNIST, limit=args.test_limit)
        rows = reference_rows if args.reference else prepared_rows
        rows = finetune_rows if args.finetune_saved else rows
        rows = target_rows if args.convert_saved else rows
        rows(name, graph, train, test, args)


if __name__ == "__main__":
    main()
