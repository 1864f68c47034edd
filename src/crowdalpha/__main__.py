"""``python -m crowdalpha`` runs the ``crowdalpha`` command."""

from crowdalpha.cli import app

app(prog_name="crowdalpha")
