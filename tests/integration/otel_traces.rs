//! OpenTelemetry traces, end to end: the real host with the real components
//! and the real broker exports OTLP/HTTP to a receiver in this test (a real
//! socket, requests decoded with the `opentelemetry-proto` types). A record's
//! `traceparent` is the parent of its processing span, a request's of its
//! server span; a dead-lettered record keeps its `traceparent`; spans still
//! queued at SIGTERM are flushed before the host exits.


use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use prost::Message as _;
use rand::Rng;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use serde_json::json;
use crate::support::kafka::{consume_all, create_topic, producer};
use crate::support::{eventually, http, user_in_db, AppSpec, Host, Launcher};

/// A span as received, with what the assertions read.
#[derive(Debug, Clone)]
struct Received {
    service: String,
    name: String,
    kind: i32,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    status: i32,
    attributes: HashMap<String, String>,
}

impl Received {
    fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

/// An OTLP/HTTP receiver: `POST /v1/traces` with a protobuf body, answered 200.
struct Collector {
    endpoint: String,
    spans: Arc<Mutex<Vec<Received>>>,
    /// Every request's `(path, content-type)`.
    requests: Arc<Mutex<Vec<(String, String)>>>,
}

impl Collector {
    fn start() -> Collector {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let spans = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (s, r) = (spans.clone(), requests.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (s, r) = (s.clone(), r.clone());
                std::thread::spawn(move || serve(stream, &s, &r));
            }
        });
        Collector { endpoint, spans, requests }
    }

    fn spans(&self) -> Vec<Received> {
        self.spans.lock().unwrap().clone()
    }

    fn find(&self, what: &str, pred: impl Fn(&Received) -> bool) -> Received {
        let mut found = None;
        eventually(what, Duration::from_secs(60), || {
            found = self.spans().into_iter().find(&pred);
            found.is_some()
        });
        found.unwrap()
    }
}

/// One keep-alive connection: requests until the client closes it.
fn serve(stream: TcpStream, spans: &Mutex<Vec<Received>>, requests: &Mutex<Vec<(String, String)>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or_default().to_owned();
        let (mut length, mut content_type) = (0usize, String::new());
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':').unwrap();
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().unwrap(),
                "content-type" => content_type = value.trim().to_owned(),
                _ => {}
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        requests.lock().unwrap().push((path, content_type));
        let request = ExportTraceServiceRequest::decode(body.as_slice()).expect("an OTLP ExportTraceServiceRequest");
        // Stored before the answer: once the exporter has its 200, the spans are here.
        let mut store = spans.lock().unwrap();
        for resource in request.resource_spans {
            let service = resource
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .map(|kv| text(kv.value.as_ref().and_then(|v| v.value.as_ref())))
                .unwrap_or_default();
            for span in resource.scope_spans.into_iter().flat_map(|s| s.spans) {
                store.push(Received {
                    service: service.clone(),
                    name: span.name,
                    kind: span.kind,
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    status: span.status.map_or(0, |s| s.code),
                    attributes: span.attributes.iter().map(|kv| (kv.key.clone(), text(kv.value.as_ref().and_then(|v| v.value.as_ref())))).collect(),
                });
            }
        }
        drop(store);
        let answer = "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

