//! The decision matrix: every combination of principal (role, deliberation, case) × subject ×
//! institution × day × operation, decided by the decision point on the sample directory and
//! policies, must match an oracle written independently from the rules in DESIGN §4 and the sample
//! policy files.

use chrono::{Duration, NaiveDate, Utc};
use iris_access::decision::day_start;
use iris_access::{Action, Principal, Request, Role, TraceBy, decide};
use iris_access::{directory::Directory, policies::Policies};
use iris_query::EventFacts;

const CITIZEN: &str = "30010100124";
const OTHER: &str = "30010200191";
const CASE_77: &str = "30010300161";
const STRANGER: &str = "85073003328";

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("day")
}

/// Who asks, under which deliberation and case.
#[derive(Clone, Debug)]
struct Asker {
    role: Role,
    id: &'static str,
    source: Option<&'static str>,
    deliberation: Option<&'static str>,
    case: Option<&'static str>,
}

fn asker(role: Role, id: &'static str) -> Asker {
    Asker {
        role,
        id,
        source: None,
        deliberation: None,
        case: None,
    }
}

fn under(id: &'static str, d: &'static str, case: Option<&'static str>) -> Asker {
    Asker {
        deliberation: Some(d),
        case,
        ..asker(Role::Inspector, id)
    }
}

/// The oracle: may `a` see an event (org, subject, day, operation, source) through SQL (or, for
/// a citizen, their consultations view)?
fn oracle(
    a: &Asker,
    today: NaiveDate,
    org: &str,
    subject: &str,
    d: NaiveDate,
    op: &str,
    source: &str,
) -> bool {
    let network = source != "iris";
    let y2025 = d >= day("2025-01-01") && d <= day("2025-12-31");
    match a.role {
        Role::Admin => network,
        Role::Auditor => !network,
        Role::Collector | Role::Researcher => false,
        Role::Adviser => {
            network
                && match a.id {
                    "ADV0003" => org == "onem0003",
                    "ADV0000" => org == "cpas0000" || org == "cpas0007",
                    _ => false,
                }
        }
        Role::Inspector => {
            if a.id != "INS0005" || !network {
                return false;
            }
            match (a.deliberation, a.case) {
                (Some("CSSS/04/032"), Some("PV-2025-0042")) => {
                    y2025 && (subject == CITIZEN || subject == OTHER)
                }
                (Some("CSSS/04/032"), Some("PV-2025-0077")) => y2025 && subject == CASE_77,
                (Some("CSSS/09/013"), Some(_)) => {
                    ["onem0003", "onem0010", "onem0017"].contains(&org)
                        && (op == "consult" || op == "list")
                        && d >= day("2025-01-01")
                        && d <= day("2026-12-31")
                }
                _ => false,
            }
        }
        Role::Citizen => {
            network
                && subject == a.id
                && d >= today
                    .checked_sub_months(chrono::Months::new(6))
                    .unwrap_or(today)
        }
    }
}

/// The sample directory and policies.
fn samples() -> (Directory, Policies) {
    let root = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
        .join("../data-samples/access");
    let directory = Directory::load(&root.join("directory")).expect("directory");
    let policies = Policies::load(&root.join("policies")).expect("policies");
    (directory, policies)
}

