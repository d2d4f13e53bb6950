//! The per-record path shared by `replay` (and later `run`): decode → resolve
//! actual → decide expected → verdict → sinks.
//!
//! [`RecordProcessor::process_payload`] takes one payload (a log line or a Kafka
//! message) and writes one enriched row per access-log record it holds, feeds
//! alert-worthy verdicts to the [`AlertAggregator`], and turns bad input into
//! dead letters. Records, requests, decisions and rows all borrow from the
//! payload or the indexes; the scratch buffers here are reused across records,
//! so the hot path does not allocate.
//!
//! # Static and live indexes
//!
//! [`RecordProcessor::new`] judges every record against one index (`replay`,
//! `explain`-style use). [`RecordProcessor::new_live`] +
//! [`RecordProcessor::process_payload_live`] judge each record against the
//! snapshot of an [`IndexHistory`] in force at the record's event time
//! (records without a time use the newest): a record within the grace window
//! of a routing change whose verdict would raise an alert gets
//! [`Verdict::InTransition`] instead, and records carry `index_stale` while
//! the source has not confirmed the index for too long. Until the history is
//! ready, `process_payload_live` returns [`LiveOutcome::Held`] without
//! touching the payload: keep it and offer it again.

use std::sync::OnceLock;

use crate::decode::{self, AccessRecord, DecodeError, DecodeOptions, Format};
use crate::gateway::compile::CompiledGateway;
use crate::gateway::{Decision, Headers, Outcome, Protocol, Request, RouteIndex, Scheme};
use crate::kube::history::now_us;
use crate::kube::{HistoryView, IndexHistory, Snapshot};
use crate::resolve::{
    ActualBackend, BackendServiceIds, EndpointIndex, EvidenceNames, GatewayAction, HitRule,
    Implementation, NameMemo, ResolveIds, ResolveInput, RouteRef, RuleAt, RuleCluster, RuleRef,
    UpstreamEvidence, UpstreamName,
};
use crate::sink::alerts::{Alert, AlertAggregator, AlertOccurrence, AlertType};
use crate::sink::deadletter::{DeadLetterSink, DeadLetterSource};
use crate::sink::parquet::ParquetSink;
use crate::sink::row::{EnrichedRow, StrList, UpstreamId, ValueIds};
use crate::sink::SinkError;
use crate::verdict::{judge_known_allowed, GatewayAnswer, Judgement, Observation, Verdict};

/// Most upstream attempts and kept headers a record carries into a request;
/// more are truncated (kept on the stack, no allocation).
const MAX_ATTEMPTS: usize = 8;
const MAX_HEADERS: usize = 16;

/// Settings of the per-record path.
#[derive(Debug, Clone, Default)]
pub struct PipelineOptions {
    /// Envelope/format selection and kept headers.
    pub decode: DecodeOptions,
    /// The gateway implementation, when known (naming scheme of clusters).
    pub implementation: Option<Implementation>,
    /// Gateway (`ns/name`) for records whose envelope does not name one; when
    /// unset and the index holds exactly one Gateway, that one is used.
    pub default_gateway: Option<String>,
}

/// Where a payload came from.
#[derive(Debug, Clone, Copy)]
pub enum Origin<'a> {
    /// A line of a file (or stdin, named `-`).
    File {
        /// File name.
        name: &'a str,
        /// Byte offset of the line.
        offset: u64,
        /// 1-based line number.
        line: u64,
    },
    /// A Kafka message.
    Kafka {
        /// Topic.
        topic: &'a str,
        /// Partition.
        partition: i32,
        /// Offset.
        offset: i64,
    },
}

impl Origin<'_> {
    fn dead_letter_source(&self) -> DeadLetterSource {
        match *self {
            Origin::File {
                name: "-",
                offset,
                line,
            } => DeadLetterSource::Stdin {
                byte_offset: Some(offset),
                line: Some(line),
            },
            Origin::File { name, offset, line } => DeadLetterSource::File {
                path: name.to_string(),
                byte_offset: Some(offset),
                line: Some(line),
            },
            Origin::Kafka {
                topic,
                partition,
                offset,
            } => DeadLetterSource::Kafka {
                topic: topic.to_string(),
                partition,
                offset,
            },
        }
    }
}

/// Counts of what the pipeline did.
#[derive(Debug, Clone, Default)]
pub struct PipelineStats {
    /// Payloads seen.
    pub payloads: u64,
    /// Records enriched and written.
    pub records: u64,
    /// Records per verdict, indexed like [`Verdict::ALL`].
    pub verdicts: [u64; Verdict::ALL.len()],
    /// Records whose decision was ambiguous.
    pub ambiguous: u64,
    /// Dead letters written.
    pub dead_letters: u64,
    /// Alert messages emitted (firing and resolved).
    pub alerts: u64,
    /// Records judged with a Service-id table that applies to their indexes
    /// (the processor's own, or the snapshot's in `run`): Services compared
    /// by id, not by name.
    pub by_service_id: u64,
}

impl PipelineStats {
    fn count(&mut self, decision: &Decision<'_>, judgement: Judgement) {
        self.records += 1;
        if decision.is_ambiguous() {
            self.ambiguous += 1;
        }
        if let Some(i) = Verdict::ALL.iter().position(|v| *v == judgement.verdict) {
            self.verdicts[i] += 1;
        }
    }

    /// Count of one verdict.
    pub fn verdict(&self, v: Verdict) -> u64 {
        Verdict::ALL
            .iter()
            .position(|x| *x == v)
            .map_or(0, |i| self.verdicts[i])
    }
}

/// The outputs a processor writes to.
pub struct Outputs<'o> {
    /// Enriched rows.
    pub parquet: &'o mut ParquetSink,
    /// Alert aggregation.
    pub alerts: &'o mut AlertAggregator,
    /// Alerts emitted by the aggregator, to be drained by the caller.
    pub alert_queue: &'o mut Vec<Alert>,
    /// Dead letters.
    pub dead_letters: &'o mut dyn DeadLetterSink,
}

/// What [`RecordProcessor::process_payload_live`] did with a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveOutcome {
    /// Every record of the payload was judged (or dead-lettered).
    Processed,
    /// The index is not ready yet (initial lists not synced): nothing was
    /// done; offer the payload again later.
    Held,
}

/// Which Service-id table a record may use (it applies only if
/// [`BackendServiceIds::is_for`] the record's indexes).
#[derive(Clone, Copy)]
enum IdTable<'x> {
    /// The processor's own (built for its own indexes).
    Own,
    /// A snapshot's ([`crate::kube::Snapshot::service_ids`]).
    Of(Option<&'x BackendServiceIds<'x>>),
}

/// What a record is judged against: a route index, its endpoint index, the
/// Service-id table that may apply to them, and how far they can be trusted.
#[derive(Clone, Copy)]
struct JudgedBy<'x> {
    index: &'x RouteIndex,
    endpoints: &'x EndpointIndex,
    table: IdTable<'x>,
    trust: Trust,
}

/// How far a record's snapshot can be trusted.
#[derive(Debug, Clone, Copy, Default)]
struct Trust {
    in_transition: bool,
    stale: bool,
}

