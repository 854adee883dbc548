//! SigV4 signing of the targets' requests: InvokeAgent (signing name `bedrock`) and
//! InvokeAgentRuntime (`bedrock-agentcore`).
//!
//! The hot path ([`InvokeSigner`]) builds the canonical request of our one request shape (a
//! JSON `POST`, a few signed headers, at most a plain query) directly and derives the signing
//! key with `aws-sigv4` once per access key, day and region (AWS's key is valid for the whole
//! day), so a request costs two SHA-256 and one HMAC instead of five HMACs, header maps and
//! allocations. Anything outside that shape (dot segments, header values needing
//! normalisation, a query needing encoding) goes through `aws-sigv4`'s general signer,
//! [`sign_request_as`], which is also the reference the tests compare the fast path with.

use crate::error::{Error, Result};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// The signing name of the Bedrock Agents runtime.
pub const SIGNING_NAME: &str = "bedrock";

/// Signs a Bedrock Agents request (signing name [`SIGNING_NAME`]) and returns the headers to
/// add (`authorization`, `x-amz-date`, `x-amz-security-token`).
pub fn sign_request(
    credentials: &Credentials,
    region: &str,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    time: SystemTime,
) -> Result<Vec<(String, String)>> {
    sign_request_as(
        SIGNING_NAME,
        credentials,
        region,
        method,
        url,
        headers,
        body,
        time,
    )
}

/// Like [`sign_request`], for the service whose signing name is `service` (for example
/// `bedrock-agentcore`).
#[allow(clippy::too_many_arguments)]
pub fn sign_request_as(
    service: &str,
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
        .name(service)
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

/// One request to sign: `POST {path}[?{query}]` to `host` with a JSON body.
#[derive(Debug, Clone, Copy)]
pub struct InvokeToSign<'a> {
    /// `host[:port]` as sent in the Host header.
    pub host: &'a str,
    /// The percent-encoded request path.
    pub path: &'a str,
    /// The query after `?`, percent-encoded (`""` for none).
    pub query: &'a str,
    /// The `x-amz-source-arn` header, if sent.
    pub source_arn: Option<&'a str>,
    /// Further headers sent and signed (AgentCore's session and user headers): lower-case
    /// names, each after `x-amz-source-arn` in byte order, in that order.
    pub extra: &'a [(&'a str, &'a str)],
    /// The request body.
    pub body: &'a [u8],
}

struct DerivedKey {
    access_key_id: String,
    secret_access_key: String,
    date: String,
    region: String,
    key: Vec<u8>,
}

/// Signs one service's requests, caching the derived signing key.
pub struct InvokeSigner {
    /// The signing name (`bedrock`, `bedrock-agentcore`).
    service: &'static str,
    key: Mutex<Option<Arc<DerivedKey>>>,
    /// The last `x-amz-date` formatted, with its Unix second.
    date: Mutex<Option<(u64, Arc<str>)>>,
}

impl std::fmt::Debug for InvokeSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InvokeSigner { .. }")
    }
}

/// `YYYYMMDD'T'HHMMSS'Z'` of a Unix second.
fn amz_date(secs: u64) -> Result<String> {
    let t = i64::try_from(secs)
        .ok()
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .ok_or_else(|| Error::Signing("the clock is out of range".into()))?;
    Ok(t.format("%Y%m%dT%H%M%SZ").to_string())
}

/// Lower-case hex of a 32-byte digest, appended to `out`.
fn push_hex(out: &mut String, digest: &[u8]) {
    let mut hex = [0u8; 64];
    // A 32-byte digest always fits 64 hex digits, which are ASCII.
    if hex::encode_to_slice(digest, &mut hex).is_ok()
        && let Ok(text) = std::str::from_utf8(&hex[..digest.len() * 2])
    {
        out.push_str(text);
    }
}

