//! AWS Route53, through aws-sdk-route53.
//!
//! - The caller hands in the SDK configuration (`aws_sdk_route53::Config::from(&sdk_config)`):
//!   the CLI builds it from ferry-auth's credentials (OIDC web identity in CI), so this module
//!   never looks for credentials itself.
//! - A change set is one `ChangeResourceRecordSets` batch, which Route53 applies atomically. An
//!   update is sent as `DELETE` of the set as it was read plus `CREATE` of the new one (not
//!   `UPSERT`), so Route53 refuses the batch when the set changed since it was read.
//! - A CNAME to an AWS load balancer (`*.elb.amazonaws.com`, the hostname EKS gives a
//!   LoadBalancer Service) becomes an alias A record to the load balancer's canonical hosted
//!   zone, which also works at the zone apex, where a CNAME cannot; other hostnames stay CNAMEs,
//!   as does everything with `prefer_cname` (external-dns's `--aws-prefer-cname`).
//! - TXT values are quoted and split into 255-byte strings as Route53 requires, and unquoted
//!   when read; `\052` in names is read as `*`.
//! - The SDK retries throttling (`Throttling`, `PriorRequestNotComplete`) and 5xx with backoff,
//!   bounded by the configuration's retry settings.

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use aws_sdk_route53::Client;
use aws_sdk_route53::error::{ProvideErrorMetadata as _, SdkError};
use aws_sdk_route53::types::{
    AliasTarget as SdkAlias, Change as SdkChange, ChangeAction, ChangeBatch, ResourceRecord,
    ResourceRecordSet, RrType,
};
use tokio::sync::OnceCell;

use crate::change::{Change, ChangeSet};
use crate::error::DnsError;
use crate::name::DnsName;
use crate::provider::{Capabilities, DnsProvider, NameServer};
use crate::record::{AliasTarget, RecordSet, RecordType, quote_txt, unquote_txt};

const PROVIDER: &str = "route53";

