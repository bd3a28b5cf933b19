"""`python -m receptionist.cli ...`: the same as the `receptionist` console script."""

from receptionist.cli import app

app()
