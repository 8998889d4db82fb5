//! `triage rescore`: re-score a backlog file (JSONL or CSV) into JSONL, one
//! output line per input record, in input order, using all cores.
//!
//! Every record produces either a result or an error record
//! (`{"id", "line", "error", "code"}`), so nothing is silently dropped. Output
//! is appended chunk by chunk and flushed, so a crash loses at most the chunk
//! in flight; `--resume` counts the complete lines already written, trims a
//! torn last line, and continues from the next input record.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::engine::{Complaint, Engine, Triage};

#[derive(Debug, Clone)]
pub struct RescoreOptions {
    pub input: PathBuf,
    pub output: PathBuf,
    pub resume: bool,
    /// Overwrite an existing output file instead of refusing.
    pub force: bool,
    /// Records read, scored and written per step.
    pub chunk: usize,
    /// Complaints per model call.
    pub batch: usize,
    pub progress: bool,
}

/// Counts printed at the end of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RescoreSummary {
    pub records: usize,
    pub scored: usize,
    pub errors: usize,
    /// Records skipped because a previous run had written them (`--resume`).
    pub resumed_after: usize,
    pub per_queue: BTreeMap<String, usize>,
    pub per_label: BTreeMap<String, BTreeMap<String, usize>>,
    pub needs_review: usize,
    pub seconds: f64,
    pub per_second: f64,
}

/// An input record: a complaint, or why it could not be read.
struct InputRecord {
    line: usize,
    parsed: Result<Complaint, (Option<String>, String)>,
}

#[derive(Serialize)]
struct ErrorRecord<'a> {
    id: Option<&'a str>,
    line: usize,
    error: &'a str,
    code: &'a str,
}

#[derive(Deserialize)]
struct JsonInput {
    #[serde(default)]
    id: Option<serde_json::Value>,
    text: Option<serde_json::Value>,
    #[serde(default)]
    channel: Option<String>,
}

fn id_string(v: Option<serde_json::Value>) -> Option<String> {
    match v {
        Some(serde_json::Value::String(s)) => Some(s),
        Some(serde_json::Value::Null) | None => None,
        Some(other) => Some(other.to_string()),
    }
}

/// Parse one JSONL line into a complaint.
fn parse_json_line(bytes: &[u8]) -> Result<Complaint, (Option<String>, String)> {
    let line =
        std::str::from_utf8(bytes).map_err(|e| (None, format!("line is not valid UTF-8 ({e})")))?;
    if line.trim().is_empty() {
        return Err((None, "empty line".into()));
    }
    let v: JsonInput =
        serde_json::from_str(line).map_err(|e| (None, format!("malformed JSON: {e}")))?;
    let id = id_string(v.id);
    let text = match v.text {
        Some(serde_json::Value::String(s)) => s,
        Some(_) => return Err((id, "`text` must be a string".into())),
        None => return Err((id, "missing `text` field".into())),
    };
    Ok(Complaint {
        id,
        text,
        channel: v.channel.filter(|c| !c.is_empty()),
        ..Complaint::default()
    })
}

/// Every well-formed complaint of a JSONL file (bad lines skipped), for
/// benchmarks and tools that need real texts.
pub fn complaints_from_jsonl(path: &Path) -> anyhow::Result<Vec<Complaint>> {
    let text = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(text
        .split(|b| *b == b'\n')
        .filter_map(|line| parse_json_line(line).ok())
        .collect())
}

enum Reader {
    Jsonl {
        reader: BufReader<File>,
        line: usize,
    },
    Csv {
        reader: csv::Reader<File>,
        text_col: usize,
        id_col: Option<usize>,
        channel_col: Option<usize>,
    },
}

