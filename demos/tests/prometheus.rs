//! A real Prometheus server scrapes a running `looptrace serve` that the
//! attach example (`http-service`) streams into; what Prometheus stores is what
//! the collector's API says: every task group's poll count, and the one
//! blocking-poll warning of `/blocking`.

mod support;

use looptrace_test_support::{get, http_get};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{looptrace_serve, Kill, Service};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn prometheus_bin() -> PathBuf {
    let path = PathBuf::from("/usr/bin/prometheus");
    assert!(
        path.exists(),
        "this test runs a real Prometheus server: install Debian's `prometheus` package (scripts/test does)"
    );
    path
}

/// An instant query's samples: labels (without Prometheus' own) to value.
fn query(prom: SocketAddr, q: &str) -> Vec<(BTreeMap<String, String>, f64)> {
    let encoded: String = q
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    // Prometheus may not be listening yet (it starts beside the app): nothing
    // stored yet, ask again.
    if std::net::TcpStream::connect(prom).is_err() {
        return Vec::new();
    }
    let (status, v) = get(prom, &format!("/api/v1/query?query={encoded}"));
    if status != 200 {
        return Vec::new();
    }
    v["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|r| {
            let labels = r["metric"]
                .as_object()?
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "job" | "instance" | "__name__"))
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect();
            let value = r["value"][1].as_str()?.parse().ok()?;
            Some((labels, value))
        })
        .collect()
}

#[test]
fn prometheus_scrapes_the_apps_poll_counts_and_its_blocking_warning() {
    let prometheus = prometheus_bin();
    let dir = tempfile::tempdir().unwrap();

    // The collector, and the app streaming to it.
    let (collector, collector_addr) = looptrace_serve(&[]);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_http-service"));
    cmd.env("LOOPTRACE_ADDR", collector_addr.to_string())
        .env_remove("LOOPTRACE_RECORD")
        .stderr(Stdio::null());
    let app = Service::start(cmd);
    let app_addr = app.addr.clone();

    // Prometheus, scraping the collector every second.
    let prom_port = free_port();
    let prom_addr: SocketAddr = format!("127.0.0.1:{prom_port}").parse().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: looptrace\n    static_configs:\n      - targets: ['{collector_addr}']\n"
        ),
    )
    .unwrap();
    let _prom = Kill(
        Command::new(prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={prom_addr}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    // Traffic: a few requests, and one that blocks its worker.
    for _ in 0..3 {
        assert!(http_get(&app_addr, "/").contains("hello from a traced service"));
    }
    assert!(http_get(&app_addr, "/blocking").contains("blocked a worker"));
    // The app stops (Ctrl-C): its figures are final.
    app.stop();

    // The session, once the collector has all of it.
    let deadline = Instant::now() + Duration::from_secs(20);
    let session = loop {
        let (_, v) = get(collector_addr, "/api/sessions");
        let done = v["sessions"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["live"] == false))
            .cloned();
        if let Some(s) = done {
            break s;
        }
        assert!(Instant::now() < deadline, "no finished session: {v}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let id = session["id"].as_u64().unwrap();
    let (_, tasks) = get(collector_addr, &format!("/api/sessions/{id}/tasks"));
    let mut polls_by_group: BTreeMap<String, f64> = BTreeMap::new();
    for t in tasks["tasks"].as_array().unwrap() {
        *polls_by_group
            .entry(t["name"].as_str().unwrap().to_string())
            .or_default() += t["polls"].as_f64().unwrap();
    }
    let (_, warnings) = get(collector_addr, &format!("/api/sessions/{id}/warnings"));
    let blocking: f64 = warnings["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["kind"] == "blocking_poll" && w["withdrawn"] != true)
        .map(|w| w["count"].as_f64().unwrap())
        .sum();
    assert_eq!(blocking, 1.0, "one blocking poll: {warnings}");
    // Four connections, each a task named where axum spawns it.
    assert!(
        polls_by_group.keys().any(|g| g.starts_with("axum-"))
            && polls_by_group.values().sum::<f64>() >= 4.0,
        "{polls_by_group:?}"
    );

    // What Prometheus stored, once a scrape after the app's end has landed.
    let session_id = id.to_string();
    let ours = |l: &BTreeMap<String, String>| l.get("session") == Some(&session_id);
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut polls, mut warned);
    loop {
        polls = query(prom_addr, "looptrace_task_polls_total")
            .into_iter()
            .filter(|(l, _)| ours(l))
            .map(|(l, v)| (l["group"].clone(), v))
            .collect::<BTreeMap<String, f64>>();
        warned = query(prom_addr, "looptrace_warnings{kind=\"blocking_poll\"}")
            .into_iter()
            .filter(|(l, _)| ours(l))
            .map(|(_, v)| v)
            .next();
        if polls == polls_by_group && warned == Some(1.0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus has polls {polls:?} and blocking warnings {warned:?}; the collector says {polls_by_group:?} and 1"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // The session's labels: the app's process name and where it connected from.
    let labelled = query(prom_addr, "looptrace_events_received_total");
    let (labels, events) = labelled
        .iter()
        .find(|(l, _)| ours(l))
        .expect("the session's event count");
    assert_eq!(labels["process"], "http-service");
    assert_eq!(labels["host"], "127.0.0.1");
    assert!(*events > 0.0);
    drop(collector);
}
