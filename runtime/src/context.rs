//! Request context: which of the app's own `tracing` spans a poll entered.
//!
//! A span of the app (not tokio's), at `DEBUG` level or above, is labelled once,
//! when it is created: `GET /blocking` for an HTTP request span (tower-http's
//! `TraceLayer`, or any span with `method` and a path field), its `otel.name` if
//! it has one, else `name{field=value ...}`. The first such span entered during a
//! task's poll is that poll's context, sent once: with the poll's end, or on its
//! own ([`looptrace_wire::EventKind::Context`]) if the poll still runs when it is
//! shipped. So a poll, its task and a warning about it can say what the app was
//! doing.

use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
#[cfg(test)]
use std::sync::Mutex;
use std::sync::{Arc, OnceLock};
use tracing_core::field::{Field, Visit};
use tracing_core::{Level, Metadata};

/// Longest label sent, in bytes.
const MAX_LABEL: usize = 120;
/// Most fields shown in a generic label.
const MAX_FIELDS: usize = 3;
/// Longest field value shown in a generic label.
const MAX_VALUE: usize = 40;

/// Whether the app's spans are read as request context ([`crate::Builder::request_context`]).
static ENABLED: AtomicBool = AtomicBool::new(true);

/// Reads (or not) the app's spans from now on; callsites already seen are asked
/// again when this changes.
pub(crate) fn set_enabled(yes: bool) {
    if ENABLED.swap(yes, Ordering::Relaxed) != yes {
        tracing_core::callsite::rebuild_interest_cache();
    }
}

/// Whether a span callsite is the app's (a context), not tokio's or looptrace's.
pub(crate) fn is_context(m: &Metadata<'_>) -> bool {
    if !m.is_span() || *m.level() > Level::DEBUG || !ENABLED.load(Ordering::Relaxed) {
        return false;
    }
    let crate_of = m.target().split("::").next().unwrap_or_default();
    !matches!(crate_of, "tokio" | "runtime" | "looptrace")
}

/// Reads a span's fields into its label, in two passes: the fields that name a
/// request (`otel.name`, a method and a path) first; the others only when those
/// do not make the label (an HTTP request span formats nothing else). A request
/// span is labelled per request, so this keeps allocations few: the method is
/// read without one, and the path is formatted once, cut to size in place, and
/// becomes the label with the method put before it.
#[derive(Default)]
pub(crate) struct Label {
    otel_name: Option<String>,
    method: Option<Method>,
    /// The best path-like field seen: (rank, value), lower rank preferred.
    path: Option<(u8, String)>,
    /// Second pass: the first fields, as `name=value`.
    generic: bool,
    fields: String,
    shown: usize,
}

/// A request's method: the usual ones need no allocation.
enum Method {
    Known(&'static str),
    Other(String),
}

impl Method {
    fn of(v: &str) -> Method {
        const KNOWN: [&str; 9] = [
            "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE",
        ];
        match KNOWN.iter().find(|m| **m == v) {
            Some(m) => Method::Known(m),
            None => Method::Other(v.to_string()),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            Method::Known(m) => m,
            Method::Other(m) => m,
        }
    }
}

/// Room for a method before a path, so that putting it there does not move the
/// path to a new allocation.
const METHOD_ROOM: usize = 8;

/// A short value formatted on the stack (a method, a task's kind); `None` if
/// it is longer.
#[derive(Default)]
pub(crate) struct Short {
    buf: [u8; 16],
    len: usize,
    over: bool,
}

impl fmt::Write for Short {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        match self.buf.get_mut(self.len..self.len + s.len()) {
            Some(dst) if !self.over => {
                dst.copy_from_slice(s.as_bytes());
                self.len += s.len();
            }
            _ => self.over = true,
        }
        Ok(())
    }
}

impl Short {
    pub(crate) fn as_str(&self) -> Option<&str> {
        if self.over {
            return None;
        }
        std::str::from_utf8(&self.buf[..self.len]).ok()
    }
}

/// The label of the span `attrs` opens.
pub(crate) fn label(attrs: &tracing_core::span::Attributes<'_>) -> SpanLabel {
    let mut l = Label::default();
    attrs.record(&mut l);
    if l.otel_name.is_none() && (l.method.is_none() || l.path.is_none()) {
        l.generic = true;
        attrs.record(&mut l);
    }
    l.finish(attrs.metadata().name())
}

fn path_rank(field: &str) -> Option<u8> {
    Some(match field {
        "http.route" | "route" => 0,
        "path" | "url.path" => 1,
        "uri" | "http.target" | "url" | "http.url" => 2,
        _ => return None,
    })
}

