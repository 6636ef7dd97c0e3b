//! Runs a program on a captured runtime and hands back its decoded events.
#![allow(dead_code)]

use looptrace::wire::{
    decode_frame, Event, EventKind, Frame, FrameSink, Header, ThreadRole, WakeOp, WakeSource,
};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

/// One capture session per process at a time: tests take turns.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Clone, Default)]
pub struct Memory(pub Arc<Mutex<Vec<Vec<u8>>>>);

impl FrameSink for Memory {
    fn frame(&mut self, frame: &[u8]) {
        self.0.lock().unwrap().push(frame.to_vec());
    }
}

pub struct Trace {
    pub header: Header,
    pub events: Vec<Event>,
    pub report: looptrace::Report,
}

/// A runtime of `builder` (the environment not read) shipping into memory.
pub fn in_memory(builder: looptrace::Builder) -> (looptrace::Runtime, Memory) {
    let mem = Memory::default();
    let rt = builder
        .from_env(false)
        .sink(mem.clone())
        .build()
        .expect("runtime");
    (rt, mem)
}

impl Memory {
    /// Frames shipped so far.
    pub fn frames(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// The session's header (its first frame).
    pub fn header(&self) -> Header {
        let first = self.0.lock().unwrap().first().cloned();
        match first.map(|f| decode_frame(&f)) {
            Some(Ok(Frame::Header(h))) => h,
            other => panic!("a header frame first, not {other:?}"),
        }
    }

    /// Every event shipped, each with the index of the frame it came in.
    pub fn events(&self) -> Vec<(usize, Event)> {
        let frames = self.0.lock().unwrap().clone();
        let mut out = Vec::new();
        for (i, f) in frames.iter().enumerate() {
            if let Frame::Events(e) = decode_frame(f).expect("frame decodes") {
                out.extend(e.into_iter().map(|e| (i, e)));
            }
        }
        out
    }
}

pub fn run<F: Future>(builder: looptrace::Builder, f: impl FnOnce() -> F) -> (Trace, F::Output) {
    let (rt, mem) = in_memory(builder);
    let out = rt.block_on(f());
    let report = rt.shutdown();
    (
        Trace {
            header: mem.header(),
            events: mem.events().into_iter().map(|(_, e)| e).collect(),
            report,
        },
        out,
    )
}

impl Trace {
    /// Task id by name (spawn name), panicking unless exactly one.
    pub fn task(&self, name: &str) -> u64 {
        let ids: Vec<u64> = self
            .events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Spawn(s) if s.name.as_deref() == Some(name) => Some(s.task),
                _ => None,
            })
            .collect();
        assert_eq!(ids.len(), 1, "tasks named {name}: {ids:?}");
        ids[0]
    }

    pub fn of(&self, task: u64) -> Vec<&Event> {
        self.events
            .iter()
            .filter(|e| e.kind.task() == Some(task))
            .collect()
    }

    /// (kind name, detail) of each event of a task, skipping waker clone/drop.
    pub fn story(&self, task: u64) -> Vec<String> {
        self.of(task)
            .into_iter()
            .filter_map(|e| match &e.kind {
                EventKind::Spawn(_) => Some("spawn".to_string()),
                EventKind::PollStart { .. } => Some("poll".to_string()),
                EventKind::PollEnd { ready, .. } => {
                    Some(if *ready { "ready" } else { "pending" }.to_string())
                }
                EventKind::Waker {
                    op: WakeOp::Wake | WakeOp::WakeByRef,
                    by,
                    ..
                } => Some(format!("wake by {}", by)),
                EventKind::Terminate { outcome, .. } => {
                    Some(format!("terminate {}", outcome.as_str()))
                }
                EventKind::TimerArmed { .. } => Some("timer armed".into()),
                EventKind::TimerFired { .. } => Some("timer fired".into()),
                _ => None,
            })
            .collect()
    }

    pub fn wakes_of(&self, task: u64) -> Vec<WakeSource> {
        looptrace_test_support::wakes_of(&self.events, task)
    }

    pub fn roles(&self) -> HashMap<u32, ThreadRole> {
        let mut m = HashMap::new();
        for e in &self.events {
            if let EventKind::Thread { role, .. } = e.kind {
                m.insert(e.thread, role);
            }
        }
        m
    }

    pub fn ts_of(&self, task: u64, pred: impl Fn(&EventKind) -> bool) -> Vec<u64> {
        self.of(task)
            .into_iter()
            .filter(|e| pred(&e.kind))
            .map(|e| e.ts_ns)
            .collect()
    }
}
