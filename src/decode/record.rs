//! The normalised access record every decoder produces.

use std::borrow::Cow;

use super::detect::{Envelope, Format};

/// A borrowed text value: borrowed from the input where the bytes can be used
/// as they are, owned where they had to be unescaped (JSON `\"`, NGINX `\xXX`).
pub type Text<'a> = Cow<'a, str>;

/// The wire protocol of the request, normalised from `%PROTOCOL%`, `$request`'s
/// version, `%HV`, and gRPC hints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// `HTTP/1.0`.
    Http10,
    /// `HTTP/1.1`.
    Http11,
    /// `HTTP/2` / `HTTP/2.0`.
    Http2,
    /// `HTTP/3` / `HTTP/3.0`.
    Http3,
    /// gRPC: detected from a `content-type: application/grpc*` header, an Envoy
    /// Gateway `grpcroute/` route or cluster, a gRPC status field, or an HTTP/2
    /// request whose path has the `/<package>.<Service>/<Method>` shape.
    Grpc,
    /// Any other protocol string (e.g. Envoy logs `-` or nothing for TCP).
    Other,
}

impl Protocol {
    /// Classifies a protocol string such as `HTTP/1.1`.
    pub fn from_version(version: &str) -> Protocol {
        match version {
            "HTTP/1.1" => Protocol::Http11,
            "HTTP/1.0" => Protocol::Http10,
            "HTTP/2" | "HTTP/2.0" => Protocol::Http2,
            "HTTP/3" | "HTTP/3.0" => Protocol::Http3,
            _ => Protocol::Other,
        }
    }

    /// A stable lower-case name (`http/1.1`, `http/2`, `grpc`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http10 => "http/1.0",
            Protocol::Http11 => "http/1.1",
            Protocol::Http2 => "http/2",
            Protocol::Http3 => "http/3",
            Protocol::Grpc => "grpc",
            Protocol::Other => "other",
        }
    }
}

/// The upstream address list as logged: one `ip:port` (Envoy `%UPSTREAM_HOST%`)
/// or NGINX's `$upstream_addr` with every attempt (`a:1, b:2 : c:3`; `", "`
/// separates retries within one upstream group, `" : "` an internal redirect to
/// another group).
///
/// The raw text is kept and split lazily, so holding every attempt costs no
/// allocation. Entries can also be sentinels rather than addresses: an NGINX
/// upstream group name (no server could be selected) or a `unix:` socket (NGINX
/// Gateway Fabric's `nginx-503-server.sock` / `nginx-500-server.sock`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UpstreamAddrs<'a> {
    raw: Option<Text<'a>>,
}

impl<'a> UpstreamAddrs<'a> {
    /// Wraps a raw address list; `-`, empty, and whitespace are treated as none.
    #[inline]
    pub fn new(raw: Text<'a>) -> Self {
        // The usual `ip:port`: ASCII above ' ' at both ends, so `trim` would
        // remove nothing (it only removes whitespace, never such a byte);
        // decided without the char-by-char trim.
        let plain = |byte: &u8| *byte > b' ' && byte.is_ascii();
        let bytes = raw.as_bytes();
        if bytes.first().is_some_and(plain) && bytes.last().is_some_and(plain) {
            return UpstreamAddrs {
                raw: (bytes != b"-").then_some(raw),
            };
        }
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed == "-" {
            return UpstreamAddrs { raw: None };
        }
        UpstreamAddrs { raw: Some(raw) }
    }

    /// The text as logged, if any address was logged.
    pub fn raw(&self) -> Option<&str> {
        self.raw.as_deref()
    }