/// Canonical hosted zones of AWS load balancers, by hostname suffix (AWS's "Elastic Load
/// Balancing endpoints and quotas" table, as external-dns keeps it).
const ELB_ZONES: &[(&str, &str)] = &[
    // Application and Classic Load Balancers: NAME.REGION.elb.amazonaws.com
    ("us-east-2.elb.amazonaws.com", "Z3AADJGX6KTTL2"),
    ("us-east-1.elb.amazonaws.com", "Z35SXDOTRQ7X7K"),
    ("us-west-1.elb.amazonaws.com", "Z368ELLRRE2KJ0"),
    ("us-west-2.elb.amazonaws.com", "Z1H1FL5HABSF5"),
    ("ca-central-1.elb.amazonaws.com", "ZQSVJUPU6J1EY"),
    ("ap-east-1.elb.amazonaws.com", "Z3DQVH9N71FHZ0"),
    ("ap-south-1.elb.amazonaws.com", "ZP97RAFLXTNZK"),
    ("ap-south-2.elb.amazonaws.com", "Z0173938T07WNTVAEPZN"),
    ("ap-northeast-2.elb.amazonaws.com", "ZWKZPGTI48KDX"),
    ("ap-northeast-3.elb.amazonaws.com", "Z5LXEXXYW11ES"),
    ("ap-southeast-1.elb.amazonaws.com", "Z1LMS91P8CMLE5"),
    ("ap-southeast-2.elb.amazonaws.com", "Z1GM3OXH4ZPM65"),
    ("ap-southeast-3.elb.amazonaws.com", "Z08888821HLRG5A9ZRTER"),
    ("ap-southeast-4.elb.amazonaws.com", "Z09517862IB2WZLPXG76F"),
    ("ap-northeast-1.elb.amazonaws.com", "Z14GRHDCWA56QT"),
    ("eu-central-1.elb.amazonaws.com", "Z215JYRZR1TBD5"),
    ("eu-central-2.elb.amazonaws.com", "Z06391101F2ZOEP8P5EB3"),
    ("eu-west-1.elb.amazonaws.com", "Z32O12XQLNTSW2"),
    ("eu-west-2.elb.amazonaws.com", "ZHURV8PSTC4K8"),
    ("eu-west-3.elb.amazonaws.com", "Z3Q77PNBQS71R4"),
    ("eu-north-1.elb.amazonaws.com", "Z23TAZ6LKFMNIO"),
    ("eu-south-1.elb.amazonaws.com", "Z3ULH7SSC9OV64"),
    ("eu-south-2.elb.amazonaws.com", "Z0956581394HF5D5LXGAP"),
    ("sa-east-1.elb.amazonaws.com", "Z2P70J7HTTTPLU"),
    ("cn-north-1.elb.amazonaws.com.cn", "Z1GDH35T77C1KE"),
    ("cn-northwest-1.elb.amazonaws.com.cn", "ZM7IZAIOVVDZF"),
    ("us-gov-west-1.elb.amazonaws.com", "Z33AYJ8TM3BH4J"),
    ("us-gov-east-1.elb.amazonaws.com", "Z166TLBEWOO7G0"),
    ("me-central-1.elb.amazonaws.com", "Z08230872XQRWHG2XF6I"),
    ("me-south-1.elb.amazonaws.com", "ZS929ML54UICD"),
    ("af-south-1.elb.amazonaws.com", "Z268VQBMOI5EKX"),
    // Network Load Balancers: NAME.elb.REGION.amazonaws.com
    ("elb.us-east-2.amazonaws.com", "ZLMOA37VPKANP"),
    ("elb.us-east-1.amazonaws.com", "Z26RNL4JYFTOTI"),
    ("elb.us-west-1.amazonaws.com", "Z24FKFUX50B4VW"),
    ("elb.us-west-2.amazonaws.com", "Z18D5FSROUN65G"),
    ("elb.ca-central-1.amazonaws.com", "Z2EPGBW3API2WT"),
    ("elb.ap-east-1.amazonaws.com", "Z12Y7K3UBGUAD1"),
    ("elb.ap-south-1.amazonaws.com", "ZVDDRBQ08TROA"),
    ("elb.ap-south-2.amazonaws.com", "Z0711778386UTO08407HT"),
    ("elb.ap-northeast-3.amazonaws.com", "Z1GWIQ4HH19I5X"),
    ("elb.ap-northeast-2.amazonaws.com", "ZIBE1TIR4HY56"),
    ("elb.ap-southeast-1.amazonaws.com", "ZKVM4W9LS7TM"),
    ("elb.ap-southeast-2.amazonaws.com", "ZCT6FZBF4DROD"),
    ("elb.ap-southeast-3.amazonaws.com", "Z01971771FYVNCOVWJU1G"),
    ("elb.ap-southeast-4.amazonaws.com", "Z01156963G8MIIL7X90IV"),
    ("elb.ap-northeast-1.amazonaws.com", "Z31USIVHYNEOWT"),
    ("elb.eu-central-1.amazonaws.com", "Z3F0SRJ5LGBH90"),
    ("elb.eu-central-2.amazonaws.com", "Z02239872DOALSIDCX66S"),
    ("elb.eu-west-1.amazonaws.com", "Z2IFOLAFXWLO4F"),
    ("elb.eu-west-2.amazonaws.com", "ZD4D7Y8KGAS4G"),
    ("elb.eu-west-3.amazonaws.com", "Z1CMS0P5QUZ6D5"),
    ("elb.eu-north-1.amazonaws.com", "Z1UDT6IFJ4EJM"),
    ("elb.eu-south-1.amazonaws.com", "Z23146JA1KNAFP"),
    ("elb.eu-south-2.amazonaws.com", "Z1011216NVTVYADP1SSV"),
    ("elb.sa-east-1.amazonaws.com", "ZTK26PT1VY4CU"),
    ("elb.cn-north-1.amazonaws.com.cn", "Z3QFB96KMJ7ED6"),
    ("elb.cn-northwest-1.amazonaws.com.cn", "ZQEIKTCZ8352D"),
    ("elb.us-gov-west-1.amazonaws.com", "ZMG1MZ2THAWF1"),
    ("elb.us-gov-east-1.amazonaws.com", "Z1ZSMQQ6Q24QQ8"),
    ("elb.me-central-1.amazonaws.com", "Z00282643NTTLPANJJG2P"),
    ("elb.me-south-1.amazonaws.com", "Z3QSRYVP46NYYV"),
    ("elb.af-south-1.amazonaws.com", "Z203XCE67M25HM"),
];

