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

/// The tags of a tagged union's variants, as the schema lists them.
fn tags(schema: &serde_json::Value, union: &str, tag: &str) -> Vec<String> {
    schema["$defs"][union]["oneOf"]
        .as_array()
        .unwrap_or_else(|| panic!("{union} is a oneOf"))
        .iter()
        .map(|v| v["properties"][tag]["const"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_schema_names_every_message_and_request() {
    let schema = looptrace_api::schema();
    assert_eq!(
        tags(&schema, "Message", "type"),
        [
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
            "error"
        ]
    );
    assert_eq!(
        tags(&schema, "Request", "op"),
        [
            "subscribe",
            "unsubscribe",
            "window",
            "replay",
            "snapshot",
            "task"
        ]
    );
}

/// `as_str` and serde spell each value the same way.
#[test]
fn names_are_spelt_one_way() {
    use looptrace_api::*;
    fn same<T: serde::Serialize>(v: T, s: &str) {
        assert_eq!(serde_json::to_value(v).unwrap(), s, "{s}");
    }
    for v in [
        TaskState::Running,
        TaskState::Scheduled,
        TaskState::Idle,
        TaskState::Done,
    ] {
        same(v, v.as_str());
    }
    for v in [Outcome::Completed, Outcome::Cancelled, Outcome::Panicked] {
        same(v, v.as_str());
    }
    for v in [Flavor::CurrentThread, Flavor::MultiThread] {
        same(v, v.as_str());
    }
    for v in WarningKind::ALL {
        same(v, v.as_str());
    }
    for v in [
        WakeSource::Task(7),
        WakeSource::Timer,
        WakeSource::Io,
        WakeSource::Blocking,
        WakeSource::External,
    ] {
        same(v, &v.to_string());
        assert_eq!(v.to_string().parse::<WakeSource>(), Ok(v));
    }
}
