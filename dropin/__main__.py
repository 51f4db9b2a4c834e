"""``python -m dropin`` is the ``dropin`` command."""

from dropin.cli import main

main()
