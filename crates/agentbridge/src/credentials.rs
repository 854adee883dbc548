//! AWS credentials for a deployment, from `aws-config`'s providers, cached and refreshed in
//! the background before they expire so that no request waits on STS or IMDS.
//!
//! Sources, in order: explicit keys (`aws_access_key_id`/`aws_secret_access_key`/
//! `aws_session_token`), a profile (`aws_profile_name`), web identity
//! (`aws_web_identity_token` with `aws_role_name`), otherwise the default chain. With
//! `aws_role_name` (and no web identity token) the role is assumed from that base.

use crate::error::{Error, Result};
use aws_config::Region;
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use secrecy::{ExposeSecret, SecretString};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

/// Refresh this long before expiry, in the background.
const REFRESH_AHEAD: Duration = Duration::from_secs(300);

/// How a deployment authenticates (LiteLLM's `aws_*` parameters).
#[derive(Debug, Clone, Default)]
pub struct AwsAuth {
    /// `aws_access_key_id`.
    pub access_key_id: Option<SecretString>,
    /// `aws_secret_access_key`.
    pub secret_access_key: Option<SecretString>,
    /// `aws_session_token`.
    pub session_token: Option<SecretString>,
    /// `aws_profile_name`.
    pub profile_name: Option<String>,
    /// `aws_role_name`: a role ARN to assume.
    pub role_name: Option<String>,
    /// `aws_session_name` for the assumed role.
    pub session_name: Option<String>,
    /// `aws_web_identity_token`: the token, or a path to a file holding it.
    pub web_identity_token: Option<SecretString>,
    /// `aws_external_id` for assume-role.
    pub external_id: Option<String>,
}

/// A credentials provider with a cache refreshed ahead of expiry.
///
/// Refreshes run on the runtime the cache was made on: a provider's HTTP connections (STS,
/// IMDS, SSO) then live on one runtime however many runtimes ask for credentials.
#[derive(Debug)]
pub struct CredentialCache {
    provider: SharedCredentialsProvider,
    current: RwLock<Option<Credentials>>,
    refreshing: tokio::sync::Mutex<()>,
    /// Where refreshes run (the caller's runtime when the cache was made outside one).
    home: Option<tokio::runtime::Handle>,
}

impl CredentialCache {
    /// Builds the provider for `auth` in `region`.
    pub async fn new(auth: &AwsAuth, region: Region) -> Result<Arc<Self>> {
        Ok(Self::from_provider(provider(auth, region).await?))
    }

    /// A cache in front of any provider.
    pub fn from_provider(provider: SharedCredentialsProvider) -> Arc<Self> {
        Arc::new(Self {
            provider,
            current: RwLock::new(None),
            refreshing: tokio::sync::Mutex::new(()),
            home: tokio::runtime::Handle::try_current().ok(),
        })
    }

    fn home(&self) -> tokio::runtime::Handle {
        self.home
            .clone()
            .unwrap_or_else(tokio::runtime::Handle::current)
    }

    /// Credentials valid now. Fresh ones are returned from the cache; ones about to expire
    /// are returned too while a background task fetches the next; expired or missing ones
    /// are fetched (once, for all waiting requests).
    pub async fn get(self: &Arc<Self>) -> Result<Credentials> {
        let now = SystemTime::now();
        if let Some(c) = self.cached() {
            match c.expiry() {
                None => return Ok(c),
                Some(exp) if exp > now + REFRESH_AHEAD => return Ok(c),
                Some(exp) if exp > now => {
                    let me = Arc::clone(self);
                    self.home().spawn(async move {
                        if let Ok(_guard) = me.refreshing.try_lock()
                            && let Err(e) = me.refresh().await
                        {
                            tracing::warn!(error = %e, "background credential refresh failed");
                        }
                    });
                    return Ok(c);
                }
                Some(_) => {}
            }
        }
        let _guard = self.refreshing.lock().await;
        if let Some(c) = self.cached()
            && c.expiry().is_none_or(|e| e > SystemTime::now())
        {
            return Ok(c);
        }
        let me = Arc::clone(self);
        self.home()
            .spawn(async move { me.refresh().await })
            .await
            .map_err(|e| Error::Credentials(format!("credential refresh task: {e}")))?
    }

