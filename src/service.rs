//! `routeproof run`: the long-running service wiring the Kafka source, the
//! per-record pipeline on worker threads, exactly-once Parquet output, the alert
//! topic and dead letters.
//!
//! # Threads
//!
//! - The **consumer loop** (the calling thread) reads messages many at a time
//!   from one [`MessageQueue`] per worker, which each assigned partition is
//!   routed to (so a full worker leaves its messages in librdkafka, bounded
//!   by its pre-fetch limit, while the others keep being fed), polls the
//!   consumer for events, copies messages into per-partition
//!   [`MessageBatch`]es and hands each to the worker that owns the partition
//!   over a bounded queue. A batch for a full queue waits (and that worker's
//!   message queue is not read) until there is room: backpressure that does
//!   not starve the other workers. It also runs the rebalance callbacks,
//!   commits offsets and logs lag.
//! - **Workers** (`pipeline.workers`) each own a [`RecordProcessor`], an
//!   [`AlertAggregator`] and the [`PartitionWriter`]s of their partitions
//!   (a partition always goes to the same worker), so the hot path takes no lock.
//!   When a writer rolls, its group is sealed; once the group's alerts and
//!   dead letters are delivered its files are published and the worker
//!   reports the offset to commit.
//!
//! # Rebalances and shutdown
//!
//! On revocation (and on SIGTERM/SIGINT, for every partition), pending batches
//! of the revoked partitions are handed over, their workers roll and drop the
//! writers, and the consumer loop commits the resulting offsets synchronously
//! before the partitions are released. On assignment, the resume offset of each
//! partition is computed from storage (see [`crate::sink::kafka_files`]) and
//! the partitions are assigned at those offsets. The workers' alert
//! aggregators are handles on one aggregation, so a condition seen on several
//! partitions is one alert with one count.
//!
//! # Route index
//!
//! Every record is judged against the snapshot of the live [`IndexHistory`]
//! in force at its event time (fed by the Kubernetes watchers or the manifest
//! poller, see [`crate::kube`]). The caller starts consuming only once the
//! history is ready, so no record is judged against an empty index.
//! Config-audit alerts of the history's publisher arrive on a channel and are
//! produced to the alert topic by a forwarding thread.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::ClientContext;

use crate::config::Config;
use crate::kube::IndexHistory;
use crate::pipeline::{Origin, Outputs, PipelineOptions, RecordProcessor};
use crate::sink::alerts::{Alert, AlertAggregator, AlertSink, QuietClock};
use crate::sink::deadletter::{DeadLetterFileSink, DeadLetterSink};
use crate::sink::kafka::{
    DeliveryMark, KafkaAlertSink, KafkaDeadLetterSink, SharedProducer, FLUSH_TIMEOUT,
};
use crate::sink::kafka_files::{recover_partition, PartitionWriter, RollLimits};
use crate::sink::object_store::OutputStore;
use crate::sink::parquet::{ChunkEncoders, ParquetSinkConfig};
use crate::sink::SinkError;
use crate::source::kafka::{
    client_config, consumer_config, BatchReturn, Batcher, LagTracker, MessageBatch, TopicPartition,
};
use crate::source::message_queue::{Fetched, FetchedMessages, MessageQueue};
use crate::source::resume_check::ResumeCheck;

/// Errors of the service.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A sink failed.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// The Kafka client failed.
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    /// A worker or the rebalance handling failed.
    #[error("{0}")]
    Failed(String),
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    /// Messages consumed.
    pub messages: u64,
    /// Enriched records written.
    pub records: u64,
    /// Dead letters.
    pub dead_letters: u64,
    /// Alert messages produced.
    pub alerts: u64,
    /// Parquet files published.
    pub files: u64,
    /// Offset commits made.
    pub commits: u64,
    /// Partitions whose first message after an assignment came after the
    /// resume offset (records the broker did not deliver; see
    /// [`crate::source::resume_check`]).
    pub resume_gaps: u64,
    /// Messages read one per `poll` rather than in batches from the message
    /// queue (their partition could not be routed to it): 0 normally.
    pub polled_messages: u64,
}

struct Counters {
    resume_gaps: AtomicU64,
    records: AtomicU64,
    dead_letters: AtomicU64,
    alerts: AtomicU64,
    files: AtomicU64,
    commits: AtomicU64,
    polled_messages: AtomicU64,
    /// When the service started; the moments below count from it.
    started: Instant,
    /// µs from `started` to the first message read (0: none yet).
    first_message_us: AtomicU64,
    /// µs from `started` to the end of the last batch processed.
    last_record_us: AtomicU64,
    /// µs from `started` to the last file published.
    last_file_us: AtomicU64,
}

impl Counters {
    fn new() -> Self {
        Self {
            resume_gaps: AtomicU64::new(0),
            records: AtomicU64::new(0),
            dead_letters: AtomicU64::new(0),
            alerts: AtomicU64::new(0),
            files: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            polled_messages: AtomicU64::new(0),
            started: Instant::now(),
            first_message_us: AtomicU64::new(0),
            last_record_us: AtomicU64::new(0),
            last_file_us: AtomicU64::new(0),
        }
    }

    /// µs from the start of the service to `at` (at least 1, so that 0 can
    /// mean "not yet").
    fn since_start_us(&self, at: Instant) -> u64 {
        let us = at.saturating_duration_since(self.started).as_micros();
        u64::try_from(us).unwrap_or(u64::MAX).max(1)
    }

    /// The run's timeline for the stop summary: when the first message was
    /// read, the last record processed and the last file published. The span
    /// from the first message to the last record is the processing rate
    /// without group join and start-up before it, nor the wait for the last
    /// files' age roll after it.
    fn timeline(&self) -> String {
        let secs = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64 / 1e6;
        let (first, last) = (secs(&self.first_message_us), secs(&self.last_record_us));
        let records = self.records.load(Ordering::Relaxed);
        let rate = if last > first && first > 0.0 {
            format!("{:.0}", records as f64 / (last - first))
        } else {
            "-".into()
        };
        format!(
            "timeline since start: first_message_read={first:.3}s last_record_processed={last:.3}s \
             last_file_published={:.3}s; {records} records from the first message read to the last \
             record processed = {rate} records/s",
            secs(&self.last_file_us)
        )
    }
}

type FinishAck = Result<Vec<(TopicPartition, Option<i64>)>, String>;

/// Why offsets were not committed.
#[derive(Debug)]
enum CommitError {
    /// Try again later.
    Retry(String),
    /// Stop the service.
    Fatal(String),
}

impl std::fmt::Display for CommitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CommitError::Retry(m) => write!(f, "{m} (will retry)"),
            CommitError::Fatal(m) => f.write_str(m),
        }
    }
}

/// How long sealed groups wait for deliveries before their worker says so
/// (once; e.g. the broker is away).
const DELIVERY_WAIT_WARN: Duration = Duration::from_secs(10);

enum WorkerMsg {
    Batch(MessageBatch),
    Finish {
        partitions: Vec<TopicPartition>,
        /// Drop the writers without publishing (the assignment was lost).
        discard: bool,
        ack: SyncSender<FinishAck>,
    },
}

