"""AttributionViewer: a classifier's explanations, image by image, method by method.

Pick an image, one or more methods (shown side by side, wrapping to the next row when the
page is narrow, each as the 2x2 figure of
:meth:`automl_nb.explain.Explanation.figure`), the class to explain (the predicted one, or
each predicted label for multilabel, by default) and the methods' ``n_steps``. Explanations
take seconds on a CPU, so a change recomputes only when the panel's values are settled
(``continuous_update`` off).
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any, Sequence

import ipywidgets as widgets

from automl_nb.errors import AutoMLError
from automl_nb.widgets.detection_viewer import trial_folder, validation_records
from automl_nb.widgets.html import png_img

PREDICTED = "(predicted)"


class AttributionViewer(widgets.VBox):
    """Explanations of a trained classifier on its validation images (or yours).

    Args:
        source: a :class:`~automl_nb.sweep.Run`, a run folder (its best trial is used) or a
            trial folder.
        images: paths or URLs to explain; default: the trial's validation images.
        trial: with a run, the trial to explain instead of the best one.
        methods: the methods shown at first (any of ``xai_algorithm``'s choices).

    Raises:
        AutoMLError: not a classifier, or no trained model yet.

    Example:
        >>> AttributionViewer(run, methods=("xrai", "guided_gradcam"))
    """

    def __init__(self, source: Any, images: Sequence[Any] | None = None, *, trial: str | None = None,
                 methods: Sequence[str] = ("guided_gradcam",)) -> None:
        from automl_nb.explain import Explainer
        from automl_nb.spec import is_classification
        from automl_nb.spec.explain import XAI_ALGORITHMS, XAI_PARAMETERS
        from automl_nb.train.folder import TrialFolder

        folder = trial_folder(source, trial)
        description = TrialFolder(folder).description()
        if not is_classification(description["task"]):
            raise AutoMLError(f"{folder}: explanations are for classifiers; this is {description['task']} "
                              f"(see DetectionViewer)")
        images = list(images) if images is not None else [r.image_url for r in validation_records(folder)]
        if not images:
            raise AutoMLError(f"{folder}: no images to explain")
        self.folder, self.explainer = folder, Explainer.from_trial(folder)
        steps = XAI_PARAMETERS["n_steps"]
        self.image = widgets.Dropdown(options=[(Path(str(image)).name, image) for image in images],
                                      description="image")
        self.methods = widgets.SelectMultiple(options=XAI_ALGORITHMS, value=tuple(methods), rows=4,
                                              description="methods")
        self.label = widgets.Dropdown(options=[PREDICTED, *self.explainer.labels], description="class")
        self.n_steps = widgets.IntSlider(value=steps.default, min=int(steps.minimum), max=200,
                                         description="n_steps", continuous_update=False)
        # Wrapped, not clipped: a third method's figure goes to the next row on a narrow page.
        self.pictures = widgets.HBox(layout=widgets.Layout(flex_flow="row wrap", align_items="flex-start"))
        self.caption = widgets.HTML()
        for control in (self.image, self.methods, self.label, self.n_steps):
            control.observe(lambda _: self.refresh(), names="value")
        controls = widgets.HBox([widgets.VBox([self.image, self.label, self.n_steps]), self.methods])
        super().__init__([controls, self.pictures, self.caption])
        self.refresh()

    def refresh(self) -> None:
        """Recompute the explanations for the current image, methods, class and n_steps."""
        from automl_nb.spec.explain import xai_keys

        self.explanations = []
        for method in self.methods.value:
            settings = {"n_steps": self.n_steps.value} if "n_steps" in xai_keys(method, self.explainer.task) else {}
            if self.label.value == PREDICTED:
                self.explanations += self.explainer.explain_predicted(self.image.value, method, **settings)
            else:
                self.explanations.append(self.explainer.explain(self.image.value, method, self.label.value, **settings))
        self.pictures.children = [widgets.Image(value=e.to_png(), format="png", layout={"max_width": "480px"})
                                  for e in self.explanations]
        self.caption.value = escape(", ".join(f"{e.method}: {e.label} ({e.score:.2f})" for e in self.explanations)
                                    or "no label reaches the threshold")

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs)
        pictures = "".join(png_img(e.to_png(), f"{e.method} {e.label}") for e in self.explanations)
        bundle["text/html"] = (f'<div><div style="display:flex;flex-wrap:wrap;align-items:flex-start">{pictures}</div>'
                               f"<p>{self.caption.value}</p></div>")
        return bundle
