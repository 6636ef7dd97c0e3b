//! `looptrace`: the command-line face of the collector.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use looptrace_collector::export::{write_chrome, write_jsonl};
use looptrace_collector::hub::{Hub, HubConfig};
use looptrace_collector::livelog::{fmt_dur, LiveLog};
use looptrace_collector::model::{Model, Thresholds, WarningKind};
use looptrace_collector::replay::ReplayControl;
use looptrace_collector::server::{AppState, ServerConfig};
use looptrace_collector::Session;
use looptrace_wire::{EventKind, Recording};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "looptrace",
    version,
    about = "See inside your tokio event loop"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Convert a recording for other tools.
    Export {
        /// A recording (`.ltrace`) written by a traced app or `looptrace serve --record`.
        file: PathBuf,
        /// `chrome`: Trace Event JSON for Perfetto UI; `jsonl`: one event per line.
        #[arg(long, short, value_enum)]
        format: Format,
        /// Where to write (default: standard output).
        #[arg(long, short)]
        output: Option<PathBuf>,
        #[command(flatten)]
        damage: AllowDamage,
    },
    /// Summarise a recording: process, tasks, polls, wakes.
    Info {
        file: PathBuf,
        #[command(flatten)]
        damage: AllowDamage,
    },
    /// Run the collector: traced apps stream to it, viewers connect to it.
    Serve {
        /// Where to listen. Anything but loopback needs --token.
        #[arg(long, default_value = "127.0.0.1:7878")]
        addr: String,
        /// Record every session into this directory.
        #[arg(long, value_name = "DIR")]
        record: Option<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
    /// Serve a recording to viewers as if it were live.
    Replay {
        file: PathBuf,
        /// Replay speed: 0.25 is four times slower than it happened.
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
        /// Start paused (viewers press play).
        #[arg(long)]
        paused: bool,
        #[command(flatten)]
        damage: AllowDamage,
        #[arg(long, default_value = "127.0.0.1:7878")]
        addr: String,
        #[command(flatten)]
        common: Common,
    },
    /// View an app instrumented for tokio-console: read its console server
    /// (coarser than looptrace's own capture) and serve it like a live session.
    #[cfg(feature = "attach")]
    Attach {
        /// The console server, e.g. http://127.0.0.1:6669.
        target: String,
        #[arg(long, default_value = "127.0.0.1:7878")]
        addr: String,
        #[command(flatten)]
        common: Common,
    },
    /// The dashboard in the terminal, for a collector (live or replay).
    #[cfg(feature = "tui")]
    Tui {
        /// The collector's address (`looptrace tui HOST:PORT`).
        #[arg(default_value = "127.0.0.1:7878")]
        addr: String,
        /// The same, spelt as `serve` spells it: `--addr HOST:PORT`.
        #[arg(long = "addr", value_name = "HOST:PORT", conflicts_with = "addr")]
        addr_flag: Option<String>,
        /// No colours (also when NO_COLOR is set).
        #[arg(long)]
        no_color: bool,
        #[arg(long)]
        token: Option<String>,
    },
    /// Check a recording for warnings: lists them, and exits 4 when any of the
    /// kinds asked for (all, by default) was found. For CI: `looptrace check
    /// run.ltrace --fail-on blocking_poll,lost_waker`.
    Check {
        file: PathBuf,
        /// Warning kinds that fail the check, comma-separated (blocking_poll,
        /// scheduling_latency, lost_waker, never_yields, self_wake_storm,
        /// large_future, task_leak); all when absent.
        #[arg(long, value_delimiter = ',', value_parser = parse_kind)]
        fail_on: Vec<WarningKind>,
        #[command(flatten)]
        damage: AllowDamage,
    },
    /// Print a recording as a readable log of what the loop did.
    Log {
        file: PathBuf,
        /// Also show waker clones and drops.
        #[arg(long)]
        verbose: bool,
        #[command(flatten)]
        damage: AllowDamage,
    },
}

