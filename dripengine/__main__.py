"""``python -m dripengine`` runs the ``drip`` command."""

from dripengine.cli import main

main()
