//! SigV4 signing of InvokeAgent requests with `aws-sigv4` (signing name `bedrock`).

use crate::error::{Error, Result};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use std::time::SystemTime;

/// The signing name of the Bedrock Agents runtime.
pub const SIGNING_NAME: &str = "bedrock";

/// Signs a request and returns the headers to add (`authorization`, `x-amz-date`,
/// `x-amz-security-token`).
pub fn sign_request(
    credentials: &Credentials,
    region: &str,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    time: SystemTime,
) -> Result<Vec<(String, String)>> {
    let identity: Identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(SIGNING_NAME)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| Error::Signing(e.to_string()))?
        .into();
    let signable = SignableRequest::new(
        method,
        url,
        headers.iter().copied(),
        SignableBody::Bytes(body),
    )
    .map_err(|e| Error::Signing(e.to_string()))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| Error::Signing(e.to_string()))?
        .into_parts();
    Ok(instructions
        .headers()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn signature_covers_host_and_body_and_uses_the_bedrock_scope() {
        let creds = Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            None,
            None,
            "t",
        );
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let url = "https://bedrock-agent-runtime.us-west-2.amazonaws.com/agents/A/agentAliases/B/sessions/s1/text";
        let h = sign_request(
            &creds,
            "us-west-2",
            "POST",
            url,
            &[
                ("host", "bedrock-agent-runtime.us-west-2.amazonaws.com"),
                ("content-type", "application/json"),
            ],
            b"{}",
            t,
        )
        .unwrap();
        let auth = h
            .iter()
            .find(|(k, _)| k == "authorization")
            .map(|(_, v)| v.clone())
            .unwrap();
        assert!(
            auth.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231114/us-west-2/bedrock/aws4_request"
            ),
            "{auth}"
        );
        assert!(
            auth.contains("SignedHeaders=content-type;host;x-amz-date"),
            "{auth}"
        );
        let again = sign_request(
            &creds,
            "us-west-2",
            "POST",
            url,
            &[
                ("host", "bedrock-agent-runtime.us-west-2.amazonaws.com"),
                ("content-type", "application/json"),
            ],
            b"{ }",
            t,
        )
        .unwrap();
        assert_ne!(h, again, "the body is signed");
    }
}
