"""Shared test set-up: no network, tiny synthetic datasets made once per session."""

import os

# timm otherwise retries hub downloads for about 50 s before failing.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
