//! The load: `kv-client ADDRS CONNECTIONS REQUESTS [RATE]` opens CONNECTIONS
//! mini-redis client connections to each address of ADDRS (comma-separated),
//! each doing REQUESTS round trips (alternately a SET and a GET of its own keys);
//! all at once as fast as they go, or, with RATE, each address at RATE requests
//! per second (spread over its connections). Prints one JSON line with the
//! requests done and the wall time they took.

use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addrs: Vec<String> = args
        .first()
        .expect("kv-client ADDRS CONNECTIONS REQUESTS [RATE]")
        .split(',')
        .map(String::from)
        .collect();
    let connections: usize = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(50);
    let requests: usize = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(2000);
    let rate: Option<f64> = args.get(3).and_then(|v| v.parse().ok());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (done, secs) = rt.block_on(async move {
        // Connect first, so the timed part is the requests alone.
        let mut clients = Vec::new();
        for addr in &addrs {
            for _ in 0..connections {
                clients.push(mini_redis::client::connect(addr).await.expect("connect"));
            }
        }
        // Each connection's share of its address's rate.
        let every = rate.map(|r| Duration::from_secs_f64(connections as f64 / r));
        let start = Instant::now();
        let tasks: Vec<_> = clients
            .into_iter()
            .enumerate()
            .map(|(c, mut client)| {
                tokio::spawn(async move {
                    let value = bytes::Bytes::from_static(b"a value of some thirty bytes..");
                    let mut tick = every.map(|e| {
                        let mut t = tokio::time::interval(e);
                        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                        t
                    });
                    let mut done = 0u64;
                    for i in 0..requests {
                        if let Some(t) = tick.as_mut() {
                            t.tick().await;
                        }
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