/// State shared by the consumer loop and the rebalance callbacks.
struct Coordinator {
    workers: Vec<SyncSender<WorkerMsg>>,
    /// Per worker, batches that were due while its queue was full, in order;
    /// they go before anything else sent to that worker.
    stalled: Mutex<Vec<VecDeque<MessageBatch>>>,
    batcher: Mutex<Batcher>,
    assigned: Mutex<HashSet<TopicPartition>>,
    store: Arc<OutputStore>,
    failure: Arc<Failure>,
    counters: Arc<Counters>,
    lag: Mutex<LagTracker>,
    /// Resume offsets awaiting their first message.
    resume: ResumeCheck,
    log: bool,
}

fn log(msg: std::fmt::Arguments<'_>) {
    if std::env::var_os("ROUTEPROOF_QUIET").is_none() {
        eprintln!("routeproof: {msg}");
    }
}

/// Where one thread of the service spent its time, by activity: logged when
/// the thread ends, so a slow run shows whether the workers waited for
/// messages (the broker or the consumer loop is the limit), worked, or were
/// publishing files, and whether the consumer loop waited for full workers.
/// Activities are indices into a fixed list; the last one, the rest of the
/// thread's life, is derived at the end, so busy loops read the clock only
/// around the activities they time.
struct ThreadTimes {
    thread: String,
    started: Instant,
    activities: &'static [&'static str],
    spent: Vec<Duration>,
}

impl ThreadTimes {
    /// `activities`: the timed ones, then the name of the rest.
    fn new(thread: String, activities: &'static [&'static str]) -> Self {
        Self {
            thread,
            started: Instant::now(),
            activities,
            spent: vec![Duration::ZERO; activities.len()],
        }
    }

    /// Adds the time since `since` to activity `index`; returns now.
    fn add(&mut self, index: usize, since: Instant) -> Instant {
        let now = Instant::now();
        if let Some(d) = self.spent.get_mut(index) {
            *d += now.saturating_duration_since(since);
        }
        now
    }

    fn report(&mut self) {
        let timed: Duration = self.spent.iter().rev().skip(1).sum();
        if let Some(rest) = self.spent.last_mut() {
            *rest = self.started.elapsed().saturating_sub(timed);
        }
        let parts: Vec<String> = self
            .activities
            .iter()
            .zip(&self.spent)
            .map(|(a, d)| format!("{a} {:.2}s", d.as_secs_f64()))
            .collect();
        let cpu = thread_cpu_time().map_or(String::new(), |t| {
            format!(" (on CPU {:.2}s)", t.as_secs_f64())
        });
        log(format_args!("{}: {}{cpu}", self.thread, parts.join(", ")));
    }
}

/// CPU time of the calling thread so far (Linux: `/proc/thread-self/schedstat`).
fn thread_cpu_time() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns = text.split_ascii_whitespace().next()?.parse::<u64>().ok()?;
    Some(Duration::from_nanos(ns))
}

/// The first fatal error, and the stop flag it sets.
struct Failure {
    message: Mutex<Option<String>>,
    stop: Arc<AtomicBool>,
}

impl Failure {
    fn fail(&self, why: String) {
        log(format_args!("error: {why}"));
        if let Ok(mut f) = self.message.lock() {
            f.get_or_insert(why);
        }
        self.stop.store(true, Ordering::SeqCst);
    }

    fn get(&self) -> Option<String> {
        self.message.lock().ok().and_then(|f| f.clone())
    }
}

impl Coordinator {
    fn fail(&self, why: String) {
        self.failure.fail(why);
    }

    fn failure(&self) -> Option<String> {
        self.failure.get()
    }

    fn stopping(&self) -> bool {
        self.failure.stop.load(Ordering::SeqCst)
    }

    fn worker_of(&self, topic: &str, partition: i32) -> usize {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in topic.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
        h = (h ^ u64::from(partition as u32)).wrapping_mul(0x100_0000_01b3);
        (h % self.workers.len() as u64) as usize
    }

    /// Hands worker `w`'s stalled batches over, blocking while its queue is
    /// full.
    fn drain_stalled(&self, w: usize) -> Result<(), String> {
        let stalled = match self.stalled.lock() {
            Ok(mut s) => s.get_mut(w).map(std::mem::take).unwrap_or_default(),
            Err(_) => return Err("stalled batches lock poisoned".into()),
        };
        let worker = self.workers.get(w).ok_or("no such worker")?;
        for batch in stalled {
            worker
                .send(WorkerMsg::Batch(batch))
                .map_err(|_| "worker stopped".to_string())?;
        }
        Ok(())
    }

    /// Sends `msg` to worker `w` after its stalled batches, blocking while
    /// its queue is full.
    fn send_to(&self, w: usize, msg: WorkerMsg) -> Result<(), String> {
        self.drain_stalled(w)?;
        let worker = self.workers.get(w).ok_or("no such worker")?;
        worker.send(msg).map_err(|_| "worker stopped".to_string())
    }

    /// Hands every stalled batch over, blocking while queues are full.
    fn flush_stalled(&self) -> Result<(), String> {
        (0..self.workers.len()).try_for_each(|w| self.drain_stalled(w))
    }

    /// Hands `batch` to its worker, blocking while the worker's queue is full.
    fn dispatch(&self, batch: MessageBatch) -> Result<(), String> {
        let w = self.worker_of(&batch.topic, batch.partition);
        self.send_to(w, WorkerMsg::Batch(batch))
    }

