//! Upstream `ip:port` → the Service(s) and Service port behind it.
//!
//! Gateways log the endpoint address they connected to: a pod IP and the
//! container (target) port, e.g. `10.244.1.17:8080`. Cluster names and
//! backendRefs use the **Service** port (80). [`EndpointIndex`] joins the two
//! through EndpointSlices and Services (doc `access-log-formats.md` §10):
//!
//! * every EndpointSlice address × slice port becomes a key `SocketAddr`;
//! * the owning Service is the slice's `kubernetes.io/service-name` label;
//! * the slice port is mapped to the Service port by name first (the
//!   EndpointSlice controller copies the Service port name into the slice
//!   port; an unnamed single port is `""` or absent on both sides), then by
//!   `targetPort`: a number equal to the endpoint port, a name equal to the
//!   slice port name, or an absent `targetPort`, which means "same as port";
//! * Service `clusterIP`s are indexed too, as `clusterIP:servicePort`, for
//!   gateways that route to the ClusterIP (EG `routingType: Service`, Kong
//!   `service-upstream`).
//!
//! Several Services selecting the same pod (`web` and `web-canary`, or a
//! headless twin) give several [`EndpointCandidate`]s for one address; they are
//! kept, sorted by Service key, and [`choose_candidate`] breaks the tie with the
//! backends the route expects.
//!
//! # Time
//!
//! This index is **one snapshot**. Pod IPs are reused quickly and logs arrive
//! late, so the live kube source (a later issue) will keep a history of
//! snapshots (or per-address validity intervals) and look up the one in force at
//! the record's timestamp, treating "known at t±Δ" as a soft match. The lookup
//! API ([`EndpointIndex::lookup`]) stays the same; only the way an index is
//! picked changes.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering};

use super::AnsweredBy;
use crate::gateway::compile::FastMap;
use crate::gateway::model::{object_key, ObjectSet, Service, ServicePort};

/// One Service (and Service port) that an address belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointCandidate {
    /// Id of the Service `(namespace, name)` in the index that holds this
    /// candidate ([`EndpointIndex::service_id`]): two candidates of one index
    /// name the same Service exactly when their ids are equal, so the
    /// resolver compares ids instead of the (cold) strings. The struct has
    /// Rust's default layout: the compiler decides where this field sits.
    pub service: u32,
    /// Service namespace.
    pub namespace: String,
    /// Service name.
    pub name: String,
    /// `namespace/name`, the same form as backendRef keys.
    pub key: String,
    /// The Service port the address serves; `None` when the Service object is
    /// missing or no Service port maps to the endpoint port.
    pub service_port: Option<u16>,
    /// The Service / slice port name, when named.
    pub port_name: Option<String>,
    /// The pod (`targetRef.name`), when the slice names one.
    pub pod: Option<String>,
    /// Whether the endpoint was ready (`conditions.ready`, nil = ready).
    /// Envoy Gateway keeps non-ready endpoints as DRAINING, so they can still
    /// serve traffic.
    pub ready: bool,
    /// The address is the Service's clusterIP, not a pod.
    pub via_cluster_ip: bool,
}

impl EndpointCandidate {
    /// Whether this candidate is the Service `namespace/name` (compared without
    /// allocating).
    pub fn is_service(&self, namespace: &str, name: &str) -> bool {
        self.namespace == namespace && self.name == name
    }
}

/// A Service as the resolver needs it: identity and ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceEntry {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `namespace/name`.
    pub key: String,
    /// `(port name, port number)` for every Service port.
    pub ports: Vec<(Option<String>, u16)>,
}

impl ServiceEntry {
    /// The port number of the Service port called `port_name`.
    pub fn port_by_name(&self, port_name: &str) -> Option<u16> {
        self.ports
            .iter()
            .find(|(name, _)| name.as_deref() == Some(port_name))
            .map(|(_, port)| *port)
    }
}