    /// True when no upstream address was logged.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// Every attempt in order (the last one served the response).
    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        self.raw
            .as_deref()
            .unwrap_or("")
            .split([',', ' '])
            .map(str::trim)
            .filter(|part| !part.is_empty() && *part != ":" && *part != "-")
    }

    /// The only attempt, when the text is a single address (no `,` or space,
    /// and no whitespace to trim at either end): exactly what [`iter`]
    /// would yield as its one item, found with one byte search instead of a
    /// split and a trim per part. `None` when the text needs [`iter`] (several
    /// attempts, padding) or holds no attempt.
    ///
    /// [`iter`]: Self::iter
    #[inline]
    pub fn single(&self) -> Option<&str> {
        let raw = self.raw.as_deref()?;
        let (&first, &last) = (raw.as_bytes().first()?, raw.as_bytes().last()?);
        // ASCII above ' ' at both ends: `str::trim` would remove nothing
        // (it only removes whitespace, which is never such a byte).
        let untrimmed = |b: u8| b > b' ' && b.is_ascii();
        (untrimmed(first)
            && untrimmed(last)
            && memchr::memchr2(b',', b' ', raw.as_bytes()).is_none()
            && raw != ":"
            && raw != "-")
            .then_some(raw)
    }

    /// The attempt that served the response (the last one), if any.
    pub fn last(&self) -> Option<&str> {
        self.iter().last()
    }

    /// The number of attempts logged.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Copies borrowed text so the value no longer borrows the input.
    pub fn into_owned(self) -> UpstreamAddrs<'static> {
        UpstreamAddrs {
            raw: self.raw.map(|raw| Cow::Owned(raw.into_owned())),
        }
    }
}

