//! A tiny HTTP server for `/healthz`, `/readyz` and `/metrics` (Prometheus
//! text format), on a std `TcpListener` thread: no HTTP framework needed for
//! three GET endpoints.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::history::IndexHistory;
use super::LiveError;

/// The running health server (the thread lives as long as the process).
#[derive(Debug)]
pub struct HealthServer {
    addr: SocketAddr,
}

impl HealthServer {
    /// Binds `addr` (e.g. `0.0.0.0:9090`, or port 0 for any) and serves in a
    /// background thread.
    pub fn start(addr: &str, history: Arc<IndexHistory>) -> Result<HealthServer, LiveError> {
        let err = |source| LiveError::Serve {
            addr: addr.to_string(),
            source,
        };
        let listener = TcpListener::bind(addr).map_err(err)?;
        let bound = listener.local_addr().map_err(err)?;
        std::thread::Builder::new()
            .name("routeproof-health".into())
            .spawn(move || {
                for stream in listener.incoming().flatten() {
                    let _ = handle(stream, &history);
                }
            })
            .map_err(err)?;
        Ok(HealthServer { addr: bound })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

fn handle(mut stream: TcpStream, history: &IndexHistory) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut line = String::new();
    let mut reader = BufReader::new(&stream);
    reader.read_line(&mut line)?;
    // Read the headers up to the blank line before answering: closing a
    // socket with unread input makes the kernel send a reset, and the client
    // (a kubelet probe, a scraper) may lose the response.
    let mut header = String::new();
    for _ in 0..100 {
        header.clear();
        if reader.read_line(&mut header)? == 0 || header.trim_end().is_empty() {
            break;
        }
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/");
    let (status, content_type, body) = match path {
        "/healthz" => ("200 OK", "text/plain", "ok\n".to_string()),
        "/readyz" if history.is_ready() => ("200 OK", "text/plain", "ready\n".to_string()),
        "/readyz" => (
            "503 Service Unavailable",
            "text/plain",
            "initial lists not synced\n".to_string(),
        ),
        "/metrics" => ("200 OK", "text/plain; version=0.0.4", metrics_text(history)),
        _ => ("404 Not Found", "text/plain", "not found\n".to_string()),
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// The control path's metrics in the Prometheus text format.
pub fn metrics_text(history: &IndexHistory) -> String {
    let s = history.stats();
    let current = history.current();
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: String| {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
        ));
    };
    metric(
        "routeproof_index_ready",
        "gauge",
        "1 once the initial lists are synced and an index is published.",
        u8::from(history.is_ready()).to_string(),
    );
    metric(
        "routeproof_index_age_seconds",
        "gauge",
        "Seconds since the source last confirmed the index is current.",
        format!("{:.3}", history.index_age_seconds()),
    );
    metric(
        "routeproof_index_stale",
        "gauge",
        "1 while records are marked index_stale.",
        u8::from(history.is_stale()).to_string(),
    );
    metric(
        "routeproof_index_version",
        "gauge",
        "Version of the newest index snapshot.",
        current.as_ref().map_or(0, |c| c.version).to_string(),
    );
    metric(
        "routeproof_index_snapshots",
        "gauge",
        "Snapshots held in the history.",
        history.len().to_string(),
    );
    metric(
        "routeproof_index_rebuilds_total",
        "counter",
        "Index snapshots compiled and published.",
        s.rebuilds.load(Ordering::Relaxed).to_string(),
    );
    metric(
        "routeproof_index_last_rebuild_seconds",
        "gauge",
        "Duration of the last index rebuild.",
        format!(
            "{:.6}",
            s.last_rebuild_us.load(Ordering::Relaxed) as f64 / 1e6
        ),
    );
    metric(
        "routeproof_watch_errors_total",
        "counter",
        "Watch and list errors (retried with backoff).",
        s.watch_errors.load(Ordering::Relaxed).to_string(),
    );
    metric(
        "routeproof_watch_relists_total",
        "counter",
        "Watches restarted with a full list (e.g. after 410 Gone).",
        s.relists.load(Ordering::Relaxed).to_string(),
    );
    metric(
        "routeproof_config_alerts_total",
        "counter",
        "Config-audit alerts emitted.",
        s.config_alerts.load(Ordering::Relaxed).to_string(),
    );
    metric(
        "routeproof_objects_rejected_total",
        "counter",
        "Watched objects that could not be read and were skipped.",
        s.bad_objects.load(Ordering::Relaxed).to_string(),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::{CompileOptions, ObjectSet, RouteIndex};
    use crate::kube::HistoryOptions;
    use crate::resolve::EndpointIndex;
    use std::io::Read;

    fn get(addr: SocketAddr, path: &str) -> String {
        let mut s = TcpStream::connect(addr).expect("connect");
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
        let mut out = String::new();
        s.read_to_string(&mut out).expect("read");
        out
    }

    #[test]
    fn readyz_follows_the_history() {
        let history = Arc::new(IndexHistory::new(HistoryOptions::default()));
        let server = HealthServer::start("127.0.0.1:0", history.clone()).expect("start");
        let addr = server.local_addr();
        assert!(get(addr, "/healthz").starts_with("HTTP/1.1 200"));
        assert!(get(addr, "/readyz").starts_with("HTTP/1.1 503"));
        let objects = ObjectSet::default();
        let index = RouteIndex::compile(&objects, CompileOptions::default());
        history.publish(index, EndpointIndex::build(&objects), 0, true);
        history.set_ready();
        assert!(get(addr, "/readyz").starts_with("HTTP/1.1 200"));
        let metrics = get(addr, "/metrics");
        assert!(metrics.contains("routeproof_index_ready 1"), "{metrics}");
        assert!(metrics.contains("# TYPE routeproof_index_age_seconds gauge"));
        assert!(get(addr, "/nope").starts_with("HTTP/1.1 404"));
    }
}
