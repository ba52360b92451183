//! Background tasks that are stopped within a grace period: each has a name, and whatever has
//! not finished when the grace runs out is aborted and named, so that nothing (an old drain after
//! a reload, say) keeps running beside its successor.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use tokio::task::{Id, JoinSet};

/// A set of named tasks.
#[derive(Debug, Default)]
pub struct NamedTasks {
    set: JoinSet<()>,
    names: HashMap<Id, String>,
}

impl NamedTasks {
    /// An empty set.
    pub fn new() -> NamedTasks {
        NamedTasks::default()
    }

    /// Spawns `task` on the current runtime under `name` (for instance `drain a`).
    pub fn spawn<F>(&mut self, name: impl Into<String>, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let handle = self.set.spawn(task);
        self.names.insert(handle.id(), name.into());
    }

    /// Waits up to `within` for every task to end (the caller has told them to stop), then
    /// aborts the rest; returns their names, sorted (empty when all ended in time). A task that
    /// panicked is logged.
    pub async fn stop_within(mut self, within: Duration) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.set.join_next_with_id()).await {
                Ok(None) => return Vec::new(),
                Ok(Some(Ok((id, ())))) => {
                    self.names.remove(&id);
                }
                Ok(Some(Err(e))) => {
                    let name = self.names.remove(&e.id()).unwrap_or_default();
                    tracing::error!(task = %name, error = %e, "background task failed");
                }
                Err(_) => break,
            }
        }
        self.set.abort_all();
        while self.set.join_next().await.is_some() {}
        let mut overran: Vec<String> = self.names.into_values().collect();
        overran.sort_unstable();
        overran
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use super::*;

    /// Sets its flag when dropped (an aborted task drops its future).
    struct Dropped(Arc<AtomicBool>);
    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn tasks_that_end_in_time_are_not_named() {
        let mut tasks = NamedTasks::new();
        tasks.spawn("drain a", async {});
        tasks.spawn("drain b", async { tokio::task::yield_now().await });
        assert!(tasks.stop_within(Duration::from_secs(5)).await.is_empty());
    }

    #[tokio::test]
    async fn overrunning_tasks_are_aborted_and_named() {
        let dropped = Arc::new(AtomicBool::new(false));
        let guard = Dropped(Arc::clone(&dropped));
        let mut tasks = NamedTasks::new();
        tasks.spawn("drain a", async {});
        tasks.spawn("reroute b", async move {
            let _guard = guard;
            std::future::pending::<()>().await;
        });
        tasks.spawn("drain c", std::future::pending::<()>());
        let overran = tasks.stop_within(Duration::from_millis(50)).await;
        assert_eq!(overran, ["drain c", "reroute b"]);
        assert!(
            dropped.load(Ordering::SeqCst),
            "the overrunning task was dropped"
        );
    }

    #[tokio::test]
    async fn a_panicking_task_is_not_reported_as_overrunning() {
        let mut tasks = NamedTasks::new();
        tasks.spawn("drain a", async { panic!("boom") });
        assert!(tasks.stop_within(Duration::from_secs(5)).await.is_empty());
    }
}
