"""Exported NIR, run in other simulators, against `snnconv simulate`: prints JSON lines.

For each model (the digits CNN, the Fashion-MNIST VGG- and ResNet-style nets) and T: convert
with ``--target nir`` for that T (cached under out/nir/), export to NIR, and run the same test
images for the same T in snnconv and in each consumer. Per consumer, both its importer as
shipped and ``snnconv.interop``'s loader (NIR's semantics): accuracy, the fraction of images
with snnconv's prediction, and spikes per neuron layer (per image) beside snnconv's. Needs nir,
nirtorch, snntorch and norse (``pip install --no-deps snntorch norse nirtorch``).
Usage: ``python bench/nir_crosscheck.py [--models digits,vgg,resnet] [--timesteps 16,32]
[--reset subtract|zero] [--cache DIR]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from accuracy import model_and_data  # noqa: E402

from snnconv import interop  # noqa: E402
from snnconv.convert import ConversionSettings, convert  # noqa: E402
from snnconv.export.nir import to_nir  # noqa: E402
from snnconv.interop import CONSUMERS, run_steps  # noqa: E402
from snnconv.load import load_onnx  # noqa: E402
from snnconv.save import save_onnx  # noqa: E402
from snnconv.simulate import Simulator  # noqa: E402
from snnconv.simulate.engine import OUTPUT  # noqa: E402

BATCH = 250


def snn_for(name: str, t: int, graph, train, cache: Path, reset: str):
    path = cache / f"{name}-T{t}-reset-{reset}.snn.onnx"
    if path.is_file():
        return load_onnx(path)
    settings = ConversionSettings(target_timesteps=t, target="nir", reset=reset)
    snn = convert(graph, train.x, settings)
    cache.mkdir(parents=True, exist_ok=True)
    save_onnx(snn, path, force=True)
    return snn


def snnconv_run(snn, x: np.ndarray, t: int):
    preds, spikes = [], {}
    for i in range(0, len(x), BATCH):
        xb = torch.as_tensor(x[i : i + BATCH])
        counts, rec = Simulator(snn).run(
            xb, torch.zeros(len(xb), dtype=torch.long), t, record=(OUTPUT,)
        )
        preds.append(rec[OUTPUT].reshape(t, len(xb), -1)[-1].argmax(1).numpy())
        for k, v in counts.spikes.items():
            spikes[k] = spikes.get(k, 0.0) + float(v.sum())
    return np.concatenate(preds), spikes


def shipped(consumer: str, graph):
    """The consumer's own NIR importer, as its users call it (its prints go to stderr)."""
    if consumer == "snntorch":
        from snntorch.import_nir import import_from_nir

        with contextlib.redirect_stdout(sys.stderr):
            return import_from_nir(graph)
    import norse.torch

    return norse.torch.from_nir(graph, dt=1.0)


def shipped_run(module, x: np.ndarray, t: int) -> np.ndarray:
    preds = []
    with torch.no_grad():
        for i in range(0, len(x), BATCH):
            xb, state, total = torch.as_tensor(x[i : i + BATCH]), None, 0
            for _ in range(t):
                out, state = module(xb, state)
                total = total + out
            preds.append(total.argmax(1).numpy())
    return np.concatenate(preds)


def _snntorch_if(beta: float, reset: str):
    """snnTorch's Leaky with one of its shipped importer's departures from NIR's IF."""

    class Departing(interop._SnnTorchIF):
        def __init__(self, node):
            super().__init__(node)
            import snntorch

            theta = self.leaky.threshold
            self.leaky = snntorch.Leaky(
                beta=beta, threshold=theta, reset_mechanism=reset, reset_delay=False
            )

    return Departing


def departures(g) -> dict:
    """Each departure of a shipped importer alone, on the NIR-spec loader: its module. The IF
    departures only where the graph has IF nodes (reset to zero)."""
    import nir
    import nirtorch

    def loader(if_module):
        return nirtorch.nir_to_torch(g, {**interop._node_map("snntorch"), nir.IF: if_module})

    no_bias = interop._node_map("norse")
    no_bias.pop(nir.Affine)  # nirtorch's default Affine mapping: the bias is dropped
    found = {"nirtorch default Affine (bias dropped)": nirtorch.nir_to_torch(g, no_bias)}
    if any(isinstance(n, nir.IF) for n in g.nodes.values()):
        found |= {
            "snntorch IF as Leaky(beta=0.9), reset by subtraction": loader(
                _snntorch_if(0.9, "subtract")
            ),
            "snntorch IF leak beta=0.9 only": loader(_snntorch_if(0.9, "zero")),
            "snntorch IF reset by subtraction only": loader(_snntorch_if(1.0, "subtract")),
        }
    return found


def compare(preds: np.ndarray, ref: np.ndarray, y: np.ndarray) -> dict:
    return {
        "accuracy": float((preds == y).mean()),
        "same_prediction": float((preds == ref).mean()),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="digits,vgg,resnet")
    p.add_argument("--timesteps", default="16,32")
    p.add_argument("--limit", type=int, default=1000, help="Fashion-MNIST test images")
    p.add_argument("--calib", type=int, default=1000, help="calibration images")
    p.add_argument("--cache", default="out/nir")
    p.add_argument(
        "--reset",
        default="subtract",
        choices=("subtract", "zero"),
        help="subtract: the Integrator/Threshold loop; zero: NIR's IF",
    )
    args = p.parse_args()
    torch.set_num_threads(1)
    versions = {k: version(k) for k in ("nir", "nirtorch", "snntorch", "norse", "torch")}
    for name in args.models.split(","):
        graph, train, test = model_and_data(name, args.limit, args.calib)
        for t in map(int, args.timesteps.split(",")):
            snn = snn_for(name, t, graph, train, Path(args.cache), args.reset)
            g, _ = to_nir(snn)
            ids = {v.metadata.get("snnconv_name"): k for k, v in g.nodes.items()}
            ref, ref_spikes = snnconv_run(snn, test.x, t)
            n = len(test.x)
            row = {
                "bench": "nir_crosscheck",
                "model": name,
                "timesteps": t,
                "reset": args.reset,
                "images": n,
                "versions": versions,
                "snnconv": {"accuracy": float((ref == test.y).mean())},
                "spikes_per_image": {"snnconv": {ids[k]: v / n for k, v in ref_spikes.items()}},
            }
            for consumer, build in CONSUMERS.items():
                preds, spikes = [], {}
                for i in range(0, n, BATCH):
                    pb, sb = run_steps(build(g), torch.as_tensor(test.x[i : i + BATCH]), t)
                    preds.append(pb)
                    for k, v in sb.items():
                        spikes[k] = spikes.get(k, 0.0) + v
                row[consumer] = {"snnconv.interop": compare(np.concatenate(preds), ref, test.y)}
                row["spikes_per_image"][consumer] = {k: v / n for k, v in spikes.items()}
                try:
                    as_shipped = compare(shipped_run(shipped(consumer, g), test.x, t), ref, test.y)
                except Exception as e:  # what a user of that importer meets
                    as_shipped = {"error": f"{type(e).__name__}: {str(e)[:160]}"}
                row[consumer]["as_shipped"] = as_shipped
            row["departures"] = {}
            for what, module in departures(g).items():
                preds = np.concatenate(
                    [
                        run_steps(module, torch.as_tensor(test.x[i : i + BATCH]), t)[0]
                        for i in range(0, n, BATCH)
                    ]
                )
                row["departures"][what] = compare(preds, ref, test.y)
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