/// The canonical hosted zone of an AWS load balancer's hostname, if it is one.
pub fn load_balancer_zone(hostname: &DnsName) -> Option<&'static str> {
    let h = hostname.as_str();
    ELB_ZONES
        .iter()
        .find(|(suffix, _)| {
            h.len() > suffix.len()
                && h.ends_with(suffix)
                && h.as_bytes()[h.len() - suffix.len() - 1] == b'.'
        })
        .map(|(_, zone)| *zone)
}

/// A hosted zone on Route53.
#[derive(Clone)]
pub struct Route53Provider {
    zone: DnsName,
    client: Client,
    configured_zone_id: Option<String>,
    zone_id: std::sync::Arc<OnceCell<String>>,
    evaluate_target_health: bool,
    prefer_cname: bool,
}

impl fmt::Debug for Route53Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Route53Provider")
            .field("zone", &self.zone)
            .field("hosted_zone_id", &self.configured_zone_id)
            .finish()
    }
}

impl Route53Provider {
    /// A provider for `zone`, calling Route53 with `config` (credentials, region, endpoint,
    /// retries).
    pub fn new(zone: DnsName, config: impl Into<aws_sdk_route53::Config>) -> Self {
        Route53Provider {
            zone,
            client: Client::from_conf(config.into()),
            configured_zone_id: None,
            zone_id: std::sync::Arc::default(),
            evaluate_target_health: false,
            prefer_cname: false,
        }
    }

    /// The hosted zone's id (`Z...`), instead of looking it up by name (needed when public and
    /// private zones share the name).
    #[must_use]
    pub fn with_hosted_zone_id(mut self, id: Option<String>) -> Self {
        self.configured_zone_id = id.map(|i| i.trim_start_matches("/hostedzone/").to_owned());
        self
    }

    /// Whether alias records check the load balancer's health.
    #[must_use]
    pub fn with_evaluate_target_health(mut self, on: bool) -> Self {
        self.evaluate_target_health = on;
        self
    }

    /// Write CNAMEs even for AWS load balancers.
    #[must_use]
    pub fn with_prefer_cname(mut self, on: bool) -> Self {
        self.prefer_cname = on;
        self
    }

