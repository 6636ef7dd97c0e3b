//! Teaching demos: small async programs whose scheduling is worth watching.
//!
//! Each [`Demo`] says what it shows and what to watch for; [`catalog`] lists them.

pub mod hello;

static SILENT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Stops [`say`] printing (the terminal dashboard owns the screen).
pub fn silence() {
    SILENT.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Prints a line to stdout; a closed stdout (`demos hello | head`) is not an error
/// worth a panic in a task.
pub fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    if !SILENT.load(std::sync::atomic::Ordering::Relaxed) {
        let _ = writeln!(std::io::stdout().lock(), "{line}");
    }
}

/// `println!` that tolerates a closed stdout.
#[macro_export]
macro_rules! say {
    ($($t:tt)*) => { $crate::say(format_args!($($t)*)) };
}

use std::future::Future;
use std::pin::Pin;

/// A demo: its name on the command line, a one-line summary, what to watch for, and
/// the program itself.
pub struct Demo {
    pub name: &'static str,
    pub summary: &'static str,
    pub watch_for: &'static str,
    pub run: fn() -> Pin<Box<dyn Future<Output = ()> + Send>>,
}

/// Every demo, in teaching order.
pub fn catalog() -> Vec<Demo> {
    vec![Demo {
        name: "hello",
        summary: "Three tasks say hello after 2 s (Alice), 1 s (Bob) and 3 s (Charlie), spawned together.",
        watch_for: "Each task is polled, returns Pending while its timer runs, and the worker parks with \
                    nothing to do. The timer wakes Bob at 1 s, Alice at 2 s, Charlie at 3 s; each is polled \
                    once more and returns Ready. The run takes about 3 s, not 6: the sleeps overlap.",
        run: || Box::pin(hello::run()),
    }]
}