/// `ip:port` → Service candidates, built from one [`ObjectSet`] snapshot.
#[derive(Debug, Clone)]
pub struct EndpointIndex {
    /// Number of this index, unique in the process (see
    /// [`EndpointIndex::instance`]).
    instance: u64,
    /// Hashed with foldhash rather than SipHash: looked up once per record,
    /// and the keys come from the cluster's own EndpointSlices, not from
    /// requests (foldhash is still randomly seeded).
    ///
    /// An IPv4 `ip:port` (every pod address in practice) is keyed by one
    /// `u64` ([`AddrKey`]), hashed in one step; the map holds only where the
    /// address's candidates sit in `candidates` (16-byte entries: the table
    /// of a few thousand pods stays small enough to stay in cache).
    by_v4: FastMap<u64, CandidateSpan>,
    /// IPv6 addresses, likewise.
    by_v6: FastMap<SocketAddr, CandidateSpan>,
    /// Every IPv4 address of `by_v4` by its canonical text (`a.b.c.d:port`,
    /// as `SocketAddr` displays it), for [`EndpointIndex::lookup_canonical_v4`].
    by_v4_text: FastMap<V4Text, (u64, CandidateSpan)>,
    /// Every address's candidates, each address's side by side.
    candidates: Vec<EndpointCandidate>,
    /// Sorted by `(namespace, name)` for allocation-free lookups.
    services: Vec<ServiceEntry>,
    /// Every Service `(namespace, name)` a candidate or a Service object
    /// names, sorted: a pair's position is its id (see
    /// [`EndpointCandidate::service`]), found by binary search without
    /// allocating.
    service_pairs: Vec<(String, String)>,
    /// No namespace or name of a candidate contains `/`, so that a key
    /// `namespace/name` and the pair tell the same Services apart (ids, which
    /// stand for pairs, can then stand in for key comparisons).
    keys_unambiguous: bool,
    skipped_addresses: usize,
}

/// The next [`EndpointIndex::instance`].
static NEXT_INSTANCE: AtomicU64 = AtomicU64::new(0);

/// A fresh [`EndpointIndex::instance`].
fn next_instance() -> u64 {
    NEXT_INSTANCE.fetch_add(1, Ordering::Relaxed)
}

impl Default for EndpointIndex {
    /// An empty index, with an instance number of its own.
    fn default() -> Self {
        EndpointIndex {
            instance: next_instance(),
            by_v4: FastMap::default(),
            by_v6: FastMap::default(),
            by_v4_text: FastMap::default(),
            candidates: Vec::new(),
            services: Vec::new(),
            service_pairs: Vec::new(),
            keys_unambiguous: true,
            skipped_addresses: 0,
        }
    }
}

impl EndpointIndex {
    /// A number that identifies this index within the process (a clone keeps
    /// it: same content). Service ids ([`EndpointIndex::service_id`]) and
    /// tables built from them ([`super::ids::BackendServiceIds`]) belong to
    /// one instance: two indexes with the same number of Services may still
    /// number them differently.
    pub fn instance(&self) -> u64 {
        self.instance
    }

    /// Builds the index from the Services and EndpointSlices of `objects`.
    /// FQDN slices, unparsable addresses and ports without a number are skipped
    /// and counted ([`EndpointIndex::skipped_addresses`]).
    pub fn build(objects: &ObjectSet) -> EndpointIndex {
        let mut services: Vec<ServiceEntry> = objects
            .services
            .iter()
            .map(|s| ServiceEntry {
                namespace: s.metadata.namespace.clone(),
                name: s.metadata.name.clone(),
                key: s.metadata.key(),
                ports: s
                    .spec
                    .ports
                    .iter()
                    .map(|p| (p.name.clone().filter(|n| !n.is_empty()), p.port))
                    .collect(),
            })
            .collect();
        services.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        services.dedup_by(|a, b| a.namespace == b.namespace && a.name == b.name);

        let service_objects: FastMap<(&str, &str), &Service> = objects
            .services
            .iter()
            .map(|s| ((s.metadata.namespace.as_str(), s.metadata.name.as_str()), s))
            .collect();

        let mut by_addr: FastMap<AddrKey, Vec<EndpointCandidate>> = FastMap::default();
        let mut index = EndpointIndex {
            instance: next_instance(),
            by_v4: FastMap::default(),
            by_v6: FastMap::default(),
            by_v4_text: FastMap::default(),
            candidates: Vec::new(),
            services,
            service_pairs: Vec::new(),
            keys_unambiguous: true,
            skipped_addresses: 0,
        };

        for slice in &objects.endpoint_slices {
            if slice
                .address_type
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case("FQDN"))
            {
                index.skipped_addresses += slice.endpoints.len();
                continue;
            }
            let Some(service_name) = slice.service_name() else {
                index.skipped_addresses += slice.endpoints.len();
                continue;
            };
            let namespace = slice.metadata.namespace.as_str();
            let service = service_objects.get(&(namespace, service_name)).copied();
            for endpoint in &slice.endpoints {
                let ready = endpoint
                    .conditions
                    .as_ref()
                    .and_then(|c| c.ready)
                    .unwrap_or(true);
                let pod = endpoint
                    .target_ref
                    .as_ref()
                    .and_then(|t| t.get("name"))
                    .and_then(|n| n.as_str())
                    .map(str::to_string);
                for address in &endpoint.addresses {
                    let Ok(ip) = address.trim().parse::<IpAddr>() else {
                        index.skipped_addresses += 1;
                        continue;
                    };
                    for slice_port in &slice.ports {
                        let Some(port) = slice_port.port else {
                            continue;
                        };
                        let slice_port_name = slice_port.name.as_deref().filter(|n| !n.is_empty());
                        let service_port =
                            service.and_then(|s| map_to_service_port(s, slice_port_name, port));
                        insert(
                            &mut by_addr,
                            SocketAddr::new(ip, port),
                            EndpointCandidate {
                                service: 0,
                                namespace: namespace.to_string(),
                                name: service_name.to_string(),
                                key: object_key(namespace, service_name),
                                service_port: service_port.map(|p| p.port),
                                port_name: service_port
                                    .and_then(|p| p.name.clone())
                                    .or_else(|| slice_port_name.map(str::to_string))
                                    .filter(|n| !n.is_empty()),
                                pod: pod.clone(),
                                ready,
                                via_cluster_ip: false,
                            },
                        );
                    }
                }
            }
        }

