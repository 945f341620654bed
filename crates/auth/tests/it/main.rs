//! ferry-auth's integration tests: against the real moto (STS, EKS) and the AWS CLI, with
//! wiremock for the services that cannot run here (GitHub's OIDC endpoint, Azure AD). Every
//! test ends by grepping the captured trace-level logs and its outputs for the secrets it used.

mod azure;
mod cli_eks;
mod deploy_e2e;
mod eks_token;
mod github;
mod sts;
mod support;
mod validate;
