//! Errors: the crate's own (the runtime could not start, a task died) and the SDK's, raised
//! as the package's exception classes (`agentbridge.exceptions`, which subclass the OpenAI
//! SDK's when it is installed). The class is chosen there from the SDK's
//! [`agentbridge::Error::status_code`], in one place.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

/// What can fail in the binding itself (SDK errors are raised by [`to_py`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The shared Tokio runtime could not be built.
    #[error("could not start the agentbridge runtime: {0}")]
    Runtime(String),
    /// A call's task ended without an answer (it panicked).
    #[error("the agentbridge call ended without an answer: {0}")]
    Task(String),
}

impl From<Error> for PyErr {
    fn from(e: Error) -> Self {
        PyRuntimeError::new_err(e.to_string())
    }
}

/// The exception for an SDK error: `agentbridge.exceptions._from_native(...)` picks the class
/// (`RateLimitError`, `NotFoundError`, ...) from the status; the message is the SDK's, which
/// starts with AWS's error name (`ThrottlingException: ...`).
pub fn to_py(py: Python<'_>, e: agentbridge::Error, model: &str) -> PyErr {
    static FROM_NATIVE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let made = FROM_NATIVE
        .import(py, "agentbridge.exceptions", "_from_native")
        .and_then(|f| {
            f.call1((
                e.status_code(),
                e.code(),
                e.to_string(),
                e.param(),
                model,
                e.is_retryable(),
                e.openai_type(),
            ))
        });
    match made {
        Ok(exc) => PyErr::from_value(exc),
        Err(import_failed) => import_failed,
    }
}
