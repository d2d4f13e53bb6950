//! The request the engine decides on.
//!
//! A request built from an access log usually carries less than the real request:
//! most formats omit request headers, some omit the query string or the method.
//! Such attributes are *unknown*, and the engine decides over all their possible
//! values (see [`crate::gateway::Decision::alternatives`]). A request built for
//! `explain` knows everything: an absent header is absent.

/// `http` or `https`: which listener protocol the request arrives on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scheme {
    /// Cleartext; served by `HTTP` listeners.
    #[default]
    Http,
    /// TLS; served by `HTTPS` listeners.
    Https,
}

impl Scheme {
    /// The default port for the scheme.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }

    /// `http` / `https`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// Which route kinds the request is matched against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// Plain HTTP: HTTPRoutes.
    #[default]
    Http,
    /// gRPC: GRPCRoutes first; HTTPRoutes when no GRPCRoute is attached for the host.
    Grpc,
}

/// What is known about the request's headers.
#[derive(Debug, Clone, Copy, Default)]
pub struct Headers<'a> {
    /// Headers whose values are known (name, value). Names compare case-insensitively.
    pub known: &'a [(&'a str, &'a str)],
    /// When true, any header not in `known` may or may not be present (logs).
    /// When false, a header not in `known` is absent (explain).
    pub others_unknown: bool,
}

impl<'a> Headers<'a> {
    /// The first value of header `name` (case-insensitive), as far as known.
    pub fn get(&self, name: &str) -> Lookup<'a> {
        match self
            .known
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some((_, v)) => Lookup::Present(v),
            None if self.others_unknown => Lookup::Unknown,
            None => Lookup::Absent,
        }
    }
}

/// The result of looking up a request attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup<'a> {
    /// Present with this value.
    Present(&'a str),
    /// Known to be absent.
    Absent,
    /// Not known (the log does not carry it).
    Unknown,
}

/// One request, borrowed from the caller's buffers.
#[derive(Debug, Clone, Copy, Default)]
pub struct Request<'a> {
    /// `namespace/name` of the Gateway; `None` picks the only Gateway of the index.
    pub gateway: Option<&'a str>,
    /// Listener port; defaults to the scheme's port.
    pub port: Option<u16>,
    /// Scheme (listener protocol).
    pub scheme: Scheme,
    /// TLS SNI, for HTTPS; selects the listener at handshake time.
    pub sni: Option<&'a str>,
    /// Host header / `:authority`, possibly with `:port`; `None` when absent.
    pub host: Option<&'a str>,
    /// Method; `None` when unknown.
    pub method: Option<&'a str>,
    /// Path without the query string.
    pub path: &'a str,
    /// Raw query string without `?` (`Some("")` when there is none); `None` when unknown.
    pub query: Option<&'a str>,
    /// Headers.
    pub headers: Headers<'a>,
    /// HTTP or gRPC.
    pub protocol: Protocol,
}

impl<'a> Request<'a> {
    /// The port the request arrived on.
    pub fn effective_port(&self) -> u16 {
        self.port.unwrap_or(self.scheme.default_port())
    }

    /// The first value of query parameter `name` (exact, case-sensitive name).
    ///
    /// The spec recommends matching the first value of a repeated parameter
    /// (`HTTPQueryParamMatch`); values are compared as written in the request
    /// (no percent-decoding), which is what Envoy does for exact matches.
    pub fn query_param(&self, name: &str) -> Lookup<'a> {
        self.query_param_bytes(name.as_bytes())
    }

    /// [`Request::query_param`] for a name given as bytes (the compact
    /// condition records hold their names as bytes).
    #[inline]
    pub(crate) fn query_param_bytes(&self, name: &[u8]) -> Lookup<'a> {
        let Some(query) = self.query else {
            return Lookup::Unknown;
        };
        // `query.split('&')` and `split_once('=')` by plain byte scans (query
        // strings are short: the searchers' set-up costs more than the scan).
        let bytes = query.as_bytes();
        let mut start = 0;
        loop {
            let end = bytes[start..]
                .iter()
                .position(|&b| b == b'&')
                .map_or(bytes.len(), |i| start + i);
            let pair = &query[start..end];
            let (k, v) = match pair.bytes().position(|b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, ""),
            };
            if k.as_bytes() == name {
                return Lookup::Present(v);
            }
            if end == bytes.len() {
                return Lookup::Absent;
            }
            start = end + 1;
        }
    }
}

/// Splits `path?query` into the path and the query (without `?`); a fragment is dropped.
pub fn split_path_query(target: &str) -> (&str, &str) {
    let target = target.split_once('#').map_or(target, |(t, _)| t);
    match target.split_once('?') {
        Some((p, q)) => (p, q),
        None => (target, ""),
    }
}

