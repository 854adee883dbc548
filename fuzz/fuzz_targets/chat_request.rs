//! OpenAI request parser + InvokeAgent transform: arbitrary bytes as a chat request body.
#![no_main]

use agentbridge::request::to_invoke_agent;
use agentbridge::{AgentModel, ChatRequest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(req) = serde_json::from_slice::<ChatRequest>(data) else { return };
    let Ok(agent) = AgentModel::parse("bedrock/agent/L1RT58GYRW/MFPSBCXYTW") else { return };
    let _ = AgentModel::parse(&req.model);
    let Ok(req) = agentbridge::completion::agent_request(req) else { return };
    if let Ok(invoke) = to_invoke_agent(&agent, &req, &serde_json::Map::new()) {
        let _ = serde_json::to_vec(&invoke.body);
    }
});
