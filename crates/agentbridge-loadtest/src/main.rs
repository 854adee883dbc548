//! `agentbridge-soak`: sends chat requests (alternately streamed and not) at a fixed
//! concurrency and classifies every answer:
//!
//! - `ok`: the full, correct answer (`Emulated agent ... received: <input>`), with
//!   `finish_reason: stop` (and `[DONE]` when streamed);
//! - `error`: an OpenAI error: a non-200 with an `{"error": {...}}` body, or a stream that
//!   ends with an in-band `data: {"error": ...}` event after a correct prefix;
//! - `wrong`: anything else (wrong text, a stream that stops without `[DONE]` or an error);
//! - `hung`: no complete answer within the client deadline.
//!
//! Prints the counts as JSON on the last line.

use clap::Parser;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

#[derive(Parser, Debug)]
struct Args {
    /// Gateway base URL.
    #[arg(long)]
    gateway: String,
    /// Bearer key.
    #[arg(long, default_value = "")]
    key: String,
    /// Model name.
    #[arg(long, default_value = "bedrock-agent-1")]
    model: String,
    /// Agent and alias IDs behind the model (for the expected answer).
    #[arg(long, default_value = "L1RT58GYRW/MFPSBCXYTW")]
    agent: String,
    /// Number of requests.
    #[arg(long, default_value_t = 1000)]
    requests: u64,
    /// Requests in flight.
    #[arg(long, default_value_t = 64)]
    concurrency: u64,
    /// Seconds after which a request counts as hung.
    #[arg(long, default_value_t = 30.0)]
    deadline: f64,
    /// Number of the first request (inputs are unique across runs).
    #[arg(long, default_value_t = 0)]
    offset: u64,
}

#[derive(Debug, PartialEq)]
enum Verdict {
    Ok,
    Error(String),
    Wrong(String),
}

fn classify_error_body(status: u16, body: &[u8]) -> Verdict {
    match serde_json::from_slice::<Value>(body) {
        Ok(v)
            if v.pointer("/error/message")
                .and_then(Value::as_str)
                .is_some_and(|m| !m.is_empty())
                && v.pointer("/error/type").and_then(Value::as_str).is_some() =>
        {
            Verdict::Error(format!(
                "{status}:{}",
                v.pointer("/error/code")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
            ))
        }
        _ => Verdict::Wrong(format!("status {status} without an OpenAI error body")),
    }
}

async fn one(client: &reqwest::Client, args: &Args, n: u64) -> Verdict {
    let stream = n.is_multiple_of(2);
    let input = format!("soak request {n}");
    let (agent, alias) = args.agent.split_once('/').unwrap_or((&args.agent, ""));
    let expected = format!("Emulated agent {agent} (alias {alias}) received: {input}");
    let body = json!({"model": args.model, "stream": stream, "messages": [{"role": "user", "content": input}]});
    let resp = match client
        .post(format!("{}/v1/chat/completions", args.gateway))
        .bearer_auth(&args.key)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => return Verdict::Wrong(format!("transport: {e}")),
    };
    let status = resp.status().as_u16();
    let bytes = match resp.bytes().await {
        Ok(b) => b,
        Err(e) => return Verdict::Wrong(format!("body: {e}")),
    };
    if status != 200 {
        return classify_error_body(status, &bytes);
    }
    if !stream {
        let v: Value = match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(e) => return Verdict::Wrong(format!("json: {e}")),
        };
        let content = v
            .pointer("/choices/0/message/content")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let finish = v
            .pointer("/choices/0/finish_reason")
            .and_then(Value::as_str)
            .unwrap_or_default();
        return if content == expected && finish == "stop" {
            Verdict::Ok
        } else {
            Verdict::Wrong(format!("content {content:?}"))
        };
    }
    let text = String::from_utf8_lossy(&bytes);
    let mut content = String::new();
    let mut finish = String::new();
    let mut done = false;
    for line in text.lines() {
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        if data == "[DONE]" {
            done = true;
            continue;
        }
        let v: Value = match serde_json::from_str(data) {
            Ok(v) => v,
            Err(e) => return Verdict::Wrong(format!("sse json: {e}")),
        };
        if let Some(err) = v.get("error") {
            return if expected.starts_with(&content) && err.get("message").is_some() {
                Verdict::Error(format!(
                    "in-band:{}",
                    err.get("code").and_then(Value::as_str).unwrap_or("?")
                ))
            } else {
                Verdict::Wrong("in-band error after wrong text".into())
            };
        }
        if let Some(c) = v
            .pointer("/choices/0/delta/content")
            .and_then(Value::as_str)
        {
            content.push_str(c);
        }
        if let Some(f) = v
            .pointer("/choices/0/finish_reason")
            .and_then(Value::as_str)
        {
            finish = f.to_string();
        }
    }
    if done && content == expected && finish == "stop" {
        Verdict::Ok
    } else {
        Verdict::Wrong(format!(
            "stream: done={done} finish={finish:?} content={content:?}"
        ))
    }
}

#[derive(Default)]
struct Tally {
    ok: u64,
    errors: BTreeMap<String, u64>,
    wrong: Vec<String>,
    hung: u64,
}

#[tokio::main]
async fn main() {
    let args = Arc::new(Args::parse());
    let client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(1024)
        .build()
        .unwrap_or_default();
    let next = Arc::new(AtomicU64::new(0));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let start = Instant::now();
    let workers: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let (args, client, next, tally) = (
                Arc::clone(&args),
                client.clone(),
                Arc::clone(&next),
                Arc::clone(&tally),
            );
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= args.requests {
                        break;
                    }
                    let n = args.offset + i;
                    let verdict = tokio::time::timeout(
                        Duration::from_secs_f64(args.deadline),
                        one(&client, &args, n),
                    )
                    .await;
                    let mut t = tally.lock().await;
                    match verdict {
                        Err(_) => t.hung += 1,
                        Ok(Verdict::Ok) => t.ok += 1,
                        Ok(Verdict::Error(code)) => *t.errors.entry(code).or_default() += 1,
                        Ok(Verdict::Wrong(why)) => {
                            if t.wrong.len() < 20 {
                                eprintln!("wrong answer for request {n}: {why}");
                            }
                            t.wrong.push(why);
                        }
                    }
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let t = tally.lock().await;
    let errors: u64 = t.errors.values().sum();
    println!(
        "{}",
        json!({"requests": args.requests, "ok": t.ok, "errors": errors, "error_codes": t.errors,
               "wrong": t.wrong.len(), "hung": t.hung, "seconds": elapsed, "rps": args.requests as f64 / elapsed})
    );
}