        for service in &objects.services {
            let Some(ip) = service
                .spec
                .cluster_ip
                .as_deref()
                .and_then(|ip| ip.parse::<IpAddr>().ok())
            else {
                continue;
            };
            for port in &service.spec.ports {
                insert(
                    &mut by_addr,
                    SocketAddr::new(ip, port.port),
                    EndpointCandidate {
                        service: 0,
                        namespace: service.metadata.namespace.clone(),
                        name: service.metadata.name.clone(),
                        key: service.metadata.key(),
                        service_port: Some(port.port),
                        port_name: port.name.clone().filter(|n| !n.is_empty()),
                        pod: None,
                        ready: true,
                        via_cluster_ip: true,
                    },
                );
            }
        }

        for candidates in by_addr.values_mut() {
            candidates.sort_by(|a, b| {
                (&a.namespace, &a.name, a.service_port).cmp(&(
                    &b.namespace,
                    &b.name,
                    b.service_port,
                ))
            });
        }
        index.flatten(by_addr);
        index.number_services();
        index
    }

    /// Moves the candidates of every address into `candidates` and the
    /// address maps.
    fn flatten(&mut self, by_addr: FastMap<AddrKey, Vec<EndpointCandidate>>) {
        // One buffer for every address's text.
        let mut text = Vec::with_capacity(32);
        for (key, list) in by_addr {
            let (Ok(start), Ok(len)) = (
                u32::try_from(self.candidates.len()),
                u32::try_from(list.len()),
            ) else {
                // Past 4 billion candidates: not indexed.
                self.skipped_addresses += 1;
                continue;
            };
            self.candidates.extend(list);
            let span = CandidateSpan { start, len };
            match key {
                AddrKey::V4(v4) => {
                    text.clear();
                    write_v4_socket(&mut text, v4);
                    if let Some(text) = V4Text::of(&text) {
                        self.by_v4_text.insert(text, (v4, span));
                    }
                    self.by_v4.insert(v4, span);
                }
                AddrKey::V6(addr) => {
                    self.by_v6.insert(addr, span);
                }
            }
        }
        self.candidates.shrink_to_fit();
    }

    /// Fills `service_pairs` and every candidate's `service` (ids in
    /// `(namespace, name)` order, so that they do not depend on hashing).
    fn number_services(&mut self) {
        // The distinct pairs first (many candidates share a Service), so that
        // only those are sorted.
        let mut distinct: FastMap<(&str, &str), u32> = FastMap::default();
        for pair in self
            .services
            .iter()
            .map(|s| (s.namespace.as_str(), s.name.as_str()))
            .chain(
                self.candidates
                    .iter()
                    .map(|c| (c.namespace.as_str(), c.name.as_str())),
            )
        {
            distinct.entry(pair).or_insert(0);
        }
        let mut pairs: Vec<(&str, &str)> = distinct.keys().copied().collect();
        pairs.sort_unstable();
        for (id, pair) in pairs.iter().enumerate() {
            distinct.insert(*pair, id as u32);
        }
        let keys_unambiguous = pairs
            .iter()
            .all(|(ns, name)| !ns.contains('/') && !name.contains('/'));
        // Each candidate's id from the map of distinct pairs (no owned keys
        // per candidate), then the owned sorted pairs for `service_id`.
        let candidate_ids: Vec<u32> = self
            .candidates
            .iter()
            .map(|c| {
                distinct
                    .get(&(c.namespace.as_str(), c.name.as_str()))
                    .copied()
                    .unwrap_or(u32::MAX)
            })
            .collect();
        let service_pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(ns, name)| (ns.to_string(), name.to_string()))
            .collect();
        for (candidate, id) in self.candidates.iter_mut().zip(candidate_ids) {
            // Every candidate's pair is among `pairs`.
            candidate.service = id;
        }
        self.service_pairs = service_pairs;
        self.keys_unambiguous = keys_unambiguous;
    }

    /// The id of the Service `namespace/name` ([`EndpointCandidate::service`])
    /// when a candidate or a Service object of this index names it. Ids run
    /// from 0 to [`service_count`](Self::service_count) - 1.
    pub fn service_id(&self, namespace: &str, name: &str) -> Option<u32> {
        self.service_pairs
            .binary_search_by(|(ns, n)| (ns.as_str(), n.as_str()).cmp(&(namespace, name)))
            .ok()
            .map(|id| id as u32)
    }

    /// Number of Service ids ([`service_id`](Self::service_id)).
    pub fn service_count(&self) -> usize {
        self.service_pairs.len()
    }

    /// True when no candidate's namespace or name contains `/`: keys
    /// (`namespace/name`) are then equal exactly when the pairs are.
    pub fn keys_unambiguous(&self) -> bool {
        self.keys_unambiguous
    }

    /// The candidates for `addr`, sorted by Service key; empty when unknown.
    /// Does not allocate.
    pub fn lookup(&self, addr: SocketAddr) -> &[EndpointCandidate] {
        let span = match AddrKey::of(addr) {
            AddrKey::V4(key) => self.by_v4.get(&key),
            AddrKey::V6(addr) => self.by_v6.get(&addr),
        };
        span.and_then(|span| {
            let start = span.start as usize;
            self.candidates.get(start..start + span.len as usize)
        })
        .unwrap_or(&[])
    }

    /// The address and candidates of `text` when it is the canonical
    /// spelling of an indexed IPv4 address (`a.b.c.d:port` as `SocketAddr`
    /// displays it: decimal, no leading zeros, nothing around it), found
    /// without parsing the text: one hash of three words of it. `None`
    /// otherwise (another spelling, an address not indexed, not an address);
    /// [`parse_socket_addr`] + [`lookup`](Self::lookup) then give the answer.
    /// A text found here parses to the address returned.
    #[inline]
    pub fn lookup_canonical_v4(&self, text: &str) -> Option<AnsweredBy<'_>> {
        let (key, span) = self.by_v4_text.get(&V4Text::of(text.as_bytes())?)?;
        let start = span.start as usize;
        let candidates = self.candidates.get(start..start + span.len as usize)?;
        Some(AnsweredBy {
            addr: SocketAddr::V4(v4_socket_of(*key)),
            candidates,
            address_id: span.start,
        })
    }

    /// Whether `candidates` is a non-empty run of this index's candidates
    /// (as [`lookup`](Self::lookup) and
    /// [`lookup_canonical_v4`](Self::lookup_canonical_v4) return them).
    #[inline]
    pub fn holds(&self, candidates: &[EndpointCandidate]) -> bool {
        let own = self.candidates.as_ptr_range();
        let run = candidates.as_ptr_range();
        !candidates.is_empty() && own.start <= run.start && run.end <= own.end
    }

    /// Parses `ip:port` (see [`parse_socket_addr`]) and looks it up; empty when
    /// the text is not an address or the address is unknown.
    pub fn lookup_str(&self, addr: &str) -> &[EndpointCandidate] {
        parse_socket_addr(addr)
            .map(|a| self.lookup(a))
            .unwrap_or(&[])
    }

    /// The Service `namespace/name`, if it exists in the snapshot.
    pub fn service(&self, namespace: &str, name: &str) -> Option<&ServiceEntry> {
        self.services
            .binary_search_by(|s| (s.namespace.as_str(), s.name.as_str()).cmp(&(namespace, name)))
            .ok()
            .and_then(|i| self.services.get(i))
    }

    /// Number of distinct indexed addresses.
    pub fn len(&self) -> usize {
        self.by_v4.len() + self.by_v6.len()
    }

    /// True when no address is indexed.
    pub fn is_empty(&self) -> bool {
        self.by_v4.is_empty() && self.by_v6.is_empty()
    }

    /// Endpoint addresses that could not be indexed (FQDN slices, slices without
    /// a Service label, unparsable IPs).
    pub fn skipped_addresses(&self) -> usize {
        self.skipped_addresses
    }
}

