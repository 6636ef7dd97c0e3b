//! Property tests: every event survives the codec and the recording file, and no
//! damaged input makes the decoder panic.

use looptrace_wire::*;
use proptest::prelude::*;

fn arb_source() -> impl Strategy<Value = WakeSource> {
    prop_oneof![
        any::<u64>().prop_map(WakeSource::Task),
        Just(WakeSource::Timer),
        Just(WakeSource::Io),
        Just(WakeSource::Blocking),
        Just(WakeSource::External),
    ]
}

fn arb_kind() -> impl Strategy<Value = EventKind> {
    let op = prop_oneof![
        Just(WakeOp::Wake),
        Just(WakeOp::WakeByRef),
        Just(WakeOp::Clone),
        Just(WakeOp::Drop)
    ];
    let role = prop_oneof![
        any::<u32>().prop_map(ThreadRole::Worker),
        Just(ThreadRole::Blocking),
        Just(ThreadRole::External)
    ];
    let task_kind = prop_oneof![
        Just(TaskKind::Task),
        Just(TaskKind::Local),
        Just(TaskKind::Blocking)
    ];
    let outcome = prop_oneof![
        Just(Outcome::Completed),
        Just(Outcome::Cancelled),
        Just(Outcome::Panicked)
    ];
    prop_oneof![
        (role, ".{0,12}").prop_map(|(role, name)| EventKind::Thread { role, name }),
        (
            any::<u64>(),
            task_kind,
            proptest::option::of(".{0,12}"),
            ".{0,20}",
            any::<Option<u64>>(),
            any::<Option<u64>>()
        )
            .prop_map(|(task, kind, name, location, parent, size_bytes)| {
                EventKind::Spawn(Box::new(looptrace_wire::Spawn {
                    task,
                    kind,
                    name,
                    location,
                    parent,
                    size_bytes,
                }))
            }),
        (any::<u64>(), outcome).prop_map(|(task, outcome)| EventKind::Terminate { task, outcome }),
        any::<u64>().prop_map(|task| EventKind::PollStart { task }),
        (
            any::<u64>(),
            any::<bool>(),
            0..3u32,
            any::<u32>(),
            any::<u32>(),
            // The poll's context carried by its end, or not; labels that repeat
            // with the context events' own (one table for both).
            prop_oneof![
                Just(None),
                Just(Some("GET /a".to_string())),
                proptest::option::of(".{0,24}")
            ]
        )
            .prop_map(
                |(task, ready, shape, clones, drops, context)| EventKind::PollEnd {
                    task,
                    ready,
                    // A third without waker operations (the short form).
                    clones: if shape == 0 { 0 } else { clones },
                    drops: if shape < 2 { 0 } else { drops },
                    context: context.map(Into::into),
                }
            ),
        (any::<u64>(), op, arb_source()).prop_map(|(task, op, by)| EventKind::Waker {
            task,
            op,
            by
        }),
        Just(EventKind::Park),
        Just(EventKind::Unpark),
        any::<u64>().prop_map(|task| EventKind::BlockingStart { task }),
        any::<u64>().prop_map(|task| EventKind::BlockingEnd { task }),
        (any::<u64>(), any::<u64>())
            .prop_map(|(task, deadline_ns)| EventKind::TimerArmed { task, deadline_ns }),
        any::<u64>().prop_map(|task| EventKind::TimerFired { task }),
        any::<u64>().prop_map(|count| EventKind::Dropped { count }),
        ".{0,24}".prop_map(|label| EventKind::Mark { label }),
        // Labels that repeat (said once per frame, then by index) and others.
        (
            any::<u64>(),
            prop_oneof![
                Just("GET /a".to_string()),
                Just("job".to_string()),
                ".{0,24}"
            ]
        )
            .prop_map(|(task, label)| EventKind::Context {
                task,
                label: label.into()
            }),
        (
            prop::collection::vec((any::<u32>(), any::<u64>()), 0..4),
            any::<u32>()
        )
            .prop_map(|(w, injection)| {
                EventKind::Queues(Box::new(looptrace_wire::Queues {
                    local: w.iter().map(|x| x.0).collect(),
                    steals: w.iter().map(|x| x.1).collect(),
                    injection,
                }))
            }),
    ]
}

