//! Kafka producers for `routeproof run`: alerts (JSON, schema v1, keyed by
//! fingerprint so a compacted topic keeps each condition's latest state) and
//! dead letters (JSON, schema v1; reason and source in headers).
//!
//! Both share one [`ThreadedProducer`]. Delivery is at least once: the consumer
//! loop calls [`SharedProducer::flush`] before it commits offsets and does not
//! commit when a delivery failed since the last check.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;

use super::alerts::{Alert, AlertSink};
use super::deadletter::{DeadLetter, DeadLetterSink, DeadLetterSource};
use super::SinkError;

/// Header carrying the dead letter's reason code.
pub const HEADER_REASON: &str = "routeproof.reason";
/// Header carrying the source topic.
pub const HEADER_SOURCE_TOPIC: &str = "routeproof.source.topic";
/// Header carrying the source partition (decimal).
pub const HEADER_SOURCE_PARTITION: &str = "routeproof.source.partition";
/// Header carrying the source offset (decimal).
pub const HEADER_SOURCE_OFFSET: &str = "routeproof.source.offset";

/// Counts failed deliveries.
#[derive(Debug, Default)]
pub struct DeliveryTracker {
    failed: AtomicU64,
    delivered: AtomicU64,
}

impl ClientContext for DeliveryTracker {}

impl ProducerContext for DeliveryTracker {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _opaque: Self::DeliveryOpaque) {
        match result {
            Ok(_) => self.delivered.fetch_add(1, Ordering::Relaxed),
            Err((e, _)) => {
                eprintln!("routeproof: delivery failed: {e}");
                self.failed.fetch_add(1, Ordering::Relaxed)
            }
        };
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

    /// Waits until every message produced so far is delivered or failed; returns
    /// the number of failed deliveries since the producer started.
    pub fn flush(&self, timeout: Duration) -> Result<u64, SinkError> {
        self.producer.flush(timeout).map_err(|e| SinkError::Kafka {
            topic: String::new(),
            message: format!("flush: {e}"),
        })?;
        Ok(self.producer.context().failed.load(Ordering::Relaxed))
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
        let mut record: BaseRecord<'_, [u8], [u8], ()> = BaseRecord::to(topic).payload(payload);
        if let Some(key) = key {
            record = record.key(key);
        }
        if let Some(h) = headers {
            record = record.headers(h);
        }
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
        self.producer.flush(Duration::from_secs(30)).map(|_| ())
    }
}

/// Produces dead letters to a topic.
#[derive(Debug)]
pub struct KafkaDeadLetterSink {
    producer: SharedProducer,
    topic: String,
    max_raw_bytes: usize,
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
            buf: Vec::with_capacity(1024),
            sent: 0,
        }
    }

    /// Dead letters sent.
    pub fn sent(&self) -> u64 {
        self.sent
    }
}

impl DeadLetterSink for KafkaDeadLetterSink {
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
        self.producer.flush(Duration::from_secs(30)).map(|_| ())
    }

    fn max_raw_bytes(&self) -> usize {
        self.max_raw_bytes
    }
}
