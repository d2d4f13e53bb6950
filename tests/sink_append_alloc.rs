//! Checks that appending enriched rows to the Parquet sink does not allocate per
//! row: a counting global allocator (its own test binary, so other tests are not
//! affected) counts allocations made by this thread while rows are appended.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use routeproof::sink::{
    ActualSource, EnrichedRow, ParquetSink, ParquetSinkConfig, SequentialFileNamer, StrList,
};

struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: delegates to the system allocator; only counts calls.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// 2024-05-01T07:00:00Z in µs.
const HOUR_07: i64 = 1_714_546_800_000_000;

#[test]
fn appending_a_batch_of_rows_allocates_only_for_builder_growth() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let batch_rows = 8192;
    let config = ParquetSinkConfig {
        batch_rows,
        ..ParquetSinkConfig::new(tmp.path())
    };
    let mut sink = ParquetSink::new(config, SequentialFileNamer::new("alloc")).expect("sink");
    let expected = ["shop/cart-v1", "shop/cart-v2"];
    let attempts = ["10.0.0.1:8080"];
    let make = |i: i64| EnrichedRow {
        event_time: Some(HOUR_07 + i),
        gateway: Some("infra/public"),
        listener: Some("https"),
        host: Some("shop.example.com"),
        method: Some("GET"),
        path: Some("/cart/items?page=2"),
        status: Some(200),
        duration_ms: Some(3.0),
        bytes_sent: Some(1024),
        request_id: Some("3f1c2a9e-5b7d-4c1e-9f3a-8d2b6e4c1a7f"),
        actual_backend: Some("shop/cart-v1"),
        actual_upstream: Some("outbound|8080||cart-v1.shop.svc.cluster.local"),
        actual_source: ActualSource::ClusterName,
        expected_backends: Some(StrList::Borrowed(&expected)),
        route: Some("shop/cart"),
        route_kind: Some("HTTPRoute"),
        rule: Some(0),
        verdict: "ok",
        input_format: "envoy_json",
        source_file: Some("/logs/access.log"),
        source_offset: Some(i * 400),
        upstream_attempts: StrList::Borrowed(&attempts),
        index_version: Some(3),
        ..EnrichedRow::default()
    };
    // The first row opens the partition (allocates its column buffers, sized
    // for batch_rows rows).
    sink.append(&make(0)).expect("append");
    let rows = (batch_rows - 2) as i64; // stay within the reserved rows
    let before = allocations();
    for i in 1..=rows {
        sink.append(&make(i)).expect("append");
    }
    let during = allocations() - before;
    println!("{during} allocations for {rows} appended rows");
    // Buffers are sized for batch_rows rows; only a few string buffers may
    // grow (amortised doubling), never one allocation per row.
    assert!(
        during <= 16,
        "{during} allocations for {rows} rows: the append path allocates per row"
    );
    let files = sink.close().expect("close");
    assert_eq!(files.iter().map(|f| f.rows).sum::<u64>(), rows as u64 + 1);
}
