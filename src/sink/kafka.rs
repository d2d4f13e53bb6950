//! Kafka producers for `routeproof run`: alerts (JSON, schema v1, keyed by
//! fingerprint so a compacted topic keeps each condition's latest state) and
//! dead letters (JSON, schema v1; reason and source in headers).
//!
//! Both share one [`ThreadedProducer`]. Delivery is at least once: a message
//! whose delivery fails with a transient error (the broker is restarting or
//! unreachable, an unknown server error, a timeout) is kept and produced again
//! ([`SharedProducer::retry_failed`]) after a pause that grows with its
//! attempts. Only a permanent error (message
//! too large, not authorised, invalid record) or a message failing
//! [`MAX_DELIVERY_ATTEMPTS`] times is reported as a failure.
//!
//! # Delivery marks
//!
//! Every message gets a sequence number when it is handed to librdkafka, and
//! a [`DeliveryLedger`] keeps the numbers not delivered yet. A
//! [`DeliveryMark`] taken with [`SharedProducer::sent_mark`] stands for every
//! message produced until then; [`SharedProducer::delivered_mark`] says how far
//! delivery has come (every message below it is on its topic). A worker that
//! ends a group of Parquet files seals them with the mark of that moment and
//! publishes them once delivery has passed it, checking without waiting (see
//! [`crate::sink::kafka_files`]): so the group's alerts and dead letters are
//! on their topics before its records count as done, and a slow
//! acknowledgement from the broker never stalls the worker or the consumer
//! loop. Failed messages keep their number until they are delivered, so a
//! mark is never passed while one of its messages is being produced again.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;

use super::alerts::{Alert, AlertSink};
use super::deadletter::{DeadLetter, DeadLetterSink, DeadLetterSource};
use super::SinkError;
use crate::redact::Redaction;

/// Header carrying the dead letter's reason code.
pub const HEADER_REASON: &str = "routeproof.reason";
/// Header carrying the source topic.
pub const HEADER_SOURCE_TOPIC: &str = "routeproof.source.topic";
/// Header carrying the source partition (decimal).
pub const HEADER_SOURCE_PARTITION: &str = "routeproof.source.partition";
/// Header carrying the source offset (decimal).
pub const HEADER_SOURCE_OFFSET: &str = "routeproof.source.offset";

/// How many times one alert or dead letter is produced before a transient
/// failure counts as permanent (with the pauses of [`retry_pause`], about two
/// minutes of failures).
pub const MAX_DELIVERY_ATTEMPTS: usize = 30;

/// The pause before a message that failed `attempts` times is produced again:
/// 250 ms per attempt, at most 5 s (a broker that answers with errors, e.g.
/// while it shuts down, fails every attempt at once).
fn retry_pause(attempts: usize) -> Duration {
    Duration::from_millis(250 * attempts.min(20) as u64)
}

/// A point in the sequence of produced messages: every message produced
/// before the mark was taken is below it. Marks are ordered; the default mark
/// is below every message (nothing to wait for).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct DeliveryMark(u64);

impl DeliveryMark {
    /// Above every message.
    pub const MAX: Self = Self(u64::MAX);

    /// The mark just after message `seq`.
    fn after(seq: u64) -> Self {
        Self(seq + 1)
    }
}

/// The sequence numbers handed out and those not delivered yet.
///
/// Deliveries complete out of order (one queue per topic partition), so the
/// ledger keeps the undelivered numbers as a set; its lowest member is how far
/// delivery has come. Alerts and dead letters are a small fraction of the
/// records, so the set stays small.
#[derive(Debug, Default)]
pub struct DeliveryLedger {
    next: u64,
    undelivered: BTreeSet<u64>,
}

impl DeliveryLedger {
    /// Numbers a new message (undelivered until [`Self::delivered`]).
    pub fn assign(&mut self) -> u64 {
        let seq = self.next;
        self.next += 1;
        self.undelivered.insert(seq);
        seq
    }

    /// Message `seq` is on its topic (or was never handed over).
    pub fn delivered(&mut self, seq: u64) {
        self.undelivered.remove(&seq);
    }

