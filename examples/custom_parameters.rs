//! The reference docs' "Using custom parameters": any non-OpenAI field goes to the agent.

use agentbridge::{ChatRequest, Message};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), agentbridge::Error> {
    let mut request = ChatRequest {
        model: "bedrock/agent/L1RT58GYRW/MFPSBCXYTW".into(),
        messages: vec![Message::new(
            "user",
            "Hi who is ishaan cto of litellm, tell me 10 things about him",
        )],
        ..Default::default()
    };
    request
        .extra
        .insert("invocationId".into(), json!("my-test-invocation-id")); // PROVIDER-SPECIFIC VALUE
    let response = agentbridge::completion(request).await?;
    println!(
        "{}",
        response.choices[0]
            .message
            .content
            .as_deref()
            .unwrap_or_default()
    );
    Ok(())
}
