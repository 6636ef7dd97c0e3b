//! The load: `kv-client ADDR CONNECTIONS REQUESTS` opens CONNECTIONS mini-redis
//! client connections to ADDR, each doing REQUESTS round trips (alternately a SET
//! and a GET of its own keys), all at once; prints one JSON line with the requests
//! done and the wall time they took.

use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr = args
        .first()
        .cloned()
        .expect("kv-client ADDR CONNECTIONS REQUESTS");
    let connections: usize = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(50);
    let requests: usize = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(2000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (done, secs) = rt.block_on(async move {
        // Connect first, so the timed part is the requests alone.
        let mut clients = Vec::new();
        for _ in 0..connections {
            clients.push(mini_redis::client::connect(&addr).await.expect("connect"));
        }
        let start = Instant::now();
        let tasks: Vec<_> = clients
            .into_iter()
            .enumerate()
            .map(|(c, mut client)| {
                tokio::spawn(async move {
                    let value = bytes::Bytes::from_static(b"a value of some thirty bytes..");
                    let mut done = 0u64;
                    for i in 0..requests {
                        let key = format!("c{c}-k{}", i % 64);
                        if i % 2 == 0 {
                            client.set(&key, value.clone()).await.expect("set");
                        } else {
                            client.get(&key).await.expect("get");
                        }
                        done += 1;
                    }
                    done
                })
            })
            .collect();
        let mut done = 0;
        for t in tasks {
            done += t.await.expect("client task");
        }
        (done, start.elapsed().as_secs_f64())
    });
    println!("{}", serde_json::json!({"requests": done, "seconds": secs}));
}
