//! The scenario catalogue as the command line sees it.
//!
//! The `hubchaos` binary cannot link the scenarios (the `suites` crate depends on this one), so
//! `hubchaos list` and `hubchaos run` ask the scenario test binary: started with
//! `HUBCHAOS_CATALOGUE=json` in its environment, it prints one [`Entry`] per line as JSON and
//! exits before libtest-mimic reads its arguments, so nextest's `--list --format terse` and
//! `--exact NAME` are answered exactly as before. Both ends of that exchange live here, with
//! what the command line does with the answer: the table of `hubchaos list` ([`render_table`])
//! and the check of the names given to `hubchaos run` ([`check_names`]).

use std::fmt::{self, Write as _};

use serde::{Deserialize, Serialize};

use crate::scenario::Scenario;

/// The environment variable that turns the scenario test binary into a catalogue printer.
pub const REQUEST_VAR: &str = "HUBCHAOS_CATALOGUE";
/// The only answer format so far: one JSON object per line.
pub const REQUEST_JSON: &str = "json";

/// One scenario, as `hubchaos list` describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// What `hubchaos run` and nextest take, e.g. `local::culler::flood_replay`.
    pub test_name: String,
    pub area: String,
    pub name: String,
    /// The whole incident text of the declaration.
    pub incident: String,
    /// Left out of `make test` (run by `make test-chaos` or by name).
    pub long: bool,
    /// What it needs from the machine: `root`, `docker`, `binderhub`, `kind-cluster`.
    pub needs: Vec<String>,
    /// Why it would be skipped on this machine, if a prerequisite is missing.
    pub skip_reason: Option<String>,
    /// Why a scenario of one backend does not run on the other (the local scenarios with no
    /// kind twin), as `backend: reason`.
    #[serde(default)]
    pub elsewhere: Option<String>,
}

impl Entry {
    /// `scenario` as `backend` names it (`test_name`) and judges it (`skip_reason`: why the
    /// backend cannot run it here, from [`crate::backend::BackendKind::cannot_run`]). On kind
    /// every scenario needs the cluster (and nothing else of the machine's), a hub or node
    /// scenario's twin too.
    pub fn of(scenario: &Scenario, backend: &str, skip_reason: Option<String>) -> Self {
        let n = &scenario.needs;
        // On kind the cluster is what a scenario needs of the machine (root and its own
        // engine included), whatever the local run of it needs besides.
        let on_kind = n.cluster || backend == "kind";
        let needs = [("root", n.root && !on_kind), ("docker", n.docker && !on_kind), ("binderhub", n.binderhub), ("kind-cluster", on_kind)]
            .into_iter()
            .filter(|(_, needed)| *needed)
            .map(|(what, _)| what.to_string())
            .collect();
        Self {
            test_name: scenario.test_name(backend),
            area: scenario.area.into(),
            name: scenario.name.into(),
            incident: scenario.incident.into(),
            long: scenario.long,
            needs,
            skip_reason,
            elsewhere: None,
        }
    }

    /// The first sentence of the incident's first line, whitespace collapsed.
    pub fn incident_line(&self) -> String {
        first_sentence(&self.incident)
    }
}

/// Up to the first `.` that is followed by a space and a capital or a digit (so `e.g. the`
/// and `1.5 s` do not end it), within the first line.
fn first_sentence(text: &str) -> String {
    let line = text.trim_start().lines().next().unwrap_or_default();
    let words: Vec<&str> = line.split_whitespace().collect();
    let mut out = String::new();
    for (i, word) in words.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(word);
        let next_starts_sentence = words.get(i + 1).and_then(|w| w.chars().next()).is_some_and(|c| c.is_uppercase() || c.is_ascii_digit());
        if word.ends_with('.') && next_starts_sentence {
            break;
        }
    }
    out
}

/// The answer of the scenario test binary: one JSON entry per line.
pub fn to_json_lines(entries: &[Entry]) -> String {
    entries.iter().map(|e| serde_json::to_string(e).expect("an entry serialises") + "\n").collect()
}

/// Read [`to_json_lines`]' output back; blank lines are ignored, anything else is an error.
pub fn from_json_lines(text: &str) -> anyhow::Result<Vec<Entry>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| anyhow::anyhow!("line {} of the scenario catalogue is not an entry ({e}): {l}", i + 1))
        })
        .collect()
}