/// Adds a candidate of `addr` to the map being built.
fn insert(
    by_addr: &mut FastMap<AddrKey, Vec<EndpointCandidate>>,
    addr: SocketAddr,
    candidate: EndpointCandidate,
) {
    let list = by_addr.entry(AddrKey::of(addr)).or_default();
    if let Some(existing) = list
        .iter_mut()
        .find(|c| c.key == candidate.key && c.service_port == candidate.service_port)
    {
        // The same Service seen through two slices: ready wins.
        existing.ready |= candidate.ready;
        if existing.pod.is_none() {
            existing.pod = candidate.pod;
        }
        return;
    }
    list.push(candidate);
}

/// Where one address's candidates sit in [`EndpointIndex`]'s `candidates`.
#[derive(Debug, Clone, Copy)]
struct CandidateSpan {
    start: u32,
    len: u32,
}

/// The address key of a socket address: IPv4 `ip:port` packed into one
/// integer (address in bits 16..48, port in bits 0..16); IPv6 addresses as
/// they are (their flow info and scope id take part in equality, as in
/// `SocketAddr`'s own `Eq`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum AddrKey {
    V4(u64),
    V6(SocketAddr),
}

impl AddrKey {
    #[inline]
    fn of(addr: SocketAddr) -> AddrKey {
        match addr {
            SocketAddr::V4(v4) => {
                AddrKey::V4(u64::from(v4.ip().to_bits()) << 16 | u64::from(v4.port()))
            }
            SocketAddr::V6(_) => AddrKey::V6(addr),
        }
    }
}