    /// Hands `batch` to its worker if its queue has room and nothing is
    /// stalled before it; otherwise it waits in the worker's stalled list.
    fn offer(&self, batch: MessageBatch) -> Result<(), String> {
        let w = self.worker_of(&batch.topic, batch.partition);
        let Ok(mut stalled) = self.stalled.lock() else {
            return Err("stalled batches lock poisoned".into());
        };
        let (Some(worker), Some(waiting)) = (self.workers.get(w), stalled.get_mut(w)) else {
            return Err("no such worker".into());
        };
        if !waiting.is_empty() {
            waiting.push_back(batch);
            return Ok(());
        }
        match worker.try_send(WorkerMsg::Batch(batch)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(WorkerMsg::Batch(batch))) => {
                waiting.push_back(batch);
                Ok(())
            }
            Err(_) => Err("worker stopped".into()),
        }
    }

    /// Hands over stalled batches while their workers have room; returns
    /// whether any went.
    fn retry_stalled(&self) -> Result<bool, String> {
        let Ok(mut stalled) = self.stalled.lock() else {
            return Err("stalled batches lock poisoned".into());
        };
        let mut sent = false;
        for (worker, waiting) in self.workers.iter().zip(stalled.iter_mut()) {
            while let Some(batch) = waiting.pop_front() {
                match worker.try_send(WorkerMsg::Batch(batch)) {
                    Ok(()) => sent = true,
                    Err(TrySendError::Full(WorkerMsg::Batch(batch))) => {
                        waiting.push_front(batch);
                        break;
                    }
                    Err(_) => return Err("worker stopped".into()),
                }
            }
        }
        Ok(sent)
    }

    /// Whether worker `w` has batches waiting for room (then its messages are
    /// left in its message queue, where they bound librdkafka's pre-fetch).
    fn is_stalled(&self, w: usize) -> bool {
        self.stalled
            .lock()
            .map(|s| s.get(w).is_some_and(|q| !q.is_empty()))
            .unwrap_or(false)
    }

    /// Hands over pending batches of `partitions`, rolls and drops their writers,
    /// returns the offsets to commit.
    fn finish(
        &self,
        partitions: &[TopicPartition],
        discard: bool,
    ) -> Result<Vec<(TopicPartition, i64)>, String> {
        let batches = match self.batcher.lock() {
            Ok(mut b) => b.take(partitions),
            Err(_) => return Err("batcher lock poisoned".into()),
        };
        for b in batches {
            self.dispatch(b)?;
        }
        let mut by_worker: BTreeMap<usize, Vec<TopicPartition>> = BTreeMap::new();
        for tp in partitions {
            by_worker
                .entry(self.worker_of(&tp.0, tp.1))
                .or_default()
                .push(tp.clone());
        }
        let mut acks = Vec::new();
        for (w, tps) in by_worker {
            let (tx, rx) = mpsc::sync_channel(1);
            self.send_to(
                w,
                WorkerMsg::Finish {
                    partitions: tps,
                    discard,
                    ack: tx,
                },
            )?;
            acks.push(rx);
        }
        let mut out = Vec::new();
        for rx in acks {
            let done = rx.recv().map_err(|_| "worker stopped".to_string())??;
            out.extend(done.into_iter().filter_map(|(tp, o)| o.map(|o| (tp, o))));
        }
        Ok(out)
    }

    /// Commits `offsets`, which workers reported after publishing the files
    /// of the records below them (and so after delivering those records'
    /// alerts and dead letters).
    ///
    /// A failed commit (e.g. the broker is restarting) is
    /// [`CommitError::Retry`]: files on storage stay the source of truth, so a
    /// late or missing commit never loses or duplicates a row.
    fn commit<C: ConsumerContext>(
        &self,
        consumer: &BaseConsumer<C>,
        offsets: &[(TopicPartition, i64)],
        mode: CommitMode,
    ) -> Result<(), CommitError> {
        if offsets.is_empty() {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        for ((topic, partition), offset) in offsets {
            tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset))
                .map_err(|e| CommitError::Fatal(e.to_string()))?;
        }
        consumer
            .commit(&tpl, mode)
            .map_err(|e| CommitError::Retry(format!("commit: {e}")))?;
        self.counters.commits.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn on_revoke<C: ConsumerContext>(&self, consumer: &BaseConsumer<C>, tpl: &TopicPartitionList) {
        let tps = self.partitions_of(tpl);
        if tps.is_empty() {
            return;
        }
        if self.log {
            log(format_args!("revoked {}", describe(&tps)));
        }
        for (topic, partition) in &tps {
            self.resume.forget(topic, *partition);
        }
        if self.failure().is_some() {
            // After a failure nothing more is published or committed: a restart
            // recovers from storage.
            return;
        }
        // A lost assignment (session timed out) may already belong to another
        // instance: drop the writers' unpublished files instead of publishing.
        let lost = consumer.assignment_lost();
        if lost {
            log(format_args!(
                "assignment lost: discarding unpublished rows of {}",
                describe(&tps)
            ));
        }
        let result = self.finish(&tps, lost).and_then(|offsets| {
            if lost {
                return Ok(());
            }
            match self.commit(consumer, &offsets, CommitMode::Sync) {
                Ok(()) => Ok(()),
                Err(CommitError::Retry(e)) => {
                    // The next owner resumes from storage anyway.
                    log(format_args!("commit on revoke failed: {e}"));
                    Ok(())
                }
                Err(CommitError::Fatal(e)) => Err(e),
            }
        });
        if let Ok(mut a) = self.assigned.lock() {
            for tp in &tps {
                a.remove(tp);
            }
        }
        if let Ok(mut lag) = self.lag.lock() {
            lag.forget(&tps);
        }
        if let Err(e) = result {
            self.fail(format!("revoking {}: {e}", describe(&tps)));
        }
    }

    fn on_assign<C: ConsumerContext>(
        &self,
        consumer: &BaseConsumer<C>,
        tpl: &mut TopicPartitionList,
    ) {
        let tps = self.partitions_of(tpl);
        if tps.is_empty() {
            return;
        }
        let committed = consumer.committed_offsets(tpl.clone(), Duration::from_secs(30));
        let committed: HashMap<TopicPartition, i64> = match committed {
            Ok(list) => list
                .elements()
                .iter()
                .filter_map(|e| match e.offset() {
                    Offset::Offset(o) => Some(((Arc::from(e.topic()), e.partition()), o)),
                    _ => None,
                })
                .collect(),
            Err(e) => {
                self.fail(format!("reading committed offsets: {e}"));
                HashMap::new()
            }
        };
        let listing = match self.store.list() {
            Ok(l) => l,
            Err(e) => {
                self.fail(format!("listing the output: {e}"));
                return;
            }
        };
        let mut described = Vec::new();
        for (topic, partition) in &tps {
            let recovery = match recover_partition(&self.store, &listing, topic, *partition) {
                Ok(r) => r,
                Err(e) => {
                    self.fail(format!("recovering {topic}/{partition}: {e}"));
                    continue;
                }
            };
            if !recovery.removed.is_empty() {
                log(format_args!(
                    "{topic}/{partition}: removed {} file(s) of an incomplete group",
                    recovery.removed.len()
                ));
            }
            let from_broker = committed.get(&(topic.clone(), *partition)).copied();
            let resume = match (recovery.next_offset, from_broker) {
                (Some(s), Some(b)) => Some(s.max(b)),
                (s, b) => s.or(b),
            };
            if let Some(offset) = resume {
                if let Err(e) = tpl.set_partition_offset(topic, *partition, Offset::Offset(offset))
                {
                    self.fail(format!("seeking {topic}/{partition}: {e}"));
                }
                self.resume.expect(topic.clone(), *partition, offset);
            }
            described.push(format!(
                "{topic}/{partition}@{}",
                resume.map_or("reset".to_string(), |o| o.to_string())
            ));
        }
        if let Ok(mut a) = self.assigned.lock() {
            a.extend(tps.iter().cloned());
        }
        if self.log {
            log(format_args!("assigned {}", described.join(", ")));
        }
    }

    fn partitions_of(&self, tpl: &TopicPartitionList) -> Vec<TopicPartition> {
        let mut batcher = self.batcher.lock().ok();
        tpl.elements()
            .iter()
            .map(|e| {
                let topic = match batcher.as_mut() {
                    Some(b) => b.topic_arc(e.topic()),
                    None => Arc::from(e.topic()),
                };
                (topic, e.partition())
            })
            .collect()
    }
}

