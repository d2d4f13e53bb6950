//! Kafka producers for `routeproof run`: alerts (JSON, schema v1, keyed by
//! fingerprint so a compacted topic keeps each condition's latest state) and
//! dead letters (JSON, schema v1; reason and source in headers).
//!
//! Both share one [`ThreadedProducer`]. Delivery is at least once: a message
//! whose delivery fails with a transient error (the broker is restarting or
//! unreachable, an unknown server error, a timeout) is kept and produced again
//! by the next [`SharedProducer::deliver_all`], which the workers call before
//! they publish a group's Parquet files and the consumer loop calls before it
//! commits offsets. So a record's dead letter is on its topic before the record
//! counts as done, and a broker restart loses no alert or dead letter. Only a
//! permanent error (message too large, not authorised, invalid record) or a
//! message failing [`MAX_DELIVERY_ATTEMPTS`] times is reported as a failure.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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
/// failure counts as permanent (with the back-off of
/// [`SharedProducer::deliver_all`], about two minutes of failures).
pub const MAX_DELIVERY_ATTEMPTS: usize = 30;

/// A message whose delivery failed, kept to be produced again.
#[derive(Debug)]
struct FailedDelivery {
    topic: String,
    key: Option<Vec<u8>>,
    payload: Vec<u8>,
    headers: Option<OwnedHeaders>,
    /// Attempts so far (the delivery opaque of the failed attempt).
    attempts: usize,
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

/// Counts deliveries and keeps the messages that failed (a rare path: nothing
/// is copied for a delivered message).
#[derive(Debug, Default)]
pub struct DeliveryTracker {
    failed: Mutex<Vec<FailedDelivery>>,
    delivered: AtomicU64,
}

impl ClientContext for DeliveryTracker {}

impl ProducerContext for DeliveryTracker {
    /// The number of earlier attempts of this message.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, attempts: usize) {
        match result {
            Ok(_) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, message)) => {
                let failed = FailedDelivery {
                    topic: message.topic().to_string(),
                    key: message.key().map(<[u8]>::to_vec),
                    payload: message.payload().unwrap_or_default().to_vec(),
                    headers: message.headers().map(|h| h.detach()),
                    attempts: attempts + 1,
                    error: e.to_string(),
                    permanent: is_permanent(e),
                };
                if let Ok(mut list) = self.failed.lock() {
                    list.push(failed);
                }
            }
        }
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

impl SharedProducer {
    /// Creates the producer from a client configuration (brokers, TLS, SASL).
    pub fn new(mut config: ClientConfig) -> Result<Self, SinkError> {
        config
            .set("linger.ms", "20")
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

    /// Waits until every message produced so far is delivered, producing the
    /// ones that failed again (with a growing pause) until `timeout`.
    ///
    /// `Ok(())`: all delivered. [`SinkError::DeliveryPending`]: some are not
    /// delivered yet (e.g. the broker is restarting); they are kept, call again
    /// later. [`SinkError::Kafka`]: a message failed permanently.
    pub fn deliver_all(&self, timeout: Duration) -> Result<(), SinkError> {
        let deadline = Instant::now() + timeout;
        let mut round = 0u32;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if self.producer.flush(remaining).is_err() {
                return Err(SinkError::DeliveryPending(format!(
                    "{} message(s) in flight after {timeout:?}",
                    self.producer.in_flight_count()
                )));
            }
            let failed = match self.producer.context().failed.lock() {
                Ok(mut list) => std::mem::take(&mut *list),
                Err(_) => return Err(SinkError::Config("delivery list lock poisoned".into())),
            };
            if failed.is_empty() {
                return Ok(());
            }
            if let Some(f) = failed
                .iter()
                .find(|f| f.permanent || f.attempts >= MAX_DELIVERY_ATTEMPTS)
            {
                return Err(SinkError::Kafka {
                    topic: f.topic.clone(),
                    message: format!("delivery failed {} time(s): {}", f.attempts, f.error),
                });
            }
            eprintln!(
                "routeproof: {} delivery(ies) failed (e.g. {}), producing them again",
                failed.len(),
                failed[0].error
            );
            // A broker that answers with errors (e.g. while it shuts down)
            // fails every attempt at once: pause before trying again.
            round += 1;
            let pause = Duration::from_millis(250 * u64::from(round.min(20)));
            std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
            let mut failed = failed.into_iter();
            while let Some(f) = failed.next() {
                if let Err(e) = self.resend(&f) {
                    // Keep this one and the rest for the next call.
                    if let Ok(mut list) = self.producer.context().failed.lock() {
                        list.push(f);
                        list.extend(failed);
                    }
                    return Err(e);
                }
            }
            if Instant::now() >= deadline {
                return Err(SinkError::DeliveryPending(
                    "deliveries failed and were produced again".into(),
                ));
            }
        }
    }

    fn resend(&self, f: &FailedDelivery) -> Result<(), SinkError> {
        let mut record: BaseRecord<'_, [u8], [u8], usize> =
            BaseRecord::with_opaque_to(&f.topic, f.attempts).payload(&f.payload[..]);
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
        self.producer.context().delivered.load(Ordering::Relaxed)
    }

    fn send(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        payload: &[u8],
        headers: Option<OwnedHeaders>,
    ) -> Result<(), SinkError> {
        let mut record: BaseRecord<'_, [u8], [u8], usize> =
            BaseRecord::with_opaque_to(topic, 0).payload(payload);
        if let Some(key) = key {
            record = record.key(key);
        }
        if let Some(h) = headers {
            record = record.headers(h);
        }
        self.enqueue(topic, record)
    }

    /// Hands `record` to librdkafka, waiting while its queue is full.
    fn enqueue(
        &self,
        topic: &str,
        mut record: BaseRecord<'_, [u8], [u8], usize>,
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
}

impl KafkaAlertSink {
    /// Alerts to `topic`.
    pub fn new(producer: SharedProducer, topic: impl Into<String>) -> Self {
        Self {
            producer,
            topic: topic.into(),
            buf: Vec::with_capacity(1024),
        }
    }
}

impl AlertSink for KafkaAlertSink {
    fn send(&mut self, alert: &Alert) -> Result<(), SinkError> {
        self.buf.clear();
        serde_json::to_writer(&mut self.buf, alert)?;
        self.producer.send(
            &self.topic,
            Some(alert.fingerprint.as_bytes()),
            &self.buf,
            None,
        )
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.producer.deliver_all(FLUSH_TIMEOUT)
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
        self.producer
            .send(&self.topic, None, &self.buf, Some(headers))?;
        self.sent += 1;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.producer.deliver_all(FLUSH_TIMEOUT)
    }

    fn max_raw_bytes(&self) -> usize {
        self.max_raw_bytes
    }
}
