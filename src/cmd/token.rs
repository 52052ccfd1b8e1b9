//! `iris token`: create (checked against the directory), list and revoke bearer tokens.

use iris_access::{AccessControl, NewToken, Role, TokenStore};
use iris_store::datadir::DataDir;

#[derive(clap::Args)]
pub struct TokenArgs {
    /// admin, collector, adviser, inspector, citizen, researcher or auditor.
    #[arg(long, required_unless_present_any = ["revoke", "list"])]
    role: Option<Role>,
    /// Who holds it: the user id of an adviser or inspector (users.csv), a citizen's NISS, a
    /// researcher's project; a name for admin and auditor.
    #[arg(long)]
    principal: Option<String>,
    /// The source a collector token may push events for.
    #[arg(long)]
    source: Option<String>,
    /// Days until the token expires (default: 90 for persons, never for admin, auditor, collector).
    #[arg(long)]
    expires_days: Option<u32>,
    /// Revoke the token with this id (e.g. t3); refused from its next request on.
    #[arg(long, conflicts_with_all = ["role", "list"])]
    revoke: Option<String>,
    /// List the tokens (ids, roles, principals, expiry; never secrets).
    #[arg(long, conflicts_with = "role")]
    list: bool,
}

/// Days a person's token lasts unless told otherwise.
const PERSON_TOKEN_DAYS: u32 = 90;

pub fn run(dir: &DataDir, args: TokenArgs) -> anyhow::Result<()> {
    dir.create()?;
    let store = TokenStore::new(&dir.tokens_path());
    if let Some(id) = args.revoke {
        let t = store.revoke(&id)?;
        eprintln!("token {} ({}) revoked", t.id, t.role);
        return Ok(());
    }
    if args.list {
        for t in store.list()? {
            println!(
                "{}\t{}\t{}\t{}\texpires {}{}",
                t.id,
                t.role,
                t.principal.as_deref().unwrap_or("-"),
                t.source.as_deref().unwrap_or("-"),
                t.expires.as_deref().unwrap_or("never"),
                if t.revoked { "\tREVOKED" } else { "" }
            );
        }
        return Ok(());
    }
    let role = args
        .role
        .ok_or_else(|| anyhow::anyhow!("give --role, --list or --revoke"))?;
    check_principal(dir, role, args.principal.as_deref())?;
    let expires_in_days = args.expires_days.or(match role {
        Role::Admin | Role::Auditor | Role::Collector => None,
        _ => Some(PERSON_TOKEN_DAYS),
    });
    let (record, secret) = store.create(NewToken {
        role,
        principal: args.principal,
        source: args.source,
        expires_in_days,
    })?;
    eprintln!(
        "token {} for {} {}{} (shown once, keep it secret):",
        record.id,
        record.role,
        record.principal.as_deref().unwrap_or(""),
        record
            .expires
            .as_deref()
            .map(|e| format!(", expires {e}"))
            .unwrap_or_default()
    );
    println!("{secret}");
    Ok(())
}

/// A token's principal must be what its role needs, as the directory and policies know it.
pub fn check_principal(dir: &DataDir, role: Role, principal: Option<&str>) -> anyhow::Result<()> {
    let needs = match role {
        Role::Adviser => "the adviser's user id",
        Role::Inspector => "the inspector's user id",
        Role::Citizen => "the citizen's NISS",
        Role::Researcher => "the project id",
        Role::Admin | Role::Auditor | Role::Collector => return Ok(()),
    };
    let Some(id) = principal else {
        anyhow::bail!("a {role} token needs --principal ({needs})");
    };
    if role == Role::Citizen {
        if !iris_ingest::checkdigit::is_valid_niss(id) {
            anyhow::bail!("`{id}` is not a valid NISS (11 digits with check digits)");
        }
        return Ok(());
    }
    let access_dir = dir.root.join("access");
    let access = AccessControl::open(&access_dir).map_err(|e| {
        anyhow::anyhow!(
            "cannot check `{id}` against the directory ({e}); put the access files in {} (samples: data-samples/access)",
            access_dir.display()
        )
    })?;
    let s = access.refresh();
    let known = match role {
        Role::Adviser => s.directory.supervised_by(id).is_some(),
        Role::Inspector => s.directory.service_of(id).is_some(),
        _ => s.policies.projects.contains_key(id),
    };
    if !known {
        anyhow::bail!(
            "`{id}` is not {} in {}",
            match role {
                Role::Adviser => "a security adviser (capacity security-adviser in users.csv)",
                Role::Inspector =>
                    "an inspector of an inspection service (users.csv, institutions.csv)",
                _ => "a project of policies/projects.toml",
            },
            access_dir.display()
        );
    }
    Ok(())
}
