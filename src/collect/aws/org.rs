//! The accounts of an AWS Organization: `organizations:ListAccounts` from the management (or
//! delegated-administrator) account, or, with `--include-ou`, ListAccountsForParent and
//! ListOrganizationalUnitsForParent walked down from each organisational unit given; then
//! `--exclude-account` taken out. Listing the accounts is what fixes the scope of the scan, so
//! a listing that fails stops the scan with an error rather than scanning fewer accounts.

use std::collections::BTreeSet;

use aws_sdk_organizations::Client;
use aws_sdk_organizations::types::AccountStatus;

use super::OrgOptions;
use super::context::{AccountId, Ctx, describe};
use super::session::Account;
use crate::error::{Error, Result};

/// One account of the organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgAccount {
    pub id: AccountId,
    /// `ACTIVE` (a suspended or closing account cannot be read).
    pub active: bool,
}

/// Checks the organisation options before anything is called.
pub fn check_options(org: &OrgOptions, assume_roles: bool) -> Result<()> {
    if assume_roles {
        return Err(Error::Usage(
            "--org reads every account of the organisation through --org-role; it cannot be \
             combined with --assume-role"
                .to_string(),
        ));
    }
    check_role_name(&org.role)?;
    for id in &org.exclude_accounts {
        if AccountId::parse(id).is_none() {
            return Err(Error::Usage(format!(
                "--exclude-account {id:?}: expected a 12-digit AWS account id"
            )));
        }
    }
    for ou in &org.include_ous {
        if !is_parent_id(ou) {
            return Err(Error::Usage(format!(
                "--include-ou {ou:?}: expected an organisational unit id like \
                 ou-ab12-cd34ef56 or a root id like r-ab12"
            )));
        }
    }
    Ok(())
}

/// A role name IAM accepts: 1 to 64 of letters, digits and `+=,.@_-`.
pub fn check_role_name(role: &str) -> Result<()> {
    let ok = (1..=64).contains(&role.len())
        && role
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "--org-role {role:?}: expected an IAM role name (1 to 64 letters, digits and +=,.@_-)"
        )))
    }
}

/// `ou-` + 4–32 lowercase letters or digits + `-` + 8–32 more, or `r-` + 4–32 (the API's
/// patterns).
fn is_parent_id(id: &str) -> bool {
    let part = |s: &str, min: usize| {
        (min..=32).contains(&s.len())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    };
    if let Some(rest) = id.strip_prefix("ou-") {
        matches!(rest.split_once('-'), Some((a, b)) if part(a, 4) && part(b, 8))
    } else if let Some(rest) = id.strip_prefix("r-") {
        part(rest, 4)
    } else {
        false
    }
}

/// The organisation's accounts to read, sorted by id, without the excluded ones.
pub async fn list_accounts(ctx: &Ctx, base: &Account, org: &OrgOptions) -> Result<Vec<OrgAccount>> {
    let client = base.organizations();
    ctx.status("AWS Organizations accounts".to_string());
    let listed = if org.include_ous.is_empty() {
        all_accounts(ctx, &client).await
    } else {
        accounts_under(ctx, &client, &org.include_ous).await
    };
    let listed = listed.map_err(|e| {
        Error::Usage(format!(
            "--org: cannot list the organisation's accounts from account {} ({e}); run from the \
             management account or a delegated administrator with the policy of \
             `credaudit iam-policy --org`",
            base.id
        ))
    })?;
    let excluded: BTreeSet<&str> = org.exclude_accounts.iter().map(String::as_str).collect();
    let mut accounts: Vec<OrgAccount> = listed
        .into_iter()
        .filter(|a| !excluded.contains(a.id.as_str()))
        .collect();
    accounts.sort_by(|a, b| a.id.cmp(&b.id));
    accounts.dedup_by(|a, b| a.id == b.id);
    if accounts.is_empty() {
        return Err(Error::Usage(
            "--org: no account of the organisation is left to read (check --include-ou and \
             --exclude-account)"
                .to_string(),
        ));
    }
    Ok(accounts)
}

