//! A traced app for the collector's tests: `traced-app NAME,NAME,...` spawns a
//! task of each name, each sleeping 15 times 20 ms, on a captured runtime (with
//! `LOOPTRACE_ADDR` set, streaming to that collector).

use std::time::Duration;

fn main() {
    let names = std::env::args().nth(1).unwrap_or_default();
    let rt = looptrace::Builder::new_current_thread()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let hs: Vec<_> = names
            .split(',')
            .map(|n| {
                tokio::task::Builder::new()
                    .name(n)
                    .spawn(async {
                        for _ in 0..15 {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    })
                    .expect("spawn")
            })
            .collect();
        for h in hs {
            let _ = h.await;
        }
    });
    rt.shutdown();
}
