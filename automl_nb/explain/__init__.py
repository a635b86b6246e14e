"""Explanations for classifiers (SPEC section 10): attribution maps and the 2x2 figure.

Methods: ``xrai`` (default), ``integrated_gradients``, ``guided_gradcam``, ``guided_backprop``;
their settings and defaults live in :mod:`automl_nb.spec.explain`.

    >>> from automl_nb.explain import explain, Explainer, score_request
    >>> explain("outputs/trial_0", "cat.jpg", method="integrated_gradients", n_steps=20)
    Explanation(method='integrated_gradients', label='cat', score=0.970, attributions=3x224x224)
    >>> explainer = Explainer.from_trial("outputs/trial_0")     # load once, explain many
    >>> [e.label for e in explainer.explain_predicted("cat_and_dog.jpg", "guided_gradcam")]
    >>> score_request(Predictor.from_trial("outputs/trial_0"), request)  # Azure's scoring request

Names are imported on first use, so importing this package does not load torch or captum.
"""

from __future__ import annotations

from automl_nb.lazy_exports import lazy_exports

__all__ = ["Explainer", "Explanation", "explain", "explain_for_request", "score_request"]

_HOMES = {
    "Explainer": "automl_nb.explain.explainer",
    "Explanation": "automl_nb.explain.explainer",
    "explain": "automl_nb.explain.explainer",
    "explain_for_request": "automl_nb.explain.request",
    "score_request": "automl_nb.explain.request",
}


__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
