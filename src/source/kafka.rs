//! The Kafka source of `routeproof run`: client settings (brokers, TLS, SASL,
//! pass-through properties), the consumer-group settings (cooperative-sticky
//! assignment, manual commits), batching of messages per partition, and
//! per-partition lag.
//!
//! Offsets are never committed automatically: `enable.auto.commit` and
//! `enable.auto.offset.store` are off, and the service commits only what the
//! Parquet output has made durable (see [`crate::sink::kafka_files`]).
//!
//! Memory is bounded however far behind the consumer is: librdkafka pre-fetches
//! at most `kafka.queued_max_messages_kbytes` per worker (each worker's
//! partitions are routed to one queue, see [`super::message_queue`]), and the
//! consumer loop hands batches to workers over bounded queues; while a
//! worker's queue is full the loop stops reading that worker's message queue,
//! and librdkafka stops fetching its partitions until
//! `kafka.fetch_queue_backoff_ms` after the queue is below the bound.

use std::collections::HashMap;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;

use crate::config::KafkaConfig;

/// A topic-partition.
pub type TopicPartition = (Arc<str>, i32);

/// The client settings shared by the consumer and the producer: brokers, client
/// id, TLS and SASL, then every `kafka.properties` entry.
pub fn client_config(k: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &k.brokers)
        .set("client.id", &k.client_id);
    let optional = [
        ("security.protocol", &k.security_protocol),
        ("sasl.mechanism", &k.sasl_mechanism),
        ("sasl.username", &k.sasl_username),
        ("sasl.password", &k.sasl_password),
        ("ssl.ca.location", &k.ssl_ca_location),
        ("ssl.certificate.location", &k.ssl_certificate_location),
        ("ssl.key.location", &k.ssl_key_location),
        ("ssl.key.password", &k.ssl_key_password),
    ];
    for (key, value) in optional {
        if let Some(v) = value {
            c.set(key, v);
        }
    }
    for (key, value) in &k.properties {
        c.set(key, value);
    }
    c
}

/// The consumer settings: [`client_config`] plus the group, cooperative-sticky
/// assignment, manual offset handling, the pre-fetch bound and statistics
/// (for lag) every `stats_interval_ms` (0: none).
pub fn consumer_config(k: &KafkaConfig, stats_interval_ms: u64) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("group.id", &k.group_id)
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", &k.auto_offset_reset)
        .set("session.timeout.ms", k.session_timeout_ms.to_string())
        .set(
            "queued.max.messages.kbytes",
            k.queued_max_messages_kbytes.to_string(),
        )
        .set(
            "fetch.queue.backoff.ms",
            k.fetch_queue_backoff_ms.to_string(),
        )
        .set("enable.partition.eof", "false")
        .set("statistics.interval.ms", stats_interval_ms.to_string())
        // Regex subscriptions pick up new topics within this interval.
        .set("topic.metadata.refresh.interval.ms", "30000");
    // Pass-through settings come last so they can override the above.
    for (key, value) in client_config(k).config_map() {
        c.set(key, value);
    }
    c
}

/// Messages of one topic-partition, copied into one buffer.
#[derive(Debug)]
pub struct MessageBatch {
    /// Topic.
    pub topic: Arc<str>,
    /// Partition.
    pub partition: i32,
    data: Vec<u8>,
    entries: Vec<(i64, u32, u32)>,
}

impl MessageBatch {
    fn new(topic: Arc<str>, partition: i32, capacity: usize) -> Self {
        Self {
            topic,
            partition,
            data: Vec::with_capacity(capacity * 512),
            entries: Vec::with_capacity(capacity),
        }
    }

    /// Empties a returned batch for reuse by another partition, keeping its
    /// buffers: fresh multi-MiB buffers for every batch cost page faults and
    /// page clearing on the consumer thread.
    fn reuse(mut self, topic: Arc<str>, partition: i32) -> Self {
        self.topic = topic;
        self.partition = partition;
        self.data.clear();
        self.entries.clear();
        self
    }