/// Where the path of a URI lies in it, without its query or fragment
/// (`http://host:80/a?b` reads `/a`): requests to one route read the same, and
/// a query's secrets (tokens) never leave the app. `None`: the path is `/`
/// (a URL with a host and nothing after it).
fn path_range(uri: &str) -> Option<std::ops::Range<usize>> {
    // A scheme's `://` is where the first slash is (found by a byte search: a
    // substring search costs more to set up than the whole URI takes to scan).
    let start = match uri.find('/') {
        Some(i) if i > 0 && uri[..i].ends_with(':') && uri[i + 1..].starts_with('/') => {
            // The authority ends at the path, the query or the fragment: only a
            // path starts one.
            let after = i + 2;
            let end = after + uri[after..].find(['/', '?', '#'])?;
            if !uri[end..].starts_with('/') {
                return None;
            }
            end
        }
        _ => 0,
    };
    let end = uri[start..]
        .find(['?', '#'])
        .map_or(uri.len(), |j| start + j);
    Some(start..end)
}

/// Cuts the URI in `s` to its path (see [`path_range`]), in place: the
/// string keeps its capacity, room for a method before the path.
fn keep_path(s: &mut String) {
    match path_range(s) {
        Some(r) => {
            s.truncate(r.end);
            s.drain(..r.start);
        }
        None => {
            s.clear();
            s.push('/');
        }
    }
}

impl Label {
    /// Whether the current pass reads field `name`.
    fn wants(&self, name: &str) -> bool {
        if self.generic {
            self.shown < MAX_FIELDS && !name.starts_with("otel.")
        } else {
            is_method(name) || name == "otel.name" || path_rank(name).is_some()
        }
    }

    /// Keeps `path` (made by `make`) if `field` is a better path than any so far.
    fn path(&mut self, field: &str, make: impl FnOnce() -> String) {
        if let Some(rank) = path_rank(field) {
            if self.path.as_ref().is_none_or(|(r, _)| rank < *r) {
                self.path = Some((rank, make()));
            }
        }
    }

    fn field(&mut self, field: &Field, value: &str) {
        let name = field.name();
        if self.generic {
            if self.wants(name) {
                self.shown += 1;
                if !self.fields.is_empty() {
                    self.fields.push(' ');
                }
                let _ = write!(self.fields, "{name}={}", clip(value, MAX_VALUE));
            }
            return;
        }
        if name == "otel.name" {
            self.otel_name = Some(value.to_string());
        } else if is_method(name) {
            self.method = Some(Method::of(value));
        }
        self.path(name, || {
            let mut s = scratch(value.len());
            s.push_str(value);
            keep_path(&mut s);
            s
        });
    }

    /// The label of a span named `name` with the fields read.
    fn finish(self, name: &str) -> SpanLabel {
        let Label {
            otel_name,
            method,
            path,
            fields,
            ..
        } = self;
        let mut path = path.map(|(_, p)| p);
        let label = match (otel_name, method, path.as_mut()) {
            (Some(n), _, _) => shared(clip(&n, MAX_LABEL)),
            (None, Some(m), Some(p)) => {
                // Within the room kept for it: as a rule, no new allocation.
                p.insert(0, ' ');
                p.insert_str(0, m.as_str());
                shared(clip(p.as_str(), MAX_LABEL))
            }
            (None, _, _) if fields.is_empty() => shared(clip(name, MAX_LABEL)),
            (None, _, _) => shared(clip(&format!("{name}{{{fields}}}"), MAX_LABEL)),
        };
        // The path's buffer serves the next span's.
        if let Some(p) = path {
            give_back(p);
        }
        label
    }
}

/// Labels this thread made lately, shared by the spans that read the same
/// (requests to one route, on one thread): such a label costs a lookup, not an
/// allocation per span. Its spans have one id (tracing lets a subscriber give
/// spans it holds equal one id), and their handles count references on it: a
/// span's last handle is told apart only once no other span holds the label.
const SHARED_LABELS: usize = 256;
/// The longest buffer kept for formatting the next span's path.
const SCRATCH_KEPT: usize = 1024;

thread_local! {
    static SHARED: std::cell::RefCell<rustc_hash::FxHashSet<SpanLabel>> =
        std::cell::RefCell::new(rustc_hash::FxHashSet::default());
    static SCRATCH: std::cell::Cell<String> = const { std::cell::Cell::new(String::new()) };
}

