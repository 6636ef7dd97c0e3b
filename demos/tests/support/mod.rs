//! What several of the demos' tests share: recordings of a demo and of the
//! attach example driven over HTTP.

#![allow(dead_code)] // each test uses its own part

use looptrace_test_support::http_get;
use looptrace_wire::Recording;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};

/// A child process killed when the test ends, however it ends.
pub struct Kill(pub Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `looptrace` binary, built beside this crate's by `cargo test --workspace`.
pub fn looptrace_bin() -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_demos")).with_file_name("looptrace");
    assert!(
        path.exists(),
        "the looptrace binary is built by `cargo test --workspace` (or `cargo build -p looptrace-cli`); missing at {}",
        path.display()
    );
    path
}

/// `looptrace serve` with `args`, on a free port of 127.0.0.1: the process and
/// its address, once it listens.
pub fn looptrace_serve(args: &[&str]) -> (Kill, SocketAddr) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let child = looptrace_test_support::looptrace_serve(&looptrace_bin(), addr, args);
    (Kill(child), addr)
}

/// The attach example (`http-service`), running.
pub struct Service {
    pub child: Kill,
    /// Where it serves HTTP.
    pub addr: String,
    out: BufReader<ChildStdout>,
}

impl Service {
    /// Starts `cmd` (the attach example, with its environment set) on a free
    /// port; returns once it listens.
    pub fn start(mut cmd: Command) -> Service {
        let mut child = cmd
            .arg("127.0.0.1:0")
            .stdout(Stdio::piped())
            .spawn()
            .expect("the service starts");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("first line: {line:?}"))
            .to_string();
        Service {
            child: Kill(child),
            addr,
            out,
        }
    }

    /// Stops it as Ctrl-C does; checks it stopped cleanly; what it said since.
    pub fn stop(mut self) -> String {
        let status = Command::new("kill")
            .args(["-INT", &self.child.0.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = self.child.0.wait().unwrap();
        let mut rest = String::new();
        self.out.read_to_string(&mut rest).unwrap();
        assert!(exit.success(), "graceful stop on Ctrl-C: {exit:?} {rest}");
        rest
    }
}

/// A recording of demo `name`, run at four times its speed.
pub fn record_demo(name: &str) -> Recording {
    record_demo_with(name, &[])
}

/// A recording of demo `name` at four times its speed, with more of its
/// options (`--verbose`, `--flavor multi-thread`, ...).
pub fn record_demo_with(name: &str, options: &[&str]) -> Recording {
    // One demo at a time: two at once on a small machine preempt each other's
    // workers, and a demo's polls would measure that rather than the demo.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("{name}.ltrace"));
    let out = Command::new(env!("CARGO_BIN_EXE_demos"))
        .args([name, "--exit", "--quiet", "--no-tui"])
        .args(options)
        .args(["--serve", "127.0.0.1:0", "--speed", "4", "--record"])
        .arg(&path)
        .output()
        .expect("demos runs");
    assert!(
        out.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Recording::open(&path).unwrap()
}

/// The attach example, recorded while it answers `/`, `/slow`, `/compute` and
/// `/blocking` (and a client slow to ask), then stopped with Ctrl-C; with
/// `console`, beside tokio-console.
pub fn record_service(console: bool) -> Recording {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("service.ltrace");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_http-service"));
    cmd.env("LOOPTRACE_RECORD", &path)
        .env_remove("LOOPTRACE_ADDR")
        .stderr(Stdio::piped());
    if console {
        cmd.arg("--console")
            .env("TOKIO_CONSOLE_BIND", "127.0.0.1:0");
    }
    let service = Service::start(cmd);
    let addr = service.addr.clone();

    assert!(http_get(&addr, "/").contains("hello from a traced service"));
    let clients: Vec<_> = ["/slow", "/slow", "/compute", "/", "/"]
        .into_iter()
        .map(|p| {
            let a = addr.clone();
            std::thread::spawn(move || http_get(&a, p))
        })
        .collect();
    for c in clients {
        assert!(c.join().unwrap().starts_with("HTTP/1.1 200"));
    }
    assert!(http_get(&addr, "/blocking").contains("blocked a worker"));
    // A client that connects, then waits before asking: its connection task must
    // wait for the request, and the I/O driver wakes it when it comes.
    {
        use std::io::Write;
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(100));
        write!(
            s,
            "GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut reply = String::new();
        s.read_to_string(&mut reply).unwrap();
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    }

    let rest = service.stop();
    assert!(rest.contains("stopped after"), "{rest}");
    let rec = Recording::open(&path).unwrap();
    assert!(rec.damage.is_empty(), "{:?}", rec.damage);
    rec
}
