//! The static catalogue of the synthetic fleet: agent roles and their teams, the secrets every
//! agent holds, shared service secrets, and the owners.

use crate::generate::fleet::OwnerDecl;
use crate::model::{OwnerStatus, RiskClass};

pub(super) struct Role {
    pub(super) name: &'static str,
    pub(super) team: &'static str,
    pub(super) key_class: RiskClass,
    /// Handles personal data, so its LLM key is class A.
    pub(super) handles_pii: bool,
    pub(super) extra: SecretTemplate,
}

#[derive(Clone, Copy)]
pub(super) struct SecretTemplate {
    pub(super) suffix: &'static str,
    pub(super) what: &'static str,
    pub(super) class: RiskClass,
    /// AWS rotation interval; 0 = rotated by hand.
    pub(super) aws_days: u32,
    pub(super) interval_days: Option<u32>,
}

pub(super) const fn tpl(
    suffix: &'static str,
    what: &'static str,
    class: RiskClass,
    aws_days: u32,
) -> SecretTemplate {
    SecretTemplate {
        suffix,
        what,
        class,
        aws_days,
        interval_days: None,
    }
}

pub(super) const ROLES: [Role; 10] = [
    Role {
        name: "research",
        team: "team-research",
        key_class: RiskClass::B,
        handles_pii: false,
        extra: tpl("serpapi-key", "SerpAPI key", RiskClass::C, 90),
    },
    Role {
        name: "support",
        team: "team-support",
        key_class: RiskClass::B,
        handles_pii: true,
        extra: tpl("zendesk-api-token", "Zendesk API token", RiskClass::B, 30),
    },
    Role {
        name: "billing",
        team: "team-payments",
        key_class: RiskClass::A,
        handles_pii: true,
        extra: SecretTemplate {
            interval_days: Some(7),
            ..tpl(
                "stripe-restricted-key",
                "Stripe restricted key",
                RiskClass::A,
                7,
            )
        },
    },
    Role {
        name: "triage",
        team: "team-support",
        key_class: RiskClass::B,
        handles_pii: false,
        extra: tpl("pagerduty-token", "PagerDuty API token", RiskClass::C, 60),
    },
    Role {
        name: "coder",
        team: "team-platform",
        key_class: RiskClass::A,
        handles_pii: false,
        extra: tpl("npm-publish-token", "npm publish token", RiskClass::A, 14),
    },
    Role {
        name: "ops",
        team: "team-platform",
        key_class: RiskClass::A,
        handles_pii: false,
        extra: tpl("datadog-api-key", "Datadog API key", RiskClass::B, 30),
    },
    Role {
        name: "sales",
        team: "team-sales",
        key_class: RiskClass::B,
        handles_pii: true,
        extra: tpl(
            "hubspot-private-app-token",
            "HubSpot private app token",
            RiskClass::B,
            30,
        ),
    },
    Role {
        name: "analyst",
        team: "team-data",
        key_class: RiskClass::B,
        handles_pii: false,
        extra: tpl("snowflake-password", "Snowflake password", RiskClass::B, 30),
    },
    Role {
        name: "security",
        team: "team-security",
        key_class: RiskClass::A,
        handles_pii: true,
        extra: tpl("virustotal-api-key", "VirusTotal API key", RiskClass::C, 90),
    },
    Role {
        name: "docs",
        team: "team-research",
        key_class: RiskClass::B,
        handles_pii: false,
        extra: tpl(
            "confluence-api-token",
            "Confluence API token",
            RiskClass::C,
            90,
        ),
    },
];

/// Secrets every agent has (the OpenAI key's class depends on the role).
pub(super) const AGENT_SECRETS: [SecretTemplate; 8] = [
    tpl("openai-api-key", "OpenAI API key", RiskClass::B, 30),
    tpl("anthropic-api-key", "Anthropic API key", RiskClass::B, 30),
    tpl(
        "github-token",
        "GitHub fine-grained token",
        RiskClass::B,
        30,
    ),
    tpl("slack-bot-token", "Slack bot token", RiskClass::C, 30),
    tpl(
        "vector-db-password",
        "vector database password",
        RiskClass::B,
        30,
    ),
    tpl("jira-api-token", "Jira API token", RiskClass::C, 60),
    tpl(
        "webhook-signing-key",
        "webhook signing key",
        RiskClass::C,
        90,
    ),
    tpl("pgp-signing-key", "PGP signing key", RiskClass::D, 0),
];