fn arb_event() -> impl Strategy<Value = Event> {
    (any::<u64>(), any::<u32>(), arb_kind()).prop_map(|(ts_ns, thread, kind)| Event {
        ts_ns,
        thread,
        kind,
    })
}

fn header() -> Header {
    Header {
        process_name: "test".into(),
        pid: 7,
        flavor: Flavor::MultiThread,
        workers: 2,
        clock_origin_unix_ns: 1_700_000_000_000_000_000,
    }
}

proptest! {
    /// Read into a buffer in chunks of any size, a frame gives what its iterator
    /// gives; damaged (cut short, or with a byte appended), the same events
    /// before the same error.
    #[test]
    fn reading_into_a_buffer_gives_what_the_iterator_gives(
        events in proptest::collection::vec(arb_event(), 1..64),
        chunk in 1usize..70,
        damage in 0u8..3,
    ) {
        let mut buf = Vec::new();
        encode_events(&events, &mut buf);
        match damage {
            1 => { buf.pop(); }
            2 => buf.push(0),
            _ => {}
        }
        let Ok(r) = EventsReader::new(&buf) else { return Ok(()) };
        let mut want = Vec::new();
        let mut want_err = None;
        for e in r {
            match e {
                Ok(e) => want.push(e),
                Err(e) => want_err = Some(e),
            }
        }
        let mut r = EventsReader::new(&buf).unwrap();
        let mut got = Vec::new();
        let mut got_err = None;
        while got_err.is_none() && !r.is_empty() {
            got_err = r.read_into(&mut got, chunk).err();
        }
        if damage == 0 {
            prop_assert_eq!(&got, &events);
        }
        prop_assert_eq!(got, want);
        prop_assert_eq!(got_err, want_err);
    }

    #[test]
    fn events_round_trip(events in proptest::collection::vec(arb_event(), 0..64)) {
        let mut buf = Vec::new();
        encode_events(&events, &mut buf);
        prop_assert_eq!(decode_frame(&buf), Ok(Frame::Events(events)));
    }

    #[test]
    fn streamed_events_round_trip(events in proptest::collection::vec(arb_event(), 0..64), cut in 0usize..64) {
        // Written one at a time, read one at a time, and read again as two runs cut
        // anywhere (as the collector's store keeps them).
        let mut buf = Vec::new();
        let mut w = EventsWriter::new(&mut buf);
        for e in &events {
            w.push(e);
        }
        prop_assert_eq!(w.finish(), events.len() as u64);
        prop_assert_eq!(decode_frame(&buf), Ok(Frame::Events(events.clone())));
        let cut = cut.min(events.len());
        let mut r = EventsReader::new(&buf).unwrap();
        let head: Vec<Event> = r.by_ref().take(cut).collect::<Result<_, _>>().unwrap();
        let (at, base) = (r.position(), r.prev_ns());
        prop_assert_eq!(&head[..], &events[..cut]);
        // A run may be cut where no label was said before it.
        let said = head.iter().any(|e| e.kind.context().is_some());
        prop_assert_eq!(r.can_cut(), !said);
        if r.can_cut() {
            let tail: Vec<Event> = EventsReader::run(&buf[at..], (events.len() - cut) as u64, base)
                .collect::<Result<_, _>>()
                .unwrap();
            prop_assert_eq!(&tail[..], &events[cut..]);
        }
    }

    #[test]
    fn header_round_trips(name in ".{0,30}", pid in any::<u32>(), workers in any::<u32>(), origin in any::<u64>()) {
        let h = Header { process_name: name, pid, flavor: Flavor::CurrentThread, workers, clock_origin_unix_ns: origin };
        let mut buf = Vec::new();
        encode_header(&h, &mut buf);
        prop_assert_eq!(decode_frame(&buf), Ok(Frame::Header(h)));
    }

    #[test]
    fn note_round_trips_and_every_truncation_is_an_error(title in ".{0,30}", text in ".{0,200}") {
        let note = Note { title, text };
        let mut buf = Vec::new();
        encode_note(&note, &mut buf);
        prop_assert_eq!(decode_frame(&buf), Ok(Frame::Note(note)));
        for cut in 0..buf.len() {
            prop_assert!(decode_frame(&buf[..cut]).is_err(), "cut at {} decoded", cut);
        }
    }

    #[test]
    fn every_truncation_is_an_error(events in proptest::collection::vec(arb_event(), 1..16)) {
        let mut buf = Vec::new();
        encode_events(&events, &mut buf);
        for cut in 0..buf.len() {
            prop_assert!(decode_frame(&buf[..cut]).is_err(), "cut at {} decoded", cut);
        }
    }

    #[test]
    fn corrupted_bytes_never_panic(events in proptest::collection::vec(arb_event(), 1..16), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let mut buf = Vec::new();
        encode_events(&events, &mut buf);
        for (at, byte) in flips {
            let i = at % buf.len();
            buf[i] ^= byte | 1;
        }
        let _ = decode_frame(&buf);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode_frame(&bytes);
        let _ = Recording::from_reader(&bytes[..]);
    }

    #[test]
    fn recording_cut_anywhere_reads_back_whole_chunks(
        batches in proptest::collection::vec(proptest::collection::vec(arb_event(), 1..8), 1..6),
        cut_frac in 0.0f64..1.0,
    ) {
        let mut w = RecordingWriter::new(Vec::new(), &header()).unwrap();
        let mut ends = Vec::new(); // file length after each chunk
        for b in &batches {
            w.write_events(b).unwrap();
            ends.push(w.get_ref().len());
        }
        let file = w.into_inner();
        let first_chunk_end = ends[0] - chunk_len(&batches[0]);
        let cut = first_chunk_end + ((file.len() - first_chunk_end) as f64 * cut_frac) as usize;
        let rec = Recording::from_reader(&file[..cut]).unwrap();
        let whole = ends.iter().filter(|&&e| e <= cut).count();
        let expected: Vec<Event> = batches[..whole].iter().flatten().cloned().collect();
        prop_assert_eq!(&rec.events, &expected);
        let at_chunk_boundary = cut == first_chunk_end || ends.contains(&cut);
        prop_assert_eq!(rec.damage.is_empty(), at_chunk_boundary);
        if !at_chunk_boundary {
            // A torn tail: the writer stopped, nothing else is wrong.
            prop_assert_eq!(rec.damage.len(), 1);
            prop_assert!(rec.damage[0].is_torn_tail(), "{}", rec.damage[0]);
            prop_assert_eq!(rec.damage[0].offset as usize, ends.iter().copied().filter(|&e| e <= cut).max().unwrap_or(first_chunk_end).max(first_chunk_end));
        }
    }

    #[test]
    fn damage_in_any_chunk_loses_that_chunk_only(
        batches in proptest::collection::vec(proptest::collection::vec(arb_event(), 1..8), 2..6),
        which in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let mut w = RecordingWriter::new(Vec::new(), &header()).unwrap();
        let mut starts = Vec::new();
        for b in &batches {
            starts.push(w.get_ref().len());
            w.write_events(b).unwrap();
        }
        let mut file = w.into_inner();
        let k = which.index(batches.len());
        let end = starts.get(k + 1).copied().unwrap_or(file.len());
        // Any byte of chunk k: its marker, length, checksum or payload.
        let i = starts[k] + at.index(end - starts[k]);
        file[i] ^= flip;
        let rec = Recording::from_reader(&file[..]).unwrap();
        let expected: Vec<Event> = batches
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != k)
            .flat_map(|(_, b)| b.iter().cloned())
            .collect();
        prop_assert_eq!(&rec.events, &expected);
        prop_assert_eq!(rec.damage.len(), 1, "{:?}", rec.damage);
        prop_assert_eq!(rec.damage[0].offset as usize, starts[k]);
        prop_assert!(!rec.damage[0].is_torn_tail(), "{}", rec.damage[0]);
        prop_assert_eq!(rec.damage[0].skipped as usize, end - starts[k]);
    }
}