/// Turns payloads into enriched rows.
pub struct RecordProcessor<'i> {
    index: &'i RouteIndex,
    endpoints: &'i EndpointIndex,
    options: &'i PipelineOptions,
    stats: PipelineStats,
    /// Reused buffer for expected backend keys, taken by the records that
    /// collect their expected set; its borrows never outlive a record (see
    /// [`recycle`]).
    expected: Vec<&'static str>,
    /// Backend ids ([`RouteIndex::allowed_backend_id`]) of `expected`, one
    /// per key; reused across records.
    expected_ids: Vec<u32>,
    /// Service ids ([`BackendServiceIds::allowed`]) of `expected`, one per
    /// key, when `service_ids` applies to the record's indexes; reused.
    expected_services: Vec<u32>,
    /// Service ids of the own index's backends in the own endpoint index
    /// (`None` when names contain `/`, see [`BackendServiceIds::build`]):
    /// Services are compared by id on the records judged against them.
    service_ids: Option<BackendServiceIds<'i>>,
    gateway_key: String,
    actual_key: String,
    /// The last listener lookup (on any index: it is keyed by the index's
    /// instance).
    last_listener: Option<LastListener>,
    /// Cluster names parsed so far (a pure function of the text, so valid
    /// across index snapshots).
    names: NameMemo,
}

/// Empties a vector of borrowed strings and hands its allocation on with
/// another lifetime (an in-place `collect` over an empty iterator: no
/// allocation, no unsafe).
fn recycle<'b>(mut v: Vec<&str>) -> Vec<&'b str> {
    v.clear();
    v.into_iter().map(|_| "").collect()
}

/// The empty index a live processor holds for [`RecordProcessor::process_payload`].
fn empty_indexes() -> &'static (RouteIndex, EndpointIndex) {
    static EMPTY: OnceLock<(RouteIndex, EndpointIndex)> = OnceLock::new();
    EMPTY.get_or_init(|| {
        let objects = crate::gateway::ObjectSet::default();
        (
            RouteIndex::compile(&objects, crate::gateway::CompileOptions::default()),
            EndpointIndex::build(&objects),
        )
    })
}

impl<'i> RecordProcessor<'i> {
    /// A processor over one route index snapshot and endpoint index.
    pub fn new(
        index: &'i RouteIndex,
        endpoints: &'i EndpointIndex,
        options: &'i PipelineOptions,
    ) -> Self {
        RecordProcessor {
            index,
            endpoints,
            options,
            stats: PipelineStats::default(),
            expected: Vec::with_capacity(8),
            expected_ids: Vec::with_capacity(8),
            expected_services: Vec::with_capacity(8),
            service_ids: BackendServiceIds::build(index, endpoints),
            gateway_key: String::with_capacity(64),
            actual_key: String::with_capacity(64),
            last_listener: None,
            names: NameMemo::new(),
        }
    }

    /// A processor for [`RecordProcessor::process_payload_live`]: it has no
    /// index of its own (its `process_payload` judges against an empty one).
    pub fn new_live(options: &'i PipelineOptions) -> Self {
        let (index, endpoints) = empty_indexes();
        Self::new(index, endpoints, options)
    }

    /// Processes one payload, judging each record against the snapshot of
    /// `history` in force at its event time. Returns [`LiveOutcome::Held`]
    /// (and does nothing) while the history is not ready. To process many
    /// payloads, take one [`IndexHistory::view`] and use
    /// [`process_payload_in_view`](Self::process_payload_in_view).
    pub fn process_payload_live(
        &mut self,
        payload: &[u8],
        origin: Origin<'_>,
        out: &mut Outputs<'_>,
        history: &IndexHistory,
    ) -> Result<LiveOutcome, SinkError> {
        match history.view() {
            Some(view) => {
                self.process_payload_in_view(payload, origin, out, &view)?;
                Ok(LiveOutcome::Processed)
            }
            None => Ok(LiveOutcome::Held),
        }
    }

    /// Processes one payload, judging each record against the snapshot of
    /// `view` in force at its event time.
    pub fn process_payload_in_view(
        &mut self,
        payload: &[u8],
        origin: Origin<'_>,
        out: &mut Outputs<'_>,
        view: &HistoryView,
    ) -> Result<(), SinkError> {
        self.for_each_record(payload, origin, out, |this, record, out| {
            let time = record.time_us.unwrap_or_else(now_us);
            // `at` finds a snapshot whenever the view holds one, and views are
            // only taken of a non-empty history; should it not, the record is
            // judged against the processor's own (empty) index and marked
            // stale rather than dropped.
            let Some(at) = view.at(time) else {
                let stale = Trust {
                    in_transition: false,
                    stale: true,
                };
                return this.judge_record(this.own(stale), record, origin, out);
            };
            // The snapshot's own table: ids are only comparable within the
            // pair of indexes they were given for.
            let snapshot: &Snapshot = at.snapshot;
            let by = JudgedBy {
                index: &snapshot.index,
                endpoints: &snapshot.endpoints,
                table: IdTable::Of(snapshot.service_ids()),
                trust: Trust {
                    in_transition: at.in_transition,
                    stale: at.stale,
                },
            };
            this.judge_record(by, record, origin, out)
        })
    }

    /// What has been processed so far.
    pub fn stats(&self) -> &PipelineStats {
        &self.stats
    }

    /// Processes one payload. Sink errors are returned; bad input never is (it
    /// becomes a dead letter).
    pub fn process_payload(
        &mut self,
        payload: &[u8],
        origin: Origin<'_>,
        out: &mut Outputs<'_>,
    ) -> Result<(), SinkError> {
        let by = self.own(Trust::default());
        self.judge_payload(payload, origin, out, by)
    }

