//! `demos NAME`: runs a teaching demo on a looptrace-captured runtime with an
//! embedded collector: the terminal dashboard (or a live log), the browser
//! timeline's address, what to watch for before, and what happened after.

use anyhow::{anyhow, Context, Result};
use clap::{Parser, ValueEnum};
use demos::{say, Demo, Trace};
use looptrace_collector::embedded::{Embedded, EmbeddedHandle, Update};
use looptrace_collector::hub::HubConfig;
use looptrace_collector::LiveLog;
use looptrace_tui::Lesson;
use looptrace_wire::Note;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "demos",
    about = "Watch tokio schedule tasks, live",
    after_help = "`demos list` shows the demos."
)]
struct Cli {
    /// Which demo to run (`list` to see them all).
    demo: Option<String>,
    /// Also write a recording of the run to FILE (replay it with `looptrace replay FILE`).
    #[arg(long, value_name = "FILE", env = "LOOPTRACE_RECORD")]
    record: Option<PathBuf>,
    /// Also stream the run to a collector (`looptrace serve`) at HOST:PORT, as any
    /// traced app does: a class can watch every demo on one collector.
    #[arg(long, value_name = "HOST:PORT", env = "LOOPTRACE_ADDR")]
    collector: Option<String>,
    /// How fast the demo's own sleeps and work go: 0.5 is half speed (slow motion
    /// for a class), 4 is four times faster.
    #[arg(long, default_value_t = 1.0, value_parser = positive)]
    speed: f64,
    /// End the process as soon as the demo is done.
    #[arg(long)]
    exit: bool,
    /// Scheduler to run the demo on (default: the one the demo is about).
    #[arg(long, value_enum)]
    flavor: Option<Flavor>,
    /// Worker threads on the multi-thread scheduler.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Capture every waker clone and drop as an event of its own, and log them
    /// (by default a task's own ones during its poll are counted in the poll's end).
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
    /// The token viewers must present (needed when --serve is not loopback).
    #[arg(long)]
    token: Option<String>,
}

fn positive(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("{s:?} is not a positive number")),
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum Flavor {
    CurrentThread,
    MultiThread,
}

