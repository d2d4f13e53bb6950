//! Conformance-derived decision cases.
//!
//! Every `tests/cases/*.yaml` file holds a set of Gateway API manifests, a list of requests
//! with the decision the Gateway API specification (and its upstream conformance suite)
//! requires, and optionally the route parent conditions the spec requires. This harness runs
//! the real `routeproof` binary (`explain` and `check`) against each file and compares only
//! the keys a case lists. All mismatches of all files are collected and reported at once.
//!
//! Comparison rules (see `tests/cases/README.md`):
//! * `route` is `namespace/name` of the decision's route (or null);
//! * `rule` / `rule_name` are compared with `route.rule` / `route.rule_name`;
//! * `backends` is the *set* of `namespace/name` of backends with `valid: true` and `weight > 0`;
//! * `weights` maps `namespace/name` to the configured weight of that (valid) backend;
//! * `invalid_backends` entries must appear as backends with `valid: false` and the given reason;
//! * `redirect` / `rewrite`: only listed keys; a redirect `port` equal to the scheme's default
//!   port and `null` (port left out of `Location`) are treated as equal;
//! * `mirrors` is the set of `namespace/name` of mirror backends.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use serde_json::Value as Json;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    name: String,
    source: String,
    #[serde(default)]
    notes: Option<String>,
    manifests: String,
    #[serde(default)]
    requests: Vec<Case>,
    #[serde(default)]
    conditions: Vec<ExpectedCondition>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    /// Free-text label for the report.
    #[serde(default)]
    why: Option<String>,
    request: serde_yaml::Mapping,
    expect: Expect,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    outcome: Outcome,
    #[serde(default, deserialize_with = "present")]
    status: Option<Option<u16>>,
    #[serde(default, deserialize_with = "present")]
    route: Option<Option<String>>,
    #[serde(default)]
    rule: Option<u64>,
    #[serde(default, deserialize_with = "present")]
    rule_name: Option<Option<String>>,
    #[serde(default)]
    backends: Option<Vec<String>>,
    #[serde(default)]
    weights: Option<BTreeMap<String, u64>>,
    #[serde(default)]
    invalid_backends: Option<Vec<InvalidBackend>>,
    #[serde(default, deserialize_with = "present")]
    redirect: Option<Option<serde_yaml::Mapping>>,
    #[serde(default, deserialize_with = "present")]
    rewrite: Option<Option<serde_yaml::Mapping>>,
    #[serde(default)]
    mirrors: Option<Vec<String>>,
    #[serde(default)]
    listener: Option<String>,
}