/// The table `hubchaos list` prints: name, long or not, needs, the incident's first sentence;
/// under a scenario that would be skipped here, the reason. A count closes it.
pub fn render_table(entries: &[Entry]) -> String {
    const HEADER: [&str; 4] = ["test", "long", "needs", "replays"];
    let rows: Vec<[String; 4]> = entries
        .iter()
        .map(|e| {
            let needs = if e.needs.is_empty() { "-".to_string() } else { e.needs.join(", ") };
            [e.test_name.clone(), if e.long { "yes" } else { "-" }.to_string(), needs, e.incident_line()]
        })
        .collect();
    let width = |col: usize| rows.iter().map(|r| r[col].chars().count()).chain([HEADER[col].len()]).max().unwrap_or(0);
    let widths = [width(0), width(1), width(2)];
    let indent = widths.iter().map(|w| w + 2).sum::<usize>();
    let line = |out: &mut String, cells: [&str; 4]| {
        let [w0, w1, w2] = widths;
        let _ = writeln!(out, "{:<w0$}  {:<w1$}  {:<w2$}  {}", cells[0], cells[1], cells[2], cells[3]);
    };
    let mut out = String::new();
    line(&mut out, HEADER);
    for (row, entry) in rows.iter().zip(entries) {
        line(&mut out, [&row[0], &row[1], &row[2], &row[3]]);
        if let Some(reason) = &entry.skip_reason {
            let _ = writeln!(out, "{:indent$}skipped here: {reason}", "");
        }
        if let Some(elsewhere) = &entry.elsewhere {
            let _ = writeln!(out, "{:indent$}not on {elsewhere}", "");
        }
    }
    let long = entries.iter().filter(|e| e.long).count();
    let skipped = entries.iter().filter(|e| e.skip_reason.is_some()).count();
    let _ = writeln!(
        out,
        "\n{} scenarios, {long} of them long (left out of `make test`), {skipped} would be skipped on this machine. \
         Run one with `hubchaos run <test>`.",
        entries.len(),
    );
    out
}

/// Names given to `hubchaos run` that are not scenarios, with the nearest valid name of each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownNames {
    /// Each unknown name and the suggestion for it, if one is close enough.
    pub unknown: Vec<(String, Option<String>)>,
    /// Every valid name, in catalogue order.
    pub valid: Vec<String>,
}

impl UnknownNames {
    /// 2: bad usage, as for a bad profile; nothing was run.
    pub fn exit_code(&self) -> u8 {
        2
    }
}

impl fmt::Display for UnknownNames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "no such scenario, nothing was run:")?;
        for (name, suggestion) in &self.unknown {
            write!(f, "  {name}")?;
            match suggestion {
                Some(s) => writeln!(f, " -- did you mean {s}?")?,
                None => writeln!(f)?,
            }
        }
        writeln!(f, "Give exact test names; the scenarios are (`hubchaos list` describes each):")?;
        for name in &self.valid {
            writeln!(f, "  {name}")?;
        }
        Ok(())
    }
}

impl std::error::Error for UnknownNames {}

/// Every requested name must be a test name of the catalogue; all are checked before any runs.
pub fn check_names(requested: &[String], entries: &[Entry]) -> Result<(), UnknownNames> {
    let valid: Vec<String> = entries.iter().map(|e| e.test_name.clone()).collect();
    let unknown: Vec<(String, Option<String>)> =
        requested.iter().filter(|r| !valid.contains(r)).map(|r| (r.clone(), nearest(r, &valid).map(str::to_string))).collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(UnknownNames { unknown, valid })
    }
}

