//! The administration point: the rules, as readable TOML files.
//!
//! `deliberations.toml`: what each inspection service may see (scope, operations, period, purpose,
//! validity, case references). `citizen.toml`: the citizen's view of their own file.
//! `projects.toml`: research projects (minimum cell size; pseudonym keys are kept elsewhere).

use crate::AccessError;
use chrono::NaiveDate;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// An inclusive range of days.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Days {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl Days {
    /// Whether `day` lies in the range.
    pub fn contains(&self, day: NaiveDate) -> bool {
        self.from <= day && day <= self.to
    }
}

/// An authorisation of the Sectoral Committee for an inspection service.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Deliberation {
    /// Its reference, e.g. `CSSS/04/032`.
    pub id: String,
    #[serde(default)]
    pub title: String,
    /// The inspection service (institution code) it is granted to.
    pub grantee: String,
    /// The purpose it allows; recorded with every query made under it.
    pub purpose: String,
    /// Operations whose events may be seen (default: all).
    #[serde(default)]
    pub operations: Option<Vec<String>>,
    /// Institutions whose users' events may be seen (default: any).
    #[serde(default)]
    pub actor_orgs: Option<Vec<String>>,
    /// Persons or enterprises whose events may be seen (default: any).
    #[serde(default)]
    pub subjects: Option<Vec<String>>,
    /// Days of events it covers.
    pub period: Days,
    /// Days on which it may be used.
    pub valid: Days,
    /// Whether each query must name a case reference.
    #[serde(default)]
    pub case_required: bool,
    /// Registered cases: reference → the subjects the case is about. When present, a query under a
    /// case sees only that case's subjects, and only registered references are accepted.
    #[serde(default)]
    pub cases: BTreeMap<String, Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeliberationFile {
    #[serde(default)]
    deliberation: Vec<Deliberation>,
}

/// The citizen's view of who consulted their data.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CitizenRule {
    pub id: String,
    /// How far back the citizen sees, in months.
    pub months: u32,
    /// Which operations count as consulting their data.
    pub operations: Vec<String>,
    /// Whether a citizen may download the inclusion proof of their consultations
    /// (`GET /v1/proof`). A proof carries every field of each event, the agent's id included, which
    /// the consultations view hides: off unless the operator's legal basis allows it.
    #[serde(default)]
    pub proofs: bool,
}

/// A research project.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Project {
    pub id: String,
    #[serde(default)]
    pub title: String,
    /// Fewest distinct persons behind a released cell (frequency rule).
    pub min_cell: u32,
    /// The labour-market tables the project may query (all of them when absent).
    #[serde(default)]
    pub tables: Option<Vec<String>>,
    /// Released figures are rounded to a multiple of this (1: no rounding).
    #[serde(default = "default_round")]
    pub round_to: u32,
    /// The project's whole privacy budget, ρ (zCDP); the research desk's default when absent.
    #[serde(default)]
    pub budget_rho: Option<f64>,
    /// ρ spent on one figure set (one aggregate over the cells of one answer); the desk's default
    /// when absent.
    #[serde(default)]
    pub rho_per_figure: Option<f64>,
}

fn default_round() -> u32 {
    1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectFile {
    #[serde(default)]
    project: Vec<Project>,
    #[serde(default)]
    reports: Option<ReportsBudget>,
}

/// The published reports' own privacy budget (`[reports]` in `projects.toml`); the research desk's
/// defaults where absent.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ReportsBudget {
    #[serde(default)]
    pub budget_rho: Option<f64>,
    #[serde(default)]
    pub rho_per_figure: Option<f64>,
}

/// Every rule, as loaded.
#[derive(Clone, Debug)]
pub struct Policies {
    pub deliberations: BTreeMap<String, Deliberation>,
    pub citizen: CitizenRule,
    pub projects: BTreeMap<String, Project>,
    /// The reports' budget.
    pub reports: ReportsBudget,
}

/// The operations an event may carry.
const OPERATIONS: [&str; 5] = ["create", "consult", "modify", "delete", "list"];