/// The IPv4 socket address of an [`AddrKey::V4`] key.
fn v4_socket_of(key: u64) -> SocketAddrV4 {
    // Bits 16..48 and 0..16 (see `AddrKey`): the casts keep exactly those.
    SocketAddrV4::new(Ipv4Addr::from_bits((key >> 16) as u32), key as u16)
}

/// Appends the text of the IPv4 socket address of an [`AddrKey::V4`] key to
/// `text`, as `SocketAddrV4`'s `Display` writes it (`10.0.0.1:8080`), without
/// the formatting machinery.
fn write_v4_socket(text: &mut Vec<u8>, key: u64) {
    let socket = v4_socket_of(key);
    let mut digits = itoa::Buffer::new();
    for (i, octet) in socket.ip().octets().into_iter().enumerate() {
        if i > 0 {
            text.push(b'.');
        }
        text.extend_from_slice(digits.format(octet).as_bytes());
    }
    text.push(b':');
    text.extend_from_slice(digits.format(socket.port()).as_bytes());
}

/// The text of a canonical IPv4 socket address (9 to 21 bytes) as a hash
/// key of fixed size: its first 16 bytes (8 when shorter than 16) and its
/// last 8, which overlap and together cover every byte, with its length.
/// Two texts have equal keys exactly when they are equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct V4Text {
    head: u128,
    tail: u64,
    len: u8,
}

impl V4Text {
    /// The key of `text`; `None` outside 9 to 21 bytes (no canonical IPv4
    /// socket address is shorter or longer).
    #[inline]
    fn of(text: &[u8]) -> Option<V4Text> {
        if !(9..=21).contains(&text.len()) {
            return None;
        }
        let tail = u64::from_le_bytes(*text.last_chunk::<8>()?);
        let head = match text.first_chunk::<16>() {
            Some(head) => u128::from_le_bytes(*head),
            None => u128::from(u64::from_le_bytes(*text.first_chunk::<8>()?)),
        };
        Some(V4Text {
            head,
            tail,
            len: text.len() as u8,
        })
    }
}

