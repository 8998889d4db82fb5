//! Labelled corpus loading and the held-out split.
//!
//! Labels are validated against `config/taxonomy.toml`; every bad line is
//! reported with its file and line number so a bank retraining on its own
//! export can fix the data rather than guess.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// One axis of the taxonomy.
#[derive(Debug, Clone, Deserialize)]
pub struct AxisDef {
    pub name: String,
    pub labels: Vec<String>,
    #[serde(default)]
    pub ordinal: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Taxonomy {
    pub axes: Vec<AxisDef>,
}

impl Taxonomy {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read taxonomy {}", path.display()))?;
        let tax: Taxonomy = toml::from_str(&text)
            .with_context(|| format!("{} is not a valid taxonomy file", path.display()))?;
        if tax.axes.is_empty() {
            bail!("{} defines no axes", path.display());
        }
        Ok(tax)
    }
}

/// A labelled complaint; `labels[k]` indexes `taxonomy.axes[k].labels`.
#[derive(Debug, Clone)]
pub struct Record {
    pub id: String,
    pub text: String,
    pub channel: Option<String>,
    pub labels: Vec<usize>,
    /// The original JSON line (written back out for the held-out file).
    pub raw: String,
}

/// The corpus files: `path` itself if a file, else every `*.jsonl` in it, sorted.
pub fn corpus_files(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_owned()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("cannot read data directory {}", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("no *.jsonl files in {}", path.display());
    }
    Ok(files)
}

/// Parse and validate one labelled JSON line.
pub fn parse_record(line: &str, taxonomy: &Taxonomy) -> Result<Record, String> {
    let value: serde_json::Value =
        serde_json::from_str(line).map_err(|e| format!("not valid JSON: {e}"))?;
    let obj = value.as_object().ok_or("not a JSON object")?;
    let get = |k: &str| obj.get(k).and_then(|v| v.as_str());
    let id = get("id").ok_or("missing string field `id`")?.to_owned();
    let text = get("text").ok_or("missing string field `text`")?.to_owned();
    let channel = get("channel").map(str::to_owned);
    let mut labels = Vec::with_capacity(taxonomy.axes.len());
    for axis in &taxonomy.axes {
        let value = get(&axis.name).ok_or_else(|| format!("missing label `{}`", axis.name))?;
        let idx = axis.labels.iter().position(|l| l == value).ok_or_else(|| {
            format!(
                "unknown {} label `{value}` (expected one of {})",
                axis.name,
                axis.labels.join(", ")
            )
        })?;
        labels.push(idx);
    }
    Ok(Record {
        id,
        text,
        channel,
        labels,
        raw: line.to_owned(),
    })
}

/// Load every record under `path`; fails listing every bad line.
pub fn load_corpus(path: &Path, taxonomy: &Taxonomy) -> anyhow::Result<(Vec<Record>, String)> {
    let files = corpus_files(path)?;
    let mut hasher = Sha256::new();
    let mut records = Vec::new();
    let mut problems = Vec::new();
    let mut ids = HashSet::new();
    let mut texts = HashSet::new();
    for file in &files {
        let content = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        hasher.update(file.file_name().unwrap_or_default().as_encoded_bytes());
        hasher.update(content.as_bytes());
        for (i, line) in content.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match parse_record(line, taxonomy) {
                Ok(r) => {
                    if !ids.insert(r.id.clone()) {
                        problems.push(format!(
                            "{}:{}: duplicate id `{}`",
                            file.display(),
                            i + 1,
                            r.id
                        ));
                    } else if texts.insert(r.text.clone()) {
                        records.push(r);
                    }
                }
                Err(e) => problems.push(format!("{}:{}: {e}", file.display(), i + 1)),
            }
        }
    }
    if !problems.is_empty() {
        let shown: Vec<_> = problems.iter().take(20).cloned().collect();
        bail!(
            "{} bad line(s) in the corpus; fix them and retry:\n{}",
            problems.len(),
            shown.join("\n")
        );
    }
    let hash = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok((records, hash))
}

/// Which split a record belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Train,
    Validation,
    Test,
}

/// Stratified split by the label of axis `stratify` with a fixed seed. Each
/// record's place depends only on (seed, id) ordering within its stratum, so
/// growing the corpus moves few held-out examples into training.
pub fn split(records: &[Record], stratify: usize, seed: u64, val: f64, test: f64) -> Vec<Split> {
    let mut strata: BTreeMap<usize, Vec<(u64, usize)>> = BTreeMap::new();
    for (i, r) in records.iter().enumerate() {
        let mut h = Sha256::new();
        h.update(seed.to_le_bytes());
        h.update(r.id.as_bytes());
        let digest = h.finalize();
        let key = u64::from_le_bytes(digest[..8].try_into().unwrap());
        strata.entry(r.labels[stratify]).or_default().push((key, i));
    }
    let mut out = vec![Split::Train; records.len()];
    for members in strata.values_mut() {
        members.sort();
        let n = members.len() as f64;
        let n_test = (n * test).round() as usize;
        let n_val = (n * val).round() as usize;
        for (rank, &(_, i)) in members.iter().enumerate() {
            out[i] = if rank < n_test {
                Split::Test
            } else if rank < n_test + n_val {
                Split::Validation
            } else {
                Split::Train
            };
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taxonomy() -> Taxonomy {
        toml::from_str("[[axes]]\nname='product'\nlabels=['a','b']\n[[axes]]\nname='severity'\nordinal=true\nlabels=['low','high']").unwrap()
    }

    #[test]
    fn unknown_labels_are_rejected_with_the_expected_values() {
        let err = parse_record(
            r#"{"id":"1","text":"x","product":"zzz","severity":"low"}"#,
            &taxonomy(),
        )
        .unwrap_err();
        assert!(
            err.contains("unknown product label `zzz`") && err.contains("a, b"),
            "{err}"
        );
        assert!(
            parse_record(r#"{"id":"1","text":"x","product":"a"}"#, &taxonomy())
                .unwrap_err()
                .contains("missing label `severity`")
        );
        assert!(parse_record("{not json", &taxonomy())
            .unwrap_err()
            .contains("not valid JSON"));
    }

    #[test]
    fn split_is_stratified_deterministic_and_disjoint() {
        let records: Vec<Record> = (0..400)
            .map(|i| Record {
                id: format!("r{i}"),
                text: format!("t{i}"),
                channel: None,
                labels: vec![i % 2, 0],
                raw: String::new(),
            })
            .collect();
        let a = split(&records, 0, 42, 0.1, 0.15);
        assert_eq!(a, split(&records, 0, 42, 0.1, 0.15));
        for class in 0..2 {
            let test = records
                .iter()
                .zip(&a)
                .filter(|(r, s)| r.labels[0] == class && **s == Split::Test)
                .count();
            assert_eq!(test, 30); // 15% of 200
        }
        assert_ne!(a, split(&records, 0, 43, 0.1, 0.15));
    }
}
