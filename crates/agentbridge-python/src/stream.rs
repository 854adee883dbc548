//! Streamed answers: `Stream` (a Python iterator) and `AsyncStream` (an async iterator) over
//! the SDK's [`ChunkStream`]. Each chunk is handed over as the agent sends it. Closing one
//! (`close()`, leaving a `with` block, or dropping it, as when a `for` loop over the call is
//! left with `break`) drops the SDK stream, which closes the upstream connection.

use crate::{convert, error, runtime};
use agentbridge::answer::Outcome;
use agentbridge::{ChatChunk, ChunkStream};
use futures::StreamExt;
use pyo3::exceptions::PyStopAsyncIteration;
use pyo3::prelude::*;
use std::sync::{Arc, Mutex as StdMutex};
use tokio::sync::Mutex;

/// The SDK stream, shared with the task that is reading it; `None` once closed or ended.
type Shared = Arc<Mutex<Option<ChunkStream>>>;

/// What both iterators hold.
struct Inner {
    chunks: Shared,
    outcome: Arc<StdMutex<Option<Outcome>>>,
    session_id: String,
    model: String,
}

impl Inner {
    fn new(chunks: ChunkStream, model: String) -> Self {
        Self {
            outcome: chunks.outcome_handle(),
            session_id: chunks.session_id().to_string(),
            chunks: Arc::new(Mutex::new(Some(chunks))),
            model,
        }
    }

    /// Drops the SDK stream now if no read is in flight, else as soon as that read returns.
    fn close(&self) -> PyResult<()> {
        if let Ok(mut guard) = self.chunks.try_lock() {
            guard.take();
            return Ok(());
        }
        let chunks = Arc::clone(&self.chunks);
        runtime::get()?.spawn(async move { chunks.lock().await.take() });
        Ok(())
    }

    fn response_cost(&self) -> Option<f64> {
        self.outcome.lock().ok().and_then(|o| o.map(|o| o.cost))
    }
}

/// The next chunk; `None` at the end. The stream is dropped on its end and on an error.
async fn next(chunks: Shared) -> Option<agentbridge::Result<ChatChunk>> {
    let mut guard = chunks.lock().await;
    let item = match guard.as_mut() {
        Some(s) => s.next().await,
        None => None,
    };
    if !matches!(item, Some(Ok(_))) {
        guard.take();
    }
    item
}

/// The chunks of `completion(..., stream=True)`: iterate it (`for chunk in stream`); each
/// item is a `ModelResponseStream`. Closes the upstream call on `close()`, at the end of a
/// `with` block, or when dropped.
#[pyclass(module = "agentbridge._agentbridge")]
pub struct Stream(Inner);

impl Stream {
    /// Wraps an SDK stream for the caller's `model`.
    pub fn new(chunks: ChunkStream, model: String) -> Self {
        Self(Inner::new(chunks, model))
    }
}

#[pymethods]
impl Stream {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        match runtime::wait(py, next(Arc::clone(&self.0.chunks)))? {
            None => Ok(None),
            Some(Ok(chunk)) => convert::chunk(py, &chunk).map(Some),
            Some(Err(e)) => Err(error::to_py(py, e, &self.0.model)),
        }
    }

    /// Closes the upstream call; later iteration ends at once.
    fn close(&self) -> PyResult<()> {
        self.0.close()
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, _exc: &Bound<'_, PyAny>) -> PyResult<bool> {
        self.0.close()?;
        Ok(false)
    }

    /// The cost in USD, once the stream has ended cleanly (else `None`).
    #[getter]
    fn response_cost(&self) -> Option<f64> {
        self.0.response_cost()
    }

    /// The agent session of this answer (send it back as `session_id` to continue).
    #[getter]
    fn session_id(&self) -> &str {
        &self.0.session_id
    }
}

/// The chunks of `await acompletion(..., stream=True)`: iterate it with `async for`; each
/// item is a `ModelResponseStream`. Closes the upstream call on `await aclose()`, at the end
/// of an `async with` block, or when dropped.
#[pyclass(module = "agentbridge._agentbridge")]
pub struct AsyncStream(Inner);

impl AsyncStream {
    /// Wraps an SDK stream for the caller's `model`.
    pub fn new(chunks: ChunkStream, model: String) -> Self {
        Self(Inner::new(chunks, model))
    }

    fn closed<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.0.close()?;
        pyo3_async_runtimes::tokio::future_into_py(py, async { Ok(()) })
    }
}

#[pymethods]
impl AsyncStream {
    fn __aiter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __anext__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let chunks = Arc::clone(&self.0.chunks);
        let model = self.0.model.clone();
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let item = next(chunks).await;
            Python::attach(|py| match item {
                None => Err(PyStopAsyncIteration::new_err(())),
                Some(Ok(chunk)) => convert::chunk(py, &chunk),
                Some(Err(e)) => Err(error::to_py(py, e, &model)),
            })
        })
    }

    /// Closes the upstream call (awaitable); later iteration ends at once.
    fn aclose<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.closed(py)
    }

    fn __aenter__(slf: PyRef<'_, Self>) -> PyResult<Bound<'_, PyAny>> {
        let py = slf.py();
        let me: Py<Self> = slf.into();
        pyo3_async_runtimes::tokio::future_into_py(py, async move { Ok(me) })
    }

    #[pyo3(signature = (*_exc))]
    fn __aexit__<'py>(
        &self,
        py: Python<'py>,
        _exc: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.closed(py)
    }

    /// The cost in USD, once the stream has ended cleanly (else `None`).
    #[getter]
    fn response_cost(&self) -> Option<f64> {
        self.0.response_cost()
    }

    /// The agent session of this answer (send it back as `session_id` to continue).
    #[getter]
    fn session_id(&self) -> &str {
        &self.0.session_id
    }
}
