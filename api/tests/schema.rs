//! The protocol's JSON Schema checked into `docs/` is the one these types make:
//! viewers written against the file (and the page's tests, which validate every
//! message they receive against it) see what the collector really sends.
//!
//! After changing the protocol, write the file anew with
//! `LOOPTRACE_WRITE_SCHEMA=1 cargo test -p looptrace-api --test schema`.

use std::path::Path;

#[test]
fn the_schema_in_docs_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/protocol.schema.json");
    let want = serde_json::to_string_pretty(&looptrace_api::schema()).unwrap() + "\n";
    if std::env::var_os("LOOPTRACE_WRITE_SCHEMA").is_some() {
        std::fs::write(&path, &want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "docs/protocol.schema.json is not what looptrace-api makes: write it anew with \
         LOOPTRACE_WRITE_SCHEMA=1 cargo test -p looptrace-api --test schema"
    );
}

#[test]
fn the_schema_names_every_message_and_request() {
    let schema = looptrace_api::schema();
    let text = schema.to_string();
    for tag in [
        "sessions",
        "subscribed",
        "unsubscribed",
        "batch",
        "window",
        "snapshot",
        "task",
        "stats",
        "replay",
        "lagged",
        "error",
        "subscribe",
        "unsubscribe",
    ] {
        assert!(text.contains(&format!("\"const\":\"{tag}\"")), "{tag}");
    }
}
