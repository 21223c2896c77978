//! Precision, recall and F1 with micro, macro and weighted averages, for
//! multi-class labels and multi-label 0/1 matrices, and a per-class report.
//!
//! Conventions are scikit-learn's (`precision_recall_fscore_support`,
//! `zero_division=0`): a ratio whose denominator is 0 is 0; F1 is
//! `2·tp / (2·tp + fp + fn)`; the classes averaged over are those present in
//! predictions or targets for multi-class input, and every column for
//! multi-label input; the weighted average weights each class by its support
//! (number of true instances).

use super::{bad, ratio, same_len};
use crate::error::Result;

/// Precision, recall and F1 of one class or one average.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prf {
    /// Precision.
    pub precision: f64,
    /// Recall.
    pub recall: f64,
    /// F1 score.
    pub f1: f64,
}

/// One row of the per-class report.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClassReport {
    /// Class index.
    pub class: usize,
    /// Precision, recall and F1 of the class.
    pub prf: Prf,
    /// Number of true instances of the class.
    pub support: u64,
}

/// How per-class scores are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Average {
    /// From the summed counts of all classes (equals accuracy for single-label input).
    Micro,
    /// Unweighted mean over classes.
    Macro,
    /// Mean over classes weighted by support.
    Weighted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    MultiClass,
    MultiLabel,
}

/// Accumulated true/false positives and false negatives per class.
#[derive(Debug, Clone)]
pub struct ClassCounts {
    tp: Vec<u64>,
    fp: Vec<u64>,
    fn_: Vec<u64>,
    seen: Vec<bool>,
    samples: u64,
    mode: Option<Mode>,
}

impl ClassCounts {
    /// Counts over `classes` classes (class indices `0..classes`).
    pub fn new(classes: usize) -> Self {
        Self {
            tp: vec![0; classes],
            fp: vec![0; classes],
            fn_: vec![0; classes],
            seen: vec![false; classes],
            samples: 0,
            mode: None,
        }
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.tp.len()
    }

    fn set_mode(&mut self, mode: Mode) -> Result<()> {
        match self.mode {
            Some(m) if m != mode => Err(bad(
                "classification",
                "multi-class and multi-label updates cannot be mixed in one accumulator",
            )),
            _ => {
                self.mode = Some(mode);
                Ok(())
            }
        }
    }

    /// Adds single-label predictions (`pred[i]` is the class predicted for
    /// sample `i`, `target[i]` its true class).
    pub fn update(&mut self, pred: &[usize], target: &[usize]) -> Result<()> {
        same_len("pred", "predictions", pred.len(), "targets", target.len())?;
        let n = self.classes();
        for (key, values) in [("pred", pred), ("target", target)] {
            if let Some((i, c)) = values.iter().enumerate().find(|(_, c)| **c >= n) {
                return Err(bad(
                    key,
                    format!("sample {i} has class {c}, outside 0..{n}"),
                ));
            }
        }
        self.set_mode(Mode::MultiClass)?;
        for (&p, &t) in pred.iter().zip(target) {
            self.seen[p] = true;
            self.seen[t] = true;
            if p == t {
                self.tp[p] += 1;
            } else {
                self.fp[p] += 1;
                self.fn_[t] += 1;
            }
        }
        self.samples += pred.len() as u64;
        Ok(())
    }

