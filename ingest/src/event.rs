//! The audit event: the one schema every collector maps to (DESIGN §2).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

macro_rules! code_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every allowed value, in schema order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The value as stored and shown.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses the stored form; `None` when the text is not one of [`Self::ALL`].
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }

            /// The allowed values joined by ` | `, for error messages.
            pub fn choices() -> String {
                [$($text),+].join(" | ")
            }
        }
    };
}

code_enum!(
    /// Whether a person or an application acted.
    ActorKind { Person = "person", Application = "application" }
);
code_enum!(
    /// Which number `subject_id` is. `query` is for Iris's own audit events only: `subject_id` then
    /// holds what was searched for (a trace key, a query); no collector may send it.
    SubjectKind { Niss = "niss", Bce = "bce", Onss = "onss", Query = "query" }
);
code_enum!(
    /// What was done with the data.
    Operation { Create = "create", Consult = "consult", Modify = "modify", Delete = "delete", List = "list" }
);
code_enum!(
    /// How the operation ended.
    Outcome { Ok = "ok", Nok = "nok" }
);

/// One validated audit event. Timestamps are microseconds since the Unix epoch, UTC.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    #[serde(with = "ts_rfc3339")]
    pub ts: i64,
    pub actor_id: String,
    pub actor_kind: ActorKind,
    pub actor_org: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_role: Option<String>,
    pub subject_id: String,
    pub subject_kind: SubjectKind,
    pub ticket: String,
    pub message_type: String,
    pub application: String,
    pub operation: Operation,
    pub result: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    pub channel: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    pub source: String,
    pub source_seq: u64,
}

impl Event {
    /// The UTC day (`YYYY-MM-DD`) of the event, its Hive partition.
    pub fn day(&self) -> String {
        day_of_micros(self.ts)
    }
}

/// A record that was refused, with the reason given back to the sender and kept in the rejection log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rejection {
    /// When Iris received it (µs since epoch, UTC).
    #[serde(with = "ts_rfc3339")]
    pub received_at: i64,
    /// The source it came from, when known (from the collector's token or the record).
    pub source: Option<String>,
    /// Its sequence number, when it could be read: accounted for, so `verify` does not call it a gap.
    pub source_seq: Option<u64>,
    /// 1-based line (or record) number in the batch or file.
    pub line: u64,
    /// Why it was refused.
    pub reason: String,
}

/// The UTC day of a timestamp in microseconds.
pub fn day_of_micros(ts: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(ts)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "invalid".to_string())
}

/// Formats microseconds since the epoch as RFC 3339 with microseconds and `Z`.
pub fn format_micros(ts: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(ts)
        .map(|d| d.to_rfc3339_opts(SecondsFormat::Micros, true))
        .unwrap_or_else(|| ts.to_string())
}

/// Parses an RFC 3339 timestamp into microseconds since the epoch.
pub fn parse_rfc3339_micros(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.timestamp_micros())
}

/// Serde helper: `i64` microseconds as an RFC 3339 string.
pub mod ts_rfc3339 {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(ts: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_micros(*ts))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        super::parse_rfc3339_micros(&s)
            .ok_or_else(|| D::Error::custom(format!("not an RFC 3339 timestamp: {s}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for op in Operation::ALL {
            assert_eq!(Operation::parse(op.as_str()), Some(*op));
        }
        assert_eq!(Operation::parse("read"), None);
        assert_eq!(Outcome::choices(), "ok | nok");
    }

    #[test]
    fn timestamps_round_trip() {
        let ts = parse_rfc3339_micros("2025-03-04T10:11:12.123456Z").expect("parses");
        assert_eq!(format_micros(ts), "2025-03-04T10:11:12.123456Z");
        assert_eq!(day_of_micros(ts), "2025-03-04");
        let shifted = parse_rfc3339_micros("2025-03-05T00:30:00+01:00").expect("parses");
        assert_eq!(day_of_micros(shifted), "2025-03-04");
    }
}
