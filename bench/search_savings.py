"""What the threshold search's savings cost in accuracy, and save in time.

For each model, T and calibration draw it converts under each variant of the conversion's
savings, then simulates the first test images at T. A variant is parts joined by ``+``:
``defaults`` (the savings as shipped), ``full`` (none: every candidate on 128 search images,
judged at the output, both kinds of ``--neuron auto`` calibrated, 512 bias images), and
changes on top of ``full``: ``early`` (early stop), ``onefine`` (one point in the second
pass), ``images:N`` (N search images), ``margin:M`` (``--neuron auto`` calibrates only the
kinds within M x the best error before the steps), ``calib:N`` (N images for the bias step),
``window:W`` (candidates judged W neuron layers on). Prints JSON: per row the conversion time
per stage (wall; and the total's CPU time, which a busy machine distorts less), a digest of
the SNN's parameters, its accuracy, the chosen scales and the neuron kind.

Usage: ``python bench/search_savings.py [--models vgg,resnet] [--timesteps 8,16]
[--variants full,defaults] [--calib-limit 1000] [--test-limit 1000]
[--calib-offsets 0,1000,2000]``. Each offset O calibrates on training images O..O+N (N =
``--calib-limit``): the spread over offsets is the noise floor a saving is judged against.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from accuracy import model_and_data  # noqa: E402

from snnconv.calibrate import search  # noqa: E402
from snnconv.convert import ConversionSettings, convert  # noqa: E402
from snnconv.graph import all_nodes  # noqa: E402
from snnconv.simulate import SimulationSettings, simulate  # noqa: E402

conversion = importlib.import_module("snnconv.convert.convert")  # the package hides the module


def params_digest(snn) -> str:
    """One SHA-256 over every parameter of the SNN (BackRes bodies too): equal digests, the
    same SNN."""
    h = hashlib.sha256()
    for node in all_nodes(snn.nodes):
        for key, value in sorted(node.params.items()):
            h.update(f"{node.name}/{key}".encode())
            h.update(np.ascontiguousarray(np.asarray(value, np.float32)).tobytes())
    return h.hexdigest()[:16]


#: The module defaults as shipped (``defaults``), and with every saving off (``full``).
SHIPPED = {
    (search, "EARLY_STOP"): search.EARLY_STOP,
    (search, "WINDOW"): search.WINDOW,
    (search, "ONE_FINE"): search.ONE_FINE,
    (search, "SEARCH_IMAGES"): search.SEARCH_IMAGES,
    (conversion, "AUTO_MARGIN"): conversion.AUTO_MARGIN,
}
FULL = dict(zip(SHIPPED, (False, None, False, 128, None), strict=True))


def set_variant(variant: str) -> dict:
    """Set the module defaults ``variant`` names; returns the ConversionSettings it changes."""
    parts = variant.split("+")
    settings = {} if "defaults" in parts else {"calibration_images": 512}
    for (module, name), value in (SHIPPED if "defaults" in parts else FULL).items():
        setattr(module, name, value)
    for part in parts:
        if part == "early":
            search.EARLY_STOP = True
        elif part == "onefine":
            search.ONE_FINE = True
        elif part.startswith("window:"):
            search.WINDOW = int(part.split(":")[1])
        elif part.startswith("images:"):
            search.SEARCH_IMAGES = int(part.split(":")[1])
        elif part.startswith("margin:"):
            conversion.AUTO_MARGIN = float(part.split(":")[1])
        elif part.startswith("calib:"):
            settings["calibration_images"] = int(part.split(":")[1])
        elif part not in ("full", "defaults"):
            raise SystemExit(f"unknown variant {part!r}")
    return settings


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="vgg,resnet")
    p.add_argument("--timesteps", default="8,16")
    p.add_argument("--variants", default="full,defaults")
    p.add_argument("--calib-limit", type=int, default=1000)
    p.add_argument("--test-limit", type=int, default=1000)
    p.add_argument("--calib-offsets", default="0", help="first training image of each draw")
    args = p.parse_args()
    torch.set_num_threads(1)
    rows = []
    for name in args.models.split(","):
        offsets = [int(o) for o in args.calib_offsets.split(",")]
        ann, train, test = model_and_data(name, args.test_limit, args.calib_limit + max(offsets))
        for t, offset, variant in itertools.product(
            map(int, args.timesteps.split(",")), offsets, args.variants.split(",")
        ):
            changed = set_variant(variant)
            calib_x = train.x[offset : offset + args.calib_limit]
            start, cpu = time.perf_counter(), time.process_time()
            snn = convert(ann, calib_x, ConversionSettings(target_timesteps=t, **changed))
            seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
            r = simulate(snn, test.x, test.y, SimulationSettings(timesteps=t))
            row = {
                "model": name,
                "timesteps": t,
                "variant": variant,
                "settings": changed,
                "calib_offset": offset,
                "convert_seconds": round(seconds, 2),
                "convert_cpu_seconds": round(cpu, 2),
                "stage_seconds": json.loads(snn.metadata.get("snnconv.stage_seconds", "{}")),
                "stage_cpu_seconds": json.loads(
                    snn.metadata.get("snnconv.stage_cpu_seconds", "{}")
                ),
                "params_sha256": params_digest(snn),
                "snn_accuracy": r.snn_accuracy,
                "ann_accuracy": r.ann_accuracy,
                "neuron": json.loads(snn.metadata["snnconv.neuron_choice"])["chosen"],
                "scales": json.loads(snn.metadata["snnconv.threshold_scales"]),
            }
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