/// The signature: lower-case hex of HMAC-SHA256(signing key, string to sign), as
/// `aws_sigv4::sign::v4::calculate_signature` computes it, without its character-by-character
/// hex string (the tests compare the two).
fn signature(key: &[u8], string_to_sign: &[u8], out: &mut String) {
    // HMAC takes a key of any length: `new_from_slice` cannot fail for it.
    if let Ok(mac) = Hmac::<Sha256>::new_from_slice(key) {
        push_hex(
            out,
            &mac.chain_update(string_to_sign).finalize().into_bytes(),
        );
    }
}

/// Whether a header value is signed as-is (SigV4 trims values and collapses inner spaces).
fn plain_value(v: &str) -> bool {
    !v.is_empty() && !v.contains(' ') && !v.contains('\t') && !v.contains('\n')
}

impl Default for InvokeSigner {
    fn default() -> Self {
        Self::new()
    }
}

/// A name SigV4 signs as-is and that sorts as bytes do: lower-case letters, digits, `-`.
fn plain_name(n: &str) -> bool {
    !n.is_empty()
        && n.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A query SigV4 signs as-is: empty, or one `name=value` of unreserved characters.
fn plain_query(q: &str) -> bool {
    let unreserved = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
    };
    q.is_empty()
        || q.split_once('=')
            .is_some_and(|(n, v)| !n.is_empty() && unreserved(n) && unreserved(v))
}

impl InvokeSigner {
    /// A signer for InvokeAgent (signing name [`SIGNING_NAME`]) with an empty key cache.
    pub fn new() -> Self {
        Self::for_service(SIGNING_NAME)
    }

    /// A signer for the service whose signing name is `service`, with an empty key cache.
    pub fn for_service(service: &'static str) -> Self {
        Self {
            service,
            key: Mutex::default(),
            date: Mutex::default(),
        }
    }

    fn date_time(&self, time: SystemTime) -> Result<Arc<str>> {
        let secs = time
            .duration_since(UNIX_EPOCH)
            .map_err(|_| Error::Signing("the clock is before 1970".into()))?
            .as_secs();
        if let Ok(d) = self.date.lock()
            && let Some((s, text)) = d.as_ref()
            && *s == secs
        {
            return Ok(Arc::clone(text));
        }
        let text: Arc<str> = amz_date(secs)?.into();
        if let Ok(mut d) = self.date.lock() {
            *d = Some((secs, Arc::clone(&text)));
        }
        Ok(text)
    }

    fn signing_key(
        &self,
        creds: &Credentials,
        date: &str,
        region: &str,
        time: SystemTime,
    ) -> Arc<DerivedKey> {
        if let Ok(k) = self.key.lock()
            && let Some(k) = k.as_ref()
            && k.date == date
            && k.region == region
            && k.access_key_id == creds.access_key_id()
            && k.secret_access_key == creds.secret_access_key()
        {
            return Arc::clone(k);
        }
        let key = Arc::new(DerivedKey {
            access_key_id: creds.access_key_id().to_string(),
            secret_access_key: creds.secret_access_key().to_string(),
            date: date.to_string(),
            region: region.to_string(),
            key: v4::generate_signing_key(creds.secret_access_key(), time, region, self.service)
                .as_ref()
                .to_vec(),
        });
        if let Ok(mut k) = self.key.lock() {
            *k = Some(Arc::clone(&key));
        }
        key
    }