/// Distinguishes "key absent" (outer `None`) from "key: null" (`Some(None)`).
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum Outcome {
    Forward,
    Redirect,
    NoListener,
    NoRoute,
    Error,
    Misdirected,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Forward => "forward",
            Outcome::Redirect => "redirect",
            Outcome::NoListener => "no_listener",
            Outcome::NoRoute => "no_route",
            Outcome::Error => "error",
            Outcome::Misdirected => "misdirected",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InvalidBackend {
    name: String,
    reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectedCondition {
    route: String,
    #[serde(default = "default_route_kind")]
    kind: String,
    /// `ns/name` or `ns/name/sectionName`.
    parent: String,
    /// Kind of the parent (Gateway or ListenerSet); only checked when `check` reports it.
    #[serde(default)]
    parent_kind: Option<String>,
    /// parentRef port, when the parentRef sets one.
    #[serde(default)]
    parent_port: Option<u16>,
    #[serde(default)]
    accepted: Option<bool>,
    #[serde(default)]
    accepted_reason: Option<String>,
    #[serde(default)]
    resolved_refs: Option<bool>,
    #[serde(default)]
    resolved_refs_reason: Option<String>,
}

fn default_route_kind() -> String {
    "HTTPRoute".to_string()
}

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("cases")
}

fn case_paths() -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = fs::read_dir(cases_dir())
        .expect("tests/cases must exist")
        .map(|e| e.expect("readable dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    paths.sort();
    paths
}

fn file_label(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

fn load(path: &Path) -> Result<CaseFile, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("read: {e}"))?;
    let cf: CaseFile = serde_yaml::from_str(&text).map_err(|e| format!("parse: {e}"))?;
    // The manifests themselves must be valid multi-document YAML with kind/metadata.
    for (i, doc) in serde_yaml::Deserializer::from_str(&cf.manifests).enumerate() {
        let v = serde_yaml::Value::deserialize(doc)
            .map_err(|e| format!("manifests document {i}: {e}"))?;
        if v.is_null() {
            continue;
        }
        let kind = v.get("kind").and_then(|k| k.as_str());
        let name = v
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(|n| n.as_str());
        if kind.is_none() || name.is_none() {
            return Err(format!(
                "manifests document {i} lacks kind or metadata.name"
            ));
        }
    }
    Ok(cf)
}

fn yaml_to_json(v: &serde_yaml::Value) -> Json {
    serde_json::to_value(v).expect("YAML value converts to JSON")
}

fn ns_name(v: &Json) -> Option<String> {
    let ns = v.get("namespace")?.as_str()?;
    let name = v.get("name")?.as_str()?;
    Some(format!("{ns}/{name}"))
}

/// Compares one redirect/rewrite field. Redirect ports: `null` and the scheme default are equal.
fn port_equal(expected: &Json, got: &Json, scheme: Option<&str>) -> bool {
    if expected == got {
        return true;
    }
    let default = match scheme {
        Some("http") => Some(80),
        Some("https") => Some(443),
        _ => None,
    };
    let norm = |v: &Json| -> Option<u64> {
        match v {
            Json::Null => default,
            Json::Number(n) => n.as_u64(),
            Json::String(s) => s.parse().ok(),
            _ => None,
        }
    };
    default.is_some() && norm(expected) == norm(got)
}

fn compare_map(
    what: &str,
    expected: &serde_yaml::Mapping,
    got: &Json,
    errs: &mut Vec<String>,
    redirect: bool,
) {
    if got.is_null() {
        errs.push(format!("{what}: expected {expected:?}, got null"));
        return;
    }
    let scheme = got
        .get("scheme")
        .and_then(|s| s.as_str())
        .or_else(|| expected.get("scheme").and_then(|s| s.as_str()));
    for (k, v) in expected {
        let key = k.as_str().unwrap_or_default();
        let want = yaml_to_json(v);
        let have = got.get(key).cloned().unwrap_or(Json::Null);
        let ok = if redirect && key == "port" {
            port_equal(&want, &have, scheme)
        } else {
            want == have
        };
        if !ok {
            errs.push(format!("{what}.{key}: expected {want}, got {have}"));
        }
    }
}

fn compare_decision(exp: &Expect, got: &Json) -> Vec<String> {
    let mut errs = Vec::new();
    let outcome = got
        .get("outcome")
        .and_then(|o| o.as_str())
        .unwrap_or("<missing>");
    if outcome != exp.outcome.as_str() {
        errs.push(format!(
            "outcome: expected {}, got {outcome}",
            exp.outcome.as_str()
        ));
    }
    if let Some(status) = exp.status {
        let have = got.get("status").and_then(|s| s.as_u64());
        if status.map(u64::from) != have {
            errs.push(format!("status: expected {status:?}, got {have:?}"));
        }
    }
    let route = got.get("route").filter(|r| !r.is_null());
    if let Some(want) = &exp.route {
        let have = route.and_then(ns_name);
        if *want != have {
            errs.push(format!("route: expected {want:?}, got {have:?}"));
        }
    }
    if let Some(want) = exp.rule {
        let have = route.and_then(|r| r.get("rule")).and_then(|r| r.as_u64());
        if Some(want) != have {
            errs.push(format!("rule: expected {want}, got {have:?}"));
        }
    }
    if let Some(want) = &exp.rule_name {
        let have = route
            .and_then(|r| r.get("rule_name"))
            .and_then(|r| r.as_str())
            .map(str::to_string);
        if *want != have {
            errs.push(format!("rule_name: expected {want:?}, got {have:?}"));
        }
    }
    let backends: Vec<&Json> = got
        .get("backends")
        .and_then(|b| b.as_array())
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    fn is_valid(b: &&&Json) -> bool {
        b.get("valid").and_then(|v| v.as_bool()) == Some(true)
    }
    let weight = |b: &Json| b.get("weight").and_then(|w| w.as_u64()).unwrap_or(0);
    if let Some(want) = &exp.backends {
        let want: BTreeSet<&str> = want.iter().map(String::as_str).collect();
        let have: BTreeSet<String> = backends
            .iter()
            .filter(is_valid)
            .filter(|b| weight(b) > 0)
            .filter_map(|b| ns_name(b))
            .collect();
        let have_ref: BTreeSet<&str> = have.iter().map(String::as_str).collect();
        if want != have_ref {
            errs.push(format!(
                "backends (valid, weight>0): expected {want:?}, got {have_ref:?}"
            ));
        }
    }
    if let Some(want) = &exp.weights {
        for (name, w) in want {
            let have = backends
                .iter()
                .filter(is_valid)
                .find(|b| ns_name(b).as_deref() == Some(name.as_str()))
                .map(|b| weight(b));
            if have != Some(*w) {
                errs.push(format!("weight of {name}: expected {w}, got {have:?}"));
            }
        }
    }
    if let Some(want) = &exp.invalid_backends {
        for ib in want {
            let found = backends.iter().any(|b| {
                ns_name(b).as_deref() == Some(ib.name.as_str())
                    && b.get("valid").and_then(|v| v.as_bool()) == Some(false)
                    && b.get("reason").and_then(|r| r.as_str()) == Some(ib.reason.as_str())
            });
            if !found {
                errs.push(format!(
                    "invalid backend {} with reason {} not reported (backends: {})",
                    ib.name,
                    ib.reason,
                    Json::Array(backends.iter().map(|b| (*b).clone()).collect())
                ));
            }
        }
    }
    let null = Json::Null;
    match &exp.redirect {
        Some(Some(want)) => compare_map(
            "redirect",
            want,
            got.get("redirect").unwrap_or(&null),
            &mut errs,
            true,
        ),
        Some(None) if !got.get("redirect").unwrap_or(&null).is_null() => {
            errs.push(format!("redirect: expected null, got {}", got["redirect"]));
        }
        Some(None) => {}
        None => {}
    }
    match &exp.rewrite {
        Some(Some(want)) => compare_map(
            "rewrite",
            want,
            got.get("rewrite").unwrap_or(&null),
            &mut errs,
            false,
        ),
        Some(None) if !got.get("rewrite").unwrap_or(&null).is_null() => {
            errs.push(format!("rewrite: expected null, got {}", got["rewrite"]));
        }
        Some(None) => {}
        None => {}
    }
    if let Some(want) = &exp.mirrors {
        let want: BTreeSet<&str> = want.iter().map(String::as_str).collect();
        let have: BTreeSet<String> = got
            .get("mirrors")
            .and_then(|m| m.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|m| {
                        m.as_str()
                            .map(str::to_string)
                            .or_else(|| ns_name(m))
                            .or_else(|| m.get("backend").and_then(ns_name))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let have_ref: BTreeSet<&str> = have.iter().map(String::as_str).collect();
        if want != have_ref {
            errs.push(format!("mirrors: expected {want:?}, got {have_ref:?}"));
        }
    }
    if let Some(want) = &exp.listener {
        let have = got.get("listener").and_then(|l| l.as_str());
        if have != Some(want.as_str()) {
            errs.push(format!("listener: expected {want}, got {have:?}"));
        }
    }
    errs
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_routeproof")
}

fn write_manifests(dir: &Path, cf: &CaseFile) -> PathBuf {
    let mdir = dir.join("manifests");
    fs::create_dir_all(&mdir).unwrap();
    fs::write(mdir.join("manifests.yaml"), &cf.manifests).unwrap();
    mdir
}

fn run_explain(dir: &Path, mdir: &Path, cf: &CaseFile) -> Result<Vec<Json>, String> {
    let mut jsonl = String::new();
    for c in &cf.requests {
        let j = yaml_to_json(&serde_yaml::Value::Mapping(c.request.clone()));
        jsonl.push_str(&serde_json::to_string(&j).unwrap());
        jsonl.push('\n');
    }
    let rfile = dir.join("requests.jsonl");
    fs::write(&rfile, jsonl).unwrap();
    let out = Command::new(bin())
        .arg("explain")
        .arg("--manifests")
        .arg(mdir)
        .arg("--requests")
        .arg(&rfile)
        .args(["--output", "json"])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin()))?;
    if !out.status.success() {
        return Err(format!(
            "`routeproof explain` exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let decisions: Result<Vec<Json>, String> = stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).map_err(|e| format!("bad decision JSON {l:?}: {e}")))
        .collect();
    let decisions = decisions?;
    if decisions.len() != cf.requests.len() {
        return Err(format!(
            "`routeproof explain` printed {} decisions for {} requests",
            decisions.len(),
            cf.requests.len()
        ));
    }
    Ok(decisions)
}

fn run_check(mdir: &Path) -> Result<Json, String> {
    let out = Command::new(bin())
        .arg("check")
        .arg("--manifests")
        .arg(mdir)
        .args(["--output", "json"])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin()))?;
    // The exit code signals findings; only the JSON matters here.
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim()).map_err(|e| {
        format!(
            "`routeproof check` did not print one JSON object ({e}); exit {}; stderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )
    })
}

fn condition<'a>(conds: &'a Json, ty: &str) -> Option<&'a Json> {
    conds
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(|t| t.as_str()) == Some(ty))
}

