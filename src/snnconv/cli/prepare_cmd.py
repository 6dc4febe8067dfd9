"""snnconv prepare: QCFS fine-tuning of an ANN, for conversion to binary spikes at few T."""

from __future__ import annotations

import click

from snnconv.cli.options import (
    batch_size_option,
    data_option,
    device_option,
    force_option,
    limit_option,
    lr_schedule_option,
    model_options,
    normalize_option,
    output_option,
    seed_option,
)
from snnconv.cli.output import check_outputs, err_console, print_history
from snnconv.cli.progress import training_progress
from snnconv.data import FORMS, load_dataset
from snnconv.finetune.prepare import PrepareSettings, prepare
from snnconv.load import load_input_model
from snnconv.save import save_onnx


@click.command("prepare")
@model_options
@data_option(f"Training data: {FORMS} (default split: train).")
@limit_option("Train on the first N images.")
@normalize_option("Apply (x - MEAN) / STD, as in training (recorded for later verbs).")
@click.option(
    "--levels",
    "-L",
    default=PrepareSettings.levels,
    show_default=True,
    type=click.IntRange(min=1),
    help="Quantisation levels L of each activation: the SNN reproduces the prepared ANN at "
    "T = L timesteps.",
)
@click.option(
    "--epochs", default=PrepareSettings.epochs, show_default=True, type=click.IntRange(min=1)
)
@click.option(
    "--lr", default=PrepareSettings.lr, show_default=True, type=float, help="Adam's learning rate."
)
@lr_schedule_option(PrepareSettings.lr_schedule)
@click.option(
    "--per-channel", is_flag=True, help="One trainable threshold λ per channel, not per layer."
)
@batch_size_option(default=PrepareSettings.batch_size)
@device_option()
@seed_option()
@output_option("Output .onnx: the prepared ANN.", required=True)
@force_option("Overwrite an existing output.")
def prepare_cmd(
    model,
    torch_factory,
    weights,
    input_shape,
    trust_pickle,
    data_spec,
    limit,
    normalize,
    output,
    force,
    **kw,
):
    """Prepare a trained ANN for conversion to binary spikes at few timesteps: replace each
    ReLU by a quantisation clip-floor-shift activation with L levels and a trainable threshold
    λ (QCFS, Bu et al. 2022; λ starts from the mse observer), and fine-tune the whole ANN
    (batch norm folded) with a straight-through gradient. The output is an ONNX ANN that
    onnxruntime runs as it is and that records λ and L; `snnconv convert` takes λ as the
    thresholds (binary IF neurons, initial membrane λ/2), so the SNN at T = L computes the
    prepared ANN, up to the unevenness of spike trains the QCFS analysis names.

    \b
    Example:
      snnconv prepare model.onnx --data mnist:/data/fashion-mnist --levels 4 --epochs 3 \\
          -o model.prepared.onnx
      snnconv convert model.prepared.onnx --calib-data mnist:/data/fashion-mnist
    """
    check_outputs(output, force=force)
    settings = PrepareSettings(**kw)
    settings.check()
    ann = load_input_model(
        model,
        torch_factory=torch_factory,
        weights=weights,
        input_shape=input_shape,
        trust_pickle=trust_pickle,
    )
    ds = load_dataset(
        data_spec,
        split="train",
        normalize=normalize,
        limit=limit,
    )
    with training_progress(settings.epochs, len(ds.x)) as advance:
        prepared, history = prepare(ann, ds.x, ds.y, settings, progress=advance)
    if normalize:
        prepared.metadata["snnconv.normalize"] = normalize
    save_onnx(prepared, output, force=force)
    err_console.print(f"wrote {output}")
    print_history(history, f"QCFS ANN, L = {settings.levels}", classes=ds.num_classes)