/// What to do with a damaged recording.
#[derive(clap::Args)]
struct AllowDamage {
    /// Use what can be read of a damaged recording and exit 0 (without it, the
    /// command says what was skipped and exits 3).
    #[arg(long)]
    allow_damage: bool,
}

/// Exit status of a command that read a damaged recording without --allow-damage.
const DAMAGED: i32 = 3;
/// Exit status of `check` when it found warnings of the kinds asked for.
const FOUND: i32 = 4;

fn parse_kind(s: &str) -> Result<WarningKind, String> {
    s.parse::<WarningKind>().map_err(|e| e.to_string())
}

/// Says what of `file` could not be read; whether the command must fail for it.
fn report_damage(
    file: &std::path::Path,
    damage: &[looptrace_wire::Damage],
    allow: &AllowDamage,
) -> bool {
    if damage.is_empty() {
        return false;
    }
    let bytes: u64 = damage.iter().map(|d| d.skipped).sum();
    for d in damage {
        eprintln!("looptrace: {}: {d}", file.display());
    }
    eprintln!(
        "looptrace: {}: {} damaged stretch{} skipped ({bytes} bytes); everything else was read{}",
        file.display(),
        damage.len(),
        if damage.len() == 1 { "" } else { "es" },
        if allow.allow_damage {
            ""
        } else {
            " (--allow-damage to accept it and exit 0)"
        }
    );
    !allow.allow_damage
}

/// Options `serve` and `replay` share.
#[derive(clap::Args)]
struct Common {
    /// Memory budget for event history (e.g. 512MiB, 2GiB); oldest data goes first.
    #[arg(long, default_value = "512MiB", value_parser = parse_bytes)]
    memory: usize,
    /// Token that apps and viewers must present (required off loopback).
    #[arg(long)]
    token: Option<String>,
    /// A host name viewers may reach this collector by, besides loopback ones
    /// (without a token, requests to any other name are refused). Repeatable.
    #[arg(long, value_name = "HOST")]
    allow_host: Vec<String>,
    /// A poll at least this long is reported as blocking the loop.
    #[arg(long, default_value_t = 10)]
    blocking_poll_ms: u64,
    /// A wait between wake and poll at least this long is reported.
    #[arg(long, default_value_t = 50)]
    scheduling_latency_ms: u64,
    /// A poll running at least this long is reported as never yielding.
    #[arg(long, default_value_t = 500)]
    never_yields_ms: u64,
    /// Task groups per session shown as series of their own on `/metrics`
    /// (the busiest, for good; the rest are summed as `other`), to bound the
    /// series a scrape makes.
    #[arg(long, default_value_t = looptrace_collector::metrics::DEFAULT_GROUPS, value_name = "N")]
    metrics_groups: usize,
    /// Push metrics, and each finding as a span, to this OpenTelemetry
    /// (OTLP/gRPC) endpoint, e.g. http://127.0.0.1:4317.
    #[arg(long, value_name = "URL")]
    otlp: Option<String>,
    /// Seconds between metric pushes over OTLP.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    otlp_every: f64,
    /// Send every poll at least this long (milliseconds) as a span too.
    #[arg(long, value_name = "MS")]
    otlp_polls_ms: Option<u64>,
    /// Spans waiting to be sent at most (the receiver away or slow); past this
    /// they are dropped and counted.
    #[arg(long, default_value_t = 2048, value_name = "N")]
    otlp_queue: usize,
}

fn parse_bytes(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: usize = num.parse().map_err(|_| format!("not a size: {s:?}"))?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        u => return Err(format!("unknown unit {u:?} (use KiB, MiB or GiB)")),
    };
    Ok(n * mult)
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Chrome,
    Jsonl,
}

