"""The memqa command line: a thin layer over the library (no torch import until a command runs)."""

from __future__ import annotations

import typer

from memqa_cli import ask, download, evaluate, plot, train

app = typer.Typer(
    name="memqa",
    help="Memory-network question answering on bAbI: train, evaluate and ask readers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("download")(download.download)
app.command("train")(train.train)
app.command("evaluate")(evaluate.evaluate)
app.command("ask")(ask.ask)
app.command("plot")(plot.plot)


def run() -> None:
    app()


if __name__ == "__main__":
    run()
