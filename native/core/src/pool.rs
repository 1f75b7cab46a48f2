//! How many threads the batch functions may use.
//!
//! By default they use rayon's global pool (all cores, or `RAYON_NUM_THREADS`). `set_threads(n)`
//! builds a private pool of `n` threads instead (`n = 1` runs everything on the calling thread,
//! `n = 0` returns to the global pool), so a benchmark or an operator can pin the work.

use std::sync::{Arc, RwLock};

use rayon::prelude::*;
use rayon::ThreadPool;

enum Threads {
    Global,
    Serial,
    Pool(Arc<ThreadPool>),
}

static THREADS: RwLock<Threads> = RwLock::new(Threads::Global);

/// Use `n` threads for later batch calls (0 = rayon's global pool over all cores).
pub fn set_threads(n: usize) -> Result<(), String> {
    let next = match n {
        0 => Threads::Global,
        1 => Threads::Serial,
        _ => Threads::Pool(Arc::new(
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .thread_name(|i| format!("partledger-{i}"))
                .build()
                .map_err(|e| e.to_string())?,
        )),
    };
    *THREADS.write().unwrap_or_else(|e| e.into_inner()) = next;
    Ok(())
}

/// In a child process made by `fork()`: the parent's worker threads do not exist there, so any
/// parallel call would wait for them forever. Forget them (without touching them) and run on the
/// calling thread from now on; `set_threads(n >= 2)` builds a fresh pool if the child wants one.
pub fn reset_after_fork() {
    if let Ok(mut threads) = THREADS.try_write() {
        std::mem::forget(std::mem::replace(&mut *threads, Threads::Serial));
    }
}

/// The number of threads batch calls will use now.
pub fn threads() -> usize {
    match &*THREADS.read().unwrap_or_else(|e| e.into_inner()) {
        Threads::Global => rayon::current_num_threads(),
        Threads::Serial => 1,
        Threads::Pool(p) => p.current_num_threads(),
    }
}

/// `f` over every index in `0..n`, in order; in parallel once `n >= min_parallel`.
pub fn map_indexed<R, F>(n: usize, min_parallel: usize, f: F) -> Vec<R>
where
    R: Send,
    F: Fn(usize) -> R + Sync + Send,
{
    let pool = match &*THREADS.read().unwrap_or_else(|e| e.into_inner()) {
        Threads::Serial => None,
        Threads::Global => Some(None),
        Threads::Pool(p) => Some(Some(Arc::clone(p))),
    };
    match pool {
        Some(_) if n < min_parallel => (0..n).map(f).collect(),
        None => (0..n).map(f).collect(),
        Some(None) => (0..n).into_par_iter().map(f).collect(),
        Some(Some(p)) => p.install(|| (0..n).into_par_iter().map(f).collect()),
    }
}

/// Fills `out` by calling `f(offset, chunk)` on consecutive chunks of `out`; the chunks (at least
/// `min_chunk` long) are spread over the threads once `out.len() >= min_parallel`.
pub fn fill_chunked<T, F>(out: &mut [T], min_parallel: usize, min_chunk: usize, f: F)
where
    T: Send,
    F: Fn(usize, &mut [T]) + Sync + Send,
{
    let pool = match &*THREADS.read().unwrap_or_else(|e| e.into_inner()) {
        Threads::Serial => None,
        Threads::Global => Some(None),
        Threads::Pool(p) => Some(Some(Arc::clone(p))),
    };
    let n = out.len();
    let parallel = |threads: usize, out: &mut [T]| {
        // a few chunks per thread, so that a slow thread does not hold the others up
        let chunk = n.div_ceil(threads * 4).max(min_chunk).max(1);
        out.par_chunks_mut(chunk)
            .enumerate()
            .for_each(|(k, c)| f(k * chunk, c));
    };
    match pool {
        Some(_) if n < min_parallel => f(0, out),
        None => f(0, out),
        Some(None) => parallel(rayon::current_num_threads(), out),
        Some(Some(p)) => p.install(|| parallel(p.current_num_threads(), out)),
    }
}
