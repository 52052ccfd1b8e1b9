//! Client-certificate sign-in: the person behind a verified certificate (an eID's authentication
//! certificate, say), found in the directory. The TLS layer has already checked the chain, the
//! validity dates and the revocation lists; this only maps the subject to a principal.

use crate::directory::{ADVISER, Directory, INSPECTOR};
use crate::tokens::{Principal, Role};

/// What [`Principal::token_id`] holds for a principal signed in by certificate.
pub const CERTIFICATE_SIGN_IN: &str = "certificate";

/// Why a verified certificate gives no principal.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CertificateRefusal {
    /// Neither the subject's `serialNumber` nor its DN is in `users.csv`'s `certificate` column.
    #[error(
        "certificate subject `{subject}` is not in the directory (users.csv, column `certificate`: its serialNumber or this DN)"
    )]
    Unmapped { subject: String },
    /// The user's capacity has no role in Iris.
    #[error(
        "user `{user}` (capacity `{capacity}`) has no role in Iris: only security advisers and inspectors sign in by certificate"
    )]
    NoRole { user: String, capacity: String },
}

/// The principal a verified certificate signs in as: the directory user it names, with the role of
/// their capacity (security adviser or inspector).
pub fn principal_of_certificate(
    directory: &Directory,
    serial_number: Option<&str>,
    subject: &str,
) -> Result<Principal, CertificateRefusal> {
    let user = directory
        .user_by_certificate(serial_number, subject)
        .ok_or_else(|| CertificateRefusal::Unmapped {
            subject: subject.to_owned(),
        })?;
    let role = match user.capacity.as_str() {
        ADVISER => Role::Adviser,
        INSPECTOR => Role::Inspector,
        other => {
            return Err(CertificateRefusal::NoRole {
                user: user.actor_id.clone(),
                capacity: other.to_owned(),
            });
        }
    };
    Ok(Principal {
        token_id: CERTIFICATE_SIGN_IN.to_owned(),
        role,
        id: user.actor_id.clone(),
        source: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn directory(users: &str) -> Directory {
        let dir = tempfile::tempdir().expect("tempdir");
        let write = |name: &str, text: &str| {
            std::fs::write(dir.path().join(name), text).expect("write");
        };
        write(
            "institutions.csv",
            "code,name,kind\nonem0003,ONEM,institution\ninsp0005,Inspection,inspection\n",
        );
        write("users.csv", users);
        write("supervision.csv", "adviser,institution\n");
        Directory::load(dir.path()).expect("directory loads")
    }

    #[test]
    fn old_users_files_load_and_sign_in_no_one() {
        let d = directory("actor_id,institution,capacity\nADV0003,onem0003,security-adviser\n");
        assert!(d.certificates.is_empty());
        assert!(matches!(
            principal_of_certificate(&d, Some("85073003328"), "CN=x"),
            Err(CertificateRefusal::Unmapped { .. })
        ));
    }

    #[test]
    fn serial_number_then_subject_name_the_user() {
        let d = directory(concat!(
            "actor_id,institution,capacity,certificate\n",
            "ADV0003,onem0003,security-adviser,85073003328\n",
            "INS0005,insp0005,inspector,\"CN=Ines Inspector, O=Inspection\"\n",
            "U0001,onem0003,agent,71715100070\n",
            "U0002,onem0003,agent,\n",
        ));
        let p = principal_of_certificate(&d, Some("85073003328"), "CN=Alice").expect("adviser");
        assert_eq!((p.role, p.id.as_str()), (Role::Adviser, "ADV0003"));
        let p = principal_of_certificate(&d, None, "CN=Ines Inspector, O=Inspection")
            .expect("inspector");
        assert_eq!((p.role, p.id.as_str()), (Role::Inspector, "INS0005"));
        assert!(matches!(
            principal_of_certificate(&d, Some("71715100070"), "CN=U"),
            Err(CertificateRefusal::NoRole { .. })
        ));
        assert!(matches!(
            principal_of_certificate(&d, Some("00000000000"), "CN=Ines Inspector"),
            Err(CertificateRefusal::Unmapped { .. })
        ));
    }

    #[test]
    fn a_certificate_named_twice_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("institutions.csv"),
            "code,name,kind\nonem0003,ONEM,institution\n",
        )
        .expect("write");
        std::fs::write(
            dir.path().join("users.csv"),
            "actor_id,institution,capacity,certificate\nA,onem0003,agent,85073003328\nB,onem0003,agent,85073003328\n",
        )
        .expect("write");
        std::fs::write(dir.path().join("supervision.csv"), "adviser,institution\n").expect("write");
        let e = Directory::load(dir.path()).expect_err("refused");
        assert!(e.to_string().contains("already `A`'s"), "{e}");
    }
}
