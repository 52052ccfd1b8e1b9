//! Reading sealed Parquet files directly (the trace path): an object-store reader, and the files'
//! footers (with their page indexes) kept per process — a sealed file never changes under its path and
//! digest, so a warm trace reads no footer, only the pages it needs.

use bytes::Bytes;
use datafusion::parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use datafusion::parquet::arrow::async_reader::AsyncFileReader;
use datafusion::parquet::errors::{ParquetError, Result};
use datafusion::parquet::file::metadata::{
    PageIndexPolicy, ParquetMetaData, ParquetMetaDataReader,
};
use futures::future::{BoxFuture, FutureExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};

/// Byte ranges of one file of an object store.
#[derive(Clone, Debug)]
pub struct SealedFileReader {
    store: Arc<dyn ObjectStore>,
    path: Path,
    size: u64,
}

impl SealedFileReader {
    /// A reader of `path`, `size` bytes long (as the store listed it).
    pub fn new(store: Arc<dyn ObjectStore>, path: Path, size: u64) -> SealedFileReader {
        SealedFileReader { store, path, size }
    }
}

fn external(e: object_store::Error) -> ParquetError {
    ParquetError::External(Box::new(e))
}

impl AsyncFileReader for SealedFileReader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, Result<Bytes>> {
        async move {
            self.store
                .get_range(&self.path, range)
                .await
                .map_err(external)
        }
        .boxed()
    }

    fn get_byte_ranges(&mut self, ranges: Vec<Range<u64>>) -> BoxFuture<'_, Result<Vec<Bytes>>> {
        async move {
            self.store
                .get_ranges(&self.path, &ranges)
                .await
                .map_err(external)
        }
        .boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        _options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, Result<Arc<ParquetMetaData>>> {
        async move {
            let size = self.size;
            let meta = ParquetMetaDataReader::new()
                .with_page_index_policy(PageIndexPolicy::Optional)
                .load_and_finish(self, size)
                .await?;
            Ok(Arc::new(meta))
        }
        .boxed()
    }
}

/// Most footers kept; past it the cache starts over (a year of daily partitions fits).
const MAX_FOOTERS: usize = 20_000;

/// Footers by relative path, with the sealed digest they were read under.
#[derive(Debug, Default)]
pub struct ParquetFooters {
    read: Mutex<HashMap<String, (String, ArrowReaderMetadata)>>,
}

impl ParquetFooters {
    /// The footer of `rel` (sealed as `sha256`), read through `reader` on first use, page index
    /// included so that a row selection skips whole pages.
    pub async fn get(
        &self,
        rel: &str,
        sha256: &str,
        reader: &mut SealedFileReader,
    ) -> Result<ArrowReaderMetadata> {
        if let Some((sha, meta)) = self.lock().get(rel)
            && sha == sha256
        {
            return Ok(meta.clone());
        }
        let options = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Optional);
        let meta = ArrowReaderMetadata::load_async(reader, options).await?;
        let mut read = self.lock();
        if read.len() >= MAX_FOOTERS {
            read.clear();
        }
        read.insert(rel.to_owned(), (sha256.to_owned(), meta.clone()));
        Ok(meta)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, ArrowReaderMetadata)>> {
        // A panic while holding the lock leaves a map that is still valid: keep using it.
        self.read.lock().unwrap_or_else(|e| e.into_inner())
    }
}
