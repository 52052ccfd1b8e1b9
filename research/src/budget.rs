//! The privacy budget of a project: the one place where privacy loss is spent.
//!
//! Accounting is in ρ-zero-concentrated DP (zCDP, Bun & Steinke 2016): the ρ of the mechanisms of
//! one release add up, and so do the releases of a project. The ledger is an append-only file,
//! `DATA/research/<project>/budget.log`, one line per charge, each line carrying the SHA-256 of the
//! line before it so that a cut, an edited or a reordered line is named instead of silently refunding.
//!
//! A charge is written and `fsync`ed **before** any noisy figure is computed, under an exclusive
//! lock on the file (the server's concurrent queries and a local `iris research` alike), so:
//! - a crash never forgets spending (the worst case is budget spent on an answer never shown);
//! - two concurrent queries never overspend: the check and the append happen under one lock.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

/// Why a charge was not made.
#[derive(Debug, thiserror::Error)]
pub enum BudgetError {
    /// The charge would take the project past its budget. Says only what the budget says.
    #[error(
        "refused (privacy budget): this query needs ρ = {needed:.4} but the project has ρ = {left:.4} left of {total:.4}; ask the administrator for a new project or a larger budget"
    )]
    Exhausted { needed: f64, left: f64, total: f64 },
    /// The ledger does not read back as written: nothing is released until an operator looks.
    #[error(
        "the privacy-budget ledger {path} is damaged at line {line} ({why}); nothing is released for this project until an operator repairs it"
    )]
    Damaged {
        path: PathBuf,
        line: usize,
        why: String,
    },
    #[error("privacy-budget ledger: {0}")]
    Io(#[from] std::io::Error),
}

/// One line of the ledger.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Charge {
    /// Position in the ledger, from 1.
    pub n: u64,
    /// When it was spent (RFC 3339).
    pub at: String,
    /// ρ spent.
    pub rho: f64,
    /// What it was spent on (the release's cache key, or `adjust`).
    pub what: String,
    /// SHA-256 (hex) of the previous line, or 64 zeros for the first.
    pub prev: String,
}

/// What a project has spent.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct BudgetStatus {
    pub project: String,
    /// The project's whole budget (ρ, zCDP).
    pub rho_total: f64,
    pub rho_spent: f64,
    pub rho_left: f64,
    /// Charges made.
    pub charges: u64,
    /// The (ε, δ) the spending amounts to, for δ = [`DELTA`] (Bun & Steinke, Prop. 1.3).
    pub epsilon_spent: f64,
    pub delta: f64,
}

/// The δ at which budgets are also shown as ε.
pub const DELTA: f64 = 1e-9;

/// ε of ρ-zCDP at δ: ρ + 2·sqrt(ρ·ln(1/δ)).
pub fn epsilon(rho: f64, delta: f64) -> f64 {
    if rho <= 0.0 {
        return 0.0;
    }
    rho + 2.0 * (rho * (1.0 / delta).ln()).sqrt()
}

/// A project's ledger.
#[derive(Debug)]
pub struct Ledger {
    path: PathBuf,
    project: String,
    total: f64,
}

const ZERO: &str = "0000000000000000000000000000000000000000000000000000000000000000";

impl Ledger {
    /// The ledger of `project` under `data`, whose budget is `total`.
    pub fn new(data: &Path, project: &str, total: f64) -> Ledger {
        Ledger {
            path: data.join("research").join(project).join("budget.log"),
            project: project.to_owned(),
            total,
        }
    }