    /// The processor's own indexes and table, trusted as `trust` says.
    fn own(&self, trust: Trust) -> JudgedBy<'i> {
        JudgedBy {
            index: self.index,
            endpoints: self.endpoints,
            table: IdTable::Own,
            trust,
        }
    }

    /// Processes one payload, judging every record against `by`.
    fn judge_payload(
        &mut self,
        payload: &[u8],
        origin: Origin<'_>,
        out: &mut Outputs<'_>,
        by: JudgedBy<'i>,
    ) -> Result<(), SinkError> {
        self.for_each_record(payload, origin, out, |this, record, out| {
            this.judge_record(by, record, origin, out)
        })
    }

    /// Decodes one payload and hands each record to `judge`; decode errors
    /// become dead letters. Stops at the first sink error.
    fn for_each_record(
        &mut self,
        payload: &[u8],
        origin: Origin<'_>,
        out: &mut Outputs<'_>,
        mut judge: impl FnMut(&mut Self, &AccessRecord<'_>, &mut Outputs<'_>) -> Result<(), SinkError>,
    ) -> Result<(), SinkError> {
        self.stats.payloads += 1;
        let mut result = Ok(());
        let options = self.options;
        decode::decode_payload_in_place(payload, &options.decode, &mut |record| {
            if result.is_err() {
                return;
            }
            let judged = match record {
                Ok(record) => judge(self, record, out),
                Err(error) => self.dead_letter(&error, payload, origin, out),
            };
            // Only an error is stored: `result` is `Ok` here, and assigning
            // every record's `Ok` would run the drop of the old value.
            if let Err(error) = judged {
                result = Err(error);
            }
        });
        result
    }

    /// Writes a dead letter for a payload that could not be decoded.
    pub fn dead_letter(
        &mut self,
        error: &DecodeError,
        payload: &[u8],
        origin: Origin<'_>,
        out: &mut Outputs<'_>,
    ) -> Result<(), SinkError> {
        self.stats.dead_letters += 1;
        out.dead_letters.record(
            error.reason(),
            error.to_string(),
            origin.dead_letter_source(),
            payload,
        )
    }

    fn judge_record<'x>(
        &mut self,
        by: JudgedBy<'x>,
        record: &'x AccessRecord<'_>,
        origin: Origin<'_>,
        out: &mut Outputs<'_>,
    ) -> Result<(), SinkError>
    where
        'i: 'x,
    {
        // Empty, without an allocation: the buffer is only taken (and handed
        // back) for records whose expected set is collected.
        let mut expected: Vec<&'x str> = Vec::new();
        let result = self.judge_with(by, record, origin, out, &mut expected);
        if expected.capacity() > 0 {
            self.expected = recycle(expected);
        }
        result
    }

    fn judge_with<'x>(
        &mut self,
        by: JudgedBy<'x>,
        record: &'x AccessRecord<'_>,
        origin: Origin<'_>,
        out: &mut Outputs<'_>,
        expected: &mut Vec<&'x str>,
    ) -> Result<(), SinkError>
    where
        'i: 'x,
    {
        let JudgedBy {
            index,
            endpoints,
            table,
            trust,
        } = by;
        // Gateway identity: the envelope's pod labels, else the configured default.
        self.gateway_key.clear();
        let gateway = match (&record.gateway_namespace, &record.gateway_name) {
            (Some(ns), Some(name)) => {
                self.gateway_key.push_str(ns);
                self.gateway_key.push('/');
                self.gateway_key.push_str(name);
                Some(self.gateway_key.as_str())
            }
            _ => self.options.default_gateway.as_deref(),
        };
        // The Gateway and its position in `index.gateways`.
        let compiled_gateway = match gateway {
            Some(key) => index
                .gateway_by_key
                .get(key)
                .and_then(|&g| Some((g, index.gateways.get(g)?))),
            None if index.gateways.len() == 1 => index.gateways.first().map(|g| (0, g)),
            None => None,
        };
        let found = match (compiled_gateway, record.listener_port) {
            (Some((at, gateway)), Some(logged)) => remembered_listener_port(
                &mut self.last_listener,
                (index.instance(), at),
                gateway,
                logged,
            ),
            _ => None,
        };
        let (port, scheme) = listener_scheme(record, found);
        // The record's texts as `&str`, each read out of its `Cow` once: the
        // request, the evidence and the row share them.
        let host = record.authority.as_deref();
        let method = record.method.as_deref();
        let path = record.path.as_deref();
        let response_flags = record.response_flags.as_deref();
        let request_id = record.request_id.as_deref();
        let upstream_cluster = record.upstream_cluster.as_deref();

        // Only records with kept headers pay for the 512-byte pair array.
        let mut header_pairs: [(&str, &str); MAX_HEADERS];
        let known_headers: &[(&str, &str)] = if record.headers.is_empty() {
            &[]
        } else {
            header_pairs = [("", ""); MAX_HEADERS];
            let n_headers = record.headers.len().min(MAX_HEADERS);
            for (slot, (name, value)) in header_pairs.iter_mut().zip(&record.headers) {
                *slot = (name.as_ref(), value.as_ref());
            }
            &header_pairs[..n_headers]
        };
        let request = Request {
            gateway,
            port,
            scheme,
            sni: record.requested_server_name.as_deref(),
            host,
            method,
            path: path.unwrap_or("/"),
            // Formats that log the request target carry the query when there is
            // one; HAProxy ingress logs only host+path, so its query is unknown.
            query: if record.format == Format::HaproxyIngress {
                record.query.as_deref()
            } else {
                Some(record.query.as_deref().unwrap_or(""))
            },
            headers: Headers {
                known: known_headers,
                others_unknown: true,
            },
            protocol: match record.protocol {
                Some(decode::Protocol::Grpc) => Protocol::Grpc,
                _ => Protocol::Http,
            },
        };
        let decision = index.decide(&request);
        // Service ids apply to the indexes the table was built from (the
        // processor's own, or the snapshot's); otherwise names are compared.
        let service_ids: Option<&BackendServiceIds<'x>> = match table {
            IdTable::Own => self.service_ids.as_ref(),
            IdTable::Of(table) => table,
        };
        let service_ids = service_ids.filter(|table| table.is_for(index, endpoints));
        if service_ids.is_some() {
            self.stats.by_service_id += 1;
        }
        // The expected set and the winning rule: from the table when one
        // rule won alone (the usual decision), else collected from the
        // decision's allowed backends.
        let sole = match (service_ids, decision.hit) {
            (Some(table), Some(h)) if decision.alternatives.is_empty() => {
                table.sole_winner(h.route_id(), h.rule_pos())
            }
            _ => None,
        };
        let set = match sole {
            Some(sole) if decision.outcome == Outcome::Forward => ExpectedSet {
                keys: sole.keys(),
                ids: sole.allowed_ids(),
                services: Some(sole.services()),
                hit_rule: Some(sole.rule()),
            },
            Some(sole) => ExpectedSet {
                keys: &[],
                ids: &[],
                services: Some(&[]),
                hit_rule: Some(sole.rule()),
            },
            None => {
                if expected.capacity() == 0 {
                    *expected = recycle(std::mem::take(&mut self.expected));
                }
                let complete = collect_expected(
                    index,
                    service_ids,
                    &decision,
                    expected,
                    &mut self.expected_ids,
                    &mut self.expected_services,
                );
                // What the row and the named-rule check need of the winning
                // rule, from the table (the route and the rule objects are
                // not read).
                let hit_rule = match (service_ids, decision.hit) {
                    (Some(table), Some(h)) => h
                        .allowed_backends()
                        .first()
                        .and_then(|first| table.hit_rule(index, h.route_id(), first)),
                    _ => None,
                };
                ExpectedSet {
                    keys: expected.as_slice(),
                    ids: self.expected_ids.as_slice(),
                    services: complete.then_some(self.expected_services.as_slice()),
                    hit_rule,
                }
            }
        };
        let ExpectedSet {
            keys: expected_keys,
            ids: expected_ids,
            services: expected_services,
            hit_rule,
        } = set;

        // The usual upstream host: one known pod's `a.b.c.d:port`, spelled
        // canonically. Found by its text in the endpoint index, it is a single
        // attempt (no `,`, space or padding), and the resolver is handed its
        // address and candidates instead of parsing and looking it up again.
        let answered = record
            .upstream_addrs
            .raw()
            .and_then(|raw| Some((raw, endpoints.lookup_canonical_v4(raw)?)));
        // Only records with several attempts pay for the 128-byte array.
        let one_attempt: [&str; 1];
        let mut attempts: [&str; MAX_ATTEMPTS];
        let upstream_hosts: &[&str] = if let Some((raw, _)) = answered {
            one_attempt = [raw];
            &one_attempt
        } else if let Some(single) = record.upstream_addrs.single() {
            // The usual single `ip:port`: no split.
            one_attempt = [single];
            &one_attempt
        } else {
            attempts = [""; MAX_ATTEMPTS];
            let mut n_attempts = 0;
            for (slot, host) in attempts.iter_mut().zip(record.upstream_addrs.iter()) {
                *slot = host;
                n_attempts += 1;
            }
            &attempts[..n_attempts]
        };
        let evidence = UpstreamEvidence {
            implementation_hint: self.options.implementation,
            route_name: record.route_name.as_deref(),
            upstream_cluster,
            upstream_hosts,
            response_flags,
            status: record.status,
        };
        // The usual record names the rule the decision chose: its cluster
        // name is then the table's text for that rule (one compare instead
        // of the memo's hash lookup).
        let known_cluster = match (sole.and_then(|s| s.cluster()), evidence.upstream_cluster) {
            (Some(cluster), Some(raw))
                if RuleCluster::applies_to(evidence.implementation_hint.unwrap_or_default()) =>
            {
                cluster.parse(raw).map(|rule| (rule, cluster.at()))
            }
            _ => None,
        };
        let names = match known_cluster {
            Some((rule, at)) => EvidenceNames::of_rule_cluster(&evidence, rule, at),
            None => EvidenceNames::parse_memo(&evidence, &mut self.names),
        };
        let resolve_ids = service_ids
            .zip(expected_services)
            .map(|(table, expected)| ResolveIds { table, expected });
        let resolution = ResolveInput {
            evidence: &evidence,
            names: &names,
            endpoints,
            routes: index,
            expected_backend_keys: expected_keys,
            ids: resolve_ids,
            answered: answered.map(|(_, at)| at),
        }
        .resolve();
        names.remember_in(&evidence, &resolution, &mut self.names);
        let (actual, actual_service) = (resolution.actual, resolution.service);
        // With ids on both sides: the actual backend's position among the
        // expected ones (keys are unique there, so at most one).
        let actual_expected_at = match (resolve_ids, actual_service) {
            (Some(ids), Some(service)) => Some(ids.expected.iter().position(|&s| s == service)),
            _ => None,
        };
        let observation = Observation {
            actual_backend: actual.backend.map(|b| (b.namespace, b.name)),
            answer: answer_of(&actual, record.status),
            status: record.status,
            named_rule_expected: match known_cluster {
                // The log names only the cluster, and the cluster is the
                // decision's sole winner: the named rule is the winner
                // (what `named_rule_expected` finds, through the position
                // or, after an early answer of the resolver, by name).
                Some(_) if evidence.route_name.is_none() => Some(true),
                _ => named_rule_expected(&names, resolution.cluster_rule_at, &decision, hit_rule),
            },
        };
        let mut judgement = judge_known_allowed(
            &decision,
            &observation,
            actual_expected_at.map(|at| at.is_some()),
        );
        if trust.in_transition && judgement.verdict.is_alert() {
            judgement = Judgement {
                verdict: Verdict::InTransition,
                reason: IN_TRANSITION_REASON,
            };
        }
        self.stats.count(&decision, judgement);

        // The actual Service is usually an allowed backend: then its key
        // (`namespace/name`, as `actual_key` would spell it) and id come from
        // the index, and no key is built.
        let allowed_actual = match actual_expected_at {
            // `expected` holds the allowed backends' keys, one per id.
            Some(at) => at.and_then(|at| Some((*expected_keys.get(at)?, *expected_ids.get(at)?))),
            None => actual.backend.and_then(|b| {
                expected_ids.iter().find_map(|&id| {
                    index
                        .allowed_backend(id)
                        .filter(|a| a.namespace == b.namespace && a.name == b.name)
                        .map(|a| (a.key.as_str(), id))
                })
            }),
        };
        self.actual_key.clear();
        let (actual_backend, actual_backend_id) = match (allowed_actual, actual.backend) {
            (Some((allowed_key, id)), _) => (Some(allowed_key), Some(id)),
            (None, Some(b)) => {
                // push_str, not write!: no formatting machinery per record.
                self.actual_key.push_str(b.namespace);
                self.actual_key.push('/');
                self.actual_key.push_str(b.name);
                (Some(self.actual_key.as_str()), None)
            }
            (None, None) => (None, None),
        };
        let hit = decision.hit;
        let row = EnrichedRow {
            event_time: record.time_us,
            gateway: decision.gateway.map(|g| g.key.as_str()).or(gateway),
            listener: decision.listener.map(|l| l.key.as_str()),
            host,
            method,
            path,
            status: record.status.map(i32::from),
            response_flags,
            duration_ms: record.duration_ms.map(|d| d as f64),
            bytes_sent: record.bytes_sent.and_then(|b| i64::try_from(b).ok()),
            request_id,
            actual_backend,
            actual_upstream: upstream_hosts.last().copied().or(upstream_cluster),
            actual_source: actual.source,
            expected_backends: decision.gateway.map(|_| StrList::Borrowed(expected_keys)),
            expected_status: decision.status.map(i32::from),
            route: match hit_rule {
                Some(r) => Some(r.route_key),
                None => hit.map(|h| h.route().key.as_str()),
            },
            route_kind: match hit_rule {
                Some(r) => Some(r.route_kind.as_str()),
                None => hit.map(|h| h.route().kind.as_str()),
            },
            rule: match hit_rule {
                Some(r) => i32::try_from(r.rule_index).ok(),
                None => hit.and_then(|h| i32::try_from(h.rule().index).ok()),
            },
            verdict: judgement.verdict.as_str(),
            verdict_reason: Some(judgement.reason),
            index_version: Some(index.version),
            input_format: record.format.as_str(),
            source_file: match origin {
                Origin::File { name, .. } => Some(name),
                Origin::Kafka { .. } => None,
            },
            source_offset: match origin {
                Origin::File { offset, .. } => i64::try_from(offset).ok(),
                Origin::Kafka { .. } => None,
            },
            kafka_topic: match origin {
                Origin::Kafka { topic, .. } => Some(topic),
                Origin::File { .. } => None,
            },
            kafka_partition: match origin {
                Origin::Kafka { partition, .. } => Some(partition),
                Origin::File { .. } => None,
            },
            kafka_offset: match origin {
                Origin::Kafka { offset, .. } => Some(offset),
                Origin::File { .. } => None,
            },
            decision_ambiguous: decision.is_ambiguous(),
            ambiguity_reason: decision.is_ambiguous().then(|| decision.unknowns.reason()),
            upstream_attempts: StrList::Borrowed(upstream_hosts),
            index_stale: trust.stale,
            // Ids of what came from `index` (valid with `index.instance()`) and
            // of closed sets: the Parquet writer maps them to dictionary
            // entries without hashing the strings.
            ids: ValueIds {
                index: Some(index.instance()),
                // The record's Gateway, when the decision is on it, has
                // the position it was found at.
                gateway: decision.gateway.and_then(|g| match compiled_gateway {
                    Some((at, known)) if std::ptr::eq(g, known) => u32::try_from(at).ok(),
                    _ => index.gateway_id(g),
                }),
                listener: decision.listener.and_then(|l| index.listener_id(l)),
                route: hit.map(|h| h.route_id()),
                actual_backend: actual_backend_id,
                expected_backends: expected_ids,
                route_kind: match hit_rule {
                    Some(r) => Some(r.route_kind as u32),
                    None => hit.map(|h| h.route().kind as u32),
                },
                verdict: Some(judgement.verdict as u32),
                input_format: Some(record.format as u32),
                // `actual_upstream` is the text found in `endpoints` then.
                actual_upstream: answered.and_then(|(_, at)| {
                    Some(UpstreamId {
                        endpoints: endpoints.instance(),
                        address: at.address_id()?,
                    })
                }),
                verdict_reason: Some(judgement.reason),
            },
        };
        out.parquet.append(&row)?;

        if let Some(alert_type) = alert_type_of(judgement.verdict) {
            let before = out.alert_queue.len();
            out.alerts.observe(
                &AlertOccurrence {
                    alert_type,
                    gateway: row.gateway,
                    route: row.route,
                    route_kind: row.route_kind,
                    rule: row.rule,
                    expected_backends: StrList::Borrowed(expected_keys),
                    actual_backend,
                    reason: judgement.reason,
                    event_time: record.time_us.unwrap_or(0),
                    request_id,
                },
                out.alert_queue,
            );
            self.stats.alerts += (out.alert_queue.len() - before) as u64;
        } else if let Some(t) = record.time_us {
            let before = out.alert_queue.len();
            out.alerts.advance_to(t, out.alert_queue);
            self.stats.alerts += (out.alert_queue.len() - before) as u64;
        }
        Ok(())
    }
}