    /// The mark after every message numbered so far.
    pub fn sent_mark(&self) -> DeliveryMark {
        DeliveryMark(self.next)
    }

    /// Every message below the returned mark is delivered.
    pub fn delivered_mark(&self) -> DeliveryMark {
        DeliveryMark(self.undelivered.first().copied().unwrap_or(self.next))
    }

    /// Messages numbered and not delivered yet.
    pub fn undelivered(&self) -> usize {
        self.undelivered.len()
    }
}

/// What rides along with a message through librdkafka to its delivery report.
#[derive(Debug)]
pub struct Attempt {
    /// The message's number in the [`DeliveryLedger`].
    seq: u64,
    /// Attempts before this one.
    earlier: usize,
}

/// A message whose delivery failed, kept to be produced again.
#[derive(Debug)]
struct FailedDelivery {
    topic: String,
    key: Option<Vec<u8>>,
    payload: Vec<u8>,
    headers: Option<OwnedHeaders>,
    seq: u64,
    /// Attempts so far, the failed one included.
    attempts: usize,
    /// Not produced again before this.
    retry_at: Instant,
    error: String,
    permanent: bool,
}

/// Whether a produce error cannot go away by producing the same message again.
fn is_permanent(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::InvalidMessageSize
                | RDKafkaErrorCode::InvalidMessage
                | RDKafkaErrorCode::InvalidRecord
                | RDKafkaErrorCode::InvalidRequiredAcks
                | RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::ClusterAuthorizationFailed
        )
    )
}

/// Keeps the ledger up to date from the delivery reports and keeps the
/// messages that failed (a rare path: nothing is copied for a delivered
/// message).
#[derive(Debug, Default)]
pub struct DeliveryTracker {
    ledger: Mutex<DeliveryLedger>,
    /// Signalled when a message is delivered or fails.
    changed: Condvar,
    failed: Mutex<Vec<FailedDelivery>>,
    delivered: AtomicU64,
}

impl DeliveryTracker {
    fn ledger(&self) -> Result<MutexGuard<'_, DeliveryLedger>, SinkError> {
        self.ledger
            .lock()
            .map_err(|_| SinkError::Config("delivery ledger lock poisoned".into()))
    }
}

impl ClientContext for DeliveryTracker {}

impl ProducerContext for DeliveryTracker {
    type DeliveryOpaque = Box<Attempt>;

    fn delivery(&self, result: &DeliveryResult<'_>, attempt: Box<Attempt>) {
        match result {
            Ok(_) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut ledger) = self.ledger.lock() {
                    ledger.delivered(attempt.seq);
                }
            }
            Err((e, message)) => {
                let attempts = attempt.earlier + 1;
                let failed = FailedDelivery {
                    topic: message.topic().to_string(),
                    key: message.key().map(<[u8]>::to_vec),
                    payload: message.payload().unwrap_or_default().to_vec(),
                    headers: message.headers().map(|h| h.detach()),
                    seq: attempt.seq,
                    attempts,
                    retry_at: Instant::now() + retry_pause(attempts),
                    error: e.to_string(),
                    permanent: is_permanent(e),
                };
                if let Ok(mut list) = self.failed.lock() {
                    list.push(failed);
                }
            }
        }
        self.changed.notify_all();
    }
}

/// A producer shared by the alert and dead-letter sinks of all workers.
#[derive(Clone)]
pub struct SharedProducer {
    producer: Arc<ThreadedProducer<DeliveryTracker>>,
}

impl std::fmt::Debug for SharedProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedProducer").finish_non_exhaustive()
    }
}

/// The longest a waiter sleeps between two looks at the failed list (a
/// failure is signalled, but may land between a look and the wait).
const WAIT_SLICE: Duration = Duration::from_millis(50);

impl SharedProducer {
    /// Creates the producer from a client configuration (brokers, TLS, SASL).
    pub fn new(mut config: ClientConfig) -> Result<Self, SinkError> {
        // A group of Parquet files is published once its alerts are
        // delivered, so the linger adds to every publication's latency;
        // alerts are a small fraction of the records, so batching them longer
        // would gain little.
        config
            .set("linger.ms", "5")
            .set("enable.idempotence", "false")
            .set("compression.type", "none");
        let producer: ThreadedProducer<DeliveryTracker> = config
            .create_with_context(DeliveryTracker::default())
            .map_err(|e| SinkError::Kafka {
                topic: String::new(),
                message: e.to_string(),
            })?;
        Ok(Self {
            producer: Arc::new(producer),
        })
    }

