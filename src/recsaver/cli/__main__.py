"""`python -m recsaver.cli ...`, as the `recsaver` script."""

from . import app

app()
