//! `#[looptrace::main]` builds a captured runtime from the environment.

use looptrace::wire::{EventKind, Flavor, Recording};

#[looptrace::main(flavor = "current_thread")]
async fn traced() -> u32 {
    tokio::task::Builder::new()
        .name("inside")
        .spawn(async { 7 })
        .unwrap()
        .await
        .unwrap()
}

#[test]
fn the_attribute_captures_into_the_env_destination() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("macro.ltrace");
    // The only test in this binary: setting the environment is safe here.
    unsafe { std::env::set_var(looptrace::ENV_RECORD, &path) };
    assert_eq!(traced(), 7);
    let rec = Recording::open(&path).unwrap();
    assert_eq!(rec.header.flavor, Flavor::CurrentThread);
    assert!(rec
        .events
        .iter()
        .any(|e| matches!(&e.kind, EventKind::Spawn(s) if s.name.as_deref() == Some("inside"))));
    assert!(rec
        .events
        .iter()
        .any(|e| matches!(e.kind, EventKind::PollEnd { ready: true, .. })));
}