    fn cached(&self) -> Option<Credentials> {
        self.current.read().ok().and_then(|c| c.clone())
    }

    async fn refresh(&self) -> Result<Credentials> {
        let c = self
            .provider
            .provide_credentials()
            .await
            .map_err(|e| Error::Credentials(e.to_string()))?;
        if let Ok(mut cur) = self.current.write() {
            *cur = Some(c.clone());
        }
        Ok(c)
    }
}

async fn provider(auth: &AwsAuth, region: Region) -> Result<SharedCredentialsProvider> {
    use aws_config::default_provider::credentials::DefaultCredentialsChain;
    use aws_config::profile::ProfileFileCredentialsProvider;
    use aws_config::web_identity_token::{
        StaticConfiguration, WebIdentityTokenCredentialsProvider,
    };

    if let Some(token) = &auth.web_identity_token {
        let role = auth.role_name.clone().ok_or_else(|| {
            Error::Credentials(
                "aws_web_identity_token needs aws_role_name (the role ARN to assume)".into(),
            )
        })?;
        let file = token_file(token)?;
        let conf = crate::aws_http::provider_config(Some(region));
        let p = WebIdentityTokenCredentialsProvider::builder()
            .configure(&conf)
            .static_configuration(StaticConfiguration {
                web_identity_token_file: file,
                role_arn: role,
                session_name: auth
                    .session_name
                    .clone()
                    .unwrap_or_else(|| "agentbridge".into()),
            })
            .build();
        return Ok(SharedCredentialsProvider::new(p));
    }

    let base = match (&auth.access_key_id, &auth.secret_access_key) {
        (Some(ak), Some(sk)) => SharedCredentialsProvider::new(Credentials::new(
            ak.expose_secret(),
            sk.expose_secret(),
            auth.session_token
                .as_ref()
                .map(|t| t.expose_secret().to_string()),
            None,
            "agentbridge-config",
        )),
        (Some(_), None) | (None, Some(_)) => {
            return Err(Error::Credentials(
                "aws_access_key_id and aws_secret_access_key must be given together".into(),
            ));
        }
        (None, None) => match &auth.profile_name {
            Some(p) => SharedCredentialsProvider::new(
                ProfileFileCredentialsProvider::builder()
                    .profile_name(p)
                    .configure(&crate::aws_http::provider_config(Some(region.clone())))
                    .build(),
            ),
            None => SharedCredentialsProvider::new(
                DefaultCredentialsChain::builder()
                    .region(region.clone())
                    .configure(crate::aws_http::provider_config(Some(region.clone())))
                    .build()
                    .await,
            ),
        },
    };

    match &auth.role_name {
        None => Ok(base),
        Some(role) => {
            let mut b = aws_config::sts::AssumeRoleProvider::builder(role)
                .configure(&crate::aws_http::sdk_config(region.clone()).await)
                .session_name(
                    auth.session_name
                        .clone()
                        .unwrap_or_else(|| "agentbridge".into()),
                )
                .region(region);
            if let Some(id) = &auth.external_id {
                b = b.external_id(id);
            }
            Ok(SharedCredentialsProvider::new(
                b.build_from_provider(base).await,
            ))
        }
    }
}