/// The expected backends of a record's decision as the resolver, the verdict
/// and the row read them, with what the Service-id table knows of the
/// winning rule.
#[derive(Clone, Copy)]
struct ExpectedSet<'e> {
    /// `namespace/name` keys, each once, in the decision's order.
    keys: &'e [&'e str],
    /// Allowed backend ids ([`RouteIndex::allowed_backend_id`]): one per key,
    /// or none.
    ids: &'e [u32],
    /// Service ids ([`BackendServiceIds::allowed`]), one per key, when the
    /// table applies to the record's indexes.
    services: Option<&'e [u32]>,
    /// The winning rule, read from the table.
    hit_rule: Option<HitRule<'e>>,
}

/// Collects the expected set of `decision` (its allowed backends, each key
/// once) into `keys`, with their allowed backend ids into `ids` (all or
/// none, see [`ValueIds`]) and, when `service_ids` applies to `index`, their
/// Service ids into `services`. Returns whether `services` holds one id per
/// key. Equal Service ids are equal keys (see [`BackendServiceIds`]); without
/// ids, the keys are compared.
fn collect_expected<'x>(
    index: &'x RouteIndex,
    service_ids: Option<&BackendServiceIds<'x>>,
    decision: &Decision<'x>,
    keys: &mut Vec<&'x str>,
    ids: &mut Vec<u32>,
    services: &mut Vec<u32>,
) -> bool {
    keys.clear();
    ids.clear();
    services.clear();
    let mut ids_complete = true;
    let mut services_complete = service_ids.is_some();
    for backend in decision.allowed_backends() {
        let id = index.allowed_backend_id(backend);
        // With the table, the backend's Service id and key come from it
        // (the backend itself is not read).
        let allowed = match (service_ids, id) {
            (Some(table), Some(id)) => table.allowed(id),
            _ => None,
        };
        let service = allowed.map(|a| a.service);
        let key = match allowed {
            Some(a) => a.key,
            None => backend.key.as_str(),
        };
        let duplicate = match service {
            Some(service) if services_complete => services.contains(&service),
            _ => keys.contains(&key),
        };
        if !duplicate {
            keys.push(key);
            match id {
                Some(id) => ids.push(id),
                None => ids_complete = false,
            }
            match service {
                Some(service) => services.push(service),
                None => services_complete = false,
            }
        }
    }
    if !ids_complete {
        ids.clear();
    }
    if !services_complete {
        services.clear();
    }
    services_complete
}

