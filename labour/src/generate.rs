//! A generator of realistic labour-market data: a population with its sector and regional mix, wage
//! spread by class, gender and age, part-time work, quarterly moves between positions (hires, job
//! losses, retirements) and seasonal student and seasonal jobs in summer. Deterministic for a seed.

use crate::codes::{ARRONDISSEMENTS, SECTORS};
use chrono::{Datelike, NaiveDate};
use iris_ingest::checkdigit::bce_with_check;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal};
use std::io::Write;

/// What to generate.
#[derive(Clone, Debug)]
pub struct LabourConfig {
    pub persons: u64,
    /// First quarter's year; quarters run from its Q1.
    pub first_year: i32,
    pub quarters: u32,
    pub seed: u64,
}

impl Default for LabourConfig {
    fn default() -> Self {
        LabourConfig {
            persons: 2_000,
            first_year: 2024,
            quarters: 8,
            seed: 7,
        }
    }
}

/// How many rows were written per table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Generated {
    pub declarations: u64,
    pub relations: u64,
    pub positions: u64,
}

struct Employer {
    bce: String,
    sector: usize,
    nace: &'static str,
    committee: &'static str,
    arrondissement: &'static str,
    region: &'static str,
}

struct Job {
    employer: usize,
    start: NaiveDate,
    kind: &'static str,
    class: &'static str,
    fte: f64,
    /// The person's wage level relative to the class median.
    level: f64,
}

struct Person {
    niss: String,
    gender: &'static str,
    birth_year: i32,
    arrondissement: &'static str,
    region: &'static str,
    position: &'static str,
    job: Option<Job>,
}

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T], weight: impl Fn(&T) -> f64) -> &'a T {
    let total: f64 = items.iter().map(&weight).sum();
    let mut x = rng.random::<f64>() * total;
    for it in items {
        x -= weight(it);
        if x <= 0.0 {
            return it;
        }
    }
    &items[items.len() - 1]
}

/// A NACE section (index in [`SECTORS`]) drawn by its share of employment.
fn pick_sector(rng: &mut StdRng) -> usize {
    let chosen = pick(rng, SECTORS, |s| s.1);
    SECTORS.iter().position(|s| s.0 == chosen.0).unwrap_or(0)
}

fn quarter_name(year: i32, q: u32) -> String {
    format!("{year}-Q{q}")
}

fn quarter_of(d: NaiveDate) -> String {
    quarter_name(d.year(), (d.month() - 1) / 3 + 1)
}