    fn tracker(&self) -> &DeliveryTracker {
        self.producer.context()
    }

    /// The mark after every message produced so far.
    pub fn sent_mark(&self) -> Result<DeliveryMark, SinkError> {
        Ok(self.tracker().ledger()?.sent_mark())
    }

    /// How far delivery has come: every message below this mark is on its
    /// topic. Does not wait.
    pub fn delivered_mark(&self) -> Result<DeliveryMark, SinkError> {
        Ok(self.tracker().ledger()?.delivered_mark())
    }

    /// Waits until every message produced so far is delivered (see
    /// [`Self::deliver_through`]).
    pub fn deliver_all(&self, timeout: Duration) -> Result<(), SinkError> {
        self.deliver_through(self.sent_mark()?, timeout)
    }

    /// Waits until every message below `mark` is delivered, producing the ones
    /// that failed again (after their pause) until `timeout`.
    ///
    /// `Ok(())`: all delivered. [`SinkError::DeliveryPending`]: some are not
    /// delivered yet (e.g. the broker is restarting); they are kept, call again
    /// later. [`SinkError::Kafka`]: a message failed permanently.
    pub fn deliver_through(&self, mark: DeliveryMark, timeout: Duration) -> Result<(), SinkError> {
        let deadline = Instant::now() + timeout;
        loop {
            let next_retry = self.retry_failed()?;
            let ledger = self.tracker().ledger()?;
            if ledger.delivered_mark() >= mark {
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(SinkError::DeliveryPending(format!(
                    "{} message(s) not delivered after {timeout:?}",
                    ledger.undelivered()
                )));
            }
            let wake = next_retry.map_or(deadline, |t| t.min(deadline));
            let wait = wake.saturating_duration_since(now).min(WAIT_SLICE);
            // The ledger changes under its lock and is signalled after, so
            // no delivery is missed between the look above and this wait.
            drop(
                self.tracker()
                    .changed
                    .wait_timeout(ledger, wait)
                    .map_err(|_| SinkError::Config("delivery ledger lock poisoned".into()))?,
            );
        }
    }

    /// Produces again the failed messages whose pause is over, without
    /// waiting; returns when the next of the others is due.
    ///
    /// [`SinkError::Kafka`]: a message failed permanently or too often (it
    /// would be lost; the caller stops).
    pub fn retry_failed(&self) -> Result<Option<Instant>, SinkError> {
        let failed = match self.tracker().failed.lock() {
            Ok(list) if list.is_empty() => return Ok(None),
            Ok(mut list) => std::mem::take(&mut *list),
            Err(_) => return Err(SinkError::Config("delivery list lock poisoned".into())),
        };
        if let Some(f) = failed
            .iter()
            .find(|f| f.permanent || f.attempts >= MAX_DELIVERY_ATTEMPTS)
        {
            return Err(SinkError::Kafka {
                topic: f.topic.clone(),
                message: format!("delivery failed {} time(s): {}", f.attempts, f.error),
            });
        }
        let now = Instant::now();
        let (due, later): (Vec<_>, Vec<_>) = failed.into_iter().partition(|f| f.retry_at <= now);
        if let Some(first) = due.first() {
            eprintln!(
                "routeproof: {} delivery(ies) failed (e.g. {}), producing them again",
                due.len(),
                first.error
            );
        }
        let next_retry = later.iter().map(|f| f.retry_at).min();
        self.keep_failed(later)?;
        let mut due = due.into_iter();
        while let Some(f) = due.next() {
            if let Err(e) = self.resend(&f) {
                // Keep this one and the rest for the next call.
                self.keep_failed(std::iter::once(f).chain(due))?;
                return Err(e);
            }
        }
        Ok(next_retry)
    }