/// One decoded access-log record. Text fields borrow from the payload (or from
/// the envelope's unescaped inner line) wherever possible.
///
/// A field is `None` when the format does not log it, or logged it as unset
/// (`-`, `null`, empty, or absent).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AccessRecord<'a> {
    /// The access-log format that decoded this record (never [`Format::Auto`]).
    pub format: Format,
    /// The envelope the line arrived in (never [`Envelope::Auto`]).
    pub envelope: Envelope,
    /// Event time, microseconds since 1970-01-01T00:00:00Z. From the line
    /// itself (Envoy `START_TIME` = request start; NGINX `$time_local` /
    /// `$time_iso8601` = request end; HAProxy `%tr`, local time taken as UTC),
    /// else from the envelope (Fluent Bit `time`/`@timestamp`, Vector
    /// `timestamp`, OTLP `timeUnixNano`).
    pub time_us: Option<i64>,
    /// Namespace of the Gateway that produced the log, from pod labels
    /// (`gateway.envoyproxy.io/owning-gateway-namespace`; for Istio, Contour and
    /// NGF, whose proxies run in the Gateway's namespace, the pod namespace when
    /// a gateway-name label is present).
    pub gateway_namespace: Option<Text<'a>>,
    /// Name of the Gateway, from pod labels
    /// (`gateway.envoyproxy.io/owning-gateway-name`,
    /// `gateway.networking.k8s.io/gateway-name`,
    /// `projectcontour.io/owning-gateway-name`, `istio.io/gateway-name`).
    pub gateway_name: Option<Text<'a>>,
    /// Name of the proxy pod (envelope metadata).
    pub pod_name: Option<Text<'a>>,
    /// Namespace of the proxy pod (envelope metadata).
    pub pod_namespace: Option<Text<'a>>,
    /// Container that wrote the line (envelope metadata), e.g. `envoy`,
    /// `istio-proxy`, `nginx`.
    pub container_name: Option<Text<'a>>,
    /// The port the request arrived on, as the proxy saw it: the port of Envoy's
    /// `downstream_local_address` or NGINX `server_port`. This is the
    /// **container** port: Envoy Gateway adds 10000 to ports below 1024, Contour
    /// adds 8000; undoing that is the resolver's job.
    pub listener_port: Option<u16>,
    /// The client address (`downstream_remote_address`, `$remote_addr`, HAProxy
    /// `%ci:%cp`), as logged.
    pub client_address: Option<Text<'a>>,
    /// The `:authority` / `Host` of the request (may include a port).
    pub authority: Option<Text<'a>>,
    /// The request method.
    pub method: Option<Text<'a>>,
    /// The request path without the query string. Envoy Gateway logs the
    /// rewritten path when a URLRewrite applied.
    pub path: Option<Text<'a>>,
    /// The query string without the `?`, if the logged target had one. `None`
    /// both when there was no query and when the format does not log it
    /// (HAProxy ingress `base`).
    pub query: Option<Text<'a>>,
    /// The protocol string as logged (`HTTP/1.1`, `HTTP/2`, ...).
    pub protocol_raw: Option<Text<'a>>,
    /// The normalised protocol, with gRPC detection.
    pub protocol: Option<Protocol>,
    /// Request headers kept because they were listed in
    /// [`super::DecodeOptions::keep_headers`], as (name as logged, value): a
    /// JSON key such as `x-canary` / `http_x_canary`, or the canonical name
    /// (`user-agent`, ...) for fields every format logs. Empty (and not
    /// allocated) when no header is configured.
    pub headers: Vec<(Text<'a>, Text<'a>)>,
    /// The HTTP status sent to the client (`None` when no response was sent:
    /// Envoy `0`/null, HAProxy `-1`).
    pub status: Option<u16>,
    /// Envoy `%RESPONSE_FLAGS%` (`NR`, `UH`, `UF`, `DC`, comma separated when
    /// several) or HAProxy's 4-character termination state `%tsc` (`SC--`,
    /// `LR--`); `None` for `-` / `----`-free formats such as NGINX.
    pub response_flags: Option<Text<'a>>,
    /// Envoy `%RESPONSE_CODE_DETAILS%` (`via_upstream`, `route_not_found`,
    /// `direct_response`, ...).
    pub response_code_details: Option<Text<'a>>,
    /// Request duration in milliseconds (Envoy `%DURATION%`; NGINX
    /// `$request_time` seconds × 1000, rounded; HAProxy `%Ta`).
    pub duration_ms: Option<u64>,
    /// Upstream service time in milliseconds (Envoy
    /// `x-envoy-upstream-service-time`, HAProxy `%Tr`).
    pub upstream_service_time_ms: Option<u64>,
    /// Bytes sent to the client (Envoy `%BYTES_SENT%` body bytes; NGINX
    /// `$body_bytes_sent`; HAProxy `%B`, headers included).
    pub bytes_sent: Option<u64>,
    /// Request body bytes received (Envoy `%BYTES_RECEIVED%`; not logged by the
    /// NGINX and HAProxy defaults).
    pub bytes_received: Option<u64>,
    /// The request id (`x-request-id`, NGINX `$request_id`, Kong
    /// `kong_request_id`).
    pub request_id: Option<Text<'a>>,
    /// The route that matched: Envoy `%ROUTE_NAME%` (Envoy Gateway
    /// `httproute/<ns>/<name>/rule/<i>/match/<j>/<host>`, Istio
    /// `<ns>.<name>.<i>`), or HAProxy Unified Gateway's `{BLR:...}` key.
    pub route_name: Option<Text<'a>>,
    /// The upstream cluster / group / backend: Envoy `%UPSTREAM_CLUSTER%` (a
    /// trailing `;` from Istio's `alt_stat_name` is stripped), NGINX
    /// `$proxy_host`, HAProxy `%b`.
    pub upstream_cluster: Option<Text<'a>>,
    /// HAProxy's server name `%s` (`SRV_1`, `web2`; not an address). `None` for
    /// `<NOSRV>`.
    pub upstream_server: Option<Text<'a>>,
    /// The upstream address(es) `ip:port`, every attempt where the log lists
    /// several (NGINX `$upstream_addr`).
    pub upstream_addrs: UpstreamAddrs<'a>,
    /// NGINX `$upstream_status` list (one entry per attempt), as logged.
    pub upstream_status: Option<Text<'a>>,
    /// The `User-Agent` request header.
    pub user_agent: Option<Text<'a>>,
    /// The `X-Forwarded-For` request header.
    pub x_forwarded_for: Option<Text<'a>>,
    /// The `Referer` request header (NGINX combined).
    pub referer: Option<Text<'a>>,
    /// The TLS SNI (`%REQUESTED_SERVER_NAME%`).
    pub requested_server_name: Option<Text<'a>>,
    /// HAProxy's frontend name `%ft` (a trailing `~` marks TLS).
    pub frontend: Option<Text<'a>>,
}

