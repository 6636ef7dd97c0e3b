//! A TCP echo server with many clients on loopback: tasks woken by the I/O driver.

use crate::pace::sleep;
use crate::trace::{secs, Trace};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Clients, messages each, and seconds (demo time) between a client's messages.
pub const CLIENTS: usize = 8;
pub const MESSAGES: usize = 10;
pub const GAP_SECS: f64 = 0.2;

async fn serve_connection(mut socket: TcpStream) {
    let mut buf = [0u8; 1024];
    loop {
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if socket.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

async fn client(i: usize, addr: std::net::SocketAddr) -> std::io::Result<()> {
    let mut socket = TcpStream::connect(addr).await?;
    for m in 0..MESSAGES {
        let msg = format!("client {i} message {m}");
        socket.write_all(msg.as_bytes()).await?;
        let mut back = vec![0u8; msg.len()];
        socket.read_exact(&mut back).await?;
        if back != msg.as_bytes() {
            return Err(std::io::Error::other("the echo differs"));
        }
        sleep(GAP_SECS).await;
    }
    crate::say!("client {i}: {MESSAGES} messages echoed");
    Ok(())
}

/// `echo server` accepts connections on 127.0.0.1 and spawns a `connection N`
/// task for each; eight `client N` tasks connect and send ten messages each,
/// 0.2 s apart. Then the server is stopped.
pub async fn run() {
    let listener = match TcpListener::bind("127.0.0.1:0").await {
        Ok(l) => l,
        Err(e) => return crate::say!("echo-server: cannot listen on 127.0.0.1: {e}"),
    };
    let addr = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => return crate::say!("echo-server: {e}"),
    };
    crate::say!("echo server listening on {addr}");
    let server = crate::spawn("echo server", async move {
        let mut n = 0;
        while let Ok((socket, _)) = listener.accept().await {
            n += 1;
            crate::spawn(&format!("connection {n}"), serve_connection(socket));
        }
    });
    let clients = (1..=CLIENTS)
        .map(|i| {
            crate::spawn(&format!("client {i}"), async move {
                if let Err(e) = client(i, addr).await {
                    crate::say!("client {i}: {e}");
                }
            })
        })
        .collect();
    crate::join_all(clients).await;
    server.abort();
    crate::say!("server stopped");
}

pub fn explain(t: &Trace) -> Vec<String> {
    let conns = t.tasks("connection ");
    if conns.is_empty() {
        return vec!["The trace holds no connection task.".into()];
    }
    let io: u64 = conns.iter().map(|c| c.wakes.io).sum();
    let all: u64 = conns.iter().map(|c| c.wakes.total()).sum();
    let busy: u64 = conns.iter().map(|c| c.busy_ns).sum();
    let clients = t.tasks("client ");
    vec![
        format!(
            "{} connection tasks were woken {all} times, {io} of them by the I/O driver (a socket became readable); each poll echoed what had arrived.",
            conns.len()
        ),
        format!(
            "They spent {} polling in all, across {} of wall time: one thread served {} clients because every connection spends nearly all its time waiting.",
            secs(busy as f64 / 1e9),
            secs(t.span(&clients)),
            clients.len()
        ),
    ]
}
