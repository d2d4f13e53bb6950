//! Compiled match conditions and their evaluation against a [`Request`].
//!
//! Evaluation is three-valued ([`Truth`]): a condition on an attribute the request
//! does not carry (a header missing from the access log) is [`Truth::Unknown`].
//!
//! Spec: `apis/v1/httproute_types.go` HTTPRouteMatch (~line 761), PathMatchType
//! (~lines 470-560), HTTPHeaderMatch (~line 598), HTTPQueryParamMatch (~line 669),
//! HTTPMethod (~line 727); `apis/v1/grpcroute_types.go` GRPCRouteMatch.

use regex::Regex;

use super::request::{Lookup, Request};

/// Three-valued truth for conditions over partially known requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Truth {
    /// Certainly false.
    No,
    /// Depends on attributes the request does not carry.
    Unknown,
    /// Certainly true.
    Yes,
}

impl Truth {
    /// Kleene AND.
    pub fn and(self, other: Truth) -> Truth {
        self.min(other)
    }

    fn from_bool(b: bool) -> Truth {
        if b {
            Truth::Yes
        } else {
            Truth::No
        }
    }
}

/// A compiled path condition.
#[derive(Debug, Clone)]
pub enum PathCondition {
    /// Byte-exact, case-sensitive.
    Exact(String),
    /// Segment-wise prefix; stored without a trailing `/` (except the root `/`).
    Prefix(String),
    /// Anchored regular expression (`^(?:value)$`); dialect: Rust `regex`
    /// (RE2-like, as Envoy's). The spec leaves the dialect to the implementation.
    Regex(Regex, String),
}

impl PathCondition {
    /// Builds a `PathPrefix` condition. A trailing `/` in the configured value is
    /// ignored (`/match/` behaves as `/match`; conformance `HTTPRoutePathMatchOrder`).
    pub fn prefix(value: &str) -> PathCondition {
        let trimmed = value.trim_end_matches('/');
        PathCondition::Prefix(if trimmed.is_empty() {
            "/".to_string()
        } else {
            trimmed.to_string()
        })
    }

    /// Whether `path` satisfies the condition.
    ///
    /// `PathPrefix` compares whole `/`-separated segments: `/abc` matches `/abc`,
    /// `/abc/` and `/abc/def`, never `/abcd`.
    pub fn matches(&self, path: &str) -> bool {
        match self {
            PathCondition::Exact(v) => path == v,
            PathCondition::Prefix(p) => {
                p == "/"
                    || (path.starts_with(p.as_str())
                        && matches!(path.as_bytes().get(p.len()), None | Some(b'/')))
            }
            PathCondition::Regex(re, _) => re.is_match(path),
        }
    }

    /// Precedence class: Exact (0) before PathPrefix (1) before RegularExpression (2).
    ///
    /// Regex precedence is implementation-specific in the spec; we rank regexes
    /// after every prefix (as Envoy Gateway and NGINX Gateway Fabric do), then by
    /// pattern length.
    pub fn class(&self) -> u8 {
        match self {
            PathCondition::Exact(_) => 0,
            PathCondition::Prefix(_) => 1,
            PathCondition::Regex(..) => 2,
        }
    }

    /// The configured value (as normalized).
    pub fn value(&self) -> &str {
        match self {
            PathCondition::Exact(v) | PathCondition::Prefix(v) | PathCondition::Regex(_, v) => v,
        }
    }

    /// The type name as in the API.
    pub fn type_name(&self) -> &'static str {
        match self {
            PathCondition::Exact(_) => "Exact",
            PathCondition::Prefix(_) => "PathPrefix",
            PathCondition::Regex(..) => "RegularExpression",
        }
    }
}

/// A compiled value condition (header, query parameter).
#[derive(Debug, Clone)]
pub enum ValueCondition {
    /// Exact, case-sensitive value.
    Exact(String),
    /// Anchored regular expression.
    Regex(Regex),
}

impl ValueCondition {
    /// Evaluates the condition on a looked-up value.
    pub fn eval(&self, lookup: Lookup<'_>) -> Truth {
        match lookup {
            Lookup::Unknown => Truth::Unknown,
            Lookup::Absent => Truth::No,
            Lookup::Present(v) => Truth::from_bool(match self {
                ValueCondition::Exact(e) => e == v,
                ValueCondition::Regex(re) => re.is_match(v),
            }),
        }
    }

