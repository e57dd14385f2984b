"""The root typer application every command module registers on."""

import typer

app = typer.Typer(
    name="bayesproxy",
    help="Bayesian forecasting of emergent LLM abilities from proxy evaluations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