    fn keep_failed(
        &self,
        failed: impl IntoIterator<Item = FailedDelivery>,
    ) -> Result<(), SinkError> {
        match self.tracker().failed.lock() {
            Ok(mut list) => {
                list.extend(failed);
                Ok(())
            }
            Err(_) => Err(SinkError::Config("delivery list lock poisoned".into())),
        }
    }

    fn resend(&self, f: &FailedDelivery) -> Result<(), SinkError> {
        let attempt = Box::new(Attempt {
            seq: f.seq,
            earlier: f.attempts,
        });
        let mut record: BaseRecord<'_, [u8], [u8], Box<Attempt>> =
            BaseRecord::with_opaque_to(&f.topic, attempt).payload(&f.payload[..]);
        if let Some(key) = &f.key {
            record = record.key(&key[..]);
        }
        if let Some(h) = &f.headers {
            record = record.headers(h.clone());
        }
        self.enqueue(&f.topic, record)
    }

    /// Messages delivered so far.
    pub fn delivered(&self) -> u64 {
        self.tracker().delivered.load(Ordering::Relaxed)
    }

    /// Produces one message; returns the mark just after it.
    fn send(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        payload: &[u8],
        headers: Option<OwnedHeaders>,
    ) -> Result<DeliveryMark, SinkError> {
        let seq = self.tracker().ledger()?.assign();
        let mut record: BaseRecord<'_, [u8], [u8], Box<Attempt>> =
            BaseRecord::with_opaque_to(topic, Box::new(Attempt { seq, earlier: 0 }))
                .payload(payload);
        if let Some(key) = key {
            record = record.key(key);
        }
        if let Some(h) = headers {
            record = record.headers(h);
        }
        match self.enqueue(topic, record) {
            Ok(()) => Ok(DeliveryMark::after(seq)),
            Err(e) => {
                // Never handed over: nothing to wait for.
                self.tracker().ledger()?.delivered(seq);
                Err(e)
            }
        }
    }

    /// Hands `record` to librdkafka, waiting while its queue is full.
    fn enqueue(
        &self,
        topic: &str,
        mut record: BaseRecord<'_, [u8], [u8], Box<Attempt>>,
    ) -> Result<(), SinkError> {
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => {
                    return Err(SinkError::Kafka {
                        topic: topic.to_string(),
                        message: e.to_string(),
                    })
                }
            }
        }
    }
}

/// Produces alerts to a topic, keyed by fingerprint.
#[derive(Debug)]
pub struct KafkaAlertSink {
    producer: SharedProducer,
    topic: String,
    buf: Vec<u8>,
    /// The mark after the last alert produced.
    mark: DeliveryMark,
}

impl KafkaAlertSink {
    /// Alerts to `topic`.
    pub fn new(producer: SharedProducer, topic: impl Into<String>) -> Self {
        Self {
            producer,
            topic: topic.into(),
            buf: Vec::with_capacity(1024),
            mark: DeliveryMark::default(),
        }
    }
}

impl AlertSink for KafkaAlertSink {
    fn send(&mut self, alert: &Alert) -> Result<(), SinkError> {
        self.buf.clear();
        serde_json::to_writer(&mut self.buf, alert)?;
        self.mark = self.producer.send(
            &self.topic,
            Some(alert.fingerprint.as_bytes()),
            &self.buf,
            None,
        )?;
        Ok(())
    }

    /// Waits until the alerts this sink produced are delivered.
    fn flush(&mut self) -> Result<(), SinkError> {
        self.producer.deliver_through(self.mark, FLUSH_TIMEOUT)
    }
}

/// How long a sink's `flush` waits for deliveries before it reports
/// [`SinkError::DeliveryPending`] (the caller tries again later).
pub const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Produces dead letters to a topic.
#[derive(Debug)]
pub struct KafkaDeadLetterSink {
    producer: SharedProducer,
    topic: String,
    max_raw_bytes: usize,
    redaction: Redaction,
    buf: Vec<u8>,
    sent: u64,
    /// The mark after the last dead letter produced.
    mark: DeliveryMark,
}

impl KafkaDeadLetterSink {
    /// Dead letters to `topic`, keeping at most `max_raw_bytes` of each record.
    pub fn new(producer: SharedProducer, topic: impl Into<String>, max_raw_bytes: usize) -> Self {
        Self {
            producer,
            topic: topic.into(),
            max_raw_bytes,
            redaction: Redaction::default(),
            buf: Vec::with_capacity(1024),
            sent: 0,
            mark: DeliveryMark::default(),
        }
    }

