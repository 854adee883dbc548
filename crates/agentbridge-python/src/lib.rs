//! # agentbridge-python
//!
//! The native half of the `agentbridge` Python package (`agentbridge._agentbridge`):
//! LiteLLM's `completion()` and `acompletion()` for Bedrock agents, answered by the Rust SDK
//! ([`agentbridge::completion`] and [`agentbridge::completion_stream`]). This crate only
//! converts: Python arguments into a [`ChatRequest`], SDK answers into the package's response
//! objects (`agentbridge.types`), SDK errors into its exceptions (`agentbridge.exceptions`).
//! Every call runs on one process-wide Tokio runtime ([`runtime`]); blocking calls release the
//! GIL while they wait and check for signals (Ctrl-C) every few milliseconds.
//!
//! Built as a wheel by maturin (`crates/agentbridge-python/pyproject.toml`), which sets
//! `PYO3_BUILD_EXTENSION_MODULE` so the module does not link libpython. Used from Python:
//!
//! ```python
//! from agentbridge import completion
//! response = completion(model="bedrock/agent/L1RT58GYRW/MFPSBCXYTW",
//!                       messages=[{"role": "user", "content": "hi"}])
//! print(response.choices[0].message.content, response._hidden_params["response_cost"])
//! ```

mod convert;
mod error;
mod runtime;
mod stream;

use agentbridge::ChatRequest;
use pyo3::prelude::*;
use pyo3::types::PyDict;

pub use error::Error;

/// `completion(model, messages, stream=False, **params)`: one chat completion from the agent
/// named by `model` (`bedrock/agent/{AGENT_ID}/{ALIAS_ID}`), as LiteLLM's `completion`.
///
/// `params` are LiteLLM's keyword arguments: deployment settings (`aws_access_key_id`,
/// `aws_secret_access_key`, `aws_session_token`, `aws_region_name`, `aws_profile_name`,
/// `aws_role_name`, `api_base`, `timeout`, `num_retries`, ...), OpenAI options (ignored by
/// agents) and anything else, which goes to the agent (`invocationId`, `sessionState`, ...).
/// Returns a `ModelResponse`, or with `stream=True` a `Stream` of `ModelResponseStream`
/// chunks. The GIL is released while waiting; Ctrl-C raises `KeyboardInterrupt` and drops
/// the call.
#[pyfunction]
#[pyo3(signature = (model, messages, stream = None, **params))]
fn completion(
    py: Python<'_>,
    model: String,
    messages: &Bound<'_, PyAny>,
    stream: Option<bool>,
    params: Option<&Bound<'_, PyDict>>,
) -> PyResult<Py<PyAny>> {
    let stream = stream.unwrap_or(false);
    let req = convert::request(model, messages, stream, params)?;
    let model = req.model.clone();
    if stream {
        let chunks = runtime::wait(py, agentbridge::completion_stream(req))?
            .map_err(|e| error::to_py(py, e, &model))?;
        Ok(Py::new(py, stream::Stream::new(chunks, model))?.into_any())
    } else {
        let answer = runtime::wait(py, agentbridge::completion(req))?
            .map_err(|e| error::to_py(py, e, &model))?;
        convert::model_response(py, &answer)
    }
}

/// `acompletion(model, messages, stream=False, **params)`: `completion` for asyncio. Returns
/// an awaitable of a `ModelResponse`, or with `stream=True` of an `AsyncStream`. The call runs
/// on agentbridge's shared runtime; cancelling the awaiting task drops it.
#[pyfunction]
#[pyo3(signature = (model, messages, stream = None, **params))]
fn acompletion<'py>(
    py: Python<'py>,
    model: String,
    messages: &Bound<'py, PyAny>,
    stream: Option<bool>,
    params: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    runtime::get()?;
    let stream = stream.unwrap_or(false);
    let req: Result<ChatRequest, PyErr> = convert::request(model.clone(), messages, stream, params);
    pyo3_async_runtimes::tokio::future_into_py(py, async move {
        let req = req?;
        if stream {
            let chunks = agentbridge::completion_stream(req).await;
            Python::attach(|py| {
                let chunks = chunks.map_err(|e| error::to_py(py, e, &model))?;
                Ok(Py::new(py, stream::AsyncStream::new(chunks, model.clone()))?.into_any())
            })
        } else {
            let answer = agentbridge::completion(req).await;
            Python::attach(|py| {
                let answer = answer.map_err(|e| error::to_py(py, e, &model))?;
                convert::model_response(py, &answer)
            })
        }
    })
}

/// The native module `agentbridge._agentbridge`.
#[pymodule]
fn _agentbridge(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(completion, m)?)?;
    m.add_function(wrap_pyfunction!(acompletion, m)?)?;
    m.add_class::<stream::Stream>()?;
    m.add_class::<stream::AsyncStream>()?;
    Ok(())
}
