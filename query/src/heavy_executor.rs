//! A separate thread pool for heavy (full-scan) queries.
//!
//! DataFusion's operators are CPU-bound futures: on the runtime that also serves HTTP, one year-wide
//! join would keep every worker thread busy and a trace (a few milliseconds of work) would wait for
//! it. Heavy queries therefore run on their own runtime; the operating system then shares the cores
//! between them and the requests, instead of the cooperative scheduler queueing the requests.

use std::future::Future;
use std::sync::OnceLock;
use tokio::runtime::{Builder, Runtime};
use tokio::task::JoinHandle;

/// A lazily started multi-thread runtime for heavy queries.
#[derive(Debug, Default)]
pub struct HeavyExecutor {
    runtime: OnceLock<Option<Runtime>>,
}

impl HeavyExecutor {
    /// An executor whose threads start with its first query.
    pub fn new() -> HeavyExecutor {
        HeavyExecutor::default()
    }

    /// Runs `fut` on the heavy threads; the task is aborted if the returned guard is dropped (a
    /// timed-out or abandoned query stops using the cores). Falls back to the caller's runtime if
    /// the threads could not be started.
    pub fn spawn<F>(&self, fut: F) -> AbortOnDrop<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let runtime = self.runtime.get_or_init(|| {
            let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
            Builder::new_multi_thread()
                .worker_threads(threads)
                .thread_name("iris-heavy-query")
                // Deep (but accepted) plans are evaluated recursively.
                .thread_stack_size(16 << 20)
                .enable_all()
                .build()
                .map_err(|e| tracing::warn!("heavy queries share the request threads: {e}"))
                .ok()
        });
        let handle = match runtime {
            Some(rt) => rt.spawn(fut),
            None => tokio::spawn(fut),
        };
        AbortOnDrop(handle)
    }
}

impl Drop for HeavyExecutor {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which tokio forbids inside another runtime.
        if let Some(Some(rt)) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// A task handle that aborts its task when dropped.
#[derive(Debug)]
pub struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> AbortOnDrop<T> {
    /// Waits for the task's output (`Err` if it panicked or was aborted).
    pub async fn join(mut self) -> Result<T, tokio::task::JoinError> {
        (&mut self.0).await
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
