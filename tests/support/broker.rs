//! Helpers for tests against a real Kafka-compatible broker (tansu in CI):
//! topics, producing, consuming, and reading the Parquet output back.
//!
//! Each test binary uses a subset, hence the `dead_code` allowance where it
//! is included.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use arrow_array::{Array, BooleanArray, Int32Array, Int64Array, ListArray, StringArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

/// The broker address from `ROUTEPROOF_TEST_BROKERS` (`.ci/run` sets it);
/// unset: the test says so and should return.
pub fn brokers() -> Option<String> {
    let brokers = std::env::var("ROUTEPROOF_TEST_BROKERS").ok();
    if brokers.is_none() {
        eprintln!("ROUTEPROOF_TEST_BROKERS is not set: skipping this broker test");
    }
    brokers
}

/// A name unique to this process and moment (topics, groups).
pub fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos();
    format!("{name}-{}-{}", std::process::id(), nanos % 1_000_000_000)
}

/// Creates `topic` with `partitions` partitions.
pub fn create_topic(brokers: &str, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("admin client");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let res = rt
        .block_on(admin.create_topics([&new], &AdminOptions::new()))
        .expect("create topics");
    for r in res {
        if let Err((t, e)) = r {
            panic!("create topic {t}: {e}");
        }
    }
}

/// Creates `topic` with `partitions` partitions, and its alert and dead-letter
/// topics `<topic>-alerts` and `<topic>-dead` (one partition each).
pub fn create_topics(brokers: &str, topic: &str, partitions: i32) {
    create_topic(brokers, topic, partitions);
    create_topic(brokers, &format!("{topic}-alerts"), 1);
    create_topic(brokers, &format!("{topic}-dead"), 1);
}

/// The `[kafka]`, `[alerts]` and `[dead_letters]` sections of a `run` config
/// consuming `topic` in a fresh consumer group, with the topics of
/// [`create_topics`].
pub fn kafka_sections(brokers: &str, topic: &str) -> String {
    format!(
        r#"
[kafka]
brokers = "{brokers}"
group_id = "{group}"
topics = ["{topic}"]
session_timeout_ms = 6000

[alerts]
topic = "{topic}-alerts"

[dead_letters]
topic = "{topic}-dead"
"#,
        group = unique("g"),
    )
}

/// Produces `payloads` round-robin over `partitions` partitions and flushes.
///
/// One record per batch: tansu 0.6.0 answers a fetch from an offset inside
/// a record batch with the *next* batch (Kafka returns the batch containing
/// the offset and the client skips the records before it), so a consumer that
/// resumes mid-batch would silently lose the batch's remaining records (seen:
/// a seek to 1500 delivered 2424 first). With single-record batches every
/// offset starts a batch. Real Kafka needs no such care.
pub fn produce(
    brokers: &str,
    topic: &str,
    partitions: i32,
    payloads: impl Iterator<Item = Vec<u8>>,
) {
    let producer: ThreadedProducer<_> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("batch.num.messages", "1")
        .set("linger.ms", "0")
        .set("message.timeout.ms", "120000")
        .create()
        .expect("producer");
    for (i, payload) in payloads.enumerate() {
        send_queued(&producer, topic, (i as i32) % partitions, &payload);
    }
    producer.flush(Duration::from_secs(120)).expect("flush");
}

/// Queues one record for `partition`, waiting while the producer's queue is full.
pub fn send_queued<C: ProducerContext<DeliveryOpaque = ()> + 'static>(
    producer: &ThreadedProducer<C>,
    topic: &str,
    partition: i32,
    payload: &[u8],
) {
    let mut record = BaseRecord::<(), [u8]>::to(topic)
        .payload(payload)
        .partition(partition);
    while let Err((_, r)) = producer.send(record) {
        record = r;
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Key, value and headers of a consumed message.
pub type Consumed = (Option<Vec<u8>>, Vec<u8>, BTreeMap<String, String>);

/// Every message of `topic` (all partitions, from the beginning) until
/// `expected` arrived or `timeout` passed.
pub fn consume_all(
    brokers: &str,
    topic: &str,
    expected: usize,
    timeout: Duration,
) -> Vec<Consumed> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", unique("check"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let md = c
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let mut tpl = TopicPartitionList::new();
    for t in md.topics() {
        for p in t.partitions() {
            tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
                .expect("partition");
        }
    }
    c.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let deadline = Instant::now() + timeout;
    while out.len() < expected && Instant::now() < deadline {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
            let mut headers = BTreeMap::new();
            if let Some(h) = m.headers() {
                for hd in h.iter() {
                    headers.insert(
                        hd.key.to_string(),
                        String::from_utf8_lossy(hd.value.unwrap_or_default()).into_owned(),
                    );
                }
            }
            out.push((
                m.key().map(<[u8]>::to_vec),
                m.payload().unwrap_or_default().to_vec(),
                headers,
            ));
        }
    }
    out
}

/// The published Parquet files under `dir` (not the hidden in-progress ones).
pub fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "parquet")
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The values of `columns` in every row under `dir`, as text (`None` for
/// null); string, int32, int64 and boolean columns, and lists of them
/// (`[a, b]`).
pub fn read_columns(dir: &Path, columns: &[&str]) -> Vec<Vec<Option<String>>> {
    let mut rows = Vec::new();
    for p in parquet_files(dir) {
        let file = std::fs::File::open(&p).expect("open parquet");
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .expect("parquet footer")
            .build()
            .expect("reader");
        for batch in reader {
            let batch = batch.expect("batch");
            let arrays: Vec<&dyn Array> = columns
                .iter()
                .map(|c| {
                    batch
                        .column_by_name(c)
                        .unwrap_or_else(|| panic!("no column {c}"))
                        .as_ref()
                })
                .collect();
            for i in 0..batch.num_rows() {
                rows.push(arrays.iter().map(|a| cell(*a, i)).collect());
            }
        }
    }
    rows
}

fn cell(a: &dyn Array, i: usize) -> Option<String> {
    if a.is_null(i) {
        return None;
    }
    let any = a.as_any();
    if let Some(s) = any.downcast_ref::<StringArray>() {
        return Some(s.value(i).to_string());
    }
    if let Some(v) = any.downcast_ref::<Int32Array>() {
        return Some(v.value(i).to_string());
    }
    if let Some(v) = any.downcast_ref::<Int64Array>() {
        return Some(v.value(i).to_string());
    }
    if let Some(v) = any.downcast_ref::<BooleanArray>() {
        return Some(v.value(i).to_string());
    }
    if let Some(v) = any.downcast_ref::<ListArray>() {
        let items = v.value(i);
        let texts: Vec<String> = (0..items.len())
            .map(|j| cell(items.as_ref(), j).unwrap_or_else(|| "null".into()))
            .collect();
        return Some(format!("[{}]", texts.join(", ")));
    }
    panic!("unsupported column type {:?}", a.data_type())
}
