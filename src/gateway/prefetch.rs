//! A cache prefetch hint, for overlapping dependent loads: those of several
//! requests in the engine's batch (see [`super::batch`]), and the Parquet
//! writer's id-table slots of a row (`crate::sink::columns`).

/// Asks the CPU to start loading the cache line holding `*p` into all cache
/// levels. A hint only: it has no effect on program state, and on targets other
/// than x86-64 it does nothing.
#[inline(always)]
pub(crate) fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `prefetcht0` never faults and changes no architectural state,
    // whatever the address (it is a hint the CPU may drop); callers pass
    // addresses derived from live references anyway.
    #[allow(unused_unsafe)]
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Prefetches every cache line of `*r` (objects may span several lines).
#[inline(always)]
pub(crate) fn prefetch_object<T>(r: &T) {
    let start = (r as *const T).cast::<u8>();
    let size = std::mem::size_of::<T>();
    let mut offset = 0;
    while offset < size {
        // `wrapping_add` keeps the pointer arithmetic defined; the address
        // stays inside the object anyway.
        prefetch(start.wrapping_add(offset));
        offset += 64;
    }
    if size > 1 {
        prefetch(start.wrapping_add(size - 1));
    }
}
