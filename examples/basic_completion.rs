//! The reference docs' "Basic Agent Completion", in Rust.
//!
//! Against the built-in emulator:
//! `agentbridge emulator --port 9001` and then
//! `AWS_BEDROCK_RUNTIME_ENDPOINT=http://127.0.0.1:9001 AWS_REGION=us-west-2 AWS_ACCESS_KEY_ID=AKIDAGENTBRIDGEEMU AWS_SECRET_ACCESS_KEY=agentbridge-emulator-secret-key cargo run --example basic_completion`

use agentbridge::{ChatRequest, Message};

#[tokio::main]
async fn main() -> Result<(), agentbridge::Error> {
    // Make a completion request to your Bedrock Agent
    let response = agentbridge::completion(ChatRequest {
        model: "bedrock/agent/L1RT58GYRW/MFPSBCXYTW".into(), // agent/{AGENT_ID}/{ALIAS_ID}
        messages: vec![Message::new(
            "user",
            "Hi, I need help with analyzing our Q3 sales data and generating a summary report",
        )],
        ..Default::default()
    })
    .await?;
    println!(
        "{}",
        response.choices[0]
            .message
            .content
            .as_deref()
            .unwrap_or_default()
    );
    println!("Response cost: ${}", response.response_cost);
    Ok(())
}
