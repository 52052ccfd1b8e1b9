//! Names a citizen understands in their consultations: the institution's name from the directory
//! (`institutions.csv`) and what the message type is about, in English, French and Dutch, from the
//! network's code list of message families (`sql/citizen/message_types.csv`: exact codes first, then
//! the family letter the code starts with).

use iris_access::directory::Directory;
use std::sync::OnceLock;

const MESSAGE_TYPES: &str = include_str!("../../sql/citizen/message_types.csv");

/// A code (or family letter) and its description in English, French and Dutch.
type Described = (String, [String; 3]);

fn message_types() -> &'static [Described] {
    static LIST: OnceLock<Vec<Described>> = OnceLock::new();
    LIST.get_or_init(|| {
        MESSAGE_TYPES
            .lines()
            .skip(1)
            .filter_map(|line| {
                let mut f = line.split(',').map(str::trim);
                let code = f.next()?.to_owned();
                Some((
                    code,
                    [
                        f.next()?.to_owned(),
                        f.next()?.to_owned(),
                        f.next()?.to_owned(),
                    ],
                ))
            })
            .collect()
    })
}

/// The description of a message type (`None` when the code list does not know it).
pub fn message(code: &str) -> Option<&'static [String; 3]> {
    let list = message_types();
    list.iter()
        .find(|(c, _)| c == code)
        .or_else(|| {
            list.iter()
                .find(|(c, _)| c.len() == 1 && code.starts_with(c.as_str()))
        })
        .map(|(_, d)| d)
}

/// Adds `institution_name`, `message`, `message_fr` and `message_nl` to each consultation row
/// (codes unknown to the lists keep only their code).
pub fn name(rows: &mut serde_json::Value, directory: &Directory) {
    let Some(rows) = rows.as_array_mut() else {
        return;
    };
    for row in rows {
        let Some(obj) = row.as_object_mut() else {
            continue;
        };
        let org = obj
            .get("institution")
            .and_then(|v| v.as_str())
            .unwrap_or("");
        if let Some(i) = directory.institutions.get(org) {
            obj.insert("institution_name".into(), i.name.clone().into());
        }
        let code = obj
            .get("message_type")
            .and_then(|v| v.as_str())
            .unwrap_or("");
        if let Some([en, fr, nl]) = message(code) {
            obj.insert("message".into(), en.clone().into());
            obj.insert("message_fr".into(), fr.clone().into());
            obj.insert("message_nl".into(), nl.clone().into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_has_three_languages_and_codes_fall_back_to_their_family() {
        assert_eq!(message_types().len(), 4);
        for (_, names) in message_types() {
            assert!(names.iter().all(|n| !n.is_empty()));
        }
        assert_eq!(
            message("L100").map(|d| d[0].as_str()),
            Some("Identification data (national register)")
        );
        assert_eq!(message("X1"), None);
    }
}
