//! Exactly-once Parquet output for Kafka input: one writer per assigned
//! topic-partition, files named by offset range, recovery from storage.
//!
//! # Protocol
//!
//! **Files.** Each assigned Kafka topic-partition has its own
//! [`PartitionWriter`] with its own [`ParquetSink`] writing into a private
//! staging directory `<staging>/<topic>+<partition>/`; a file therefore never
//! mixes Kafka partitions. Rows of one Kafka partition usually fall into several
//! event-time (hive) partitions at once, so the writer works in **groups**: a
//! group is the contiguous range of consumed offsets `[first, last]` of that
//! Kafka partition, and it ends (the writer *rolls*) only as a whole, when the
//! group's rows, estimated bytes or age reach the configured limits, on
//! revocation and on shutdown. Rolling finishes every open file of the group
//! (fsynced by the sink) and publishes each one (see "Deliveries first"
//! below), in order, under its final name
//!
//! ```text
//! dt=YYYY-MM-DD/hour=HH/<topic>+<partition>+<first:020>+<last:020>+<i>of<n>.parquet
//! ```
//!
//! through the [`OutputStore`] (atomic rename, or one object `PUT`). `n` is the
//! number of files of the group. A group whose records were all dead letters has
//! no file.
//!
//! **Deliveries first.** Rolling a group happens in two steps. The worker
//! first *seals* it: the group's alerts are produced, dead letters written to
//! a file are flushed, every open file of the group is finished (fsynced) in
//! staging, and the group is queued with the producer's delivery mark of that
//! moment (see [`crate::sink::kafka`]); the next record starts a new group.
//! The group is *published* once every alert and dead letter produced before
//! the mark is delivered: the worker checks after every batch and every few
//! milliseconds while groups wait, without blocking on the broker. Transient
//! delivery failures are produced again meanwhile; while they are pending
//! (e.g. the broker restarts) the sealed groups wait in staging, and a
//! revoked or stopping partition whose deliveries do not complete in time
//! drops the groups not published, to be read again by its next owner. So a
//! record never counts as done before its alerts and dead letters are on
//! their topics.
//!
//! **Commits.** Only after the last file of a group is published does the
//! worker hand `last + 1` to the consumer loop, which commits it (asynchronously
//! while running, synchronously on a revocation and at the stop). The broker's
//! committed offset is thus never ahead of what is durable on storage.
//!
//! **Recovery** (on every assignment, so also after a crash, a restart or a
//! rebalance): the output is listed and, for each assigned partition, files are
//! grouped by `(first, last)`. A group with all `n` files present is complete;
//! groups are published one after another, so only the newest group can be
//! incomplete (a crash while publishing it); its files are deleted. The partition
//! is then assigned at `max(last of complete groups) + 1`, or at the broker's
//! committed offset if that is further (the newest groups had no rows, only dead
//! letters), else at `auto.offset.reset`. Files are the source of truth: a
//! committed offset behind the storage (a crash between publish and commit) is
//! ignored. The staging directory of the partition is emptied when its writer
//! is created, removing partial files.
//!
//! **Why this is exactly once.** Every offset below the resume point is in a
//! complete group on storage (groups are contiguous and published in order), and
//! no offset at or above it is (incomplete groups were deleted), so re-reading
//! from the resume point adds each record once. A restart may cut groups at
//! different offsets than the crashed run would have (age-based rolling, other
//! batch boundaries): that is harmless because a group is published only when
//! complete and its name states the exact range it covers, and the new groups
//! start exactly after the last complete one.
//!
//! **Limits.** A zombie instance that lost its partition without noticing (e.g.
//! paused longer than the session timeout) could still publish a group that
//! overlaps the new owner's; the file names would then reveal the overlap
//! (`first` ≤ an earlier `last`). Alerts and dead letters are at least once
//! (re-sent for records re-read after a crash); alerts are keyed by fingerprint
//! so a compacted topic keeps the latest state. Readers may briefly see the
//! files of a group whose publication a crash interrupted, until the restart
//! deletes them and writes the range again.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::kafka::DeliveryMark;
use super::object_store::OutputStore;
use super::parquet::{ChunkEncoders, ParquetSink, ParquetSinkConfig, SequentialFileNamer};
use super::SinkError;