fn compare_condition(want: &ExpectedCondition, report: &Json) -> Vec<String> {
    let mut errs = Vec::new();
    let mut parts = want.parent.splitn(3, '/');
    let (pns, pname, psection) = (parts.next(), parts.next(), parts.next());
    let parents: Vec<&Json> = report
        .get("route_parents")
        .and_then(|r| r.as_array())
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let entry = parents.into_iter().find(|p| {
        let r = &p["route"];
        let pr = &p["parent_ref"];
        let kind_ok = r.get("kind").and_then(|k| k.as_str()) == Some(want.kind.as_str());
        let route_ok = ns_name(r).as_deref() == Some(want.route.as_str());
        let parent_ok = pr.get("namespace").and_then(|v| v.as_str()) == pns
            && pr.get("name").and_then(|v| v.as_str()) == pname
            && pr.get("section_name").and_then(|v| v.as_str()) == psection;
        let pkind_ok = match (&want.parent_kind, pr.get("kind").and_then(|k| k.as_str())) {
            (Some(w), Some(h)) => w == h,
            (None, Some(h)) => h == "Gateway",
            _ => true,
        };
        let port_ok = match want.parent_port {
            Some(port) => pr.get("port").and_then(|v| v.as_u64()) == Some(u64::from(port)),
            None => true,
        };
        kind_ok && route_ok && parent_ok && pkind_ok && port_ok
    });
    let Some(entry) = entry else {
        errs.push(format!(
            "no route_parents entry for {} {} -> {}",
            want.kind, want.route, want.parent
        ));
        return errs;
    };
    let conds = &entry["conditions"];
    let mut check = |ty: &str, status: Option<bool>, reason: &Option<String>| {
        if status.is_none() && reason.is_none() {
            return;
        }
        let Some(c) = condition(conds, ty) else {
            errs.push(format!("condition {ty} missing (conditions: {conds})"));
            return;
        };
        if let Some(s) = status {
            let want_s = if s { "True" } else { "False" };
            let have = c.get("status").and_then(|v| v.as_str());
            if have != Some(want_s) {
                errs.push(format!("{ty}.status: expected {want_s}, got {have:?}"));
            }
        }
        if let Some(r) = reason {
            let have = c.get("reason").and_then(|v| v.as_str());
            if have != Some(r.as_str()) {
                errs.push(format!("{ty}.reason: expected {r}, got {have:?}"));
            }
        }
    };
    check("Accepted", want.accepted, &want.accepted_reason);
    check(
        "ResolvedRefs",
        want.resolved_refs,
        &want.resolved_refs_reason,
    );
    errs
}

