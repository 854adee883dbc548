//! AgentCore Runtime ARNs: `arn:{partition}:bedrock-agentcore:{region}:{account}:runtime/{id}`.

use std::fmt;

/// What a model string must look like, for error messages.
pub const EXPECTED: &str =
    "bedrock/agentcore/arn:aws:bedrock-agentcore:{REGION}:{ACCOUNT}:runtime/{RUNTIME_ID}";

/// A parsed runtime ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeArn {
    /// The whole ARN, as given.
    pub arn: String,
    /// Its region (signing region unless `aws_region_name` overrides it).
    pub region: String,
    /// The account ID (12 digits).
    pub account: String,
    /// The runtime ID (`{name}-{suffix}`).
    pub runtime_id: String,
}

impl RuntimeArn {
    /// Parses `bedrock/agentcore/ARN`, `agentcore/ARN` or a bare ARN; `None` when it is not a
    /// runtime ARN.
    ///
    /// ```
    /// use agentbridge::agentcore::arn::RuntimeArn;
    /// let a = RuntimeArn::parse(
    ///     "bedrock/agentcore/arn:aws:bedrock-agentcore:us-west-2:123456789012:runtime/my_agent-AbCdE12345",
    /// ).unwrap();
    /// assert_eq!(a.region, "us-west-2");
    /// assert!(RuntimeArn::parse("bedrock/agentcore/my_agent").is_none());
    /// ```
    pub fn parse(model: &str) -> Option<Self> {
        let rest = model.strip_prefix("bedrock/").unwrap_or(model);
        let arn = rest.strip_prefix("agentcore/").unwrap_or(rest);
        let mut parts = arn.splitn(6, ':');
        let (Some("arn"), Some(partition), Some("bedrock-agentcore"), Some(region)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let (Some(account), Some(resource)) = (parts.next(), parts.next()) else {
            return None;
        };
        let runtime_id = resource.strip_prefix("runtime/")?;
        let region_ok = !region.is_empty()
            && region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        let id_ok = !runtime_id.is_empty()
            && runtime_id.len() <= 100
            && runtime_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        let account_ok = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
        (partition.starts_with("aws") && region_ok && id_ok && account_ok).then(|| Self {
            arn: arn.to_string(),
            region: region.to_string(),
            account: account.to_string(),
            runtime_id: runtime_id.to_string(),
        })
    }
}

impl fmt::Display for RuntimeArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bedrock/agentcore/{}", self.arn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str =
        "arn:aws:bedrock-agentcore:eu-central-1:123456789012:runtime/hosted_agent-AbCdE12345";

    #[test]
    fn accepts_every_spelling_and_reads_the_region() {
        for s in [
            format!("bedrock/agentcore/{ARN}"),
            format!("agentcore/{ARN}"),
            ARN.to_string(),
        ] {
            let a = RuntimeArn::parse(&s).unwrap();
            assert_eq!(a.arn, ARN);
            assert_eq!(a.region, "eu-central-1");
            assert_eq!(a.account, "123456789012");
            assert_eq!(a.runtime_id, "hosted_agent-AbCdE12345");
            assert_eq!(a.to_string(), format!("bedrock/agentcore/{ARN}"));
        }
        assert!(RuntimeArn::parse(
            "bedrock/agentcore/arn:aws-us-gov:bedrock-agentcore:us-gov-west-1:123456789012:runtime/a-1"
        )
        .is_some());
    }

    #[test]
    fn rejects_what_is_not_a_runtime_arn() {
        for s in [
            "bedrock/agentcore/",
            "bedrock/agentcore/my-agent",
            "bedrock/agentcore/arn:aws:bedrock:us-west-2:123456789012:runtime/a-1",
            "bedrock/agentcore/arn:aws:bedrock-agentcore:us-west-2:123456789012:agent/a-1",
            "bedrock/agentcore/arn:aws:bedrock-agentcore:us-west-2:1234:runtime/a-1",
            "bedrock/agentcore/arn:aws:bedrock-agentcore::123456789012:runtime/a-1",
            "bedrock/agentcore/arn:aws:bedrock-agentcore:us-west-2:123456789012:runtime/",
            "bedrock/agentcore/arn:aws:bedrock-agentcore:us-west-2:123456789012:runtime/a/b",
            "bedrock/agentcore/arn:aws:bedrock-agentcore:US_WEST:123456789012:runtime/a-1",
        ] {
            assert!(RuntimeArn::parse(s).is_none(), "{s}");
        }
    }
}