/// `text` broken into lines of at most `width` characters, at spaces.
fn wrap(text: &str, width: usize, indent: &str) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            out.push_str(indent);
            out.push_str(&line);
            out.push('\n');
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() || out.is_empty() {
        out.push_str(indent);
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn list(catalog: &[Demo]) {
    say!("Demos (run one with `cargo run --release -p demos -- NAME`):\n");
    let width = catalog.iter().map(|d| d.name.len()).max().unwrap_or(0);
    for d in catalog {
        say!("  {:<width$}  {}", d.name, d.summary);
    }
}

/// What happened, from the trace the embedded collector holds.
fn explain(demo_explain: fn(&Trace) -> Vec<String>, handle: &EmbeddedHandle) -> Vec<String> {
    let hub = handle.hub();
    let Some(id) = hub.session_ids().into_iter().max() else {
        return vec!["No trace was captured.".into()];
    };
    hub.with_session(id, |s| demo_explain(&Trace::new(&s.model)))
        .unwrap_or_default()
}

fn main() -> Result<()> {
    let mut cli = Cli::parse();
    // Set but empty in the environment: not set.
    cli.record = cli.record.filter(|p| !p.as_os_str().is_empty());
    let catalog = demos::catalog();
    let name = match cli.demo.as_deref() {
        None | Some("list") => {
            list(&catalog);
            return Ok(());
        }
        Some(n) => n,
    };
    let Some(demo) = catalog.iter().find(|d| d.name == name) else {
        let names: Vec<_> = catalog.iter().map(|d| d.name).collect();
        return Err(anyhow!(
            "no demo named {name:?}; the demos are: {}",
            names.join(", ")
        ));
    };
    demos::pace::set_speed(cli.speed);
    let pace = if cli.speed == 1.0 {
        String::new()
    } else {
        format!(" Running at {}x speed: every delay is scaled.", cli.speed)
    };
    let intro = format!("{}{pace}\n\nWatch for: {}", demo.summary, demo.watch_for);
    say!(
        "looptrace demo: {}\n\n{}",
        demo.name,
        intro.lines().map(|l| wrap(l, 78, "")).collect::<String>()
    );

    let (sink, handle) = match cli.serve {
        Some(addr) => Embedded::serve_with(
            addr,
            HubConfig::default(),
            looptrace_collector::server::ServerConfig {
                token: cli.token.clone(),
                ..Default::default()
            },
        ),
        None => Embedded::serve(([127, 0, 0, 1], 7878).into(), HubConfig::default())
            .or_else(|_| Embedded::serve(([127, 0, 0, 1], 0).into(), HubConfig::default())),
    }
    .context("starting the embedded collector")?;
    let url = format!("http://{}/", handle.addr());
    say!("timeline: {url}  (open it in a browser)");
    if let Some(addr) = &cli.collector {
        say!("also streaming to the collector at {addr} (LOOPTRACE_ADDR)");
    }
    if let Some(path) = &cli.record {
        say!("recording to {}", path.display());
    }
    say!("");
    let updates = handle.subscribe();
    let (verbose, quiet) = (cli.verbose, cli.quiet);
    let printer = std::thread::Builder::new()
        .name("looptrace-log".into())
        .spawn(move || {
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

    let flavor = cli.flavor.unwrap_or(match demo.flavor {
        demos::Flavor::CurrentThread => Flavor::CurrentThread,
        demos::Flavor::MultiThread => Flavor::MultiThread,
    });
    let mut builder = match flavor {
        Flavor::CurrentThread => looptrace::Builder::new_current_thread(),
        Flavor::MultiThread => {
            looptrace::Builder::new_multi_thread().worker_threads(cli.workers.max(1))
        }
    };
    builder = builder
        .process_name(format!("demos {}", demo.name))
        .from_env(false)
        .every_waker_op(cli.verbose)
        // A lesson is watched live: fresher beats cheaper (the default is 50 ms).
        .flush_interval(std::time::Duration::from_millis(10))
        .sink(sink);
    if let Some(path) = &cli.record {
        builder = builder.record(path);
    }
    if let Some(addr) = cli.collector.as_ref().filter(|a| !a.is_empty()) {
        builder = builder.collector(addr.clone());
    }
    let use_tui = !cli.no_tui && !cli.quiet && std::io::stdout().is_terminal();
    if use_tui {
        // The dashboard owns the screen: the demo's own prints and the plain log stay quiet.
        demos::silence();
    }
    let watch = Note {
        title: format!("{}: what to watch for", demo.name),
        text: intro.clone(),
    };
    let lesson = Arc::new(Lesson::new(watch.title.clone(), watch.text.clone()));
    // The browser timeline shows the same lesson beside the demo's session.
    handle.set_note(watch.title.clone(), watch.text.clone());
    let done = Arc::new(AtomicBool::new(false));
    let (run, demo_explain) = (demo.run, demo.explain);
    let runner = {
        let (done, lesson, handle, name) =
            (done.clone(), lesson.clone(), handle.clone(), demo.name);
        let record = cli.record.clone();
        std::thread::Builder::new().name("demo".into()).spawn(
            move || -> Result<(looptrace::Report, std::time::Duration, Vec<String>)> {
                let rt = builder.build().context("starting the traced runtime")?;
                let started = std::time::Instant::now();
                rt.block_on(run());
                let took = started.elapsed();
                let report = rt.shutdown();
                let happened = explain(demo_explain, &handle);
                let title = format!("{name}: what happened");
                lesson.set(title.clone(), happened.join("\n"));
                // Beside the timeline and in the recording, what to watch for stays below what happened.
                let after = Note {
                    title,
                    text: format!("{}\n{intro}", happened.join("\n")),
                };
                handle.set_note(after.title.clone(), after.text.clone());
                // The recording keeps the lesson too: a replay shows it before and after.
                if let Some(path) = &record {
                    for note in [&watch, &after] {
                        if let Err(e) = looptrace_wire::append_note(path, note) {
                            eprintln!("demos: cannot add the lesson to {}: {e}", path.display());
                            break;
                        }
                    }
                }
                done.store(true, Ordering::Relaxed);
                Ok((report, took, happened))
            },
        )?
    };
    if use_tui {
        looptrace_tui::run(looptrace_tui::Options {
            addr: url.clone(),
            theme: looptrace_tui::Theme::from_env(cli.no_color),
            token: None,
            stop: cli.exit.then(|| done.clone()),
            note: Some(format!("browser: {url}")),
            lesson: Some(lesson),
        })?;
        if !done.load(Ordering::Relaxed) {
            // Quit before the demo ended: nothing more to wait for.
            std::process::exit(0);
        }
    }
    let (report, took, happened) = runner
        .join()
        .map_err(|_| anyhow!("the demo thread panicked"))??;
    let _ = printer.join();
    if use_tui {
        // The dashboard is gone from the screen: leave the summary in the terminal.
        demos::unsilence();
    }
    say!(
        "\ndemo done in {:.2} s: {} events captured, {} dropped\n\nWhat happened:",
        took.as_secs_f64(),
        report.events,
        report.dropped_buffer_full + report.dropped_unsent
    );
    for line in &happened {
        say!("{}", wrap(line, 76, "  ").trim_end());
    }
    if let Some(path) = &cli.record {
        say!(
            "\nrecording: {} (replay: `looptrace replay {}`)",
            path.display(),
            path.display()
        );
    }
    if !cli.exit && !use_tui {
        say!("\nThe timeline stays at {url} — press Ctrl-C to quit.");
        loop {
            std::thread::park();
        }
    }
    Ok(())
}