    fn sdk_error<E>(
        &self,
        operation: &str,
        err: SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
    ) -> DnsError
    where
        E: aws_sdk_route53::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let status = err.raw_response().map(|r| r.status().as_u16());
        let code = err.code().map(str::to_owned);
        let message = err.message().map(str::to_owned);
        match &err {
            SdkError::DispatchFailure(_)
            | SdkError::TimeoutError(_)
            | SdkError::ResponseError(_) => {
                let text = aws_sdk_route53::error::DisplayErrorContext(&err).to_string();
                if text.contains("loading credentials") || text.contains("no credentials") {
                    tracing::debug!(error = %text, "no AWS credentials");
                    return DnsError::NotConfigured {
                        what: "an AWS credential source".into(),
                        help: "configure [env.NAME.auth.aws] (an IAM role assumed with the CI's OIDC token), \
                               or provide credentials to the standard AWS chain (environment, profile, instance role)"
                            .into(),
                    };
                }
                return DnsError::transport(PROVIDER, operation, err);
            }
            _ => {}
        }
        let detail = message
            .clone()
            .unwrap_or_else(|| aws_sdk_route53::error::DisplayErrorContext(&err).to_string());
        match code.as_deref() {
            Some(
                "AccessDenied"
                | "AccessDeniedException"
                | "InvalidClientTokenId"
                | "SignatureDoesNotMatch"
                | "ExpiredToken"
                | "UnrecognizedClientException",
            ) => DnsError::Unauthorized {
                provider: PROVIDER,
                zone: self.zone.to_string(),
                action: if operation.starts_with("change") {
                    "edit"
                } else {
                    "read"
                },
                detail: format!(
                    "{detail}; the role needs route53:ListHostedZonesByName, route53:GetHostedZone, \
                         route53:ListResourceRecordSets and route53:ChangeResourceRecordSets on this hosted zone"
                ),
            },
            Some("NoSuchHostedZone") => DnsError::ZoneNotFound {
                provider: PROVIDER,
                zone: self.zone.to_string(),
                detail: format!("; {detail}"),
            },
            Some("InvalidChangeBatch")
                if detail.contains("not found")
                    || detail.contains("already exists")
                    || detail.contains("values provided do not match") =>
            {
                DnsError::ZoneChanged {
                    provider: PROVIDER,
                    detail,
                }
            }
            Some("Throttling" | "ThrottlingException" | "PriorRequestNotComplete") => {
                DnsError::RateLimited {
                    provider: PROVIDER,
                    attempts: self
                        .client
                        .config()
                        .retry_config()
                        .map_or(1, |r| r.max_attempts()),
                    after: format!(" ({detail}; the SDK's retries ran out)"),
                }
            }
            _ => DnsError::Api {
                provider: PROVIDER,
                operation: operation.to_owned(),
                status,
                message: match code {
                    Some(c) => format!("{c}: {detail}"),
                    None => detail,
                },
                retryable: status.is_some_and(|s| s >= 500),
            },
        }
    }

    async fn hosted_zone_id(&self) -> Result<&str, DnsError> {
        self.zone_id
            .get_or_try_init(|| async {
                if let Some(id) = &self.configured_zone_id {
                    return Ok(id.clone());
                }
                let out = self
                    .client
                    .list_hosted_zones_by_name()
                    .dns_name(self.zone.fqdn())
                    .max_items(10)
                    .send()
                    .await
                    .map_err(|e| self.sdk_error("find the hosted zone", e))?;
                let matching: Vec<_> = out
                    .hosted_zones()
                    .iter()
                    .filter(|z| z.name().trim_end_matches('.').eq_ignore_ascii_case(self.zone.as_str()))
                    .collect();
                match matching.as_slice() {
                    [one] => Ok(one.id().trim_start_matches("/hostedzone/").to_owned()),
                    [] => Err(DnsError::ZoneNotFound {
                        provider: PROVIDER,
                        zone: self.zone.to_string(),
                        detail: "; no hosted zone has this name in the account the credentials belong to".into(),
                    }),
                    several => Err(DnsError::invalid(format!(
                        "several hosted zones are named {} ({}); set hosted_zone_id in [env.NAME.dns.route53]",
                        self.zone,
                        several.iter().map(|z| z.id().trim_start_matches("/hostedzone/")).collect::<Vec<_>>().join(", ")
                    ))),
                }
            })
            .await
            .map(String::as_str)
    }

    fn to_sdk(&self, set: &RecordSet) -> Result<ResourceRecordSet, DnsError> {
        let rtype = RrType::from(set.record_type.as_str());
        let mut b = ResourceRecordSet::builder()
            .name(set.name.fqdn())
            .r#type(rtype);
        match &set.alias {
            Some(a) => {
                b = b.alias_target(
                    SdkAlias::builder()
                        .hosted_zone_id(&a.hosted_zone_id)
                        .dns_name(a.dns_name.fqdn())
                        .evaluate_target_health(a.evaluate_target_health)
                        .build()
                        .map_err(|e| DnsError::invalid(format!("{}: {e}", set.key())))?,
                );
            }
            None => {
                b = b.ttl(i64::from(set.ttl));
                for v in &set.values {
                    let value = match set.record_type {
                        RecordType::Txt => quote_txt(v),
                        RecordType::Cname => format!("{v}."),
                        _ => v.clone(),
                    };
                    b = b.resource_records(
                        ResourceRecord::builder()
                            .value(value)
                            .build()
                            .map_err(|e| DnsError::invalid(format!("{}: {e}", set.key())))?,
                    );
                }
            }
        }
        b.build()
            .map_err(|e| DnsError::invalid(format!("{}: {e}", set.key())))
    }

    fn read_sdk(&self, r: &ResourceRecordSet) -> Option<RecordSet> {
        if r.set_identifier().is_some() {
            // Weighted, latency, failover ... sets are routing policies ferry does not manage;
            // they are left out (and so never touched).
            tracing::debug!(
                name = r.name(),
                "skipping a record set with a routing policy"
            );
        }
        let name = DnsName::parse(&r.name().replacen("\\052", "*", 1)).ok()?;
        let rtype: RecordType = r.r#type().as_str().parse().ok()?;
        if let Some(a) = r.alias_target() {
            let target = DnsName::parse(a.dns_name()).ok()?;
            return Some(RecordSet::alias(
                name,
                rtype,
                AliasTarget {
                    hosted_zone_id: a.hosted_zone_id().to_owned(),
                    dns_name: target,
                    evaluate_target_health: a.evaluate_target_health(),
                },
            ));
        }
        let values: Vec<String> = r
            .resource_records()
            .iter()
            .map(|v| {
                if rtype == RecordType::Txt {
                    unquote_txt(v.value())
                } else {
                    v.value().to_owned()
                }
            })
            .collect();
        let ttl = r.ttl().and_then(|t| u32::try_from(t).ok()).unwrap_or(0);
        RecordSet::new(name, rtype, ttl, values)
            .map_err(
                |e| tracing::debug!(error = %e, "skipping a record set ferry cannot represent"),
            )
            .ok()
    }
}

