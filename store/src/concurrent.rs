//! Running many store operations at once, with a bound, keeping input order.

use crate::error::StoreError;
use std::future::Future;
use tokio::task::JoinSet;

/// Runs `f` on every item with at most `limit` in flight; results come back in input order.
pub(crate) async fn map_bounded<T, R, F, Fut>(
    items: Vec<T>,
    limit: usize,
    f: F,
) -> Result<Vec<R>, StoreError>
where
    F: Fn(T) -> Fut,
    Fut: Future<Output = R> + Send + 'static,
    R: Send + 'static,
{
    let mut results: Vec<Option<R>> = (0..items.len()).map(|_| None).collect();
    let mut set = JoinSet::new();
    let joined = |r: Result<(usize, R), tokio::task::JoinError>| {
        r.map_err(|e| StoreError::Other(format!("task failed: {e}")))
    };
    for (i, item) in items.into_iter().enumerate() {
        if set.len() >= limit.max(1)
            && let Some(r) = set.join_next().await
        {
            let (j, v) = joined(r)?;
            results[j] = Some(v);
        }
        let fut = f(item);
        set.spawn(async move { (i, fut.await) });
    }
    while let Some(r) = set.join_next().await {
        let (j, v) = joined(r)?;
        results[j] = Some(v);
    }
    Ok(results.into_iter().flatten().collect())
}

/// Number of CPU cores, for CPU-bound fan-out.
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}