/// Shared service secrets: (template, owner). Spread over the accounts and regions.
pub(super) const SHARED_SECRETS: [(SecretTemplate, &str); 10] = [
    (
        tpl(
            "prod/billing-db/password",
            "billing database password",
            RiskClass::A,
            14,
        ),
        "team-payments",
    ),
    (
        SecretTemplate {
            interval_days: Some(7),
            ..tpl(
                "prod/stripe/restricted-key",
                "Stripe restricted key for payouts",
                RiskClass::A,
                7,
            )
        },
        "team-payments",
    ),
    (
        tpl(
            "prod/crm-db/password",
            "CRM database password",
            RiskClass::B,
            30,
        ),
        "team-sales",
    ),
    (
        tpl(
            "prod/zendesk/api-token",
            "Zendesk admin API token",
            RiskClass::B,
            30,
        ),
        "team-support",
    ),
    (
        tpl(
            "prod/shared/openai-org-admin-key",
            "OpenAI organisation admin key",
            RiskClass::A,
            14,
        ),
        "maria.garcia",
    ),
    (
        tpl(
            "prod/vector-store/admin-password",
            "vector store admin password",
            RiskClass::B,
            30,
        ),
        "li.wei",
    ),
    (
        tpl(
            "prod/analytics-warehouse/readonly-password",
            "analytics warehouse read-only password",
            RiskClass::C,
            90,
        ),
        "team-data",
    ),
    (
        tpl(
            "prod/pagerduty/integration-key",
            "PagerDuty integration key",
            RiskClass::C,
            60,
        ),
        "team-platform",
    ),
    (
        tpl(
            "prod/sentry/auth-token",
            "Sentry auth token",
            RiskClass::D,
            180,
        ),
        "team-platform",
    ),
    (
        tpl(
            "prod/tls/agents-internal-private-key",
            "private key of the agents' internal TLS certificate",
            RiskClass::D,
            0,
        ),
        "team-security",
    ),
];

pub(super) const OWNERS: [OwnerDecl; 11] = [
    OwnerDecl {
        id: "team-payments",
        name: "Payments team",
        email: "payments@example.com",
        status: OwnerStatus::Active,
    },
    OwnerDecl {
        id: "team-research",
        name: "Research agents team",
        email: "research@example.com",
        status: OwnerStatus::Active,
    },
    OwnerDecl {
        id: "team-support",
        name: "Support automation team",
        email: "support-automation@example.com",
        status: OwnerStatus::Active,
    },
    OwnerDecl {
        id: "team-platform",
        name: "Platform engineering",
        email: "platform@example.com",
        status: OwnerStatus::Active,
    },
    OwnerDecl {
        id: "team-data",
        name: "Data platform team",
        email: "data@example.com",
        status: OwnerStatus::Active,
    },
    OwnerDecl {
        id: "team-security",
        name: "Security engineering",
        email: "security@example.com",
        status: OwnerStatus::Active,
    },
    OwnerDecl {
        id: "team-sales",
        name: "Sales engineering",
        email: "sales-eng@example.com",
        status: OwnerStatus::Active,
    },
    OwnerDecl {
        id: "maria.garcia",
        name: "Maria Garcia",
        email: "maria.garcia@example.com",
        status: OwnerStatus::Active,
    },
    OwnerDecl {
        id: "li.wei",
        name: "Li Wei",
        email: "li.wei@example.com",
        status: OwnerStatus::Active,
    },
    OwnerDecl {
        id: "alice.nguyen",
        name: "Alice Nguyen",
        email: "alice.nguyen@example.com",
        status: OwnerStatus::Departed,
    },
    OwnerDecl {
        id: "john.smith",
        name: "John Smith",
        email: "john.smith@example.com",
        status: OwnerStatus::Departed,
    },
];

/// The departed owner who still owns a credential.
pub(super) const DEPARTED_OWNER: &str = "alice.nguyen";
/// An owner id used in the inventory but missing from `[[owners]]`.
pub(super) const UNKNOWN_OWNER: &str = "team-growth";
