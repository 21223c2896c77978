#!/usr/bin/env python3
"""Reference values for unidl's classification metrics, from scikit-learn.

Writes metrics.json beside this file; the Rust tests read it and need no Python.
Run: /var/cache/unidl/torch-venv/bin/python crates/unidl-train/tests/reference/gen_metrics.py
(needs numpy and scikit-learn).
"""
import json
import pathlib

import numpy as np
import sklearn
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_score, recall_score, top_k_accuracy_score

rng = np.random.default_rng(7)
cases = []
for n, classes, noise in [(50, 3, 0.5), (200, 10, 0.3), (37, 6, 0.9)]:
    target = rng.integers(0, classes, size=n)
    scores = rng.normal(size=(n, classes))
    scores[np.arange(n), target] += (1 - noise) * 3  # informative but imperfect
    pred = scores.argmax(1)
    ranking = np.argsort(-scores, axis=1)
    cases.append({
        "classes": classes,
        "target": target.tolist(),
        "ranking": ranking.tolist(),
        "accuracy": accuracy_score(target, pred),
        "top3": top_k_accuracy_score(target, scores, k=3, labels=list(range(classes))),
        "precision_macro": precision_score(target, pred, average="macro", zero_division=0),
        "recall_macro": recall_score(target, pred, average="macro", zero_division=0),
        "f1_macro": f1_score(target, pred, average="macro", zero_division=0),
        "f1_micro": f1_score(target, pred, average="micro", zero_division=0),
        "confusion": confusion_matrix(target, pred, labels=list(range(classes))).tolist(),
    })
out = pathlib.Path(__file__).with_name("metrics.json")
out.write_text(json.dumps({"sklearn": sklearn.__version__, "cases": cases}))
print(f"wrote {len(cases)} cases to {out}")
