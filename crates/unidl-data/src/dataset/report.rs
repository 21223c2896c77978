//! Skip-with-report: a sample is never dropped silently. `on_error = "skip"`
//! loads every sample once at construction, drops those that fail and keeps
//! the list of what was dropped and why.

use serde::Deserialize;

/// What `construct_dataset` does with samples that fail to load.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Keep every sample; a broken one is an error when it is loaded (default).
    #[default]
    Fail,
    /// Load every sample at construction (a full pass, without transforms),
    /// drop those that fail and report them in [`super::PreparedDataset::report`].
    Skip,
}

/// One sample that failed to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Its index in the data set that was checked.
    pub index: usize,
    /// Its file (or manifest line), when the data set knows it.
    pub source: String,
    /// The error, as text.
    pub error: String,
}

/// The outcome of loading every sample of a data set
/// ([`super::PreparedDataset::validate`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidationReport {
    /// Samples tried.
    pub checked: usize,
    /// Those that failed, in index order.
    pub failures: Vec<Failure>,
}

impl ValidationReport {
    /// True when every sample loaded.
    pub fn is_ok(&self) -> bool {
        self.failures.is_empty()
    }

    /// Indices that loaded.
    pub fn good_indices(&self) -> Vec<usize> {
        let mut bad = self.failures.iter().map(|f| f.index).peekable();
        (0..self.checked)
            .filter(|&i| {
                if bad.peek() == Some(&i) {
                    bad.next();
                    false
                } else {
                    true
                }
            })
            .collect()
    }
}

impl std::fmt::Display for ValidationReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} of {} samples failed to load",
            self.failures.len(),
            self.checked
        )?;
        for x in &self.failures {
            writeln!(f, "  #{} {}: {}", x.index, x.source, x.error)?;
        }
        Ok(())
    }
}
