//! HAT onboarding set-up: the test HAT cluster (dex-tests), served in-process, a certified
//! cluster for its HATs, and HATs registered through DEX's own registration path.
//!
//! The bench's own DEX calls go straight to the emulators (`AWS_ENDPOINT_URL_*` of the bench's
//! environment), not through the counting proxies: only the functions' requests are counted.

use std::time::Instant;

use futures_util::StreamExt;

use dex::DexError;
use dex::accounts::Actor;
use dex::config::Config;
use dex::hats::clusters::NewCluster;
use dex::hats::register::{Outcome, RegisterHat};
use dex_lambda::App;
use dex_tests::test_hat::{TestHat, TestHatCluster};

/// The certified cluster domain of the bench's HATs (`<label>.hubat.net:<port>`).
pub const CLUSTER_DOMAIN: &str = "hubat.net";

/// What the functions need to reach the test HATs (docs/decisions.md §6): plain HTTP, every HAT host
/// name resolved to the loopback address where the cluster listens.
pub const HAT_SCHEME: &str = "http";
pub const HAT_RESOLVE: &str = "127.0.0.1";

pub struct HatSetup {
    pub cluster: TestHatCluster,
    /// DEX as a library, configured like the functions (same table, secrets, HAT settings).
    pub app: App,
    pub public_url: String,
    /// Whether the bench certified the cluster (false: it was certified already).
    pub certified_now: bool,
    /// Test HATs made so far and the seconds their keys took.
    pub hats_made: usize,
    pub keygen_seconds: f64,
}

/// DEX as a library, configured like the functions: the bench's environment (table, secrets,
/// emulators) with the HAT settings of [`HAT_SCHEME`] / [`HAT_RESOLVE`] and `public_url`.
pub async fn dex_app(public_url: &str) -> Result<App, String> {
    let config = Config::from_lookup(|name| match name {
        "DEX_HAT_SCHEME" => Some(HAT_SCHEME.to_owned()),
        "DEX_HAT_RESOLVE" => Some(HAT_RESOLVE.to_owned()),
        "DEX_LOCAL_STACK" => Some("1".to_owned()),
        "DEX_PUBLIC_URL" => Some(public_url.to_owned()),
        _ => std::env::var(name).ok(),
    })
    .map_err(|e| e.to_string())?;
    let (dynamodb, secrets) = dex_aws::aws_clients().await;
    Ok(App::with_clients(config, dynamodb, secrets))
}

/// Starts the test HAT cluster and certifies [`CLUSTER_DOMAIN`] with its platform user.
pub async fn setup(public_url: &str) -> Result<HatSetup, String> {
    let cluster = TestHatCluster::start().await;
    let app = dex_app(public_url).await?;
    let (username, password) = cluster.platform_credentials();
    let certified_now = match app
        .clusters()
        .certify(
            &Actor::Operator,
            NewCluster {
                domain: CLUSTER_DOMAIN.to_owned(),
                platform_username: username,
                platform_password: password,
                provisioners: Vec::new(),
            },
        )
        .await
    {
        Ok(_) => true,
        // A stack the bench ran against before: the cluster is there already.
        Err(DexError::Conflict(_)) => false,
        Err(e) => return Err(format!("certifying {CLUSTER_DOMAIN}: {}", describe(&e))),
    };
    Ok(HatSetup {
        cluster,
        app,
        public_url: public_url.to_owned(),
        certified_now,
        hats_made: 0,
        keygen_seconds: 0.0,
    })
}

pub fn describe(e: &DexError) -> String {
    format!("{} ({e:?})", e.body().message)
}

impl HatSetup {
    /// Makes `count` test HATs `<prefix>-NNNN.hubat.net:<port>` (a fresh 2048-bit RSA key
    /// each, generated on two threads).
    pub fn add_hats(&mut self, prefix: &str, count: usize) -> Vec<TestHat> {
        if count == 0 {
            return Vec::new();
        }
        let started = Instant::now();
        let labels: Vec<String> = (0..count)
            .map(|i| format!("{prefix}-{i:04}.{CLUSTER_DOMAIN}"))
            .collect();
        let threads = 2.min(count);
        let cluster = &self.cluster;
        let mut parts: Vec<Vec<(usize, TestHat)>> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|t| {
                    let labels = &labels;
                    scope.spawn(move || {
                        (t..labels.len())
                            .step_by(threads)
                            .map(|i| (i, cluster.add_hat(&labels[i])))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().expect("key generation thread"))
                .collect()
        });
        let mut hats: Vec<(usize, TestHat)> = parts.drain(..).flatten().collect();
        hats.sort_by_key(|(i, _)| *i);
        self.hats_made += count;
        self.keygen_seconds += started.elapsed().as_secs_f64();
        hats.into_iter().map(|(_, h)| h).collect()
    }

    /// `count` test HATs `<prefix>-NNNN.hubat.net:<port>` sharing one key (for cases that
    /// need hundreds of HATs and never tell them apart by key), registered.
    pub async fn registered_hats_sharing_key(
        &mut self,
        prefix: &str,
        count: usize,
    ) -> Result<Vec<TestHat>, String> {
        let first = self.add_hats(prefix, 1).remove(0);
        let mut hats = vec![first.clone()];
        for i in 1..count {
            let label = format!("{prefix}-{i:04}.{CLUSTER_DOMAIN}");
            hats.push(self.cluster.add_hat_sharing_key(&label, &first));
        }
        let registered: Vec<Result<_, String>> = futures_util::stream::iter(hats.iter())
            .map(|h| self.register(h))
            .buffer_unordered(8)
            .collect()
            .await;
        registered.into_iter().collect::<Result<Vec<_>, _>>()?;
        Ok(hats)
    }

    /// Registers `hat` through DEX's registration use case (its key fetched from the test
    /// cluster), as `POST /api/users/registerHat` does.
    pub async fn register(&self, hat: &TestHat) -> Result<Outcome, String> {
        let fail = |e: DexError| format!("registering {}: {}", hat.address(), describe(&e));
        self.app
            .registration()
            .map_err(fail)?
            .register(
                RegisterHat {
                    hat_address: hat.address().to_owned(),
                    application_id: None,
                },
                None,
            )
            .await
            .map(|(_, outcome)| outcome)
            .map_err(fail)
    }

    /// The token `hat` sends DEX (RS256, `resource` = the bench's public URL).
    pub fn token(&self, hat: &TestHat) -> String {
        hat.dex_token(&self.public_url)
    }
}
