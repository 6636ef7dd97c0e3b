//! Drives the browser timeline in real headless Chromium (Playwright, `web/tests`):
//! a replay of the hello demo's recording and a live session.
//!
//! Needs Node.js and Debian's `chromium` (`.ci/run` installs it); the npm packages
//! are installed into `web/` when missing.

use looptrace_collector::embedded::Embedded;
use looptrace_collector::hub::{Hub, HubConfig};
use looptrace_collector::replay::{replay, ReplayControl};
use looptrace_collector::server::{serve, AppState, ServerConfig};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn ensure_npm_packages(web: &Path) {
    if web.join("node_modules/playwright-core").exists() {
        return;
    }
    let status = Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(web).status().expect("npm runs (Node.js is needed for the browser tests)");
    assert!(status.success(), "npm ci in web/ failed");
}

/// Serves a replay of `file` at 10x on a thread of its own.
fn serve_replay(file: &Path) -> SocketAddr {
    let rec = looptrace_wire::Recording::open(file).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let hub = Hub::new(HubConfig::default());
            let ctl = ReplayControl::new(10.0, false);
            tokio::spawn(replay(hub.clone(), rec, ctl.clone()));
            let state = AppState { hub, config: Arc::new(ServerConfig::default()), replay: Some(ctl) };
            let l = tokio::net::TcpListener::from_std(listener).unwrap();
            serve(l, state).await.unwrap();
        });
    });
    addr
}

/// A live program: a new task every 250 ms, and one that blocks its worker.
fn live_program(stop: Arc<AtomicBool>) -> (SocketAddr, std::thread::JoinHandle<()>) {
    let (sink, handle) = Embedded::serve("127.0.0.1:0".parse().unwrap(), HubConfig::default()).unwrap();
    let addr = handle.addr().unwrap();
    let t = std::thread::spawn(move || {
        let rt = looptrace::Builder::new_multi_thread().worker_threads(2).from_env(false).process_name("live test").sink(sink).build().unwrap();
        rt.block_on(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                tokio::task::Builder::new()
                    .name(&format!("tick-{n}"))
                    .spawn(async {
                        for _ in 0..4 {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    })
                    .unwrap();
                if n % 8 == 4 {
                    tokio::task::Builder::new().name("blocker").spawn(async { std::thread::sleep(Duration::from_millis(40)) }).unwrap();
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        });
        rt.shutdown();
        drop(handle);
    });
    (addr, t)
}

#[test]
fn the_timeline_in_headless_chromium() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(Path::new(&chromium).exists(), "the browser tests need Chromium at {chromium} (apt-get install -y chromium, as .ci/run does)");
    let web = repo().join("web");
    ensure_npm_packages(&web);

    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("hello.ltrace");
    let out = Command::new(env!("CARGO_BIN_EXE_demos")).args(["hello", "--exit", "--quiet", "--record"]).arg(&rec).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let replay_addr = serve_replay(&rec);
    let stop = Arc::new(AtomicBool::new(false));
    let (live_addr, live) = live_program(stop.clone());

    let artifacts = repo().join("artifacts");
    let status = Command::new("node")
        .args(["--test", "--test-concurrency=1", "tests/"])
        .current_dir(&web)
        .env("LOOPTRACE_REPLAY_URL", format!("http://{replay_addr}/"))
        .env("LOOPTRACE_LIVE_URL", format!("http://{live_addr}/"))
        .env("LOOPTRACE_ARTIFACTS", &artifacts)
        .env("CHROMIUM", &chromium)
        .status()
        .expect("node runs");
    stop.store(true, Ordering::Relaxed);
    live.join().unwrap();
    assert!(status.success(), "browser tests failed (their output is above)");
    assert!(artifacts.join("hello-timeline.png").exists(), "the screenshot artifact is written");
}
