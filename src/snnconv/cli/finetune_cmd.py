"""snnconv finetune: surrogate-gradient training of a converted SNN file."""

from __future__ import annotations

import click
from click.core import ParameterSource

from snnconv.cli.options import (
    batch_size_option,
    data_option,
    device_option,
    force_option,
    limit_option,
    lr_schedule_option,
    normalize_option,
    output_option,
    seed_option,
)
from snnconv.cli.output import check_outputs, err_console, print_history
from snnconv.cli.progress import training_progress
from snnconv.data import FORMS, load_dataset
from snnconv.errors import InputError
from snnconv.finetune import Distillation, FinetuneSettings, finetune, parse_loss
from snnconv.load import load_input_model, load_snn
from snnconv.save import save_onnx


@click.command("finetune")
@click.argument("model", type=click.Path(dir_okay=False))
@data_option(f"Training data: {FORMS} (default split: train).")
@limit_option("Train on the first N images.")
@normalize_option("Apply (x - MEAN) / STD (default: as recorded at conversion).")
@click.option("--epochs", default=1, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--timesteps",
    "-T",
    default=4,
    show_default=True,
    type=click.IntRange(min=1),
    help="T to unroll and train at (the latency you want).",
)
@click.option(
    "--loss",
    default="ce",
    show_default=True,
    help="ce (cross-entropy) or stochmax[:RHO] (non-target classes kept with probability "
    "RHO, default 0.5).",
)
@click.option(
    "--teacher",
    type=click.Path(dir_okay=False),
    help="An ANN to distil from (the one the SNN was converted from); see --teacher-weight.",
)
@click.option(
    "--teacher-weight",
    default=Distillation.weight,
    show_default=True,
    type=float,
    help="With --teacher: the share in [0, 1] of the loss that distils from it, the KL "
    "divergence to its outputs softened by --temperature.",
)
@click.option(
    "--temperature",
    default=Distillation.temperature,
    show_default=True,
    type=float,
    help="With --teacher: the softmax temperature of both outputs in the distillation term.",
)
@click.option("--lr", default=FinetuneSettings.lr, show_default=True, type=float)
@lr_schedule_option(FinetuneSettings.lr_schedule)
@batch_size_option(default=64)
@device_option()
@seed_option()
@output_option("Output .snn.onnx.", required=True)
@force_option("Overwrite an existing output.")
def finetune_cmd(
    model,
    data_spec,
    limit,
    normalize,
    output,
    force,
    loss,
    teacher,
    teacher_weight,
    temperature,
    **kw,
):
    """Fine-tune a converted SNN (weights, biases, thresholds) by backpropagation through
    time with a surrogate spike gradient, to reach its accuracy in fewer timesteps.

    \b
    Example:
      snnconv finetune model.snn.onnx --data mnist:/data/fashion-mnist --limit 5000 \\
          --epochs 1 -T 4 --loss stochmax:0.5 -o model.ft.snn.onnx
      snnconv finetune model.snn.onnx --data mnist:/data/fashion-mnist --epochs 2 \\
          --teacher model.onnx -o model.ft.snn.onnx
    """
    check_outputs(output, force=force)
    ctx = click.get_current_context()
    given = [f"--{k.replace('_', '-')}" for k in ("teacher_weight", "temperature")
             if ctx.get_parameter_source(k) is not ParameterSource.DEFAULT]  # fmt: skip
    if given and teacher is None:
        raise InputError(f"{given[0]} shapes distillation from a teacher: give --teacher MODEL")
    settings = FinetuneSettings(
        loss=parse_loss(loss), distillation=Distillation(teacher_weight, temperature), **kw
    )
    settings.check()
    snn = load_snn(model)
    ann = None if teacher is None else load_input_model(teacher, input_shape=snn.input_shape)
    norm = normalize or snn.metadata.get("snnconv.normalize")
    ds = load_dataset(
        data_spec,
        split="train",
        normalize=norm,
        limit=limit,
    )
    with training_progress(settings.epochs, len(ds.x)) as advance:
        trained, history = finetune(snn, ds.x, ds.y, settings, teacher=ann, progress=advance)
    if normalize:
        trained.metadata["snnconv.normalize"] = normalize
    save_onnx(trained, output, force=force)
    err_console.print(f"wrote {output}")
    print_history(history, f"SNN, T = {settings.timesteps}", classes=ds.num_classes)