/// The label reading `text`: one this thread made lately, or a new one it
/// keeps (starting afresh when it keeps [`SHARED_LABELS`]: many distinct
/// labels, as paths with ids in them, cost one allocation each as before).
fn shared(text: &str) -> SpanLabel {
    let found = SHARED.try_with(|s| {
        let mut s = s.try_borrow_mut().ok()?;
        if let Some(l) = s.get(text) {
            return Some(l.clone());
        }
        if s.len() >= SHARED_LABELS {
            s.clear();
        }
        let l: SpanLabel = text.into();
        s.insert(l.clone());
        Some(l)
    });
    found.ok().flatten().unwrap_or_else(|| text.into())
}

/// An empty buffer with room for a path of `len` bytes and a method before
/// it: the one the last span's path was formatted in, if it was given back.
fn scratch(len: usize) -> String {
    let mut s = SCRATCH.try_with(std::cell::Cell::take).unwrap_or_default();
    s.clear();
    s.reserve(METHOD_ROOM + len.max(56));
    s
}

/// Keeps `s` for the next span's path.
fn give_back(s: String) {
    if s.capacity() <= SCRATCH_KEPT {
        let _ = SCRATCH.try_with(|c| c.set(s));
    }
}

fn is_method(field: &str) -> bool {
    matches!(field, "method" | "http.method" | "http.request.method")
}

impl Visit for Label {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(field, value)
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%` fields arrive here formatted with Display, `?` with Debug; only
        // those the label may use are formatted at all, and a request's own
        // fields straight where they are kept.
        let name = field.name();
        if !self.wants(name) {
            return;
        }
        if !self.generic && is_method(name) {
            let mut short = Short::default();
            let _ = write!(short, "{value:?}");
            if let Some(m) = short.as_str() {
                self.method = Some(Method::of(m));
                return;
            }
        } else if !self.generic && path_rank(name).is_some() {
            return self.path(name, || {
                let mut s = scratch(0);
                let _ = write!(s, "{value:?}");
                keep_path(&mut s);
                s
            });
        }
        let mut s = String::new();
        let _ = write!(s, "{value:?}");
        self.field(field, &s)
    }
}

use looptrace_wire::units::clip_bytes as clip;

/// A span's label, shared by its handles and by the events of the polls that
/// entered it (the shipper encodes it from here, without a copy).
pub(crate) type SpanLabel = Arc<str>;

/// A span's label as its span holds it: made for the span from its fields, or
/// its callsite's, when the callsite has no fields (`#[instrument(skip_all)]`):
/// such a label is the span's name whatever the values, so it is made once per
/// callsite and kept for good, and a span of it costs no allocation and no
/// reference count (which two workers would otherwise take turns on).
pub(crate) enum Held {
    Own(SpanLabel),
    Fixed(&'static SpanLabel),
}

impl Held {
    /// The label of the span `attrs` opens.
    pub(crate) fn of(attrs: &tracing_core::span::Attributes<'_>) -> Held {
        match fixed(attrs.metadata()) {
            Some(l) => Held::Fixed(l),
            None => Held::Own(label(attrs)),
        }
    }

    pub(crate) fn as_ref(&self) -> LabelRef<'_> {
        match self {
            Held::Own(l) => LabelRef::Own(l),
            Held::Fixed(l) => LabelRef::Fixed(l),
        }
    }
}

/// A span's label, borrowed.
#[derive(Clone, Copy)]
pub(crate) enum LabelRef<'a> {
    Own(&'a SpanLabel),
    Fixed(&'static SpanLabel),
}

impl LabelRef<'_> {
    /// What a poll entering the span records.
    pub(crate) fn raw(self) -> crate::buffer::Raw {
        match self {
            LabelRef::Own(l) => crate::buffer::Raw::Context(l.clone()),
            LabelRef::Fixed(l) => crate::buffer::Raw::FixedContext(l),
        }
    }
}

/// Callsites (by the address of their static metadata) whose label is fixed,
/// and those labels: an insert-only open-addressing table, read without a lock.
const FIXED_SLOTS: usize = 1024;
const MAX_PROBE: usize = 32;
static FIXED_SITES: [AtomicUsize; FIXED_SLOTS] = [const { AtomicUsize::new(0) }; FIXED_SLOTS];
/// In a table of their own, so that a small number says which (see
/// [`fixed_number`]).
static FIXED_LABELS: [OnceLock<SpanLabel>; FIXED_SLOTS] = [const { OnceLock::new() }; FIXED_SLOTS];

/// A fixed label's number, from 1: small enough to go in a poll's ring slot
/// (0 for a label not in the table, which a fixed one always is).
pub(crate) fn fixed_number(label: &'static SpanLabel) -> u16 {
    let offset = (label as *const SpanLabel as usize).wrapping_sub(FIXED_LABELS.as_ptr() as usize);
    let i = offset / std::mem::size_of::<OnceLock<SpanLabel>>();
    if i < FIXED_SLOTS {
        i as u16 + 1
    } else {
        0
    }
}

/// The fixed label numbered `n` by [`fixed_number`].
pub(crate) fn fixed_label(n: u16) -> Option<&'static SpanLabel> {
    FIXED_LABELS.get((n as usize).checked_sub(1)?)?.get()
}