/// The parts of a published file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupFileName {
    /// Kafka topic.
    pub topic: String,
    /// Kafka partition.
    pub partition: i32,
    /// First consumed offset of the group.
    pub first: i64,
    /// Last consumed offset of the group.
    pub last: i64,
    /// 1-based index of the file in the group.
    pub index: u32,
    /// Number of files in the group.
    pub count: u32,
}

impl GroupFileName {
    /// The file name (no directory).
    pub fn format(&self) -> String {
        format!(
            "{}+{}+{:020}+{:020}+{}of{}.parquet",
            self.topic, self.partition, self.first, self.last, self.index, self.count
        )
    }

    /// Parses a file name or a relative path ending in one; `None` for other files.
    pub fn parse(path: &str) -> Option<Self> {
        let name = path.rsplit('/').next()?.strip_suffix(".parquet")?;
        // Kafka topic names cannot contain '+': split from the right.
        let mut parts = name.rsplitn(5, '+');
        let (index, count) = parts.next()?.split_once("of")?;
        let last = parts.next()?.parse().ok()?;
        let first = parts.next()?.parse().ok()?;
        let partition = parts.next()?.parse().ok()?;
        let topic = parts.next()?.to_string();
        Some(Self {
            topic,
            partition,
            first,
            last,
            index: index.parse().ok()?,
            count: count.parse().ok()?,
        })
    }
}

/// What recovery found for one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Offset after the last complete group, if any.
    pub next_offset: Option<i64>,
    /// Files of incomplete groups that were deleted.
    pub removed: Vec<String>,
}

/// Finds the resume point of `topic`/`partition` in `listing` (from
/// [`OutputStore::list`]) and deletes the files of incomplete groups.
pub fn recover_partition(
    store: &OutputStore,
    listing: &[String],
    topic: &str,
    partition: i32,
) -> Result<Recovery, SinkError> {
    use std::collections::BTreeMap;
    let mut groups: BTreeMap<(i64, i64), (u32, Vec<&String>)> = BTreeMap::new();
    for path in listing {
        if let Some(name) = GroupFileName::parse(path) {
            if name.topic == topic && name.partition == partition {
                let entry = groups
                    .entry((name.first, name.last))
                    .or_insert((name.count, Vec::new()));
                entry.1.push(path);
            }
        }
    }
    let mut recovery = Recovery::default();
    for ((_, last), (count, paths)) in groups {
        if paths.len() as u64 >= u64::from(count) {
            recovery.next_offset = Some(recovery.next_offset.map_or(last + 1, |n| n.max(last + 1)));
        } else {
            for path in paths {
                store.delete(path)?;
                recovery.removed.push(path.clone());
            }
        }
    }
    Ok(recovery)
}

/// When a group is finished.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RollLimits {
    /// Rows in the group.
    pub max_rows: u64,
    /// Estimated bytes of the group's open files.
    pub max_bytes: u64,
    /// Age of the group.
    pub max_age: Duration,
    /// Open event-time partitions (files) in the group.
    pub max_open_files: usize,
}

/// Writes the rows of one Kafka topic-partition in offset groups (see the
/// [module documentation](self)).
#[derive(Debug)]
pub struct PartitionWriter {
    topic: Arc<str>,
    partition: i32,
    staging: PathBuf,
    sink: ParquetSink,
    first: Option<i64>,
    last: Option<i64>,
    opened_at: Instant,
    files_published: u64,
    /// Rows of the groups sealed so far.
    rows_sealed: u64,
    /// Groups finished in staging and not published yet, oldest first, each
    /// with the delivery mark it waits for.
    sealed: VecDeque<(DeliveryMark, SealedGroup)>,
}