/// Runs one case file; returns human-readable mismatch blocks.
fn run_file(path: &Path) -> Vec<String> {
    let label = file_label(path);
    let cf = match load(path) {
        Ok(cf) => cf,
        Err(e) => return vec![format!("{label}: {e}")],
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let mdir = write_manifests(tmp.path(), &cf);
    let mut out = Vec::new();
    if !cf.requests.is_empty() {
        match run_explain(tmp.path(), &mdir, &cf) {
            Err(e) => out.push(format!("{label}: {e}")),
            Ok(decisions) => {
                for (i, (case, got)) in cf.requests.iter().zip(&decisions).enumerate() {
                    let errs = compare_decision(&case.expect, got);
                    if !errs.is_empty() {
                        let req = yaml_to_json(&serde_yaml::Value::Mapping(case.request.clone()));
                        let mut s = format!("{label} request #{i}");
                        if let Some(why) = &case.why {
                            let _ = write!(s, " ({why})");
                        }
                        let _ = write!(s, "\n    request: {req}");
                        for e in errs {
                            let _ = write!(s, "\n    - {e}");
                        }
                        let expl = got.get("explanation").cloned().unwrap_or(Json::Null);
                        let _ = write!(s, "\n    explanation: {expl}");
                        out.push(s);
                    }
                }
            }
        }
    }
    if !cf.conditions.is_empty() {
        match run_check(&mdir) {
            Err(e) => out.push(format!("{label}: {e}")),
            Ok(report) => {
                for (i, want) in cf.conditions.iter().enumerate() {
                    let errs = compare_condition(want, &report);
                    if !errs.is_empty() {
                        let mut s = format!(
                            "{label} condition #{i} ({} {} -> {})",
                            want.kind, want.route, want.parent
                        );
                        for e in errs {
                            let _ = write!(s, "\n    - {e}");
                        }
                        out.push(s);
                    }
                }
            }
        }
    }
    out
}

#[test]
fn case_files_parse() {
    let paths = case_paths();
    assert!(!paths.is_empty(), "no case files in {:?}", cases_dir());
    let mut errs = Vec::new();
    let mut names = BTreeSet::new();
    for p in &paths {
        match load(p) {
            Ok(cf) => {
                if !names.insert(cf.name.clone()) {
                    errs.push(format!(
                        "{}: duplicate case name {}",
                        file_label(p),
                        cf.name
                    ));
                }
                if cf.source.trim().is_empty() {
                    errs.push(format!("{}: empty source", file_label(p)));
                }
                if cf.notes.as_deref().is_some_and(|n| n.trim().is_empty()) {
                    errs.push(format!("{}: empty notes", file_label(p)));
                }
            }
            Err(e) => errs.push(format!("{}: {e}", file_label(p))),
        }
    }
    assert!(
        errs.is_empty(),
        "case files do not parse:\n{}",
        errs.join("\n")
    );
}

#[test]
fn case_files_are_not_empty() {
    let mut errs = Vec::new();
    for p in case_paths() {
        if let Ok(cf) = load(&p) {
            if cf.requests.is_empty() && cf.conditions.is_empty() {
                errs.push(file_label(&p));
            }
        }
    }
    assert!(
        errs.is_empty(),
        "case files with neither requests nor conditions: {errs:?}"
    );
}

#[test]
fn conformance_cases() {
    let paths = case_paths();
    let mut failures = Vec::new();
    let (mut n_req, mut n_cond) = (0usize, 0usize);
    for p in &paths {
        if let Ok(cf) = load(p) {
            n_req += cf.requests.len();
            n_cond += cf.conditions.len();
        }
        failures.extend(run_file(p));
    }
    assert!(
        failures.is_empty(),
        "{} mismatch(es) over {} files ({} requests, {} conditions):\n\n{}\n",
        failures.len(),
        paths.len(),
        n_req,
        n_cond,
        failures.join("\n\n")
    );
}

#[test]
fn comparison_rules_self_check() {
    let exp: Expect = serde_yaml::from_str(
        r#"
outcome: forward
status: null
route: ns/r
rule: 1
rule_name: null
backends: [ns/a, ns/b]
weights: {ns/a: 70}
invalid_backends: [{name: ns/x, reason: RefNotPermitted}]
mirrors: [ns/m]
"#,
    )
    .unwrap();
    let got = serde_json::json!({
        "outcome": "forward", "status": null, "listener": "ns/gw/http",
        "route": {"kind": "HTTPRoute", "namespace": "ns", "name": "r", "rule": 1, "rule_name": null, "match": 0},
        "backends": [
            {"kind": "Service", "namespace": "ns", "name": "a", "port": 8080, "weight": 70, "valid": true, "reason": null},
            {"kind": "Service", "namespace": "ns", "name": "b", "port": 8080, "weight": 30, "valid": true, "reason": null},
            {"kind": "Service", "namespace": "ns", "name": "c", "port": 8080, "weight": 0, "valid": true, "reason": null},
            {"kind": "Service", "namespace": "ns", "name": "x", "port": 8080, "weight": 1, "valid": false, "reason": "RefNotPermitted"}
        ],
        "redirect": null, "rewrite": null,
        "mirrors": [{"namespace": "ns", "name": "m"}],
        "explanation": []
    });
    assert_eq!(compare_decision(&exp, &got), Vec::<String>::new());

    let exp: Expect = serde_yaml::from_str(
        "{outcome: redirect, status: 302, redirect: {scheme: https, port: null, status_code: 302}}",
    )
    .unwrap();
    let got = serde_json::json!({"outcome": "redirect", "status": 302, "route": null,
        "redirect": {"scheme": "https", "host": "h", "port": 443, "path": "/", "status_code": 302}});
    assert_eq!(compare_decision(&exp, &got), Vec::<String>::new());
    let got_bad =
        serde_json::json!({"outcome": "no_route", "status": 404, "route": null, "redirect": null});
    assert_eq!(compare_decision(&exp, &got_bad).len(), 3);
}
