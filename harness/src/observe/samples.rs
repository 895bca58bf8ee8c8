//! Periodic measurements (`samples.jsonl`): one value of one metric of one component at one
//! moment. Kept apart from the history because there are many more of them.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::history::secs;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Sample {
    #[serde(with = "secs")]
    pub at: Duration,
    /// e.g. `hub`, `proxy`, `culler`.
    pub component: String,
    /// e.g. `jupyterhub_total_users`, `rss_bytes`.
    pub metric: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Where samplers append; cloneable, flushed per batch.
#[derive(Clone, Default)]
pub struct SampleSink {
    inner: Arc<Mutex<SinkState>>,
}

/// The file samples are appended to (none for an in-memory sink), and every sample so far.
#[derive(Default)]
struct SinkState {
    file: Option<BufWriter<File>>,
    kept: Vec<Sample>,
}

impl SampleSink {
    pub fn to_file(path: &Path) -> std::io::Result<Self> {
        Ok(Self { inner: Arc::new(Mutex::new(SinkState { file: Some(BufWriter::new(File::create(path)?)), kept: Vec::new() })) })
    }

    pub fn push_batch(&self, batch: Vec<Sample>) {
        let mut inner = self.inner.lock().expect("sample sink poisoned");
        if let Some(w) = inner.file.as_mut() {
            for s in &batch {
                if let Ok(line) = serde_json::to_string(s) {
                    let _ = writeln!(w, "{line}");
                }
            }
            let _ = w.flush();
        }
        inner.kept.extend(batch);
    }

    pub fn all(&self) -> Vec<Sample> {
        self.inner.lock().expect("sample sink poisoned").kept.clone()
    }

    pub fn load(path: &Path) -> anyhow::Result<Vec<Sample>> {
        let mut out = Vec::new();
        for line in BufReader::new(File::open(path)?).lines() {
            let line = line?;
            if !line.trim().is_empty() {
                out.push(serde_json::from_str(&line)?);
            }
        }
        Ok(out)
    }
}
