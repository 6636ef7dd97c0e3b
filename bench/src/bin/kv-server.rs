//! The server under test: mini-redis (tokio's example Redis server, unmodified) on a
//! 2-worker runtime, captured one way or another.
//!
//! `kv-server MODE [ARG]` prints `listening ADDR`, serves until its standard input
//! closes, shuts the runtime down, then prints one JSON line of what capture
//! reported and the CPU of its threads by name when the load ended. MODE: `plain` (tokio alone), `record FILE`, `embedded` (the default
//! with no destination: the collector in-process), `watched` (embedded, and it
//! prints `viewer ADDR`, its collector's address, first, for a viewer to watch
//! it), `stream ADDR` (to a collector),
//! `console` (console-subscriber instead of looptrace), `floor` (tokio alone, its
//! `tracing` instrumentation dispatched to a subscriber that takes exactly the
//! callsites looptrace takes and does nothing with them: what any tracer of tokio's
//! wakes and of the app's spans pays before doing anything).

use std::io::{Read, Write};
use std::net::SocketAddr;

const WORKERS: usize = 2;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().map(String::as_str).unwrap_or("plain");
    let arg = args.get(1).cloned();
    let mut out = serde_json::json!({"mode": mode});
    match mode {
        "plain" | "console" | "floor" => {
            if mode == "floor" {
                tracing::subscriber::set_global_default(Floor(
                    looptrace::LooptraceSubscriber::new(),
                ))
                .expect("no other subscriber");
            }
            if mode == "console" {
                use tracing_subscriber::prelude::*;
                let console = console_subscriber::ConsoleLayer::builder()
                    .server_addr(SocketAddr::from(([127, 0, 0, 1], 0)))
                    .spawn();
                tracing_subscriber::registry().with(console).init();
            }
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(WORKERS)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(serve());
        }
        "record" | "embedded" | "watched" | "stream" => {
            let mut b = looptrace::Builder::new_multi_thread()
                .worker_threads(WORKERS)
                .from_env(false);
            if let Ok(n) = std::env::var("KV_CAPACITY") {
                b = b.buffer_capacity(n.parse().unwrap());
            }
            if std::env::var("KV_CONTEXT").is_ok_and(|v| v == "0") {
                b = b.request_context(false);
            }
            if let Ok(ms) = std::env::var("KV_QUEUES_MS") {
                let ms: u64 = ms.parse().unwrap();
                b = b.sample_queues(Some(std::time::Duration::from_millis(ms)));
            }
            if let Ok(ms) = std::env::var("KV_FLUSH_MS") {
                b = b.flush_interval(std::time::Duration::from_millis(ms.parse().unwrap()));
            }
            match mode {
                "record" => b = b.record(arg.clone().expect("record FILE")),
                "stream" => b = b.collector(arg.clone().expect("stream ADDR")),
                _ => {}
            }
            let rt = b.build().expect("looptrace runtime");
            let viewer = rt.viewer_addr();
            if mode == "watched" {
                let Some(addr) = viewer else {
                    eprintln!("kv-server: watched, but the embedded collector did not start");
                    std::process::exit(2);
                };
                println!("viewer {addr}");
            }
            rt.block_on(serve());
            let report = rt.shutdown();
            out["events"] = report.events.into();
            out["dropped"] = (report.dropped_buffer_full + report.dropped_unsent).into();
            if let (Some(addr), "embedded" | "watched") = (viewer, mode) {
                out["collector"] = looptrace_bench::get_json(&addr.to_string(), "/api/sessions");
            }
        }
        other => {
            eprintln!("kv-server: unknown mode {other}");
            std::process::exit(2);
        }
    }
    if let Some(t) = THREAD_CPU.get() {
        out["threads"] = t.clone();
    }
    println!("{out}");
}

/// The `floor` subscriber: looptrace's interest in callsites, none of its work.
struct Floor(looptrace::LooptraceSubscriber);

impl tracing::Subscriber for Floor {
    fn register_callsite(
        &self,
        meta: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        self.0.register_callsite(meta)
    }
    fn enabled(&self, meta: &tracing::Metadata<'_>) -> bool {
        self.0.enabled(meta)
    }
    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        self.0.max_level_hint()
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {}
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

static THREAD_CPU: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();

/// Seconds on CPU so far of this process's threads, summed by thread name (from
/// the kernel's scheduler statistics: nanoseconds, not ticks). Linux only; empty
/// elsewhere.
fn thread_cpu() -> serde_json::Value {
    let mut by_name = serde_json::Map::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return by_name.into();
    };
    for task in tasks.flatten() {
        let path = task.path();
        let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        let ns: f64 = std::fs::read_to_string(path.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
            .unwrap_or(0.0);
        let e = by_name
            .entry(name.trim().to_string())
            .or_insert(serde_json::Value::from(0.0));
        *e = (e.as_f64().unwrap_or(0.0) + ns / 1e9).into();
    }
    by_name.into()
}

async fn serve() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    println!("listening {}", listener.local_addr().expect("addr"));
    let _ = std::io::stdout().flush();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = std::io::stdin().lock().read_to_end(&mut sink);
        // The load is over: where the CPU went, by thread (before shutdown, while
        // the runtime's threads still exist).
        let _ = THREAD_CPU.set(thread_cpu());
        let _ = tx.send(());
    });
    if let Err(e) = mini_redis::server::run(listener, rx).await {
        eprintln!("kv-server: {e}");
    }
}
