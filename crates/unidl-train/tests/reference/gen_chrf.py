#!/usr/bin/env python3
"""Reference chrF scores for `metrics.rs::chrf_matches_sacrebleu`.

sacrebleu 2.6.0, `sacrebleu.metrics.CHRF()` with its defaults (character
orders 1-6, no word n-grams, beta 2, whitespace removed, no eps
smoothing): corpus scores with one and two references and sentence scores,
on hypotheses that exercise punctuation, Unicode, empty strings and
repeated n-grams. Writes `chrf.json` beside this script.
"""
import json
import os

import sacrebleu
from sacrebleu.metrics import CHRF

HERE = os.path.dirname(os.path.abspath(__file__))
HYPS = [
    "The cat is on the mat.",
    "Öffnen Sie das Bild in einem neuen Fenster",
    "",
    "aaaa aaaa",
    "Die Ebene wurde gelöscht!",
    "Short.",
]
REFS_A = [
    "There is a cat on the mat.",
    "Das Bild in einem neuen Fenster öffnen",
    "nothing here",
    "aa aa aa",
    "Die Ebene ist gelöscht worden.",
    "A much longer reference sentence than the hypothesis.",
]
REFS_B = [
    "The cat sat on the mat.",
    "Öffne das Bild in einem neuen Fenster",
    "",
    "aaa",
    "Ebene gelöscht",
    "Short it is.",
]

chrf = CHRF()
out = {
    "version": sacrebleu.__version__,
    "hypotheses": HYPS,
    "refs_a": REFS_A,
    "refs_b": REFS_B,
    "corpus_one_ref": chrf.corpus_score(HYPS, [REFS_A]).score,
    "corpus_two_refs": chrf.corpus_score(HYPS, [REFS_A, REFS_B]).score,
    "sentences": [chrf.sentence_score(h, [a]).score for h, a in zip(HYPS, REFS_A)],
}
with open(os.path.join(HERE, "chrf.json"), "w") as f:
    json.dump(out, f, indent=1, ensure_ascii=False)
print(out["corpus_one_ref"], out["corpus_two_refs"])