    /// Number of messages.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is no message.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds a message (an absent payload counts as empty).
    pub fn push(&mut self, offset: i64, payload: &[u8]) {
        let start = self.data.len();
        self.data.extend_from_slice(payload);
        let end = self.data.len();
        self.entries.push((
            offset,
            u32::try_from(start).unwrap_or(u32::MAX),
            u32::try_from(end).unwrap_or(u32::MAX),
        ));
    }

    /// The messages as `(offset, payload)`, in consumption order.
    pub fn iter(&self) -> impl Iterator<Item = (i64, &[u8])> + '_ {
        self.entries.iter().map(|&(offset, start, end)| {
            (
                offset,
                self.data
                    .get(start as usize..end as usize)
                    .unwrap_or_default(),
            )
        })
    }
}

/// Where processed batches go back to the [`Batcher`] that made them, so
/// their buffers are reused.
#[derive(Debug, Clone)]
pub struct BatchReturn(SyncSender<MessageBatch>);

impl BatchReturn {
    /// Hands a processed batch back; dropped when enough are waiting.
    pub fn give_back(&self, batch: MessageBatch) {
        let _ = self.0.try_send(batch);
    }
}

/// Collects messages into per-partition batches.
#[derive(Debug)]
pub struct Batcher {
    batch_messages: usize,
    /// Pending batches; a consumer holds few partitions, so a linear search
    /// (no allocation per message) is the fastest lookup.
    pending: Vec<MessageBatch>,
    topics: HashMap<Box<str>, Arc<str>>,
    oldest: Option<Instant>,
    returned: Option<Receiver<MessageBatch>>,
}

impl Batcher {
    /// Batches of at most `batch_messages` messages (and at most 16 MiB).
    pub fn new(batch_messages: usize) -> Self {
        Self {
            batch_messages: batch_messages.max(1),
            pending: Vec::new(),
            topics: HashMap::new(),
            oldest: None,
            returned: None,
        }
    }

    /// As [`new`](Self::new), reusing batches handed back through the
    /// returned [`BatchReturn`] (at most `keep` of them wait for reuse).
    pub fn recycling(batch_messages: usize, keep: usize) -> (Self, BatchReturn) {
        let (tx, rx) = sync_channel(keep.max(1));
        let mut batcher = Self::new(batch_messages);
        batcher.returned = Some(rx);
        (batcher, BatchReturn(tx))
    }

    /// A batch for `partition`: a returned one when there is one.
    fn fresh_batch(&mut self, topic: Arc<str>, partition: i32) -> MessageBatch {
        match self.returned.as_ref().and_then(|r| r.try_recv().ok()) {
            Some(batch) => batch.reuse(topic, partition),
            None => MessageBatch::new(topic, partition, self.batch_messages),
        }
    }

    /// Adds a message; returns the partition's batch when it is full.
    pub fn push(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        payload: &[u8],
    ) -> Option<MessageBatch> {
        if self.oldest.is_none() {
            self.oldest = Some(Instant::now());
        }
        let cap = self.batch_messages;
        let index = match self
            .pending
            .iter()
            .position(|b| b.partition == partition && &*b.topic == topic)
        {
            Some(i) => i,
            None => {
                let arc = self.topic_arc(topic);
                let batch = self.fresh_batch(arc, partition);
                self.pending.push(batch);
                self.pending.len() - 1
            }
        };
        let batch = &mut self.pending[index];
        batch.push(offset, payload);
        if batch.len() >= cap || batch.data.len() >= 16 << 20 {
            return Some(self.pending.swap_remove(index));
        }
        None
    }

    /// How long the oldest pending message has waited at `now`.
    pub fn pending_age(&self, now: Instant) -> Option<Duration> {
        self.oldest.map(|t| now.saturating_duration_since(t))
    }

    /// Takes every pending batch.
    pub fn take_all(&mut self) -> Vec<MessageBatch> {
        self.oldest = None;
        std::mem::take(&mut self.pending)
    }

    /// Takes the pending batches of `partitions`.
    pub fn take(&mut self, partitions: &[TopicPartition]) -> Vec<MessageBatch> {
        let (taken, kept) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|b| {
                partitions
                    .iter()
                    .any(|(t, p)| *p == b.partition && t == &b.topic)
            });
        self.pending = kept;
        taken
    }

    /// The shared topic name.
    pub fn topic_arc(&mut self, topic: &str) -> Arc<str> {
        if let Some(arc) = self.topics.get(topic) {
            return arc.clone();
        }
        let arc: Arc<str> = Arc::from(topic);
        self.topics.insert(Box::from(topic), arc.clone());
        arc
    }
}