/// Reason of [`Verdict::InTransition`] verdicts given by the live path.
pub const IN_TRANSITION_REASON: &str =
    "a routing change took effect within the grace window; the gateway may not have applied it yet";

/// The listener port and scheme of a record on its Gateway.
///
/// Proxies log the *container* port: Envoy Gateway shifts privileged ports by
/// 10000 (80 → 10080), Contour by 8000. The logged port is taken as is when
/// the Gateway has a listener on it, else the shifted-back port is tried. The
/// scheme is HTTPS when only an HTTPS listener uses the port (or, with no port,
/// when the request carried an SNI).
#[cfg(test)]
fn listener_of(
    gateway: Option<&CompiledGateway>,
    record: &AccessRecord<'_>,
) -> (Option<u16>, Scheme) {
    let found = match (gateway, record.listener_port) {
        (Some(gateway), Some(logged)) => listener_port_of(gateway, logged),
        _ => None,
    };
    listener_scheme(record, found)
}

/// A port on which a Gateway has listeners, and which protocols they use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ListenerPort {
    port: u16,
    http: bool,
    https: bool,
}

/// A listener lookup remembered by a processor: the Gateway (see
/// [`remembered_listener_port`]), the logged port and the answer.
#[derive(Debug, Clone, Copy)]
struct LastListener {
    gateway: (u64, usize),
    logged: u16,
    found: Option<ListenerPort>,
}

/// The port (logged or shifted back) at which `gateway` has a listener, with
/// whether an HTTP and an HTTPS listener use it (see [`listener_of`]).
fn listener_port_of(gateway: &CompiledGateway, logged: u16) -> Option<ListenerPort> {
    let candidates = [
        Some(logged),
        logged.checked_sub(10000),
        logged.checked_sub(8000),
    ];
    for port in candidates.into_iter().flatten() {
        let http = gateway.by_port.contains_key(&(port, false));
        let https = gateway.by_port.contains_key(&(port, true));
        if http || https {
            return Some(ListenerPort { port, http, https });
        }
    }
    None
}

/// [`listener_port_of`], remembered in `last` (one entry: a log usually has
/// one Gateway and port). `gateway_id` names the Gateway by the
/// [`RouteIndex::instance`] of its index and its position in the index's
/// `gateways`: an instance number is never reused, and indexes that share one
/// (clones) have the same content, so an equal id is an equal Gateway, on the
/// processor's own index and on live snapshots alike (a snapshot published
/// meanwhile has another instance and is looked up afresh).
fn remembered_listener_port(
    last: &mut Option<LastListener>,
    gateway_id: (u64, usize),
    gateway: &CompiledGateway,
    logged: u16,
) -> Option<ListenerPort> {
    if let Some(seen) = *last {
        if seen.gateway == gateway_id && seen.logged == logged {
            return seen.found;
        }
    }
    let found = listener_port_of(gateway, logged);
    *last = Some(LastListener {
        gateway: gateway_id,
        logged,
        found,
    });
    found
}

/// The port and scheme of [`listener_of`] from what [`listener_port_of`]
/// found (`None`: no Gateway, no logged port, or no listener on it).
fn listener_scheme(
    record: &AccessRecord<'_>,
    found: Option<ListenerPort>,
) -> (Option<u16>, Scheme) {
    let sni_scheme = if record.requested_server_name.is_some() {
        Scheme::Https
    } else {
        Scheme::Http
    };
    match found {
        Some(ListenerPort {
            port,
            http: true,
            https: true,
        }) => (Some(port), sni_scheme),
        Some(ListenerPort {
            port, http: true, ..
        }) => (Some(port), Scheme::Http),
        Some(ListenerPort { port, .. }) => (Some(port), Scheme::Https),
        None => (record.listener_port, sni_scheme),
    }
}

/// Whether the route rule the log names (Envoy Gateway route and cluster names
/// carry `kind/ns/name/rule/<i>`) is the decision's winner or an alternative.
///
/// `cluster_rule_at` is where the resolver found the cluster's rule in the
/// decision's index (the caller checks the index): when the named rule is
/// the cluster's, a hit on that route is known to have the named kind,
/// namespace and name (the lookup matched them), so only its rule index is
/// compared; other hits (another route of the same name, should there be
/// one) compare names. `hit_rule`, when known, is what the table knows of
/// the decision's winning rule (its position and index): the winner is then
/// compared without reading its route or rule.
fn named_rule_expected(
    names: &EvidenceNames<'_>,
    cluster_rule_at: Option<RuleAt>,
    decision: &Decision<'_>,
    hit_rule: Option<HitRule<'_>>,
) -> Option<bool> {
    // `names.named_rule()`, borrowed (the parsed names are large).
    let cluster_rule = match &names.cluster {
        Some(UpstreamName::Rule(rule)) => Some(rule),
        _ => None,
    };
    let named = names.route_rule.as_ref().or(cluster_rule)?;
    let named_route = match (cluster_rule, cluster_rule_at) {
        // Without a route name the named rule is the cluster's own.
        (Some(cluster_rule), Some(at))
            if names.route_rule.is_none() || same_rule_ref(cluster_rule, named) =>
        {
            Some(at)
        }
        _ => None,
    };
    if let (Some(h), Some(known), Some(at)) = (decision.hit, hit_rule, named_route) {
        // The winner is the named rule itself (same route, same position).
        if at.route == h.route_id() && at.rule == known.rule_pos {
            return Some(true);
        }
    }
    Some(
        decision
            .hit
            .iter()
            .chain(decision.alternatives.iter())
            .any(|h| {
                // Cheap integer compares first: most alternatives differ in
                // rule index or kind, and the name compare is two memcmps.
                h.rule().index == named.rule_index
                    && match named_route {
                        Some(at) if at.route == h.route_id() => true,
                        _ => {
                            h.route().kind == named.kind
                                && named.route.matches(&h.route().namespace, &h.route().name)
                        }
                    }
            }),
    )
}

