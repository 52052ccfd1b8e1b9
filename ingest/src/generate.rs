//! Realistic synthetic audit events with a fixed seed (`iris gen`).
//!
//! One *exchange* (an agent of an institution asks for data on a person) yields the partial logs of the
//! circles of trust, joined by one ticket: the institution's own log (which agent, for which purpose), the
//! hub's log (which institution's application asked), and for half of them the provider's log. Subjects,
//! actors, institutions and message types are skewed (Zipf); traffic peaks in office hours on weekdays;
//! about 2 % of results are NOK.

use crate::checkdigit::{bce_with_check, niss_with_check};
use crate::event::{ActorKind, Event, Operation, Outcome, SubjectKind};
use chrono::{Datelike, NaiveDate, Weekday};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};
use std::collections::VecDeque;

/// The collectors (sources) of the synthetic network: the hub and one per sector.
pub const SOURCES: [&str; 8] = [
    "hub",
    "cpas-net",
    "mutualities",
    "family-allowances",
    "unemployment",
    "pensions",
    "inspection",
    "employers",
];
/// Institution code prefix of each sector (same order as `SOURCES[1..]`).
const SECTORS: [&str; 7] = ["cpas", "mut", "caf", "onem", "pens", "insp", "empl"];
const APPLICATIONS: [&str; 10] = [
    "dossier-social",
    "registre-national",
    "dimona",
    "dmfa",
    "chomage",
    "allocations-familiales",
    "pensions",
    "incapacite",
    "inspection-enquete",
    "employeurs",
];
const ROLES: [&str; 5] = [
    "assistant-social",
    "gestionnaire-dossier",
    "inspecteur",
    "agent-guichet",
    "medecin-conseil",
];
const ERRORS: [&str; 5] = [
    "E-NOTFOUND",
    "E-NOAUTH",
    "E-TIMEOUT",
    "E-INTEGRATION",
    "E-INVALID",
];

/// What to generate.
#[derive(Clone, Debug)]
pub struct GenConfig {
    /// Number of events (the last exchange is cut to fit).
    pub events: u64,
    /// Random seed: the same seed gives the same events.
    pub seed: u64,
    /// First day.
    pub start: NaiveDate,
    /// Number of days spanned.
    pub days: u32,
    /// Distinct persons that may be subjects (default: events / 20, at least 1,000).
    pub persons: Option<u64>,
    /// Number of institutions.
    pub institutions: u32,
    /// Number of message types.
    pub message_types: u32,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            events: 10_000,
            seed: 42,
            start: NaiveDate::from_ymd_opt(2025, 1, 1).expect("valid date"),
            days: 365,
            persons: None,
            institutions: 2_000,
            message_types: 190,
        }
    }
}

struct MessageType {
    code: String,
    operation: Operation,
    application: &'static str,
}

/// An iterator of synthetic events, in time order, with per-source sequence numbers from 1.
pub struct Generator {
    cfg: GenConfig,
    rng: StdRng,
    persons: u64,
    subject_zipf: Zipf<f64>,
    inst_zipf: Zipf<f64>,
    msg_zipf: Zipf<f64>,
    messages: Vec<MessageType>,
    seq: [u64; SOURCES.len()],
    emitted: u64,
    exchanges: u64,
    day: u32,
    day_times: Vec<i64>,
    queue: VecDeque<Event>,
    exchanges_per_day: f64,
}

impl Generator {
    /// Prepares a generator (cheap: nothing is drawn before iteration).
    pub fn new(cfg: GenConfig) -> Generator {
        let persons = cfg
            .persons
            .unwrap_or((cfg.events / 20).max(1_000))
            .clamp(1, 30_000_000);
        let mut rng = StdRng::seed_from_u64(cfg.seed);
        let messages = (0..cfg.message_types.max(1))
            .map(|i| MessageType {
                code: format!("{}{:03}", ["L", "A", "M", "R"][(i % 4) as usize], 100 + i),
                operation: [
                    Operation::Consult,
                    Operation::Consult,
                    Operation::Consult,
                    Operation::List,
                    Operation::Modify,
                    Operation::Create,
                    Operation::Delete,
                ][rng.random_range(0..7)],
                application: APPLICATIONS[rng.random_range(0..APPLICATIONS.len())],
            })
            .collect();
        let zipf = |n: f64, s: f64| Zipf::new(n.max(1.0), s).expect("valid Zipf parameters");
        let days = cfg.days.max(1);
        Generator {
            subject_zipf: zipf(persons as f64, 0.7),
            inst_zipf: zipf(f64::from(cfg.institutions.max(1)), 1.0),
            msg_zipf: zipf(f64::from(cfg.message_types.max(1)), 1.1),
            exchanges_per_day: (cfg.events as f64 / 2.5) / f64::from(days) / 0.8,
            cfg,
            rng,
            persons,
            messages,
            seq: [0; SOURCES.len()],
            emitted: 0,
            exchanges: 0,
            day: 0,
            day_times: Vec::new(),
            queue: VecDeque::new(),
        }
    }

