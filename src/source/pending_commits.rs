//! Offsets waiting to be committed until the alerts and dead letters produced
//! before their files were published are delivered.
//!
//! A worker publishes a group's files, then reports the group's next offset;
//! the consumer loop takes the producer's [`DeliveryMark`] when it receives
//! the offset (every alert of the group's records was produced before the
//! report) and queues both here. Each commit round takes the offsets whose
//! mark delivery has passed, without waiting: an offset is never committed
//! before its alerts are on their topic, and a slow acknowledgement from the
//! broker does not stall the loop that feeds the workers. Storage stays the
//! source of truth for resuming, so a commit that comes late loses nothing.

use std::collections::{HashMap, VecDeque};

use super::kafka::TopicPartition;
use crate::sink::kafka::DeliveryMark;

/// Offsets in the order they were reported, each with the mark to wait for.
#[derive(Debug, Default)]
pub struct PendingCommits {
    /// Marks never decrease from front to back, except for offsets put back
    /// at the front (see [`Self::put_back`]), whose alerts were delivered.
    queue: VecDeque<(DeliveryMark, TopicPartition, i64)>,
}

impl PendingCommits {
    /// Queues `offset` of `tp`, to commit once delivery passes `mark`.
    pub fn push(&mut self, tp: TopicPartition, offset: i64, mark: DeliveryMark) {
        self.queue.push_back((mark, tp, offset));
    }

    /// Takes the offsets whose mark `delivered` has reached, the highest per
    /// partition. Stops at the first one still waiting, so an offset never
    /// overtakes an earlier one of the same partition.
    pub fn take_ready(&mut self, delivered: DeliveryMark) -> Vec<(TopicPartition, i64)> {
        let mut ready: HashMap<TopicPartition, i64> = HashMap::new();
        while let Some((mark, _, _)) = self.queue.front() {
            if *mark > delivered {
                break;
            }
            if let Some((_, tp, offset)) = self.queue.pop_front() {
                let e = ready.entry(tp).or_insert(offset);
                *e = (*e).max(offset);
            }
        }
        ready.into_iter().collect()
    }

    /// Takes every offset, the highest per partition, whatever its mark (for
    /// a caller that has waited for every delivery itself).
    pub fn take_all(&mut self) -> Vec<(TopicPartition, i64)> {
        self.take_ready(DeliveryMark::MAX)
    }

    /// Puts back offsets taken by [`Self::take_ready`] whose commit failed, to
    /// go first in the next round.
    pub fn put_back(&mut self, offsets: Vec<(TopicPartition, i64)>) {
        for (tp, offset) in offsets {
            self.queue.push_front((DeliveryMark::default(), tp, offset));
        }
    }

    /// Whether no offset waits.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// How many reported offsets wait (for the logs).
    pub fn len(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::sink::kafka::DeliveryLedger;

    fn tp(p: i32) -> TopicPartition {
        (Arc::from("logs"), p)
    }

    fn sorted(mut v: Vec<(TopicPartition, i64)>) -> Vec<(TopicPartition, i64)> {
        v.sort();
        v
    }

    #[test]
    fn an_offset_waits_for_the_alerts_produced_before_it() {
        let mut ledger = DeliveryLedger::default();
        let mut pending = PendingCommits::default();
        let alert = ledger.assign();
        pending.push(tp(0), 100, ledger.sent_mark());
        assert!(pending.take_ready(ledger.delivered_mark()).is_empty());
        assert_eq!(pending.len(), 1);
        ledger.delivered(alert);
        assert_eq!(
            pending.take_ready(ledger.delivered_mark()),
            vec![(tp(0), 100)]
        );
        assert!(pending.is_empty());
    }

    #[test]
    fn later_alerts_do_not_hold_back_earlier_offsets() {
        let mut ledger = DeliveryLedger::default();
        let mut pending = PendingCommits::default();
        let first = ledger.assign();
        pending.push(tp(0), 100, ledger.sent_mark());
        let second = ledger.assign();
        pending.push(tp(1), 50, ledger.sent_mark());
        ledger.delivered(first);
        assert_eq!(
            pending.take_ready(ledger.delivered_mark()),
            vec![(tp(0), 100)]
        );
        ledger.delivered(second);
        assert_eq!(
            pending.take_ready(ledger.delivered_mark()),
            vec![(tp(1), 50)]
        );
    }

    #[test]
    fn a_waiting_offset_holds_back_the_ones_after_it_and_the_highest_wins() {
        let mut ledger = DeliveryLedger::default();
        let mut pending = PendingCommits::default();
        pending.push(tp(0), 10, ledger.sent_mark());
        let slow = ledger.assign();
        pending.push(tp(0), 20, ledger.sent_mark());
        pending.push(tp(1), 5, ledger.sent_mark());
        pending.push(tp(0), 30, ledger.sent_mark());
        // Only the offset reported before the slow alert is ready.
        assert_eq!(
            pending.take_ready(ledger.delivered_mark()),
            vec![(tp(0), 10)]
        );
        ledger.delivered(slow);
        assert_eq!(
            sorted(pending.take_ready(ledger.delivered_mark())),
            vec![(tp(0), 30), (tp(1), 5)]
        );
    }

    #[test]
    fn offsets_put_back_go_first_and_take_all_ignores_marks() {
        let mut ledger = DeliveryLedger::default();
        let mut pending = PendingCommits::default();
        let _never = ledger.assign();
        pending.push(tp(0), 70, ledger.sent_mark());
        pending.put_back(vec![(tp(1), 9)]);
        assert_eq!(
            pending.take_ready(ledger.delivered_mark()),
            vec![(tp(1), 9)]
        );
        assert_eq!(pending.take_all(), vec![(tp(0), 70)]);
        assert!(pending.is_empty());
    }
}
