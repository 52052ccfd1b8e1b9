//! Bounds on what queries may take, so that no query over a year of data can take the process down: a
//! memory pool shared by all queries of an engine (sorts, joins and aggregates spill to disk past it),
//! a cap on spill space, a timeout, and a limit on how many heavy queries (those the lookup index does
//! not narrow) run at once.

use datafusion::execution::cache::cache_manager::CacheManagerConfig;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Limits of one query engine (one process).
#[derive(Clone, Debug, PartialEq)]
pub struct QueryLimits {
    /// Memory all running queries may hold together, in bytes.
    pub memory_bytes: usize,
    /// Disk space for spill files, in bytes (0: no spilling, a query past its memory fails).
    pub spill_bytes: u64,
    /// Where spill files go (default: the system's temporary directory).
    pub spill_dir: Option<PathBuf>,
    /// Longest a query may run, waiting for its turn included.
    pub timeout: Duration,
    /// Heavy queries (full scans) running at once; more wait for their turn, within the timeout.
    pub heavy_queries: usize,
    /// Size and shape bounds checked before planning.
    pub statement: crate::statement::StatementLimits,
    /// Most bytes (Arrow memory) of one answer: the rows a query returns are held whole before they
    /// are sent, outside the operators' pool, so they are bounded on their own.
    pub answer_bytes: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            memory_bytes: 2 << 30,
            spill_bytes: 64 << 30,
            spill_dir: None,
            timeout: Duration::from_secs(300),
            heavy_queries: 2,
            statement: crate::statement::StatementLimits::default(),
            answer_bytes: 256 << 20,
        }
    }
}

impl QueryLimits {
    /// The DataFusion runtime enforcing these limits.
    pub fn runtime(&self) -> datafusion::error::Result<Arc<RuntimeEnv>> {
        // Fair: each spilling operator gets an equal share, so one sort cannot starve the others.
        // Tracked: a memory error names the operators holding the most.
        let pool = TrackConsumersPool::new(
            FairSpillPool::new(self.memory_bytes),
            NonZeroUsize::new(3).unwrap_or(NonZeroUsize::MIN),
        );
        let disk = if self.spill_bytes == 0 {
            DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled)
        } else {
            let mode = match &self.spill_dir {
                Some(dir) => DiskManagerMode::Directories(vec![dir.clone()]),
                None => DiskManagerMode::OsTmpDirectory,
            };
            DiskManagerBuilder::default()
                .with_mode(mode)
                .with_max_temp_directory_size(self.spill_bytes)
        };
        // DataFusion's default caches (1 MiB of directory listings, 20 MiB of file statistics, 50 MiB
        // of footers) hold a few hundred daily partitions; a year is thousands, and a listing that
        // does not fit is redone by every query (most of a warm trace's time). Sealed files never
        // change and a new seal clears the listing, so cache them generously.
        let caches = CacheManagerConfig::default()
            .with_list_files_cache_limit(64 << 20)
            .with_file_statistics_cache_limit(256 << 20)
            .with_metadata_cache_limit(512 << 20);
        RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(pool))
            .with_disk_manager_builder(disk)
            .with_cache_manager(caches)
            .build_arc()
    }
}