    /// The NISS of synthetic person `k` (0-based): distinct for every `k` below ~30 million.
    pub fn person_niss(k: u64) -> String {
        let day_idx = k % 30_576; // 91 years × 12 months × 28 days
        let serial = k / 30_576 + 1;
        let year = 1930 + day_idx / 336;
        let (month, day) = (day_idx % 336 / 28 + 1, day_idx % 28 + 1);
        let first9 = (year % 100) * 10_000_000 + month * 100_000 + day * 1_000 + serial;
        niss_with_check(first9, year >= 2000)
    }

    fn next_day_times(&mut self) -> bool {
        if self.day >= self.cfg.days.max(1) {
            return false;
        }
        let date = self.cfg.start + chrono::Days::new(u64::from(self.day));
        self.day += 1;
        let weekend = matches!(date.weekday(), Weekday::Sat | Weekday::Sun);
        let n = (self.exchanges_per_day * if weekend { 0.3 } else { 1.0 })
            .round()
            .max(1.0) as usize;
        let midnight = date
            .and_hms_opt(0, 0, 0)
            .expect("midnight")
            .and_utc()
            .timestamp_micros();
        self.day_times.clear();
        for _ in 0..n {
            // Office hours (07:30–18:00 local ≈ 06:30–17:00 UTC) carry ~85 % of the traffic.
            let secs = if self.rng.random_bool(0.85) {
                self.rng.random_range(23_400.0..61_200.0)
            } else {
                self.rng.random_range(0.0..86_400.0)
            };
            self.day_times.push(midnight + (secs * 1e6) as i64);
        }
        self.day_times.sort_unstable();
        self.day_times.reverse(); // popped from the end, earliest first
        true
    }

    fn next_seq(&mut self, source: usize) -> u64 {
        self.seq[source] += 1;
        self.seq[source]
    }