/// Writes `declarations.csv`, `relations.csv` and `positions.csv` for `cfg` into `dir`.
pub fn generate(cfg: &LabourConfig, dir: &std::path::Path) -> std::io::Result<Generated> {
    std::fs::create_dir_all(dir)?;
    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let region_weight = |r: &str| match r {
        "BRU" => 0.10,
        "VLA" => 0.58,
        _ => 0.32,
    };
    let region_count = |r: &str| ARRONDISSEMENTS.iter().filter(|a| a.1 == r).count() as f64;
    let place = |rng: &mut StdRng| {
        *pick(rng, ARRONDISSEMENTS, |a| {
            region_weight(a.1) / region_count(a.1)
        })
    };
    // Employers: a few large ones and many small ones (so some cells are dominated by one employer).
    let n_employers = (cfg.persons / 15).max(20);
    let employers: Vec<Employer> = (0..n_employers)
        .map(|k| {
            let s = pick_sector(&mut rng);
            let (_, _, naces, committees) = SECTORS[s];
            let (arrondissement, region) = place(&mut rng);
            Employer {
                bce: bce_with_check(4_000_000 + k * 7 + 3),
                sector: s,
                nace: naces[rng.random_range(0..naces.len())],
                committee: committees[rng.random_range(0..committees.len())],
                arrondissement,
                region,
            }
        })
        .collect();
    // Zipf-like sizes: employer k weighs 1/(k+1)^0.9.
    let size: Vec<f64> = (0..employers.len())
        .map(|k| 1.0 / ((k + 1) as f64).powf(0.9))
        .collect();
    let by_sector = |rng: &mut StdRng, sector: usize| -> usize {
        let ids: Vec<usize> = (0..employers.len())
            .filter(|&e| employers[e].sector == sector)
            .collect();
        if ids.is_empty() {
            return rng.random_range(0..employers.len());
        }
        *pick(rng, &ids, |&e| size[e])
    };
    let start = NaiveDate::from_ymd_opt(cfg.first_year, 1, 1).unwrap_or_default();
    let mut people: Vec<Person> = (0..cfg.persons)
        .map(|k| {
            let age = 18 + (rng.random::<f64>().powf(1.1) * 52.0) as i32;
            let birth_year = cfg.first_year - age;
            let (arrondissement, region) = place(&mut rng);
            let gender = if rng.random::<f64>() < 0.002 {
                "X"
            } else if rng.random::<bool>() {
                "F"
            } else {
                "M"
            };
            let position = if age >= 65 {
                "RET"
            } else if age < 23 && rng.random::<f64>() < 0.5 {
                "STU"
            } else {
                pick(
                    &mut rng,
                    &[
                        ("SAL", 0.70),
                        ("IND", 0.10),
                        ("UNE", 0.07),
                        ("DIS", 0.06),
                        ("INA", 0.07),
                    ],
                    |p| p.1,
                )
                .0
            };
            Person {
                niss: iris_ingest::generate::Generator::person_niss(k * 13 + 5),
                gender,
                birth_year,
                arrondissement,
                region,
                position,
                job: None,
            }
        })
        .collect();
    let lognormal = LogNormal::new(0.0, 0.35).map_err(std::io::Error::other)?;
    let hire = |rng: &mut StdRng, p: &Person, day: NaiveDate, seasonal: bool| -> Job {
        let sector = if seasonal {
            SECTORS.iter().position(|s| s.0 == "I").unwrap_or(0)
        } else {
            pick_sector(rng)
        };
        let mut employer = by_sector(rng, sector);
        // Most people work in their own region.
        if employers[employer].region != p.region && rng.random::<f64>() < 0.7 {
            employer = by_sector(rng, sector);
        }
        let code = SECTORS[employers[employer].sector].0;
        let class = if seasonal {
            "student"
        } else if matches!(code, "O") || (code == "P" && rng.random::<f64>() < 0.6) {
            "civil"
        } else if matches!(code, "A" | "C" | "F" | "I" | "N") && rng.random::<f64>() < 0.65 {
            "blue"
        } else if rng.random::<f64>() < 0.01 {
            "apprentice"
        } else {
            "white"
        };
        let full_time = if p.gender == "F" { 0.57 } else { 0.87 };
        let fte = if seasonal || rng.random::<f64>() < full_time {
            1.0
        } else if rng.random::<bool>() {
            0.5
        } else {
            0.8
        };
        let kind = if seasonal {
            "student"
        } else if code == "N" && rng.random::<f64>() < 0.5 {
            "temporary"
        } else if matches!(code, "A" | "I") && rng.random::<f64>() < 0.3 {
            "seasonal"
        } else if rng.random::<f64>() < 0.15 {
            "fixed-term"
        } else {
            "open-ended"
        };
        Job {
            employer,
            start: day,
            kind,
            class,
            fte,
            level: lognormal.sample(rng),
        }
    };
    let mut decl = csv_out(
        dir,
        "declarations.csv",
        "quarter,worker,employer,sector,nace,joint_committee,region,arrondissement,gender,birth_year,worker_class,wage,days,fte",
    )?;
    let mut rel = csv_out(
        dir,
        "relations.csv",
        "quarter,end_quarter,worker,employer,start,end,kind,sector,region,gender,birth_year",
    )?;
    let mut pos = csv_out(
        dir,
        "positions.csv",
        "quarter,person,position,region,arrondissement,gender,birth_year",
    )?;
    let mut out = Generated::default();
    let end_relation = |rel: &mut std::io::BufWriter<std::fs::File>,
                        p: &Person,
                        job: &Job,
                        end: Option<NaiveDate>|
     -> std::io::Result<()> {
        let e = &employers[job.employer];
        writeln!(
            rel,
            "{},{},{},{},{},{},{},{},{},{},{}",
            quarter_of(job.start),
            end.map(quarter_of).unwrap_or_default(),
            p.niss,
            e.bce,
            job.start,
            end.map(|d| d.to_string()).unwrap_or_default(),
            job.kind,
            SECTORS[e.sector].0,
            e.region,
            p.gender,
            p.birth_year
        )
    };
    for qi in 0..cfg.quarters {
        let year = cfg.first_year + (qi / 4) as i32;
        let q = qi % 4 + 1;
        let quarter = quarter_name(year, q);
        let first_day = start
            .checked_add_months(chrono::Months::new(qi * 3))
            .unwrap_or(start);
        let last_day = first_day
            .checked_add_months(chrono::Months::new(3))
            .and_then(|d| d.pred_opt())
            .unwrap_or(first_day);
        for p in people.iter_mut() {
            let age = year - p.birth_year;
            // Moves between positions during the quarter.
            let r: f64 = rng.random();
            let next = match p.position {
                _ if age >= 65 => "RET",
                "SAL" if r < 0.02 => "UNE",
                "SAL" if r < 0.025 => "DIS",
                "UNE" if r < 0.12 => "SAL",
                "INA" if r < 0.03 => "SAL",
                "DIS" if r < 0.01 => "SAL",
                "STU" if q == 3 && age >= 21 && r < 0.25 => "SAL",
                other => other,
            };
            if next != "SAL"
                && let Some(job) = p.job.take()
            {
                let end = first_day + chrono::Days::new(rng.random_range(0..80));
                end_relation(&mut rel, p, &job, Some(end))?;
                out.relations += 1;
            }
            p.position = next;
            if p.position == "SAL" && p.job.is_none() {
                let day = first_day + chrono::Days::new(rng.random_range(0..60));
                p.job = Some(hire(&mut rng, p, day, false));
            }
            // Summer jobs for students (a declaration and a relation, no change of position).
            if p.position == "STU" && q == 3 && rng.random::<f64>() < 0.3 {
                let day = first_day + chrono::Days::new(rng.random_range(0..30));
                let job = hire(&mut rng, p, day, true);
                let end = day + chrono::Days::new(rng.random_range(10..45));
                write_declaration(
                    &mut decl,
                    &quarter,
                    p,
                    &employers[job.employer],
                    &job,
                    (end - day).num_days() as f64 / 92.0 * 65.0,
                )?;
                end_relation(&mut rel, p, &job, Some(end))?;
                out.declarations += 1;
                out.relations += 1;
            }
            if let Some(job) = &p.job {
                let worked_from = job.start.max(first_day);
                let share = ((last_day - worked_from).num_days() + 1) as f64
                    / ((last_day - first_day).num_days() + 1) as f64;
                write_declaration(
                    &mut decl,
                    &quarter,
                    p,
                    &employers[job.employer],
                    job,
                    65.0 * share,
                )?;
                out.declarations += 1;
            }
            writeln!(
                pos,
                "{quarter},{},{},{},{},{},{}",
                p.niss, p.position, p.region, p.arrondissement, p.gender, p.birth_year
            )?;
            out.positions += 1;
        }
    }
    // Relations still open at the end.
    for p in &people {
        if let Some(job) = &p.job {
            end_relation(&mut rel, p, job, None)?;
            out.relations += 1;
        }
    }
    decl.flush()?;
    rel.flush()?;
    pos.flush()?;
    Ok(out)
}

