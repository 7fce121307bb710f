//! Reading many CloudTrail files on several threads: a shared counter hands out the files in
//! path order, each thread folds the files it takes into its own [`Aggregator`], and the
//! aggregators are merged at the end. Every aggregate is a sum, a count per key or a list that
//! [`Aggregator::finish`] sorts, so the result is the same whichever thread read which file.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{Aggregator, ReadOptions, TrailSource, read_file};
use crate::error::{Error, Result};

/// What one thread read: its aggregates, the files it read (by index), and the first file it
/// failed on.
#[derive(Default)]
struct Share {
    aggregator: Aggregator,
    sources: Vec<(usize, TrailSource)>,
    failed: Option<(usize, Error)>,
}

/// Reads `files` (sorted, with the folder each must stay inside) on up to `threads` threads.
/// Returns the merged aggregates and each file's [`TrailSource`] in the order of `files`, or
/// the error of the first file (in that order) that could not be read.
pub(super) fn read_all(
    files: &[(PathBuf, Option<PathBuf>)],
    options: &ReadOptions,
    threads: usize,
) -> Result<(Aggregator, Vec<TrailSource>)> {
    let next = AtomicUsize::new(0);
    // The lowest index of a file that failed: files after it need not be read.
    let failed_at = AtomicUsize::new(usize::MAX);
    let threads = threads.clamp(1, files.len().max(1));
    let shares: Vec<Share> = if threads == 1 {
        vec![take_files(files, options, &next, &failed_at)]
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|_| scope.spawn(|| take_files(files, options, &next, &failed_at)))
                .collect();
            handles
                .into_iter()
                .map(|handle| {
                    handle
                        .join()
                        .unwrap_or_else(|e| std::panic::resume_unwind(e))
                })
                .collect()
        })
    };
    let mut aggregator = Aggregator::default();
    let mut sources: Vec<Option<TrailSource>> = files.iter().map(|_| None).collect();
    let mut failed: Option<(usize, Error)> = None;
    for share in shares {
        if let Some((index, error)) = share.failed
            && failed.as_ref().is_none_or(|(first, _)| index < *first)
        {
            failed = Some((index, error));
        }
        aggregator.absorb(share.aggregator);
        for (index, source) in share.sources {
            sources[index] = Some(source);
        }
    }
    if let Some((_, error)) = failed {
        return Err(error);
    }
    // Without a failure every file was read.
    Ok((aggregator, sources.into_iter().flatten().collect()))
}

/// One thread's loop: takes the next file until none is left or a file before it failed.
fn take_files(
    files: &[(PathBuf, Option<PathBuf>)],
    options: &ReadOptions,
    next: &AtomicUsize,
    failed_at: &AtomicUsize,
) -> Share {
    let mut share = Share::default();
    let mut buffer = Vec::new();
    loop {
        // Files are handed out in order, and a thread stops only past a failed file: every
        // file before the first failure is read, so the failure reported is the first one.
        let index = next.fetch_add(1, Ordering::Relaxed);
        if index >= files.len() || index > failed_at.load(Ordering::Relaxed) {
            break;
        }
        let (file, root) = &files[index];
        match read_file(file, root.as_deref(), options, &mut buffer) {
            Ok((aggregator, source)) => {
                share.aggregator.absorb(aggregator);
                share.sources.push((index, source));
            }
            Err(error) => {
                failed_at.fetch_min(index, Ordering::Relaxed);
                share.failed = Some((index, error));
                break;
            }
        }
    }
    share
}
