//! `/metrics`: the Prometheus text of a known program, exactly; bounded task
//! groups however many names; the route behind the same token as the API.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use looptrace_collector::hub::{Hub, HubConfig, SessionId, Source};
use looptrace_collector::server::{router, AppState, ServerConfig};
use looptrace_wire::*;
use std::collections::HashMap;
use std::sync::Arc;
use tower::ServiceExt;

const MS: u64 = 1_000_000;

fn header() -> Header {
    Header {
        process_name: "shop".into(),
        pid: 7,
        flavor: Flavor::CurrentThread,
        workers: 1,
        clock_origin_unix_ns: 0,
    }
}

fn ev(ts_ns: u64, kind: EventKind) -> Event {
    Event {
        ts_ns,
        thread: 0,
        kind,
    }
}

fn spawn(ts: u64, task: u64, name: &str) -> Event {
    ev(
        ts,
        EventKind::Spawn(Box::new(looptrace_wire::Spawn {
            task,
            kind: TaskKind::Task,
            name: Some(name.into()),
            location: "src/main.rs:1:1".into(),
            parent: None,
            size_bytes: None,
        })),
    )
}

fn poll(ts: u64, task: u64, ns: u64, ready: bool) -> [Event; 2] {
    [
        ev(ts, EventKind::PollStart { task }),
        ev(
            ts + ns,
            EventKind::PollEnd {
                task,
                ready,
                clones: 0,
                drops: 0,
                context: None,
            },
        ),
    ]
}

fn wake(ts: u64, task: u64, by: WakeSource) -> Event {
    ev(
        ts,
        EventKind::Waker {
            task,
            op: WakeOp::Wake,
            by,
        },
    )
}

fn open(hub: &Hub) -> SessionId {
    let mut frame = Vec::new();
    encode_header(&header(), &mut frame);
    hub.open(header(), &frame, Source::Live)
}

/// `name{labels}` with its labels sorted (the encoder puts `le` first).
fn normal(key: &str) -> String {
    match key.split_once('{') {
        Some((name, labels)) => {
            let mut l: Vec<&str> = labels
                .trim_end_matches('}')
                .split(',')
                .filter(|l| !l.is_empty())
                .collect();
            l.sort_unstable();
            format!("{name}{{{}}}", l.join(","))
        }
        None => key.to_string(),
    }
}

/// Samples by `name{labels}`, labels sorted.
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((normal(k), v.parse().ok()?))
        })
        .collect()
}

fn key(name: &str, id: SessionId, more: &str) -> String {
    normal(&format!(
        "{name}{{session=\"{id}\",process=\"shop\",pid=\"7\",host=\"\"{more}}}"
    ))
}