fn csv_out(
    dir: &std::path::Path,
    name: &str,
    header: &str,
) -> std::io::Result<std::io::BufWriter<std::fs::File>> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(dir.join(name))?);
    writeln!(f, "{header}")?;
    Ok(f)
}

/// One declaration: the quarter's wage from the class median, the person's level, gender and age,
/// for the days worked at the job's working time.
fn write_declaration(
    out: &mut impl Write,
    quarter: &str,
    p: &Person,
    e: &Employer,
    job: &Job,
    full_days: f64,
) -> std::io::Result<()> {
    let median = match job.class {
        "white" => 11_500.0,
        "civil" => 11_000.0,
        "blue" => 9_000.0,
        "apprentice" => 3_000.0,
        _ => 5_500.0,
    };
    let year: i32 = quarter[..4].parse().unwrap_or(2025);
    let age = (year - p.birth_year) as f64;
    let seniority = 1.0 + 0.012 * (age.clamp(25.0, 55.0) - 25.0);
    let gap = if p.gender == "F" { 0.93 } else { 1.0 };
    let days = (full_days * job.fte).round().clamp(1.0, 65.0);
    let wage = median * job.level * seniority * gap * job.fte * (full_days / 65.0).min(1.0);
    writeln!(
        out,
        "{quarter},{},{},{},{},{},{},{},{},{},{},{:.2},{},{:.2}",
        p.niss,
        e.bce,
        SECTORS[e.sector].0,
        e.nace,
        e.committee,
        e.region,
        e.arrondissement,
        p.gender,
        p.birth_year,
        job.class,
        wage,
        days as i64,
        job.fte
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::parse_csv;
    use crate::tables::TABLES;

    #[test]
    fn generated_files_pass_the_import_checks_and_are_deterministic() {
        let dir = tempfile::tempdir().expect("tmp");
        let cfg = LabourConfig {
            persons: 300,
            ..LabourConfig::default()
        };
        let counts = generate(&cfg, dir.path()).expect("generated");
        assert_eq!(counts.positions, 300 * 8);
        assert!(counts.declarations > 300 * 8 / 2, "{counts:?}");
        for t in TABLES {
            let f = std::fs::File::open(dir.path().join(format!("{}.csv", t.name))).expect("file");
            let p = parse_csv(t, f).expect("parsed");
            assert!(p.rejected.is_empty(), "{}: {:?}", t.name, &p.rejected[..1]);
            assert!(p.accepted > 0);
        }
        let again = tempfile::tempdir().expect("tmp");
        generate(&cfg, again.path()).expect("generated");
        for name in ["declarations.csv", "relations.csv", "positions.csv"] {
            assert_eq!(
                std::fs::read(dir.path().join(name)).expect("a"),
                std::fs::read(again.path().join(name)).expect("b"),
                "{name} differs between two runs with the same seed"
            );
        }
    }
}
