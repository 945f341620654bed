//! Who may deploy: the trust relationship between a GitHub repository (and a branch, or a GitHub
//! environment) and a cloud identity.
//!
//! [`GitHubTrust`] renders the AWS IAM role trust policy (seed 000's policy, with `StringEquals`
//! on both `aud` and `sub` — seed 000 used `StringLike` on `sub`, which with a wildcard lets any
//! branch or pull request assume the role) and the Azure federated-credential subject, and
//! [`GitHubTrust::check`] evaluates a token's claims against the same conditions, so
//! `ferry auth check` can say which condition a token fails before a cloud refuses it.

use serde::Serialize;

use crate::error::AuthError;
use crate::oidc::{Claims, GITHUB_ISSUER};

/// The audience AWS expects in GitHub tokens.
pub const AWS_AUDIENCE: &str = "sts.amazonaws.com";
/// The audience Azure AD expects in federated client assertions.
pub const AZURE_AUDIENCE: &str = "api://AzureADTokenExchange";

/// What a token's `sub` names besides the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectScope {
    /// Jobs running on this branch (`ref:refs/heads/BRANCH`).
    Branch(String),
    /// Jobs running in this GitHub environment (`environment:NAME`).
    Environment(String),
}

/// A repository plus a branch or GitHub environment, and the issuer of its tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitHubTrust {
    /// `owner/repo`.
    pub repository: String,
    /// The branch or environment.
    pub scope: SubjectScope,
    /// The token issuer (GitHub Enterprise Server has its own).
    pub issuer: String,
}

/// One condition of a trust policy, evaluated against a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConditionCheck {
    /// The claim, e.g. `sub`.
    pub claim: &'static str,
    /// The value the policy requires.
    pub expected: String,
    /// The token's value (`None` when the token lacks the claim).
    pub actual: Option<String>,
    /// Whether it passes.
    pub pass: bool,
}

impl GitHubTrust {
    /// Checks the parts: `repository` must be `owner/name`, and exactly one of `branch` and
    /// `environment` must be given. `key_prefix` names the settings in messages
    /// (`env.prod.auth.github`).
    pub fn new(
        repository: &str,
        branch: Option<&str>,
        environment: Option<&str>,
        issuer: Option<&str>,
        key_prefix: &str,
    ) -> Result<Self, AuthError> {
        let valid_part = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        match repository.split_once('/') {
            Some((owner, name)) if valid_part(owner) && valid_part(name) => {}
            _ => {
                return Err(AuthError::InvalidConfig {
                    key: format!("{key_prefix}.repository"),
                    message: format!("`{repository}` is not `owner/name`"),
                    help: "give the GitHub repository as owner/name, e.g. \"octo/shop\"".into(),
                });
            }
        }
        let scope = match (branch, environment) {
            (Some(b), None) if !b.is_empty() && !b.contains('*') => {
                SubjectScope::Branch(b.trim_start_matches("refs/heads/").to_owned())
            }
            (None, Some(e)) if !e.is_empty() && !e.contains('*') => {
                SubjectScope::Environment(e.to_owned())
            }
            (Some(_), Some(_)) => {
                return Err(AuthError::InvalidConfig {
                    key: format!("{key_prefix}.environment"),
                    message: "both `branch` and `environment` are set".into(),
                    help: "a job that uses a GitHub environment gets a token whose subject names \
                           the environment, not the branch: keep exactly one"
                        .into(),
                });
            }
            (None, None) => {
                return Err(AuthError::InvalidConfig {
                    key: format!("{key_prefix}.branch"),
                    message: "neither `branch` nor `environment` is set".into(),
                    help: "say which jobs may deploy: branch = \"main\", or environment = \
                           \"production\" for jobs that use that GitHub environment"
                        .into(),
                });
            }
            _ => {
                return Err(AuthError::InvalidConfig {
                    key: format!("{key_prefix}.branch"),
                    message: "empty or wildcard branch/environment".into(),
                    help: "name one branch or environment exactly; wildcards would let other \
                           branches or pull requests deploy"
                        .into(),
                });
            }
        };
        Ok(GitHubTrust {
            repository: repository.to_owned(),
            scope,
            issuer: issuer
                .unwrap_or(GITHUB_ISSUER)
                .trim_end_matches('/')
                .to_owned(),
        })
    }

