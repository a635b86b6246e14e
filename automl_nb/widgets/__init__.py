"""Notebook panels built on ipywidgets 8: a search-space builder, a live sweep dashboard, a
detection viewer, an attribution viewer, a dataset explorer, and from a finished run's folder a
diff gallery of two trials, one trial's error analysis and a label audit.

Every panel also has a static form (HTML with PNG images) so an executed notebook shows its
results where no kernel runs (nbviewer, GitHub).

    >>> from automl_nb.widgets import SweepDashboard
    >>> SweepDashboard("runs/image_classification")      # re-attach to any run folder

Names are imported on first use, so ``import automl_nb.widgets`` does not import ipywidgets,
matplotlib or torch.
"""

from automl_nb.lazy_exports import lazy_exports

# public name -> module that defines it
_EXPORTS = {
    "SweepDashboard": "automl_nb.widgets.dashboard",
    "LiveChart": "automl_nb.widgets.live_chart",
    "SearchSpaceBuilder": "automl_nb.widgets.builder",
    "DetectionViewer": "automl_nb.widgets.detection_viewer",
    "AttributionViewer": "automl_nb.widgets.attribution_viewer",
    "DatasetExplorer": "automl_nb.widgets.dataset_explorer",
    "DataHealthPanel": "automl_nb.widgets.data_health",
    "PredictionDiff": "automl_nb.widgets.diff_gallery",
    "ErrorAnalysis": "automl_nb.widgets.error_analysis",
    "LabelAudit": "automl_nb.widgets.label_audit",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
