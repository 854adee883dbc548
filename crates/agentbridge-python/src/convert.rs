//! Python values in, Python objects out. Arguments become one JSON object that the SDK's
//! [`ChatRequest`] deserializes, exactly as the proxy reads a request body; answers are
//! serialized with the SDK's own serde field names and wrapped by `agentbridge.types`.

use crate::error;
use agentbridge::{ChatChunk, ChatCompletion, ChatRequest};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyDict;
use pythonize::{depythonize, pythonize};
use serde_json::{Map, Value};

/// The request for `model`, `messages`, `stream` and LiteLLM's keyword arguments. Keywords
/// given as `None` are left out (LiteLLM reads `None` as "not set"); the SDK splits the rest
/// into deployment settings and agent parameters.
pub fn request(
    model: String,
    messages: &Bound<'_, PyAny>,
    stream: bool,
    params: Option<&Bound<'_, PyDict>>,
) -> PyResult<ChatRequest> {
    let py = messages.py();
    let invalid = |param: &str, message: String| {
        error::to_py(py, agentbridge::Error::invalid(param, message), &model)
    };
    let mut body = Map::new();
    let messages: Value = depythonize(messages)
        .map_err(|e| invalid("messages", format!("not a list of messages: {e}")))?;
    body.insert("messages".into(), messages);
    if let Some(params) = params {
        for (key, value) in params.iter() {
            let key: String = key.extract()?;
            if value.is_none() {
                continue;
            }
            let value: Value = depythonize(&value)
                .map_err(|e| invalid(&key, format!("not a JSON-like value: {e}")))?;
            body.insert(key, value);
        }
    }
    body.insert("model".into(), Value::String(model.clone()));
    body.insert("stream".into(), Value::Bool(stream));
    serde_json::from_value(Value::Object(body)).map_err(|e| invalid("messages", e.to_string()))
}

/// `agentbridge.types.ModelResponse` for an answer, its cost in `_hidden_params`.
pub fn model_response(py: Python<'_>, answer: &ChatCompletion) -> PyResult<Py<PyAny>> {
    static MAKE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let data = pythonize(py, answer)?;
    Ok(MAKE
        .import(py, "agentbridge.types", "_model_response")?
        .call1((data, answer.response_cost))?
        .unbind())
}

/// `agentbridge.types.ModelResponseStream` for one chunk.
pub fn chunk(py: Python<'_>, chunk: &ChatChunk) -> PyResult<Py<PyAny>> {
    static MAKE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let data = pythonize(py, chunk)?;
    Ok(MAKE
        .import(py, "agentbridge.types", "_chunk")?
        .call1((data,))?
        .unbind())
}