/// The label kept for a callsite with no fields (None if it has fields, or in
/// the rare race where another thread is making it, or once the table is full:
/// the span then gets a label of its own).
fn fixed(m: &'static Metadata<'static>) -> Option<&'static SpanLabel> {
    if !m.fields().is_empty() {
        return None;
    }
    let addr = m as *const Metadata<'static> as usize;
    // Fibonacci hashing of the address (its low bits are alignment).
    let start = (addr as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 54;
    // A short probe: past it (a crowded table), the span labels itself.
    for probe in 0..MAX_PROBE {
        let i = (start as usize + probe) % FIXED_SLOTS;
        let mut site = FIXED_SITES[i].load(Ordering::Acquire);
        if site == 0 {
            match FIXED_SITES[i].compare_exchange(0, addr, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => {
                    return Some(FIXED_LABELS[i].get_or_init(|| clip(m.name(), MAX_LABEL).into()))
                }
                // Taken meanwhile: by this callsite, or another (probe on).
                Err(now) => site = now,
            }
        }
        if site == addr {
            // Not yet there while another thread is making it: this span
            // labels itself.
            return FIXED_LABELS[i].get();
        }
    }
    None
}

/// Keys of context spans have this bit set (tokio task ids never reach it, nor
/// does a user-space address).
pub(crate) const CONTEXT_BIT: u64 = 1 << 63;
/// Set in the key of a span whose label is its callsite's (the key is the
/// label's address, which is 8-aligned).
const FIXED_BIT: u64 = 1;
/// A key of a span with a label of its own holds the label's address (a
/// user-space one: below 2^48) and, above it, the label's length.
const ADDR_BITS: u32 = 48;
const ADDR_MASK: u64 = (1 << ADDR_BITS) - 1;
const MAX_KEY_LEN: u64 = (1 << (63 - ADDR_BITS)) - 1;

/// The key of a new context span of the standalone subscriber (which keeps no
/// span registry), tagged with [`CONTEXT_BIT`]: for a span with its own label,
/// that label's address and length (the span's handles own its references);
/// for a fixed label, that label's address. No table, no lock, no allocation
/// beyond the label itself. `None` for a label this cannot say in a key (an
/// address past 2^48): the span is then not a context.
pub(crate) fn open(held: Held) -> Option<u64> {
    match held {
        Held::Fixed(l) => {
            let addr = l as *const SpanLabel as usize as u64;
            (addr & !ADDR_MASK == 0).then_some(addr | FIXED_BIT | CONTEXT_BIT)
        }
        Held::Own(label) => {
            let len = label.len() as u64;
            let ptr = Arc::into_raw(label);
            let addr = ptr as *const u8 as usize as u64;
            if addr & !ADDR_MASK != 0 || addr & FIXED_BIT != 0 || len > MAX_KEY_LEN {
                // SAFETY: `ptr` came from `Arc::into_raw` just above.
                drop(unsafe { Arc::from_raw(ptr) });
                return None;
            }
            Some(addr | len << ADDR_BITS | CONTEXT_BIT)
        }
    }
}

/// The label of a key of a span with its own label (as `Arc::into_raw` gave it).
fn own_ptr(key: u64) -> *const str {
    let addr = (key & ADDR_MASK) as usize as *const u8;
    let len = ((key & !CONTEXT_BIT) >> ADDR_BITS) as usize;
    std::ptr::slice_from_raw_parts(addr, len) as *const str
}

/// The label of a key of a span with a fixed label.
fn fixed_ptr(key: u64) -> *const SpanLabel {
    (key & ADDR_MASK & !FIXED_BIT) as usize as *const SpanLabel
}

