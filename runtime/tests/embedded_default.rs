//! With no destination, the collector runs in the app and serves the viewer API.

use std::io::{Read, Write};

#[test]
fn no_destination_means_an_embedded_collector() {
    let rt = looptrace::Builder::new_current_thread()
        .from_env(false)
        .build()
        .unwrap();
    let addr = rt.viewer_addr().expect("embedded collector address");
    rt.block_on(async {
        tokio::task::Builder::new()
            .name("in-process")
            .spawn(async {})
            .unwrap()
            .await
            .unwrap();
    });
    rt.shutdown();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET /api/sessions/1/tasks HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.contains("\"name\":\"in-process\""), "{body}");
    assert!(body.contains("\"polls\":1"), "{body}");
}
