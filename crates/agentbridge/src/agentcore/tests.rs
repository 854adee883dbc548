use super::*;
use crate::canonical::Finish;
use crate::deployment::DeploymentSettings;
use serde_json::json;

const ARN: &str =
    "arn:aws:bedrock-agentcore:us-west-2:123456789012:runtime/hosted_agent-AbCdE12345";

fn settings(extra: Value) -> std::result::Result<DeploymentSettings, Vec<ParamError>> {
    let mut params = json!({"model": format!("bedrock/agentcore/{ARN}")});
    if let (Some(p), Some(e)) = (params.as_object_mut(), extra.as_object()) {
        p.extend(e.clone());
    }
    DeploymentSettings::from_params(
        &format!("bedrock/agentcore/{ARN}"),
        params.as_object().unwrap_or(&Map::new()),
    )
}

#[test]
fn the_model_string_names_this_target_and_its_region() {
    let s = settings(json!({})).unwrap();
    assert_eq!(s.target.provider(), "bedrock_agentcore");
    assert_eq!(s.target.region(), Some("us-west-2"));
    assert_eq!(s.target.model(), format!("bedrock/agentcore/{ARN}"));
    assert_eq!(
        s.target.default_endpoint("us-west-2"),
        "https://bedrock-agentcore.us-west-2.amazonaws.com"
    );
}

#[test]
fn target_settings_never_reach_the_agent() {
    let s = settings(
        json!({"qualifier": "prod", "runtimeUserId": "u-1", "send_conversation": true,
        "api_key": "jwt", "tenant": "acme"}),
    )
    .unwrap();
    assert_eq!(
        s.agent_params,
        json!({"tenant": "acme"}).as_object().cloned().unwrap()
    );
    for k in ["qualifier", "runtimeUserId", "send_conversation", "api_key"] {
        assert!(crate::params::is_deployment_param(k), "{k}");
    }
}

#[test]
fn bad_settings_are_reported_with_their_keys() {
    let errs = settings(json!({"qualifier": 3, "send_conversation": "yes", "runtimeUserId": ""}))
        .unwrap_err();
    let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["qualifier", "runtimeUserId", "send_conversation"]);
    let errs =
        DeploymentSettings::from_params("bedrock/agentcore/not-an-arn", &Map::new()).unwrap_err();
    assert_eq!(errs[0].key, "model");
    assert!(
        errs[0].message.contains("runtime/{RUNTIME_ID}"),
        "{}",
        errs[0].message
    );
}

#[test]
fn the_path_carries_the_encoded_arn_and_the_qualifier() {
    let rt = AgentCoreRuntime {
        arn: RuntimeArn::parse(ARN).unwrap(),
        qualifier: Some("prod v2".into()),
        user_id: None,
        api_key: None,
        send_conversation: false,
        signer: InvokeSigner::for_service(SIGNING_NAME),
    };
    assert_eq!(
        rt.path(),
        "/runtimes/arn%3Aaws%3Abedrock-agentcore%3Aus-west-2%3A123456789012%3Aruntime%2Fhosted_agent-AbCdE12345/invocations?qualifier=prod%20v2"
    );
}

async fn collect(stream: PieceStream) -> Vec<Result<Piece>> {
    stream.collect().await
}

#[tokio::test]
async fn sse_pieces_come_out_alike_whatever_the_chunking_and_end_once() {
    let wire: &[u8] =
        b"data: {\"event\": {\"contentBlockDelta\": {\"delta\": {\"text\": \"Hel\"}}}}\n\n\
data: \"{'data': 'Hel', 'agent': <A>}\"\n\n\
data: {\"event\": {\"contentBlockDelta\": {\"delta\": {\"text\": \"lo\"}}}}\n\n\
data: {\"event\": {\"messageStop\": {\"stopReason\": \"end_turn\"}}}\n\n\
data: {\"event\": {\"metadata\": {\"usage\": {\"inputTokens\": 5, \"outputTokens\": 2}}}}\n\n";
    for size in [1, 2, 7, 64, wire.len()] {
        let chunks: Vec<Result<Bytes>> = wire
            .chunks(size)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let pieces = collect(sse_pieces(
            futures::stream::iter(chunks),
            1024,
            AnswerOptions::default(),
            None,
        ))
        .await;
        let pieces: Vec<Piece> = pieces.into_iter().map(|p| p.unwrap()).collect();
        let text: String = pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Text(t) => Some(t.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(text, "Hello", "chunks of {size}");
        let Some(Piece::End(end)) = pieces.last() else {
            panic!("no end: {pieces:?}");
        };
        assert_eq!(end.finish, Finish::Stop);
        assert_eq!(end.outcome.usage.total_tokens, 7);
        assert_eq!(
            pieces.iter().filter(|p| matches!(p, Piece::End(_))).count(),
            1
        );
    }
}

#[tokio::test]
async fn an_in_band_error_or_a_broken_body_ends_without_an_end_piece() {
    let wire = "data: \"one\"\n\ndata: {\"error\": \"boom\", \"error_type\": \"ValueError\", \"message\": \"An error occurred during streaming\"}\n\ndata: \"never\"\n\n";
    let pieces = collect(sse_pieces(
        futures::stream::iter([Ok(Bytes::from(wire))]),
        1024,
        AnswerOptions::default(),
        None,
    ))
    .await;
    assert_eq!(pieces.len(), 2);
    assert!(matches!(&pieces[0], Ok(Piece::Text(t)) if t == "one"));
    assert!(matches!(&pieces[1], Err(e) if e.status_code() == 424));

    let broken = collect(sse_pieces(
        futures::stream::iter([
            Ok(Bytes::from_static(b"data: \"a\"\n\n")),
            Err(Error::Decode("reset".into())),
        ]),
        1024,
        AnswerOptions::default(),
        None,
    ))
    .await;
    assert_eq!(broken.len(), 2);
    assert!(broken[1].is_err());
}

#[tokio::test]
async fn an_overlong_event_is_an_error() {
    let wire = format!("data: \"{}\"\n\n", "x".repeat(2000));
    let pieces = collect(sse_pieces(
        futures::stream::iter([Ok(Bytes::from(wire))]),
        1024,
        AnswerOptions::default(),
        None,
    ))
    .await;
    assert_eq!(pieces.len(), 1);
    assert!(pieces[0].is_err());
}