fn chunk_len(events: &[Event]) -> usize {
    let mut buf = Vec::new();
    encode_events(events, &mut buf);
    buf.len() + 16
}

#[test]
fn recording_round_trips_and_detects_corruption() {
    let events = vec![
        Event {
            ts_ns: 5,
            thread: 0,
            kind: EventKind::PollStart { task: 1 },
        },
        Event {
            ts_ns: 9,
            thread: 0,
            kind: EventKind::PollEnd {
                clones: 0,
                drops: 0,
                task: 1,
                ready: true,
                context: None,
            },
        },
    ];
    let mut w = RecordingWriter::new(Vec::new(), &header()).unwrap();
    w.write_events(&events[..1]).unwrap();
    w.write_events(&events[1..]).unwrap();
    let mut file = w.into_inner();
    let rec = Recording::from_reader(&file[..]).unwrap();
    assert_eq!(rec.header, header());
    assert_eq!(rec.events, events);
    assert!(rec.damage.is_empty());

    // Flip a byte of the last chunk's payload: the first chunk survives, the damage
    // says where and why.
    let last = file.len() - 1;
    file[last] ^= 0x55;
    let rec = Recording::from_reader(&file[..]).unwrap();
    assert_eq!(rec.events, events[..1]);
    let damage = &rec.damage[0];
    assert!(matches!(damage.kind, DamageKind::Corrupt(_)), "{damage}");
    assert!(damage.to_string().contains("checksum"), "{damage}");

    assert!(matches!(
        Recording::from_reader(&b"NOTATRACE\0\0\0"[..]),
        Err(RecordingError::Magic)
    ));
    let mut v2 = file.clone();
    v2[8] = 9;
    assert!(matches!(
        Recording::from_reader(&v2[..]),
        Err(RecordingError::Version(9))
    ));
}

