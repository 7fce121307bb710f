//! Reaching AWS: the base configuration from the standard credential chain (environment, shared
//! config and credentials files with `--profile`, SSO, credential_process, web identity, ECS and
//! EC2 instance metadata), one more account per `--assume-role`, the accounts' ids from
//! `sts:GetCallerIdentity`, and per-service, per-region clients with the right endpoint.
//!
//! Endpoints: a service-specific `AWS_ENDPOINT_URL_<SERVICE>` variable (the SDK's standard one,
//! e.g. `AWS_ENDPOINT_URL_CLOUDTRAIL`) wins over `--endpoint-url`, which wins over the global
//! `AWS_ENDPOINT_URL` and the `endpoint_url` of the shared config file.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_iam::config::SharedCredentialsProvider;

use super::AwsOptions;
use std::sync::Arc;

use super::context::{AccountId, AttemptWatch, Attempts, Ctx, GLOBAL, RegionName, describe};
use crate::error::{Error, Result};

/// Attempts per request (exponential backoff with jitter between them); the collection as a
/// whole backs off too once throttled (see `context::Attempts`).
const MAX_ATTEMPTS: u32 = 5;

/// The id the base account has until GetCallerIdentity names it.
const UNKNOWN_ACCOUNT: &str = "000000000000";

/// One account to read: its id and the configuration whose credentials reach it.
#[derive(Clone)]
pub struct Account {
    pub id: AccountId,
    /// The ARN partition of the caller (`aws`, `aws-us-gov`, `aws-cn`).
    partition: String,
    config: SdkConfig,
    endpoint_url: Option<String>,
    attempts: Arc<Attempts>,
}

/// Loads the base configuration: standard chain, `--profile`, the first `--region`, retries
/// and timeouts.
///
/// The SDK's standard retry mode, not its adaptive one: the adaptive mode's client-side rate
/// limiter keeps one rate per service and region for the whole process and, once throttled,
/// drops towards half a request per second and climbs back slowly; the collection-wide backoff
/// of `context::Attempts` slows down every task while AWS throttles and recovers as answers
/// come back.
pub async fn load_base(options: &AwsOptions) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(10))
                .read_timeout(Duration::from_secs(60))
                .operation_attempt_timeout(Duration::from_secs(90))
                .build(),
        );
    if let Some(profile) = &options.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = options.regions.first() {
        loader = loader.region(Region::new(region.clone()));
    }
    loader.load().await
}

/// The regions to read Secrets Manager and CloudTrail in: every `--region` given (checked, in
/// order, without repeats), else the configured one.
pub fn regions(options: &AwsOptions, base: &SdkConfig) -> Result<Vec<RegionName>> {
    let names: Vec<String> = if options.regions.is_empty() {
        match base.region() {
            Some(region) => vec![region.to_string()],
            None => {
                return Err(Error::Usage(
                    "no AWS region configured: pass --region (repeatable) or set AWS_REGION"
                        .to_string(),
                ));
            }
        }
    } else {
        options.regions.clone()
    };
    let mut regions: Vec<RegionName> = Vec::new();
    for name in names {
        let region = RegionName::parse(&name).ok_or_else(|| {
            Error::Usage(format!(
                "--region {name:?}: expected an AWS region name like us-east-1"
            ))
        })?;
        if !regions.contains(&region) {
            regions.push(region);
        }
    }
    Ok(regions)
}

/// The account id inside an IAM role ARN (`arn:aws:iam::123456789012:role/name`).
pub fn role_account(arn: &str) -> Option<AccountId> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", partition, "iam", "", account, resource]
            if !partition.is_empty() && resource.starts_with("role/") && resource.len() > 5 =>
        {
            AccountId::parse(account)
        }
        _ => None,
    }
}

/// The endpoint a service's client gets from us: none when the service-specific variable is set
/// (the SDK reads it), else `--endpoint-url`.
fn endpoint_for(options_endpoint: Option<&str>, service_env: &str) -> Option<String> {
    if std::env::var_os(service_env).is_some_and(|v| !v.is_empty()) {
        None
    } else {
        options_endpoint.map(str::to_string)
    }
}

impl Account {
    /// The account the base credentials belong to.
    pub async fn base(ctx: &Ctx, options: &AwsOptions, base: &SdkConfig) -> Result<Account> {
        let mut account = Account {
            id: AccountId::parse(UNKNOWN_ACCOUNT).expect("twelve digits"),
            partition: "aws".to_string(),
            config: base.clone(),
            endpoint_url: options.endpoint_url.clone(),
            attempts: ctx.attempts.clone(),
        };
        (account.id, account.partition) = account.caller_account(ctx).await.map_err(|e| {
            Error::Usage(format!(
                "AWS credentials: sts:GetCallerIdentity failed ({e}); check --profile, AWS_PROFILE \
                 or the credential chain (environment, ~/.aws/config, SSO login, instance role)"
            ))
        })?;
        Ok(account)
    }

