//! A traced program's note (a demo's lesson) reaches viewers with its session,
//! whether it is set before the session opens or changed later.

use looptrace_collector::embedded::Embedded;
use looptrace_collector::hub::HubConfig;
use looptrace_wire::{encode_header, Flavor, FrameSink, Header};

#[test]
fn a_note_set_before_or_after_the_session_opens_is_in_the_session_list() {
    let (mut sink, handle) =
        Embedded::serve("127.0.0.1:0".parse().unwrap(), HubConfig::default()).unwrap();
    handle.set_note("what to watch for", "the timer");
    let header = Header {
        process_name: "noted".into(),
        pid: 1,
        flavor: Flavor::CurrentThread,
        workers: 1,
        clock_origin_unix_ns: 0,
    };
    let mut frame = Vec::new();
    encode_header(&header, &mut frame);
    sink.frame(&frame);
    let hub = handle.hub();
    let mut updates = hub.subscribe();
    let sessions = hub.sessions();
    assert_eq!(sessions.len(), 1);
    assert_eq!(
        sessions[0].note.as_ref().unwrap().title,
        "what to watch for"
    );
    assert_eq!(sessions[0].note.as_ref().unwrap().text, "the timer");
    handle.set_note("what happened", "Bob first");
    assert!(
        matches!(
            updates.try_recv(),
            Ok(looptrace_collector::hub::Update::Sessions)
        ),
        "viewers are told the list changed"
    );
    assert_eq!(
        hub.sessions()[0].note.as_ref().unwrap().title,
        "what happened"
    );
    // No note: null.
    let (mut bare_sink, bare) =
        Embedded::serve("127.0.0.1:0".parse().unwrap(), HubConfig::default()).unwrap();
    let mut plain = Vec::new();
    encode_header(
        &Header {
            process_name: "plain".into(),
            ..header
        },
        &mut plain,
    );
    bare_sink.frame(&plain);
    assert!(bare.hub().sessions()[0].note.is_none());
}

#[test]
fn a_traced_program_sends_its_own_note() {
    let (sink, handle) =
        Embedded::serve("127.0.0.1:0".parse().unwrap(), HubConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("noted.ltrace");
    let rt = looptrace::Builder::new_current_thread()
        .from_env(false)
        .sink(sink)
        .record(&path)
        .build()
        .unwrap();
    rt.block_on(async {
        looptrace::note("first", "one");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        looptrace::note("second", "two\nthree");
    });
    rt.shutdown();
    // The embedded collector shows the latest; the recording keeps both, in order.
    let sessions = handle.hub().sessions();
    assert_eq!(sessions[0].note.as_ref().unwrap().title, "second");
    assert_eq!(sessions[0].note.as_ref().unwrap().text, "two\nthree");
    let rec = looptrace_wire::Recording::open(&path).unwrap();
    let titles: Vec<_> = rec.notes.iter().map(|n| n.title.as_str()).collect();
    assert_eq!(titles, ["first", "second"]);
}
