//! A traced program's note (a demo's lesson) reaches viewers with its session,
//! whether it is set before the session opens or changed later.

use looptrace_collector::embedded::Embedded;
use looptrace_collector::hub::HubConfig;
use looptrace_wire::{encode_header, Flavor, FrameSink, Header};

#[test]
fn a_note_set_before_or_after_the_session_opens_is_in_the_session_list() {
    let (mut sink, handle) = Embedded::serve("127.0.0.1:0".parse().unwrap(), HubConfig::default()).unwrap();
    handle.set_note("what to watch for", "the timer");
    let header = Header { process_name: "noted".into(), pid: 1, flavor: Flavor::CurrentThread, workers: 1, clock_origin_unix_ns: 0 };
    let mut frame = Vec::new();
    encode_header(&header, &mut frame);
    sink.frame(&frame);
    let hub = handle.hub();
    let mut updates = hub.subscribe();
    let sessions = hub.sessions();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["note"]["title"], "what to watch for");
    assert_eq!(sessions[0]["note"]["text"], "the timer");
    handle.set_note("what happened", "Bob first");
    assert!(matches!(updates.try_recv(), Ok(looptrace_collector::hub::Update::Sessions)), "viewers are told the list changed");
    assert_eq!(hub.sessions()[0]["note"]["title"], "what happened");
    // No note: null.
    let (mut bare_sink, bare) = Embedded::serve("127.0.0.1:0".parse().unwrap(), HubConfig::default()).unwrap();
    let mut plain = Vec::new();
    encode_header(&Header { process_name: "plain".into(), ..header }, &mut plain);
    bare_sink.frame(&plain);
    assert!(bare.hub().sessions()[0]["note"].is_null());
}