/// The valid name `name` was most likely meant to be: the same name in another case; else one
/// that ends with it after a `::` (`flood_replay`, `culler::flood_replay`); else the closest by
/// Damerau-Levenshtein distance, if at most a third of the name's length (at least 2) differs,
/// so that a typo gets a suggestion and a different name does not.
pub fn nearest<'a>(name: &str, valid: &'a [String]) -> Option<&'a str> {
    if let Some(v) = valid.iter().find(|v| v.eq_ignore_ascii_case(name)) {
        return Some(v);
    }
    let suffix = format!("::{}", name.trim_start_matches(':'));
    if let Some(v) = valid.iter().find(|v| v.ends_with(&suffix)) {
        return Some(v);
    }
    let limit = (name.chars().count() / 3).max(2);
    valid
        .iter()
        .map(|v| (strsim::damerau_levenshtein(name, v), v))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(test_name: &str, long: bool, needs: &[&str], skip_reason: Option<&str>, incident: &str) -> Entry {
        let mut parts = test_name.split("::").skip(1);
        Entry {
            test_name: test_name.into(),
            area: parts.next().unwrap_or_default().into(),
            name: parts.next().unwrap_or_default().into(),
            incident: incident.into(),
            long,
            needs: needs.iter().map(|s| s.to_string()).collect(),
            skip_reason: skip_reason.map(str::to_string),
            elsewhere: None,
        }
    }

    fn catalogue() -> Vec<Entry> {
        vec![
            entry("local::culler::flood_replay", false, &[], None, "2018-04-18: the culler flooded the hub. Then more."),
            entry("local::culler::accumulated_users_at_scale", true, &[], None, "10,000 users."),
            Entry {
                elsewhere: Some("kind: the culler is the hub's own service there".into()),
                ..entry("local::controls::flood_is_caught", false, &[], None, "Negative control.")
            },
            entry(
                "local::cleaner::starts_and_stays_up",
                false,
                &["root", "docker"],
                Some("needs root: run as root"),
                "2018-04-18: the new image cleaner never started.\nSecond line.",
            ),
        ]
    }

    fn names(entries: &[Entry]) -> Vec<String> {
        entries.iter().map(|e| e.test_name.clone()).collect()
    }

    #[test]
    fn the_first_sentence_ends_at_a_period_before_a_capital_or_a_digit() {
        assert_eq!(first_sentence("2018-04-18: it broke. The rest."), "2018-04-18: it broke.");
        assert_eq!(first_sentence("It took 1.5 s, e.g. for the hub. 2019 too."), "It took 1.5 s, e.g. for the hub.");
        assert_eq!(first_sentence("One line\nanother line"), "One line");
        assert_eq!(first_sentence("  spaced   out\ttext. next"), "spaced out text. next");
        assert_eq!(first_sentence(""), "");
    }

    #[test]
    fn json_lines_round_trip_and_reject_other_output() {
        let entries = catalogue();
        let text = to_json_lines(&entries);
        assert_eq!(text.lines().count(), entries.len());
        assert_eq!(from_json_lines(&format!("\n{text}\n")).unwrap(), entries);
        let err = from_json_lines("running 23 tests\n").unwrap_err().to_string();
        assert!(err.contains("line 1") && err.contains("running 23 tests"), "{err}");
    }

    #[test]
    fn the_table_aligns_columns_and_shows_long_needs_incident_and_skip_reason() {
        let table = render_table(&catalogue());
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("test "), "{table}");
        let replays_col = lines[0].find("replays").unwrap();
        // Every row's incident starts in the same column as the header's.
        let flood = lines.iter().find(|l| l.starts_with("local::culler::flood_replay")).unwrap();
        assert_eq!(flood.find("2018-04-18: the culler flooded the hub.").unwrap(), replays_col, "{table}");
        assert!(!flood.contains("Then more"), "only the first sentence: {table}");
        let long = lines.iter().find(|l| l.starts_with("local::culler::accumulated_users_at_scale")).unwrap();
        assert_eq!(long.split_whitespace().nth(1), Some("yes"), "{table}");
        assert_eq!(flood.split_whitespace().nth(1), Some("-"), "{table}");
        let cleaner = lines.iter().position(|l| l.starts_with("local::cleaner::starts_and_stays_up")).unwrap();
        assert!(lines[cleaner].contains("root, docker"), "{table}");
        assert!(!lines[cleaner].contains("Second line"), "{table}");
        // The skip reason sits under the incident column of its scenario.
        assert_eq!(lines[cleaner + 1].find("skipped here: needs root: run as root"), Some(replays_col), "{table}");
        assert_eq!(table.matches("skipped here: ").count(), 1, "{table}");
        // So does the reason it has no twin on the other backend.
        let control = lines.iter().position(|l| l.starts_with("local::controls::flood_is_caught")).unwrap();
        assert_eq!(lines[control + 1].find("not on kind: the culler is the hub's own service there"), Some(replays_col), "{table}");
        assert_eq!(table.matches("not on ").count(), 1, "{table}");
        assert!(table.contains("4 scenarios, 1 of them long") && table.contains("1 would be skipped on this machine"), "{table}");
    }

    #[test]
    fn valid_names_pass() {
        let entries = catalogue();
        assert_eq!(check_names(&names(&entries), &entries), Ok(()));
    }

    #[test]
    fn every_unknown_name_is_reported_with_its_nearest_match_and_exit_code_2() {
        let entries = catalogue();
        let requested = vec![
            "local::culler::flood_replay".to_string(),
            "local::culler::flod_replay".to_string(),
            "flood_replay".to_string(),
            "culler::accumulated_users_at_scale".to_string(),
            "LOCAL::CONTROLS::FLOOD_IS_CAUGHT".to_string(),
            "something_else_entirely".to_string(),
        ];
        let err = check_names(&requested, &entries).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert_eq!(
            err.unknown,
            vec![
                ("local::culler::flod_replay".into(), Some("local::culler::flood_replay".into())),
                ("flood_replay".into(), Some("local::culler::flood_replay".into())),
                ("culler::accumulated_users_at_scale".into(), Some("local::culler::accumulated_users_at_scale".into())),
                ("LOCAL::CONTROLS::FLOOD_IS_CAUGHT".into(), Some("local::controls::flood_is_caught".into())),
                ("something_else_entirely".into(), None),
            ]
        );
        let message = err.to_string();
        assert!(message.starts_with("no such scenario, nothing was run:\n"), "{message}");
        assert!(message.contains("\n  local::culler::flod_replay -- did you mean local::culler::flood_replay?\n"), "{message}");
        assert!(message.contains("\n  something_else_entirely\n"), "{message}");
        for name in names(&entries) {
            assert!(message.contains(&format!("\n  {name}\n")), "every valid name is listed: {message}");
        }
    }

    #[test]
    fn a_different_name_gets_no_suggestion_but_a_typo_does() {
        let valid = names(&catalogue());
        assert_eq!(nearest("local::hub::proxy_killed", &valid), None);
        assert_eq!(nearest("local::culler::flood_replya", &valid), Some("local::culler::flood_replay"));
        assert_eq!(nearest("local::controls::flood_is_caugth", &valid), Some("local::controls::flood_is_caught"));
        assert_eq!(nearest("", &valid), None);
    }
}
