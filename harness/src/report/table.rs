//! The closing table of `make test-chaos`: one row per scenario of a run, read back from each
//! scenario's `outcome.json`.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde::Deserialize;

#[derive(Deserialize)]
struct OutcomeFile {
    test_name: String,
    outcome: serde_json::Value,
    run_dir: std::path::PathBuf,
    key_figure: Option<String>,
    wall_s: f64,
    #[serde(default)]
    unexpected: Option<String>,
}

/// `| scenario | outcome | key figure | wall | run dir |` for every scenario under `group`.
pub fn render_group(group: &Path) -> anyhow::Result<String> {
    let dir = std::fs::canonicalize(group).with_context(|| format!("no run at {} (run `make test-chaos` first)", group.display()))?;
    let mut rows = Vec::new();
    for entry in std::fs::read_dir(&dir)?.flatten() {
        let path = entry.path().join("outcome.json");
        let Ok(bytes) = std::fs::read(&path) else { continue };
        let o: OutcomeFile = serde_json::from_slice(&bytes).with_context(|| format!("reading {}", path.display()))?;
        rows.push(o);
    }
    anyhow::ensure!(!rows.is_empty(), "no scenario outcomes under {}", dir.display());
    rows.sort_by(|a, b| a.test_name.cmp(&b.test_name));
    let mut out = String::new();
    let _ = writeln!(out, "\nrun {}\n", dir.display());
    let _ = writeln!(out, "| scenario | test | outcome | key figure | wall (s) | run dir |\n|---|---|---|---|---|---|");
    for o in rows {
        let outcome = o.outcome.get("outcome").and_then(|v| v.as_str()).unwrap_or("?").to_string();
        let test = match (&o.unexpected, outcome.as_str()) {
            (Some(_), _) => "FAIL",
            (None, "skipped") => "skipped",
            (None, "passed") => "ok",
            (None, _) => "ok (expected)",
        };
        let _ = writeln!(
            out,
            "| {} | {test} | {} | {} | {:.0} | {} |",
            o.test_name,
            outcome,
            o.key_figure.unwrap_or_default(),
            o.wall_s,
            o.run_dir.display()
        );
    }
    Ok(out)
}