/// Maps an EndpointSlice port back to the Service port it serves.
///
/// 1. by name: slice port name == Service port name (both unnamed counts);
/// 2. by `targetPort`: a number equal to the endpoint port, a name equal to the
///    slice port name (hand-written slices), or absent with `port` equal to the
///    endpoint port;
/// 3. a Service with a single port: that port.
fn map_to_service_port<'s>(
    service: &'s Service,
    slice_port_name: Option<&str>,
    endpoint_port: u16,
) -> Option<&'s ServicePort> {
    let ports = &service.spec.ports;
    let by_name = ports
        .iter()
        .find(|p| p.name.as_deref().filter(|n| !n.is_empty()) == slice_port_name);
    if by_name.is_some() {
        return by_name;
    }
    let by_target = ports.iter().find(|p| match &p.target_port {
        None => p.port == endpoint_port,
        Some(serde_json::Value::Number(n)) => n.as_u64() == Some(u64::from(endpoint_port)),
        Some(serde_json::Value::String(s)) => match s.parse::<u16>() {
            Ok(n) => n == endpoint_port,
            Err(_) => Some(s.as_str()) == slice_port_name,
        },
        Some(_) => false,
    });
    if by_target.is_some() {
        return by_target;
    }
    match ports.as_slice() {
        [only] => Some(only),
        _ => None,
    }
}

/// Parses an upstream address without allocating: `10.244.1.17:8080`,
/// `[fd00::1]:8080`, optionally prefixed by `http://` / `https://` and followed
/// by `/` (Traefik's `ServiceURL`). `None` for anything else (`-`, unix
/// sockets, server names, bare IPs).
pub fn parse_socket_addr(text: &str) -> Option<SocketAddr> {
    let t = text.trim();
    let t = t
        .strip_prefix("http://")
        .or_else(|| t.strip_prefix("https://"))
        .unwrap_or(t);
    let t = t.strip_suffix('/').unwrap_or(t);
    if t.len() > 64 {
        return None;
    }
    if let Some(addr) = parse_canonical_ipv4_socket(t.as_bytes()) {
        return Some(addr);
    }
    t.parse::<SocketAddr>().ok()
}

/// Fast path of [`parse_socket_addr`] for the usual `a.b.c.d:port`, written
/// canonically (decimal octets and port without leading zeros). `None` for
/// anything else, which then goes through the standard parser; every text this
/// accepts parses to the same address with `SocketAddr::from_str`.
pub(crate) fn parse_canonical_ipv4_socket(t: &[u8]) -> Option<SocketAddr> {
    // Four octets ending in `.`, `.`, `.`, `:`, then the port ending the
    // text; each field read by `canonical_number` with a constant digit limit,
    // so the compiler unrolls the whole parse.
    let mut at = 0;
    let mut octets = [0u8; 4];
    for (field, separator) in [b'.', b'.', b'.', b':'].into_iter().enumerate() {
        let value = canonical_number(t, &mut at, 3)?;
        *octets.get_mut(field)? = u8::try_from(value).ok()?;
        if t.get(at) != Some(&separator) {
            return None;
        }
        at += 1;
    }
    let port = u16::try_from(canonical_number(t, &mut at, 5)?).ok()?;
    (at == t.len()).then(|| SocketAddr::from((octets, port)))
}

/// A decimal number of 1 to `max_digits` digits at `*at`, without a leading
/// zero unless it is `0` itself; `*at` moves past it. A digit beyond
/// `max_digits` is left for the caller's separator check to reject.
#[inline(always)]
fn canonical_number(t: &[u8], at: &mut usize, max_digits: usize) -> Option<u32> {
    let first = t.get(*at)?.wrapping_sub(b'0');
    if first > 9 {
        return None;
    }
    *at += 1;
    let mut value = u32::from(first);
    for _ in 1..max_digits {
        match t.get(*at) {
            Some(&byte) if byte.is_ascii_digit() => {
                if first == 0 {
                    return None;
                }
                value = value * 10 + u32::from(byte - b'0');
                *at += 1;
            }
            _ => break,
        }
    }
    Some(value)
}