    /// The headers to add to the request: `authorization`, `x-amz-date` and, with temporary
    /// credentials, `x-amz-security-token`.
    pub fn sign(
        &self,
        creds: &Credentials,
        region: &str,
        req: InvokeToSign<'_>,
        time: SystemTime,
    ) -> Result<Vec<(&'static str, String)>> {
        let fast = req.path.starts_with('/')
            && !req.path.split('/').any(|seg| seg == "." || seg == "..")
            && !req.path.contains("//")
            && !req.path.contains('?')
            && plain_value(req.host)
            && req.source_arn.is_none_or(plain_value)
            && plain_query(req.query)
            // Each extra header plain and after the one before (in byte order, as signed).
            && req
                .extra
                .iter()
                .try_fold("x-amz-source-arn", |prev, &(n, v)| {
                    (n > prev && plain_name(n) && plain_value(v)).then_some(n)
                })
                .is_some()
            && creds.session_token().is_none_or(plain_value);
        if !fast {
            return self.sign_general(creds, region, req, time);
        }
        let date_time = self.date_time(time)?;
        let date = &date_time[..8];
        let token = creds.session_token();
        let mut signed_headers = String::from("content-type;host;x-amz-date");
        if token.is_some() {
            signed_headers.push_str(";x-amz-security-token");
        }
        if req.source_arn.is_some() {
            signed_headers.push_str(";x-amz-source-arn");
        }
        for (name, _) in req.extra {
            signed_headers.push(';');
            signed_headers.push_str(name);
        }
        // Canonical request. The path is already percent-encoded; SigV4 encodes it again
        // for every service but S3, which only changes `%`.
        let mut creq = String::with_capacity(256 + req.path.len() + token.map_or(0, str::len));
        creq.push_str("POST\n");
        for (i, part) in req.path.split('%').enumerate() {
            if i > 0 {
                creq.push_str("%25");
            }
            creq.push_str(part);
        }
        let _ = write!(
            creq,
            "\n{}\ncontent-type:application/json\nhost:{}\nx-amz-date:{date_time}\n",
            req.query, req.host
        );
        if let Some(t) = token {
            let _ = writeln!(creq, "x-amz-security-token:{t}");
        }
        if let Some(a) = req.source_arn {
            let _ = writeln!(creq, "x-amz-source-arn:{a}");
        }
        for (name, value) in req.extra {
            let _ = writeln!(creq, "{name}:{value}");
        }
        creq.push('\n');
        creq.push_str(&signed_headers);
        creq.push('\n');
        push_hex(&mut creq, &Sha256::digest(req.body));
        let scope_len = date.len() + region.len() + self.service.len() + 15;
        let mut string_to_sign = String::with_capacity(64 + date_time.len() + scope_len + 64);
        string_to_sign.push_str("AWS4-HMAC-SHA256\n");
        string_to_sign.push_str(&date_time);
        string_to_sign.push('\n');
        let scope_at = string_to_sign.len();
        for part in [date, "/", region, "/", self.service, "/aws4_request"] {
            string_to_sign.push_str(part);
        }
        let scope = scope_at..string_to_sign.len();
        string_to_sign.push('\n');
        push_hex(&mut string_to_sign, &Sha256::digest(creq.as_bytes()));
        let key = self.signing_key(creds, date, region, time);
        let access_key = creds.access_key_id();
        let mut authorization =
            String::with_capacity(64 + access_key.len() + scope_len + signed_headers.len() + 64);
        for part in [
            "AWS4-HMAC-SHA256 Credential=",
            access_key,
            "/",
            &string_to_sign[scope],
            ", SignedHeaders=",
            &signed_headers,
            ", Signature=",
        ] {
            authorization.push_str(part);
        }
        signature(&key.key, string_to_sign.as_bytes(), &mut authorization);
        let mut out = Vec::with_capacity(3);
        out.push(("authorization", authorization));
        out.push(("x-amz-date", date_time.to_string()));
        if let Some(t) = token {
            out.push(("x-amz-security-token", t.to_string()));
        }
        Ok(out)
    }

