"""Looking back at a finished run from its folder alone: each trial's validation predictions
(:mod:`~automl_nb.analysis.predictions`), the label audit (:mod:`~automl_nb.analysis.audit`) and
the comparison of trials' errors.

Nothing is imported here: the trainer imports :mod:`~automl_nb.analysis.predictions` in the
worker, and must not load the audit's (or the widgets') dependencies with it.
"""