fn org_account(
    id: Option<&str>,
    status: Option<&AccountStatus>,
) -> std::result::Result<OrgAccount, String> {
    let id = id.unwrap_or_default();
    let id = AccountId::parse(id)
        .ok_or_else(|| format!("Organizations listed an account id {id:?}, not 12 digits"))?;
    Ok(OrgAccount {
        id,
        active: status == Some(&AccountStatus::Active),
    })
}

async fn all_accounts(ctx: &Ctx, client: &Client) -> std::result::Result<Vec<OrgAccount>, String> {
    let mut accounts = Vec::new();
    let mut stream = client.list_accounts().into_paginator().send();
    while let Some(page) = ctx.page("organizations:ListAccounts", stream.next()).await {
        let page = page.map_err(|e| describe(&e))?;
        for account in page.accounts() {
            accounts.push(org_account(account.id(), account.status())?);
        }
    }
    Ok(accounts)
}

/// The accounts under each of `parents`, at any depth.
async fn accounts_under(
    ctx: &Ctx,
    client: &Client,
    parents: &[String],
) -> std::result::Result<Vec<OrgAccount>, String> {
    let mut accounts = Vec::new();
    let mut queue: Vec<String> = parents.to_vec();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    while let Some(parent) = queue.pop() {
        if !seen.insert(parent.clone()) {
            continue;
        }
        let mut stream = client
            .list_accounts_for_parent()
            .parent_id(&parent)
            .into_paginator()
            .send();
        while let Some(page) = ctx
            .page("organizations:ListAccountsForParent", stream.next())
            .await
        {
            let page = page.map_err(|e| format!("{parent}: {}", describe(&e)))?;
            for account in page.accounts() {
                accounts.push(org_account(account.id(), account.status())?);
            }
        }
        let mut stream = client
            .list_organizational_units_for_parent()
            .parent_id(&parent)
            .into_paginator()
            .send();
        while let Some(page) = ctx
            .page(
                "organizations:ListOrganizationalUnitsForParent",
                stream.next(),
            )
            .await
        {
            let page = page.map_err(|e| format!("{parent}: {}", describe(&e)))?;
            queue.extend(
                page.organizational_units()
                    .iter()
                    .filter_map(|ou| ou.id())
                    .filter(|id| is_parent_id(id))
                    .map(str::to_string),
            );
        }
    }
    Ok(accounts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_ids_follow_the_api_patterns() {
        for good in ["ou-ab12-cd34ef56", "r-ab12", "ou-abcd-0123456789abcdef"] {
            assert!(is_parent_id(good), "{good}");
        }
        for bad in [
            "ou-ab1-cd34ef56",
            "ou-ab12-cd34",
            "r-AB12",
            "ou-ab12",
            "x-ab12",
            "",
            "r-ab12/../x",
        ] {
            assert!(!is_parent_id(bad), "{bad}");
        }
    }

    #[test]
    fn role_names_are_checked() {
        assert!(check_role_name("credaudit-audit").is_ok());
        assert!(check_role_name("OrganizationAccountAccessRole").is_ok());
        for bad in ["", "a/b", "role name", &"x".repeat(65), "r\u{e9}le"] {
            assert!(check_role_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn options_are_checked_before_any_call() {
        let org = OrgOptions {
            role: "credaudit-audit".into(),
            exclude_accounts: vec!["12345".into()],
            include_ous: vec![],
        };
        assert!(
            check_options(&org, false)
                .unwrap_err()
                .to_string()
                .contains("--exclude-account")
        );
        let org = OrgOptions {
            role: "credaudit-audit".into(),
            exclude_accounts: vec![],
            include_ous: vec!["ou-x".into()],
        };
        assert!(
            check_options(&org, false)
                .unwrap_err()
                .to_string()
                .contains("--include-ou")
        );
        let org = OrgOptions {
            role: "credaudit-audit".into(),
            ..OrgOptions::default()
        };
        assert!(
            check_options(&org, true)
                .unwrap_err()
                .to_string()
                .contains("--assume-role")
        );
        assert!(check_options(&org, false).is_ok());
    }
}
