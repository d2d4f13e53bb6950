//! Checks that a Kafka partition resumes where it was told to.
//!
//! After an assignment the consumer is positioned at the resume offset found
//! on storage (see [`crate::sink::kafka_files`]). The first message fetched
//! must carry exactly that offset; a later one means the broker did not deliver
//! the offsets in between. Retention or compaction can legitimately remove
//! them, but a broker that answers a fetch from inside a record batch with the
//! *next* batch loses them silently (tansu 0.6.0 does: a seek to 1500 delivered
//! 2424 first). Either way the operator must know: the gap is reported, with
//! the range, instead of passing unnoticed.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A gap at a resume point: offsets `expected..delivered` were not delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumeGap {
    /// Topic.
    pub topic: Arc<str>,
    /// Partition.
    pub partition: i32,
    /// The offset the partition was assigned at.
    pub expected: i64,
    /// The first offset the broker delivered.
    pub delivered: i64,
}

impl std::fmt::Display for ResumeGap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{}: assigned at offset {} but the broker delivered {} first: {} record(s) not \
             delivered (retention or compaction removed them, or the broker skipped part of a \
             record batch)",
            self.topic,
            self.partition,
            self.expected,
            self.delivered,
            self.delivered - self.expected
        )
    }
}

/// The resume offsets not yet confirmed by a first message.
///
/// [`ResumeCheck::check`] is called for every consumed message but takes its
/// lock only while some partition awaits its first message.
#[derive(Debug, Default)]
pub struct ResumeCheck {
    awaiting: Mutex<Vec<(Arc<str>, i32, i64)>>,
    count: AtomicUsize,
}

impl ResumeCheck {
    /// No partition awaiting.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(Arc<str>, i32, i64)>> {
        self.awaiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The partition was assigned at `offset`.
    pub fn expect(&self, topic: Arc<str>, partition: i32, offset: i64) {
        let mut awaiting = self.lock();
        awaiting.retain(|(t, p, _)| !(*p == partition && *t == topic));
        awaiting.push((topic, partition, offset));
        self.count.store(awaiting.len(), Ordering::Release);
    }

    /// The partition was revoked: nothing to check any more.
    pub fn forget(&self, topic: &str, partition: i32) {
        let mut awaiting = self.lock();
        awaiting.retain(|(t, p, _)| !(*p == partition && &**t == topic));
        self.count.store(awaiting.len(), Ordering::Release);
    }

    /// A message at `offset` was consumed; returns the gap if it is the first
    /// of its partition since the assignment and lies beyond the resume offset.
    pub fn check(&self, topic: &str, partition: i32, offset: i64) -> Option<ResumeGap> {
        if self.count.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut awaiting = self.lock();
        let i = awaiting
            .iter()
            .position(|(t, p, _)| *p == partition && &**t == topic)?;
        let (topic, partition, expected) = awaiting.swap_remove(i);
        self.count.store(awaiting.len(), Ordering::Release);
        (offset > expected).then_some(ResumeGap {
            topic,
            partition,
            expected,
            delivered: offset,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_a_gap_once_at_the_first_message() {
        let check = ResumeCheck::new();
        assert_eq!(check.check("logs", 0, 7), None, "nothing awaited");
        check.expect(Arc::from("logs"), 1, 1500);
        check.expect(Arc::from("logs"), 0, 10);
        assert_eq!(check.check("logs", 0, 10), None, "resumed exactly");
        assert_eq!(check.check("logs", 0, 99), None, "checked once only");
        let gap = check.check("logs", 1, 2424).expect("gap");
        assert_eq!((gap.expected, gap.delivered), (1500, 2424));
        assert!(gap.to_string().contains("924 record(s)"), "{gap}");
        assert_eq!(check.check("logs", 1, 3000), None);
    }

    #[test]
    fn a_revoked_or_reassigned_partition_is_rechecked_from_its_new_offset() {
        let check = ResumeCheck::new();
        check.expect(Arc::from("logs"), 0, 100);
        check.forget("logs", 0);
        assert_eq!(check.check("logs", 0, 500), None);
        check.expect(Arc::from("logs"), 0, 100);
        check.expect(Arc::from("logs"), 0, 200);
        assert_eq!(check.check("logs", 0, 200), None);
    }
}
