//! The collector as an attacker meets it: pages of other sites, rebound host
//! names, empty tokens, huge window requests, malformed requests.

use looptrace_collector::hub::{HubConfig, WindowReply};
use looptrace_collector::server::{AccessError, ServerConfig};
use looptrace_collector::Embedded;
use looptrace_test_support::*;
use looptrace_wire::*;
use serde_json::{json, Value};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_of_other_sites_and_rebound_names_are_refused_on_every_route() {
    let (addr, hub) = start(HubConfig::default(), ServerConfig::default());
    let own = addr.to_string();
    let own_origin = format!("http://{addr}");
    let attacks: Vec<(String, Vec<(&str, String)>)> = vec![
        (
            "foreign origin".into(),
            vec![
                ("Host", own.clone()),
                ("Origin", "http://evil.example".into()),
            ],
        ),
        (
            "other scheme".into(),
            vec![("Host", own.clone()), ("Origin", format!("evil://{addr}"))],
        ),
        (
            "null origin".into(),
            vec![("Host", own.clone()), ("Origin", "null".into())],
        ),
        (
            "DNS rebinding".into(),
            vec![
                ("Host", "evil.example:7878".into()),
                ("Origin", "http://evil.example:7878".into()),
            ],
        ),
        (
            "rebinding, no origin".into(),
            vec![("Host", "evil.example".into())],
        ),
    ];
    let mut refused = 0;
    for (what, headers) in &attacks {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        for path in ["/api/sessions", "/api/health", "/"] {
            let (status, body) = {
                let h: Vec<(String, String)> = h
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                tokio::task::spawn_blocking(move || {
                    let h: Vec<(&str, &str)> =
                        h.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                    request(addr, path, &h)
                })
                .await
                .unwrap()
            };
            assert_eq!(status, 403, "{what} on {path}: {body}");
            let v: Value = serde_json::from_str(&body).unwrap();
            assert!(v["error"].is_string(), "{body}");
            refused += 1;
        }
        for path in ["/ingest", "/ws/view"] {
            // tungstenite sets Host itself; the headers given replace it.
            let r = connect_with(addr, path, &h).await;
            assert_eq!(r.err(), Some(403), "{what} on {path}");
            refused += 1;
        }
    }
    assert_eq!(hub.counters.rejected_connections.load(Relaxed), refused);
    // The collector's own page, and apps (no Origin), pass.
    let ok = [("Host", own.as_str()), ("Origin", own_origin.as_str())];
    assert!(connect_with(addr, "/ws/view", &ok).await.is_ok());
    assert!(connect_with(addr, "/ingest", &[]).await.is_ok());
    let local = format!("localhost:{}", addr.port());
    let (status, _) = tokio::task::spawn_blocking(move || {
        request(addr, "/api/sessions", &[("Host", local.as_str())])
    })
    .await
    .unwrap();
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listed_host_names_are_let_in_and_a_token_opens_any() {
    let (addr, _) = start(
        HubConfig::default(),
        ServerConfig {
            allow_hosts: vec!["tracer.lan".into()],
            ..ServerConfig::default()
        },
    );
    let (status, _) = tokio::task::spawn_blocking(move || {
        request(addr, "/api/health", &[("Host", "tracer.lan:7878")])
    })
    .await
    .unwrap();
    assert_eq!(status, 200);
    let (tok, _) = start(
        HubConfig::default(),
        ServerConfig {
            token: Some("s3cret".into()),
            ..ServerConfig::default()
        },
    );
    let (status, _) = tokio::task::spawn_blocking(move || {
        request(
            tok,
            "/api/health",
            // Any name, with the token; the scheme's case does not matter.
            &[
                ("Host", "anything.example"),
                ("Authorization", "bearer s3cret"),
            ],
        )
    })
    .await
    .unwrap();
    assert_eq!(status, 200);
}

#[test]
fn empty_tokens_and_tokenless_collectors_off_loopback_are_refused() {
    let any: std::net::SocketAddr = "0.0.0.0:0".parse().unwrap();
    let lo: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    let token = |t: Option<&str>| ServerConfig {
        token: t.map(String::from),
        ..ServerConfig::default()
    };
    assert_eq!(token(Some("")).check(lo), Err(AccessError::EmptyToken));
    assert_eq!(token(Some("  ")).check(any), Err(AccessError::EmptyToken));
    assert_eq!(token(None).check(any), Err(AccessError::NeedsToken(any)));
    assert_eq!(token(None).check(lo), Ok(()));
    assert_eq!(token(Some("s3cret")).check(any), Ok(()));
    // The embedded collector follows the same rule.
    let err = Embedded::serve(any, HubConfig::default())
        .err()
        .expect("refused");
    assert!(err.to_string().contains("needs a token"), "{err}");
    assert!(Embedded::serve_with(any, HubConfig::default(), token(Some(""))).is_err());
}

#[test]
fn serve_refuses_an_empty_token() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_looptrace"))
        .args(["serve", "--addr", "127.0.0.1:0", "--token", ""])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("empty token"), "{err}");
}

