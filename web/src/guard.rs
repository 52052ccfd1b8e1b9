//! The enforcement point's front door: authenticate, decide, run within the scope, and log the
//! request — permitted or denied, answered or failed — as one audit event in the chain.

use crate::audit::{self, Actor, AuditRecord};
use crate::error::ApiError;
use crate::server::AppState;
use axum::http::HeaderMap;
use iris_access::{Action, Decision, Principal, Request};
use iris_ingest::Operation;

/// What a guarded request is about, for the decision and the log.
pub struct Ask<'a> {
    pub action: Action,
    /// `sql`, `trace`, `me`.
    pub kind: &'static str,
    pub operation: Operation,
    /// What is searched for (trace key, SQL text, own NISS).
    pub search: String,
    pub key: Option<&'a str>,
    pub deliberation: Option<&'a str>,
    pub case_ref: Option<&'a str>,
}

/// A permitted request: who, and within which scope.
pub struct Permit {
    pub principal: Principal,
    pub decision: Decision,
}

impl AppState {
    /// Authenticates and decides. A refusal is logged here; a permit must be closed with
    /// [`AppState::account`] once the answer is known.
    pub async fn admit(&self, headers: &HeaderMap, ask: &Ask<'_>) -> Result<Permit, ApiError> {
        let principal = match self.authenticate(headers) {
            Ok(p) => p,
            Err(e) => {
                self.log(
                    Actor::Unauthenticated,
                    None,
                    ask,
                    None,
                    Err(e.message.clone()),
                )
                .await?;
                return Err(e);
            }
        };
        let decision = self.access.decide(&Request {
            principal: &principal,
            action: ask.action.clone(),
            key: ask.key,
            deliberation: ask.deliberation,
            case_ref: ask.case_ref,
            today: chrono::Utc::now().date_naive(),
        });
        if !decision.permit {
            let why = format!("denied: {}", decision.reason);
            self.log(
                Actor::Principal(&principal),
                ask.deliberation.map(str::to_owned),
                ask,
                Some(&decision),
                Err(why),
            )
            .await?;
            return Err(ApiError::denied(decision.reason, decision.policies));
        }
        Ok(Permit {
            principal,
            decision,
        })
    }

    /// Logs how a permitted request ended and passes its result on.
    pub async fn account<T>(
        &self,
        permit: &Permit,
        ask: &Ask<'_>,
        result: Result<(T, usize), ApiError>,
    ) -> Result<T, ApiError> {
        let outcome = match &result {
            Ok((_, rows)) => Ok(*rows),
            Err(e) => Err(format!("failed: {}", e.message)),
        };
        self.log(
            Actor::Principal(&permit.principal),
            permit.decision.purpose.clone(),
            ask,
            Some(&permit.decision),
            outcome,
        )
        .await?;
        result.map(|(t, _)| t)
    }

    async fn log(
        &self,
        actor: Actor<'_>,
        purpose: Option<String>,
        ask: &Ask<'_>,
        decision: Option<&Decision>,
        outcome: Result<usize, String>,
    ) -> Result<(), ApiError> {
        let Some(committer) = &self.committer else {
            return Err(ApiError::unavailable(
                "this server cannot log requests, so it answers none",
            ));
        };
        let institution = match actor {
            Actor::Principal(p) => self.institution_of(p),
            _ => None,
        };
        let purpose = match (purpose, decision) {
            (Some(p), _) => Some(p),
            (None, Some(d)) if !d.policies.is_empty() => Some(d.policies.join(" ")),
            _ => None,
        };
        audit::log(
            committer,
            AuditRecord {
                actor,
                institution,
                kind: ask.kind,
                operation: ask.operation,
                search: ask.search.clone(),
                purpose,
                outcome,
            },
        )
        .await?;
        self.sealer_wakeup.notify_one();
        Ok(())
    }

    /// The institution of a principal, when the directory knows the user.
    fn institution_of(&self, p: &Principal) -> Option<String> {
        let snapshot = self.access.refresh();
        snapshot
            .directory
            .users
            .get(&p.id)
            .map(|u| u.institution.clone())
    }
}
