//! SigV4 verification, written independently of `aws-sigv4` so that the SDK's signatures
//! are checked by a second implementation (and by boto3's, in the fidelity test).

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Why a request was refused. The name is the AWS error type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthError {
    /// `MissingAuthenticationTokenException`, `UnrecognizedClientException`,
    /// `InvalidSignatureException` or `IncompleteSignatureException`.
    pub code: &'static str,
    /// The message.
    pub message: String,
}

fn fail(code: &'static str, message: impl Into<String>) -> AuthError {
    AuthError {
        code,
        message: message.into(),
    }
}

/// Test credentials the emulator accepts: access key id -> (secret, session token).
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    keys: HashMap<String, (String, Option<String>)>,
}

impl Keyring {
    /// Adds a key pair (and the session token that must accompany it, if any).
    pub fn add(&mut self, access_key_id: &str, secret: &str, token: Option<&str>) {
        self.keys
            .insert(access_key_id.into(), (secret.into(), token.map(Into::into)));
    }
}

/// The parts of a request that SigV4 covers.
pub struct SignedRequest<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// The path exactly as received (percent-encoded).
    pub raw_path: &'a str,
    /// The raw query string.
    pub query: &'a str,
    /// Header (lower-case name, value) pairs.
    pub headers: &'a [(String, String)],
    /// The body.
    pub body: &'a [u8],
}

