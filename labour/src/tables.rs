//! The three labour-market tables: their columns, types, checks, and what each column may be used for
//! in a researcher's query.

use crate::codes;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use std::sync::Arc;

/// What a column is to a researcher.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ColumnRole {
    /// Identifies a person or an enterprise: pseudonymised per project, usable only inside
    /// `COUNT(DISTINCT …)`.
    Identifier,
    /// May be grouped by and filtered on.
    Dimension,
    /// May be summed, averaged, filtered on; every value is clamped to `[lo, hi]` first.
    Measure { lo: f64, hi: f64 },
    /// Not released at all (only used to derive released columns).
    Hidden,
}

/// How a value is checked on import.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Check {
    Quarter,
    Niss,
    Bce,
    Code(&'static [&'static str]),
    Sector,
    Division,
    JointCommittee,
    Arrondissement,
    Int {
        lo: i64,
        hi: i64,
    },
    Float {
        lo: f64,
        hi: f64,
    },
    /// `YYYY-MM-DD`.
    Date,
}

/// One column of a labour-market table.
#[derive(Clone, Copy, Debug)]
pub struct LabourColumn {
    pub name: &'static str,
    pub check: Check,
    pub role: ColumnRole,
    /// Whether the value may be empty.
    pub optional: bool,
    pub doc: &'static str,
}

/// One labour-market table.
#[derive(Debug)]
pub struct LabourTable {
    pub name: &'static str,
    pub doc: &'static str,
    pub columns: &'static [LabourColumn],
    /// The person column: the unit whose contribution the disclosure rules count and bound.
    pub unit: &'static str,
    /// Most rows one person may add to one cell (further rows are left out of the answer).
    pub max_rows_per_unit: u32,
    /// Released columns computed from the stored ones: (name, SQL expression).
    pub derived: &'static [(&'static str, &'static str)],
    /// The columns that identify one row (a record of the source), for the differencing check.
    pub row_key: &'static [&'static str],
}

const fn col(
    name: &'static str,
    check: Check,
    role: ColumnRole,
    doc: &'static str,
) -> LabourColumn {
    LabourColumn {
        name,
        check,
        role,
        optional: false,
        doc,
    }
}

/// A column that may be empty.
const fn optional(c: LabourColumn) -> LabourColumn {
    LabourColumn {
        optional: true,
        ..c
    }
}

const DIM: ColumnRole = ColumnRole::Dimension;
const ID: ColumnRole = ColumnRole::Identifier;

/// Age class from a birth year and a `YYYY-Qn` quarter (the age reached in the quarter's year).
const AGE_CLASS: &str = "CASE WHEN CAST(substr(quarter, 1, 4) AS INT) - birth_year < 25 THEN '15-24' \
     WHEN CAST(substr(quarter, 1, 4) AS INT) - birth_year < 35 THEN '25-34' \
     WHEN CAST(substr(quarter, 1, 4) AS INT) - birth_year < 45 THEN '35-44' \
     WHEN CAST(substr(quarter, 1, 4) AS INT) - birth_year < 55 THEN '45-54' \
     WHEN CAST(substr(quarter, 1, 4) AS INT) - birth_year < 65 THEN '55-64' ELSE '65+' END";

const GENDER: LabourColumn = col("gender", Check::Code(codes::GENDERS), DIM, "F, M or X");
const BIRTH_YEAR: LabourColumn = col(
    "birth_year",
    Check::Int { lo: 1900, hi: 2015 },
    ColumnRole::Hidden,
    "year of birth (released as age_class)",
);

