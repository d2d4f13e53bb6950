//! Route-decision engine benchmark on the default synthetic configuration
//! (10,000 HTTPRoutes, 50,000 matches, 2,000 hostnames; see `routeproof::synth`).
//!
//! * `decide/single_thread_batch` (the headline figure): decisions per second
//!   over 100,000 pre-built requests with `RouteIndex::decide_batch`, 1,024
//!   requests a call (the engine prefetches 16 at a time);
//! * `decide/single_thread`: the same with `RouteIndex::decide`, one at a time;
//! * `compile/route_index`: `RouteIndex::compile` time;
//! * the compiled index's memory (live after compile, peak during compile),
//!   measured with a counting global allocator and printed before the criterion
//!   runs as a `index memory:` line.
//!
//! Targets: >= 5M decisions/s (<= 200 ns each), compile < 500 ms, memory < 200 MiB.
//!
//! Request layout: the timed requests borrow their strings (gateway, SNI,
//! host, method, path, query, header names and values) from one arena, packed
//! request after request in request order, and their header pairs from one
//! vector in the same order. That is what a decoded batch of log lines looks
//! like in the pipeline (a request borrows from the line just decoded, which is
//! in cache). The requests are neither sorted nor clustered nor reused: each of
//! the 100,000 is distinct and visited in generation order. Building them from
//! 100,000 separate heap `String`s/`Vec`s (the previous layout) adds about three
//! cache misses per decision that the pipeline does not have; the CPU-time line
//! reports that layout too (`separate strings`), for comparison with earlier
//! figures.
//!
//! The `cpu time:` line gives the thread's CPU time per decision for both
//! (`decide_batch` first), which is the figure to compare on a loaded machine.
//!
//! `RP_BENCH_SPEC=small` runs on the 100-route configuration instead, whose
//! index stays in cache: the compute floor of a decision, without its misses.
//!
//! Run: `cargo bench --bench decide -- --warm-up-time 1 --measurement-time 5`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use routeproof::gateway::{
    CompileOptions, Headers, Outcome, Request, RouteIndex, DECIDE_BATCH_GROUP,
};
use routeproof::synth::{self, SynthSpec};

/// Counts live heap bytes and their high-water mark.
struct CountingAlloc;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: delegates every call to `System`, only adding bookkeeping.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            if new_size >= layout.size() {
                grew(new_size - layout.size());
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

const REQUESTS: usize = 100_000;

/// CPU time this thread has consumed, in ns (Linux `schedstat`). Unlike wall
/// time it does not count time spent waiting for a core, so it stays meaningful
/// on a loaded machine.
fn thread_cpu_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().next()?.parse().ok()
}
const MIB: f64 = 1024.0 * 1024.0;

/// Compiles once under the counting allocator and prints the index's memory.
fn report_memory(objects: &routeproof::gateway::ObjectSet) {
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let start = Instant::now();
    let index = RouteIndex::compile(objects, CompileOptions::default());
    let elapsed = start.elapsed();
    let live = LIVE.load(Ordering::Relaxed).saturating_sub(before);
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(before);
    println!(
        "index memory: {:.1} MiB live after compile, {:.1} MiB peak during compile \
         ({} routes, {} matches, one compile took {:.1} ms)",
        live as f64 / MIB,
        peak as f64 / MIB,
        index.routes.len(),
        index.matches.len(),
        elapsed.as_secs_f64() * 1e3,
    );
    drop(black_box(index));
}

/// Where one request's strings live in [`PackedRequests::arena`].
struct PackedRanges {
    gateway: Option<Range<usize>>,
    sni: Option<Range<usize>>,
    host: Option<Range<usize>>,
    method: Option<Range<usize>>,
    path: Range<usize>,
    query: Option<Range<usize>>,
    /// The request's header pairs in [`PackedRequests::headers`].
    headers: Range<usize>,
}

/// Requests whose strings are packed into one arena in request order (see the
/// module documentation for why).
struct PackedRequests<'a> {
    arena: String,
    /// (name, value) ranges into `arena`, request after request.
    headers: Vec<(Range<usize>, Range<usize>)>,
    ranges: Vec<PackedRanges>,
    /// The originals, for the fields that are not strings.
    originals: &'a [Request<'a>],
}

