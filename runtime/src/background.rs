//! A thread of looptrace's own that runs until told to stop: the shipper. A plain
//! OS thread, outside any runtime, so looptrace never traces itself.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

pub(crate) struct Background {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Background {
    /// Runs `f` on a thread named `name`; `f` returns once the flag it is given
    /// is set (it may sleep with `park_timeout`: finishing unparks it).
    pub(crate) fn spawn(
        name: &str,
        f: impl FnOnce(&AtomicBool) + Send + 'static,
    ) -> std::io::Result<Background> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || f(&flag))?;
        Ok(Background {
            stop,
            thread: Some(thread),
        })
    }

    /// Tells it to stop, wakes it, and waits for it to finish its work.
    pub(crate) fn finish(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.finish();
    }
}
