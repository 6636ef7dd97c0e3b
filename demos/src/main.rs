//! `demos NAME`: runs a teaching demo on a looptrace-captured runtime with an
//! embedded collector, printing a live log of what the event loop does.

use anyhow::{anyhow, Context, Result};
use clap::{Parser, ValueEnum};
use looptrace_collector::embedded::{Embedded, Update};
use looptrace_collector::hub::HubConfig;
use looptrace_collector::LiveLog;
use demos::say;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "demos", about = "Watch tokio schedule tasks, live")]
struct Cli {
    /// Which demo to run (`list` to see them all).
    demo: String,
    /// Also write a recording of the run to FILE.
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
    /// End the process as soon as the demo is done.
    #[arg(long)]
    exit: bool,
    /// Scheduler to run the demo on.
    #[arg(long, value_enum, default_value_t = Flavor::CurrentThread)]
    flavor: Flavor,
    /// Worker threads for `--flavor multi-thread`.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Also log waker clones and drops.
    #[arg(long)]
    verbose: bool,
    /// Print no live log.
    #[arg(long)]
    quiet: bool,
    /// Print the plain live log even on a terminal, instead of the dashboard.
    #[arg(long)]
    no_tui: bool,
    /// No colours in the terminal dashboard (also when NO_COLOR is set).
    #[arg(long)]
    no_color: bool,
    /// Where the timeline is served (default 127.0.0.1:7878, or any free port if
    /// that one is taken; port 0: any free port).
    #[arg(long)]
    serve: Option<std::net::SocketAddr>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Flavor {
    CurrentThread,
    MultiThread,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let catalog = demos::catalog();
    if cli.demo == "list" {
        for d in &catalog {
            say!("{:<12} {}", d.name, d.summary);
        }
        return Ok(());
    }
    let demo = catalog
        .iter()
        .find(|d| d.name == cli.demo)
        .ok_or_else(|| anyhow!("no demo named {:?}; `demos list` shows them", cli.demo))?;

    say!("looptrace demo: {}\n{}\nWatch for: {}\n", demo.name, demo.summary, demo.watch_for);

    let (sink, handle) = match cli.serve {
        Some(addr) => Embedded::serve(addr, HubConfig::default()),
        None => Embedded::serve(([127, 0, 0, 1], 7878).into(), HubConfig::default())
            .or_else(|_| Embedded::serve(([127, 0, 0, 1], 0).into(), HubConfig::default())),
    }
    .context("starting the embedded collector")?;
    let url = format!("http://{}/", handle.addr());
    say!("timeline: {url}  (open it in a browser)\n");
    let updates = handle.subscribe();
    let verbose = cli.verbose;
    let quiet = cli.quiet;
    let printer = std::thread::Builder::new().name("looptrace-log".into()).spawn(move || {
        let mut log = LiveLog::new();
        log.verbose = verbose;
        for u in updates {
            match u {
                Update::Events(events) if !quiet => {
                    for e in &events {
                        if let Some(line) = log.line(e) {
                            say!("{line}");
                        }
                    }
                }
                Update::Closed => break,
                _ => {}
            }
        }
    })?;

    let mut builder = match cli.flavor {
        Flavor::CurrentThread => looptrace::Builder::new_current_thread(),
        Flavor::MultiThread => looptrace::Builder::new_multi_thread().worker_threads(cli.workers),
    };
    builder = builder.process_name(format!("demos {}", demo.name)).sink(sink);
    if let Some(path) = &cli.record {
        builder = builder.record(path);
    }
    let use_tui = !cli.no_tui && !cli.quiet && std::io::stdout().is_terminal();
    if use_tui {
        // The dashboard owns the screen: the demo's own prints and the plain log stay quiet.
        demos::silence();
    }
    let done = Arc::new(AtomicBool::new(false));
    let finished = done.clone();
    let run = demo.run;
    let runner = std::thread::Builder::new().name("demo".into()).spawn(move || -> Result<(looptrace::Report, std::time::Duration)> {
        let rt = builder.build().context("starting the traced runtime")?;
        let started = std::time::Instant::now();
        rt.block_on(run());
        let took = started.elapsed();
        let report = rt.shutdown();
        finished.store(true, Ordering::Relaxed);
        Ok((report, took))
    })?;
    if use_tui {
        looptrace_tui::run(looptrace_tui::Options {
            addr: url.clone(),
            theme: looptrace_tui::Theme::from_env(cli.no_color),
            token: None,
            stop: cli.exit.then(|| done.clone()),
            note: Some(format!("browser: {url}")),
        })?;
        if !done.load(Ordering::Relaxed) {
            // Quit before the demo ended: nothing more to wait for.
            std::process::exit(0);
        }
    }
    let (report, took) = runner.join().map_err(|_| anyhow!("the demo thread panicked"))??;
    let _ = printer.join();
    if use_tui {
        return Ok(());
    }
    say!(
        "\ndemo done in {:.2} s: {} events captured, {} dropped",
        took.as_secs_f64(),
        report.events,
        report.dropped_buffer_full + report.dropped_unsent
    );
    if let Some(path) = &cli.record {
        say!("recording: {} (try `looptrace export {} --format chrome`)", path.display(), path.display());
    }
    if !cli.exit {
        say!("\nThe timeline stays at {url} — press Ctrl-C to quit.");
        loop {
            std::thread::park();
        }
    }
    Ok(())
}