#[async_trait]
impl DnsProvider for Route53Provider {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    fn zone(&self) -> &DnsName {
        &self.zone
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            atomic: true,
            cname_at_apex: false,
            alias: true,
            proxied: false,
        }
    }

    fn canonicalize(&self, desired: RecordSet) -> Result<RecordSet, DnsError> {
        if desired.record_type != RecordType::Cname || desired.alias.is_some() {
            return Ok(desired);
        }
        let Some(target) = desired.values.first().and_then(|v| DnsName::parse(v).ok()) else {
            return Ok(desired);
        };
        match load_balancer_zone(&target) {
            Some(zone) if !self.prefer_cname => {
                let mut alias = RecordSet::alias(
                    desired.name,
                    RecordType::A,
                    AliasTarget {
                        hosted_zone_id: zone.to_owned(),
                        dns_name: target,
                        evaluate_target_health: self.evaluate_target_health,
                    },
                );
                // Route53 ignores it for aliases; the ownership record gets it.
                alias.ttl = desired.ttl;
                Ok(alias)
            }
            _ => Ok(desired),
        }
    }

    async fn records(&self) -> Result<Vec<RecordSet>, DnsError> {
        let id = self.hosted_zone_id().await?.to_owned();
        let mut out = Vec::new();
        let mut next: Option<(String, RrType, Option<String>)> = None;
        loop {
            let mut req = self
                .client
                .list_resource_record_sets()
                .hosted_zone_id(&id)
                .max_items(300);
            if let Some((name, rtype, ident)) = next.take() {
                req = req.start_record_name(name).start_record_type(rtype);
                if let Some(i) = ident {
                    req = req.start_record_identifier(i);
                }
            }
            let page = req
                .send()
                .await
                .map_err(|e| self.sdk_error("list record sets", e))?;
            out.extend(
                page.resource_record_sets()
                    .iter()
                    .filter(|r| r.set_identifier().is_none())
                    .filter_map(|r| self.read_sdk(r)),
            );
            if !page.is_truncated() {
                break;
            }
            match (page.next_record_name(), page.next_record_type()) {
                (Some(n), Some(t)) => {
                    next = Some((
                        n.to_owned(),
                        t.clone(),
                        page.next_record_identifier().map(str::to_owned),
                    ));
                }
                _ => break,
            }
        }
        // Merge duplicates (moto may list a name and type twice): one set per key.
        let mut merged: BTreeMap<crate::record::RecordKey, RecordSet> = BTreeMap::new();
        for set in out {
            merged.entry(set.key()).or_insert(set);
        }
        Ok(merged.into_values().collect())
    }

    async fn apply(&self, changes: &ChangeSet) -> Result<(), DnsError> {
        if changes.is_empty() {
            return Ok(());
        }
        let id = self.hosted_zone_id().await?.to_owned();
        let mut sdk_changes = Vec::new();
        let change = |action: ChangeAction, set: &RecordSet| -> Result<SdkChange, DnsError> {
            SdkChange::builder()
                .action(action)
                .resource_record_set(self.to_sdk(set)?)
                .build()
                .map_err(|e| DnsError::invalid(format!("{}: {e}", set.key())))
        };
        for c in changes {
            match c {
                Change::Create { record } => {
                    sdk_changes.push(change(ChangeAction::Create, record)?)
                }
                Change::Update { old, new } => {
                    sdk_changes.push(change(ChangeAction::Delete, old)?);
                    sdk_changes.push(change(ChangeAction::Create, new)?);
                }
                Change::Delete { record } => {
                    sdk_changes.push(change(ChangeAction::Delete, record)?)
                }
            }
        }
        let batch = ChangeBatch::builder()
            .comment("ferry")
            .set_changes(Some(sdk_changes))
            .build()
            .map_err(|e| DnsError::invalid(format!("change batch: {e}")))?;
        self.client
            .change_resource_record_sets()
            .hosted_zone_id(&id)
            .change_batch(batch)
            .send()
            .await
            .map_err(|e| self.sdk_error("change record sets", e))?;
        Ok(())
    }

    async fn name_servers(&self) -> Result<Vec<NameServer>, DnsError> {
        let id = self.hosted_zone_id().await?.to_owned();
        let out = self
            .client
            .get_hosted_zone()
            .id(&id)
            .send()
            .await
            .map_err(|e| self.sdk_error("get the hosted zone", e))?;
        Ok(out
            .delegation_set()
            .map(|d| {
                d.name_servers()
                    .iter()
                    .filter_map(|n| DnsName::parse(n).ok())
                    .map(NameServer::Host)
                    .collect()
            })
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_balancer_hostnames_map_to_their_canonical_zones() {
        let zone = |h: &str| load_balancer_zone(&DnsName::parse(h).unwrap());
        // NLB (what an EKS LoadBalancer Service gets by default with the AWS LB controller).
        assert_eq!(
            zone("a1b2c3-0123456789.elb.us-east-1.amazonaws.com"),
            Some("Z26RNL4JYFTOTI")
        );
        // ALB / CLB.
        assert_eq!(
            zone("k8s-shop-web-0123456789.eu-west-1.elb.amazonaws.com"),
            Some("Z32O12XQLNTSW2")
        );
        assert_eq!(
            zone("dualstack.my-alb-1.us-west-2.elb.amazonaws.com"),
            Some("Z1H1FL5HABSF5")
        );
        assert_eq!(zone("lb.example.net"), None);
        assert_eq!(
            zone("elb.us-east-1.amazonaws.com"),
            None,
            "the suffix alone is not a load balancer"
        );
    }
}