/// Whether two rule references are the same parse of the same text (equal
/// kind and indexes, names borrowed from the same bytes): then they name the
/// same rule without comparing the names' bytes. `false` does not mean they
/// differ.
fn same_rule_ref(a: &RuleRef<'_>, b: &RuleRef<'_>) -> bool {
    let same_str = |x: &str, y: &str| std::ptr::eq(x.as_ptr(), y.as_ptr()) && x.len() == y.len();
    a.kind == b.kind
        && a.rule_index == b.rule_index
        && match (a.route, b.route) {
            (
                RouteRef::Exact { namespace, name },
                RouteRef::Exact {
                    namespace: namespace_b,
                    name: name_b,
                },
            ) => same_str(namespace, namespace_b) && same_str(name, name_b),
            _ => false,
        }
}

/// Maps what the resolver saw the gateway do to the verdict's vocabulary.
fn answer_of(actual: &ActualBackend<'_>, status: Option<u16>) -> GatewayAnswer {
    match actual.gateway_action {
        GatewayAction::Proxied => GatewayAnswer::Upstream,
        GatewayAction::NoRoute => GatewayAnswer::NoRoute,
        GatewayAction::Redirect => GatewayAnswer::Redirect,
        GatewayAction::DirectResponse => match status {
            Some(300..=399) => GatewayAnswer::Redirect,
            Some(404) => GatewayAnswer::NoRoute,
            _ => GatewayAnswer::Error,
        },
        GatewayAction::ClusterNotFound | GatewayAction::InvalidBackend => GatewayAnswer::Error,
        GatewayAction::NoHealthyUpstream | GatewayAction::UpstreamFailure => {
            GatewayAnswer::UpstreamFailure
        }
        GatewayAction::DownstreamDisconnect if actual.backend.is_some() => GatewayAnswer::Upstream,
        GatewayAction::DownstreamDisconnect
        | GatewayAction::LocalReply
        | GatewayAction::Unknown => GatewayAnswer::Unknown,
    }
}