/// A session with many short polls: `n` intervals of each phase.
fn busy_session(hub: &looptrace_collector::hub::Hub, n: u64) -> u64 {
    let mut frame = Vec::new();
    encode_header(&header("busy"), &mut frame);
    let id = hub.open(
        header("busy"),
        &frame,
        looptrace_collector::hub::Source::Live,
    );
    let mut events = vec![spawn_ev(0, 1, "busy")];
    for i in 0..n {
        events.extend(poll_evs(1_000 + i * 1_000, 1));
        events.push(Event {
            ts_ns: 1_000 + i * 1_000 + 500,
            thread: 0,
            kind: EventKind::Waker {
                task: 1,
                op: WakeOp::Wake,
                by: WakeSource::Io,
            },
        });
    }
    hub.ingest(id, &events);
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_window_request_is_capped() {
    let (addr, hub) = start(HubConfig::default(), ServerConfig::default());
    let id = busy_session(&hub, 200_000);
    // Full detail of 600 000 intervals asked for, and a billion buckets: the reply
    // comes aggregated, in at most 10 000 buckets.
    let path = format!("/api/sessions/{id}/window?max_intervals=1000000000000&buckets=1000000000");
    let (status, body) =
        tokio::task::spawn_blocking(move || request(addr, &path, &[("Host", "localhost")]))
            .await
            .unwrap();
    assert_eq!(status, 200);
    // Chunked transfer: the JSON is between the first '{' and the last '}'.
    let json = &body[body.find('{').unwrap()..=body.rfind('}').unwrap()];
    let v: Value = serde_json::from_str(json).unwrap();
    assert_eq!(v["detail"], "aggregate");
    assert!(v["tasks"][0]["running"].as_array().unwrap().len() <= 10_000);
    assert!(body.len() < 2 << 20, "{} bytes", body.len());
    // The same on the viewer socket.
    let mut viewer = connect(addr, "/ws/view").await;
    send_json(
        &mut viewer,
        json!({"op": "window", "id": 1, "session": id, "start_ns": 0, "end_ns": u64::MAX,
               "max_intervals": usize::MAX, "buckets": usize::MAX}),
    )
    .await;
    let w = next_of(&mut viewer, "window", Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(w["detail"], "aggregate");
    // Within the cap, full detail.
    match hub.window(id, 0, 50_000, 1000, 10).unwrap() {
        WindowReply::Full(w) => assert!(w.intervals.len() < 1000),
        WindowReply::Aggregate(_) => panic!("a small window at full detail"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_json_errors_that_do_not_echo_them() {
    let (addr, hub) = start(HubConfig::default(), ServerConfig::default());
    let id = busy_session(&hub, 10);
    for (path, says) in [
        (
            format!("/api/sessions/{id}/window?start_ns=abc"),
            "start_ns",
        ),
        (format!("/api/sessions/{id}/window?end_ns=-5"), "end_ns"),
        (
            format!("/api/sessions/{id}/window?start_ns=9&end_ns=3"),
            "after start_ns",
        ),
        ("/api/sessions/xyz/tasks".to_string(), "xyz"),
        (
            format!("/api/sessions/{id}/tasks/{}", "9".repeat(5000)),
            "invalid",
        ),
        ("/api/sessions/99/stats".to_string(), "no session 99"),
    ] {
        let p = path.clone();
        let (status, body) =
            tokio::task::spawn_blocking(move || request(addr, &p, &[("Host", "localhost")]))
                .await
                .unwrap();
        assert!(status == 400 || status == 404, "{path}: {status}");
        let v: Value =
            serde_json::from_str(&body).unwrap_or_else(|_| panic!("{path}: not JSON: {body}"));
        let e = v["error"].as_str().unwrap();
        assert!(
            e.to_lowercase().contains(&says.to_lowercase()),
            "{path}: {e}"
        );
        assert!(e.len() < 300, "{path}: the error echoes the input");
    }
    let mut viewer = connect(addr, "/ws/view").await;
    send_json(&mut viewer, json!({"op": "subscribe", "session": 99})).await;
    let e = next_of(&mut viewer, "error", Duration::from_secs(2))
        .await
        .unwrap();
    assert!(e["message"].as_str().unwrap().contains("no session 99"));
    send_json(
        &mut viewer,
        json!({"op": "replay", "action": "x".repeat(1 << 20)}),
    )
    .await;
    let e = next_of(&mut viewer, "error", Duration::from_secs(2))
        .await
        .unwrap();
    assert!(e.to_string().len() < 300);
}
