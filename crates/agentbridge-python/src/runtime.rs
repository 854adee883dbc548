//! The one Tokio runtime every call of the process runs on, and the blocking wait that
//! releases the GIL and checks for signals while a call is in flight.

use crate::error::Error;
use pyo3::prelude::*;
use std::future::Future;
use std::sync::OnceLock;
use std::sync::mpsc::{RecvTimeoutError, sync_channel};
use std::time::Duration;
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

/// How often a waiting call wakes to let Python run signal handlers (Ctrl-C).
const SIGNAL_CHECK: Duration = Duration::from_millis(50);

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// The shared multi-threaded runtime, built on first use and handed to
/// `pyo3-async-runtimes` so `acompletion` runs on it too.
pub fn get() -> Result<&'static Runtime, Error> {
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let built = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("agentbridge")
        .build()
        .map_err(|e| Error::Runtime(e.to_string()))?;
    let rt = RUNTIME.get_or_init(|| built);
    // Err means it already holds this same runtime (a concurrent first call set it).
    let _ = pyo3_async_runtimes::tokio::init_with_runtime(rt);
    Ok(rt)
}

/// Aborts the task when the waiting Python call gives up (KeyboardInterrupt): dropping the
/// future drops the upstream connection.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs `fut` on the shared runtime and waits for it without the GIL, waking every
/// [`SIGNAL_CHECK`] to run Python's signal handlers; if one raises (Ctrl-C), the call is
/// dropped and the exception propagates.
pub fn wait<T, F>(py: Python<'_>, fut: F) -> PyResult<T>
where
    T: Send + 'static,
    F: Future<Output = T> + Send + 'static,
{
    let (tx, mut rx) = sync_channel(1);
    let _task = AbortOnDrop(get()?.spawn(async move {
        // The receiver is gone only if the caller gave up; nothing to report then.
        let _ = tx.send(fut.await);
    }));
    loop {
        let (back, got) = py.detach(move || {
            let got = rx.recv_timeout(SIGNAL_CHECK);
            (rx, got)
        });
        rx = back;
        match got {
            Ok(v) => return Ok(v),
            Err(RecvTimeoutError::Timeout) => py.check_signals()?,
            Err(RecvTimeoutError::Disconnected) => {
                return Err(Error::Task("its task panicked".into()).into());
            }
        }
    }
}