/// One more handle on a context span.
pub(crate) fn clone(key: u64) {
    if key & FIXED_BIT == 0 {
        // SAFETY: `key` is an id this subscriber made in `open` (tracing hands a
        // subscriber only its own ids), whose label lives while a handle does.
        unsafe { Arc::increment_strong_count(own_ptr(key)) }
    }
}

/// One handle fewer; true if that was the last of the span. Never said of a
/// fixed label, and of a shared one (see [`SHARED_LABELS`]) only once nothing
/// else holds it: `false` means "maybe not", as tracing allows.
pub(crate) fn close(key: u64) -> bool {
    if key & FIXED_BIT != 0 {
        return false;
    }
    // SAFETY: as in `clone`; tracing closes each handle once.
    let label = unsafe { Arc::from_raw(own_ptr(key)) };
    Arc::strong_count(&label) == 1
}

/// Entering context span `key` (standalone subscriber).
pub(crate) fn enter(key: u64) {
    if !crate::capture::wants_context() {
        return;
    }
    if key & FIXED_BIT != 0 {
        // SAFETY: a fixed label lives for good.
        let label: &'static SpanLabel = unsafe { &*fixed_ptr(key) };
        return crate::capture::on_context(LabelRef::Fixed(label));
    }
    // SAFETY: as in `clone`; borrowed for the call, the count left as it is.
    let label = std::mem::ManuallyDrop::new(unsafe { Arc::from_raw(own_ptr(key)) });
    crate::capture::on_context(LabelRef::Own(&label));
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use tracing::field::Empty;
    use tracing_core::span::{Attributes, Id, Record};

    /// What `see` makes of the attributes of the span `f` creates.
    pub(crate) fn seen<T: Send + 'static>(
        f: impl FnOnce() -> tracing::Span,
        see: fn(&Attributes<'_>) -> T,
    ) -> T {
        struct Grab<T>(Mutex<Option<T>>, fn(&Attributes<'_>) -> T);
        impl<T: Send + 'static> tracing::Subscriber for Grab<T> {
            fn enabled(&self, _: &Metadata<'_>) -> bool {
                true
            }
            fn new_span(&self, a: &Attributes<'_>) -> Id {
                *self.0.lock().unwrap() = Some((self.1)(a));
                Id::from_u64(1)
            }
            fn record(&self, _: &Id, _: &Record<'_>) {}
            fn record_follows_from(&self, _: &Id, _: &Id) {}
            fn event(&self, _: &tracing::Event<'_>) {}
            fn enter(&self, _: &Id) {}
            fn exit(&self, _: &Id) {}
        }
        let grab = Arc::new(Grab(Mutex::new(None), see));
        tracing::subscriber::with_default(grab.clone(), || drop(f()));
        let got = grab.0.lock().unwrap().take();
        got.expect("a span")
    }

    /// What looptrace makes of the span `f` creates: its label, and whether it
    /// is a context at all.
    fn read(f: impl FnOnce() -> tracing::Span) -> (String, bool) {
        seen(f, |a| (label(a).to_string(), is_context(a.metadata())))
    }

    fn label_of(f: impl FnOnce() -> tracing::Span) -> String {
        read(f).0
    }

    #[test]
    fn a_uri_reads_as_its_path() {
        let path = |uri: &str| {
            let mut s = uri.to_string();
            keep_path(&mut s);
            s
        };
        assert_eq!(path("/a/b?c=d"), "/a/b");
        assert_eq!(path("/a#frag"), "/a");
        assert_eq!(path("http://h:80/a/b?x"), "/a/b");
        assert_eq!(path("https://h"), "/");
        assert_eq!(path("https://h?q"), "/");
        // A query with a slash in it is no path (nor shown).
        assert_eq!(path("https://h?token=a/b"), "/");
        assert_eq!(path("https://h#x/y"), "/");
        assert_eq!(path("h:80/a"), "h:80/a");
        // `://` after the first slash is part of the path, not a scheme's.
        assert_eq!(path("/redirect/http://x/y"), "/redirect/http://x/y");
        assert_eq!(path("*"), "*");
        assert_eq!(path(""), "");
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
        // A method of its own, a URL with no path, a path read with `?`, one
        // longer than the room first made for it.
        assert_eq!(
            label_of(|| tracing::info_span!("req", method = %"PURGE", uri = %"http://cache:80")),
            "PURGE /"
        );
        assert_eq!(
            label_of(|| tracing::info_span!("req", method = ?"GET", path = ?"/q?x=1")),
            "\"GET\" \"/q"
        );
        let deep = format!("/{}", "segment/".repeat(12));
        assert_eq!(
            label_of(
                || tracing::info_span!("req", method = %"DELETE", uri = %format!("{deep}?a=b"))
            ),
            format!("DELETE {deep}")
        );
        let long = "x".repeat(500);
        assert!(
            label_of(|| tracing::info_span!("req", method = "GET", path = %long)).len()
                <= MAX_LABEL
        );
    }

    #[test]
    fn a_span_id_owns_its_label_until_its_last_handle_closes() {
        let label: SpanLabel = "GET /x".into();
        let weak = Arc::downgrade(&label);
        let key = open(Held::Own(label)).expect("a user-space address");
        assert_ne!(key & CONTEXT_BIT, 0);
        clone(key); // a second handle
        assert!(!close(key), "one handle left");
        assert_eq!(weak.upgrade().as_deref(), Some("GET /x"));
        assert!(close(key), "the last handle");
        assert!(weak.upgrade().is_none(), "the label is freed with it");
    }

    #[test]
    fn a_callsite_with_no_fields_has_one_label_for_good() {
        // The subscriber's view of two spans of one fieldless callsite (as
        // `#[instrument(skip_all)]` makes), and of a span with a field.
        fn open_span(f: impl FnOnce() -> tracing::Span) -> u64 {
            seen(f, |a| open(Held::of(a))).expect("a key")
        }
        fn handler() -> tracing::Span {
            tracing::info_span!("handler")
        }
        let (a, b) = (open_span(handler), open_span(handler));
        assert_eq!(a, b, "one label, one key, for every span of the callsite");
        assert_ne!(a & FIXED_BIT, 0);
        // SAFETY: a fixed label lives for good.
        assert_eq!(&**unsafe { &*fixed_ptr(a) }, "handler");
        // Its handles count nothing and never free it.
        clone(a);
        assert!(!close(a) && !close(a));
        assert_eq!(&**unsafe { &*fixed_ptr(a) }, "handler");
        // A span with fields has a label made from them.
        let own = open_span(|| tracing::info_span!("handler", user = 7));
        assert_eq!(own & FIXED_BIT, 0);
        // SAFETY: its one handle is still open.
        assert_eq!(unsafe { &*own_ptr(own) }, "handler{user=7}");
        // Another span reading the same shares it (the thread keeps it); one
        // reading otherwise does not.
        let again = open_span(|| tracing::info_span!("handler", user = 7));
        assert_eq!(again, own, "one label for both spans");
        let other = open_span(|| tracing::info_span!("handler", user = 8));
        assert_ne!(other, own);
        // SAFETY: each span's one handle is still open.
        assert_eq!(unsafe { &*own_ptr(other) }, "handler{user=8}");
        assert!(!close(own) && !close(again) && !close(other));
    }

    #[test]
    fn a_fixed_label_goes_by_a_small_number_and_back() {
        let fixed_of = |f: fn() -> tracing::Span| seen(f, |a| fixed(a.metadata()));
        let a = fixed_of(|| tracing::info_span!("numbered_a")).expect("no fields: fixed");
        let b = fixed_of(|| tracing::info_span!("numbered_b")).expect("no fields: fixed");
        let (na, nb) = (fixed_number(a), fixed_number(b));
        assert!(na >= 1 && nb >= 1 && na != nb && na as usize <= FIXED_SLOTS);
        assert!(std::ptr::eq(fixed_label(na).unwrap(), a));
        assert!(std::ptr::eq(fixed_label(nb).unwrap(), b));
        assert_eq!(&**fixed_label(na).unwrap(), "numbered_a");
        assert!(fixed_label(0).is_none() && fixed_label(FIXED_SLOTS as u16 + 1).is_none());
        // A label from elsewhere has no number.
        let elsewhere: &'static SpanLabel = Box::leak(Box::new("elsewhere".into()));
        assert_eq!(fixed_number(elsewhere), 0);
    }

    #[test]
    fn a_thread_keeps_a_bounded_number_of_labels() {
        let first = shared("GET /items/0");
        assert!(Arc::ptr_eq(&first, &shared("GET /items/0")));
        for i in 1..=SHARED_LABELS {
            drop(shared(&format!("GET /items/{i}")));
        }
        SHARED.with(|s| assert!(s.borrow().len() <= SHARED_LABELS));
        // Started afresh: the first label was let go, and is made anew.
        assert_eq!(Arc::strong_count(&first), 1);
        assert!(!Arc::ptr_eq(&first, &shared("GET /items/0")));
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
