//! The HTTP client of aws-config's credential and region providers (STS, SSO, IMDS, the EKS
//! Pod Identity / ECS container endpoint): rustls with ring, the TLS stack of the InvokeAgent
//! client, so the build compiles one crypto provider (aws-config's default client would
//! bring aws-lc as a second one).

use aws_config::meta::region::RegionProviderChain;
use aws_config::provider_config::ProviderConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::SharedHttpClient;

/// An HTTPS client over rustls with ring, trusting the system's roots.
pub(crate) fn http_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// Configuration for an aws-config provider: [`http_client`], and `region`.
pub(crate) fn provider_config(region: Option<Region>) -> ProviderConfig {
    ProviderConfig::default()
        .with_http_client(http_client())
        .with_region(region)
}

/// SDK configuration for the clients aws-config builds itself (STS for assume-role).
pub(crate) async fn sdk_config(region: Region) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client())
        .region(region)
        .load()
        .await
}

/// The default region chain: `AWS_REGION` / `AWS_DEFAULT_REGION`, the profile, IMDS.
pub(crate) async fn default_region() -> Option<Region> {
    use aws_config::environment::EnvironmentVariableRegionProvider;
    use aws_config::imds::region::ImdsRegionProvider;
    use aws_config::profile::ProfileFileRegionProvider;
    let conf = provider_config(None);
    RegionProviderChain::first_try(EnvironmentVariableRegionProvider::new())
        .or_else(
            ProfileFileRegionProvider::builder()
                .configure(&conf)
                .build(),
        )
        .or_else(ImdsRegionProvider::builder().configure(&conf).build())
        .region()
        .await
}
