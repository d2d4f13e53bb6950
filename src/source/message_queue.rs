//! Fetched messages read many per call, on a queue apart from the consumer's
//! events.
//!
//! `BaseConsumer::poll` hands over one message per call: each call takes the
//! consumer queue's lock, wraps the message in an event and allocates for it
//! (about 2 µs per message on the consumer loop here, most of its time).
//! librdkafka can hand over up to N messages per call
//! (`rd_kafka_consume_batch_queue`), but not from the consumer queue of a
//! client that takes its rebalances as events, as the rdkafka crate sets it
//! up: a rebalance served that way becomes a forced unassign. So:
//!
//! - [`MessageQueue::route`] forwards the fetch queue of a partition to a
//!   queue of our own (the service keeps one per worker). It must run
//!   *before* the partition is assigned (the rebalance callback does it just
//!   before `assign`): librdkafka keeps a forward made by the application
//!   when fetching starts, so every message of the partition then arrives
//!   here, in offset order, and none on the consumer queue.
//! - librdkafka clears the forward when it stops fetching a partition (on
//!   revocation) and, once the application has forwarded a queue, never
//!   forwards it again itself. So `route` forwards again at every
//!   assignment, and [`MessageQueue::renew`] re-forwards the assigned
//!   partitions periodically: the stop runs on a broker thread and can land
//!   after a quick re-assignment, clearing the new forward; messages that
//!   reached the partition's own queue meanwhile are then moved here, behind
//!   the older ones, so the order holds (messages of the old assignment are
//!   discarded by librdkafka's version check).
//! - [`MessageQueue::consume`] reads up to a buffer's worth of messages per
//!   call; the consumer queue is still polled for events (rebalances, commit
//!   results, statistics, errors).
//!
//! Offset semantics are librdkafka's own: the batch read updates each
//! partition's position as `poll` does, and the version barrier that an
//! assignment change sets discards messages fetched under the old assignment
//! on this queue as on the consumer queue.
//!
//! This module holds the crate's only FFI calls. The safety argument is
//! local: every pointer comes from librdkafka and is used only while its
//! owner (this queue, or a [`FetchedMessages`] buffer) is alive; a
//! [`MessageQueue`] must be dropped before the consumer it was made from
//! (librdkafka requires queue handles to be destroyed before the client),
//! which the service guarantees by declaring it after the consumer.
//!
//! librdkafka bounds its pre-fetch (`queued.max.messages.kbytes`) per
//! destination queue: when a partition's fetch queue is forwarded, the size
//! checked is that of the queue it is forwarded to. A queue that is not read
//! therefore stops the fetching of its own partitions only.

use std::ffi::{c_void, CStr, CString};
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rdkafka::bindings as rd;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::types::RDKafkaErrorCode;

/// Why a partition could not be routed.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// The topic name holds a NUL byte.
    #[error("topic name {0:?} holds a NUL byte")]
    TopicName(String),
    /// librdkafka returned no queue for the partition.
    #[error("no fetch queue for {0}/{1}")]
    NoQueue(String, i32),
    /// The consumer is not the one the queue was made from.
    #[error("the partition belongs to another client than the message queue")]
    OtherClient,
}

/// A librdkafka queue handle, destroyed on drop.
#[derive(Debug)]
struct QueueHandle(NonNull<rd::rd_kafka_queue_t>);

impl QueueHandle {
    fn ptr(&self) -> *mut rd::rd_kafka_queue_t {
        self.0.as_ptr()
    }
}

impl Drop for QueueHandle {
    fn drop(&mut self) {
        // SAFETY: the handle came from librdkafka and is destroyed once.
        unsafe { rd::rd_kafka_queue_destroy(self.ptr()) }
    }
}

/// A partition whose fetch queue is forwarded to a [`MessageQueue`].
#[derive(Debug)]
struct RoutedPartition {
    topic: Arc<str>,
    partition: i32,
    fetch_queue: QueueHandle,
}