/// The web identity token as a file: the value itself when it names an existing file,
/// otherwise written to a private temporary file (the provider reads tokens from files).
fn token_file(token: &SecretString) -> Result<std::path::PathBuf> {
    let value = token.expose_secret();
    let path = std::path::Path::new(value);
    if path.is_file() {
        return Ok(path.to_path_buf());
    }
    let file =
        std::env::temp_dir().join(format!("agentbridge-web-identity-{}", uuid::Uuid::new_v4()));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts
        .open(&file)
        .map_err(|e| Error::Credentials(format!("web identity token file: {e}")))?;
    std::io::Write::write_all(&mut f, value.as_bytes())
        .map_err(|e| Error::Credentials(format!("web identity token file: {e}")))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn explicit_keys_are_used_and_cached() {
        let auth = AwsAuth {
            access_key_id: Some("AKIDEXAMPLE".into()),
            secret_access_key: Some("secret".into()),
            session_token: Some("tok".into()),
            ..Default::default()
        };
        let cache = CredentialCache::new(&auth, Region::new("us-west-2"))
            .await
            .unwrap();
        let c = cache.get().await.unwrap();
        assert_eq!(c.access_key_id(), "AKIDEXAMPLE");
        assert_eq!(c.session_token(), Some("tok"));
        assert!(cache.cached().is_some());
    }

    #[tokio::test]
    async fn half_given_keys_are_an_error() {
        let auth = AwsAuth {
            access_key_id: Some("AKID".into()),
            ..Default::default()
        };
        assert!(
            CredentialCache::new(&auth, Region::new("us-west-2"))
                .await
                .is_err()
        );
    }

    #[derive(Debug, Default)]
    struct Counting {
        calls: std::sync::atomic::AtomicU32,
        lifetime: Duration,
        /// The thread of each call.
        threads: std::sync::Mutex<Vec<String>>,
    }

    impl ProvideCredentials for Counting {
        fn provide_credentials<'a>(
            &'a self,
        ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            let n = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let thread = std::thread::current().name().unwrap_or("?").to_string();
            self.threads.lock().unwrap().push(thread);
            let expiry = SystemTime::now() + self.lifetime;
            aws_credential_types::provider::future::ProvideCredentials::ready(Ok(Credentials::new(
                format!("AKID{n}"),
                "s",
                None,
                Some(expiry),
                "test",
            )))
        }
    }

    #[tokio::test]
    async fn expiring_credentials_are_refreshed_in_the_background() {
        let p = std::sync::Arc::new(Counting {
            lifetime: Duration::from_secs(60),
            ..Default::default()
        });
        let cache =
            CredentialCache::from_provider(SharedCredentialsProvider::new(ArcProvider(p.clone())));
        assert_eq!(cache.get().await.unwrap().access_key_id(), "AKID0");
        // Within the refresh window: the current credentials come back at once...
        assert_eq!(cache.get().await.unwrap().access_key_id(), "AKID0");
        // ...and the next ones arrive from a background task.
        for _ in 0..100 {
            if cache.cached().map(|c| c.access_key_id().to_string()) == Some("AKID1".into()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("no background refresh");
    }

    #[tokio::test]
    async fn fresh_credentials_are_not_fetched_again() {
        let p = std::sync::Arc::new(Counting {
            lifetime: Duration::from_secs(3600),
            ..Default::default()
        });
        let cache =
            CredentialCache::from_provider(SharedCredentialsProvider::new(ArcProvider(p.clone())));
        for _ in 0..10 {
            cache.get().await.unwrap();
        }
        assert_eq!(p.calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn refreshes_run_on_the_runtime_that_made_the_cache() {
        let home = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("home-rt")
            .enable_all()
            .build()
            .unwrap();
        let p = std::sync::Arc::new(Counting {
            lifetime: Duration::from_secs(60),
            ..Default::default()
        });
        let cache = home.block_on(async {
            CredentialCache::from_provider(SharedCredentialsProvider::new(ArcProvider(p.clone())))
        });
        // Asked for on another runtime, on another thread: the first fetch and the
        // background refresh both run on the home runtime.
        std::thread::Builder::new()
            .name("worker-rt".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    assert_eq!(cache.get().await.unwrap().access_key_id(), "AKID0");
                    assert_eq!(cache.get().await.unwrap().access_key_id(), "AKID0");
                    for _ in 0..100 {
                        if cache.cached().map(|c| c.access_key_id().to_string())
                            == Some("AKID1".into())
                        {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    panic!("no background refresh");
                })
            })
            .unwrap()
            .join()
            .unwrap();
        let threads = p.threads.lock().unwrap().clone();
        assert_eq!(threads, ["home-rt", "home-rt"]);
    }

    #[derive(Debug)]
    struct ArcProvider(std::sync::Arc<Counting>);

    impl ProvideCredentials for ArcProvider {
        fn provide_credentials<'a>(
            &'a self,
        ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            self.0.provide_credentials()
        }
    }

    #[test]
    fn secrets_do_not_show_in_debug() {
        let auth = AwsAuth {
            secret_access_key: Some("very-secret-value".into()),
            ..Default::default()
        };
        assert!(!format!("{auth:?}").contains("very-secret-value"));
    }
}