    fn open_locked(&self) -> Result<File, BudgetError> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&self.path)?;
        file.lock()?;
        Ok(file)
    }

    /// Reads every charge back, checking the hash links. Returns the charges and the last line's
    /// digest.
    fn read(&self, file: &File) -> Result<(Vec<Charge>, String), BudgetError> {
        let damaged = |line: usize, why: String| BudgetError::Damaged {
            path: self.path.clone(),
            line,
            why,
        };
        let mut charges = Vec::new();
        let mut prev = ZERO.to_owned();
        let mut reader = BufReader::new(file);
        let mut raw = Vec::new();
        let mut line = 0;
        loop {
            raw.clear();
            if reader.read_until(b'\n', &mut raw)? == 0 {
                break;
            }
            line += 1;
            if raw.last() != Some(&b'\n') {
                // A charge is acknowledged only once its whole line is synced, and no figure is
                // computed before that: a cut last line is still counted, never refunded.
                return Err(damaged(line, "the last line is cut".into()));
            }
            let text = &raw[..raw.len() - 1];
            let c: Charge = serde_json::from_slice(text)
                .map_err(|e| damaged(line, format!("not a charge: {e}")))?;
            if c.prev != prev {
                return Err(damaged(line, "does not follow the line before it".into()));
            }
            if c.n != line as u64 {
                return Err(damaged(line, format!("numbered {}", c.n)));
            }
            if !(c.rho.is_finite() && c.rho >= 0.0) {
                return Err(damaged(line, format!("spends ρ = {}", c.rho)));
            }
            prev = hex::encode(Sha256::digest(text));
            charges.push(c);
        }
        Ok((charges, prev))
    }

    fn status_of(&self, charges: &[Charge]) -> BudgetStatus {
        // A fold from +0.0: an empty sum of f64 is -0.0, which would print as "-0.0000".
        let spent = charges.iter().fold(0.0, |a, c| a + c.rho);
        BudgetStatus {
            project: self.project.clone(),
            rho_total: self.total,
            rho_spent: spent,
            rho_left: (self.total - spent).max(0.0),
            charges: charges.len() as u64,
            epsilon_spent: epsilon(spent, DELTA),
            delta: DELTA,
        }
    }

    /// What the project has spent so far.
    pub fn status(&self) -> Result<BudgetStatus, BudgetError> {
        let file = self.open_locked()?;
        let (charges, _) = self.read(&file)?;
        Ok(self.status_of(&charges))
    }

    /// Spends `rho` on `what`, or refuses if the budget does not hold it. The charge is on disk
    /// (fsync) when this returns `Ok`.
    pub fn spend(&self, rho: f64, what: &str) -> Result<BudgetStatus, BudgetError> {
        let mut file = self.open_locked()?;
        let (mut charges, prev) = self.read(&file)?;
        let status = self.status_of(&charges);
        // A tiny tolerance so that a budget of exactly n·ρ holds n queries despite rounding.
        if !(rho.is_finite() && rho >= 0.0) || status.rho_spent + rho > self.total * (1.0 + 1e-6) {
            return Err(BudgetError::Exhausted {
                needed: rho,
                left: status.rho_left,
                total: self.total,
            });
        }
        let charge = Charge {
            n: charges.len() as u64 + 1,
            at: chrono::Utc::now().to_rfc3339(),
            rho,
            what: what.to_owned(),
            prev,
        };
        let mut line = serde_json::to_vec(&charge).map_err(std::io::Error::other)?;
        line.push(b'\n');
        file.write_all(&line)?;
        file.sync_all()?;
        charges.push(charge);
        Ok(self.status_of(&charges))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spending_adds_up_and_stops_at_the_budget() {
        let dir = tempfile::tempdir().expect("tempdir");
        let l = Ledger::new(dir.path(), "P", 1.0);
        for _ in 0..4 {
            l.spend(0.25, "q").expect("within budget");
        }
        let s = l.status().expect("status");
        assert!((s.rho_spent - 1.0).abs() < 1e-12);
        let e = l.spend(0.01, "q").expect_err("over budget");
        assert!(matches!(e, BudgetError::Exhausted { .. }), "{e}");
        // The refusal names only the budget.
        assert!(e.to_string().contains("ρ = 0.0100"));
    }

    #[test]
    fn a_reopened_ledger_remembers_spending() {
        let dir = tempfile::tempdir().expect("tempdir");
        Ledger::new(dir.path(), "P", 1.0)
            .spend(0.6, "q")
            .expect("spend");
        let again = Ledger::new(dir.path(), "P", 1.0);
        assert!(matches!(
            again.spend(0.6, "q"),
            Err(BudgetError::Exhausted { .. })
        ));
        assert_eq!(again.status().expect("status").charges, 1);
    }

    #[test]
    fn concurrent_spenders_never_overspend() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_owned();
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let l = Ledger::new(&path, "P", 1.0);
                    (0..10).filter(|_| l.spend(0.05, "q").is_ok()).count()
                })
            })
            .collect();
        let granted: usize = threads.into_iter().map(|t| t.join().expect("thread")).sum();
        assert_eq!(granted, 20, "exactly 1.0 / 0.05 charges fit");
        let s = Ledger::new(&path, "P", 1.0).status().expect("status");
        assert!(s.rho_spent <= 1.0 + 1e-9);
    }

    #[test]
    fn an_edited_or_cut_ledger_is_named_not_refunded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let l = Ledger::new(dir.path(), "P", 1.0);
        l.spend(0.3, "a").expect("spend");
        l.spend(0.3, "b").expect("spend");
        let path = dir.path().join("research/P/budget.log");
        let text = std::fs::read_to_string(&path).expect("read");
        // Refund by editing the first charge.
        std::fs::write(&path, text.replacen("0.3", "0.0", 1)).expect("write");
        assert!(matches!(
            l.status(),
            Err(BudgetError::Damaged { line: 2, .. })
        ));
        // Refund by dropping the first line.
        let second = text.lines().nth(1).expect("line").to_owned() + "\n";
        std::fs::write(&path, second).expect("write");
        assert!(matches!(
            l.status(),
            Err(BudgetError::Damaged { line: 1, .. })
        ));
        // A cut last line.
        std::fs::write(&path, &text[..text.len() - 3]).expect("write");
        assert!(matches!(
            l.spend(0.1, "c"),
            Err(BudgetError::Damaged { .. })
        ));
    }

    #[test]
    fn epsilon_of_rho_matches_the_conversion() {
        // ρ = 0.5, δ = 1e-9: 0.5 + 2·sqrt(0.5·ln 1e9) ≈ 6.94.
        assert!((epsilon(0.5, 1e-9) - 6.9372).abs() < 1e-3);
    }
}
