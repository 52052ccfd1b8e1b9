//! Check digits of Belgian identification numbers (DESIGN §2).

/// Whether `s` is a valid NISS (national register or BIS number): 11 digits `YYMMDDnnncc`
/// where `cc = 97 − (YYMMDDnnn mod 97)`, or for people born in 2000 or later
/// `cc = 97 − (2YYMMDDnnn mod 97)`. BIS numbers (month + 20 or + 40) pass too.
pub fn is_valid_niss(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 11 || !b.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let month = digits(&b[2..4]);
    // 00 = unknown month; BIS numbers add 20 (unknown gender) or 40 (known gender).
    let month_ok = matches!(month, 0..=12 | 20..=32 | 40..=52);
    let day = digits(&b[4..6]);
    if !month_ok || day > 31 {
        return false;
    }
    let base = digits(&b[..9]);
    let check = digits(&b[9..11]);
    97 - (base % 97) == check || 97 - ((2_000_000_000 + base) % 97) == check
}

/// Whether `s` is a valid BCE/KBO enterprise number: 10 digits, first 0 or 1,
/// last two `= 97 − (first eight mod 97)`.
pub fn is_valid_bce(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || !b.iter().all(u8::is_ascii_digit) || b[0] > b'1' {
        return false;
    }
    97 - (digits(&b[..8]) % 97) == digits(&b[8..10])
}

/// Whether `s` looks like an ONSS/RSZ employer number: 5 to 10 digits (no public check-digit rule).
pub fn is_valid_onss(s: &str) -> bool {
    (5..=10).contains(&s.len()) && s.bytes().all(|c| c.is_ascii_digit())
}

/// Why `s` cannot be a subject to trace (a NISS, BCE/KBO or ONSS number), or `None` if it can: a
/// search for a number no event may carry answers "0 events", which reads as "nobody looked".
pub fn subject_problem(s: &str) -> Option<String> {
    if s.is_empty() {
        return Some("give the person's NISS or the enterprise's BCE/ONSS number".into());
    }
    if !s.bytes().all(|c| c.is_ascii_digit()) {
        return Some(format!(
            "`{s}` is not a NISS, BCE or ONSS number: digits only, without dots, dashes or spaces"
        ));
    }
    let valid = match s.len() {
        11 => is_valid_niss(s),
        10 => is_valid_bce(s) || is_valid_onss(s),
        _ => is_valid_onss(s),
    };
    (!valid).then(|| match s.len() {
        11 => format!("`{s}` is not a valid NISS: its check digits do not match"),
        _ => format!(
            "`{s}` is not a valid number: a NISS has 11 digits, a BCE number 10, an ONSS number 5 to 10"
        ),
    })
}

/// Completes 9 NISS digits (`YYMMDDnnn`) with their check digits, for the century given.
pub fn niss_with_check(first9: u64, born_2000_or_later: bool) -> String {
    let base = if born_2000_or_later {
        2_000_000_000 + first9
    } else {
        first9
    };
    format!("{first9:09}{:02}", 97 - (base % 97))
}

/// Completes the 8 first digits of a BCE number with its check digits.
pub fn bce_with_check(first8: u64) -> String {
    format!("{first8:08}{:02}", 97 - (first8 % 97))
}

fn digits(b: &[u8]) -> u64 {
    b.iter().fold(0, |acc, d| acc * 10 + u64::from(d - b'0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subject_to_trace_is_a_valid_number() {
        assert_eq!(subject_problem("85073003328"), None);
        assert_eq!(subject_problem("0403040400"), None);
        assert_eq!(subject_problem("12345"), None);
        let bad = subject_problem("85073003329").expect("bad check digits");
        assert!(bad.contains("check digits"), "{bad}");
        assert!(subject_problem("85.07.30-033.28").is_some());
        assert!(subject_problem("1234").is_some());
        assert!(subject_problem("").is_some());
    }

    #[test]
    fn niss_before_2000() {
        // 85073003328: 850730033 mod 97 = 69, 97 - 69 = 28.
        assert!(is_valid_niss("85073003328"));
        assert!(!is_valid_niss("85073003329"));
    }

    #[test]
    fn niss_after_2000_uses_prefix_2() {
        let n = niss_with_check(10_101_012, true); // 01/01/01, serial 012
        assert!(is_valid_niss(&n), "{n}");
        let old = niss_with_check(10_101_012, false);
        assert_ne!(n, old);
        assert!(is_valid_niss(&old));
    }

    #[test]
    fn bis_numbers_and_bad_dates() {
        assert!(is_valid_niss(&niss_with_check(852_730_033, false))); // month 27 = BIS
        assert!(is_valid_niss(&niss_with_check(854_730_033, false))); // month 47 = BIS
        assert!(!is_valid_niss(&niss_with_check(851_330_033, false))); // month 13
        assert!(!is_valid_niss(&niss_with_check(850_732_033, false))); // day 32
        assert!(!is_valid_niss("8507300332"));
        assert!(!is_valid_niss("8507300332a"));
    }

    #[test]
    fn bce() {
        let n = bce_with_check(4_030_404);
        assert_eq!(n.len(), 10);
        assert!(is_valid_bce(&n));
        assert!(is_valid_bce("0403040472") == (97 - 4_030_404 % 97 == 72));
        assert!(!is_valid_bce("2403040472"));
        assert!(!is_valid_bce("040304047"));
    }
}
