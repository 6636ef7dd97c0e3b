//! What several of the demos' tests share: recordings of a demo and of the
//! attach example driven over HTTP.

#![allow(dead_code)] // each test uses its own part

use looptrace_test_support::http_get;
use looptrace_wire::Recording;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

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
    cmd.arg("127.0.0.1:0")
        .env("LOOPTRACE_RECORD", &path)
        .env_remove("LOOPTRACE_ADDR")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if console {
        cmd.arg("--console")
            .env("TOKIO_CONSOLE_BIND", "127.0.0.1:0");
    }
    let mut child = cmd.spawn().expect("the service starts");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("first line: {line:?}"))
        .to_string();

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

    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert!(exit.success(), "graceful stop on Ctrl-C: {exit:?} {rest}");
    assert!(rest.contains("stopped after"), "{rest}");
    let rec = Recording::open(&path).unwrap();
    assert!(rec.damage.is_empty(), "{:?}", rec.damage);
    rec
}