/// A worker; `api` polled three times (2 ms each, woken by a timer between),
/// then done; `report` polled once for 80 ms (a blocking poll) after waiting
/// 3 ms for the worker once woken by `api`.
#[test]
fn a_known_program_reads_exactly() {
    let hub = Hub::new(HubConfig::default());
    let id = open(&hub);
    let mut e = vec![
        ev(
            0,
            EventKind::Thread {
                role: ThreadRole::Worker(0),
                name: "w0".into(),
            },
        ),
        spawn(0, 1, "api"),
        spawn(0, 2, "report"),
    ];
    e.extend(poll(MS, 1, 2 * MS, false));
    e.push(wake(10 * MS, 1, WakeSource::Timer));
    e.extend(poll(11 * MS, 1, 2 * MS, false));
    e.push(wake(20 * MS, 1, WakeSource::Timer));
    e.extend(poll(21 * MS, 1, 2 * MS, true));
    e.push(ev(
        23 * MS,
        EventKind::Terminate {
            task: 1,
            outcome: Outcome::Completed,
        },
    ));
    e.extend(poll(24 * MS, 2, MS / 2, false));
    e.push(wake(30 * MS, 2, WakeSource::Task(1)));
    e.extend(poll(33 * MS, 2, 80 * MS, false));
    e.push(ev(113 * MS, EventKind::Park));
    e.push(ev(200 * MS, EventKind::Unpark));
    hub.ingest(id, &e);

    let text = looptrace_collector::metrics::encode(&hub, 20);
    assert!(text.ends_with("# EOF\n"), "{text}");
    let s = samples(&text);
    let get = |name: &str, more: &str| -> f64 {
        let k = key(name, id, more);
        *s.get(&k)
            .unwrap_or_else(|| panic!("no sample {k} in\n{text}"))
    };
    let api = ",group=\"api\"";
    let report = ",group=\"report\"";
    assert_eq!(get("looptrace_task_polls_total", api), 3.0);
    assert_eq!(get("looptrace_task_polls_total", report), 2.0);
    assert!((get("looptrace_task_busy_seconds_total", api) - 0.006).abs() < 1e-12);
    assert!((get("looptrace_task_busy_seconds_total", report) - 0.0805).abs() < 1e-12);
    // Poll times: api's three 2 ms polls are under the 5 ms bound, not the 1 ms.
    assert_eq!(
        get(
            "looptrace_task_poll_duration_seconds_bucket",
            &format!("{api},le=\"0.001\"")
        ),
        0.0
    );
    assert_eq!(
        get(
            "looptrace_task_poll_duration_seconds_bucket",
            &format!("{api},le=\"0.005\"")
        ),
        3.0
    );
    assert_eq!(
        get(
            "looptrace_task_poll_duration_seconds_bucket",
            &format!("{report},le=\"0.05\"")
        ),
        1.0
    );
    assert_eq!(
        get(
            "looptrace_task_poll_duration_seconds_bucket",
            &format!("{report},le=\"+Inf\"")
        ),
        2.0
    );
    assert_eq!(
        get("looptrace_task_poll_duration_seconds_count", report),
        2.0
    );
    // Scheduling delay: api waited 1 ms after its spawn and after each timer
    // wake; report 24 ms after its spawn, 3 ms once woken.
    assert_eq!(
        get(
            "looptrace_task_scheduling_delay_seconds_bucket",
            &format!("{api},le=\"0.001\"")
        ),
        3.0
    );
    assert_eq!(
        get("looptrace_task_scheduling_delay_seconds_count", report),
        2.0
    );
    assert_eq!(
        get(
            "looptrace_task_scheduling_delay_seconds_bucket",
            &format!("{report},le=\"0.001\"")
        ),
        0.0
    );
    assert_eq!(
        get(
            "looptrace_task_scheduling_delay_seconds_bucket",
            &format!("{report},le=\"0.005\"")
        ),
        1.0
    );
    assert_eq!(
        get(
            "looptrace_task_wakes_total",
            &format!("{api},source=\"timer\"")
        ),
        2.0
    );
    assert_eq!(
        get(
            "looptrace_task_wakes_total",
            &format!("{report},source=\"task\"")
        ),
        1.0
    );
    assert_eq!(
        get(
            "looptrace_task_wakes_total",
            &format!("{report},source=\"timer\"")
        ),
        0.0
    );
    assert_eq!(get("looptrace_tasks_spawned_total", api), 1.0);
    assert_eq!(
        get(
            "looptrace_tasks_ended_total",
            &format!("{api},outcome=\"completed\"")
        ),
        1.0
    );
    assert_eq!(get("looptrace_tasks_live", ""), 1.0);
    // The worker: busy 6.5 + 80 ms, parked once for 87 ms.
    let w = ",worker=\"0\"";
    assert!((get("looptrace_worker_busy_seconds_total", w) - 0.0865).abs() < 1e-12);
    assert!((get("looptrace_worker_parked_seconds_total", w) - 0.087).abs() < 1e-12);
    assert_eq!(get("looptrace_worker_parks_total", w), 1.0);
    assert_eq!(get("looptrace_worker_polls_total", w), 5.0);
    // No queue samples from this app: no depths rather than zeros.
    assert!(!text.contains("looptrace_worker_queue_depth{"), "{text}");
    // One blocking poll; every kind listed.
    assert_eq!(get("looptrace_warnings", ",kind=\"blocking_poll\""), 1.0);
    assert_eq!(get("looptrace_warnings", ",kind=\"lost_waker\""), 0.0);
    assert_eq!(get("looptrace_events_received_total", ""), e.len() as f64);
    assert_eq!(get("looptrace_events_dropped_total", ""), 0.0);
    assert_eq!(s.get("looptrace_collector_sessions"), Some(&1.0), "{text}");
}

