//! Text preparation: everything that turns raw complaint text into the clean,
//! masked, segmented form that both the classifiers and the rules read.
//!
//! Each submodule does one job and is usable on its own, so the trainer and the
//! engine share exactly the same code (no train/serve skew).

pub mod amounts;
pub mod normalise;
pub mod pii;
pub mod segment;

use crate::error::TriageError;
use normalise::NormaliseLimits;
use pii::PiiFinding;

/// A complaint's text after every text stage that does not need a model:
/// normalised, personal data masked, money amounts extracted.
#[derive(Debug, Clone)]
pub struct PreparedText {
    /// Normalised text with personal data masked; the only form used after this point.
    pub masked: String,
    pub pii: Vec<PiiFinding>,
    pub amounts: Vec<f64>,
}

/// Run normalise → mask → amounts. The trainer and the engine both call this,
/// so a model sees at serving time exactly what it saw in training.
pub fn prepare(raw: &str, limits: &NormaliseLimits) -> Result<PreparedText, TriageError> {
    let normalised = normalise::normalise(raw, limits)?;
    let (masked, pii) = pii::mask(&normalised);
    let amounts = amounts::extract_amounts(&masked);
    Ok(PreparedText {
        masked,
        pii,
        amounts,
    })
}