    /// The `sub` claim GitHub puts in this repository's tokens for the branch or environment.
    pub fn subject(&self) -> String {
        match &self.scope {
            SubjectScope::Branch(b) => format!("repo:{}:ref:refs/heads/{b}", self.repository),
            SubjectScope::Environment(e) => format!("repo:{}:environment:{e}", self.repository),
        }
    }

    /// The issuer's host, as IAM names the OIDC provider and prefixes condition keys.
    pub fn issuer_host(&self) -> &str {
        self.issuer
            .trim_start_matches("https://")
            .trim_start_matches("http://")
    }

    /// The IAM trust policy for the role `role_arn`, allowing exactly this subject and
    /// `audience`.
    pub fn aws_trust_policy(
        &self,
        role_arn: &str,
        audience: &str,
    ) -> Result<serde_json::Value, AuthError> {
        let arn = RoleArn::parse(role_arn)?;
        let host = self.issuer_host();
        Ok(serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {
                    "Federated": format!(
                        "arn:{}:iam::{}:oidc-provider/{host}", arn.partition, arn.account
                    )
                },
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        format!("{host}:aud"): audience,
                        format!("{host}:sub"): self.subject(),
                    }
                }
            }]
        }))
    }

    /// The Azure AD federated identity credential for the app registration or managed identity
    /// (the JSON `az ad app federated-credential create --parameters` takes).
    pub fn azure_federated_credential(&self, name: &str) -> serde_json::Value {
        serde_json::json!({
            "name": name,
            "issuer": self.issuer,
            "subject": self.subject(),
            "audiences": [AZURE_AUDIENCE],
            "description": format!("ferry deploys from {}", self.repository),
        })
    }

    /// Evaluates `claims` against the policy's conditions (issuer, audience, subject), the way
    /// the cloud would. Expiry is not a policy condition; callers check it separately.
    pub fn check(&self, claims: &Claims, audience: &str) -> Vec<ConditionCheck> {
        let iss = claims.iss.clone();
        let sub = claims.sub.clone();
        let aud_pass = claims.aud.as_ref().is_some_and(|a| a.contains(audience));
        vec![
            ConditionCheck {
                claim: "iss",
                expected: self.issuer.clone(),
                pass: iss.as_deref().map(|i| i.trim_end_matches('/')) == Some(&self.issuer),
                actual: iss,
            },
            ConditionCheck {
                claim: "aud",
                expected: audience.to_owned(),
                actual: claims.aud.as_ref().map(|a| a.joined()),
                pass: aud_pass,
            },
            ConditionCheck {
                claim: "sub",
                expected: self.subject(),
                pass: sub.as_deref() == Some(self.subject().as_str()),
                actual: sub,
            },
        ]
    }
}

/// The parts of an IAM role ARN (`arn:PARTITION:iam::ACCOUNT:role/PATH/NAME`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleArn {
    /// `aws`, `aws-cn`, `aws-us-gov`.
    pub partition: String,
    /// The 12-digit account id.
    pub account: String,
    /// The role name (with its path).
    pub name: String,
}