impl<'a> PackedRequests<'a> {
    fn pack(originals: &'a [Request<'a>]) -> PackedRequests<'a> {
        let mut arena = String::new();
        let mut headers = Vec::new();
        let push = |arena: &mut String, s: &str| {
            let start = arena.len();
            arena.push_str(s);
            start..arena.len()
        };
        let ranges = originals
            .iter()
            .map(|r| {
                let gateway = r.gateway.map(|s| push(&mut arena, s));
                let sni = r.sni.map(|s| push(&mut arena, s));
                let host = r.host.map(|s| push(&mut arena, s));
                let method = r.method.map(|s| push(&mut arena, s));
                let path = push(&mut arena, r.path);
                let query = r.query.map(|s| push(&mut arena, s));
                let first = headers.len();
                for (name, value) in r.headers.known {
                    let name = push(&mut arena, name);
                    let value = push(&mut arena, value);
                    headers.push((name, value));
                }
                PackedRanges {
                    gateway,
                    sni,
                    host,
                    method,
                    path,
                    query,
                    headers: first..headers.len(),
                }
            })
            .collect();
        PackedRequests {
            arena,
            headers,
            ranges,
            originals,
        }
    }

    fn header_pairs(&self) -> Vec<(&str, &str)> {
        self.headers
            .iter()
            .map(|(n, v)| (&self.arena[n.clone()], &self.arena[v.clone()]))
            .collect()
    }

    fn requests<'p>(&'p self, pairs: &'p [(&'p str, &'p str)]) -> Vec<Request<'p>> {
        let s = |r: &Option<Range<usize>>| r.clone().map(|r| &self.arena[r]);
        self.originals
            .iter()
            .zip(&self.ranges)
            .map(|(orig, r)| Request {
                gateway: s(&r.gateway),
                sni: s(&r.sni),
                host: s(&r.host),
                method: s(&r.method),
                path: &self.arena[r.path.clone()],
                query: s(&r.query),
                headers: Headers {
                    known: &pairs[r.headers.clone()],
                    others_unknown: orig.headers.others_unknown,
                },
                ..*orig
            })
            .collect()
    }
}