/// A group whose files are finished in staging (fsynced) and not published.
#[derive(Debug)]
pub struct SealedGroup {
    /// Each staged file and the name it is published under.
    files: Vec<(PathBuf, String)>,
    /// The offset to commit once the group is published (`last + 1`).
    next_offset: i64,
}

impl PartitionWriter {
    /// A writer staging under `staging_root/<topic>+<partition>/`, which is
    /// emptied first (partial files of an earlier owner). `template` gives the
    /// Parquet settings (its root and roll limits are replaced: this writer
    /// decides when files end); its sink takes its column-chunk encoders from
    /// `encoders`, which the worker's other writers share.
    pub fn open(
        staging_root: &Path,
        topic: Arc<str>,
        partition: i32,
        template: &ParquetSinkConfig,
        encoders: &ChunkEncoders,
    ) -> Result<Self, SinkError> {
        let staging = staging_root.join(format!("{topic}+{partition}"));
        match std::fs::remove_dir_all(&staging) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(SinkError::io("remove directory", &staging, e)),
        }
        let mut config = template.clone();
        config.root_dir = staging.clone();
        config.max_file_rows = u64::MAX;
        config.max_file_bytes = u64::MAX;
        config.max_file_age = Duration::from_secs(u64::MAX / 4);
        config.max_open_partitions = usize::MAX;
        let sink = ParquetSink::with_encoders(
            config,
            SequentialFileNamer::new("staged"),
            encoders.clone(),
        )?;
        Ok(Self {
            topic,
            partition,
            staging,
            sink,
            first: None,
            last: None,
            opened_at: Instant::now(),
            files_published: 0,
            rows_sealed: 0,
            sealed: VecDeque::new(),
        })
    }

    /// The sink rows are appended to.
    pub fn sink(&mut self) -> &mut ParquetSink {
        &mut self.sink
    }

    /// Topic of this writer.
    pub fn topic(&self) -> &Arc<str> {
        &self.topic
    }

    /// Records that the message at `offset` was fully processed (its rows appended).
    pub fn consumed(&mut self, offset: i64) {
        if self.first.is_none() {
            self.first = Some(offset);
            self.opened_at = Instant::now();
        }
        self.last = Some(offset);
    }

    /// Whether the current group has reached a limit at `now`.
    pub fn should_roll(&self, limits: &RollLimits, now: Instant) -> bool {
        self.first.is_some()
            && (self.rows_in_group() >= limits.max_rows
                || self.sink.estimated_bytes() >= limits.max_bytes
                || now.saturating_duration_since(self.opened_at) >= limits.max_age
                || self.sink.open_partitions() >= limits.max_open_files)
    }

    /// Whether the current group holds `limits.max_rows` rows or more: the
    /// worker checks it after every record, so a group rolled for its row
    /// count holds exactly `max_rows` rows (unless its roll had to wait).
    pub fn is_full(&self, limits: &RollLimits) -> bool {
        self.rows_in_group() >= limits.max_rows
    }

    fn rows_in_group(&self) -> u64 {
        self.sink.rows_appended() - self.rows_sealed
    }

    /// Files published by this writer.
    pub fn files_published(&self) -> u64 {
        self.files_published
    }

    /// Finishes the current group's files in staging and queues the group for
    /// publication once delivery passes `mark` (the alerts and dead letters of
    /// its records); a new group starts with the next record. Nothing to do
    /// when no message was consumed since the last seal.
    pub fn seal(&mut self, mark: DeliveryMark) -> Result<(), SinkError> {
        let (Some(first), Some(last)) = (self.first, self.last) else {
            return Ok(());
        };
        self.sink.roll_all()?;
        let staged = self.sink.take_finished_files();
        let count = u32::try_from(staged.len()).unwrap_or(u32::MAX);
        let files = staged
            .into_iter()
            .enumerate()
            .map(|(i, file)| {
                let name = GroupFileName {
                    topic: self.topic.to_string(),
                    partition: self.partition,
                    first,
                    last,
                    index: u32::try_from(i + 1).unwrap_or(u32::MAX),
                    count,
                };
                let rel = format!(
                    "{}/{}",
                    file.span.partition.relative_dir().to_string_lossy(),
                    name.format()
                );
                (file.path, rel)
            })
            .collect();
        self.sealed.push_back((
            mark,
            SealedGroup {
                files,
                next_offset: last + 1,
            },
        ));
        self.rows_sealed = self.sink.rows_appended();
        self.first = None;
        self.last = None;
        Ok(())
    }

    /// Publishes, oldest first, the sealed groups whose mark `delivered` has
    /// reached; returns the offset to commit after the last one published.
    /// Groups are published in order, so one still waiting holds back the
    /// ones after it (recovery relies on that, see the module docs).
    pub fn publish_delivered(
        &mut self,
        delivered: DeliveryMark,
        store: &OutputStore,
    ) -> Result<Option<i64>, SinkError> {
        let mut committable = None;
        while self
            .sealed
            .front()
            .is_some_and(|(mark, _)| *mark <= delivered)
        {
            let Some((_, group)) = self.sealed.pop_front() else {
                break;
            };
            for (path, rel) in &group.files {
                store.publish(path, rel)?;
                self.files_published += 1;
            }
            committable = Some(group.next_offset);
        }
        Ok(committable)
    }

    /// The mark the newest sealed group waits for, if any group waits.
    pub fn sealed_mark(&self) -> Option<DeliveryMark> {
        self.sealed.back().map(|(mark, _)| *mark)
    }

    /// Seals the current group and publishes every sealed one, without
    /// waiting for deliveries (the caller has waited for them, or produces
    /// nothing to Kafka); returns the offset to commit.
    pub fn roll(&mut self, store: &OutputStore) -> Result<Option<i64>, SinkError> {
        self.seal(DeliveryMark::default())?;
        self.publish_delivered(DeliveryMark::MAX, store)
    }

    /// Drops the writer and its staging directory; rows and sealed groups not
    /// yet published are dropped (call [`roll`](Self::roll) first to keep them).
    pub fn discard(self) {
        drop(self.sink);
        let _ = std::fs::remove_dir_all(&self.staging);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let n = GroupFileName {
            topic: "gw.logs-1".into(),
            partition: 3,
            first: 100,
            last: 250,
            index: 2,
            count: 3,
        };
        let s = n.format();
        assert_eq!(
            s,
            "gw.logs-1+3+00000000000000000100+00000000000000000250+2of3.parquet"
        );
        assert_eq!(GroupFileName::parse(&format!("dt=x/hour=1/{s}")), Some(n));
        assert_eq!(GroupFileName::parse("replay-1-000001.parquet"), None);
    }

    #[test]
    fn recovery_drops_incomplete_groups() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store =
            OutputStore::open(&dir.path().to_string_lossy(), &Default::default()).expect("store");
        let mk = |first, last, index, count| GroupFileName {
            topic: "t".into(),
            partition: 0,
            first,
            last,
            index,
            count,
        };
        let names = [
            mk(0, 9, 1, 1),
            mk(10, 19, 1, 2),
            mk(10, 19, 2, 2),
            mk(20, 29, 1, 2),
        ];
        let mut listing = Vec::new();
        for n in &names {
            let rel = format!("dt=2024-01-01/hour=00/{}", n.format());
            let p = dir.path().join(&rel);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(&p, b"x").expect("write");
            listing.push(rel);
        }
        let r = recover_partition(&store, &listing, "t", 0).expect("recover");
        assert_eq!(r.next_offset, Some(20));
        assert_eq!(r.removed.len(), 1);
        assert!(!dir.path().join(&listing[3]).exists());
        let r = recover_partition(&store, &listing, "t", 1).expect("recover");
        assert_eq!(r.next_offset, None);
    }

    /// Appends a row (in the hour `2024-05-01T07`) for each of `offsets`,
    /// then seals the group with `mark`.
    fn seal_group(w: &mut PartitionWriter, offsets: std::ops::Range<i64>, mark: DeliveryMark) {
        for offset in offsets {
            let row = crate::sink::row::EnrichedRow {
                event_time: Some(1_714_546_800_000_000 + offset),
                verdict: "ok",
                input_format: "envoy_json",
                ..Default::default()
            };
            w.sink().append(&row).expect("append");
            w.consumed(offset);
        }
        w.seal(mark).expect("seal");
    }

    /// Published group names under `dir`, sorted.
    fn published(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = walk(dir)
            .into_iter()
            .filter_map(|p| GroupFileName::parse(&p.to_string_lossy()))
            .map(|n| format!("{}-{}", n.first, n.last))
            .collect();
        names.sort();
        names
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
            let p = entry.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
        out
    }

    /// A writer of partition `partition` of topic `t`, staging under its own
    /// directory and publishing to `out`.
    struct Staged {
        out: tempfile::TempDir,
        staging: tempfile::TempDir,
        store: OutputStore,
        writer: PartitionWriter,
    }

    fn staged(partition: i32) -> Staged {
        let out = tempfile::tempdir().expect("tempdir");
        let staging = tempfile::tempdir().expect("tempdir");
        let store =
            OutputStore::open(&out.path().to_string_lossy(), &Default::default()).expect("store");
        let template = ParquetSinkConfig::new(staging.path());
        let writer = PartitionWriter::open(
            staging.path(),
            "t".into(),
            partition,
            &template,
            &ChunkEncoders::new(),
        )
        .expect("open");
        Staged {
            out,
            staging,
            store,
            writer,
        }
    }

    #[test]
    fn sealed_groups_are_published_in_order_once_delivered() {
        let Staged {
            out,
            staging: _staging,
            store,
            writer: mut w,
        } = staged(0);
        let mut ledger = crate::sink::kafka::DeliveryLedger::default();

        // Group 0-9 waits for one alert, group 10-19 for another.
        let first_alert = ledger.assign();
        seal_group(&mut w, 0..10, ledger.sent_mark());
        // The sealed rows no longer count towards the group's row limit.
        assert!(!w.is_full(&RollLimits {
            max_rows: 1,
            max_bytes: u64::MAX,
            max_age: Duration::MAX,
            max_open_files: usize::MAX,
        }));
        let second_alert = ledger.assign();
        seal_group(&mut w, 10..20, ledger.sent_mark());
        // The new group starts empty: nothing more to seal.
        w.seal(ledger.sent_mark()).expect("seal");

        // The second alert is delivered first: nothing is published, since
        // the older group still waits and groups are published in order.
        ledger.delivered(second_alert);
        let none = w
            .publish_delivered(ledger.delivered_mark(), &store)
            .expect("publish");
        assert_eq!(none, None);
        assert!(published(out.path()).is_empty());
        assert!(w.sealed_mark().is_some());

        ledger.delivered(first_alert);
        let next = w
            .publish_delivered(ledger.delivered_mark(), &store)
            .expect("publish");
        assert_eq!(next, Some(20));
        assert_eq!(published(out.path()), ["0-9", "10-19"]);
        assert_eq!(w.files_published(), 2);
        assert_eq!(w.sealed_mark(), None);
    }

    #[test]
    fn discarding_drops_sealed_groups_not_published() {
        let Staged {
            out,
            staging,
            store,
            writer: mut w,
        } = staged(3);
        let mut ledger = crate::sink::kafka::DeliveryLedger::default();
        let _never = ledger.assign();
        seal_group(&mut w, 0..5, ledger.sent_mark());
        assert_eq!(
            w.publish_delivered(ledger.delivered_mark(), &store)
                .expect("publish"),
            None
        );
        w.discard();
        assert!(published(out.path()).is_empty());
        assert!(!staging.path().join("t+3").exists());
    }
}