    fn exchange(&mut self, ts: i64) {
        self.exchanges += 1;
        let inst = self.inst_zipf.sample(&mut self.rng) as u32 - 1;
        let sector = inst as usize % SECTORS.len();
        let org = format!("{}{:04}", SECTORS[sector], inst);
        let agent = self.rng.random_range(0..(5 + 200 / (inst + 1)));
        let actor = format!("U{:04}{:03}", inst, agent);
        let msg = &self.messages[self.msg_zipf.sample(&mut self.rng) as usize - 1];
        let (code, operation, application) = (msg.code.clone(), msg.operation, msg.application);
        let roll = self.rng.random_range(0..100);
        let (subject_id, subject_kind) = if roll < 88 {
            let k = (self.subject_zipf.sample(&mut self.rng) as u64 - 1).min(self.persons - 1);
            (Self::person_niss(k), SubjectKind::Niss)
        } else if roll < 97 {
            (
                bce_with_check(2_000_000 + self.rng.random_range(0..400_000)),
                SubjectKind::Bce,
            )
        } else {
            (
                format!("{:09}", 100_000_000 + self.rng.random_range(0..300_000)),
                SubjectKind::Onss,
            )
        };
        let nok = self.rng.random_bool(0.02);
        let (result, error_code) = if nok {
            (
                Outcome::Nok,
                Some(ERRORS[self.rng.random_range(0..ERRORS.len())].to_string()),
            )
        } else {
            (Outcome::Ok, None)
        };
        let ticket = format!(
            "T{:016X}",
            self.cfg.seed.rotate_left(32) ^ (self.exchanges * 0x9E37_79B9)
        );
        let purpose = Some(format!(
            "CSSS/{:02}/{:03}",
            4 + sector,
            10 + (msg.code.len() * 7 + sector * 13) % 90
        ));
        let role = Some(ROLES[(agent as usize + sector) % ROLES.len()].to_string());
        let channel = ["portal", "webservice", "batch"][(agent % 3) as usize].to_string();
        let base = Event {
            ts,
            actor_id: actor,
            actor_kind: ActorKind::Person,
            actor_org: org.clone(),
            actor_role: role,
            subject_id,
            subject_kind,
            ticket,
            message_type: code,
            application: application.to_string(),
            operation,
            result,
            error_code,
            channel,
            purpose,
            source: SOURCES[sector + 1].to_string(),
            source_seq: 0,
        };
        let mut agent_event = base.clone();
        agent_event.source_seq = self.next_seq(sector + 1);
        let mut hub = base.clone();
        hub.ts += 1_000 + self.rng.random_range(0..20_000);
        hub.actor_id = format!("app-{org}");
        hub.actor_kind = ActorKind::Application;
        hub.actor_role = None;
        hub.channel = "webservice".into();
        hub.source = SOURCES[0].into();
        hub.source_seq = self.next_seq(0);
        self.queue.push_back(agent_event);
        if self.rng.random_bool(0.5) {
            let provider_sector = (sector + 1 + self.rng.random_range(0..6)) % SECTORS.len();
            let mut provider = hub.clone();
            provider.ts += 1_000 + self.rng.random_range(0..50_000);
            provider.actor_id = "app-bcss".into();
            provider.actor_org = "bcss".into();
            provider.channel = "mq".into();
            provider.purpose = None;
            provider.source = SOURCES[provider_sector + 1].into();
            provider.source_seq = self.next_seq(provider_sector + 1);
            self.queue.push_back(hub);
            self.queue.push_back(provider);
        } else {
            self.queue.push_back(hub);
        }
    }
}

impl Iterator for Generator {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        if self.emitted >= self.cfg.events {
            return None;
        }
        while self.queue.is_empty() {
            match self.day_times.pop() {
                Some(ts) => self.exchange(ts),
                None => {
                    if !self.next_day_times() {
                        // Ran out of days before the count: keep adding to the last day.
                        self.day -= 1;
                        self.exchanges_per_day = self.exchanges_per_day.max(1.0) * 1.5;
                    }
                }
            }
        }
        self.emitted += 1;
        self.queue.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkdigit::{is_valid_bce, is_valid_niss};
    use crate::validate::Validator;
    use std::collections::{HashMap, HashSet};

    #[test]
    fn deterministic_valid_and_ordered_per_source() {
        let cfg = GenConfig {
            events: 20_000,
            days: 30,
            ..GenConfig::default()
        };
        let a: Vec<Event> = Generator::new(cfg.clone()).collect();
        let b: Vec<Event> = Generator::new(cfg).collect();
        assert_eq!(a.len(), 20_000);
        assert_eq!(a, b);
        let mut last: HashMap<&str, (u64, i64)> = HashMap::new();
        let v = Validator::now();
        for e in &a {
            v.validate(
                crate::validate::parse_json_line(&serde_json::to_string(e).expect("json"))
                    .expect("parse"),
            )
            .expect("valid");
            match e.subject_kind {
                SubjectKind::Niss => assert!(is_valid_niss(&e.subject_id)),
                SubjectKind::Bce => assert!(is_valid_bce(&e.subject_id)),
                SubjectKind::Onss | SubjectKind::Query => {}
            }
            let prev = last
                .insert(&e.source, (e.source_seq, e.ts))
                .unwrap_or((0, 0));
            assert_eq!(e.source_seq, prev.0 + 1, "per-source sequence has no gaps");
        }
        let nok = a.iter().filter(|e| e.result == Outcome::Nok).count();
        assert!((100..1_000).contains(&nok), "about 2 % NOK, got {nok}");
        let subjects: HashSet<&str> = a.iter().map(|e| e.subject_id.as_str()).collect();
        assert!(
            subjects.len() > 500,
            "skewed but varied subjects: {}",
            subjects.len()
        );
    }

    #[test]
    fn person_numbers_are_distinct() {
        let set: HashSet<String> = (0..100_000).map(Generator::person_niss).collect();
        assert_eq!(set.len(), 100_000);
        assert!(set.iter().all(|n| is_valid_niss(n)));
    }
}
