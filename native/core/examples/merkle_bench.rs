//! Merkle root of 100,000 200-byte leaves (the `merkle_100k` input of bench/native.py), without
//! Python: leaf hashes and interior nodes apart on one thread (CPU time, median and minimum),
//! then the whole root: median wall time and CPU time (this thread; whole process) on 1 and 2
//! threads.
//!
//!     cargo run --release --example merkle_bench [rounds]

use std::time::Instant;

use partledger_core::{merkle, pool, sha256_batch};

#[cfg(target_os = "linux")]
fn cpu_seconds(clock: i32) -> f64 {
    #[repr(C)]
    struct Timespec {
        sec: i64,
        nsec: i64,
    }
    extern "C" {
        fn clock_gettime(clock: i32, t: *mut Timespec) -> i32;
    }
    let mut t = Timespec { sec: 0, nsec: 0 };
    // SAFETY: clock_gettime writes one timespec.
    unsafe { clock_gettime(clock, &mut t) };
    t.sec as f64 + t.nsec as f64 * 1e-9
}

#[cfg(not(target_os = "linux"))]
fn cpu_seconds(_clock: i32) -> f64 {
    0.0
}

const PROCESS: i32 = 2; // CLOCK_PROCESS_CPUTIME_ID
const THREAD: i32 = 3; // CLOCK_THREAD_CPUTIME_ID

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(50);
    let seeds: Vec<Vec<u8>> = (0..100_000u32)
        .map(|i| format!("item {i}").into_bytes())
        .collect();
    let seed_refs: Vec<&[u8]> = seeds.iter().map(|v| v.as_slice()).collect();
    // 200 bytes each, like the Python benchmark (SHA-512 there, SHA-256 here: the content
    // does not matter)
    let items: Vec<Vec<u8>> = sha256_batch(&seed_refs)
        .iter()
        .map(|h| h.repeat(7)[..200].to_vec())
        .collect();
    let refs: Vec<&[u8]> = items.iter().map(|v| v.as_slice()).collect();
    {
        // where one thread's time goes: leaf hashes (four blocks each), interior nodes (two)
        pool::set_threads(1).expect("serial");
        let mut lt = vec![];
        let mut nt = vec![];
        for _ in 0..rounds {
            let t = cpu_seconds(THREAD);
            let h = merkle::leaf_hashes(&refs);
            lt.push(cpu_seconds(THREAD) - t);
            let t = cpu_seconds(THREAD);
            std::hint::black_box(merkle::root_of_hashes(&h));
            nt.push(cpu_seconds(THREAD) - t);
        }
        println!(
            "leaf hashes {:.2} ms (min {:.2}), nodes {:.2} ms (min {:.2})",
            median(lt.clone()) * 1e3,
            lt.iter().cloned().fold(f64::MAX, f64::min) * 1e3,
            median(nt.clone()) * 1e3,
            nt.iter().cloned().fold(f64::MAX, f64::min) * 1e3
        );
    }
    for threads in [1, 2] {
        pool::set_threads(threads).expect("thread pool");
        let (mut wall, mut thread, mut process) = (vec![], vec![], vec![]);
        for _ in 0..rounds {
            let (w, t, p) = (Instant::now(), cpu_seconds(THREAD), cpu_seconds(PROCESS));
            std::hint::black_box(merkle::root(std::hint::black_box(&refs)));
            thread.push(cpu_seconds(THREAD) - t);
            process.push(cpu_seconds(PROCESS) - p);
            wall.push(w.elapsed().as_secs_f64());
        }
        println!(
            "{threads} thread(s): wall {:.2} ms, CPU {:.2} ms on the calling thread, \
             {:.2} ms in all (medians of {rounds})",
            median(wall) * 1e3,
            median(thread) * 1e3,
            median(process) * 1e3,
        );
    }
}