impl Reader {
    fn open(path: &Path) -> anyhow::Result<Self> {
        let file =
            File::open(path).with_context(|| format!("cannot open input {}", path.display()))?;
        let is_csv = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        if !is_csv {
            return Ok(Reader::Jsonl {
                reader: BufReader::with_capacity(1 << 20, file),
                line: 0,
            });
        }
        let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(file);
        let headers = reader
            .byte_headers()
            .context("cannot read the CSV header")?
            .clone();
        let col = |name: &str| {
            headers
                .iter()
                .position(|h| h.eq_ignore_ascii_case(name.as_bytes()))
        };
        let Some(text_col) = col("text") else {
            bail!("the CSV header has no `text` column (expected id,text[,channel])");
        };
        Ok(Reader::Csv {
            text_col,
            id_col: col("id"),
            channel_col: col("channel"),
            reader,
        })
    }

    /// Next record, or None at end of input.
    fn next(&mut self) -> anyhow::Result<Option<InputRecord>> {
        match self {
            Reader::Jsonl { reader, line } => {
                let mut buf = Vec::new();
                if reader.read_until(b'\n', &mut buf)? == 0 {
                    return Ok(None);
                }
                *line += 1;
                while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                    buf.pop();
                }
                Ok(Some(InputRecord {
                    line: *line,
                    parsed: parse_json_line(&buf),
                }))
            }
            Reader::Csv {
                reader,
                text_col,
                id_col,
                channel_col,
            } => {
                let mut rec = csv::ByteRecord::new();
                match reader.read_byte_record(&mut rec) {
                    Ok(false) => Ok(None),
                    Ok(true) => {
                        let line = rec.position().map_or(0, |p| p.line() as usize);
                        let field = |i: Option<usize>| -> Result<Option<String>, String> {
                            match i.and_then(|i| rec.get(i)) {
                                None => Ok(None),
                                Some(b) => std::str::from_utf8(b)
                                    .map(|s| Some(s.to_owned()))
                                    .map_err(|_| "field is not valid UTF-8".to_owned()),
                            }
                        };
                        let parsed = (|| {
                            let id = field(*id_col)
                                .map_err(|e| (None, e))?
                                .filter(|s| !s.is_empty());
                            let text = field(Some(*text_col)).map_err(|e| (id.clone(), e))?;
                            let channel = field(*channel_col)
                                .map_err(|e| (id.clone(), e))?
                                .filter(|s| !s.is_empty());
                            match text {
                                Some(text) => Ok(Complaint {
                                    id,
                                    text,
                                    channel,
                                    ..Complaint::default()
                                }),
                                None => Err((id, "row has no `text` field".to_owned())),
                            }
                        })();
                        Ok(Some(InputRecord { line, parsed }))
                    }
                    Err(e) => {
                        let line = e.position().map_or(0, |p| p.line() as usize);
                        Ok(Some(InputRecord {
                            line,
                            parsed: Err((None, format!("malformed CSV row: {e}"))),
                        }))
                    }
                }
            }
        }
    }
}

/// Count complete lines in `path` and cut off a torn last line; returns the count.
fn prepare_resume(path: &Path) -> anyhow::Result<usize> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let mut complete = 0usize;
    let mut last_newline_end = 0u64;
    let mut pos = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        for (i, b) in buf[..n].iter().enumerate() {
            if *b == b'\n' {
                complete += 1;
                last_newline_end = pos + i as u64 + 1;
            }
        }
        pos += n as u64;
    }
    if last_newline_end < pos {
        file.set_len(last_newline_end)?;
    }
    file.seek(SeekFrom::End(0))?;
    Ok(complete)
}

fn count_records(path: &Path) -> Option<u64> {
    let file = File::open(path).ok()?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut n = 0u64;
    let mut buf = Vec::new();
    while reader.read_until(b'\n', &mut buf).ok()? > 0 {
        n += 1;
        buf.clear();
    }
    let is_csv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    Some(if is_csv { n.saturating_sub(1) } else { n })
}

fn bump(counts: &mut BTreeMap<String, usize>, key: &str) {
    match counts.get_mut(key) {
        Some(n) => *n += 1,
        None => {
            counts.insert(key.to_owned(), 1);
        }
    }
}

