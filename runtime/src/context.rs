//! Request context: which of the app's own `tracing` spans a poll entered.
//!
//! A span of the app (not tokio's), at `DEBUG` level or above, is labelled once,
//! when it is created: `GET /blocking` for an HTTP request span (tower-http's
//! `TraceLayer`, or any span with `method` and a path field), its `otel.name` if
//! it has one, else `name{field=value ...}`. The first such span entered during a
//! task's poll is sent once for that poll ([`looptrace_wire::EventKind::Context`]),
//! so a poll, its task and a warning about it can say what the app was doing.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::sync::{Arc, Mutex, MutexGuard};
use tracing_core::field::{Field, Visit};
use tracing_core::{Level, Metadata};

/// Longest label sent, in bytes.
const MAX_LABEL: usize = 120;
/// Most fields shown in a generic label.
const MAX_FIELDS: usize = 3;
/// Longest field value shown in a generic label.
const MAX_VALUE: usize = 40;

/// Whether a span callsite is the app's (a context), not tokio's or looptrace's.
pub(crate) fn is_context(m: &Metadata<'_>) -> bool {
    if !m.is_span() || *m.level() > Level::DEBUG {
        return false;
    }
    let crate_of = m.target().split("::").next().unwrap_or_default();
    !matches!(crate_of, "tokio" | "runtime" | "looptrace")
}

/// Reads a span's fields into its label.
#[derive(Default)]
pub(crate) struct Label {
    otel_name: Option<String>,
    method: Option<String>,
    /// The best path-like field seen: (rank, value), lower rank preferred.
    path: Option<(u8, String)>,
    fields: String,
    shown: usize,
}

fn path_rank(field: &str) -> Option<u8> {
    Some(match field {
        "http.route" | "route" => 0,
        "path" | "url.path" => 1,
        "uri" | "http.target" | "url" | "http.url" => 2,
        _ => return None,
    })
}

/// The path of a URI without its query or fragment (`http://host:80/a?b` reads
/// `/a`): requests to one route read the same, and a query's secrets (tokens)
/// never leave the app.
fn path_of(uri: &str) -> &str {
    let path = match uri.find("://") {
        Some(i) => {
            let rest = &uri[i + 3..];
            rest.find('/').map_or("/", |j| &rest[j..])
        }
        None => uri,
    };
    path.split(['?', '#']).next().unwrap_or(path)
}

impl Label {
    fn field(&mut self, field: &Field, value: &str) {
        let name = field.name();
        match name {
            "otel.name" => self.otel_name = Some(value.to_string()),
            "method" | "http.method" | "http.request.method" => {
                self.method = Some(value.to_string())
            }
            _ => {}
        }
        if let Some(rank) = path_rank(name) {
            if self.path.as_ref().is_none_or(|(r, _)| rank < *r) {
                self.path = Some((rank, path_of(value).to_string()));
            }
        }
        if self.shown < MAX_FIELDS && !name.starts_with("otel.") {
            self.shown += 1;
            if !self.fields.is_empty() {
                self.fields.push(' ');
            }
            let _ = write!(self.fields, "{name}={}", clip(value, MAX_VALUE));
        }
    }

    /// The label of a span named `name` with the fields read.
    pub(crate) fn finish(self, name: &str) -> Arc<str> {
        let label = if let Some(n) = self.otel_name {
            n
        } else if let (Some(m), Some((_, p))) = (&self.method, &self.path) {
            format!("{m} {p}")
        } else if self.fields.is_empty() {
            name.to_string()
        } else {
            format!("{name}{{{}}}", self.fields)
        };
        clip(&label, MAX_LABEL).into()
    }
}

