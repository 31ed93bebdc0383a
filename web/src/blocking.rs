//! Plain OS threads for the core's blocking store calls (and for login
//! password checks, see `password::Checks`).
//!
//! The core's MySQL driver refuses to run inside a tokio runtime context, and
//! tokio's `spawn_blocking` threads carry that context, so store calls (and
//! validations, which may query the store on a cache miss) run here instead:
//! a fixed set of threads fed through a channel, answering via a oneshot.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

type Job = Box<dyn FnOnce() + Send + 'static>;

/// A fixed pool of worker threads outside the async runtime.
#[derive(Debug)]
pub(crate) struct Blocking {
    tx: mpsc::Sender<Job>,
}

/// The pool is gone or the job panicked.
#[derive(Debug)]
pub(crate) struct PoolError;

impl Blocking {
    /// `threads` threads named `hk-web-{name}-N`.
    pub(crate) fn new(name: &str, threads: usize) -> std::io::Result<Blocking> {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = Arc::clone(&rx);
            std::thread::Builder::new()
                .name(format!("hk-web-{name}-{i}"))
                .spawn(move || loop {
                    let job = {
                        let Ok(guard) = rx.lock() else { return };
                        match guard.recv() {
                            Ok(job) => job,
                            Err(_) => return,
                        }
                    };
                    job();
                })?;
        }
        Ok(Blocking { tx })
    }

    /// Runs `f` on a pool thread and waits for it without blocking the
    /// runtime.
    pub(crate) async fn run<T, F>(&self, f: F) -> Result<T, PoolError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (otx, orx) = tokio::sync::oneshot::channel();
        self.tx
            .send(Box::new(move || {
                let result = std::panic::catch_unwind(AssertUnwindSafe(f));
                let _ = otx.send(result);
            }))
            .map_err(|_| PoolError)?;
        match orx.await {
            Ok(Ok(value)) => Ok(value),
            _ => Err(PoolError),
        }
    }
}