fn describe(tps: &[TopicPartition]) -> String {
    tps.iter()
        .map(|(t, p)| format!("{t}/{p}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Messages read from a [`MessageQueue`] per call.
const FETCH_BATCH_MESSAGES: usize = 1024;
/// The consumer loop's first sleep when a round found nothing to do; it
/// doubles while that lasts, up to [`IDLE_SLEEP_MAX`], or
/// [`IDLE_SLEEP_STALLED_MAX`] while a worker's queue is full.
const IDLE_SLEEP_MIN: Duration = Duration::from_micros(100);
/// See [`IDLE_SLEEP_MIN`].
const IDLE_SLEEP_MAX: Duration = Duration::from_millis(10);
/// See [`IDLE_SLEEP_MIN`].
const IDLE_SLEEP_STALLED_MAX: Duration = Duration::from_millis(1);
/// How often the assigned partitions' routes are renewed
/// ([`MessageQueue::renew`]).
const ROUTE_RENEWAL: Duration = Duration::from_millis(100);

/// The consumer context: runs the rebalance protocol with the coordinator,
/// and routes newly assigned partitions to the message queue.
struct RunContext {
    coordinator: Arc<Coordinator>,
    /// One per worker, set by [`RoutingGuard`] for the consumer loop's life.
    messages: Mutex<Vec<Arc<MessageQueue>>>,
}

impl RunContext {
    /// Routes each partition of `tpl` to the message queue of the worker
    /// that owns it; must run before they are assigned (see
    /// [`MessageQueue::route`]). A partition that cannot be routed is read
    /// through `poll`, as without queues.
    fn route(&self, consumer: &BaseConsumer<Self>, tpl: &TopicPartitionList) {
        let queues = self.messages.lock().map(|m| m.clone()).unwrap_or_default();
        if queues.is_empty() {
            return;
        }
        for (topic, partition) in self.coordinator.partitions_of(tpl) {
            let Some(queue) = queues.get(self.coordinator.worker_of(&topic, partition)) else {
                continue;
            };
            if let Err(e) = queue.route(consumer, &topic, partition) {
                log(format_args!(
                    "warning: {e}; reading it one message per poll"
                ));
            }
        }
    }
}

/// Lends the consumer loop's [`MessageQueue`]s to the rebalance callback and
/// takes them back when dropped, before the consumer is.
struct RoutingGuard(Arc<RunContext>);

impl RoutingGuard {
    fn install(context: &Arc<RunContext>, queues: Vec<Arc<MessageQueue>>) -> Self {
        *context
            .messages
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = queues;
        Self(context.clone())
    }
}

impl Drop for RoutingGuard {
    fn drop(&mut self) {
        // Even after a panic elsewhere: a queue left here would outlive the
        // client.
        self.0
            .messages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

impl ClientContext for RunContext {
    fn stats(&self, statistics: rdkafka::statistics::Statistics) {
        if let Ok(mut lag) = self.coordinator.lag.lock() {
            lag.update(&statistics);
        }
    }
}

impl ConsumerContext for RunContext {
    fn commit_callback(
        &self,
        result: rdkafka::error::KafkaResult<()>,
        _offsets: &TopicPartitionList,
    ) {
        if let Err(e) = result {
            log(format_args!(
                "commit: {e} (the next commit covers these offsets)"
            ));
        }
    }

    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let result = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.coordinator.on_assign(consumer, tpl);
                self.route(consumer, tpl);
                if cooperative {
                    consumer.incremental_assign(tpl)
                } else {
                    consumer.assign(tpl)
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                self.coordinator.on_revoke(consumer, tpl);
                if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                }
            }
            other => {
                log(format_args!("rebalance error: {other:?}"));
                if cooperative {
                    Ok(())
                } else {
                    consumer.unassign()
                }
            }
        };
        if let Err(e) = result {
            self.coordinator
                .fail(format!("applying the assignment: {e}"));
        }
    }
}

/// Everything a worker needs, borrowed from the service.
struct WorkerSetup<'a> {
    id: usize,
    history: &'a IndexHistory,
    options: &'a PipelineOptions,
    config: &'a Config,
    store: &'a OutputStore,
    staging: &'a std::path::Path,
    template: &'a ParquetSinkConfig,
    limits: RollLimits,
    producer: Option<SharedProducer>,
    commits: Sender<(TopicPartition, i64)>,
    counters: &'a Counters,
    /// The aggregation every worker's handle shares.
    alerts: &'a AlertAggregator,
    /// Processed batches go back to the consumer loop for reuse.
    batch_return: BatchReturn,
}

impl WorkerSetup<'_> {
    /// Publishes the sealed groups of `w` that `delivered` covers and counts
    /// the files published; returns the offset to commit.
    fn publish(
        &self,
        w: &mut PartitionWriter,
        delivered: DeliveryMark,
    ) -> Result<Option<i64>, SinkError> {
        let before = w.files_published();
        let offset = w.publish_delivered(delivered, self.store)?;
        let published = w.files_published() - before;
        self.counters.files.fetch_add(published, Ordering::Relaxed);
        if published > 0 {
            let at = self.counters.since_start_us(Instant::now());
            self.counters.last_file_us.fetch_max(at, Ordering::Relaxed);
        }
        Ok(offset)
    }
}

/// A worker's timed activities (indices into its [`ThreadTimes`]).
const WAITING: usize = 0;
const PROCESSING: usize = 1;
const ROLLING: usize = 2;

struct Worker<'a> {
    setup: WorkerSetup<'a>,
    processor: RecordProcessor<'a>,
    writers: HashMap<TopicPartition, PartitionWriter>,
    /// The column-chunk encoders of all `writers` (one row group is written
    /// at a time: one encoder's scratch, not one per partition).
    encoders: ChunkEncoders,
    aggregator: AlertAggregator,
    alert_queue: Vec<Alert>,
    alert_sink: Option<KafkaAlertSink>,
    dead: Box<dyn DeadLetterSink>,
    /// Dead letters go to a file (flushed before a group is sealed), not to
    /// the producer (whose delivery marks cover them).
    dead_to_file: bool,
    records_seen: u64,
    dead_seen: u64,
    /// Since when sealed groups have waited for deliveries (logged once past
    /// [`DELIVERY_WAIT_WARN`]).
    waiting_since: Option<Instant>,
    waiting_logged: bool,
    /// Moves the alert clock on while this worker's partitions are quiet.
    quiet: QuietClock,
}

/// A worker that received no record for this long lets its alert clock run
/// with wall-clock time, so alerts resolve when the traffic stops too. Each
/// worker extrapolates from the event time of its own last record; while other
/// workers are busy, the shared aggregation's clock is usually ahead already.
const QUIET_AFTER: Duration = Duration::from_secs(1);