/// Score one input record into its output line (without the newline).
fn score_line(
    rec: &InputRecord,
    result: Option<Result<Triage, crate::TriageError>>,
) -> (String, Option<Triage>) {
    match (&rec.parsed, result) {
        (Err((id, msg)), _) => {
            let e = ErrorRecord {
                id: id.as_deref(),
                line: rec.line,
                error: msg,
                code: "bad_record",
            };
            (serde_json::to_string(&e).expect("serialisable"), None)
        }
        (Ok(c), Some(Err(err))) => {
            let msg = err.to_string();
            let e = ErrorRecord {
                id: c.id.as_deref(),
                line: rec.line,
                error: &msg,
                code: err.code(),
            };
            (serde_json::to_string(&e).expect("serialisable"), None)
        }
        (Ok(_), Some(Ok(t))) => {
            // One allocation of about the size of a result, instead of repeated growth.
            let mut buf = Vec::with_capacity(4096);
            serde_json::to_writer(&mut buf, &t).expect("serialisable");
            (
                String::from_utf8(buf).expect("serde_json writes UTF-8"),
                Some(t),
            )
        }
        (Ok(_), None) => unreachable!("every parsed record is scored"),
    }
}

pub fn rescore(engine: &Engine, opts: &RescoreOptions) -> anyhow::Result<RescoreSummary> {
    let start = Instant::now();
    let mut summary = RescoreSummary::default();
    let exists = opts.output.exists();
    let skip = if opts.resume && exists {
        prepare_resume(&opts.output)?
    } else if exists && !opts.force {
        bail!(
            "{} already exists: pass --resume to continue that run or --force to overwrite it",
            opts.output.display()
        );
    } else {
        0
    };
    summary.resumed_after = skip;
    let file = if skip > 0 || (opts.resume && exists) {
        OpenOptions::new().append(true).open(&opts.output)?
    } else {
        File::create(&opts.output)
            .with_context(|| format!("cannot create {}", opts.output.display()))?
    };
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut reader = Reader::open(&opts.input)?;
    for _ in 0..skip {
        if reader.next()?.is_none() {
            break;
        }
    }
    let bar = if opts.progress {
        let total = count_records(&opts.input).unwrap_or(0);
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {per_sec} ETA {eta}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.set_position(skip as u64);
        bar.enable_steady_tick(Duration::from_millis(250));
        Some(bar)
    } else {
        None
    };
    // Three stages overlap: a reader thread parses the next chunk, the
    // worker pool scores this one, a writer thread appends the previous one.
    let (chunk_tx, chunk_rx) = std::sync::mpsc::sync_channel::<anyhow::Result<Vec<InputRecord>>>(2);
    let chunk_size = opts.chunk;
    let reader_thread = std::thread::spawn(move || loop {
        let mut chunk = Vec::with_capacity(chunk_size);
        let mut failed = None;
        while chunk.len() < chunk_size {
            match reader.next() {
                Ok(Some(r)) => chunk.push(r),
                Ok(None) => break,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        let done = chunk.len() < chunk_size || failed.is_some();
        if !chunk.is_empty() && chunk_tx.send(Ok(chunk)).is_err() {
            return;
        }
        if let Some(e) = failed {
            let _ = chunk_tx.send(Err(e));
        }
        if done {
            return;
        }
    });
    let (write_tx, write_rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(2);
    let writer_thread = std::thread::spawn(move || -> std::io::Result<BufWriter<File>> {
        let mut chunks_since_sync = 0;
        for bytes in write_rx {
            out.write_all(&bytes)?;
            out.flush()?;
            chunks_since_sync += 1;
            if chunks_since_sync >= 16 {
                out.get_ref().sync_data()?;
                chunks_since_sync = 0;
            }
        }
        Ok(out)
    });
    for chunk in chunk_rx {
        let chunk = chunk?;
        let scored: Vec<(String, Option<Triage>)> = chunk
            .par_chunks(opts.batch.max(1))
            .flat_map_iter(|part| {
                let complaints: Vec<Complaint> = part
                    .iter()
                    .filter_map(|r| r.parsed.as_ref().ok().cloned())
                    .collect();
                let mut results = engine.triage_batch(&complaints).into_iter();
                part.iter()
                    .map(|r| {
                        let res = r
                            .parsed
                            .is_ok()
                            .then(|| results.next().expect("result per complaint"));
                        score_line(r, res)
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        let mut bytes = Vec::with_capacity(scored.iter().map(|(l, _)| l.len() + 1).sum());
        for (line, triage) in &scored {
            bytes.extend_from_slice(line.as_bytes());
            bytes.push(b'\n');
            summary.count(triage.as_ref());
        }
        if write_tx.send(bytes).is_err() {
            break; // the writer failed; its error is reported below
        }
        if let Some(bar) = &bar {
            bar.inc(scored.len() as u64);
        }
    }
    drop(write_tx);
    let _ = reader_thread.join();
    let mut out = writer_thread
        .join()
        .map_err(|_| anyhow::anyhow!("the writer thread panicked"))?
        .context("cannot write the output")?;
    out.flush()?;
    out.get_ref().sync_data()?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    summary.seconds = start.elapsed().as_secs_f64();
    summary.per_second = if summary.seconds > 0.0 {
        summary.records as f64 / summary.seconds
    } else {
        0.0
    };
    Ok(summary)
}

impl RescoreSummary {
    fn count(&mut self, triage: Option<&Triage>) {
        self.records += 1;
        let Some(t) = triage else {
            self.errors += 1;
            return;
        };
        self.scored += 1;
        bump(&mut self.per_queue, &t.route.queue);
        for (axis, l) in &t.labels {
            match self.per_label.get_mut(axis) {
                Some(counts) => bump(counts, &l.value),
                None => {
                    self.per_label
                        .insert(axis.clone(), BTreeMap::from([(l.value.clone(), 1)]));
                }
            }
        }
        self.needs_review += usize::from(t.needs_review);
    }

    /// Human-readable summary for the end of a run.
    pub fn render(&self) -> String {
        let mut s = format!(
            "records {} (scored {}, errors {}, needs review {}){}\n",
            self.records,
            self.scored,
            self.errors,
            self.needs_review,
            if self.resumed_after > 0 {
                format!(", resumed after {} already written", self.resumed_after)
            } else {
                String::new()
            }
        );
        s.push_str(&format!(
            "throughput {:.0} records/s over {:.2} s\n",
            self.per_second, self.seconds
        ));
        s.push_str("queues:");
        for (q, n) in &self.per_queue {
            s.push_str(&format!(" {q}={n}"));
        }
        s.push('\n');
        for (axis, counts) in &self.per_label {
            s.push_str(&format!("{axis}:"));
            for (l, n) in counts {
                s.push_str(&format!(" {l}={n}"));
            }
            s.push('\n');
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_parse_or_explain() {
        let c =
            parse_json_line(br#"{"id": 7, "text": "x", "channel": "app", "extra": 1}"#).unwrap();
        assert_eq!(c.id.as_deref(), Some("7"));
        assert_eq!(c.channel.as_deref(), Some("app"));
        assert_eq!(
            parse_json_line(b"{bad").unwrap_err().1.split(':').next(),
            Some("malformed JSON")
        );
        assert_eq!(
            parse_json_line(br#"{"id":"a"}"#).unwrap_err(),
            (Some("a".into()), "missing `text` field".into())
        );
        assert!(parse_json_line(b"\xff\xfe")
            .unwrap_err()
            .1
            .contains("UTF-8"));
        assert_eq!(parse_json_line(b"  ").unwrap_err().1, "empty line");
    }

    #[test]
    fn resume_trims_a_torn_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.jsonl");
        std::fs::write(&p, "{\"a\":1}\n{\"b\":2}\n{\"c\":").unwrap();
        assert_eq!(prepare_resume(&p).unwrap(), 2);
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "{\"a\":1}\n{\"b\":2}\n"
        );
    }
}