impl AccessRecord<'_> {
    /// Returns the value of a kept request header by name (ASCII
    /// case-insensitive, `-` = `_`, optional `http_`/`request_` prefix on the
    /// logged name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(kept, _)| super::json_log::key_names_header(kept, name))
            .map(|(_, value)| value.as_ref())
    }

    /// Copies every borrowed field so the record outlives the input buffer.
    pub fn into_owned(self) -> AccessRecord<'static> {
        fn own(text: Option<Text<'_>>) -> Option<Text<'static>> {
            text.map(|value| Cow::Owned(value.into_owned()))
        }
        AccessRecord {
            format: self.format,
            envelope: self.envelope,
            time_us: self.time_us,
            gateway_namespace: own(self.gateway_namespace),
            gateway_name: own(self.gateway_name),
            pod_name: own(self.pod_name),
            pod_namespace: own(self.pod_namespace),
            container_name: own(self.container_name),
            listener_port: self.listener_port,
            client_address: own(self.client_address),
            authority: own(self.authority),
            method: own(self.method),
            path: own(self.path),
            query: own(self.query),
            protocol_raw: own(self.protocol_raw),
            protocol: self.protocol,
            headers: self
                .headers
                .into_iter()
                .map(|(name, value)| {
                    (
                        Cow::Owned(name.into_owned()),
                        Cow::Owned(value.into_owned()),
                    )
                })
                .collect(),
            status: self.status,
            response_flags: own(self.response_flags),
            response_code_details: own(self.response_code_details),
            duration_ms: self.duration_ms,
            upstream_service_time_ms: self.upstream_service_time_ms,
            bytes_sent: self.bytes_sent,
            bytes_received: self.bytes_received,
            request_id: own(self.request_id),
            route_name: own(self.route_name),
            upstream_cluster: own(self.upstream_cluster),
            upstream_server: own(self.upstream_server),
            upstream_addrs: self.upstream_addrs.into_owned(),
            upstream_status: own(self.upstream_status),
            user_agent: own(self.user_agent),
            x_forwarded_for: own(self.x_forwarded_for),
            referer: own(self.referer),
            requested_server_name: own(self.requested_server_name),
            frontend: own(self.frontend),
        }
    }
}

/// Splits a request target into path and query (`/a?b` → `/a`, `Some("b")`).
#[inline]
pub(crate) fn split_target(target: Text<'_>) -> (Text<'_>, Option<Text<'_>>) {
    match target {
        Cow::Borrowed(text) => {
            let (path, query) = split_borrowed_target(text);
            (Cow::Borrowed(path), query.map(Cow::Borrowed))
        }
        Cow::Owned(text) => match text.split_once('?') {
            Some((path, query)) => (
                Cow::Owned(path.to_owned()),
                Some(Cow::Owned(query.to_owned())),
            ),
            None => (Cow::Owned(text), None),
        },
    }
}

/// [`split_target`] of borrowed text: the path, and the query after the
/// first `?` if there is one. One byte search (`?` is ASCII, so both sides
/// stay valid UTF-8) rather than the generic char-pattern searcher.
#[inline(always)]
pub(crate) fn split_borrowed_target(text: &str) -> (&str, Option<&str>) {
    match find_question_mark(text.as_bytes()) {
        Some(at) => match (text.get(..at), text.get(at + 1..)) {
            (Some(path), Some(query)) => (path, Some(query)),
            _ => (text, None),
        },
        None => (text, None),
    }
}

