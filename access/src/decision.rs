//! The decision point: permit or deny each request, with the reason, the ids of the policies that
//! decided, and — when permitted — the scope of rows the enforcement point applies inside the plan.

use crate::directory::Directory;
use crate::policies::Policies;
use crate::tokens::{Principal, Role};
use chrono::{Months, NaiveDate};
use iris_query::RowScope;

/// What is asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Free SQL over `events`.
    Sql,
    /// A trace by subject, actor or ticket (the key is in [`Request::key`]).
    Trace(TraceBy),
    /// A citizen's "who consulted my data".
    MyConsultations,
    /// The inclusion proof of events (`GET /v1/proof`): every field of each event, within the scope a
    /// trace would get.
    Prove,
    /// Check the chain.
    Verify,
    /// Export the chain's signed head.
    Checkpoint,
    /// Seal what is waiting.
    Seal,
    /// Append events for a source.
    Ingest { source: String },
    /// Anonymised aggregates of the labour-market tables (a free query or a report).
    Research,
    /// Read research projects' privacy budgets (a researcher their own project's, an admin all).
    ResearchBudget,
}

/// What a trace follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceBy {
    Subject,
    Actor,
    Ticket,
}

/// One request to decide.
#[derive(Clone, Debug)]
pub struct Request<'a> {
    pub principal: &'a Principal,
    pub action: Action,
    /// The trace key, when tracing.
    pub key: Option<&'a str>,
    /// The deliberation an inspector acts under.
    pub deliberation: Option<&'a str>,
    /// The inspector's case reference.
    pub case_ref: Option<&'a str>,
    /// Today (UTC), for validity periods.
    pub today: NaiveDate,
}

/// The answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub permit: bool,
    /// Why, in words a user can act on.
    pub reason: String,
    /// The policies that decided (e.g. `deliberation:CSSS/04/032`, `role:adviser`).
    pub policies: Vec<String>,
    /// The rows (and columns) a permitted request may read.
    pub scope: RowScope,
    /// The purpose recorded with the request (deliberation and case reference).
    pub purpose: Option<String>,
}

impl Decision {
    fn permit(reason: impl Into<String>, policies: Vec<String>, scope: RowScope) -> Decision {
        Decision {
            permit: true,
            reason: reason.into(),
            policies,
            scope,
            purpose: None,
        }
    }

    fn deny(reason: impl Into<String>, policies: Vec<String>) -> Decision {
        Decision {
            permit: false,
            reason: reason.into(),
            policies,
            // Nothing: even a caller that ignored `permit` would read no row.
            scope: RowScope {
                sources: Some(Vec::new()),
                ..RowScope::default()
            },
            purpose: None,
        }
    }
}

/// Columns a citizen sees: institutions, times, purposes and message types — never an agent's id.
pub const CITIZEN_COLUMNS: [&str; 10] = [
    "ts",
    "day",
    "source",
    "ticket",
    "actor_org",
    "subject_id",
    "message_type",
    "operation",
    "result",
    "purpose",
];