impl Visit for Label {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(field, value)
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%` fields arrive here formatted with Display, `?` with Debug; only
        // those the label may use are formatted at all.
        let name = field.name();
        let used = matches!(
            name,
            "otel.name" | "method" | "http.method" | "http.request.method"
        ) || path_rank(name).is_some()
            || (self.shown < MAX_FIELDS && !name.starts_with("otel."));
        if used {
            let mut s = String::new();
            let _ = write!(s, "{value:?}");
            self.field(field, &s)
        }
    }
}

use looptrace_wire::units::clip_bytes as clip;

/// Labels of the live context spans of the standalone subscriber (which keeps no
/// span registry), by key, with their reference counts.
static LABELS: Mutex<Option<Labels>> = Mutex::new(None);
/// Label and reference count, by key.
type Labels = HashMap<u64, (Arc<str>, usize)>;
/// More live spans than this and new ones go unlabelled (an app leaking spans
/// must not grow looptrace without bound).
const MAX_LIVE: usize = 100_000;

fn labels() -> MutexGuard<'static, Option<Labels>> {
    LABELS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Keys of context spans have this bit set (tokio task ids never reach it).
pub(crate) const CONTEXT_BIT: u64 = 1 << 63;

/// A new context span of the standalone subscriber: its key.
pub(crate) fn open(label: Arc<str>) -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let key = NEXT.fetch_add(1, Ordering::Relaxed) | CONTEXT_BIT;
    let mut map = labels();
    let map = map.get_or_insert_with(HashMap::new);
    if map.len() < MAX_LIVE {
        map.insert(key, (label, 1));
    }
    key
}

/// One more handle on a context span.
pub(crate) fn clone(key: u64) {
    if let Some((_, refs)) = labels().as_mut().and_then(|m| m.get_mut(&key)) {
        *refs += 1;
    }
}

/// One handle fewer; true if that was the last.
pub(crate) fn close(key: u64) -> bool {
    let mut map = labels();
    let Some(map) = map.as_mut() else {
        return false;
    };
    match map.get_mut(&key) {
        Some((_, refs)) if *refs > 1 => {
            *refs -= 1;
            false
        }
        Some(_) => {
            map.remove(&key);
            true
        }
        None => false,
    }
}

/// Entering context span `key` (standalone subscriber).
pub(crate) fn enter(key: u64) {
    if !crate::capture::wants_context() {
        return;
    }
    let label = labels()
        .as_ref()
        .and_then(|m| m.get(&key))
        .map(|(l, _)| l.clone());
    if let Some(label) = label {
        crate::capture::on_context(&label);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::field::Empty;
    use tracing_core::span::{Attributes, Id, Record};

    /// What looptrace makes of the span `f` creates: its label, and whether it
    /// is a context at all.
    fn read(f: impl FnOnce() -> tracing::Span) -> (String, bool) {
        #[derive(Default)]
        struct Grab(Mutex<Option<(String, bool)>>);
        impl tracing::Subscriber for Grab {
            fn enabled(&self, _: &Metadata<'_>) -> bool {
                true
            }
            fn new_span(&self, a: &Attributes<'_>) -> Id {
                let mut l = Label::default();
                a.record(&mut l);
                let label = l.finish(a.metadata().name()).to_string();
                *self.0.lock().unwrap() = Some((label, is_context(a.metadata())));
                Id::from_u64(1)
            }
            fn record(&self, _: &Id, _: &Record<'_>) {}
            fn record_follows_from(&self, _: &Id, _: &Id) {}
            fn event(&self, _: &tracing::Event<'_>) {}
            fn enter(&self, _: &Id) {}
            fn exit(&self, _: &Id) {}
        }
        let grab = Arc::new(Grab::default());
        tracing::subscriber::with_default(grab.clone(), || drop(f()));
        let got = grab.0.lock().unwrap().take();
        got.expect("a span")
    }

    fn label_of(f: impl FnOnce() -> tracing::Span) -> String {
        read(f).0
    }

    #[test]
    fn labels_read_like_what_the_app_was_doing() {
        // tower-http's TraceLayer: method, uri (a path on a server), version;
        // the query left out (one route reads the same; its secrets stay home).
        assert_eq!(
            label_of(|| tracing::debug_span!(
                "request",
                method = %"GET",
                uri = %"/blocking?token=s3cret#top",
                version = ?"HTTP/1.1"
            )),
            "GET /blocking"
        );
        // A route beats the uri; a full URL gives its path.
        assert_eq!(
            label_of(|| tracing::info_span!(
                "req",
                method = "POST",
                uri = "http://h:1/a/7",
                route = "/a/{id}"
            )),
            "POST /a/{id}"
        );
        assert_eq!(
            label_of(|| tracing::info_span!("req", http.method = "PUT", url = "https://h/x")),
            "PUT /x"
        );
        assert_eq!(
            label_of(|| tracing::info_span!("job", otel.name = "nightly report", id = 3)),
            "nightly report"
        );
        assert_eq!(
            label_of(|| tracing::info_span!("handle", user = 42, a = "b", c = true, d = 4)),
            "handle{user=42 a=b c=true}"
        );
        assert_eq!(
            label_of(|| tracing::info_span!("tick", later = Empty)),
            "tick"
        );
        let long = "x".repeat(500);
        assert!(
            label_of(|| tracing::info_span!("req", method = "GET", path = %long)).len()
                <= MAX_LABEL
        );
    }

    #[test]
    fn only_the_apps_spans_at_debug_or_above_are_contexts() {
        let is = |f: fn() -> tracing::Span| read(f).1;
        assert!(is(|| tracing::info_span!(target: "app", "request")));
        assert!(is(
            || tracing::debug_span!(target: "tokio_app::x", "request")
        ));
        assert!(!is(|| tracing::trace_span!(target: "app", "poll")));
        assert!(!is(
            || tracing::info_span!(target: "tokio::task", "runtime.spawn")
        ));
        assert!(!is(
            || tracing::info_span!(target: "runtime::resource", "runtime.resource")
        ));
    }
}
