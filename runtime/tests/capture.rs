mod common;
use common::*;
use looptrace::wire::{EventKind, WakeSource};
use std::time::Duration;

#[test]
fn hello_smoke() {
    let _s = serial();
    let (t, _) = run(looptrace::Builder::new_current_thread(), || async {
        let a = tokio::task::Builder::new().name("Bob").spawn(async {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }).unwrap();
        a.await.unwrap();
    });
    for e in &t.events { println!("{e:?}"); }
    let bob = t.task("Bob");
    println!("{:?}", t.story(bob));
    panic!();
}