/// The queue that the assigned partitions' messages are forwarded to.
#[derive(Debug)]
pub struct MessageQueue {
    queue: QueueHandle,
    /// The client the queue belongs to: partitions of another client are
    /// refused.
    client: *mut rd::rd_kafka_t,
    routed: Mutex<Vec<RoutedPartition>>,
}

// SAFETY: librdkafka queues are thread-safe (every operation takes the
// queue's own lock); the routed list is behind a mutex; the client pointer
// is only compared, never dereferenced.
unsafe impl Send for MessageQueue {}
// SAFETY: as above.
unsafe impl Sync for MessageQueue {}

impl MessageQueue {
    /// A new, empty queue of `consumer`'s client; `None` if librdkafka
    /// returned none.
    pub fn new<C: ConsumerContext>(consumer: &BaseConsumer<C>) -> Option<Self> {
        // SAFETY: the client pointer is valid while `consumer` lives.
        let client = consumer.client().native_ptr();
        let queue = unsafe { rd::rd_kafka_queue_new(client) };
        Some(Self {
            queue: QueueHandle(NonNull::new(queue)?),
            client,
            routed: Mutex::new(Vec::new()),
        })
    }

    /// Forwards the fetch queue of `topic`/`partition` here. Call it before
    /// the partition is assigned, at every assignment (see the module doc).
    pub fn route<C: ConsumerContext>(
        &self,
        consumer: &BaseConsumer<C>,
        topic: &Arc<str>,
        partition: i32,
    ) -> Result<(), RouteError> {
        if consumer.client().native_ptr() != self.client {
            return Err(RouteError::OtherClient);
        }
        let mut routed = self.routed.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(r) = routed
            .iter()
            .find(|r| r.partition == partition && r.topic == *topic)
        {
            // SAFETY: both handles are alive.
            unsafe { rd::rd_kafka_queue_forward(r.fetch_queue.ptr(), self.queue.ptr()) };
            return Ok(());
        }
        let name =
            CString::new(topic.as_bytes()).map_err(|_| RouteError::TopicName(topic.to_string()))?;
        // SAFETY: valid client pointer and NUL-terminated name; librdkafka
        // creates the partition object if it does not exist yet.
        let fetch_queue = unsafe {
            rd::rd_kafka_queue_get_partition(
                consumer.client().native_ptr(),
                name.as_ptr(),
                partition,
            )
        };
        let fetch_queue = QueueHandle(
            NonNull::new(fetch_queue)
                .ok_or_else(|| RouteError::NoQueue(topic.to_string(), partition))?,
        );
        // SAFETY: both handles are alive; the forward holds its own reference
        // to the destination queue.
        unsafe { rd::rd_kafka_queue_forward(fetch_queue.ptr(), self.queue.ptr()) };
        routed.push(RoutedPartition {
            topic: topic.clone(),
            partition,
            fetch_queue,
        });
        Ok(())
    }

    /// Forwards again the fetch queue of every routed partition for which
    /// `assigned` holds (see the module doc); returns how many.
    pub fn renew(&self, assigned: impl Fn(&Arc<str>, i32) -> bool) -> usize {
        let routed = self.routed.lock().unwrap_or_else(PoisonError::into_inner);
        let mut renewed = 0;
        for r in routed.iter().filter(|r| assigned(&r.topic, r.partition)) {
            // SAFETY: both handles are alive; forwarding again is idempotent
            // and moves anything queued on the partition's own queue here.
            unsafe { rd::rd_kafka_queue_forward(r.fetch_queue.ptr(), self.queue.ptr()) };
            renewed += 1;
        }
        renewed
    }

    /// Replaces `out`'s messages with at most its capacity of new ones,
    /// waiting at most `timeout` for the buffer to fill; returns how many
    /// arrived.
    pub fn consume(&self, timeout: Duration, out: &mut FetchedMessages) -> usize {
        out.clear();
        let timeout_ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: `out.messages` has `capacity` writable slots; librdkafka
        // writes at most that many message pointers and returns their count
        // (or -1 on error), which `set_len` takes only when it is in range.
        let n = unsafe {
            rd::rd_kafka_consume_batch_queue(
                self.queue.ptr(),
                timeout_ms,
                out.messages.as_mut_ptr(),
                out.capacity,
            )
        };
        let n = usize::try_from(n).unwrap_or(0).min(out.capacity);
        // SAFETY: the first `n` slots were written by librdkafka.
        unsafe { out.messages.set_len(n) };
        n
    }
}