    fn sign_general(
        &self,
        creds: &Credentials,
        region: &str,
        req: InvokeToSign<'_>,
        time: SystemTime,
    ) -> Result<Vec<(&'static str, String)>> {
        let query = if req.query.is_empty() { "" } else { "?" };
        let url = format!("https://{}{}{query}{}", req.host, req.path, req.query);
        let mut headers = vec![("host", req.host), ("content-type", "application/json")];
        if let Some(arn) = req.source_arn {
            headers.push(("x-amz-source-arn", arn));
        }
        headers.extend_from_slice(req.extra);
        let signed = sign_request_as(
            self.service,
            creds,
            region,
            "POST",
            &url,
            &headers,
            req.body,
            time,
        )?;
        Ok(signed
            .into_iter()
            .filter_map(|(k, v)| {
                let k = match k.as_str() {
                    "authorization" => "authorization",
                    "x-amz-date" => "x-amz-date",
                    "x-amz-security-token" => "x-amz-security-token",
                    _ => return None,
                };
                Some((k, v))
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    proptest! {
        #[test]
        fn signature_is_aws_sigv4s(key in proptest::collection::vec(any::<u8>(), 0..80), text in ".{0,300}") {
            let mut ours = String::from("prefix ");
            signature(&key, text.as_bytes(), &mut ours);
            prop_assert_eq!(ours, format!("prefix {}", v4::calculate_signature(&key, text.as_bytes())));
        }
    }

    /// What `aws-sigv4`'s general signer produces for the same request.
    fn reference(
        creds: &Credentials,
        region: &str,
        req: InvokeToSign<'_>,
        time: SystemTime,
    ) -> Vec<(String, String)> {
        reference_as(SIGNING_NAME, creds, region, req, time)
    }

    fn reference_as(
        service: &str,
        creds: &Credentials,
        region: &str,
        req: InvokeToSign<'_>,
        time: SystemTime,
    ) -> Vec<(String, String)> {
        let query = if req.query.is_empty() { "" } else { "?" };
        let url = format!("http://{}{}{query}{}", req.host, req.path, req.query);
        let mut headers = vec![("host", req.host), ("content-type", "application/json")];
        if let Some(arn) = req.source_arn {
            headers.push(("x-amz-source-arn", arn));
        }
        headers.extend_from_slice(req.extra);
        let mut v = sign_request_as(
            service, creds, region, "POST", &url, &headers, req.body, time,
        )
        .unwrap();
        v.sort();
        v
    }

    fn fast(
        signer: &InvokeSigner,
        creds: &Credentials,
        region: &str,
        req: InvokeToSign<'_>,
        time: SystemTime,
    ) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = signer
            .sign(creds, region, req, time)
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        v.sort();
        v
    }

    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');

    fn segment(s: &str) -> String {
        percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        /// The fast path signs exactly as aws-sigv4 does, whatever the session id, token,
        /// source ARN, region, host, body and time; and a cached key is never used for
        /// another day, region or secret.
        #[test]
        fn fast_path_matches_aws_sigv4(
            session in "[a-zA-Z0-9._:%/ -]{1,40}",
            token in proptest::option::of("[A-Za-z0-9+/=]{10,60}"),
            arn in proptest::option::of("arn:aws:bedrock:[a-z0-9-]{3,12}:[0-9]{12}:agent/[A-Z0-9]{10}"),
            region in "[a-z]{2}-[a-z]{4,9}-[1-3]",
            secret in "[A-Za-z0-9/+]{40}",
            secret2 in "[A-Za-z0-9/+]{40}",
            secs in 1_500_000_000u64..2_500_000_000u64,
            body in proptest::collection::vec(any::<u8>(), 0..300),
            local in any::<bool>(),
        ) {
            let signer = InvokeSigner::new();
            let host = if local { "127.0.0.1:9001" } else { "bedrock-agent-runtime.us-west-2.amazonaws.com" };
            let path = format!("/agents/L1RT58GYRW/agentAliases/MFPSBCXYTW/sessions/{}/text", segment(&session));
            let req = InvokeToSign { host, path: &path, query: "", source_arn: arn.as_deref(), extra: &[], body: &body };
            let t = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
            let creds = Credentials::new("AKIDEXAMPLE", secret.clone(), token.clone(), None, "t");
            prop_assert_eq!(fast(&signer, &creds, &region, req, t), reference(&creds, &region, req, t));
            // Same day (cached key), next day, other region, rotated secret.
            let later = t + Duration::from_secs(60);
            prop_assert_eq!(fast(&signer, &creds, &region, req, later), reference(&creds, &region, req, later));
            let rotated = Credentials::new("AKIDEXAMPLE", secret2, token, None, "t");
            prop_assert_eq!(fast(&signer, &rotated, &region, req, t), reference(&rotated, &region, req, t));
            let tomorrow = t + Duration::from_secs(86_400);
            prop_assert_eq!(fast(&signer, &creds, &region, req, tomorrow), reference(&creds, &region, req, tomorrow));
            prop_assert_eq!(fast(&signer, &creds, "eu-west-1", req, tomorrow), reference(&creds, "eu-west-1", req, tomorrow));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// InvokeAgentRuntime's shape (signing name `bedrock-agentcore`, the runtime's session
        /// and user headers, a qualifier query) signs exactly as aws-sigv4 does, by the fast
        /// path or, for a query or header value it does not sign as-is, by the general one.
        #[test]
        fn agentcore_requests_match_aws_sigv4(
            arn in "arn:aws:bedrock-agentcore:[a-z0-9-]{3,12}:[0-9]{12}:runtime/[a-zA-Z0-9_-]{1,20}",
            qualifier in proptest::option::of("[a-zA-Z0-9_ ~%.-]{1,20}"),
            session in "[a-zA-Z0-9_-]{33,64}",
            user in proptest::option::of("[a-zA-Z0-9_ -]{1,20}"),
            token in proptest::option::of("[A-Za-z0-9+/=]{10,60}"),
            region in "[a-z]{2}-[a-z]{4,9}-[1-3]",
            secs in 1_500_000_000u64..2_500_000_000u64,
            body in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            const SERVICE: &str = "bedrock-agentcore";
            let signer = InvokeSigner::for_service(SERVICE);
            let path = format!("/runtimes/{}/invocations", segment(&arn));
            let query = qualifier.map(|q| format!("qualifier={}", segment(&q))).unwrap_or_default();
            let mut extra = vec![("x-amzn-bedrock-agentcore-runtime-session-id", session.as_str())];
            if let Some(u) = &user {
                extra.push(("x-amzn-bedrock-agentcore-runtime-user-id", u.as_str()));
            }
            let req = InvokeToSign {
                host: "bedrock-agentcore.us-west-2.amazonaws.com",
                path: &path,
                query: &query,
                source_arn: None,
                extra: &extra,
                body: &body,
            };
            let t = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
            let creds = Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token, None, "t");
            prop_assert_eq!(fast(&signer, &creds, &region, req, t), reference_as(SERVICE, &creds, &region, req, t));
            let later = t + Duration::from_secs(60);
            prop_assert_eq!(fast(&signer, &creds, &region, req, later), reference_as(SERVICE, &creds, &region, req, later));
        }
    }

    #[test]
    fn extra_headers_out_of_order_take_the_general_signer_and_still_match() {
        let creds = Credentials::new("AKIDEXAMPLE", "secret", None, None, "t");
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        for extra in [
            &[("x-b", "1"), ("x-a", "2")][..],
            &[("accept-x", "1")][..],
            &[("X-Upper", "1")][..],
            &[("x-amzn-a", "1"), ("x-amzn-a", "2")][..],
        ] {
            let req = InvokeToSign {
                host: "h.example.com",
                path: "/runtimes/a/invocations",
                query: "qualifier=q",
                source_arn: None,
                extra,
                body: b"{}",
            };
            let signer = InvokeSigner::for_service("bedrock-agentcore");
            assert_eq!(
                fast(&signer, &creds, "us-east-1", req, t),
                reference_as("bedrock-agentcore", &creds, "us-east-1", req, t),
                "{extra:?}"
            );
        }
    }

    #[test]
    fn unusual_requests_take_the_general_signer_and_still_match() {
        let creds = Credentials::new("AKIDEXAMPLE", "secret", Some("tok en".into()), None, "t");
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        for (path, arn) in [
            ("/agents/A/agentAliases/B/sessions/../text", None),
            ("/agents/A/agentAliases/B/sessions/./text", None),
            (
                "/agents/A/agentAliases/B/sessions/s/text",
                Some("arn:aws:x  y"),
            ),
        ] {
            let req = InvokeToSign {
                host: "h.example.com",
                path,
                query: "",
                source_arn: arn,
                extra: &[],
                body: b"{}",
            };
            assert_eq!(
                fast(&InvokeSigner::new(), &creds, "us-east-1", req, t),
                reference(&creds, "us-east-1", req, t),
                "{path}"
            );
        }
    }

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
