//! On-demand prices of the foundation models Bedrock agents run on, in USD per token.
//!
//! Prices are the public on-demand list prices (US regions) per 1M tokens, divided down. A
//! deployment can override them with `input_cost_per_token` / `output_cost_per_token`.

/// A price per input and output token, in USD.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    /// USD per input token.
    pub input: f64,
    /// USD per output token.
    pub output: f64,
}

impl Price {
    const fn per_million(input: f64, output: f64) -> Self {
        Self {
            input: input / 1e6,
            output: output / 1e6,
        }
    }

    /// The cost of a number of tokens.
    pub fn cost(&self, input_tokens: u64, output_tokens: u64) -> f64 {
        self.input * input_tokens as f64 + self.output * output_tokens as f64
    }
}

/// (model id prefix, price). Looked up by longest matching prefix of the normalized id.
const TABLE: &[(&str, Price)] = &[
    // Anthropic
    ("anthropic.claude-opus-4", Price::per_million(15.0, 75.0)),
    ("anthropic.claude-sonnet-4", Price::per_million(3.0, 15.0)),
    ("anthropic.claude-haiku-4-5", Price::per_million(1.0, 5.0)),
    ("anthropic.claude-3-7-sonnet", Price::per_million(3.0, 15.0)),
    ("anthropic.claude-3-5-sonnet", Price::per_million(3.0, 15.0)),
    ("anthropic.claude-3-5-haiku", Price::per_million(0.8, 4.0)),
    ("anthropic.claude-3-opus", Price::per_million(15.0, 75.0)),
    ("anthropic.claude-3-sonnet", Price::per_million(3.0, 15.0)),
    ("anthropic.claude-3-haiku", Price::per_million(0.25, 1.25)),
    ("anthropic.claude-v2", Price::per_million(8.0, 24.0)),
    ("anthropic.claude-instant", Price::per_million(0.8, 2.4)),
    // Amazon
    ("amazon.nova-premier", Price::per_million(2.5, 12.5)),
    ("amazon.nova-pro", Price::per_million(0.8, 3.2)),
    ("amazon.nova-lite", Price::per_million(0.06, 0.24)),
    ("amazon.nova-micro", Price::per_million(0.035, 0.14)),
    ("amazon.titan-text-premier", Price::per_million(0.5, 1.5)),
    ("amazon.titan-text-express", Price::per_million(0.2, 0.6)),
    ("amazon.titan-text-lite", Price::per_million(0.15, 0.2)),
    // Meta
    ("meta.llama3-3-70b", Price::per_million(0.72, 0.72)),
    ("meta.llama3-2-90b", Price::per_million(0.72, 0.72)),
    ("meta.llama3-2-11b", Price::per_million(0.16, 0.16)),
    ("meta.llama3-2-3b", Price::per_million(0.15, 0.15)),
    ("meta.llama3-2-1b", Price::per_million(0.1, 0.1)),
    ("meta.llama3-1-405b", Price::per_million(2.4, 2.4)),
    ("meta.llama3-1-70b", Price::per_million(0.72, 0.72)),
    ("meta.llama3-1-8b", Price::per_million(0.22, 0.22)),
    ("meta.llama3-70b", Price::per_million(2.65, 3.5)),
    ("meta.llama3-8b", Price::per_million(0.3, 0.6)),
    // Mistral
    ("mistral.mistral-large-2407", Price::per_million(2.0, 6.0)),
    ("mistral.mistral-large-2402", Price::per_million(4.0, 12.0)),
    ("mistral.mistral-small", Price::per_million(1.0, 3.0)),
    ("mistral.mixtral-8x7b", Price::per_million(0.45, 0.7)),
    ("mistral.mistral-7b", Price::per_million(0.15, 0.2)),
    // Cohere
    ("cohere.command-r-plus", Price::per_million(3.0, 15.0)),
    ("cohere.command-r", Price::per_million(0.5, 1.5)),
    ("cohere.command-light-text", Price::per_million(0.3, 0.6)),
    ("cohere.command-text", Price::per_million(1.5, 2.0)),
];

/// Strips an ARN prefix (`arn:...:foundation-model/` or `inference-profile/`) and a
/// cross-region inference profile prefix (`us.`, `eu.`, `apac.`, `global.`, ...).
pub fn normalize(model: &str) -> &str {
    let id = model.rsplit('/').next().unwrap_or(model);
    match id.split_once('.') {
        Some((prefix, rest)) if !prefix.is_empty() && prefix.len() <= 6 && rest.contains('.') => {
            if [
                "anthropic",
                "amazon",
                "meta",
                "mistral",
                "cohere",
                "ai21",
                "deepseek",
                "openai",
                "qwen",
                "writer",
            ]
            .contains(&prefix)
            {
                id
            } else {
                rest
            }
        }
        _ => id,
    }
}

/// The list price of a foundation model, if known.
pub fn price(model: &str) -> Option<Price> {
    let id = normalize(model);
    TABLE
        .iter()
        .filter(|(prefix, _)| id.starts_with(prefix))
        .max_by_key(|(prefix, _)| prefix.len())
        .map(|(_, p)| *p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_prices_through_arns_and_inference_profiles() {
        let sonnet = Price::per_million(3.0, 15.0);
        for id in [
            "anthropic.claude-3-5-sonnet-20241022-v2:0",
            "us.anthropic.claude-3-5-sonnet-20241022-v2:0",
            "arn:aws:bedrock:us-west-2::foundation-model/anthropic.claude-3-5-sonnet-20240620-v1:0",
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-sonnet-20241022-v2:0",
        ] {
            assert_eq!(price(id), Some(sonnet), "{id}");
        }
        assert_eq!(
            price("anthropic.claude-3-5-haiku-20241022-v1:0"),
            Some(Price::per_million(0.8, 4.0))
        );
        assert_eq!(
            price("cohere.command-r-plus-v1:0"),
            Some(Price::per_million(3.0, 15.0))
        );
        assert_eq!(
            price("cohere.command-r-v1:0"),
            Some(Price::per_million(0.5, 1.5))
        );
        assert_eq!(price("unknown.model"), None);
    }

    #[test]
    fn every_family_the_issue_names_is_priced() {
        for id in [
            "anthropic.claude-3-haiku-20240307-v1:0",
            "amazon.nova-pro-v1:0",
            "amazon.titan-text-express-v1",
            "meta.llama3-1-70b-instruct-v1:0",
            "mistral.mistral-large-2407-v1:0",
            "cohere.command-r-v1:0",
        ] {
            assert!(price(id).is_some(), "{id}");
        }
    }

    #[test]
    fn cost_is_tokens_times_price() {
        let p = Price::per_million(3.0, 15.0);
        assert!((p.cost(1000, 100) - 0.0045).abs() < 1e-12);
    }
}