impl RoleArn {
    /// Parses a role ARN, with a message that says what a role ARN looks like.
    pub fn parse(arn: &str) -> Result<Self, AuthError> {
        let bad = |why: &str| AuthError::InvalidConfig {
            key: "auth.aws.role_arn".into(),
            message: format!("`{arn}` is not an IAM role ARN: {why}"),
            help: "use the role's ARN as IAM shows it: arn:aws:iam::123456789012:role/NAME".into(),
        };
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let [prefix, partition, service, region, account, resource] = parts[..] else {
            return Err(bad("expected six ':'-separated parts"));
        };
        if prefix != "arn" || !partition.starts_with("aws") {
            return Err(bad("it must start with arn:aws"));
        }
        if service != "iam" || !region.is_empty() {
            return Err(bad("the service must be iam, with no region"));
        }
        if account.len() != 12 || !account.chars().all(|c| c.is_ascii_digit()) {
            return Err(bad("the account must be 12 digits"));
        }
        let Some(name) = resource.strip_prefix("role/").filter(|n| !n.is_empty()) else {
            return Err(bad("the resource must be role/NAME"));
        };
        Ok(RoleArn {
            partition: partition.to_owned(),
            account: account.to_owned(),
            name: name.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oidc::Audience;

    fn trust_main() -> GitHubTrust {
        GitHubTrust::new(
            "cloudtolocalllm/cloudtolocalllm",
            Some("main"),
            None,
            None,
            "auth",
        )
        .unwrap()
    }

    #[test]
    fn seed_000_policy_with_string_equals_on_aud_and_sub() {
        let policy = trust_main()
            .aws_trust_policy("arn:aws:iam::422017356244:role/github-deploy", AWS_AUDIENCE)
            .unwrap();
        let expected = serde_json::json!({
          "Version": "2012-10-17",
          "Statement": [{
              "Effect": "Allow",
              "Principal": {
                "Federated": "arn:aws:iam::422017356244:oidc-provider/token.actions.githubusercontent.com"
              },
              "Action": "sts:AssumeRoleWithWebIdentity",
              "Condition": {
                "StringEquals": {
                  "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
                  "token.actions.githubusercontent.com:sub": "repo:cloudtolocalllm/cloudtolocalllm:ref:refs/heads/main"
                }
              }
          }]
        });
        assert_eq!(policy, expected);
        assert!(!policy.to_string().contains("StringLike"));
    }

    #[test]
    fn environment_subject_and_azure_credential() {
        let trust =
            GitHubTrust::new("octo/shop", None, Some("production"), None, "auth.github").unwrap();
        assert_eq!(trust.subject(), "repo:octo/shop:environment:production");
        let cred = trust.azure_federated_credential("ferry-production");
        assert_eq!(cred["issuer"], GITHUB_ISSUER);
        assert_eq!(cred["subject"], "repo:octo/shop:environment:production");
        assert_eq!(cred["audiences"][0], AZURE_AUDIENCE);
    }

    #[test]
    fn ambiguous_or_wildcard_scopes_are_refused() {
        let both = GitHubTrust::new("o/r", Some("main"), Some("prod"), None, "auth.github");
        assert!(matches!(both, Err(AuthError::InvalidConfig { .. })));
        let none = GitHubTrust::new("o/r", None, None, None, "auth.github").unwrap_err();
        assert!(none.to_string().contains("auth.github.branch"), "{none}");
        let wild = GitHubTrust::new("o/r", Some("*"), None, None, "auth.github");
        assert!(wild.is_err());
        let repo = GitHubTrust::new("just-a-name", Some("main"), None, None, "x").unwrap_err();
        assert!(repo.to_string().contains("owner/name"), "{repo}");
    }

    #[test]
    fn check_reports_each_condition() {
        let trust = trust_main();
        let mut claims = Claims {
            iss: Some(GITHUB_ISSUER.into()),
            sub: Some("repo:cloudtolocalllm/cloudtolocalllm:ref:refs/heads/main".into()),
            aud: Some(Audience::One(AWS_AUDIENCE.into())),
            exp: None,
            iat: None,
            nbf: None,
            other: Default::default(),
        };
        assert!(trust.check(&claims, AWS_AUDIENCE).iter().all(|c| c.pass));

        claims.sub = Some("repo:cloudtolocalllm/cloudtolocalllm:pull_request".into());
        let checks = trust.check(&claims, AWS_AUDIENCE);
        let failed: Vec<_> = checks.iter().filter(|c| !c.pass).map(|c| c.claim).collect();
        assert_eq!(failed, ["sub"]);

        let checks = trust.check(&claims, AZURE_AUDIENCE);
        let failed: Vec<_> = checks.iter().filter(|c| !c.pass).map(|c| c.claim).collect();
        assert_eq!(failed, ["aud", "sub"]);
    }

    #[test]
    fn role_arns_parse_with_clear_errors() {
        let arn = RoleArn::parse("arn:aws-cn:iam::123456789012:role/ci/deploy").unwrap();
        assert_eq!(
            (
                arn.partition.as_str(),
                arn.account.as_str(),
                arn.name.as_str()
            ),
            ("aws-cn", "123456789012", "ci/deploy")
        );
        for bad in [
            "deploy",
            "arn:aws:iam::12345:role/x",
            "arn:aws:s3:::bucket",
            "arn:aws:iam::123456789012:user/x",
        ] {
            let err = RoleArn::parse(bad).unwrap_err();
            assert!(err.to_string().contains(bad), "{err}");
        }
    }
}