    /// Whether two conditions are the same test.
    pub fn same_as(&self, other: &ValueCondition) -> bool {
        match (self, other) {
            (ValueCondition::Exact(a), ValueCondition::Exact(b)) => a == b,
            (ValueCondition::Regex(a), ValueCondition::Regex(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}

/// One compiled `HTTPRouteMatch`: all conditions ANDed.
#[derive(Debug, Clone)]
pub struct HttpMatchCondition {
    /// Path condition (default `PathPrefix /`).
    pub path: PathCondition,
    /// Method, upper case.
    pub method: Option<String>,
    /// Header conditions; names lower-cased; duplicates (by name) removed, first kept.
    pub headers: Vec<(String, ValueCondition)>,
    /// Query conditions; names exact; duplicates removed, first kept.
    pub query: Vec<(String, ValueCondition)>,
}

impl HttpMatchCondition {
    /// Evaluates the match against the request.
    pub fn eval(&self, req: &Request<'_>) -> Truth {
        if !self.path.matches(req.path) {
            return Truth::No;
        }
        self.eval_given_path(req)
    }

    /// Evaluates the method, header and query conditions only: the match's
    /// truth for a request whose path is already known to satisfy
    /// [`HttpMatchCondition::path`] (the path index establishes that).
    pub fn eval_given_path(&self, req: &Request<'_>) -> Truth {
        let mut truth = Truth::Yes;
        if let Some(m) = &self.method {
            truth = truth.and(match req.method {
                None => Truth::Unknown,
                Some(rm) => Truth::from_bool(rm == m),
            });
            if truth == Truth::No {
                return truth;
            }
        }
        for (name, cond) in &self.headers {
            truth = truth.and(cond.eval(req.headers.get(name)));
            if truth == Truth::No {
                return truth;
            }
        }
        for (name, cond) in &self.query {
            truth = truth.and(cond.eval(req.query_param(name)));
            if truth == Truth::No {
                return truth;
            }
        }
        truth
    }

    /// Whether every request this match accepts is also accepted by `self`
    /// (`self` is at least as general). Conservative: `false` when unsure (regexes
    /// are only compared by pattern text).
    pub fn subsumes(&self, other: &HttpMatchCondition) -> bool {
        let path_covers = match (&self.path, &other.path) {
            (PathCondition::Prefix(p), PathCondition::Prefix(o) | PathCondition::Exact(o)) => {
                PathCondition::Prefix(p.clone()).matches(o)
            }
            (PathCondition::Exact(a), PathCondition::Exact(b)) => a == b,
            (PathCondition::Regex(a, _), PathCondition::Regex(b, _)) => a.as_str() == b.as_str(),
            _ => false,
        };
        path_covers
            && (self.method.is_none() || self.method == other.method)
            && conditions_subset(&self.headers, &other.headers)
            && conditions_subset(&self.query, &other.query)
    }
}

/// Whether every condition in `general` also appears in `specific`.
fn conditions_subset(
    general: &[(String, ValueCondition)],
    specific: &[(String, ValueCondition)],
) -> bool {
    general
        .iter()
        .all(|(name, cond)| specific.iter().any(|(n, c)| n == name && c.same_as(cond)))
}

/// A compiled `GRPCMethodMatch` part.
#[derive(Debug, Clone)]
pub enum GrpcNameCondition {
    /// Exact, case-sensitive.
    Exact(String),
    /// Anchored regex (Impl-specific in the spec).
    Regex(Regex, String),
}

impl GrpcNameCondition {
    fn matches(&self, v: &str) -> bool {
        match self {
            GrpcNameCondition::Exact(e) => e == v,
            GrpcNameCondition::Regex(re, _) => re.is_match(v),
        }
    }

    /// Characters in the configured value (precedence: most characters wins).
    pub fn char_count(&self) -> usize {
        match self {
            GrpcNameCondition::Exact(e) | GrpcNameCondition::Regex(_, e) => e.len(),
        }
    }

    /// The configured value.
    pub fn value(&self) -> &str {
        match self {
            GrpcNameCondition::Exact(e) | GrpcNameCondition::Regex(_, e) => e,
        }
    }
}

/// One compiled `GRPCRouteMatch`.
#[derive(Debug, Clone)]
pub struct GrpcMatchCondition {
    /// Service condition.
    pub service: Option<GrpcNameCondition>,
    /// Method condition.
    pub method: Option<GrpcNameCondition>,
    /// Header conditions (names lower-cased).
    pub headers: Vec<(String, ValueCondition)>,
}

impl GrpcMatchCondition {
    /// Evaluates the match against a gRPC request whose path is `/service/method`.
    pub fn eval(&self, req: &Request<'_>) -> Truth {
        let (service, method) = split_grpc_path(req.path).unwrap_or(("", ""));
        if self.service.as_ref().is_some_and(|s| !s.matches(service))
            || self.method.as_ref().is_some_and(|m| !m.matches(method))
        {
            return Truth::No;
        }
        let mut truth = Truth::Yes;
        for (name, cond) in &self.headers {
            truth = truth.and(cond.eval(req.headers.get(name)));
            if truth == Truth::No {
                return truth;
            }
        }
        truth
    }
}

/// Splits a gRPC request path `/pkg.Service/Method` into service and method.
pub fn split_grpc_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix('/')?;
    let (service, method) = rest.split_once('/')?;
    (!service.is_empty() && !method.is_empty() && !method.contains('/'))
        .then_some((service, method))
}

/// Compiles a user regex anchored at both ends.
pub fn anchored_regex(pattern: &str) -> Result<Regex, regex::Error> {
    Regex::new(&format!("^(?:{pattern})$"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::request::Headers;

    #[test]
    fn prefix_is_segment_wise() {
        let p = PathCondition::prefix("/abc/");
        assert!(p.matches("/abc"));
        assert!(p.matches("/abc/"));
        assert!(p.matches("/abc/def"));
        assert!(!p.matches("/abcd"));
        assert!(!p.matches("/ab"));
        assert!(PathCondition::prefix("/").matches("/anything"));
        assert!(PathCondition::prefix("").matches("/x"));
        assert!(!PathCondition::prefix("/v2").matches("/v2example"));
    }

    #[test]
    fn exact_is_byte_exact() {
        let p = PathCondition::Exact("/abc".into());
        assert!(p.matches("/abc"));
        assert!(!p.matches("/abc/"));
        assert!(!p.matches("/Abc"));
    }

    #[test]
    fn regex_is_anchored() {
        let p = PathCondition::Regex(anchored_regex("/foo/[0-9]+").unwrap(), "/foo/[0-9]+".into());
        assert!(p.matches("/foo/12"));
        assert!(!p.matches("/foo/12/x"));
        assert!(!p.matches("/x/foo/12"));
    }

    #[test]
    fn three_valued_evaluation() {
        let m = HttpMatchCondition {
            path: PathCondition::prefix("/"),
            method: Some("POST".into()),
            headers: vec![("version".into(), ValueCondition::Exact("two".into()))],
            query: vec![],
        };
        let known = [("Version", "two")];
        let full = Request {
            path: "/",
            method: Some("POST"),
            headers: Headers {
                known: &known,
                others_unknown: false,
            },
            query: Some(""),
            ..Default::default()
        };
        assert_eq!(m.eval(&full), Truth::Yes);
        let no_method = Request {
            method: None,
            ..full
        };
        assert_eq!(m.eval(&no_method), Truth::Unknown);
        let wrong = Request {
            method: Some("GET"),
            ..full
        };
        assert_eq!(m.eval(&wrong), Truth::No);
        let no_headers = Request {
            headers: Headers {
                known: &[],
                others_unknown: true,
            },
            ..full
        };
        assert_eq!(m.eval(&no_headers), Truth::Unknown);
        let absent = Request {
            headers: Headers {
                known: &[],
                others_unknown: false,
            },
            ..full
        };
        assert_eq!(m.eval(&absent), Truth::No);
    }

    #[test]
    fn grpc_paths() {
        assert_eq!(split_grpc_path("/a.B/C"), Some(("a.B", "C")));
        assert_eq!(split_grpc_path("/a.B"), None);
        assert_eq!(split_grpc_path("a/B"), None);
    }

    #[test]
    fn subsumption() {
        let general = HttpMatchCondition {
            path: PathCondition::prefix("/a"),
            method: None,
            headers: vec![],
            query: vec![],
        };
        let specific = HttpMatchCondition {
            path: PathCondition::Exact("/a/b".into()),
            method: Some("GET".into()),
            headers: vec![("x".into(), ValueCondition::Exact("1".into()))],
            query: vec![],
        };
        assert!(general.subsumes(&specific));
        assert!(!specific.subsumes(&general));
    }
}