/// RFC 3986 encoding as SigV4 wants it: unreserved characters kept, `/` kept if asked.
pub fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = <HmacSha256 as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key"));
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// Verifies the `Authorization` header of `req` at `now` (`YYYYMMDDTHHMMSSZ` compared as
/// time) for the `bedrock` signing name (Bedrock Agents). Returns the access key id on success.
pub fn verify(
    req: &SignedRequest<'_>,
    keys: &Keyring,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<String, AuthError> {
    verify_for_service(req, keys, now, "bedrock")
}

/// [`verify`] for another signing name (`bedrock-agentcore` for AgentCore Runtime): the
/// credential scope must name `service`.
pub fn verify_for_service(
    req: &SignedRequest<'_>,
    keys: &Keyring,
    now: chrono::DateTime<chrono::Utc>,
    expected_service: &str,
) -> Result<String, AuthError> {
    let header = |name: &str| {
        req.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let auth = header("authorization").ok_or_else(|| {
        fail(
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        )
    })?;
    let rest = auth.strip_prefix("AWS4-HMAC-SHA256 ").ok_or_else(|| {
        fail(
            "IncompleteSignatureException",
            "Authorization header must use AWS4-HMAC-SHA256",
        )
    })?;
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed_headers = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let (Some(credential), Some(signed_headers), Some(signature)) =
        (credential, signed_headers, signature)
    else {
        return Err(fail(
            "IncompleteSignatureException",
            "Authorization header is missing Credential, SignedHeaders or Signature",
        ));
    };
    let scope: Vec<&str> = credential.split('/').collect();
    let [akid, date, region, service, terminator] = scope[..] else {
        return Err(fail(
            "IncompleteSignatureException",
            format!("malformed credential scope {credential:?}"),
        ));
    };
    if terminator != "aws4_request" || service != expected_service {
        return Err(fail(
            "InvalidSignatureException",
            format!("credential scope must be for service '{expected_service}', got {service:?}"),
        ));
    }
    let (secret, token) = keys.keys.get(akid).ok_or_else(|| {
        fail(
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        )
    })?;
    let signed: Vec<&str> = signed_headers.split(';').collect();
    for required in ["host", "x-amz-date"] {
        if !signed.contains(&required) {
            return Err(fail(
                "InvalidSignatureException",
                format!("'{required}' must be a signed header"),
            ));
        }
    }
    let amz_date = header("x-amz-date")
        .ok_or_else(|| fail("IncompleteSignatureException", "missing x-amz-date"))?;
    let when = chrono::NaiveDateTime::parse_from_str(amz_date, "%Y%m%dT%H%M%SZ")
        .map_err(|_| {
            fail(
                "IncompleteSignatureException",
                "x-amz-date must be YYYYMMDDTHHMMSSZ",
            )
        })?
        .and_utc();
    if (now - when).num_seconds().abs() > 300 {
        return Err(fail(
            "InvalidSignatureException",
            "Signature expired: the request time is more than 5 minutes from the server time",
        ));
    }
    if !amz_date.starts_with(date) {
        return Err(fail(
            "InvalidSignatureException",
            "credential scope date does not match x-amz-date",
        ));
    }
    if let Some(t) = token {
        if header("x-amz-security-token") != Some(t.as_str()) {
            return Err(fail(
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            ));
        }
        if !signed.contains(&"x-amz-security-token") {
            return Err(fail(
                "InvalidSignatureException",
                "x-amz-security-token must be signed",
            ));
        }
    }

    let mut canonical_headers = String::new();
    for name in &signed {
        let values: Vec<String> = req
            .headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        if values.is_empty() {
            return Err(fail(
                "InvalidSignatureException",
                format!("signed header {name:?} is not in the request"),
            ));
        }
        canonical_headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    let payload_hash = hex::encode(Sha256::digest(req.body));
    if let Some(claimed) = header("x-amz-content-sha256")
        && claimed != "UNSIGNED-PAYLOAD"
        && claimed != payload_hash
    {
        return Err(fail(
            "InvalidSignatureException",
            "x-amz-content-sha256 does not match the body",
        ));
    }
    let mut query: Vec<(String, String)> = req
        .query
        .split('&')
        .filter(|q| !q.is_empty())
        .map(|q| {
            let (k, v) = q.split_once('=').unwrap_or((q, ""));
            (uri_encode(&decode(k), false), uri_encode(&decode(v), false))
        })
        .collect();
    query.sort();
    let canonical_query = query
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let canonical_request = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        uri_encode(req.raw_path, true),
        canonical_query,
        canonical_headers,
        signed_headers,
        payload_hash
    );
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    let k_signing = hmac(&k_service, b"aws4_request");
    let expected = hex::encode(hmac(&k_signing, string_to_sign.as_bytes()));
    if expected.as_bytes().ct_eq(signature.as_bytes()).into() {
        Ok(akid.to_string())
    } else {
        Err(fail(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.",
        ))
    }
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `get-vanilla` case of the AWS SigV4 test suite (service `service`, so checked
    /// through the primitives rather than `verify`, which insists on `bedrock`).
    #[test]
    fn derives_the_aws_test_suite_signature() {
        let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
        let creq = "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let sts = format!(
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n{}",
            hex::encode(Sha256::digest(creq.as_bytes()))
        );
        let k = hmac(
            &hmac(
                &hmac(
                    &hmac(format!("AWS4{secret}").as_bytes(), b"20150830"),
                    b"us-east-1",
                ),
                b"service",
            ),
            b"aws4_request",
        );
        assert_eq!(
            hex::encode(hmac(&k, sts.as_bytes())),
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    #[test]
    fn uri_encoding_keeps_unreserved_and_encodes_the_rest() {
        assert_eq!(uri_encode("/a b/c:d~e", true), "/a%20b/c%3Ad~e");
        assert_eq!(uri_encode("/x%3Ay", true), "/x%253Ay");
    }

    #[test]
    fn missing_or_unknown_credentials_are_refused() {
        let keys = Keyring::default();
        let req = SignedRequest {
            method: "POST",
            raw_path: "/",
            query: "",
            headers: &[],
            body: b"",
        };
        assert_eq!(
            verify(&req, &keys, chrono::Utc::now()).unwrap_err().code,
            "MissingAuthenticationTokenException"
        );
        let headers = vec![("authorization".to_string(), "AWS4-HMAC-SHA256 Credential=NOPE/20240101/us-east-1/bedrock/aws4_request, SignedHeaders=host;x-amz-date, Signature=00".to_string())];
        let req = SignedRequest {
            method: "POST",
            raw_path: "/",
            query: "",
            headers: &headers,
            body: b"",
        };
        assert_eq!(
            verify(&req, &keys, chrono::Utc::now()).unwrap_err().code,
            "UnrecognizedClientException"
        );
    }
}
