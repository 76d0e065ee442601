"""``python -m reservoir``: the ``reservoir`` command line (:mod:`reservoir.experiment.cli`)."""
import sys

from .experiment.cli import main

sys.exit(main())