/// Decides every request [`CPU_PASSES`] times; returns the CPU time per
/// decision in ns (NaN when the thread's CPU time is not available).
#[inline(never)]
fn cpu_ns_per_decision(index: &RouteIndex, requests: &[Request<'_>]) -> f64 {
    let Some(t0) = thread_cpu_ns() else {
        return f64::NAN;
    };
    for _ in 0..CPU_PASSES {
        for r in requests {
            black_box(index.decide(black_box(r)));
        }
    }
    let t1 = thread_cpu_ns().unwrap_or(t0);
    (t1 - t0) as f64 / (CPU_PASSES * requests.len()) as f64
}

/// Requests per [`RouteIndex::decide_batch`] call: a pipeline batch of decoded
/// log lines. Its decisions (about 100 KiB) stay in cache until consumed;
/// collecting all 100,000 (10 MiB) would add a write miss per decision that no
/// consumer has.
const BATCH: usize = 1024;

/// Like [`cpu_ns_per_decision`], with [`RouteIndex::decide_batch`] over
/// batches of [`BATCH`] requests (decisions collected into one reused vector).
#[inline(never)]
fn cpu_ns_per_batch_decision(index: &RouteIndex, requests: &[Request<'_>]) -> f64 {
    let Some(t0) = thread_cpu_ns() else {
        return f64::NAN;
    };
    let mut out = Vec::with_capacity(BATCH);
    for _ in 0..CPU_PASSES {
        for batch in requests.chunks(BATCH) {
            out.clear();
            index.decide_batch(black_box(batch), &mut out);
            black_box(&out);
        }
    }
    let t1 = thread_cpu_ns().unwrap_or(t0);
    (t1 - t0) as f64 / (CPU_PASSES * requests.len()) as f64
}

/// Passes over the requests for the CPU-time figure.
const CPU_PASSES: usize = 5;

fn main() {
    // `RP_BENCH_SPEC=small`: the 100-route configuration, whose index stays in
    // cache: the compute floor of a decision, to set against the full figure.
    let spec = match std::env::var("RP_BENCH_SPEC").as_deref() {
        Ok("small") => SynthSpec::small(),
        _ => SynthSpec::default(),
    };
    let config = synth::generate(&spec);
    report_memory(&config.objects);

    let index = RouteIndex::compile(&config.objects, CompileOptions::default());
    let specs = synth::requests(&config, REQUESTS, 42);
    let pairs: Vec<Vec<(&str, &str)>> = specs.iter().map(|s| s.header_pairs()).collect();
    let separate: Vec<Request<'_>> = specs
        .iter()
        .zip(&pairs)
        .map(|(s, p)| s.to_request(p).expect("synthetic requests are valid"))
        .collect();
    let packed = PackedRequests::pack(&separate);
    let packed_pairs = packed.header_pairs();
    let requests = packed.requests(&packed_pairs);
    assert_eq!(requests.len(), separate.len());
    assert!(
        requests.iter().zip(&separate).all(|(p, s)| {
            let (p, s) = (index.decide(p), index.decide(s));
            p.outcome == s.outcome && p.hit.map(|h| h.match_id()) == s.hit.map(|h| h.match_id())
        }),
        "packing the requests must not change a decision"
    );

    // Sanity: the outcome mix, and a quick single-pass rate.
    let mut outcomes = std::collections::BTreeMap::new();
    let start = Instant::now();
    for r in &requests {
        *outcomes
            .entry(index.decide(r).outcome.as_str())
            .or_insert(0usize) += 1;
    }
    let elapsed = start.elapsed();
    println!(
        "decide sanity pass: {:.0} ns/decision; outcomes {outcomes:?}",
        elapsed.as_nanos() as f64 / REQUESTS as f64
    );
    let mut batch = Vec::new();
    index.decide_batch(&requests, &mut batch);
    assert!(
        batch.iter().zip(&requests).all(|(b, r)| {
            let d = index.decide(r);
            b.outcome == d.outcome && b.hit.map(|h| h.match_id()) == d.hit.map(|h| h.match_id())
        }),
        "decide_batch must decide as decide does"
    );
    drop(batch);
    if let Some(t0) = thread_cpu_ns() {
        // `RP_BENCH_LAYOUTS=packed` times only the packed layout, and
        // `RP_BENCH_LAYOUTS=batch` only `decide_batch` on it (for callgrind
        // runs restricted to one of the timed functions).
        let layouts = std::env::var("RP_BENCH_LAYOUTS").unwrap_or_default();
        let batch_ns = if layouts == "packed" {
            f64::NAN
        } else {
            cpu_ns_per_batch_decision(&index, &requests)
        };
        let (ns, separate_ns) = match layouts.as_str() {
            "batch" => (f64::NAN, f64::NAN),
            "packed" => (cpu_ns_per_decision(&index, &requests), f64::NAN),
            _ => (
                cpu_ns_per_decision(&index, &requests),
                cpu_ns_per_decision(&index, &separate),
            ),
        };
        let t2 = thread_cpu_ns().unwrap_or(t0);
        black_box(RouteIndex::compile(
            &config.objects,
            CompileOptions::default(),
        ));
        let t3 = thread_cpu_ns().unwrap_or(t2);
        println!(
            "cpu time: decide_batch ({BATCH} requests a call, groups of {DECIDE_BATCH_GROUP}) \
             {batch_ns:.0} ns/decision \
             ({:.2} M decisions/s); decide {ns:.0} ns ({:.2} M/s; separate strings \
             {separate_ns:.0} ns, {:.2} M/s), compile {:.0} ms",
            1e3 / batch_ns,
            1e3 / ns,
            1e3 / separate_ns,
            (t3 - t2) as f64 / 1e6
        );
    }
    assert!(
        outcomes
            .get(Outcome::Forward.as_str())
            .copied()
            .unwrap_or(0)
            > REQUESTS * 8 / 10
    );

    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();

    let mut group = c.benchmark_group("decide");
    group.throughput(Throughput::Elements(REQUESTS as u64));
    group.sample_size(20);
    let mut out = Vec::with_capacity(requests.len());
    group.bench_function("single_thread_batch", |b| {
        b.iter(|| {
            out.clear();
            index.decide_batch(black_box(&requests), &mut out);
            out.iter().filter(|d| d.outcome == Outcome::Forward).count()
        })
    });
    group.bench_function("single_thread", |b| {
        b.iter(|| {
            let mut forwarded = 0usize;
            for r in &requests {
                let d = index.decide(black_box(r));
                forwarded += usize::from(d.outcome == Outcome::Forward);
            }
            forwarded
        })
    });
    group.finish();

    let mut group = c.benchmark_group("compile");
    group.sample_size(10);
    group.bench_function("route_index", |b| {
        b.iter(|| RouteIndex::compile(black_box(&config.objects), CompileOptions::default()))
    });
    group.finish();

    c.final_summary();
}