/// The alert type of a verdict, for verdicts worth alerting on.
pub fn alert_type_of(verdict: Verdict) -> Option<AlertType> {
    match verdict {
        Verdict::Misrouted => Some(AlertType::Misrouted),
        Verdict::UnexpectedNoRoute => Some(AlertType::UnexpectedNoRoute),
        Verdict::UnexpectedRoute => Some(AlertType::UnexpectedRoute),
        Verdict::ServedInvalidBackend => Some(AlertType::ServedInvalidBackend),
        Verdict::UnexpectedError => Some(AlertType::UnexpectedError),
        Verdict::RedirectMismatch => Some(AlertType::RedirectMismatch),
        Verdict::Ok
        | Verdict::ExpectedError
        | Verdict::UnknownActual
        | Verdict::UnknownGateway
        | Verdict::InTransition => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::load::load_text;
    use crate::gateway::{CompileOptions, ObjectSet};

    const GATEWAY: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: infra}
spec:
  gatewayClassName: eg
  listeners:
  - {name: http, port: 80, protocol: HTTP}
  - {name: https, port: 443, protocol: HTTPS, hostname: "*.example.com", tls: {certificateRefs: [{name: c}]}}
  - {name: alt-http, port: 8443, protocol: HTTP, hostname: "a.example.com"}
  - {name: alt-https, port: 8443, protocol: HTTPS, hostname: "b.example.com", tls: {certificateRefs: [{name: c}]}}
"#;

    /// The listener rule as written before it was split into a lookup
    /// (remembered by the processor) and the scheme choice.
    fn reference(
        gateway: Option<&CompiledGateway>,
        record: &AccessRecord<'_>,
    ) -> (Option<u16>, Scheme) {
        let sni_scheme = if record.requested_server_name.is_some() {
            Scheme::Https
        } else {
            Scheme::Http
        };
        let (Some(gateway), Some(logged)) = (gateway, record.listener_port) else {
            return (record.listener_port, sni_scheme);
        };
        let candidates = [
            Some(logged),
            logged.checked_sub(10000),
            logged.checked_sub(8000),
        ];
        for port in candidates.into_iter().flatten() {
            let http = gateway.by_port.contains_key(&(port, false));
            let https = gateway.by_port.contains_key(&(port, true));
            match (http, https) {
                (true, true) => return (Some(port), sni_scheme),
                (true, false) => return (Some(port), Scheme::Http),
                (false, true) => return (Some(port), Scheme::Https),
                (false, false) => {}
            }
        }
        (Some(logged), sni_scheme)
    }

    #[test]
    fn listener_lookup_and_scheme_match_the_reference() {
        let mut set = ObjectSet::default();
        load_text(&mut set, "gw.yaml", GATEWAY).unwrap();
        let index = RouteIndex::compile(&set, CompileOptions::default());
        let gateway = index.gateways.first();
        assert!(gateway.is_some());
        let ports = [
            None,
            Some(80),
            Some(10080),
            Some(8080),
            Some(443),
            Some(10443),
            Some(8443),
            Some(18443),
            Some(16443),
            Some(5),
            Some(65535),
        ];
        let mut seen_https_only = false;
        for gw in [gateway, None] {
            for listener_port in ports {
                for sni in [None, Some("b.example.com")] {
                    let record = AccessRecord {
                        listener_port,
                        requested_server_name: sni.map(std::borrow::Cow::Borrowed),
                        ..AccessRecord::default()
                    };
                    let answer = listener_of(gw, &record);
                    seen_https_only |= answer == (Some(443), Scheme::Https) && sni.is_none();
                    assert_eq!(answer, reference(gw, &record), "{listener_port:?} {sni:?}");
                }
            }
        }
        assert!(seen_https_only, "the HTTPS-only port was not exercised");
    }

    /// HTTPRoutes `shop/r1` (host `one.example.com` → Service `a`) and
    /// `shop/r2` (`two.example.com` → `b`), created at `r1_at` and `r2_at`
    /// (the older route comes first in the compiled index).
    fn two_routes(r1_at: &str, r2_at: &str) -> ObjectSet {
        two_routes_on(80, r1_at, r2_at)
    }

    /// [`two_routes`] with the Gateway's one listener on `port`, and the
    /// Services `a` (pod 10.1.0.1) and `b` (pod 10.1.0.2).
    fn two_routes_on(port: u16, r1_at: &str, r2_at: &str) -> ObjectSet {
        use crate::test_manifests::{service_with_pod, two_routes};
        let services = service_with_pod("a", "10.1.0.1") + &service_with_pod("b", "10.1.0.2");
        two_routes(port, r1_at, r2_at, &services)
    }

    /// An Envoy Gateway access-log line for `host`.example.com at
    /// 2026-01-01T`hh`:00 UTC, served by `pod` through `shop/route`'s rule 0.
    fn envoy_line(hh: &str, host: &str, route: &str, pod: &str) -> String {
        format!(
            r#"{{"start_time":"2026-01-01T{hh}:00:00.000Z",":authority":"{host}.example.com","method":"GET","x-envoy-origin-path":"/","protocol":"HTTP/1.1","response_code":200,"response_flags":"-","upstream_host":"{pod}:8080","upstream_cluster":"httproute/shop/{route}/rule/0","route_name":"httproute/shop/{route}/rule/0/match/0/{host}_example_com","downstream_local_address":"10.0.0.1:10080","x-request-id":"r","duration":1,"bytes_sent":10}}"#
        )
    }

    /// 2026-01-01T00:00:00Z in µs, and an hour.
    const DAY_US: i64 = 1_767_225_600_000_000;
    const HOUR_US: i64 = 3_600_000_000;

    /// A ready history with one snapshot of each `(since, objects)`, in
    /// order, each with the next index version.
    fn history_of(snapshots: impl IntoIterator<Item = (i64, ObjectSet)>) -> IndexHistory {
        let history = IndexHistory::new(crate::kube::HistoryOptions::default());
        for (at, set) in snapshots {
            let index = RouteIndex::compile(
                &set,
                CompileOptions {
                    index_version: history.next_version(),
                    ..CompileOptions::default()
                },
            );
            history.publish(index, EndpointIndex::build(&set), at, true);
        }
        history.set_ready();
        history
    }

    /// Hands each of `lines` (with its origin: file `t`, line number from
    /// 1) and `sinks`' outputs to `each`.
    fn feed_lines(
        sinks: &mut TestSinks,
        lines: &[String],
        mut each: impl FnMut(&[u8], Origin<'_>, &mut Outputs<'_>),
    ) {
        let mut out = sinks.outputs();
        for (n, line) in lines.iter().enumerate() {
            let origin = Origin::File {
                name: "t",
                offset: n as u64,
                line: n as u64 + 1,
            };
            each(line.as_bytes(), origin, &mut out);
        }
    }

    /// The sinks a test processor writes to, in a temporary directory, and
    /// the options it runs with (Envoy Gateway naming).
    struct TestSinks {
        parquet: ParquetSink,
        dead: crate::sink::deadletter::DeadLetterFileSink,
        alerts: AlertAggregator,
        queue: Vec<Alert>,
        /// Last: removed after the sinks are closed.
        dir: tempfile::TempDir,
    }

    impl TestSinks {
        fn new() -> Self {
            use crate::sink::alerts::AlertAggregatorConfig;
            use crate::sink::parquet::{ParquetSinkConfig, SequentialFileNamer};
            let dir = tempfile::tempdir().expect("tempdir");
            TestSinks {
                parquet: ParquetSink::new(
                    ParquetSinkConfig::new(dir.path().join("parquet")),
                    SequentialFileNamer::new("t"),
                )
                .expect("parquet sink"),
                dead: crate::sink::deadletter::DeadLetterFileSink::open(
                    dir.path().join("dead.jsonl"),
                    1024,
                )
                .expect("dead"),
                alerts: AlertAggregator::new(AlertAggregatorConfig::default()),
                queue: Vec::new(),
                dir,
            }
        }

        fn options() -> PipelineOptions {
            PipelineOptions {
                implementation: Some(Implementation::EnvoyGateway),
                ..PipelineOptions::default()
            }
        }

        fn outputs(&mut self) -> Outputs<'_> {
            Outputs {
                parquet: &mut self.parquet,
                alerts: &mut self.alerts,
                alert_queue: &mut self.queue,
                dead_letters: &mut self.dead,
            }
        }

        /// Closes the Parquet sink and reads every row it wrote back.
        fn rows(self) -> Vec<arrow_array::RecordBatch> {
            use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
            let TestSinks { parquet, dir, .. } = self;
            let mut rows = Vec::new();
            for file in parquet.close().expect("parquet closes") {
                let reader = ParquetRecordBatchReaderBuilder::try_new(
                    std::fs::File::open(&file.path).expect("written file"),
                )
                .and_then(|b| b.build())
                .expect("parquet reads");
                rows.extend(reader.map(|b| b.expect("batch reads")));
            }
            drop(dir);
            rows
        }
    }

    /// Verdict counts and Parquet rows of `lines` judged by a processor over
    /// `own` against `judged_by` (a snapshot, as `run` does).
    fn judged(
        own: &RouteIndex,
        judged_by: &RouteIndex,
        endpoints: &EndpointIndex,
        lines: &[String],
    ) -> ([u64; Verdict::ALL.len()], Vec<arrow_array::RecordBatch>) {
        let mut sinks = TestSinks::new();
        let options = TestSinks::options();
        let mut processor = RecordProcessor::new(own, endpoints, &options);
        feed_lines(&mut sinks, lines, |line, origin, out| {
            let by = JudgedBy {
                index: judged_by,
                endpoints,
                table: IdTable::Own,
                trust: Trust::default(),
            };
            processor
                .judge_payload(line, origin, out, by)
                .expect("sinks");
        });
        assert_eq!(processor.stats().dead_letters, 0, "records decode");
        let rows = sinks.rows();
        (processor.stats().verdicts, rows)
    }

    /// A processor's Service-id table belongs to its own index: records
    /// judged against a snapshot whose routes are in another order get the
    /// snapshot's own verdicts (here Ok) and rows, not ones read through the
    /// table's positions (which would take `r1`'s rule for `r2`'s).
    #[test]
    fn records_judged_against_another_route_order_ignore_the_own_table() {
        let own_set = two_routes("2020-01-01T00:00:00Z", "2021-01-01T00:00:00Z");
        let other_set = two_routes("2021-01-01T00:00:00Z", "2020-01-01T00:00:00Z");
        let endpoints = EndpointIndex::build(&own_set);
        let own = RouteIndex::compile(&own_set, CompileOptions::default());
        let other = RouteIndex::compile(&other_set, CompileOptions::default());
        assert_eq!(own.routes[0].name, "r1");
        assert_eq!(other.routes[0].name, "r2");
        let lines: Vec<String> = [("one", "r1", "10.1.0.1"), ("two", "r2", "10.1.0.2")]
            .iter()
            .map(|(host, route, pod)| envoy_line("00", host, route, pod))
            .collect();
        let (verdicts, rows) = judged(&other, &other, &endpoints, &lines);
        let ok = Verdict::ALL
            .iter()
            .position(|v| *v == Verdict::Ok)
            .expect("Ok is a verdict");
        assert_eq!(verdicts[ok], 2, "{verdicts:?}");
        assert_eq!(rows.iter().map(|b| b.num_rows()).sum::<usize>(), 2);
        let (own_verdicts, own_rows) = judged(&own, &other, &endpoints, &lines);
        assert_eq!(own_verdicts, verdicts);
        // Same rows: routes, rules and expected backends of `other`.
        assert_eq!(own_rows, rows);
    }
    /// Rows of `lines` and the processor's stats, each record judged against
    /// the snapshot of `view` in force at its time: through
    /// `process_payload_in_view` (`by_snapshot_table`), or by names (each
    /// snapshot's table withheld), as the reference.
    fn judged_in_view(
        view: &HistoryView,
        lines: &[String],
        by_snapshot_table: bool,
    ) -> (PipelineStats, Vec<arrow_array::RecordBatch>) {
        let mut sinks = TestSinks::new();
        let options = TestSinks::options();
        let mut processor = RecordProcessor::new_live(&options);
        feed_lines(&mut sinks, lines, |line, origin, out| {
            if by_snapshot_table {
                processor
                    .process_payload_in_view(line, origin, out, view)
                    .expect("sinks");
                return;
            }
            processor
                .for_each_record(line, origin, out, |this, record, out| {
                    let at = view.at(record.time_us.unwrap_or(0)).expect("a snapshot");
                    let by = JudgedBy {
                        index: &at.snapshot.index,
                        endpoints: &at.snapshot.endpoints,
                        table: IdTable::Of(None),
                        trust: Trust {
                            in_transition: at.in_transition,
                            stale: at.stale,
                        },
                    };
                    this.judge_record(by, record, origin, out)
                })
                .expect("sinks");
        });
        assert_eq!(processor.stats().dead_letters, 0, "records decode");
        let rows = sinks.rows();
        (processor.stats().clone(), rows)
    }

    /// `run` judges each record against the snapshot in force at its time
    /// with that snapshot's Service-id table: the two snapshots here order
    /// their routes differently, so a record read through the other
    /// snapshot's table would take `r1`'s rule for `r2`'s (other rows than
    /// the name path's), and one judged without its snapshot's table would
    /// not count as judged by id.
    #[test]
    fn records_judged_against_snapshots_use_each_snapshots_own_table() {
        let (day, hour) = (DAY_US, HOUR_US);
        let history = history_of([
            (
                day - hour,
                two_routes("2020-01-01T00:00:00Z", "2021-01-01T00:00:00Z"),
            ),
            (
                day + hour,
                two_routes("2021-01-01T00:00:00Z", "2020-01-01T00:00:00Z"),
            ),
        ]);
        let view = history.view().expect("ready");
        let first = view.at(day).expect("snapshot").snapshot;
        let second = view.at(day + 2 * hour).expect("snapshot").snapshot;
        for snapshot in [first, second] {
            let table = snapshot
                .service_ids()
                .expect("names without '/' get a table");
            assert!(table.is_for(&snapshot.index, &snapshot.endpoints));
        }
        assert_eq!(first.index.routes[0].name, "r1");
        assert_eq!(second.index.routes[0].name, "r2");
        let second_table = second.service_ids().expect("table");
        assert!(!second_table.is_for(&first.index, &first.endpoints));
        let lines: Vec<String> = ["00", "02"]
            .iter()
            .flat_map(|hh| {
                [("one", "r1", "10.1.0.1"), ("two", "r2", "10.1.0.2")]
                    .map(|(host, route, pod)| envoy_line(hh, host, route, pod))
            })
            .collect();
        let (by_names, name_rows) = judged_in_view(&view, &lines, false);
        assert_eq!(by_names.by_service_id, 0);
        assert_eq!(by_names.verdict(Verdict::Ok), 4, "{:?}", by_names.verdicts);
        let (by_ids, id_rows) = judged_in_view(&view, &lines, true);
        assert_eq!(
            by_ids.by_service_id, 4,
            "every record used its snapshot's table"
        );
        assert_eq!(by_ids.verdicts, by_names.verdicts);
        assert_eq!(id_rows, name_rows);
        assert_eq!(id_rows.iter().map(|b| b.num_rows()).sum::<usize>(), 4);
    }

    /// Records that name only their cluster (no route name), the gateway's
    /// own answers among them, judged through the snapshot's table (where a
    /// cluster that names the sole winning rule is read from the table and
    /// the named rule is known to be the winner) and by names: the same
    /// verdicts and rows.
    #[test]
    fn cluster_only_records_judge_the_same_through_the_table() {
        use crate::test_manifests::service_with_pod;
        // Beside `r1` and `r2`: `r3`, whose one rule splits between `a` and
        // `b`, so a pod of neither leaves the backend unknown.
        let extra = service_with_pod("a", "10.1.0.1")
            + &service_with_pod("b", "10.1.0.2")
            + r#"---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r3, namespace: shop}
spec:
  parentRefs: [{name: gw, namespace: infra}]
  hostnames: [three.example.com]
  rules: [{backendRefs: [{name: a, port: 80, weight: 50}, {name: b, port: 80, weight: 50}]}]
"#;
        let objects = crate::test_manifests::two_routes(
            80,
            "2020-01-01T00:00:00Z",
            "2021-01-01T00:00:00Z",
            &extra,
        );
        let history = history_of([(DAY_US - HOUR_US, objects)]);
        let view = history.view().expect("ready");
        let mut lines = Vec::new();
        // Host, the route its cluster names, the answering pod.
        let served = [
            ("one", "r1", "10.1.0.1"),
            ("two", "r2", "10.1.0.2"),
            ("one", "r2", "10.1.0.2"),
            ("one", "r1", "10.1.0.2"),
            // A pod of no Service on a split rule: only the named rule tells.
            ("three", "r3", "10.9.9.9"),
            ("one", "r3", "10.9.9.9"),
        ];
        for (host, route, pod) in served {
            for (flags, status) in [("-", 200), ("UH", 503), ("NR", 404), ("UF", 503)] {
                lines.push(format!(
                    r#"{{"start_time":"2026-01-01T00:00:00.000Z",":authority":"{host}.example.com","method":"GET","x-envoy-origin-path":"/","response_code":{status},"response_flags":"{flags}","upstream_host":"{pod}:8080","upstream_cluster":"httproute/shop/{route}/rule/0","downstream_local_address":"10.0.0.1:10080","x-request-id":"r","duration":1,"bytes_sent":10}}"#
                ));
            }
        }
        let (by_names, name_rows) = judged_in_view(&view, &lines, false);
        let (by_ids, id_rows) = judged_in_view(&view, &lines, true);
        assert_eq!(by_ids.by_service_id, lines.len() as u64);
        assert_eq!(by_ids.verdicts, by_names.verdicts);
        assert_eq!(id_rows, name_rows);
        assert!(by_names.verdict(Verdict::Ok) > 0, "{:?}", by_names.verdicts);
        assert!(
            by_names.verdict(Verdict::Misrouted) > 0,
            "{:?}",
            by_names.verdicts
        );
    }

    /// The listener memo answers only for the index it was filled from:
    /// two snapshots with the Gateway at the same position but its listener
    /// on port 80 in the first and 2080 in the second. Envoy Gateway logs
    /// both as 10080 (the listener port shifted by 10000 or by 8000), so a
    /// memo carried over from the first snapshot would look for port 80 in
    /// the second, find no listener, and misjudge its records.
    #[test]
    fn listener_memo_answers_only_for_its_own_snapshot() {
        let history = history_of([(DAY_US - HOUR_US, 80), (DAY_US + HOUR_US, 2080)].map(
            |(at, port)| {
                (
                    at,
                    two_routes_on(port, "2020-01-01T00:00:00Z", "2021-01-01T00:00:00Z"),
                )
            },
        ));
        let view = history.view().expect("ready");
        // Alternating snapshots, so each record meets the other's memo.
        let lines: Vec<String> = ["00", "02", "00", "02"]
            .iter()
            .map(|hh| envoy_line(hh, "one", "r1", "10.1.0.1"))
            .collect();
        let (stats, _) = judged_in_view(&view, &lines, true);
        assert_eq!(stats.verdict(Verdict::Ok), 4, "{:?}", stats.verdicts);
    }
}