impl Drop for MessageQueue {
    fn drop(&mut self) {
        let routed = std::mem::take(
            self.routed
                .get_mut()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for r in routed {
            // SAFETY: undo the forward before the handles go; messages that
            // arrive later stay on the partition's own queue, unread, so never
            // committed.
            unsafe { rd::rd_kafka_queue_forward(r.fetch_queue.ptr(), std::ptr::null_mut()) };
        }
    }
}

/// A reused buffer of messages read by [`MessageQueue::consume`]; the
/// messages are handed back to librdkafka when the buffer is cleared or
/// dropped.
#[derive(Debug)]
pub struct FetchedMessages {
    messages: Vec<*mut rd::rd_kafka_message_t>,
    capacity: usize,
    /// The last topic handle seen and its name: messages of one topic share
    /// one handle, so the name is read once per topic, not per message.
    topic: Option<(*const rd::rd_kafka_topic_t, Arc<str>)>,
}

/// One fetched message, or the error librdkafka delivered in its place.
#[derive(Debug)]
pub enum Fetched<'a> {
    /// A message.
    Message {
        /// Topic.
        topic: &'a Arc<str>,
        /// Partition.
        partition: i32,
        /// Offset.
        offset: i64,
        /// Payload (empty when absent).
        payload: &'a [u8],
    },
    /// An error for a partition or the consumer (e.g. offset out of range).
    Error {
        /// The error code.
        code: RDKafkaErrorCode,
        /// librdkafka's description.
        detail: String,
    },
}

impl FetchedMessages {
    /// A buffer for at most `capacity` (at least 1) messages per read.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            messages: Vec::with_capacity(capacity),
            capacity,
            topic: None,
        }
    }

    /// Hands every held message back to librdkafka.
    pub fn clear(&mut self) {
        // A topic handle may go with the last message that held it.
        self.topic = None;
        for m in self.messages.drain(..) {
            // SAFETY: each pointer came from `consume` and is destroyed once.
            unsafe { rd::rd_kafka_message_destroy(m) };
        }
    }

    /// Calls `f` with each held message, in the order fetched.
    pub fn for_each(&mut self, mut f: impl FnMut(Fetched<'_>)) {
        for &m in &self.messages {
            // SAFETY: `m` is a live message owned by this buffer.
            let m = unsafe { &*m };
            if m.err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                f(Fetched::Error {
                    code: m.err.into(),
                    // SAFETY: for an error, the payload is librdkafka's error text.
                    detail: String::from_utf8_lossy(unsafe { bytes(m.payload, m.len) })
                        .into_owned(),
                });
                continue;
            }
            let topic = match &self.topic {
                Some((rkt, name)) if std::ptr::eq(*rkt, m.rkt) => name,
                _ => {
                    // SAFETY: a message's topic handle is valid while the message lives.
                    let name = unsafe { CStr::from_ptr(rd::rd_kafka_topic_name(m.rkt)) };
                    let name: Arc<str> = Arc::from(name.to_string_lossy().as_ref());
                    &self.topic.insert((m.rkt as *const _, name)).1
                }
            };
            f(Fetched::Message {
                topic,
                partition: m.partition,
                offset: m.offset,
                // SAFETY: the payload lives as long as the message.
                payload: unsafe { bytes(m.payload, m.len) },
            });
        }
    }
}

impl Drop for FetchedMessages {
    fn drop(&mut self) {
        self.clear();
    }
}

/// The bytes at `ptr` (none if null).
///
/// # Safety
/// `ptr` must be null or point to `len` readable bytes that outlive `'a`.
unsafe fn bytes<'a>(ptr: *const c_void, len: usize) -> &'a [u8] {
    if ptr.is_null() || len == 0 {
        &[]
    } else {
        // SAFETY: guaranteed by the caller.
        unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) }
    }
}