    /// Adds multi-label predictions: one row of 0/1 values per sample, one
    /// column per class.
    pub fn update_multilabel(&mut self, pred: &[Vec<u8>], target: &[Vec<u8>]) -> Result<()> {
        same_len(
            "pred",
            "prediction rows",
            pred.len(),
            "target rows",
            target.len(),
        )?;
        let n = self.classes();
        for (key, rows) in [("pred", pred), ("target", target)] {
            for (i, row) in rows.iter().enumerate() {
                if row.len() != n {
                    return Err(bad(
                        key,
                        format!("row {i} has {} columns, expected {n}", row.len()),
                    ));
                }
                if let Some((c, v)) = row.iter().enumerate().find(|(_, v)| **v > 1) {
                    return Err(bad(
                        key,
                        format!("row {i} column {c} is {v}; values must be 0 or 1"),
                    ));
                }
            }
        }
        self.set_mode(Mode::MultiLabel)?;
        for (p, t) in pred.iter().zip(target) {
            for c in 0..n {
                match (p[c], t[c]) {
                    (1, 1) => self.tp[c] += 1,
                    (1, 0) => self.fp[c] += 1,
                    (0, 1) => self.fn_[c] += 1,
                    _ => {}
                }
            }
        }
        self.seen.iter_mut().for_each(|s| *s = true);
        self.samples += pred.len() as u64;
        Ok(())
    }

    /// Classes averaged over: those seen in predictions or targets
    /// (multi-class), every column (multi-label).
    fn labels(&self) -> Vec<usize> {
        (0..self.classes()).filter(|&c| self.seen[c]).collect()
    }

    fn class_prf(&self, c: usize) -> Prf {
        let (tp, fp, fn_) = (self.tp[c] as f64, self.fp[c] as f64, self.fn_[c] as f64);
        Prf {
            precision: ratio(tp, tp + fp),
            recall: ratio(tp, tp + fn_),
            f1: ratio(2.0 * tp, 2.0 * tp + fp + fn_),
        }
    }

    fn check_nonempty(&self) -> Result<()> {
        if self.samples == 0 {
            Err(bad(
                "classification",
                "no samples were added; the scores are undefined",
            ))
        } else {
            Ok(())
        }
    }

    /// Per-class precision, recall, F1 and support, for the classes averaged over.
    pub fn report(&self) -> Result<Vec<ClassReport>> {
        self.check_nonempty()?;
        Ok(self
            .labels()
            .into_iter()
            .map(|c| ClassReport {
                class: c,
                prf: self.class_prf(c),
                support: self.tp[c] + self.fn_[c],
            })
            .collect())
    }

    /// The averaged scores.
    pub fn average(&self, average: Average) -> Result<Prf> {
        let report = self.report()?;
        Ok(match average {
            Average::Micro => {
                let sum = |v: &[u64]| report.iter().map(|r| v[r.class] as f64).sum::<f64>();
                let (tp, fp, fn_) = (sum(&self.tp), sum(&self.fp), sum(&self.fn_));
                Prf {
                    precision: ratio(tp, tp + fp),
                    recall: ratio(tp, tp + fn_),
                    f1: ratio(2.0 * tp, 2.0 * tp + fp + fn_),
                }
            }
            Average::Macro | Average::Weighted => {
                let weight = |r: &ClassReport| match average {
                    Average::Weighted => r.support as f64,
                    _ => 1.0,
                };
                let total: f64 = report.iter().map(weight).sum();
                let mean = |f: fn(&Prf) -> f64| {
                    ratio(report.iter().map(|r| weight(r) * f(&r.prf)).sum(), total)
                };
                Prf {
                    precision: mean(|p| p.precision),
                    recall: mean(|p| p.recall),
                    f1: mean(|p| p.f1),
                }
            }
        })
    }
}

/// One-shot averaged precision, recall and F1 of single-label predictions.
pub fn prf(pred: &[usize], target: &[usize], classes: usize, average: Average) -> Result<Prf> {
    let mut counts = ClassCounts::new(classes);
    counts.update(pred, target)?;
    counts.average(average)
}

/// One-shot averaged precision, recall and F1 of multi-label 0/1 rows.
pub fn multilabel_prf(pred: &[Vec<u8>], target: &[Vec<u8>], average: Average) -> Result<Prf> {
    let classes = target.first().or(pred.first()).map_or(0, Vec::len);
    let mut counts = ClassCounts::new(classes);
    counts.update_multilabel(pred, target)?;
    counts.average(average)
}