fn main() {
    if let Err(e) = run() {
        // A reader that stopped reading (`looptrace log app.ltrace | head`) is
        // no failure: stop quietly, as other Unix tools do.
        let broken_pipe = e.chain().any(|c| {
            c.downcast_ref::<io::Error>()
                .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
        });
        if broken_pipe {
            std::process::exit(0);
        }
        eprintln!("Error: {e:?}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Export {
            file,
            format,
            output,
            damage,
        } => {
            let (session, failed) = open(&file, &damage)?;
            let mut out: Box<dyn Write> = match &output {
                Some(p) => Box::new(BufWriter::new(
                    File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
                )),
                None => Box::new(BufWriter::new(io::stdout().lock())),
            };
            match format {
                Format::Chrome => write_chrome(&session, &mut out)?,
                Format::Jsonl => write_jsonl(&session, &mut out)?,
            }
            out.flush()?;
            if failed {
                std::process::exit(DAMAGED);
            }
        }
        Command::Info { file, damage } => {
            let (session, failed) = open(&file, &damage)?;
            let mut out = BufWriter::new(io::stdout().lock());
            info(&session, &mut out)?;
            out.flush()?;
            if failed {
                std::process::exit(DAMAGED);
            }
        }
        Command::Check {
            file,
            fail_on,
            damage,
        } => {
            let (session, failed) = open(&file, &damage)?;
            let model = analyse(&session);
            let mut failing = 0;
            let mut out = BufWriter::new(io::stdout().lock());
            for w in model.findings() {
                let fails = fail_on.is_empty() || fail_on.contains(&w.kind);
                failing += fails as u64;
                let count = if w.count > 1 {
                    format!(" ×{}", w.count)
                } else {
                    String::new()
                };
                writeln!(
                    out,
                    "{} {}{count} at {}: {}",
                    if fails { "FAIL" } else { "note" },
                    w.kind.as_str(),
                    looptrace_collector::livelog::fmt_ts(w.at_ns),
                    w.message
                )?;
            }
            if failing == 0 {
                writeln!(out, "{}: no warnings of the kinds checked", file.display())?;
            }
            out.flush()?;
            if failing > 0 {
                eprintln!(
                    "{}: {failing} warning(s) of the kinds checked",
                    file.display()
                );
                std::process::exit(FOUND);
            }
            if failed {
                std::process::exit(DAMAGED);
            }
        }
        Command::Serve {
            addr,
            record,
            common,
        } => {
            if let Some(dir) = &record {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
            serve(&addr, record, &common, Feed::Live)?;
        }
        Command::Replay {
            file,
            speed,
            paused,
            addr,
            common,
            damage,
        } => {
            let rec = looptrace_wire::RawRecording::open(&file)
                .with_context(|| format!("cannot read recording {}", file.display()))?;
            if report_damage(&file, &rec.damage, &damage) {
                std::process::exit(DAMAGED);
            }
            if !(speed.is_finite() && speed > 0.0) {
                bail!("--speed must be a positive number");
            }
            serve(
                &addr,
                None,
                &common,
                Feed::Replay(rec, ReplayControl::new(speed, paused)),
            )?;
        }
        #[cfg(feature = "attach")]
        Command::Attach {
            target,
            addr,
            common,
        } => serve(&addr, None, &common, Feed::Attach(target))?,
        #[cfg(feature = "tui")]
        Command::Tui {
            addr,
            addr_flag,
            no_color,
            token,
        } => looptrace_tui::run(looptrace_tui::Options {
            addr: addr_flag.unwrap_or(addr),
            theme: looptrace_tui::Theme::from_env(no_color),
            token,
            stop: None,
            note: None,
            lesson: None,
        })?,
        Command::Log {
            file,
            verbose,
            damage,
        } => {
            let (session, failed) = open(&file, &damage)?;
            let mut log = LiveLog::with_warnings(session.header.clone(), &session.events);
            log.verbose = verbose;
            let mut out = BufWriter::new(io::stdout().lock());
            for e in &session.events {
                for line in log.lines(e) {
                    writeln!(out, "{line}")?;
                }
            }
            for line in log.rest() {
                writeln!(out, "{line}")?;
            }
            out.flush()?;
            if failed {
                std::process::exit(DAMAGED);
            }
        }
    }
    Ok(())
}

/// Where a served collector's sessions come from, besides apps connecting.
enum Feed {
    Live,
    Replay(looptrace_wire::RawRecording, std::sync::Arc<ReplayControl>),
    #[cfg(feature = "attach")]
    Attach(String),
}

/// Runs the collector until interrupted.
fn serve(addr: &str, record: Option<PathBuf>, c: &Common, feed: Feed) -> Result<()> {
    let sock: SocketAddr = addr
        .to_socket_addrs()
        .with_context(|| format!("bad address {addr:?}"))?
        .next()
        .with_context(|| format!("{addr:?} resolves to nothing"))?;
    let config = ServerConfig {
        token: c.token.clone(),
        allow_hosts: c.allow_host.clone(),
        ..ServerConfig::default()
    };
    config.check(sock).context("--token")?;
    let thresholds = Thresholds {
        blocking_poll_ns: c.blocking_poll_ms.saturating_mul(1_000_000),
        scheduling_latency_ns: c.scheduling_latency_ms.saturating_mul(1_000_000),
        never_yields_ns: c.never_yields_ms.saturating_mul(1_000_000),
        ..Thresholds::default()
    };
    let hub = Hub::new(HubConfig {
        memory_budget: c.memory,
        thresholds,
        record_dir: record,
        metrics_groups: c.metrics_groups,
        outbox: c.otlp.is_some(),
        export_polls_ns: c.otlp_polls_ms.map(|ms| ms.saturating_mul(1_000_000)),
        ..HubConfig::default()
    });
    // Kept until the server stops; it sends what is left then.
    let _exporter = match &c.otlp {
        Some(url) => {
            if !(c.otlp_every > 0.0 && c.otlp_every.is_finite()) {
                bail!("--otlp-every must be a positive number of seconds");
            }
            let mut config = looptrace_collector::otlp::OtlpConfig::new(url.clone());
            config.metrics_every = std::time::Duration::from_secs_f64(c.otlp_every);
            config.queue = c.otlp_queue;
            config.groups = c.metrics_groups;
            Some(looptrace_collector::otlp::start(hub.clone(), config).context("--otlp")?)
        }
        None => None,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(sock).await.with_context(|| format!("cannot listen on {sock}"))?;
        let local = listener.local_addr()?;
        let mut control = None;
        match feed {
            Feed::Live => {}
            Feed::Replay(rec, ctl) => {
                control = Some(ctl.clone());
                tokio::spawn(looptrace_collector::replay::replay(hub.clone(), rec, ctl));
            }
            #[cfg(feature = "attach")]
            Feed::Attach(target) => {
                let hub = hub.clone();
                tokio::spawn(async move {
                    match looptrace_cli::attach::attach(hub, &target).await {
                        Ok(_) => eprintln!("looptrace attach: {target} closed its stream; the session stays viewable"),
                        Err(e) => eprintln!("looptrace attach: {e}"),
                    }
                });
            }
        }
        println!("looptrace collector listening on http://{local}");
        println!("  apps:    LOOPTRACE_ADDR={local}");
        println!("  viewers: ws://{local}/ws/view, http://{local}/api/sessions");
        io::stdout().flush()?;
        let state = AppState { hub, config: std::sync::Arc::new(config), replay: control };
        // Ctrl-C or SIGTERM end it cleanly: the OTLP exporter sends what is left.
        tokio::select! {
            served = looptrace_collector::server::serve(listener, state) => served?,
            _ = stop_signal() => eprintln!("looptrace collector: stopping"),
        }
        Ok::<_, anyhow::Error>(())
    })
}

