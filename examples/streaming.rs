//! The reference docs' "Streaming Agent Responses", in Rust (see basic_completion.rs for
//! how to run it against the emulator).

use agentbridge::{ChatRequest, Message};
use futures::StreamExt;
use std::io::Write;

#[tokio::main]
async fn main() -> Result<(), agentbridge::Error> {
    // Stream responses from your Bedrock Agent
    let mut response = agentbridge::completion_stream(ChatRequest {
        model: "bedrock/agent/L1RT58GYRW/MFPSBCXYTW".into(),
        messages: vec![Message::new(
            "user",
            "Can you help me plan a marketing campaign and provide step-by-step execution details?",
        )],
        stream: true,
        ..Default::default()
    })
    .await?;
    while let Some(chunk) = response.next().await {
        let chunk = chunk?;
        if let Some(content) = chunk
            .choices
            .first()
            .and_then(|c| c.delta.content.as_deref())
        {
            print!("{content}");
            let _ = std::io::stdout().flush();
        }
    }
    println!();
    Ok(())
}
