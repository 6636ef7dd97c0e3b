//! `looptrace`: the command-line face of the collector.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use looptrace_collector::export::{write_chrome, write_jsonl};
use looptrace_collector::livelog::{fmt_dur, LiveLog};
use looptrace_collector::Session;
use looptrace_wire::{EventKind, Recording};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "looptrace", version, about = "See inside your tokio event loop")]
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
    },
    /// Summarise a recording: process, tasks, polls, wakes.
    Info { file: PathBuf },
    /// Print a recording as a readable log of what the loop did.
    Log {
        file: PathBuf,
        /// Also show waker clones and drops.
        #[arg(long)]
        verbose: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Chrome,
    Jsonl,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Export { file, format, output } => {
            let session = open(&file)?;
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
        }
        Command::Info { file } => info(&open(&file)?),
        Command::Log { file, verbose } => {
            let session = open(&file)?;
            let mut log = LiveLog::new();
            log.verbose = verbose;
            let mut out = BufWriter::new(io::stdout().lock());
            for e in &session.events {
                if let Some(line) = log.line(e) {
                    writeln!(out, "{line}")?;
                }
            }
            out.flush()?;
        }
    }
    Ok(())
}

/// Reads a recording; a damaged tail is reported and the rest is used.
fn open(path: &PathBuf) -> Result<Session> {
    let rec = Recording::open(path).with_context(|| format!("cannot read recording {}", path.display()))?;
    if let Some(damage) = &rec.damage {
        eprintln!(
            "looptrace: {}: {damage}; using the {} events before it",
            path.display(),
            rec.events.len()
        );
    }
    if rec.events.is_empty() && rec.damage.is_some() {
        bail!("{}: no complete events in the recording", path.display());
    }
    Ok(Session::from_events(rec.header, rec.events))
}

fn info(s: &Session) {
    let h = &s.header;
    let span = s.events.iter().map(|e| e.ts_ns).max().unwrap_or(0);
    let (mut tasks, mut polls, mut wakes, mut drops) = (0, 0, 0, 0);
    for e in &s.events {
        match e.kind {
            EventKind::Spawn { .. } => tasks += 1,
            EventKind::PollStart { .. } => polls += 1,
            EventKind::Waker { op: looptrace_wire::WakeOp::Wake | looptrace_wire::WakeOp::WakeByRef, .. } => wakes += 1,
            EventKind::Dropped { count } => drops += count,
            _ => {}
        }
    }
    println!("process  {} (pid {})", h.process_name, h.pid);
    println!("runtime  {}, {} worker(s)", h.flavor.as_str(), h.workers);
    println!("span     {}", fmt_dur(span));
    println!("events   {}", s.events.len());
    println!("tasks    {tasks}");
    println!("polls    {polls}");
    println!("wakes    {wakes}");
    println!("dropped  {drops}");
}