#[test]
fn notes_are_kept_in_recordings_and_appended_only_to_whole_ones() {
    let dir = std::env::temp_dir().join(format!("looptrace-notes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("noted.ltrace");
    let first = Note {
        title: "watch for".into(),
        text: "the timer".into(),
    };
    let last = Note {
        title: "what happened".into(),
        text: "Bob first\nthen Alice".into(),
    };
    let mut w = RecordingWriter::create(&path, &header()).unwrap();
    w.write_note(&first).unwrap();
    w.write_events(&[Event {
        ts_ns: 5,
        thread: 0,
        kind: EventKind::PollStart { task: 1 },
    }])
    .unwrap();
    drop(w);
    looptrace_wire::append_note(&path, &last).unwrap();
    let rec = Recording::open(&path).unwrap();
    assert!(rec.damage.is_empty());
    assert_eq!(rec.notes, vec![first.clone(), last.clone()]);
    assert_eq!(rec.events.len(), 1);
    // A torn tail: appending after it would be unreadable, so it is refused.
    let len = std::fs::metadata(&path).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(len - 3).unwrap();
    let err = looptrace_wire::append_note(&path, &first).unwrap_err();
    assert!(matches!(err, RecordingError::Damaged(_)), "{err}");
    assert!(
        err.to_string()
            .starts_with("cannot add to a damaged recording"),
        "{err}"
    );
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        len - 3,
        "nothing written"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A context label is written out once per frame, then referred to by index; a
/// frame with more distinct labels than a run says by index still round-trips.
#[test]
fn context_labels_are_said_once_per_frame() {
    let ctx = |task, label: &str| Event {
        ts_ns: task * 10,
        thread: 0,
        kind: EventKind::Context {
            task,
            label: label.into(),
        },
    };
    let label = "GET /a/rather/long/route/{id}";
    let one = {
        let mut buf = Vec::new();
        encode_events(&[ctx(1, label)], &mut buf);
        buf.len()
    };
    let events: Vec<Event> = (1..=100).map(|t| ctx(t, label)).collect();
    let mut buf = Vec::new();
    encode_events(&events, &mut buf);
    assert!(
        buf.len() < one + 99 * 6,
        "100 uses of one label took {} bytes (one took {one})",
        buf.len()
    );
    assert_eq!(decode_frame(&buf), Ok(Frame::Events(events)));

    let many: Vec<Event> = (0..3 * MAX_RUN_LABELS as u64)
        .map(|t| ctx(t, &format!("label {}", t % (2 * MAX_RUN_LABELS as u64))))
        .collect();
    let mut buf = Vec::new();
    encode_events(&many, &mut buf);
    assert_eq!(decode_frame(&buf), Ok(Frame::Events(many)));

    // Past 64 labels, the newest still go by index (each takes the place of
    // the one said longest ago): a label per request, polled twice each.
    let label = |i: u64| format!("GET /items/{i}/with/a/longer/route");
    let once: Vec<Event> = (0..300).map(|i| ctx(i, &label(i))).collect();
    let twice: Vec<Event> = (0..600).map(|i| ctx(i, &label(i / 2))).collect();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    encode_events(&once, &mut a);
    encode_events(&twice, &mut b);
    assert!(
        b.len() <= a.len() + 300 * 6,
        "the second use of each label is an index: {} bytes, {} for one use each",
        b.len(),
        a.len()
    );
    assert_eq!(decode_frame(&b), Ok(Frame::Events(twice)));
}

/// A poll's end carrying its context says the label by index after the first
/// time, whether the first was a context event or another poll's end.
#[test]
fn poll_ends_share_the_frames_labels() {
    let at = |ts, kind| Event {
        ts_ns: ts,
        thread: 0,
        kind,
    };
    let end = |task, context: Option<&str>| EventKind::PollEnd {
        task,
        ready: false,
        clones: 1,
        drops: 1,
        context: context.map(Into::into),
    };
    let label = "GET /a/rather/long/route/{id}";
    let size = |events: &[Event]| {
        let mut buf = Vec::new();
        encode_events(events, &mut buf);
        assert_eq!(decode_frame(&buf), Ok(Frame::Events(events.to_vec())));
        buf.len()
    };
    // The first to say a label may be a poll's end; a context event after
    // refers to it.
    let first_an_end = vec![
        at(1, end(1, Some(label))),
        at(
            2,
            EventKind::Context {
                task: 2,
                label: label.into(),
            },
        ),
        at(3, end(2, Some(label))),
    ];
    assert!(size(&first_an_end) < 2 * label.len());
    let plain: Vec<Event> = (1..=100).map(|t| at(t, end(t, None))).collect();
    let folded: Vec<Event> = std::iter::once(at(
        0,
        EventKind::Context {
            task: 9,
            label: label.into(),
        },
    ))
    .chain((1..=100).map(|t| at(t, end(t, Some(label)))))
    .collect();
    // The context event says the text; each end adds a flags byte and an index.
    assert!(
        size(&folded) <= size(&plain) + label.len() + 8 + 100 * 2,
        "{} bytes folded, {} without contexts",
        size(&folded),
        size(&plain)
    );
}

/// A poll's end with unknown flags, or referring to a label its run never said,
/// is an error.
#[test]
fn a_poll_end_with_a_bad_context_is_refused() {
    // version, events frame, one event: tag 22, delta 0, thread 0, task 1,
    // flags, then an index.
    let frame = |flags: u8| vec![WIRE_VERSION, 2, 1, 22, 0, 0, 1, flags, 0];
    for flags in [8u8, 0x80, 0xff] {
        assert!(
            matches!(decode_frame(&frame(flags)), Err(DecodeError::Tag { .. })),
            "flags {flags}"
        );
    }
    // Flag 4: the label by index, and the run said none.
    assert!(matches!(
        decode_frame(&frame(4)),
        Err(DecodeError::Range(_))
    ));
    // Flag 0: the label's text, here an empty string: well formed.
    assert!(decode_frame(&frame(0)).is_ok());
    // Cut anywhere, it is an error.
    let whole = frame(0);
    for n in 0..whole.len() {
        assert!(decode_frame(&whole[..n]).is_err(), "cut at {n}");
    }
}

/// A context that refers to a label its run never said is an error, not a
/// panic or a wrong label.
#[test]
fn a_label_never_said_is_refused() {
    let e = Event {
        ts_ns: 5,
        thread: 0,
        kind: EventKind::Context {
            task: 1,
            label: "x".into(),
        },
    };
    let mut buf = Vec::new();
    encode_events(&[e.clone(), e], &mut buf);
    // The second is a reference (index 0): cut the first out, it refers to nothing.
    let mut r = EventsReader::new(&buf).unwrap();
    r.next().unwrap().unwrap();
    let (at, base) = (r.position(), r.prev_ns());
    let err = EventsReader::run(&buf[at..], 1, base).next().unwrap();
    assert!(matches!(err, Err(DecodeError::Range(_))), "{err:?}");
}