/// Ten thousand task names make at most N + 1 groups (the N busiest and
/// `other`), and nothing is lost in the sum.
#[test]
fn ten_thousand_task_names_make_at_most_n_plus_one_groups() {
    let hub = Hub::new(HubConfig::default());
    let id = open(&hub);
    let mut e = Vec::new();
    for t in 1..=10_000u64 {
        e.push(spawn(t * 10, t, &format!("job-{t}")));
        e.extend(poll(t * 10 + 1, t, t % 7, true));
    }
    hub.ingest(id, &e);
    let n = 5;
    let text = looptrace_collector::metrics::encode(&hub, n);
    let groups: std::collections::BTreeSet<&str> = text
        .lines()
        .filter(|l| l.starts_with("looptrace_task_polls_total{"))
        .filter_map(|l| l.split("group=\"").nth(1)?.split('"').next())
        .collect();
    assert_eq!(groups.len(), n + 1, "{groups:?}");
    assert!(groups.contains("other"));
    let polls: f64 = samples(&text)
        .iter()
        .filter(|(k, _)| k.starts_with("looptrace_task_polls_total{"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(polls, 10_000.0);
}

fn app(token: Option<&str>) -> axum::Router {
    let hub = Hub::new(HubConfig::default());
    open(&hub);
    router(AppState {
        hub,
        config: Arc::new(ServerConfig {
            token: token.map(String::from),
            ..ServerConfig::default()
        }),
        replay: None,
    })
}

fn scrape(auth: Option<&str>) -> Request<Body> {
    let mut r = Request::get("/metrics").header("host", "127.0.0.1:9");
    if let Some(a) = auth {
        r = r.header("authorization", a);
    }
    r.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn metrics_are_served_behind_the_same_rules_as_the_api() {
    let open_app = app(None);
    let r = open_app.oneshot(scrape(None)).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()["content-type"],
        looptrace_collector::metrics::CONTENT_TYPE
    );
    let locked = app(Some("s3cret"));
    let r = locked.clone().oneshot(scrape(None)).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = locked
        .clone()
        .oneshot(scrape(Some("Bearer s3cret")))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Another host name (DNS rebinding) is refused, as for the API.
    let rebound = Request::get("/metrics")
        .header("host", "evil.example:80")
        .body(Body::empty())
        .unwrap();
    let r = app(None).oneshot(rebound).await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

/// Label values are escaped as the text format needs: a task named with a
/// quote, a backslash and a line break does not break the scrape.
#[test]
fn odd_task_names_are_escaped() {
    let hub = Hub::new(HubConfig::default());
    let id = open(&hub);
    let mut e = vec![spawn(0, 1, "say \"hi\"\\now\nplease")];
    e.extend(poll(10, 1, 5, true));
    hub.ingest(id, &e);
    let text = looptrace_collector::metrics::encode(&hub, 20);
    assert!(
        text.contains(r#"group="say \"hi\"\\now\nplease""#),
        "{text}"
    );
    // Every line is a comment or `name{labels} value`, nothing split.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (_, value) = line.rsplit_once(' ').expect(line);
        assert!(value.parse::<f64>().is_ok(), "{line}");
        assert_eq!(
            line.matches('"').count() % 2,
            line.matches("\\\"").count() % 2,
            "{line}"
        );
    }
}

/// A scrape's counters never go down from one scrape to the next, whatever
/// group becomes the busiest (a group keeps its own series once it has one).
#[test]
fn counters_only_grow_across_scrapes() {
    let hub = Hub::new(HubConfig::default());
    let id = open(&hub);
    let mut e = vec![spawn(0, 1, "a"), spawn(0, 2, "b"), spawn(0, 3, "c")];
    e.extend(poll(10, 1, 100, false));
    e.extend(poll(200, 2, 10, false));
    hub.ingest(id, &e);
    let first = samples(&looptrace_collector::metrics::encode(&hub, 1));
    let mut e = Vec::new();
    e.extend(poll(300, 2, 10_000, false));
    e.extend(poll(20_000, 3, 5_000, false));
    hub.ingest(id, &e);
    let second = samples(&looptrace_collector::metrics::encode(&hub, 1));
    let counter = |k: &String| {
        k.contains("_total{")
            || k.contains("_bucket{")
            || k.contains("_count{")
            || k.contains("_sum{")
    };
    for (k, v) in first.iter().filter(|(k, _)| counter(k)) {
        let now = second.get(k).unwrap_or_else(|| panic!("{k} went away"));
        assert!(now >= v, "{k} went down: {v} then {now}");
    }
    // a (the busiest at the first scrape) kept its series; b and c, busier
    // now, are counted in other.
    let polls =
        |g: &str| second[&key("looptrace_task_polls_total", id, &format!(",group=\"{g}\""))];
    assert_eq!(polls("a"), 1.0);
    assert_eq!(polls("other"), 3.0);
}
