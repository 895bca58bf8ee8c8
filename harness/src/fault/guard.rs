//! A live fault. `heal().await` undoes it and records the heal; dropping a guard that was not
//! healed heals it best-effort on the runtime and records that as a warning (`heal-failed`
//! with the reason), so a panic between inject and heal still leaves the system healed.

use futures::future::BoxFuture;

use crate::observe::history::{Event, FaultEvent, FaultPhase, Recorder};

/// How to undo one fault; runs once.
pub type HealFn = Box<dyn FnOnce() -> BoxFuture<'static, anyhow::Result<()>> + Send>;

#[must_use = "a fault stays injected until its guard is healed"]
pub struct FaultGuard {
    kind: String,
    target: String,
    recorder: Recorder,
    heal: Option<HealFn>,
}

impl std::fmt::Debug for FaultGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FaultGuard({} on {})", self.kind, self.target)
    }
}

impl FaultGuard {
    /// A fault that was injected and is undone by `heal`. Records the injection.
    pub fn injected(kind: &str, target: &str, detail: impl Into<String>, recorder: &Recorder, heal: HealFn) -> Self {
        recorder.record(Event::Fault(FaultEvent {
            kind: kind.into(),
            target: target.into(),
            phase: FaultPhase::Injected,
            detail: detail.into(),
        }));
        Self { kind: kind.into(), target: target.into(), recorder: recorder.clone(), heal: Some(heal) }
    }

    /// A fault with nothing to undo (the damage is the point: users created, a process
    /// killed whose supervisor restarts it). Healing records the end of its window.
    pub fn nothing_to_heal(kind: &str, target: &str, detail: impl Into<String>, recorder: &Recorder) -> Self {
        Self::injected(kind, target, detail, recorder, Box::new(|| Box::pin(async { Ok(()) })))
    }

    pub fn kind(&self) -> &str {
        &self.kind
    }

    pub fn target(&self) -> &str {
        &self.target
    }

    pub async fn heal(mut self) -> anyhow::Result<()> {
        let heal = self.heal.take().expect("heal runs once");
        let result = heal().await;
        self.record_heal(&result);
        result
    }

    fn record_heal(&self, result: &anyhow::Result<()>) {
        let (phase, detail) = match result {
            Ok(()) => (FaultPhase::Healed, String::new()),
            Err(e) => (FaultPhase::HealFailed, format!("{e:#}")),
        };
        self.recorder.record(Event::Fault(FaultEvent { kind: self.kind.clone(), target: self.target.clone(), phase, detail }));
    }
}

impl Drop for FaultGuard {
    fn drop(&mut self) {
        let Some(heal) = self.heal.take() else { return };
        tracing::warn!("fault {} on {} dropped without heal: healing best-effort", self.kind, self.target);
        let recorder = self.recorder.clone();
        let (kind, target) = (self.kind.clone(), self.target.clone());
        let record =
            move |detail: String| recorder.record(Event::Fault(FaultEvent { kind, target, phase: FaultPhase::HealFailed, detail }));
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move {
                    let outcome = heal().await;
                    record(match outcome {
                        Ok(()) => "healed from Drop (not by the runner)".into(),
                        Err(e) => format!("heal from Drop failed: {e:#}"),
                    });
                });
            }
            Err(_) => record("dropped outside a runtime: not healed".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;
    use std::time::Instant;

    fn counting_heal(count: &Arc<AtomicU32>) -> HealFn {
        let count = count.clone();
        Box::new(move || {
            Box::pin(async move {
                count.fetch_add(1, Ordering::SeqCst);
                Ok(())
            })
        })
    }

    #[tokio::test]
    async fn heal_runs_once_and_is_recorded() {
        let rec = Recorder::in_memory(Instant::now());
        let count = Arc::new(AtomicU32::new(0));
        let guard = FaultGuard::injected("pause-process", "hub", "", &rec, counting_heal(&count));
        guard.heal().await.unwrap();
        assert_eq!(count.load(Ordering::SeqCst), 1);
        let phases: Vec<_> = rec.history().faults().map(|(_, f)| f.phase).collect();
        assert_eq!(phases, vec![FaultPhase::Injected, FaultPhase::Healed]);
    }

    #[tokio::test]
    async fn a_dropped_guard_heals_and_warns() {
        let rec = Recorder::in_memory(Instant::now());
        let count = Arc::new(AtomicU32::new(0));
        drop(FaultGuard::injected("pause-process", "hub", "", &rec, counting_heal(&count)));
        for _ in 0..50 {
            if count.load(Ordering::SeqCst) == 1 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert_eq!(count.load(Ordering::SeqCst), 1);
        let last = rec.history().faults().last().map(|(_, f)| f.clone()).unwrap();
        assert_eq!(last.phase, FaultPhase::HealFailed);
        assert!(last.detail.contains("Drop"));
    }
}