/// A request as written in JSON for `explain` (owned). Everything but `path` is
/// optional: the method defaults to `GET`, the port to the scheme's, and a
/// `?query` inside `path` is split off.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestSpec {
    /// `namespace/name` of the Gateway.
    pub gateway: Option<String>,
    /// Listener port.
    pub port: Option<u16>,
    /// `http` (default) or `https`.
    pub scheme: Option<String>,
    /// TLS SNI.
    pub sni: Option<String>,
    /// Host header, possibly with `:port`.
    pub host: Option<String>,
    /// Method (default `GET`).
    pub method: Option<String>,
    /// Path, possibly with `?query`.
    pub path: String,
    /// Query string without `?`.
    pub query: Option<String>,
    /// Request headers.
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
    /// `http` (default) or `grpc`.
    pub protocol: Option<String>,
}

/// Why a [`RequestSpec`] is unusable.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// `scheme` is not http/https.
    #[error("scheme must be \"http\" or \"https\", got {0:?}")]
    Scheme(String),
    /// `protocol` is not http/grpc.
    #[error("protocol must be \"http\" or \"grpc\", got {0:?}")]
    Protocol(String),
    /// `path` does not start with `/`.
    #[error("path must start with '/', got {0:?}")]
    Path(String),
}

impl RequestSpec {
    /// The headers as borrowed pairs, for [`RequestSpec::to_request`].
    pub fn header_pairs(&self) -> Vec<(&str, &str)> {
        self.headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    /// Borrows a [`Request`] with every attribute known.
    pub fn to_request<'a>(
        &'a self,
        headers: &'a [(&'a str, &'a str)],
    ) -> Result<Request<'a>, RequestError> {
        let scheme = match self.scheme.as_deref() {
            None | Some("http") => Scheme::Http,
            Some("https") => Scheme::Https,
            Some(other) => return Err(RequestError::Scheme(other.to_string())),
        };
        let protocol = match self.protocol.as_deref() {
            None | Some("http") => Protocol::Http,
            Some("grpc") => Protocol::Grpc,
            Some(other) => return Err(RequestError::Protocol(other.to_string())),
        };
        let (path, inline_query) = split_path_query(&self.path);
        if !path.starts_with('/') {
            return Err(RequestError::Path(self.path.clone()));
        }
        Ok(Request {
            gateway: self.gateway.as_deref(),
            port: self.port,
            scheme,
            sni: self.sni.as_deref(),
            host: self.host.as_deref(),
            method: Some(self.method.as_deref().unwrap_or("GET")),
            path,
            query: Some(self.query.as_deref().unwrap_or(inline_query)),
            headers: Headers {
                known: headers,
                others_unknown: false,
            },
            protocol,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_first_value_and_unknown() {
        let r = Request {
            path: "/",
            query: Some("a=1&b=2&a=3&flag"),
            ..Default::default()
        };
        assert_eq!(r.query_param("a"), Lookup::Present("1"));
        assert_eq!(r.query_param("flag"), Lookup::Present(""));
        assert_eq!(r.query_param("A"), Lookup::Absent);
        let unknown = Request {
            path: "/",
            ..Default::default()
        };
        assert_eq!(unknown.query_param("a"), Lookup::Unknown);
    }

    /// The byte scans find what `split('&')` and `split_once('=')` find, on
    /// empty pairs, missing values, `=` in values and multi-byte text.
    #[test]
    fn query_scan_is_split_and_split_once() {
        let queries = [
            "",
            "&",
            "&&",
            "=",
            "a",
            "a=",
            "=a",
            "a=1",
            "a=1&",
            "&a=1",
            "a==1",
            "a=1=2&a=3",
            "b&a",
            "x=1&&a=2",
            "é=ü&a=ß",
            "a&a=1",
            "aa=1&a=2",
        ];
        let names = ["", "a", "b", "aa", "é", "x", "a=1"];
        for query in queries {
            let r = Request {
                path: "/",
                query: Some(query),
                ..Default::default()
            };
            for name in names {
                let want = query
                    .split('&')
                    .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
                    .find(|(k, _)| *k == name)
                    .map_or(Lookup::Absent, |(_, v)| Lookup::Present(v));
                assert_eq!(r.query_param(name), want, "{query:?} {name:?}");
            }
        }
    }

    #[test]
    fn headers_case_insensitive() {
        let known = [("Version", "two")];
        let h = Headers {
            known: &known,
            others_unknown: false,
        };
        assert_eq!(h.get("version"), Lookup::Present("two"));
        assert_eq!(h.get("color"), Lookup::Absent);
        let h = Headers {
            known: &known,
            others_unknown: true,
        };
        assert_eq!(h.get("color"), Lookup::Unknown);
    }

    #[test]
    fn split() {
        assert_eq!(split_path_query("/a?b=c#f"), ("/a", "b=c"));
        assert_eq!(split_path_query("/a"), ("/a", ""));
    }
}