/// The position of the first `?` in `bytes`. Request targets are short
/// (tens of bytes), where `memchr`'s dispatch and set-up cost more than the
/// search: eight bytes at a time as one word ([`question_marks`]); the last
/// few bytes as the text's last eight (overlapping words already searched,
/// which hold no `?`), or one by one in a text shorter than eight bytes.
#[inline]
fn find_question_mark(bytes: &[u8]) -> Option<usize> {
    let mut chunks = bytes.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let mut eight = [0u8; 8];
        eight.copy_from_slice(chunk);
        let marks = question_marks(u64::from_le_bytes(eight));
        if marks != 0 {
            return Some(offset + (marks.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    if chunks.remainder().is_empty() {
        return None;
    }
    let last_word = bytes
        .len()
        .checked_sub(8)
        .and_then(|start| bytes.get(start..))
        .and_then(|last| <[u8; 8]>::try_from(last).ok());
    match last_word {
        Some(last) => {
            let marks = question_marks(u64::from_le_bytes(last));
            (marks != 0).then(|| bytes.len() - 8 + (marks.trailing_zeros() / 8) as usize)
        }
        None => chunks.remainder().iter().position(|&byte| byte == b'?'),
    }
}

/// The high bit of every byte of `word` that may be a `?`: a zero byte of
/// `word ^ ????????` marks one. The borrow of the subtraction can only mark
/// bytes above the first real one, so the lowest mark is exact.
#[inline(always)]
fn question_marks(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    const QUESTION_MARKS: u64 = ONES * b'?' as u64;
    let found = word ^ QUESTION_MARKS;
    found.wrapping_sub(ONES) & !found & HIGHS
}

/// True when an HTTP/2 path looks like a gRPC method: `/<pkg>.<Service>/<Method>`.
pub(crate) fn looks_like_grpc_path(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    let Some((service, method)) = rest.split_once('/') else {
        return false;
    };
    let ident = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'.')
    };
    service.contains('.') && ident(service) && ident(method) && !method.contains('.')
}

impl AccessRecord<'_> {
    /// Fills [`AccessRecord::protocol`] from `protocol_raw` and the gRPC hints
    /// (content-type header, route/cluster prefix, path shape). Called by every
    /// decoder once the record is complete.
    #[inline]
    pub(crate) fn finish_protocol(&mut self, grpc_hint: bool) {
        let base = self.protocol_raw.as_deref().map(Protocol::from_version);
        let route_grpc = |name: &str| name.starts_with("grpcroute/");
        // Cheapest hints first; the header list is searched only when
        // headers were kept (it is empty otherwise).
        let grpc = grpc_hint
            || self.upstream_cluster.as_deref().is_some_and(route_grpc)
            || self.route_name.as_deref().is_some_and(route_grpc)
            || (base == Some(Protocol::Http2)
                && self.path.as_deref().is_some_and(looks_like_grpc_path))
            || (!self.headers.is_empty()
                && self
                    .header("content-type")
                    .is_some_and(|value| value.starts_with("application/grpc")));
        self.protocol = if grpc { Some(Protocol::Grpc) } else { base };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The word search finds the first `?` exactly where a byte search does.
        #[test]
        fn question_mark_search_agrees_with_a_byte_search(
            raw in proptest::collection::vec(proptest::prop_oneof![3 => 0x3eu8..0x41, 1 => proptest::num::u8::ANY], 0..40),
        ) {
            proptest::prop_assert_eq!(find_question_mark(&raw), raw.iter().position(|&b| b == b'?'));
        }

        /// The shortcut for plain text answers as `trim` does.
        #[test]
        fn upstream_addrs_shortcut_agrees_with_trim(raw in "[-0-9a-f.: \t\u{a0}\u{3000},]{0,12}") {
            let trimmed = raw.trim();
            let expected = (!trimmed.is_empty() && trimmed != "-").then_some(raw.as_str());
            let addrs = UpstreamAddrs::new(Cow::Borrowed(raw.as_str()));
            proptest::prop_assert_eq!(addrs.raw(), expected);
        }

        /// `single` answers only when `iter` has exactly that one item.
        #[test]
        fn single_is_the_only_attempt(raw in "[0-9a-f.:\\[\\], \t\u{a0}-]{0,24}") {
            let addrs = UpstreamAddrs::new(Cow::Borrowed(raw.as_str()));
            if let Some(single) = addrs.single() {
                proptest::prop_assert_eq!(addrs.iter().collect::<Vec<_>>(), vec![single]);
            }
        }
    }

    #[test]
    fn single_takes_the_plain_address_only() {
        let single = |raw: &'static str| {
            UpstreamAddrs::new(Cow::Borrowed(raw))
                .single()
                .map(str::to_owned)
        };
        assert_eq!(single("10.0.0.1:80").as_deref(), Some("10.0.0.1:80"));
        assert_eq!(single("[fd00::1]:8080").as_deref(), Some("[fd00::1]:8080"));
        for needs_iter in [
            " 10.0.0.1:80",
            "10.0.0.1:80\t",
            "a,b",
            "a b",
            "-",
            ":",
            "",
            "a\u{a0}",
        ] {
            assert_eq!(single(needs_iter), None, "{needs_iter:?}");
        }
    }

    /// One `?` (or a byte one bit away from it) at every position of texts
    /// up to 40 bytes: the word search, its overlapping last word included,
    /// finds exactly the first `?`.
    #[test]
    fn question_mark_search_at_every_position() {
        for len in 0..40 {
            for at in 0..len {
                for (mark, other) in [(b'?', b'a'), (b'?', b'?' ^ 0x80), (b'>', b'?')] {
                    let mut raw = vec![b'a'; len];
                    raw[at] = mark;
                    if at + 1 < len {
                        raw[at + 1] = other;
                    }
                    let expected = raw.iter().position(|&b| b == b'?');
                    assert_eq!(find_question_mark(&raw), expected, "{raw:?}");
                }
            }
        }
    }

    #[test]
    fn split_target_splits_at_the_first_question_mark() {
        for target in ["/", "/a?b", "/a?", "?", "?x?y", "/ä?ö=1", "/no-query", ""] {
            let (path, query) = split_target(Cow::Borrowed(target));
            let expected = target.split_once('?');
            assert_eq!(
                (path.as_ref(), query.as_deref()),
                expected.map_or((target, None), |(p, q)| (p, Some(q))),
                "{target}"
            );
            assert!(matches!(path, Cow::Borrowed(_)));
        }
    }

    #[test]
    fn upstream_addrs_lists_every_attempt() {
        let addrs = UpstreamAddrs::new(Cow::Borrowed("10.0.0.1:80, 10.0.0.2:80 : 10.0.0.3:9000"));
        assert_eq!(
            addrs.iter().collect::<Vec<_>>(),
            ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:9000"]
        );
        assert_eq!(addrs.last(), Some("10.0.0.3:9000"));
        assert_eq!(addrs.len(), 3);
        assert!(UpstreamAddrs::new(Cow::Borrowed("-")).is_empty());
        assert!(UpstreamAddrs::new(Cow::Borrowed("")).raw().is_none());
        let single = UpstreamAddrs::new(Cow::Borrowed("[fd00::1]:8080"));
        assert_eq!(single.last(), Some("[fd00::1]:8080"));
    }

    #[test]
    fn split_target_and_grpc_path() {
        let (path, query) = split_target(Cow::Borrowed("/products?id=42"));
        assert_eq!(path, "/products");
        assert_eq!(query.as_deref(), Some("id=42"));
        let (path, query) = split_target(Cow::Owned("/a".to_owned()));
        assert_eq!(path, "/a");
        assert_eq!(query, None);
        assert!(looks_like_grpc_path("/helloworld.Greeter/SayHello"));
        assert!(!looks_like_grpc_path("/api/orders"));
        assert!(!looks_like_grpc_path("/a.b/c/d"));
        assert_eq!(Protocol::from_version("HTTP/2"), Protocol::Http2);
        assert_eq!(Protocol::from_version("-"), Protocol::Other);
    }
}