impl Policies {
    /// No deliberation, no project, the citizen rule of DESIGN §4 (six months, every operation).
    pub fn none() -> Policies {
        Policies {
            deliberations: BTreeMap::new(),
            citizen: CitizenRule {
                id: "citizen-view".into(),
                months: 6,
                operations: OPERATIONS.iter().map(|o| (*o).to_owned()).collect(),
                proofs: false,
            },
            projects: BTreeMap::new(),
            reports: ReportsBudget::default(),
        }
    }

    /// Reads and checks the three files of `dir`.
    pub fn load(dir: &Path) -> Result<Policies, AccessError> {
        let path = dir.join("deliberations.toml");
        let file: DeliberationFile = read_toml(&path)?;
        let mut deliberations = BTreeMap::new();
        for d in file.deliberation {
            check_deliberation(&d).map_err(|why| AccessError::file(&path, why))?;
            if deliberations.insert(d.id.clone(), d.clone()).is_some() {
                return Err(AccessError::file(
                    &path,
                    format!("deliberation `{}` is defined twice", d.id),
                ));
            }
        }
        let path = dir.join("citizen.toml");
        let citizen: CitizenRule = read_toml(&path)?;
        if citizen.months == 0 || citizen.months > 120 {
            return Err(AccessError::file(&path, "months must be between 1 and 120"));
        }
        check_operations(&citizen.operations).map_err(|why| AccessError::file(&path, why))?;
        let path = dir.join("projects.toml");
        let file: ProjectFile = read_toml(&path)?;
        let mut projects = BTreeMap::new();
        for p in file.project {
            if p.min_cell < 2 {
                return Err(AccessError::file(
                    &path,
                    format!("project `{}`: min_cell must be at least 2", p.id),
                ));
            }
            let positive = |x: Option<f64>| x.is_none_or(|x| x.is_finite() && x > 0.0);
            if p.round_to == 0 || !positive(p.budget_rho) || !positive(p.rho_per_figure) {
                return Err(AccessError::file(
                    &path,
                    format!(
                        "project `{}`: round_to ≥ 1, budget_rho and rho_per_figure positive numbers",
                        p.id
                    ),
                ));
            }
            if p.id.starts_with('_') || p.id.is_empty() {
                return Err(AccessError::file(
                    &path,
                    format!(
                        "project `{}`: ids starting with `_` are Iris's own (`_reports`)",
                        p.id
                    ),
                ));
            }
            projects.insert(p.id.clone(), p);
        }
        if let Some(r) = &file.reports {
            let positive = |x: Option<f64>| x.is_none_or(|x| x.is_finite() && x > 0.0);
            if !positive(r.budget_rho) || !positive(r.rho_per_figure) {
                return Err(AccessError::file(
                    &path,
                    "[reports]: budget_rho and rho_per_figure must be positive numbers",
                ));
            }
        }
        Ok(Policies {
            deliberations,
            citizen,
            projects,
            reports: file.reports.unwrap_or_default(),
        })
    }
}

fn check_deliberation(d: &Deliberation) -> Result<(), String> {
    if d.id.trim().is_empty() || d.purpose.trim().is_empty() {
        return Err("a deliberation needs an id and a purpose".into());
    }
    if d.period.from > d.period.to || d.valid.from > d.valid.to {
        return Err(format!(
            "deliberation `{}`: a period ends before it starts",
            d.id
        ));
    }
    if let Some(ops) = &d.operations {
        check_operations(ops).map_err(|why| format!("deliberation `{}`: {why}", d.id))?;
    }
    Ok(())
}

fn check_operations(ops: &[String]) -> Result<(), String> {
    match ops.iter().find(|o| !OPERATIONS.contains(&o.as_str())) {
        Some(bad) => Err(format!(
            "unknown operation `{bad}` (one of {})",
            OPERATIONS.join(", ")
        )),
        None => Ok(()),
    }
}

fn read_toml<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, AccessError> {
    let text = std::fs::read_to_string(path).map_err(|e| AccessError::file(path, e.to_string()))?;
    toml::from_str(&text).map_err(|e| AccessError::file(path, e.to_string()))
}