#[test]
fn every_decision_matches_the_oracle() {
    let (directory, policies) = samples();
    let today = Utc::now().date_naive();
    let askers = vec![
        asker(Role::Admin, "t1"),
        asker(Role::Auditor, "t2"),
        Asker {
            source: Some("hub"),
            ..asker(Role::Collector, "t3")
        },
        asker(Role::Researcher, "LM-2025-01"),
        asker(Role::Adviser, "ADV0003"),
        asker(Role::Adviser, "ADV0000"),
        asker(Role::Adviser, "U0000000"),
        asker(Role::Inspector, "INS0005"),
        under("INS0005", "CSSS/04/032", None),
        under("INS0005", "CSSS/04/032", Some("PV-2025-0042")),
        under("INS0005", "CSSS/04/032", Some("PV-2025-0077")),
        under("INS0005", "CSSS/04/032", Some("PV-9999")),
        under("INS0005", "CSSS/09/013", Some("any reference")),
        under("INS0005", "CSSS/09/013", None),
        under("INS0005", "CSSS/02/017", Some("X")),
        under("INS0012", "CSSS/04/032", Some("PV-2025-0042")),
        under("ADV0003", "CSSS/04/032", Some("PV-2025-0042")),
        asker(Role::Citizen, CITIZEN),
    ];
    let subjects = [CITIZEN, OTHER, CASE_77, STRANGER];
    let orgs = ["onem0003", "onem0010", "cpas0000", "cpas0007", "mut0001"];
    let days = [
        day("2024-12-31"),
        day("2025-01-01"),
        day("2025-06-15"),
        day("2025-12-31"),
        day("2026-01-01"),
        today - Duration::days(10),
        today - Duration::days(200),
    ];
    let ops = ["create", "consult", "modify", "delete", "list"];
    let sources = ["hub", "iris"];
    let mut cells = 0u64;
    let mut mismatches = Vec::new();
    for a in &askers {
        let principal = Principal {
            token_id: "t".into(),
            role: a.role,
            id: a.id.into(),
            source: a.source.map(str::to_owned),
        };
        let action = if a.role == Role::Citizen {
            Action::MyConsultations
        } else {
            Action::Sql
        };
        let decision = decide(
            &directory,
            &policies,
            &Request {
                principal: &principal,
                action,
                key: None,
                deliberation: a.deliberation,
                case_ref: a.case,
                today,
            },
        );
        assert!(!decision.reason.is_empty());
        assert!(!decision.policies.is_empty(), "{a:?}: no deciding policy");
        for subject in subjects {
            for org in orgs {
                for d in days {
                    for op in ops {
                        for source in sources {
                            cells += 1;
                            let facts = EventFacts {
                                actor_org: org,
                                subject_id: subject,
                                operation: op,
                                source,
                                ts_micros: day_start(d) + 12 * 3_600_000_000,
                            };
                            let got = decision.permit && decision.scope.admits(&facts);
                            let want = oracle(a, today, org, subject, d, op, source);
                            if got != want {
                                mismatches.push(format!(
                                    "{a:?} {subject} {org} {d} {op} {source}: decided {got}, expected {want} ({})",
                                    decision.reason
                                ));
                            }
                        }
                    }
                }
            }
        }
    }
    assert!(cells > 10_000);
    assert!(
        mismatches.is_empty(),
        "{} of {cells} cells differ:\n{}",
        mismatches.len(),
        mismatches[..mismatches.len().min(20)].join("\n")
    );
}

#[test]
fn only_a_known_research_project_gets_the_labour_market_aggregates() {
    let (directory, policies) = samples();
    for (role, id, want) in [
        (Role::Researcher, "LM-2025-01", true),
        (Role::Researcher, "LM-2025-02", true),
        (Role::Researcher, "LM-1999-99", false),
        (Role::Admin, "demo-admin", false),
        (Role::Adviser, "ADV0003", false),
        (Role::Inspector, "INS0005", false),
        (Role::Citizen, CITIZEN, false),
        (Role::Auditor, "demo-auditor", false),
        (Role::Collector, "demo", false),
    ] {
        let principal = Principal {
            token_id: "t".into(),
            role,
            id: id.into(),
            source: None,
        };
        let d = decide(
            &directory,
            &policies,
            &Request {
                principal: &principal,
                action: Action::Research,
                key: None,
                deliberation: None,
                case_ref: None,
                today: Utc::now().date_naive(),
            },
        );
        assert_eq!(d.permit, want, "{role:?} {id}: {}", d.reason);
        assert!(!d.reason.is_empty() && !d.policies.is_empty());
        if want {
            assert_eq!(d.policies, [id.to_owned()], "the project decides");
        }
    }
}

/// An adviser traces by actor only the known users of the institutions it supervises. An unknown
/// id, a user of another institution and an application id get the same refusal, word for word:
/// answering them differently would tell the adviser which ids are registered users elsewhere.
#[test]
fn an_adviser_cannot_probe_the_directory_by_tracing_actors() {
    let (directory, policies) = samples();
    let principal = Principal {
        token_id: "t".into(),
        role: Role::Adviser,
        id: "ADV0003".into(),
        source: None,
    };
    let trace = |actor: &str| {
        decide(
            &directory,
            &policies,
            &Request {
                principal: &principal,
                action: Action::Trace(TraceBy::Actor),
                key: Some(actor),
                deliberation: None,
                case_ref: None,
                today: Utc::now().date_naive(),
            },
        )
    };
    // U0003000 works at onem0003, which ADV0003 supervises.
    let own = trace("U0003000");
    assert!(own.permit, "{}", own.reason);
    // U0000027 works at cpas0000; U0003999 is in no directory; app-cpas0000 is an application.
    let refusals: Vec<_> = ["U0000027", "U0003999", "app-cpas0000"]
        .into_iter()
        .map(|actor| (actor, trace(actor)))
        .collect();
    for (actor, d) in &refusals {
        assert!(!d.permit, "{actor}: {}", d.reason);
        assert!(
            !d.reason.replace(actor, "").contains("cpas"),
            "{actor}: {}",
            d.reason
        );
        assert_eq!(
            d.reason.replace(actor, "ACTOR"),
            refusals[0].1.reason.replace(refusals[0].0, "ACTOR"),
            "{actor}: the refusal must not depend on who the actor is"
        );
        assert_eq!(d.policies, refusals[0].1.policies);
    }
}
