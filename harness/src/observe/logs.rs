//! Log watcher: lines of a component's own log that a check needs ("a cleaning cycle
//! happened", "its last error was ..."), recorded in the history as they appear.
//!
//! The backend already writes each component's output to `logs/<name>.log`; the watcher tails
//! that file (polling, 200 ms) and records only lines matching its patterns, so the history
//! stays small. A line is stamped when the watcher reads it (at most one poll late).
//!
//! Each matched line is an [`Event::Log`] of kind `line`; the watcher announces itself with
//! one of kind `watching` (so a check can tell "no line matched" from "nobody was watching"
//! => Unknown). [`record_line`] and [`record_watch`] write them, [`log_lines`] and
//! [`watch_started`] read them.

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::Duration;

use regex::Regex;
use tokio_util::sync::CancellationToken;

use super::history::{Event, History, LogEvent, LogKind, Recorder};

/// Longer lines are cut (a traceback's last line is short; a dumped blob is not evidence).
pub const MAX_LINE: usize = 1000;
/// At most this many lines per watcher and run (a crash loop must not flood the history).
pub const MAX_LINES: usize = 5000;

/// Record one log line of `component` now.
pub fn record_line(recorder: &Recorder, component: &str, line: &str) {
    recorder.record(Event::Log(LogEvent { component: component.into(), kind: LogKind::Line, text: cut(line) }));
}

/// Record that a watcher of `component` started (with what it looks for).
pub fn record_watch(recorder: &Recorder, component: &str, patterns: &str) {
    recorder.record(Event::Log(LogEvent { component: component.into(), kind: LogKind::Watching, text: patterns.into() }));
}

/// The recorded lines of `component`, in time order.
pub fn log_lines<'a>(history: &'a History, component: &str) -> impl Iterator<Item = (Duration, &'a str)> + 'a {
    let component = component.to_string();
    history.entries.iter().filter_map(move |e| match &e.event {
        Event::Log(l) if l.kind == LogKind::Line && l.component == component => Some((e.at, l.text.as_str())),
        _ => None,
    })
}

/// When a watcher of `component` started, if one did.
pub fn watch_started(history: &History, component: &str) -> Option<Duration> {
    history.entries.iter().find_map(|e| match &e.event {
        Event::Log(l) if l.kind == LogKind::Watching && l.component == component => Some(e.at),
        _ => None,
    })
}

fn cut(line: &str) -> String {
    let line = line.trim_end();
    if line.len() <= MAX_LINE {
        return line.to_string();
    }
    let mut end = MAX_LINE;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &line[..end])
}

/// Tails one component's log file and records the lines matching any pattern.
#[derive(Debug, Clone)]
pub struct LogWatcher {
    pub component: String,
    pub path: PathBuf,
    pub patterns: Vec<Regex>,
    pub every: Duration,
}

impl LogWatcher {
    pub fn new(component: &str, path: PathBuf, patterns: &[&str]) -> anyhow::Result<Self> {
        let patterns = patterns.iter().map(|p| Regex::new(p)).collect::<Result<Vec<_>, _>>()?;
        Ok(Self { component: component.into(), path, patterns, every: Duration::from_millis(200) })
    }

    /// Until `stop`; then one last read, so lines written just before the stop are kept.
    pub async fn run(self, recorder: Recorder, stop: CancellationToken) {
        record_watch(&recorder, &self.component, &self.patterns.iter().map(Regex::as_str).collect::<Vec<_>>().join(" | "));
        let mut state = TailState::default();
        loop {
            let stopping = tokio::select! {
                _ = tokio::time::sleep(self.every) => false,
                _ = stop.cancelled() => true,
            };
            for line in state.read_new(&self.path) {
                if state.recorded >= MAX_LINES {
                    break;
                }
                if self.patterns.iter().any(|p| p.is_match(&line)) {
                    record_line(&recorder, &self.component, &line);
                    state.recorded += 1;
                }
            }
            if stopping {
                return;
            }
        }
    }
}

/// Where the tail is: byte offset and an unfinished last line.
#[derive(Debug, Default)]
struct TailState {
    offset: u64,
    partial: String,
    recorded: usize,
}

impl TailState {
    /// Complete lines appended since the last call (a truncated file starts over).
    fn read_new(&mut self, path: &std::path::Path) -> Vec<String> {
        let Ok(mut f) = std::fs::File::open(path) else { return Vec::new() };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        if len < self.offset {
            self.offset = 0;
            self.partial.clear();
        }
        if f.seek(SeekFrom::Start(self.offset)).is_err() {
            return Vec::new();
        }
        let mut buf = Vec::new();
        if f.take(16 << 20).read_to_end(&mut buf).is_err() {
            return Vec::new();
        }
        self.offset += buf.len() as u64;
        self.partial.push_str(&String::from_utf8_lossy(&buf));
        let mut lines: Vec<String> = self.partial.split('\n').map(str::to_string).collect();
        self.partial = lines.pop().unwrap_or_default();
        lines.into_iter().map(|l| l.trim_end_matches('\r').to_string()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::Instant;

    #[test]
    fn the_tail_returns_only_complete_new_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.log");
        let mut st = TailState::default();
        assert!(st.read_new(&p).is_empty(), "no file yet");
        let mut f = std::fs::File::create(&p).unwrap();
        write!(f, "a\nb\npart").unwrap();
        assert_eq!(st.read_new(&p), ["a", "b"]);
        writeln!(f, "ial").unwrap();
        assert_eq!(st.read_new(&p), ["partial"]);
        assert!(st.read_new(&p).is_empty());
    }

    #[tokio::test]
    async fn matching_lines_are_recorded_and_readable_per_component() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("image-cleaner.log");
        std::fs::write(&p, "2026 Pruning docker images when /d has 80.0% inodes or blocks used\n2026 11.5% used\nnoise\n").unwrap();
        let rec = Recorder::in_memory(Instant::now());
        let stop = CancellationToken::new();
        let w = LogWatcher::new("image-cleaner", p.clone(), &[r"% used$", r"Exception: "]).unwrap();
        let task = tokio::spawn(w.run(rec.clone(), stop.clone()));
        tokio::time::sleep(Duration::from_millis(300)).await;
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(b"docker.errors.DockerException: Invalid bind address format: /s\n")
            .unwrap();
        stop.cancel();
        task.await.unwrap();
        let h = rec.history();
        let lines: Vec<&str> = log_lines(&h, "image-cleaner").map(|(_, l)| l).collect();
        assert_eq!(lines, ["2026 11.5% used", "docker.errors.DockerException: Invalid bind address format: /s"]);
        assert!(watch_started(&h, "image-cleaner").is_some());
        assert!(watch_started(&h, "dockerd").is_none());
        assert_eq!(log_lines(&h, "dockerd").count(), 0);
        assert!(cut(&"x".repeat(5000)).len() < 1100);
    }
}