    /// Masks what `redaction` recognises (instead of [`Redaction::default`]).
    pub fn with_redaction(mut self, redaction: Redaction) -> Self {
        self.redaction = redaction;
        self
    }

    /// Dead letters sent.
    pub fn sent(&self) -> u64 {
        self.sent
    }
}

impl DeadLetterSink for KafkaDeadLetterSink {
    fn redaction(&self) -> &Redaction {
        &self.redaction
    }

    fn send(&mut self, dead_letter: &DeadLetter) -> Result<(), SinkError> {
        self.buf.clear();
        serde_json::to_writer(&mut self.buf, dead_letter)?;
        let mut headers = OwnedHeaders::new().insert(Header {
            key: HEADER_REASON,
            value: Some(dead_letter.reason),
        });
        if let DeadLetterSource::Kafka {
            topic,
            partition,
            offset,
        } = &dead_letter.source
        {
            headers = headers
                .insert(Header {
                    key: HEADER_SOURCE_TOPIC,
                    value: Some(topic.as_str()),
                })
                .insert(Header {
                    key: HEADER_SOURCE_PARTITION,
                    value: Some(&partition.to_string()),
                })
                .insert(Header {
                    key: HEADER_SOURCE_OFFSET,
                    value: Some(&offset.to_string()),
                });
        }
        self.mark = self
            .producer
            .send(&self.topic, None, &self.buf, Some(headers))?;
        self.sent += 1;
        Ok(())
    }

    /// Waits until the dead letters this sink produced are delivered (at
    /// once when it produced none since the last flush).
    fn flush(&mut self) -> Result<(), SinkError> {
        self.producer.deliver_through(self.mark, FLUSH_TIMEOUT)
    }

    fn max_raw_bytes(&self) -> usize {
        self.max_raw_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ledger_marks_follow_the_lowest_undelivered_message() {
        let mut ledger = DeliveryLedger::default();
        assert_eq!(ledger.delivered_mark(), DeliveryMark::default());
        let a = ledger.assign();
        let b = ledger.assign();
        let c = ledger.assign();
        let after_c = ledger.sent_mark();
        assert_eq!(after_c, DeliveryMark::after(c));
        // Out of order: c and a delivered, b (e.g. failed and produced again) not.
        ledger.delivered(c);
        assert_eq!(ledger.delivered_mark(), DeliveryMark(a));
        ledger.delivered(a);
        assert_eq!(ledger.delivered_mark(), DeliveryMark(b));
        assert!(ledger.delivered_mark() < after_c);
        assert!(ledger.delivered_mark() >= DeliveryMark::after(a));
        assert_eq!(ledger.undelivered(), 1);
        ledger.delivered(b);
        assert_eq!(ledger.delivered_mark(), after_c);
        assert_eq!(ledger.undelivered(), 0);
        // A mark taken later is not passed before its own messages.
        let d = ledger.assign();
        assert!(ledger.delivered_mark() < ledger.sent_mark());
        ledger.delivered(d);
        assert_eq!(ledger.delivered_mark(), ledger.sent_mark());
    }

    #[test]
    fn nothing_produced_means_nothing_to_wait_for() {
        let ledger = DeliveryLedger::default();
        assert!(ledger.delivered_mark() >= DeliveryMark::default());
        assert_eq!(ledger.sent_mark(), DeliveryMark::default());
    }

    #[test]
    fn retry_pause_grows_and_is_capped() {
        assert_eq!(retry_pause(1), Duration::from_millis(250));
        assert_eq!(retry_pause(4), Duration::from_secs(1));
        assert_eq!(retry_pause(20), Duration::from_secs(5));
        assert_eq!(retry_pause(MAX_DELIVERY_ATTEMPTS), Duration::from_secs(5));
        let total: Duration = (1..MAX_DELIVERY_ATTEMPTS).map(retry_pause).sum();
        assert!(total > Duration::from_secs(90) && total < Duration::from_secs(150));
    }
}
