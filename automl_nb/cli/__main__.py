"""``python -m automl_nb.cli``: the same as the ``automl-nb`` command."""

import sys

from automl_nb.cli import main

sys.exit(main())