    /// The account behind `role_arn`, reached with the base credentials (and `--external-id`).
    /// An assume that fails is recorded as coverage of the ARN's account and gives `None`.
    pub async fn assume(
        ctx: &Ctx,
        options: &AwsOptions,
        base: &SdkConfig,
        role_arn: &str,
        arn_account: &AccountId,
    ) -> Option<Account> {
        let sts_config = match endpoint_for(options.endpoint_url.as_deref(), "AWS_ENDPOINT_URL_STS")
        {
            Some(url) => base.to_builder().endpoint_url(url).build(),
            None => base.clone(),
        };
        let mut provider = AssumeRoleProvider::builder(role_arn)
            .session_name("credaudit")
            .configure(&sts_config);
        if let Some(external_id) = &options.external_id {
            provider = provider.external_id(external_id);
        }
        let provider = provider.build().await;
        let config = base
            .to_builder()
            .credentials_provider(SharedCredentialsProvider::new(provider))
            .build();
        let mut account = Account {
            id: arn_account.clone(),
            partition: "aws".to_string(),
            config,
            endpoint_url: options.endpoint_url.clone(),
            attempts: ctx.attempts.clone(),
        };
        match account.caller_account(ctx).await {
            Ok((id, partition)) => {
                account.id = id;
                account.partition = partition;
                Some(account)
            }
            Err(error) => {
                ctx.fail(
                    arn_account.as_str(),
                    GLOBAL,
                    "sts:assume-role",
                    format!("{role_arn}: {error}"),
                );
                None
            }
        }
    }

    /// The ARN partition the account is in (`aws`, `aws-us-gov`, `aws-cn`).
    pub fn partition(&self) -> &str {
        &self.partition
    }

    /// The interceptor that counts this account's attempts and throttled answers in `region`.
    fn watch(&self, region: &str) -> AttemptWatch {
        AttemptWatch {
            attempts: self.attempts.clone(),
            place: (self.id.as_str() != UNKNOWN_ACCOUNT)
                .then(|| (self.id.to_string(), region.to_string())),
        }
    }

    /// `sts:GetCallerIdentity` of this account's credentials, giving the checked account id
    /// and the partition of the caller's ARN.
    async fn caller_account(&self, ctx: &Ctx) -> Result<(AccountId, String), String> {
        let client = self.sts();
        let output = ctx
            .call("sts:GetCallerIdentity", client.get_caller_identity().send())
            .await
            .map_err(|e| describe(&e))?;
        let account = output.account().unwrap_or_default();
        let id = AccountId::parse(account).ok_or_else(|| {
            format!("sts:GetCallerIdentity returned {account:?}, not a 12-digit account id")
        })?;
        // arn:PARTITION:sts::ACCOUNT:assumed-role/…; a partition is letters, digits and dashes.
        let partition = output
            .arn()
            .and_then(|arn| arn.split(':').nth(1))
            .filter(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
            .unwrap_or("aws")
            .to_string();
        Ok((id, partition))
    }

    fn sts(&self) -> aws_sdk_sts::Client {
        let mut builder =
            aws_sdk_sts::config::Builder::from(&self.config).interceptor(self.watch(GLOBAL));
        if let Some(url) = endpoint_for(self.endpoint_url.as_deref(), "AWS_ENDPOINT_URL_STS") {
            builder = builder.endpoint_url(url);
        }
        aws_sdk_sts::Client::from_conf(builder.build())
    }

    /// The IAM client (IAM is global; its region is the configured one).
    pub fn iam(&self) -> aws_sdk_iam::Client {
        let mut builder =
            aws_sdk_iam::config::Builder::from(&self.config).interceptor(self.watch(GLOBAL));
        if let Some(url) = endpoint_for(self.endpoint_url.as_deref(), "AWS_ENDPOINT_URL_IAM") {
            builder = builder.endpoint_url(url);
        }
        aws_sdk_iam::Client::from_conf(builder.build())
    }

    /// The AWS Organizations client (a global service).
    pub fn organizations(&self) -> aws_sdk_organizations::Client {
        let mut builder = aws_sdk_organizations::config::Builder::from(&self.config)
            .interceptor(self.watch(GLOBAL));
        if let Some(url) = endpoint_for(
            self.endpoint_url.as_deref(),
            "AWS_ENDPOINT_URL_ORGANIZATIONS",
        ) {
            builder = builder.endpoint_url(url);
        }
        aws_sdk_organizations::Client::from_conf(builder.build())
    }

    /// The Secrets Manager client of `region`.
    pub fn secrets(&self, region: &RegionName) -> aws_sdk_secretsmanager::Client {
        let mut builder = aws_sdk_secretsmanager::config::Builder::from(&self.config)
            .region(Region::new(region.as_str().to_string()))
            .interceptor(self.watch(region.as_str()));
        if let Some(url) = endpoint_for(
            self.endpoint_url.as_deref(),
            "AWS_ENDPOINT_URL_SECRETS_MANAGER",
        ) {
            builder = builder.endpoint_url(url);
        }
        aws_sdk_secretsmanager::Client::from_conf(builder.build())
    }

    /// The CloudTrail client of `region`.
    pub fn cloudtrail(&self, region: &RegionName) -> aws_sdk_cloudtrail::Client {
        let mut builder = aws_sdk_cloudtrail::config::Builder::from(&self.config)
            .region(Region::new(region.as_str().to_string()))
            .interceptor(self.watch(region.as_str()));
        if let Some(url) = endpoint_for(self.endpoint_url.as_deref(), "AWS_ENDPOINT_URL_CLOUDTRAIL")
        {
            builder = builder.endpoint_url(url);
        }
        aws_sdk_cloudtrail::Client::from_conf(builder.build())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_arns_name_their_account() {
        assert_eq!(
            role_account("arn:aws:iam::123456789012:role/credaudit-audit")
                .map(|a| a.to_string())
                .as_deref(),
            Some("123456789012")
        );
        assert!(role_account("arn:aws-us-gov:iam::123456789012:role/path/x").is_some());
        for bad in [
            "arn:aws:iam::12345678901:role/x",
            "arn:aws:iam::123456789012:user/x",
            "arn:aws:s3:::bucket",
            "arn:aws:iam::123456789012:role/",
            "123456789012",
        ] {
            assert!(role_account(bad).is_none(), "{bad}");
        }
    }
}