/// Decides one request against the directory and the policies.
pub fn decide(directory: &Directory, policies: &Policies, req: &Request<'_>) -> Decision {
    let p = req.principal;
    let role = |r: Role| vec![format!("role:{r}")];
    match (p.role, &req.action) {
        (Role::Collector, Action::Ingest { source }) => match &p.source {
            Some(own) if own == source => Decision::permit(
                format!("collector of source `{own}`"),
                role(Role::Collector),
                RowScope::default(),
            ),
            own => Decision::deny(
                format!(
                    "this collector token appends events for source `{}` only",
                    own.as_deref().unwrap_or("?")
                ),
                role(Role::Collector),
            ),
        },
        (Role::Collector, _) => Decision::deny(
            "a collector token may only append events; it reads nothing",
            role(Role::Collector),
        ),
        (_, Action::Ingest { .. }) => {
            Decision::deny("only a collector token may append events", role(p.role))
        }
        (Role::Researcher, Action::Research | Action::ResearchBudget) => {
            match policies.projects.get(&p.id) {
                Some(project) => Decision::permit(
                    format!(
                        "differentially private aggregates of the labour-market tables, paid from project {}'s privacy budget (cells under {} persons shown :c)",
                        project.id, project.min_cell
                    ),
                    vec![project.id.clone()],
                    RowScope::default(),
                ),
                None => Decision::deny(
                    format!("no research project `{}` in the policies", p.id),
                    role(Role::Researcher),
                ),
            }
        }
        (_, Action::Research) => Decision::deny(
            "the labour-market tables are released only as anonymised aggregates to a research project's token",
            role(p.role),
        ),
        (Role::Admin, Action::MyConsultations) => Decision::deny(
            "the consultations view is for a citizen's own token",
            role(Role::Admin),
        ),
        (Role::Admin, _) => {
            Decision::permit("administrator", role(Role::Admin), RowScope::everything())
        }
        (Role::Auditor, Action::Verify | Action::Checkpoint) => Decision::permit(
            "auditors verify the chain and export checkpoints",
            role(Role::Auditor),
            RowScope::default(),
        ),
        (Role::Auditor, Action::Sql | Action::Trace(_) | Action::Prove) => Decision::permit(
            "auditors read Iris's own audit events only (who asked what), never the network's events",
            role(Role::Auditor),
            RowScope {
                own_events: true,
                ..RowScope::default()
            },
        ),
        (Role::Adviser, Action::Sql | Action::Trace(_) | Action::Prove) => adviser(directory, req),
        (Role::Inspector, Action::Sql | Action::Trace(_) | Action::Prove) => {
            inspector(directory, policies, req)
        }
        (Role::Citizen, Action::MyConsultations) => citizen(policies, req),
        (Role::Citizen, Action::Prove) => citizen_proof(policies, req),
        (Role::Citizen, _) => Decision::deny(
            "a citizen sees who consulted their own data (GET /v1/me/consultations), nothing else",
            vec![policies.citizen.id.clone()],
        ),
        (Role::Researcher, _) => Decision::deny(
            "researchers see only anonymised aggregates of the labour-market tables, never event rows",
            role(Role::Researcher),
        ),
        (r, a) => Decision::deny(format!("a {r} may not {}", verb(a)), role(r)),
    }
}

fn verb(a: &Action) -> &'static str {
    match a {
        Action::Sql => "run SQL",
        Action::Trace(_) => "trace",
        Action::MyConsultations => "open a citizen's consultations",
        Action::Prove => "prove events",
        Action::Research => "query the labour-market tables",
        Action::ResearchBudget => "read the research projects' privacy budgets",
        Action::Verify => "verify the chain",
        Action::Checkpoint => "export checkpoints",
        Action::Seal => "seal",
        Action::Ingest { .. } => "append events",
    }
}

fn adviser(directory: &Directory, req: &Request<'_>) -> Decision {
    let id = &req.principal.id;
    let policies = vec!["role:adviser".to_owned(), format!("supervision:{id}")];
    let Some(orgs) = directory.supervised_by(id) else {
        return Decision::deny(
            format!("`{id}` is not a security adviser in the directory (users.csv)"),
            policies,
        );
    };
    // A trace by actor is permitted only for a known user of a supervised institution. An unknown
    // id, a user of another institution and an application id are refused alike, with one message
    // that depends only on what the adviser supervises: answering them differently (403 for a
    // registered user elsewhere, 200 with no events for an unknown id) would let an adviser probe
    // which ids are registered users of other institutions. Never say where the other user works.
    if let (Action::Trace(TraceBy::Actor), Some(actor)) = (&req.action, req.key)
        && !directory
            .users
            .get(actor)
            .is_some_and(|user| orgs.contains(&user.institution))
    {
        return Decision::deny(
            format!(
                "you may trace only the users of the institutions you supervise ({}); `{actor}` is not one of them",
                orgs.iter().cloned().collect::<Vec<_>>().join(", ")
            ),
            policies,
        );
    }
    let orgs: Vec<String> = orgs.into_iter().collect();
    let mut d = Decision::permit(
        format!(
            "security adviser: events of the users of {}",
            orgs.join(", ")
        ),
        policies,
        RowScope {
            actor_orgs: Some(orgs.clone()),
            ..RowScope::default()
        },
    );
    d.purpose = Some(format!("supervision of the users of {}", orgs.join(", ")));
    d
}