impl<'a> Worker<'a> {
    fn new(setup: WorkerSetup<'a>) -> Result<Self, SinkError> {
        let c = setup.config;
        let dead: Box<dyn DeadLetterSink> = match (
            &c.dead_letters.topic,
            &c.dead_letters.quarantine_dir,
            &setup.producer,
        ) {
            (Some(topic), _, Some(p)) => Box::new(
                KafkaDeadLetterSink::new(p.clone(), topic.clone(), c.dead_letters.max_raw_bytes)
                    .with_redaction(c.redaction.redaction()),
            ),
            (_, Some(dir), _) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| SinkError::io("create directory", dir, e))?;
                Box::new(
                    DeadLetterFileSink::open(
                        dir.join(format!(
                            "deadletters-{}-w{}.jsonl",
                            std::process::id(),
                            setup.id
                        )),
                        c.dead_letters.max_raw_bytes,
                    )?
                    .with_redaction(c.redaction.redaction()),
                )
            }
            _ => return Err(SinkError::Config("dead_letters: no destination".into())),
        };
        let dead_to_file = !(c.dead_letters.topic.is_some() && setup.producer.is_some());
        let alert_sink = match (&setup.producer, c.alerts.topic.is_empty()) {
            (Some(p), false) => Some(KafkaAlertSink::new(p.clone(), c.alerts.topic.clone())),
            _ => None,
        };
        Ok(Self {
            processor: RecordProcessor::new_live(setup.options),
            writers: HashMap::new(),
            encoders: ChunkEncoders::new(),
            aggregator: setup.alerts.handle(),
            alert_queue: Vec::new(),
            alert_sink,
            dead,
            dead_to_file,
            setup,
            records_seen: 0,
            dead_seen: 0,
            waiting_since: None,
            waiting_logged: false,
            quiet: QuietClock::new(Instant::now()),
        })
    }

    fn run(&mut self, rx: Receiver<WorkerMsg>) -> Result<(), SinkError> {
        let mut times = ThreadTimes::new(
            format!("worker {}", self.setup.id),
            &["waiting", "processing", "rolling", "starting and stopping"],
        );
        let result = self.serve(&rx, &mut times);
        times.report();
        result
    }

    fn serve(
        &mut self,
        rx: &Receiver<WorkerMsg>,
        times: &mut ThreadTimes,
    ) -> Result<(), SinkError> {
        let mut t = Instant::now();
        loop {
            // Sealed groups are published soon after their deliveries.
            let timeout = if self.writers.values().any(|w| w.sealed_mark().is_some()) {
                Duration::from_millis(5)
            } else {
                Duration::from_millis(200)
            };
            let msg = rx.recv_timeout(timeout);
            t = times.add(WAITING, t);
            match msg {
                Ok(WorkerMsg::Batch(batch)) => {
                    self.process(&batch)?;
                    self.setup.batch_return.give_back(batch);
                    t = times.add(PROCESSING, t);
                }
                Ok(WorkerMsg::Finish {
                    partitions,
                    discard,
                    ack,
                }) => {
                    let result = self.finish(&partitions, discard);
                    let failed = result.as_ref().err().map(ToString::to_string);
                    let _ = ack.send(result.map_err(|e| e.to_string()));
                    if let Some(e) = failed {
                        return Err(SinkError::Config(e));
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            }
            self.resolve_quiet()?;
            self.roll_due()?;
            t = times.add(ROLLING, t);
        }
    }

    fn process(&mut self, batch: &MessageBatch) -> Result<(), SinkError> {
        let tp: TopicPartition = (batch.topic.clone(), batch.partition);
        if !self.writers.contains_key(&tp) {
            let w = PartitionWriter::open(
                self.setup.staging,
                tp.0.clone(),
                tp.1,
                self.setup.template,
                &self.encoders,
            )?;
            self.writers.insert(tp.clone(), w);
        }
        // Held only before the history is ready, which `run`'s caller waits
        // for (readiness is never withdrawn); waiting keeps the records rather
        // than judging them against an empty index. One view per batch: the
        // snapshot ring is loaded once, not per record.
        let view = loop {
            match self.setup.history.view() {
                Some(view) => break view,
                None => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        // A group that reaches `max_rows` is sealed right there, between two
        // records, so the row limit is exact: a partition's last group is
        // not left waiting for its age when its row count is reached with
        // the batch's last record.
        let mut records = batch.iter().peekable();
        while records.peek().is_some() {
            let Some(writer) = self.writers.get_mut(&tp) else {
                return Ok(());
            };
            let mut full = false;
            for (offset, payload) in records.by_ref() {
                let mut out = Outputs {
                    parquet: writer.sink(),
                    alerts: &mut self.aggregator,
                    alert_queue: &mut self.alert_queue,
                    dead_letters: self.dead.as_mut(),
                };
                let origin = Origin::Kafka {
                    topic: &batch.topic,
                    partition: batch.partition,
                    offset,
                };
                self.processor
                    .process_payload_in_view(payload, origin, &mut out, &view)?;
                writer.consumed(offset);
                if writer.is_full(&self.setup.limits) {
                    full = true;
                    break;
                }
            }
            if full {
                self.seal(std::slice::from_ref(&tp))?;
            }
        }
        let now = Instant::now();
        self.quiet.records_seen(self.aggregator.clock(), now);
        let at = self.setup.counters.since_start_us(now);
        self.setup
            .counters
            .last_record_us
            .fetch_max(at, Ordering::Relaxed);
        self.send_alerts()?;
        let stats = self.processor.stats();
        let c = self.setup.counters;
        c.records
            .fetch_add(stats.records - self.records_seen, Ordering::Relaxed);
        c.dead_letters
            .fetch_add(stats.dead_letters - self.dead_seen, Ordering::Relaxed);
        self.records_seen = stats.records;
        self.dead_seen = stats.dead_letters;
        Ok(())
    }

    /// Produces the queued alerts.
    fn send_alerts(&mut self) -> Result<(), SinkError> {
        let alerts = self.alert_queue.len() as u64;
        if alerts == 0 {
            return Ok(());
        }
        if let Some(sink) = self.alert_sink.as_mut() {
            for alert in self.alert_queue.drain(..) {
                sink.send(&alert)?;
            }
        }
        self.alert_queue.clear();
        self.setup
            .counters
            .alerts
            .fetch_add(alerts, Ordering::Relaxed);
        Ok(())
    }

    /// While no record arrives, moves the alert clock on with wall-clock time
    /// and produces the `resolved` alerts that causes.
    fn resolve_quiet(&mut self) -> Result<(), SinkError> {
        // `advance_to` takes the shared aggregation's lock only when an open
        // alert may be due.
        if let Some(t) = self.quiet.extrapolated(Instant::now(), QUIET_AFTER) {
            self.aggregator.advance_to(t, &mut self.alert_queue);
            self.send_alerts()?;
        }
        Ok(())
    }

    /// Seals the groups of the writers that reached a limit, and publishes
    /// the sealed groups whose deliveries are done.
    fn roll_due(&mut self) -> Result<(), SinkError> {
        let now = Instant::now();
        let due: Vec<TopicPartition> = self
            .writers
            .iter()
            .filter(|(_, w)| w.should_roll(&self.setup.limits, now))
            .map(|(tp, _)| tp.clone())
            .collect();
        if !due.is_empty() {
            self.seal(&due)?;
        }
        self.publish_delivered(now)
    }

    /// The producer's mark after everything produced so far (nothing to wait
    /// for without a producer).
    fn sent_mark(&self) -> Result<DeliveryMark, SinkError> {
        match &self.setup.producer {
            Some(p) => p.sent_mark(),
            None => Ok(DeliveryMark::default()),
        }
    }

    /// Seals the current groups of `partitions`, to be published once the
    /// alerts and dead letters of their records are delivered. Never waits
    /// for the broker: the worker goes on with the next records.
    fn seal(&mut self, partitions: &[TopicPartition]) -> Result<(), SinkError> {
        // The alerts of the group's records are produced first, so the mark
        // covers them; dead letters written to a file are flushed instead.
        self.send_alerts()?;
        if self.dead_to_file {
            self.dead.flush()?;
        }
        let mark = self.sent_mark()?;
        for tp in partitions {
            if let Some(w) = self.writers.get_mut(tp) {
                w.seal(mark)?;
            }
        }
        Ok(())
    }

    /// Publishes the sealed groups whose deliveries are done, reporting each
    /// partition's offset to commit; produces failed deliveries again when
    /// their pause is over. Does not wait.
    fn publish_delivered(&mut self, now: Instant) -> Result<(), SinkError> {
        if !self.writers.values().any(|w| w.sealed_mark().is_some()) {
            return Ok(());
        }
        let delivered = match &self.setup.producer {
            Some(p) => {
                p.retry_failed()?;
                p.delivered_mark()?
            }
            None => DeliveryMark::MAX,
        };
        for (tp, w) in &mut self.writers {
            if let Some(offset) = self.setup.publish(w, delivered)? {
                let _ = self.setup.commits.send((tp.clone(), offset));
            }
        }
        if !self.writers.values().any(|w| w.sealed_mark().is_some()) {
            if self.waiting_logged {
                log(format_args!("worker {}: deliveries resumed", self.setup.id));
            }
            self.waiting_since = None;
            self.waiting_logged = false;
            return Ok(());
        }
        let since = *self.waiting_since.get_or_insert(now);
        if !self.waiting_logged && now.saturating_duration_since(since) >= DELIVERY_WAIT_WARN {
            log(format_args!(
                "worker {}: holding back files until alerts and dead letters are delivered",
                self.setup.id
            ));
            self.waiting_logged = true;
        }
        Ok(())
    }

    /// Seals (unless `discard`) the groups of `partitions`, publishes every
    /// sealed group once its deliveries are done, and drops the writers.
    fn finish(
        &mut self,
        partitions: &[TopicPartition],
        discard: bool,
    ) -> Result<Vec<(TopicPartition, Option<i64>)>, SinkError> {
        let mut delivered = DeliveryMark::MAX;
        if !discard {
            self.seal(partitions)?;
            let newest = partitions
                .iter()
                .filter_map(|tp| self.writers.get(tp)?.sealed_mark())
                .max();
            if let (Some(p), Some(mark)) = (&self.setup.producer, newest) {
                match p.deliver_through(mark, FLUSH_TIMEOUT) {
                    Ok(()) => {}
                    // Not delivered: publishing would make their records count
                    // as done; the groups not published are dropped instead,
                    // and the next owner of the partitions reads them again
                    // from storage's resume point.
                    Err(SinkError::DeliveryPending(why)) => {
                        log(format_args!(
                            "worker {}: {why}; dropping groups not published",
                            self.setup.id
                        ));
                        delivered = p.delivered_mark()?;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        let mut out = Vec::new();
        for tp in partitions {
            if let Some(mut w) = self.writers.remove(tp) {
                if discard {
                    w.discard();
                    continue;
                }
                let offset = self.setup.publish(&mut w, delivered)?;
                w.discard();
                out.push((tp.clone(), offset));
            }
        }
        Ok(out)
    }
}

/// Runs the service until `stop` is set (SIGTERM/SIGINT) or an error occurs.
/// On a stop, every partition is rolled and committed before returning.
///
/// Records are judged against `history` (which should be ready); the alerts
/// arriving on `config_alerts` (config audits of the history's publisher) are
/// produced to the alert topic next to the record alerts.
pub fn run(
    config: &Config,
    history: &IndexHistory,
    options: &PipelineOptions,
    config_alerts: Option<Receiver<Alert>>,
    stop: Arc<AtomicBool>,
) -> Result<RunSummary, ServiceError> {
    let store = Arc::new(OutputStore::open(
        &config.parquet.output,
        &config.parquet.object_store,
    )?);
    let staging: PathBuf = config
        .parquet
        .staging_dir
        .clone()
        .unwrap_or_else(|| store.default_staging_dir());
    std::fs::create_dir_all(&staging)
        .map_err(|e| SinkError::io("create directory", &staging, e))?;
    let mut template = ParquetSinkConfig::new(&staging);
    template.zstd_level = config.parquet.zstd_level;
    template.row_group_rows = config.parquet.row_group_rows;
    template.validate()?;
    let limits = RollLimits {
        max_rows: config.parquet.max_file_rows,
        max_bytes: config.parquet.max_file_bytes,
        max_age: config.max_file_age(),
        max_open_files: 64,
    };

    let needs_producer = !config.alerts.topic.is_empty() || config.dead_letters.topic.is_some();
    let producer = if needs_producer {
        Some(SharedProducer::new(client_config(&config.kafka))?)
    } else {
        None
    };

    let n_workers = config.worker_count();
    let mut senders = Vec::with_capacity(n_workers);
    let mut receivers = Vec::with_capacity(n_workers);
    for _ in 0..n_workers {
        let (tx, rx) = mpsc::sync_channel(config.pipeline.queue_batches);
        senders.push(tx);
        receivers.push(rx);
    }
    // Enough batches in circulation to refill every worker queue.
    let (batcher, batch_return) = Batcher::recycling(
        config.pipeline.batch_messages,
        n_workers * (config.pipeline.queue_batches + 2),
    );
    let counters = Arc::new(Counters::new());
    let failure = Arc::new(Failure {
        message: Mutex::new(None),
        stop,
    });
    let coordinator = Arc::new(Coordinator {
        stalled: Mutex::new((0..senders.len()).map(|_| VecDeque::new()).collect()),
        workers: senders,
        batcher: Mutex::new(batcher),
        assigned: Mutex::new(HashSet::new()),
        store: store.clone(),
        failure: failure.clone(),
        counters: counters.clone(),
        lag: Mutex::new(LagTracker::default()),
        resume: ResumeCheck::new(),
        log: true,
    });
    let (commit_tx, commit_rx) = mpsc::channel::<(TopicPartition, i64)>();

    let mut messages = 0u64;
    let forwarding_done = AtomicBool::new(false);
    // One aggregation for all workers: a burst spread over partitions is one alert.
    let alerts = AlertAggregator::new(config.alerts.aggregation());
    std::thread::scope(|scope| -> Result<(), ServiceError> {
        let mut handles = Vec::new();
        for (id, rx) in receivers.into_iter().enumerate() {
            let setup = WorkerSetup {
                id,
                history,
                options,
                config,
                store: &store,
                staging: &staging,
                template: &template,
                limits,
                producer: producer.clone(),
                commits: commit_tx.clone(),
                counters: &counters,
                alerts: &alerts,
                batch_return: batch_return.clone(),
            };
            let failure = failure.clone();
            handles.push(scope.spawn(move || {
                let result = Worker::new(setup).and_then(|mut w| w.run(rx));
                if let Err(e) = result {
                    failure.fail(format!("worker {id}: {e}"));
                }
            }));
        }
        drop(commit_tx);
        if let Some(rx) = config_alerts {
            let mut sink = match (&producer, config.alerts.topic.is_empty()) {
                (Some(p), false) => {
                    Some(KafkaAlertSink::new(p.clone(), config.alerts.topic.clone()))
                }
                _ => None,
            };
            let (failure, counters, done) = (failure.clone(), &counters, &forwarding_done);
            handles.push(scope.spawn(move || {
                forward_config_alerts(&rx, sink.as_mut(), done, counters, &failure);
            }));
        }

        let result = consume_loop(config, &coordinator, &commit_rx, &mut messages, &counters);
        forwarding_done.store(true, Ordering::SeqCst);
        // Workers end when their queues close: the coordinator holds the senders
        // and the consumer (with its context) is gone by now.
        drop(coordinator);
        for h in handles {
            let _ = h.join();
        }
        result
    })?;
    // Config alerts, and alerts produced after the last group was sealed, are
    // delivered before the process ends (the producer drops what it holds).
    if let Some(p) = &producer {
        match p.deliver_all(FLUSH_TIMEOUT) {
            Ok(()) => {}
            Err(e @ SinkError::DeliveryPending(_)) => {
                log(format_args!("alerts not delivered at the stop: {e}"))
            }
            Err(e) => return Err(ServiceError::Failed(format!("alert delivery: {e}"))),
        }
    }

    log(format_args!("{}", counters.timeline()));
    Ok(RunSummary {
        messages,
        records: counters.records.load(Ordering::Relaxed),
        dead_letters: counters.dead_letters.load(Ordering::Relaxed),
        alerts: counters.alerts.load(Ordering::Relaxed),
        files: counters.files.load(Ordering::Relaxed),
        commits: counters.commits.load(Ordering::Relaxed),
        resume_gaps: counters.resume_gaps.load(Ordering::Relaxed),
        polled_messages: counters.polled_messages.load(Ordering::Relaxed),
    })
}

/// Produces config-audit alerts to the alert topic (or drops them when no
/// topic is configured) until `done` is set or the channel closes.
fn forward_config_alerts(
    rx: &Receiver<Alert>,
    mut sink: Option<&mut KafkaAlertSink>,
    done: &AtomicBool,
    counters: &Counters,
    failure: &Failure,
) {
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(alert) => {
                if let Some(sink) = sink.as_deref_mut() {
                    if let Err(e) = sink.send(&alert) {
                        failure.fail(format!("config alert: {e}"));
                        return;
                    }
                    counters.alerts.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(RecvTimeoutError::Timeout) if done.load(Ordering::SeqCst) => return,
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

fn consume_loop(
    config: &Config,
    coordinator: &Arc<Coordinator>,
    commit_rx: &Receiver<(TopicPartition, i64)>,
    messages: &mut u64,
    counters: &Counters,
) -> Result<(), ServiceError> {
    let consumer: BaseConsumer<RunContext> = consumer_config(
        &config.kafka,
        config.telemetry.log_interval_seconds.saturating_mul(1000),
    )
    .create_with_context(RunContext {
        coordinator: coordinator.clone(),
        messages: Mutex::new(Vec::new()),
    })?;
    // One message queue per worker, declared after the consumer, so dropped
    // before it, as librdkafka requires of queue handles; the guard takes
    // them back from the context first. Without them, messages come through
    // `poll`, one per call.
    let queues: Vec<Arc<MessageQueue>> = (0..coordinator.workers.len())
        .map_while(|_| MessageQueue::new(&consumer).map(Arc::new))
        .collect();
    let queues = if queues.len() == coordinator.workers.len() {
        queues
    } else {
        log(format_args!(
            "warning: no message queue; reading messages one per poll"
        ));
        Vec::new()
    };
    let routing = RoutingGuard::install(consumer.context(), queues.clone());
    let topics: Vec<&str> = config.kafka.topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics)?;
    log(format_args!(
        "consuming {} from {} as group {}",
        topics.join(", "),
        config.kafka.brokers,
        config.kafka.group_id
    ));

    let log_every = Duration::from_secs(config.telemetry.log_interval_seconds);
    let mut last_log = Instant::now();
    let mut last_commit = Instant::now();
    let mut pending_commits: HashMap<TopicPartition, i64> = HashMap::new();
    let mut since_log = 0u64;
    let mut result: Result<(), String> = Ok(());
    let mut fetched = FetchedMessages::new(FETCH_BATCH_MESSAGES);
    let mut due: Vec<MessageBatch> = Vec::new();
    let mut idle_sleep = IDLE_SLEEP_MIN;
    let mut last_renewal = Instant::now();
    // Waiting (nothing to read, or every worker with something to read is
    // full) and committing are timed; reading and batching are the rest.
    const WAITING: usize = 0;
    const COMMITTING: usize = 1;
    let mut times = ThreadTimes::new(
        "consumer loop".into(),
        &["waiting", "committing", "reading and batching"],
    );
    while !coordinator.stopping() {
        // Events (rebalances, commit results, statistics, errors), and the
        // messages of any partition that is not routed to a queue.
        let polled = if queues.is_empty() {
            consumer.poll(Duration::from_millis(100))
        } else {
            consumer.poll(Duration::ZERO)
        };
        let mut progress = match coordinator.retry_stalled() {
            Ok(sent) => sent || polled.is_some(),
            Err(e) => {
                result = Err(e);
                break;
            }
        };
        // One clock read per round for every time-based check below.
        let now = Instant::now();
        // One batcher lock per round: add the messages, take what is due
        // (full batches, or every partial one once the oldest message waited
        // 50 ms).
        {
            let Ok(mut b) = coordinator.batcher.lock() else {
                result = Err("batcher lock poisoned".into());
                break;
            };
            let mut accept = |topic: &str, partition: i32, offset: i64, payload: &[u8]| {
                *messages += 1;
                since_log += 1;
                if let Some(gap) = coordinator.resume.check(topic, partition, offset) {
                    log(format_args!("warning: {gap}"));
                    counters.resume_gaps.fetch_add(1, Ordering::Relaxed);
                }
                due.extend(b.push(topic, partition, offset, payload));
            };
            match &polled {
                Some(Ok(msg)) => {
                    counters.polled_messages.fetch_add(1, Ordering::Relaxed);
                    accept(
                        msg.topic(),
                        msg.partition(),
                        msg.offset(),
                        msg.payload().unwrap_or_default(),
                    )
                }
                Some(Err(e)) => log(format_args!("consumer: {e}")),
                None => {}
            }
            // A full worker's messages stay in its queue: the other workers
            // keep getting theirs, and librdkafka stops pre-fetching the full
            // worker's partitions once its queue holds
            // `kafka.queued_max_messages_kbytes`.
            for (w, queue) in queues.iter().enumerate() {
                if coordinator.is_stalled(w) {
                    continue;
                }
                if queue.consume(Duration::ZERO, &mut fetched) > 0 {
                    progress = true;
                }
                fetched.for_each(|m| match m {
                    Fetched::Message {
                        topic,
                        partition,
                        offset,
                        payload,
                    } => accept(topic, partition, offset, payload),
                    Fetched::Error { code, detail } => {
                        log(format_args!("consumer: {code} ({detail})"))
                    }
                });
                // Copied: hand the messages back to librdkafka.
                fetched.clear();
            }
            if b.pending_age(now)
                .is_some_and(|age| age >= Duration::from_millis(50))
            {
                due.extend(b.take_all());
            }
        }
        drop(polled);
        if *messages > 0 && counters.first_message_us.load(Ordering::Relaxed) == 0 {
            // For the stop summary's timeline (this round's clock read).
            let at = counters.since_start_us(now);
            counters.first_message_us.store(at, Ordering::Relaxed);
        }
        if let Some(e) = due
            .drain(..)
            .find_map(|batch| coordinator.offer(batch).err())
        {
            result = Err(e);
            break;
        }
        if progress {
            idle_sleep = IDLE_SLEEP_MIN;
        } else if !queues.is_empty() {
            // Nothing arrived and no stalled batch moved: back off a little
            // (short while a worker is full, so it is refilled promptly).
            let t = Instant::now();
            std::thread::sleep(idle_sleep);
            let cap = if (0..queues.len()).any(|w| coordinator.is_stalled(w)) {
                IDLE_SLEEP_STALLED_MAX
            } else {
                IDLE_SLEEP_MAX
            };
            idle_sleep = (idle_sleep * 2).min(cap);
            times.add(WAITING, t);
        }
        while let Ok((tp, offset)) = commit_rx.try_recv() {
            let e = pending_commits.entry(tp).or_insert(offset);
            *e = (*e).max(offset);
        }
        if !pending_commits.is_empty()
            && now.saturating_duration_since(last_commit) >= Duration::from_millis(200)
        {
            let commit_started = Instant::now();
            let assigned = coordinator
                .assigned
                .lock()
                .map(|a| a.clone())
                .unwrap_or_default();
            let offsets: Vec<_> = pending_commits
                .drain()
                .filter(|(tp, _)| assigned.contains(tp))
                .collect();
            // Asynchronous: the loop keeps feeding the workers while the broker
            // answers (a synchronous commit to tansu took 40-80 ms). A failure
            // is logged by the context; the next commit, or storage on a
            // restart, covers these offsets.
            match coordinator.commit(&consumer, &offsets, CommitMode::Async) {
                Ok(()) => {}
                Err(CommitError::Retry(e)) => {
                    log(format_args!("{e}"));
                    for (tp, o) in offsets {
                        let e = pending_commits.entry(tp).or_insert(o);
                        *e = (*e).max(o);
                    }
                }
                Err(CommitError::Fatal(e)) => {
                    result = Err(e);
                    break;
                }
            }
            last_commit = times.add(COMMITTING, commit_started);
        }
        if !queues.is_empty() && now.saturating_duration_since(last_renewal) >= ROUTE_RENEWAL {
            // See `MessageQueue::renew`: heals a forward that a late fetch
            // stop cleared after a quick re-assignment.
            if let Ok(assigned) = coordinator.assigned.lock() {
                for queue in &queues {
                    queue.renew(|topic, partition| assigned.contains(&(topic.clone(), partition)));
                }
            }
            last_renewal = now;
        }
        if !log_every.is_zero() && now.saturating_duration_since(last_log) >= log_every {
            let (total_lag, lag_text) = coordinator
                .lag
                .lock()
                .map(|l| {
                    let text: Vec<String> = l
                        .lags()
                        .iter()
                        .take(16)
                        .map(|((t, p), lag)| format!("{t}/{p}={lag}"))
                        .collect();
                    (l.total(), text)
                })
                .unwrap_or_default();
            let rate = since_log as f64 / last_log.elapsed().as_secs_f64();
            log(format_args!(
                "{:.0} msg/s, {} records, {} dead letters, {} alerts, {} files; lag {} ({})",
                rate,
                counters.records.load(Ordering::Relaxed),
                counters.dead_letters.load(Ordering::Relaxed),
                counters.alerts.load(Ordering::Relaxed),
                counters.files.load(Ordering::Relaxed),
                total_lag,
                if lag_text.is_empty() {
                    "-".to_string()
                } else {
                    lag_text.join(" ")
                }
            ));
            since_log = 0;
            last_log = Instant::now();
        }
    }
    times.report();
    if let Some(f) = coordinator.failure() {
        result = Err(f);
    }
    if result.is_ok() {
        // Graceful stop: finish every assigned partition, commit, then leave.
        let assigned: Vec<TopicPartition> = coordinator
            .assigned
            .lock()
            .map(|a| a.iter().cloned().collect())
            .unwrap_or_default();
        log(format_args!("stopping: flushing {}", describe(&assigned)));
        // Hand over everything pending (also of partitions not in `assigned`).
        let batches = coordinator
            .batcher
            .lock()
            .map(|mut b| b.take_all())
            .unwrap_or_default();
        coordinator.flush_stalled().map_err(ServiceError::Failed)?;
        for batch in batches {
            coordinator.dispatch(batch).map_err(ServiceError::Failed)?;
        }
        let offsets = coordinator
            .finish(&assigned, false)
            .map_err(ServiceError::Failed)?;
        let mut merged: HashMap<TopicPartition, i64> = HashMap::new();
        while let Ok((tp, offset)) = commit_rx.try_recv() {
            pending_commits.insert(tp, offset);
        }
        for (tp, o) in pending_commits.drain().chain(offsets) {
            let e = merged.entry(tp).or_insert(o);
            *e = (*e).max(o);
        }
        let merged: Vec<_> = merged.into_iter().collect();
        let mut attempt = 0;
        loop {
            match coordinator.commit(&consumer, &merged, CommitMode::Sync) {
                Ok(()) => break,
                Err(CommitError::Retry(e)) if attempt < 3 => {
                    log(format_args!("{e}"));
                    attempt += 1;
                    std::thread::sleep(Duration::from_secs(1));
                }
                // Files are durable; the next start resumes from them.
                Err(CommitError::Retry(e)) => {
                    log(format_args!("giving up the final commit: {e}"));
                    break;
                }
                Err(CommitError::Fatal(e)) => return Err(ServiceError::Failed(e)),
            }
        }
        if let Ok(mut a) = coordinator.assigned.lock() {
            a.clear();
        }
        consumer.unsubscribe();
    }
    // Queue handles go before the client (a handle left over keeps
    // `rd_kafka_destroy` waiting for ever).
    drop(routing);
    drop(queues);
    drop(consumer);
    if let Some(f) = coordinator.failure() {
        return Err(ServiceError::Failed(f));
    }
    result.map_err(ServiceError::Failed)
}