/// Ctrl-C, or (on Unix) SIGTERM.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Reads a recording; what could not be read is reported and the rest is used.
/// Also says whether the command must fail for the damage.
fn open(path: &PathBuf, allow: &AllowDamage) -> Result<(Session, bool)> {
    let rec = Recording::open(path)
        .with_context(|| format!("cannot read recording {}", path.display()))?;
    let failed = report_damage(path, &rec.damage, allow);
    if rec.events.is_empty() && !rec.damage.is_empty() {
        bail!("{}: no complete events in the recording", path.display());
    }
    Ok((Session::from_events(rec.header, rec.events), failed))
}

/// The model of a whole recording: its tasks, statistics and the warnings that
/// hold once everything is known (default thresholds).
fn analyse(s: &Session) -> Model {
    Model::from_events(s.header.clone(), Thresholds::default(), &s.events)
}

fn info(s: &Session, out: &mut impl Write) -> io::Result<()> {
    let h = &s.header;
    let span = s.events.iter().map(|e| e.ts_ns).max().unwrap_or(0);
    let (mut tasks, mut polls, mut wakes, mut drops) = (0, 0, 0, 0);
    // The longest polls: (duration, task, start).
    let mut started: std::collections::HashMap<u64, u64> = Default::default();
    let mut longest: Vec<(u64, u64, u64)> = Vec::new();
    for e in &s.events {
        match e.kind {
            EventKind::Spawn(_) => tasks += 1,
            EventKind::PollStart { task } => {
                polls += 1;
                started.insert(task, e.ts_ns);
            }
            EventKind::PollEnd { task, .. } => {
                if let Some(from) = started.remove(&task) {
                    longest.push((e.ts_ns.saturating_sub(from), task, from));
                    if longest.len() > 64 {
                        longest.sort_unstable_by(|a, b| b.cmp(a));
                        longest.truncate(5);
                    }
                }
            }
            EventKind::Waker {
                op: looptrace_wire::WakeOp::Wake | looptrace_wire::WakeOp::WakeByRef,
                ..
            } => wakes += 1,
            EventKind::Dropped { count } => drops += count,
            _ => {}
        }
    }
    writeln!(out, "process  {} (pid {})", h.process_name, h.pid)?;
    writeln!(
        out,
        "runtime  {}, {} worker(s)",
        h.flavor.as_str(),
        h.workers
    )?;
    writeln!(out, "span     {}", fmt_dur(span))?;
    writeln!(out, "events   {}", s.events.len())?;
    writeln!(out, "tasks    {tasks}")?;
    writeln!(out, "polls    {polls}")?;
    writeln!(out, "wakes    {wakes}")?;
    writeln!(out, "dropped  {drops}")?;
    let model = analyse(s);
    let mut kinds: std::collections::BTreeMap<&str, u64> = Default::default();
    for w in model.findings() {
        *kinds.entry(w.kind.as_str()).or_default() += w.count;
    }
    let total: u64 = kinds.values().sum();
    writeln!(out, "warnings {total}")?;
    for (kind, n) in &kinds {
        writeln!(out, "  {n:>6}  {kind}")?;
    }
    longest.sort_unstable_by(|a, b| b.cmp(a));
    if !longest.is_empty() {
        writeln!(out, "longest polls")?;
        for (d, task, from) in longest.iter().take(5) {
            writeln!(
                out,
                "  {:>10}  {} at {}",
                fmt_dur(*d),
                s.task_name(*task),
                fmt_dur(*from)
            )?;
        }
    }
    let mut waited: Vec<_> = model
        .tasks
        .values()
        .filter(|t| t.scheduled_ns > 0)
        .map(|t| (t.scheduled_ns, t.name.clone(), t.id))
        .collect();
    waited.sort_unstable_by(|a, b| b.cmp(a));
    if !waited.is_empty() {
        writeln!(out, "most time scheduled (woken, waiting for a worker)")?;
        for (ns, name, id) in waited.iter().take(5) {
            writeln!(out, "  {:>10}  {name} #{id}", fmt_dur(*ns))?;
        }
    }
    Ok(())
}
