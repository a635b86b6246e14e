"""Quality benchmark: automl_nb against a hand-written PyTorch baseline on real datasets."""