/// The result of [`choose_candidate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CandidateChoice<'c> {
    /// The chosen candidate; `None` when there were none.
    pub chosen: Option<&'c EndpointCandidate>,
    /// Several Services remained and none (or several) was expected: `chosen`
    /// is only the first by key, and every candidate should be reported.
    pub ambiguous: bool,
    /// Several Services matched the address and the expected backends picked
    /// one. The verdict should know: the choice leaned on the expectation.
    pub tie_broken_by_expected: bool,
}

/// Chooses among candidates for one address: a single Service wins outright;
/// otherwise the one whose key is among `expected_backend_keys`
/// (`namespace/name`). Several Service ports of one Service count as one
/// Service (the first port wins).
pub fn choose_candidate<'c>(
    candidates: &'c [EndpointCandidate],
    expected_backend_keys: &[&str],
) -> CandidateChoice<'c> {
    choose_candidate_where(candidates, expected_backend_keys, |_| true)
}

/// [`choose_candidate`] over the candidates that satisfy `keep`.
pub fn choose_candidate_where<'c>(
    candidates: &'c [EndpointCandidate],
    expected_backend_keys: &[&str],
    keep: impl Fn(&EndpointCandidate) -> bool,
) -> CandidateChoice<'c> {
    choose_candidate_by(
        candidates,
        |c| expected_backend_keys.contains(&c.key.as_str()),
        |a, b| a.key == b.key,
        keep,
    )
}

/// [`choose_candidate_where`] with the comparisons given: `expected` tells
/// whether a candidate is an expected backend, `same` whether two candidates
/// name the same Service (by key, or by id within one index).
#[inline]
pub(crate) fn choose_candidate_by<'c>(
    candidates: &'c [EndpointCandidate],
    expected: impl Fn(&EndpointCandidate) -> bool,
    same: impl Fn(&EndpointCandidate, &EndpointCandidate) -> bool,
    keep: impl Fn(&EndpointCandidate) -> bool,
) -> CandidateChoice<'c> {
    // The usual address: one pod of one Service. Kept, it is the only
    // Service (neither ambiguous nor a tie); else there is none.
    if let [only] = candidates {
        return CandidateChoice {
            chosen: keep(only).then_some(only),
            ambiguous: false,
            tie_broken_by_expected: false,
        };
    }
    let mut first: Option<&EndpointCandidate> = None;
    let mut services = 0usize;
    let mut first_expected: Option<&EndpointCandidate> = None;
    let mut expected_services = 0usize;
    let mut previous: Option<&EndpointCandidate> = None;
    for candidate in candidates.iter().filter(|c| keep(c)) {
        // Candidates are sorted by key, so equal keys are adjacent.
        if previous.is_some_and(|p| same(p, candidate)) {
            continue;
        }
        previous = Some(candidate);
        services += 1;
        first.get_or_insert(candidate);
        if expected(candidate) {
            expected_services += 1;
            first_expected.get_or_insert(candidate);
        }
    }
    match (services, expected_services) {
        (0, _) => CandidateChoice {
            chosen: None,
            ambiguous: false,
            tie_broken_by_expected: false,
        },
        (1, _) => CandidateChoice {
            chosen: first,
            ambiguous: false,
            tie_broken_by_expected: false,
        },
        (_, 1) => CandidateChoice {
            chosen: first_expected,
            ambiguous: false,
            tie_broken_by_expected: true,
        },
        _ => CandidateChoice {
            chosen: first_expected.or(first),
            ambiguous: true,
            tie_broken_by_expected: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-written text of a socket address is `Display`'s, for octets
    /// and ports of every length.
    #[test]
    fn v4_socket_text_is_displays() {
        let mut text = Vec::new();
        for ip in [
            [0, 0, 0, 0],
            [10, 244, 1, 17],
            [255, 255, 255, 255],
            [1, 20, 100, 9],
        ] {
            for port in [0, 7, 80, 443, 8080, 10000, 65535] {
                let socket = SocketAddrV4::new(Ipv4Addr::from(ip), port);
                let AddrKey::V4(key) = AddrKey::of(SocketAddr::V4(socket)) else {
                    panic!("{socket} is not a V4 key");
                };
                text.clear();
                write_v4_socket(&mut text, key);
                assert_eq!(String::from_utf8(text.clone()).unwrap(), socket.to_string());
            }
        }
    }
}
