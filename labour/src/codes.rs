//! Code lists of the labour-market tables (regions, arrondissements, NACE sections, joint committees,
//! worker classes, socio-economic positions, contract kinds).

/// Regions: Brussels-Capital, Flanders, Wallonia.
pub const REGIONS: &[&str] = &["BRU", "VLA", "WAL"];

/// Arrondissements (NIS codes) and their region.
pub const ARRONDISSEMENTS: &[(&str, &str)] = &[
    ("21000", "BRU"),
    ("11000", "VLA"),
    ("12000", "VLA"),
    ("13000", "VLA"),
    ("23000", "VLA"),
    ("24000", "VLA"),
    ("31000", "VLA"),
    ("44000", "VLA"),
    ("46000", "VLA"),
    ("71000", "VLA"),
    ("72000", "VLA"),
    ("25000", "WAL"),
    ("52000", "WAL"),
    ("53000", "WAL"),
    ("57000", "WAL"),
    ("62000", "WAL"),
    ("63000", "WAL"),
    ("81000", "WAL"),
    ("92000", "WAL"),
];

/// NACE sections with a share of salaried employment, their divisions and usual joint committees.
pub const SECTORS: &[(&str, f64, &[&str], &[&str])] = &[
    ("A", 0.01, &["01"], &["144"]),
    ("C", 0.12, &["10", "25", "28"], &["118", "111", "200"]),
    ("F", 0.07, &["41", "43"], &["124"]),
    ("G", 0.13, &["46", "47"], &["201", "311", "200"]),
    ("H", 0.06, &["49", "52"], &["140", "226"]),
    ("I", 0.04, &["55", "56"], &["302"]),
    ("J", 0.04, &["62"], &["200"]),
    ("K", 0.03, &["64"], &["310"]),
    ("M", 0.06, &["69", "71"], &["200"]),
    ("N", 0.09, &["78", "81"], &["322", "121"]),
    ("O", 0.09, &["84"], &["PUB"]),
    ("P", 0.10, &["85"], &["225", "PUB"]),
    ("Q", 0.13, &["86", "87"], &["330", "319"]),
    ("S", 0.02, &["94", "96"], &["329"]),
];

/// Worker classes.
pub const WORKER_CLASSES: &[&str] = &["blue", "white", "civil", "apprentice", "student"];

/// Genders as declared.
pub const GENDERS: &[&str] = &["F", "M", "X"];

/// Socio-economic positions on the quarter's last day.
pub const POSITIONS: &[&str] = &["SAL", "IND", "UNE", "DIS", "RET", "STU", "INA"];

/// Kinds of employment relation.
pub const CONTRACTS: &[&str] = &[
    "open-ended",
    "fixed-term",
    "temporary",
    "student",
    "seasonal",
];

/// Whether `code` is a NACE section of [`SECTORS`].
pub fn is_sector(code: &str) -> bool {
    SECTORS.iter().any(|s| s.0 == code)
}

/// Whether `code` is a NACE division of [`SECTORS`].
pub fn is_division(code: &str) -> bool {
    SECTORS.iter().any(|s| s.2.contains(&code))
}

/// Whether `code` is a joint committee of [`SECTORS`].
pub fn is_joint_committee(code: &str) -> bool {
    SECTORS.iter().any(|s| s.3.contains(&code))
}

/// Whether `code` is an arrondissement of [`ARRONDISSEMENTS`].
pub fn is_arrondissement(code: &str) -> bool {
    ARRONDISSEMENTS.iter().any(|a| a.0 == code)
}