/// Per-partition consumer lag, from librdkafka's statistics (emitted every
/// `statistics.interval.ms`; no extra broker requests on the consumer loop).
#[derive(Debug, Default)]
pub struct LagTracker {
    lags: std::collections::BTreeMap<(String, i32), i64>,
}

impl LagTracker {
    /// Takes the lags of a statistics report (partitions this consumer fetches).
    pub fn update(&mut self, statistics: &rdkafka::statistics::Statistics) {
        self.lags.clear();
        for (topic, t) in &statistics.topics {
            for (partition, p) in &t.partitions {
                if *partition >= 0 && p.consumer_lag >= 0 {
                    self.lags
                        .insert((topic.clone(), *partition), p.consumer_lag);
                }
            }
        }
    }

    /// Forgets partitions no longer assigned.
    pub fn forget(&mut self, tps: &[TopicPartition]) {
        for (t, p) in tps {
            self.lags.remove(&(t.to_string(), *p));
        }
    }

    /// Lag per partition as of the last report.
    pub fn lags(&self) -> &std::collections::BTreeMap<(String, i32), i64> {
        &self.lags
    }

    /// Total lag as of the last report.
    pub fn total(&self) -> i64 {
        self.lags.values().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kafka(properties: &[(&str, &str)]) -> KafkaConfig {
        let mut toml = String::from(
            "brokers = \"b:9092\"\ntopics = [\"t\"]\nfetch_queue_backoff_ms = 25\n[properties]\n",
        );
        for (k, v) in properties {
            toml.push_str(&format!("\"{k}\" = \"{v}\"\n"));
        }
        toml::from_str(&toml).expect("kafka section")
    }

    #[test]
    fn consumer_config_sets_manual_commits_and_fetch_backoff() {
        let c = consumer_config(&kafka(&[]), 0);
        assert_eq!(c.get("enable.auto.commit"), Some("false"));
        assert_eq!(
            c.get("partition.assignment.strategy"),
            Some("cooperative-sticky")
        );
        assert_eq!(c.get("fetch.queue.backoff.ms"), Some("25"));
        assert_eq!(c.get("bootstrap.servers"), Some("b:9092"));
    }

    #[test]
    fn returned_batches_are_reused_empty_for_any_partition() {
        let (mut batcher, back) = Batcher::recycling(2, 4);
        assert!(batcher.push("t", 0, 10, b"aaaa").is_none());
        let full = batcher.push("t", 0, 11, b"bb").expect("full at 2 messages");
        let ptr = full.data.as_ptr();
        assert_eq!(
            full.iter().collect::<Vec<_>>(),
            vec![(10, &b"aaaa"[..]), (11, &b"bb"[..])]
        );
        back.give_back(full);
        assert!(batcher.push("u", 3, 7, b"c").is_none());
        let reused = batcher.take_all().pop().expect("pending batch");
        assert_eq!(reused.data.as_ptr(), ptr, "the returned buffer is reused");
        assert_eq!((&*reused.topic, reused.partition), ("u", 3));
        assert_eq!(reused.iter().collect::<Vec<_>>(), vec![(7, &b"c"[..])]);
    }

    #[test]
    fn pending_age_counts_from_the_first_pending_message() {
        let mut batcher = Batcher::new(10);
        let before = Instant::now();
        assert_eq!(batcher.pending_age(before), None);
        batcher.push("t", 0, 1, b"x");
        let later = Instant::now() + Duration::from_millis(60);
        assert!(batcher
            .pending_age(later)
            .is_some_and(|a| a >= Duration::from_millis(60)));
        batcher.take_all();
        assert_eq!(batcher.pending_age(later), None);
    }

    #[test]
    fn pass_through_properties_override() {
        let c = consumer_config(&kafka(&[("fetch.queue.backoff.ms", "500")]), 0);
        assert_eq!(c.get("fetch.queue.backoff.ms"), Some("500"));
    }
}