/// Quarterly wage and working-time declarations: one row per worker, employer and quarter.
pub const DECLARATIONS: LabourTable = LabourTable {
    name: "declarations",
    doc: "quarterly wage and working-time declarations (one row per worker, employer and quarter)",
    columns: &[
        col("quarter", Check::Quarter, DIM, "quarter declared, 2025-Q1"),
        col("worker", Check::Niss, ID, "the worker's NISS"),
        col("employer", Check::Bce, ID, "the employer's BCE/KBO number"),
        col("sector", Check::Sector, DIM, "NACE section of the employer"),
        col("nace", Check::Division, DIM, "NACE division (2 digits)"),
        col(
            "joint_committee",
            Check::JointCommittee,
            DIM,
            "joint committee (PC/PSC), PUB for public service",
        ),
        col(
            "region",
            Check::Code(codes::REGIONS),
            DIM,
            "region of the workplace: BRU, VLA, WAL",
        ),
        col(
            "arrondissement",
            Check::Arrondissement,
            DIM,
            "arrondissement of the workplace (NIS code)",
        ),
        GENDER,
        BIRTH_YEAR,
        col(
            "worker_class",
            Check::Code(codes::WORKER_CLASSES),
            DIM,
            "blue, white, civil, apprentice, student",
        ),
        col(
            "wage",
            Check::Float {
                lo: 0.0,
                hi: 10_000_000.0,
            },
            ColumnRole::Measure {
                lo: 0.0,
                hi: 60_000.0,
            },
            "gross wage of the quarter, EUR",
        ),
        col(
            "days",
            Check::Int { lo: 0, hi: 92 },
            ColumnRole::Measure { lo: 0.0, hi: 92.0 },
            "days worked in the quarter",
        ),
        col(
            "fte",
            Check::Float { lo: 0.0, hi: 1.5 },
            ColumnRole::Measure { lo: 0.0, hi: 1.0 },
            "full-time equivalent",
        ),
    ],
    unit: "worker",
    max_rows_per_unit: 3,
    derived: &[("age_class", AGE_CLASS)],
    row_key: &["quarter", "worker", "employer"],
};

/// Employment relations: one row per spell of a worker with an employer.
pub const RELATIONS: LabourTable = LabourTable {
    name: "relations",
    doc: "employment relations (one row per spell of a worker with an employer)",
    columns: &[
        col(
            "quarter",
            Check::Quarter,
            DIM,
            "quarter the relation started",
        ),
        optional(col(
            "end_quarter",
            Check::Quarter,
            DIM,
            "quarter it ended (empty while it lasts)",
        )),
        col("worker", Check::Niss, ID, "the worker's NISS"),
        col("employer", Check::Bce, ID, "the employer's BCE/KBO number"),
        col("start", Check::Date, ColumnRole::Hidden, "first day"),
        optional(col(
            "end",
            Check::Date,
            ColumnRole::Hidden,
            "last day (empty while it lasts)",
        )),
        col(
            "kind",
            Check::Code(codes::CONTRACTS),
            DIM,
            "open-ended, fixed-term, temporary, student, seasonal",
        ),
        col("sector", Check::Sector, DIM, "NACE section of the employer"),
        col(
            "region",
            Check::Code(codes::REGIONS),
            DIM,
            "region of the workplace",
        ),
        GENDER,
        BIRTH_YEAR,
    ],
    unit: "worker",
    max_rows_per_unit: 2,
    derived: &[("age_class", AGE_CLASS)],
    row_key: &["worker", "employer", "start"],
};

/// Socio-economic position of each person on the quarter's last day.
pub const POSITIONS: LabourTable = LabourTable {
    name: "positions",
    doc: "socio-economic position of each person on the quarter's last day",
    columns: &[
        col("quarter", Check::Quarter, DIM, "quarter"),
        col("person", Check::Niss, ID, "the person's NISS"),
        col(
            "position",
            Check::Code(codes::POSITIONS),
            DIM,
            "SAL salaried, IND self-employed, UNE unemployed, DIS disabled, RET retired, STU student, INA inactive",
        ),
        col(
            "region",
            Check::Code(codes::REGIONS),
            DIM,
            "region of residence",
        ),
        col(
            "arrondissement",
            Check::Arrondissement,
            DIM,
            "arrondissement of residence",
        ),
        GENDER,
        BIRTH_YEAR,
    ],
    unit: "person",
    max_rows_per_unit: 1,
    derived: &[("age_class", AGE_CLASS)],
    row_key: &["quarter", "person"],
};

/// Every labour-market table.
pub const TABLES: [&LabourTable; 3] = [&DECLARATIONS, &RELATIONS, &POSITIONS];

/// The table called `name`.
pub fn table(name: &str) -> Option<&'static LabourTable> {
    TABLES.into_iter().find(|t| t.name == name)
}

impl LabourTable {
    /// The Arrow schema of the stored files.
    pub fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|c| Field::new(c.name, c.data_type(), c.optional))
                .collect::<Vec<_>>(),
        ))
    }

    /// The column called `name`.
    pub fn column(&self, name: &str) -> Option<&LabourColumn> {
        self.columns.iter().find(|c| c.name == name)
    }
}

impl LabourColumn {
    /// The Arrow type it is stored as.
    pub fn data_type(&self) -> DataType {
        match self.check {
            Check::Int { .. } => DataType::Int32,
            Check::Float { .. } => DataType::Float64,
            Check::Date => DataType::Date32,
            _ => DataType::Utf8,
        }
    }
}
