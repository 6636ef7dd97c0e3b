//! An axum HTTP service with looptrace attached: the one line is
//! `#[looptrace::main]` in place of `#[tokio::main]`.
//!
//! ```sh
//! cargo run --release -p demos --bin http-service            # embedded collector: prints the viewer address
//! LOOPTRACE_RECORD=service.ltrace cargo run -p demos --bin http-service
//! cargo run -p demos --bin http-service -- --console         # also serve tokio-console (127.0.0.1:6669)
//! ```
//!
//! Then try `curl 127.0.0.1:3000/`, `/slow` (awaits a timer), `/compute` (CPU work
//! on the blocking pool) and `/blocking` (a handler that blocks its worker: watch
//! for the warning, which names the route).
//!
//! tower-http's `TraceLayer` gives each request a `tracing` span; looptrace shows
//! the span a poll entered as what the task was doing (`GET /blocking`), so the
//! warning names the request rather than only axum's connection task.

use axum::routing::get;
use axum::Router;
use std::time::{Duration, Instant};
use tower_http::trace::TraceLayer;

fn router() -> Router {
    Router::new()
        .route("/", get(|| async { "hello from a traced service\n" }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(200)).await;
                "slept 200 ms, without holding the worker\n"
            }),
        )
        .route(
            "/compute",
            get(|| async {
                let sum =
                    tokio::task::spawn_blocking(|| (0..20_000_000u64).map(|n| n % 7).sum::<u64>())
                        .await
                        .unwrap_or(0);
                format!("computed {sum} on the blocking pool\n")
            }),
        )
        .route(
            "/blocking",
            get(|| async {
                // The mistake this route shows: a synchronous wait inside a handler.
                std::thread::sleep(Duration::from_millis(50));
                "blocked a worker for 50 ms\n"
            }),
        )
        .layer(TraceLayer::new_for_http())
}

#[looptrace::main]
async fn serve(addr: String) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
    println!("listening on http://{}", listener.local_addr()?);
    let started = Instant::now();
    axum::serve(listener, router())
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    println!("stopped after {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn main() {
    let mut addr = "127.0.0.1:3000".to_string();
    let mut console = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--console" => console = true,
            a if a.contains(':') => addr = a.to_string(),
            other => {
                eprintln!("usage: http-service [HOST:PORT] [--console] (not {other:?})");
                std::process::exit(2);
            }
        }
    }
    if console {
        // Beside tokio-console: its layer and looptrace's on one registry, set
        // before the runtime is built. Both keep working.
        use tracing_subscriber::prelude::*;
        tracing_subscriber::registry()
            .with(console_subscriber::spawn())
            .with(looptrace::layer())
            .init();
    }
    if let Err(e) = serve(addr) {
        eprintln!("http-service: {e}");
        std::process::exit(1);
    }
}
