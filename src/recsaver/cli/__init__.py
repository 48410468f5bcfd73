"""Command line: parses arguments, calls one step, prints. No pipeline logic lives here.

One module per command group, each with `register(app)`; the options of the generating steps are
generated from their config dataclasses (options.py).
"""

from __future__ import annotations

import typer

from . import data, demo, distill, doctor, experiment, export, models, references, report, runs, study, view

app = typer.Typer(help="recsaver: LLM reasoning for rating prediction, and Rec-SAVER evaluation of it.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
for _module in (data, runs, references, models, demo, distill, experiment, report, export, view, study, doctor):
    _module.register(app)

__all__ = ["app"]
