//! An in-process fake Kubernetes API server speaking the real list/watch
//! protocol over plain HTTP/1.1, so the real kube client, watcher and reflector
//! code runs against it:
//!
//! - `GET /version`, `GET /apis/{group}/{version}` (discovery; 404 for groups
//!   not served, as when a CRD is not installed);
//! - lists: `{"metadata":{"resourceVersion":..},"items":[..]}`;
//! - watches (`?watch=true&resourceVersion=N`): a chunked stream of
//!   `ADDED`/`MODIFIED`/`DELETED` events after `N`, then live ones; a
//!   `resourceVersion` older than the retained history gets a `410 Gone`
//!   `ERROR` event, like a compacted etcd;
//! - faults: [`FakeApiServer::set_down`] drops every open connection and resets
//!   new ones; [`FakeApiServer::expire_history`] drops watches and makes every
//!   older resourceVersion `410 Gone`.
//!
//! Every response is `Connection: close`; one request per connection.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A resource the server serves.
#[derive(Debug, Clone)]
pub struct Resource {
    /// `""` for core.
    pub group: &'static str,
    /// Version.
    pub version: &'static str,
    /// Plural.
    pub plural: &'static str,
    /// Kind.
    pub kind: &'static str,
}

impl Resource {
    /// The collection path (all namespaces).
    pub fn path(&self) -> String {
        if self.group.is_empty() {
            format!("/api/{}/{}", self.version, self.plural)
        } else {
            format!("/apis/{}/{}/{}", self.group, self.version, self.plural)
        }
    }

    fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// The standard set: Gateway API v1 (+ ReferenceGrant v1beta1 only), core, discovery.
pub fn standard_resources() -> Vec<Resource> {
    let gw = "gateway.networking.k8s.io";
    vec![
        Resource {
            group: gw,
            version: "v1",
            plural: "gateways",
            kind: "Gateway",
        },
        Resource {
            group: gw,
            version: "v1",
            plural: "httproutes",
            kind: "HTTPRoute",
        },
        Resource {
            group: gw,
            version: "v1",
            plural: "grpcroutes",
            kind: "GRPCRoute",
        },
        Resource {
            group: gw,
            version: "v1beta1",
            plural: "referencegrants",
            kind: "ReferenceGrant",
        },
        Resource {
            group: "",
            version: "v1",
            plural: "services",
            kind: "Service",
        },
        Resource {
            group: "",
            version: "v1",
            plural: "namespaces",
            kind: "Namespace",
        },
        Resource {
            group: "discovery.k8s.io",
            version: "v1",
            plural: "endpointslices",
            kind: "EndpointSlice",
        },
    ]
}

#[derive(Debug, Default)]
struct State {
    rv: u64,
    /// path -> (ns, name) -> object
    objects: BTreeMap<String, BTreeMap<(String, String), Value>>,
    /// (rv, path, type, object)
    events: Vec<(u64, String, &'static str, Value)>,
    /// Watches from a resourceVersion below this get 410.
    expired_below: u64,
    down: bool,
    generation: u64,
    requests: Vec<String>,
}

/// The running fake server.
#[derive(Clone)]
pub struct FakeApiServer {
    addr: SocketAddr,
    resources: Arc<Vec<Resource>>,
    state: Arc<Mutex<State>>,
    /// Bumped on every change: `(rv, generation)`.
    tick: Arc<watch::Sender<(u64, u64)>>,
}

impl FakeApiServer {
    /// Starts serving `resources` on a free local port (within a tokio runtime).
    pub async fn start(resources: Vec<Resource>) -> FakeApiServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tick, _) = watch::channel((0, 0));
        let server = FakeApiServer {
            addr,
            resources: Arc::new(resources),
            state: Arc::new(Mutex::new(State {
                rv: 1,
                ..State::default()
            })),
            tick: Arc::new(tick),
        };
        let s = server.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                if s.lock().down {
                    drop(stream);
                    continue;
                }
                let s = s.clone();
                tokio::spawn(async move {
                    let _ = s.handle(stream).await;
                });
            }
        });
        server
    }

    /// `http://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn bump(&self, st: &State) {
        self.tick.send_replace((st.rv, st.generation));
    }

    /// Creates or replaces an object of the resource at `path`.
    pub fn apply(&self, path: &str, mut object: Value) {
        let mut st = self.lock();
        st.rv += 1;
        let rv = st.rv;
        let ns = object["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or("")
            .to_string();
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        if object["metadata"].get("creationTimestamp").is_none() {
            object["metadata"]["creationTimestamp"] = json!("2024-05-01T00:00:00Z");
        }
        let kind = self
            .resources
            .iter()
            .find(|r| r.path() == path)
            .expect("served resource");
        object["apiVersion"] = json!(kind.api_version());
        object["kind"] = json!(kind.kind);
        let existed = st
            .objects
            .entry(path.to_string())
            .or_default()
            .insert((ns, name), object.clone())
            .is_some();
        st.events.push((
            rv,
            path.to_string(),
            if existed { "MODIFIED" } else { "ADDED" },
            object,
        ));
        self.bump(&st);
    }

    /// Deletes an object.
    pub fn delete(&self, path: &str, namespace: &str, name: &str) {
        let mut st = self.lock();
        st.rv += 1;
        let rv = st.rv;
        let removed = st
            .objects
            .get_mut(path)
            .and_then(|m| m.remove(&(namespace.to_string(), name.to_string())));
        if let Some(mut object) = removed {
            object["metadata"]["resourceVersion"] = json!(rv.to_string());
            st.events.push((rv, path.to_string(), "DELETED", object));
        }
        self.bump(&st);
    }

    /// Takes the server down (drops every connection, resets new ones) or up.
    pub fn set_down(&self, down: bool) {
        let mut st = self.lock();
        st.down = down;
        st.generation += 1;
        self.bump(&st);
    }

    /// Forgets the event history: open watches are closed and every watch from
    /// an older resourceVersion gets `410 Gone`.
    pub fn expire_history(&self) {
        let mut st = self.lock();
        st.rv += 1;
        st.expired_below = st.rv;
        st.events.clear();
        st.generation += 1;
        self.bump(&st);
    }

    /// Request lines received so far.
    pub fn requests(&self) -> Vec<String> {
        self.lock().requests.clone()
    }

    async fn handle(&self, stream: TcpStream) -> std::io::Result<()> {
        let mut reader = BufReader::new(stream);
        let mut request_line = String::new();
        reader.read_line(&mut request_line).await?;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).await? == 0 || header == "\r\n" || header == "\n" {
                break;
            }
        }
        let mut stream = reader.into_inner();
        let target = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("/")
            .to_string();
        let generation = {
            let mut st = self.lock();
            st.requests.push(target.clone());
            st.generation
        };
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let params: BTreeMap<&str, &str> = query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .collect();
        if path == "/version" {
            let body = json!({"major": "1", "minor": "33", "gitVersion": "v1.33.0",
                "gitCommit": "fake", "gitTreeState": "clean", "buildDate": "2025-01-01T00:00:00Z",
                "goVersion": "go1.24", "compiler": "gc", "platform": "linux/amd64"});
            return respond(&mut stream, 200, &body).await;
        }
        if let Some(resource) = self.resources.iter().find(|r| r.path() == path) {
            let watching = matches!(params.get("watch"), Some(&"true") | Some(&"1"));
            if watching {
                let from: u64 = params
                    .get("resourceVersion")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                return self.watch(stream, resource.path(), from, generation).await;
            }
            let (rv, items) = {
                let st = self.lock();
                let items: Vec<Value> = st
                    .objects
                    .get(path)
                    .map(|m| m.values().cloned().collect())
                    .unwrap_or_default();
                (st.rv, items)
            };
            let body = json!({"apiVersion": resource.api_version(), "kind": format!("{}List", resource.kind),
                "metadata": {"resourceVersion": rv.to_string()}, "items": items});
            return respond(&mut stream, 200, &body).await;
        }
        // Discovery of a group/version.
        let gv = path
            .strip_prefix("/apis/")
            .or_else(|| path.strip_prefix("/api/"));
        if let Some(gv) = gv {
            let served: Vec<&Resource> = self
                .resources
                .iter()
                .filter(|r| r.api_version() == gv)
                .collect();
            if !served.is_empty() {
                let resources: Vec<Value> = served
                    .iter()
                    .map(|r| json!({"name": r.plural, "singularName": "", "namespaced": r.kind != "Namespace",
                        "kind": r.kind, "verbs": ["get", "list", "watch"]}))
                    .collect();
                let body = json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources});
                return respond(&mut stream, 200, &body).await;
            }
        }
        let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": format!("the server could not find the requested resource ({path})"), "reason": "NotFound", "code": 404});
        respond(&mut stream, 404, &body).await
    }

    async fn watch(
        &self,
        mut stream: TcpStream,
        path: String,
        from: u64,
        generation: u64,
    ) -> std::io::Result<()> {
        stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
            .await?;
        let expired = self.lock().expired_below > from;
        if expired {
            let event = json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "metadata": {},
                "status": "Failure", "message": format!("too old resource version: {from}"), "reason": "Expired", "code": 410}});
            chunk(&mut stream, &event).await?;
            return stream.write_all(b"0\r\n\r\n").await;
        }
        let mut tick = self.tick.subscribe();
        let mut sent = from;
        loop {
            let (pending, gen_now) = {
                let st = self.lock();
                let pending: Vec<(u64, &'static str, Value)> = st
                    .events
                    .iter()
                    .filter(|(rv, p, _, _)| *rv > sent && *p == path)
                    .map(|(rv, _, t, o)| (*rv, *t, o.clone()))
                    .collect();
                (pending, st.generation)
            };
            if gen_now != generation {
                // Dropped connection: no terminating chunk.
                return Ok(());
            }
            for (rv, t, object) in pending {
                chunk(&mut stream, &json!({"type": t, "object": object})).await?;
                sent = rv;
            }
            if tick.changed().await.is_err() {
                return Ok(());
            }
        }
    }
}

async fn chunk(stream: &mut TcpStream, value: &Value) -> std::io::Result<()> {
    let mut data = serde_json::to_vec(value).unwrap_or_default();
    data.push(b'\n');
    stream
        .write_all(format!("{:x}\r\n", data.len()).as_bytes())
        .await?;
    stream.write_all(&data).await?;
    stream.write_all(b"\r\n").await?;
    stream.flush().await
}

async fn respond(stream: &mut TcpStream, code: u16, body: &Value) -> std::io::Result<()> {
    let body = serde_json::to_vec(body).unwrap_or_default();
    let reason = if code == 200 { "OK" } else { "Not Found" };
    stream
        .write_all(
            format!(
                "HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        )
        .await?;
    stream.write_all(&body).await?;
    stream.flush().await
}
