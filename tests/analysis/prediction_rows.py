"""Hand-made rows of predictions.jsonl (automl_nb.analysis.predictions) for the analysis tests.

Boxes are Azure's normalised corners; ``det`` is a detection, ``obj`` an object on file.
"""


def cls(name, label, probs, loss=0.0):
    return {"filename": name, "label": label, "probs": probs, "loss": loss}


def box(x1, y1, x2, y2):
    return {"topX": x1, "topY": y1, "bottomX": x2, "bottomY": y2}


def det(label, score, where):
    return {"label": label, "score": score, "box": where}


def obj(label, where):
    return {"label": label, "box": where}
