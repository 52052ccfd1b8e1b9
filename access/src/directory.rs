//! The information point: who is who. Institutions, their users (with capacity) and who supervises
//! which institutions' users, read from CSV files as an authentic source would export them.
//!
//! `institutions.csv`: `code,name,kind` (`kind` is `inspection` for an inspection service).
//! `users.csv`: `actor_id,institution,capacity[,certificate]` (`capacity`: `security-adviser`,
//! `inspector`, or any other). The optional `certificate` column names the person's client
//! certificate for TLS sign-in: an 11-digit NISS (matched against the subject's `serialNumber`
//! attribute, where a Belgian eID carries the national number) or a whole subject DN as Iris writes
//! it (`CN=…, O=…`, quoted in the CSV). Files without the column still load.
//! `supervision.csv`: `adviser,institution`: an adviser supervises the users of these institutions
//! (besides their own).

use crate::AccessError;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Capacity of a security adviser in `users.csv`.
pub const ADVISER: &str = "security-adviser";
/// Capacity of a member of an inspection service.
pub const INSPECTOR: &str = "inspector";
/// Institution kind of an inspection service.
pub const INSPECTION: &str = "inspection";

/// One institution.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Institution {
    pub code: String,
    pub name: String,
    pub kind: String,
}

/// One user (an `actor_id` of the events).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct User {
    pub actor_id: String,
    pub institution: String,
    pub capacity: String,
    /// The NISS or subject DN of the person's client certificate (empty: no certificate sign-in).
    #[serde(default)]
    pub certificate: Option<String>,
}

#[derive(Deserialize)]
struct Supervision {
    adviser: String,
    institution: String,
}

/// The directory as loaded.
#[derive(Clone, Debug, Default)]
pub struct Directory {
    pub institutions: BTreeMap<String, Institution>,
    pub users: BTreeMap<String, User>,
    /// Adviser → institutions supervised besides their own.
    pub supervision: BTreeMap<String, BTreeSet<String>>,
    /// `certificate` column (NISS or subject DN) → `actor_id`.
    pub certificates: BTreeMap<String, String>,
}

impl Directory {
    /// Reads the three files of `dir`; every problem is named with its file and line.
    pub fn load(dir: &Path) -> Result<Directory, AccessError> {
        let mut d = Directory::default();
        for i in read_csv::<Institution>(&dir.join("institutions.csv"))? {
            d.institutions.insert(i.code.clone(), i);
        }
        let users = dir.join("users.csv");
        for (n, u) in read_csv::<User>(&users)?.into_iter().enumerate() {
            if !d.institutions.contains_key(&u.institution) {
                return Err(AccessError::file(
                    &users,
                    format!(
                        "line {}: user `{}` belongs to unknown institution `{}`",
                        n + 2,
                        u.actor_id,
                        u.institution
                    ),
                ));
            }
            if let Some(c) = u
                .certificate
                .as_deref()
                .map(str::trim)
                .filter(|c| !c.is_empty())
            {
                if let Some(other) = d.certificates.get(c) {
                    return Err(AccessError::file(
                        &users,
                        format!(
                            "line {}: certificate `{c}` of `{}` is already `{other}`'s",
                            n + 2,
                            u.actor_id
                        ),
                    ));
                }
                d.certificates.insert(c.to_owned(), u.actor_id.clone());
            }
            d.users.insert(u.actor_id.clone(), u);
        }
        let supervision = dir.join("supervision.csv");
        for (n, s) in read_csv::<Supervision>(&supervision)?
            .into_iter()
            .enumerate()
        {
            let is_adviser = d
                .users
                .get(&s.adviser)
                .is_some_and(|u| u.capacity == ADVISER);
            if !is_adviser || !d.institutions.contains_key(&s.institution) {
                return Err(AccessError::file(
                    &supervision,
                    format!(
                        "line {}: `{}` is not a security adviser of the directory, or `{}` is not an institution",
                        n + 2,
                        s.adviser,
                        s.institution
                    ),
                ));
            }
            d.supervision
                .entry(s.adviser)
                .or_default()
                .insert(s.institution);
        }
        Ok(d)
    }

    /// The institutions whose users a security adviser supervises: their own and those granted in
    /// `supervision.csv`. `None` if `actor_id` is not a security adviser.
    pub fn supervised_by(&self, actor_id: &str) -> Option<BTreeSet<String>> {
        let user = self.users.get(actor_id).filter(|u| u.capacity == ADVISER)?;
        let mut orgs = self.supervision.get(actor_id).cloned().unwrap_or_default();
        orgs.insert(user.institution.clone());
        Some(orgs)
    }

    /// The user a client certificate signs in as: the one whose `certificate` is the subject's
    /// `serialNumber` attribute (a NISS on a Belgian eID), else the one whose `certificate` is the
    /// whole subject DN.
    pub fn user_by_certificate(&self, serial_number: Option<&str>, subject: &str) -> Option<&User> {
        serial_number
            .and_then(|s| self.certificates.get(s.trim()))
            .or_else(|| self.certificates.get(subject))
            .and_then(|id| self.users.get(id))
    }

    /// The inspection service an inspector belongs to, if `actor_id` is one.
    pub fn service_of(&self, actor_id: &str) -> Option<&Institution> {
        let user = self
            .users
            .get(actor_id)
            .filter(|u| u.capacity == INSPECTOR)?;
        self.institutions
            .get(&user.institution)
            .filter(|i| i.kind == INSPECTION)
    }
}

fn read_csv<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<T>, AccessError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| AccessError::file(path, e.to_string()))?;
    reader
        .deserialize()
        .map(|r| r.map_err(|e| AccessError::file(path, e.to_string())))
        .collect()
}