fn text(value: Option<&Value>) -> String {
    match value {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh W3C context: (traceparent, trace id, parent span id).
fn traceparent() -> (String, String, String) {
    let mut rng = rand::rng();
    let trace = format!("{:032x}", rng.random::<u128>() | 1);
    let span = format!("{:016x}", rng.random::<u64>() | 1);
    (format!("00-{trace}-{span}-01"), trace, span)
}

/// Produces one record with the given headers and waits for its delivery.
fn produce_with_headers(topic: &str, key: &str, value: &str, headers: &[(&str, &str)]) {
    let producer = producer(&crate::support::kafka::brokers());
    let mut owned = OwnedHeaders::new();
    for (k, v) in headers {
        owned = owned.insert(Header { key: k, value: Some(*v) });
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(producer.send(FutureRecord::to(topic).key(key).payload(value).headers(owned), Duration::from_secs(60)))
        .map_err(|(e, _)| e)
        .unwrap();
}

struct App {
    _dir: tempfile::TempDir,
    spec: AppSpec,
    manifest: std::path::PathBuf,
    state: std::path::PathBuf,
}

impl App {
    fn new() -> App {
        let spec = AppSpec::default();
        crate::support::kafka::ensure_broker();
        create_topic(&spec.topic, 3);
        let dir = tempfile::tempdir().unwrap();
        let manifest = spec.write_manifest(dir.path());
        let state = dir.path().join(".spin");
        App { _dir: dir, spec, manifest, state }
    }

    fn start(&self, triggers: &[&str], collector: &Collector, env: &[(&str, &str)]) -> Host {
        let mut all = vec![("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint.as_str()), ("OTEL_SERVICE_NAME", "user-info-traced")];
        all.extend_from_slice(env);
        Host::start(&self.manifest, &self.state, triggers, &all)
    }
}

#[test]
fn records_and_requests_are_traced_under_their_traceparent_and_dead_letters_keep_it() {
    let collector = Collector::start();
    let app = App::new();
    // Export every 100 ms instead of the SDK's 5 s.
    let host = app.start(&["http", "kafka"], &collector, &[("OTEL_BSP_SCHEDULE_DELAY", "100")]);
    let topic = &app.spec.topic;

    // A valid update, a record that fails permanently (dead-lettered with its
    // traceparent), and one that fails without any trace context.
    let user = uuid::Uuid::new_v4().to_string();
    let (applied_tp, applied_trace, applied_parent) = traceparent();
    produce_with_headers(topic, &user, &json!({"user_id": user, "email": "traced@example.com"}).to_string(), &[("traceparent", &applied_tp)]);
    let (failed_tp, failed_trace, failed_parent) = traceparent();
    produce_with_headers(topic, "k-bad-email", &json!({"user_id": user, "email": "not-an-email"}).to_string(), &[("traceparent", &failed_tp), ("origin", "test")]);
    produce_with_headers(topic, "k-untraced", "{not json", &[]);

    let process = collector.find("the applied record's process span", |s| s.trace_id == applied_trace && s.name == format!("process {topic}"));
    assert_eq!(process.parent_span_id, applied_parent, "the record's traceparent is the parent: {process:?}");
    assert_eq!(process.kind, SpanKind::Consumer as i32);
    assert_eq!(process.service, "user-info-traced");
    assert_ne!(process.status, StatusCode::Error as i32);
    for (key, value) in [
        ("messaging.system", "kafka"),
        ("messaging.destination.name", topic.as_str()),
        ("messaging.consumer.group.name", app.spec.group.as_str()),
        ("messaging.operation.type", "process"),
    ] {
        assert_eq!(process.attr(key), Some(value), "{key} of {process:?}");
    }
    let partition: i32 = process.attr("messaging.destination.partition.id").expect("partition").parse().unwrap();
    let offset: i64 = process.attr("messaging.kafka.offset").expect("offset").parse().unwrap();
    assert!((0..3).contains(&partition) && offset >= 0, "{process:?}");
    let commit = collector.find("its commit span", |s| s.parent_span_id == process.span_id && s.name == format!("commit {topic}"));
    assert_eq!(commit.trace_id, applied_trace);
    assert_eq!(commit.attr("messaging.kafka.offset"), Some(offset.to_string().as_str()));
    assert_eq!(commit.attr("messaging.operation.type"), Some("settle"));
    eventually("the traced update applied", Duration::from_secs(60), || {
        user_in_db(&app.state.join("sqlite_db.db"), &user).is_some_and(|u| u["email"] == "traced@example.com")
    });

    // The permanent failure: an error span in its own trace, with the
    // dead-letter send as a producer child.
    let failed = collector.find("the failed record's process span", |s| s.trace_id == failed_trace && s.name == format!("process {topic}"));
    assert_eq!(failed.parent_span_id, failed_parent);
    assert_eq!(failed.status, StatusCode::Error as i32, "{failed:?}");
    assert_eq!(failed.attr("error.type"), Some("permanent"));
    let dlq = &app.spec.dead_letter_topic;
    let send = collector.find("its dead-letter send span", |s| s.parent_span_id == failed.span_id && s.name == format!("send {dlq}"));
    assert_eq!(send.kind, SpanKind::Producer as i32);
    assert_eq!(send.attr("messaging.destination.name"), Some(dlq.as_str()));

    let dead = consume_all(dlq, 2, Duration::from_secs(60));
    assert_eq!(dead.len(), 2, "both failures dead-lettered: {dead:?}");
    let bad = dead.iter().find(|d| d.key.as_deref() == Some(b"k-bad-email".as_slice())).unwrap();
    assert_eq!(bad.header("traceparent"), Some(failed_tp.as_str()), "the original traceparent survives: {bad:?}");
    assert_eq!(bad.header("origin"), Some("test"));
    // A record without context gets the dead-letter producer's: a replay of
    // it continues the trace of its failure.
    let untraced = dead.iter().find(|d| d.key.as_deref() == Some(b"k-untraced".as_slice())).unwrap();
    let tp = untraced.header("traceparent").expect("the dead-letter copy carries the producer's context");
    let parts: Vec<&str> = tp.split('-').collect();
    let untraced_send = collector.find("the untraced record's send span", |s| s.span_id == parts[2]);
    assert_eq!(untraced_send.trace_id, parts[1], "{tp} is the send span's context");
    assert_eq!(untraced_send.name, format!("send {dlq}"));

    // HTTP: the project's own trigger (under Spin, Spin's HTTP trigger serves).
    if !Launcher::is_spin() {
        let (request_tp, request_trace, request_parent) = traceparent();
        let missing = uuid::Uuid::new_v4();
        let reply = http().get(format!("{}/user?user_id={missing}", host.base_url)).header("traceparent", &request_tp).call().unwrap();
        assert_eq!(reply.status(), 404);
        let server = collector.find("the request's server span", |s| s.trace_id == request_trace);
        assert_eq!(server.parent_span_id, request_parent, "{server:?}");
        assert_eq!(server.kind, SpanKind::Server as i32);
        assert_eq!(server.name, "GET /user");
        assert_eq!(server.attr("http.request.method"), Some("GET"));
        assert_eq!(server.attr("url.path"), Some("/user"));
        assert_eq!(server.attr("http.route"), Some("/user"));
        assert_eq!(server.attr("http.response.status_code"), Some("404"));
        assert_ne!(server.status, StatusCode::Error as i32, "a 4xx is not a server error");
    }
    let requests = collector.requests.lock().unwrap().clone();
    assert!(requests.iter().all(|(path, ct)| path == "/v1/traces" && ct == "application/x-protobuf"), "{requests:?}");
    assert!(host.terminate().success());
}

#[test]
#[cfg_attr(test_spin, ignore = "host-only: the request would be Spin's span, flushed by Spin")]
fn spans_still_queued_at_sigterm_are_exported_before_the_host_exits() {
    let collector = Collector::start();
    let app = App::new();
    // A schedule far beyond the test: only the shutdown flush can send the span.
    let mut host = app.start(&["http"], &collector, &[("OTEL_BSP_SCHEDULE_DELAY", "600000")]);
    let (tp, trace, _) = traceparent();
    let reply = http().get(format!("{}/user?user_id=not-a-uuid", host.base_url)).header("traceparent", &tp).call().unwrap();
    assert_eq!(reply.status(), 400);
    std::thread::sleep(Duration::from_millis(500));
    assert!(collector.spans().iter().all(|s| s.trace_id != trace), "exported before the shutdown");
    assert!(host.terminate_within(Duration::from_secs(30)).success());
    let spans = collector.spans();
    let server = spans.iter().find(|s| s.trace_id == trace).unwrap_or_else(|| panic!("the request's span was flushed at exit: {spans:?}"));
    assert_eq!(server.attr("http.response.status_code"), Some("400"));
}
