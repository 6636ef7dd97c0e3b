//! A future that returns Pending without arranging a wake, and one that does it right.

use crate::pace::{block, paced};
use crate::trace::{secs, Trace};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

/// Returns Pending and forgets the waker: nothing will ever poll it again.
pub struct Forgetful;

impl Future for Forgetful {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }
}

/// Ready once its doorbell is rung; keeps the waker so the ringer can wake it.
pub struct Faithful {
    state: Arc<Mutex<(bool, Option<Waker>)>>,
}

impl Faithful {
    /// The future, and a function that rings its doorbell from anywhere.
    pub fn new() -> (Faithful, impl FnOnce() + Send + 'static) {
        let state = Arc::new(Mutex::new((false, None::<Waker>)));
        let ring = {
            let state = state.clone();
            move || {
                let waker = {
                    let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
                    s.0 = true;
                    s.1.take()
                };
                if let Some(w) = waker {
                    w.wake();
                }
            }
        };
        (Faithful { state }, ring)
    }
}

impl Future for Faithful {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.0 {
            Poll::Ready(())
        } else {
            // The rule of Pending: make sure someone will wake us.
            s.1 = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}

/// `forgetful` awaits [`Forgetful`] and hangs; `faithful` awaits [`Faithful`],
/// whose doorbell a thread rings after 0.5 s. After 1.5 s the demo gives up on
/// `forgetful` and aborts it.
pub async fn run() {
    let mut forgetful = crate::spawn("forgetful", async {
        Forgetful.await;
        crate::say!("forgetful: finished (this never prints)");
    });
    let (future, ring) = Faithful::new();
    let faithful = crate::spawn("faithful", async {
        future.await;
        crate::say!("faithful: woken and finished");
    });
    let doorbell = std::thread::Builder::new()
        .name("doorbell".into())
        .spawn(move || {
            block(0.5);
            ring();
        });
    if let Err(e) = doorbell {
        crate::say!("lost-waker: cannot start the doorbell thread: {e}");
    }
    let _ = faithful.await;
    if tokio::time::timeout(paced(1.0), &mut forgetful)
        .await
        .is_err()
    {
        forgetful.abort();
        crate::say!("forgetful: still Pending after 1.5 s with no waker; aborted");
    }
}

pub fn explain(t: &Trace) -> Vec<String> {
    use looptrace_collector::model::WarningKind::LostWaker;
    let (Some(lost), Some(ok)) = (t.task("forgetful"), t.task("faithful")) else {
        return vec!["The trace does not hold the demo's tasks.".into()];
    };
    vec![
        format!(
            "forgetful was polled {} time(s), returned Pending and kept no waker: {} lost-waker warning(s). It sat idle for {} until it was cancelled.",
            lost.polls,
            t.warned(lost, LostWaker),
            secs(lost.idle_ns as f64 / 1e9)
        ),
        format!(
            "faithful cloned its waker before returning Pending; the doorbell thread woke it ({} outside wake) and its second poll returned Ready at {}.",
            ok.wakes.external,
            secs(t.ended(ok))
        ),
    ]
}
