//! Classification metrics shared by the trainer (validation, model card) and
//! `triage eval`: accuracy, macro-F1, per-class precision/recall/F1, the
//! confusion matrix, ordinal within-one accuracy and expected calibration error.

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct ClassMetrics {
    pub label: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct AxisMetrics {
    pub axis: String,
    pub n: usize,
    pub accuracy: f64,
    pub macro_f1: f64,
    pub per_class: Vec<ClassMetrics>,
    /// `confusion[true][predicted]`, in label order.
    pub confusion: Vec<Vec<usize>>,
    pub labels: Vec<String>,
    /// Share of predictions at most one level away (ordinal axes only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub within_one: Option<f64>,
    /// Expected calibration error of the top confidence (10 equal-width bins).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ece: Option<f64>,
}

impl AxisMetrics {
    /// Metrics from `(true, predicted)` label indices; `confidences` (the
    /// predicted label's probability) enable ECE.
    pub fn compute(
        axis: &str,
        labels: &[String],
        pairs: &[(usize, usize)],
        confidences: Option<&[f32]>,
        ordinal: bool,
    ) -> Self {
        let k = labels.len();
        let mut confusion = vec![vec![0usize; k]; k];
        for &(t, p) in pairs {
            confusion[t][p] += 1;
        }
        let n = pairs.len();
        let correct: usize = (0..k).map(|i| confusion[i][i]).sum();
        let mut per_class = Vec::with_capacity(k);
        let mut f1_sum = 0.0;
        let mut present = 0usize;
        for i in 0..k {
            let tp = confusion[i][i] as f64;
            let support: usize = confusion[i].iter().sum();
            let predicted: usize = (0..k).map(|t| confusion[t][i]).sum();
            let precision = if predicted > 0 {
                tp / predicted as f64
            } else {
                0.0
            };
            let recall = if support > 0 {
                tp / support as f64
            } else {
                0.0
            };
            let f1 = if precision + recall > 0.0 {
                2.0 * precision * recall / (precision + recall)
            } else {
                0.0
            };
            if support > 0 || predicted > 0 {
                f1_sum += f1;
                present += 1;
            }
            per_class.push(ClassMetrics {
                label: labels[i].clone(),
                precision,
                recall,
                f1,
                support,
            });
        }
        let within_one = ordinal.then(|| {
            let close = pairs.iter().filter(|(t, p)| t.abs_diff(*p) <= 1).count();
            ratio(close, n)
        });
        let ece = confidences.map(|c| expected_calibration_error(pairs, c, 10));
        AxisMetrics {
            axis: axis.to_owned(),
            n,
            accuracy: ratio(correct, n),
            macro_f1: if present > 0 {
                f1_sum / present as f64
            } else {
                0.0
            },
            per_class,
            confusion,
            labels: labels.to_vec(),
            within_one,
            ece,
        }
    }

    pub fn recall_of(&self, label: &str) -> Option<f64> {
        self.per_class
            .iter()
            .find(|c| c.label == label)
            .map(|c| c.recall)
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// ECE: the support-weighted gap between confidence and accuracy per bin.
pub fn expected_calibration_error(
    pairs: &[(usize, usize)],
    confidences: &[f32],
    bins: usize,
) -> f64 {
    let mut count = vec![0usize; bins];
    let mut conf_sum = vec![0f64; bins];
    let mut correct = vec![0usize; bins];
    for (&(t, p), &c) in pairs.iter().zip(confidences) {
        let b = ((c as f64 * bins as f64) as usize).min(bins - 1);
        count[b] += 1;
        conf_sum[b] += c as f64;
        correct[b] += usize::from(t == p);
    }
    let n: usize = count.iter().sum();
    if n == 0 {
        return 0.0;
    }
    (0..bins)
        .filter(|&b| count[b] > 0)
        .map(|b| {
            let acc = correct[b] as f64 / count[b] as f64;
            let conf = conf_sum[b] / count[b] as f64;
            (count[b] as f64 / n as f64) * (acc - conf).abs()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn perfect_predictions_score_one() {
        let m = AxisMetrics::compute(
            "x",
            &labels(&["a", "b"]),
            &[(0, 0), (1, 1), (1, 1)],
            None,
            false,
        );
        assert_eq!(m.accuracy, 1.0);
        assert_eq!(m.macro_f1, 1.0);
        assert_eq!(m.confusion, vec![vec![1, 0], vec![0, 2]]);
    }

    #[test]
    fn macro_f1_and_within_one_follow_definitions() {
        // true: a a b c ; predicted: a b b a
        let pairs = [(0, 0), (0, 1), (1, 1), (2, 0)];
        let m = AxisMetrics::compute("sev", &labels(&["a", "b", "c"]), &pairs, None, true);
        assert_eq!(m.accuracy, 0.5);
        // a: p=1/2 r=1/2 f=0.5; b: p=1/2 r=1 f=2/3; c: 0
        assert!((m.macro_f1 - (0.5 + 2.0 / 3.0) / 3.0).abs() < 1e-9);
        assert_eq!(m.within_one, Some(0.75));
        assert_eq!(m.recall_of("b"), Some(1.0));
    }

    #[test]
    fn ece_is_zero_when_confidence_matches_accuracy() {
        let pairs = [(0, 0), (0, 1)];
        assert!(expected_calibration_error(&pairs, &[0.5, 0.5], 10).abs() < 1e-9);
        assert!((expected_calibration_error(&pairs, &[1.0, 1.0], 10) - 0.5).abs() < 1e-9);
    }
}