fn inspector(directory: &Directory, policies: &Policies, req: &Request<'_>) -> Decision {
    let id = &req.principal.id;
    let Some(service) = directory.service_of(id) else {
        return Decision::deny(
            format!("`{id}` is not a member of an inspection service in the directory"),
            vec!["role:inspector".to_owned()],
        );
    };
    let granted: Vec<&str> = policies
        .deliberations
        .values()
        .filter(|d| d.grantee == service.code)
        .map(|d| d.id.as_str())
        .collect();
    let Some(delib_id) = req.deliberation else {
        return Decision::deny(
            format!(
                "an inspector acts under a deliberation: give one of {}",
                if granted.is_empty() {
                    "(none granted to your service)".to_owned()
                } else {
                    granted.join(", ")
                }
            ),
            vec!["role:inspector".to_owned()],
        );
    };
    let policy = vec![format!("deliberation:{delib_id}")];
    let Some(d) = policies.deliberations.get(delib_id) else {
        return Decision::deny(format!("no deliberation `{delib_id}`"), policy);
    };
    if d.grantee != service.code {
        return Decision::deny(
            format!(
                "deliberation {delib_id} is not granted to your service ({})",
                service.code
            ),
            policy,
        );
    }
    if !d.valid.contains(req.today) {
        return Decision::deny(
            format!(
                "deliberation {delib_id} may be used from {} to {}, not on {}",
                d.valid.from, d.valid.to, req.today
            ),
            policy,
        );
    }
    let case = req.case_ref.map(str::trim).filter(|c| !c.is_empty());
    if d.case_required && case.is_none() {
        return Decision::deny(
            format!("deliberation {delib_id} requires a case reference"),
            policy,
        );
    }
    let mut subjects = d.subjects.clone();
    if let Some(c) = case
        && !d.cases.is_empty()
    {
        let Some(case_subjects) = d.cases.get(c) else {
            return Decision::deny(
                format!("case `{c}` is not registered under deliberation {delib_id}"),
                policy,
            );
        };
        subjects = Some(match subjects {
            Some(s) => s
                .into_iter()
                .filter(|x| case_subjects.contains(x))
                .collect(),
            None => case_subjects.clone(),
        });
    }
    let scope = RowScope {
        actor_orgs: d.actor_orgs.clone(),
        subjects,
        operations: d.operations.clone(),
        from_micros: Some(day_start(d.period.from)),
        until_micros: d.period.to.succ_opt().map(day_start),
        ..RowScope::default()
    };
    let mut out = Decision::permit(
        format!(
            "deliberation {delib_id} ({}), events of {} to {}",
            d.purpose, d.period.from, d.period.to
        ),
        policy,
        scope,
    );
    out.purpose = Some(match case {
        Some(c) => format!("{delib_id}; case {c}"),
        None => delib_id.to_owned(),
    });
    out
}

fn citizen(policies: &Policies, req: &Request<'_>) -> Decision {
    let rule = &policies.citizen;
    let niss = &req.principal.id;
    let since = req
        .today
        .checked_sub_months(Months::new(rule.months))
        .unwrap_or(req.today);
    Decision::permit(
        format!(
            "your own data, the last {} months: which institution, when, for which purpose",
            rule.months
        ),
        vec![rule.id.clone()],
        RowScope {
            subjects: Some(vec![niss.clone()]),
            operations: Some(rule.operations.clone()),
            from_micros: Some(day_start(since)),
            columns: Some(CITIZEN_COLUMNS.iter().map(|c| (*c).to_owned()).collect()),
            ..RowScope::default()
        },
    )
}

/// A citizen's proof of their own consultations: the rows of their view, but every field of each
/// (a proof's leaf commits to all of them, the agent's id included), so only where the citizen rule
/// allows it (`proofs = true`).
fn citizen_proof(policies: &Policies, req: &Request<'_>) -> Decision {
    if !policies.citizen.proofs {
        return Decision::deny(
            "a proof shows every field of an event, including the agent's id, which a citizen does not see; \
             proofs for citizens are not enabled here (citizen rule `proofs`)",
            vec![policies.citizen.id.clone()],
        );
    }
    let mut d = citizen(policies, req);
    d.scope.columns = None;
    d
}

/// Midnight UTC of a day, in µs since the epoch.
pub fn day_start(day: NaiveDate) -> i64 {
    day.and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc().timestamp_micros())
        .unwrap_or_default()
}
