//! TLS and client-certificate sign-in (issue 19), driven as a user would: `iris serve` with a
//! certificate, a client CA and a CRL made here with rcgen; reqwest (rustls) presenting a valid, an
//! expired, a revoked, an unknown-CA and an unmapped certificate; bearer tokens on the same port;
//! every attempt read back from the audit chain.

mod support;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType, DnValue,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevokedCertParams, SerialNumber, date_time_ymd,
};
use serde_json::{Value, json};
use std::path::Path;
use support::{Server, install_access, iris, load_samples, token};

/// The adviser's national number, in the serialNumber attribute as on a Belgian eID.
const ADVISER_NISS: &str = "85073003328";
/// A valid certificate of the trusted CA whose NISS is in no row of the directory.
const UNMAPPED_NISS: &str = "71715100070";
/// The inspector is mapped by the whole subject DN instead.
const INSPECTOR_DN: &str = "CN=Ines Inspector, O=Inspection service 0005";

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.distinguished_name.push(DnType::CountryName, "BE");
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = params.self_signed(&key).expect("self-signed CA");
    Ca {
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

/// A client certificate (PEM certificate then PEM key, as reqwest's `Identity::from_pem` takes it).
fn person(
    ca: &Ca,
    cn: &str,
    niss: Option<&str>,
    org: Option<&str>,
    serial: u8,
    expired: bool,
) -> Vec<u8> {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name.push(DnType::CommonName, cn);
    if let Some(org) = org {
        params
            .distinguished_name
            .push(DnType::OrganizationName, org);
    }
    if let Some(niss) = niss {
        params.distinguished_name.push(
            DnType::CustomDnType(vec![2, 5, 4, 5]),
            DnValue::PrintableString(niss.try_into().expect("printable")),
        );
    }
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.serial_number = Some(SerialNumber::from(vec![serial]));
    if expired {
        params.not_before = date_time_ymd(2020, 1, 1);
        params.not_after = date_time_ymd(2021, 1, 1);
    } else {
        params.not_before = date_time_ymd(2024, 1, 1);
        params.not_after = date_time_ymd(2090, 1, 1);
    }
    let cert = params.signed_by(&key, &ca.issuer).expect("signed");
    format!("{}{}", cert.pem(), key.serialize_pem()).into_bytes()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p.display().to_string()
}

/// A client of the server trusting `server_pem`, presenting `identity` if any.
fn client(server_pem: &str, identity: Option<&[u8]>) -> reqwest::blocking::Client {
    let mut b = reqwest::blocking::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(server_pem.as_bytes()).expect("pem"));
    if let Some(id) = identity {
        b = b.identity(reqwest::Identity::from_pem(id).expect("identity"));
    }
    b.build().expect("client")
}

/// The directory with the adviser mapped by NISS and the inspector by subject DN (a `certificate`
/// column added to the sample `users.csv`).
fn map_certificates(data: &Path) {
    let path = data.join("access/directory/users.csv");
    let text = std::fs::read_to_string(&path).expect("users.csv");
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        let extra = if i == 0 {
            ",certificate".to_owned()
        } else if line.starts_with("ADV0003,") {
            format!(",{ADVISER_NISS}")
        } else if line.starts_with("INS0005,") {
            format!(",\"{INSPECTOR_DN}\"")
        } else {
            ",".to_owned()
        };
        out.push_str(line);
        out.push_str(&extra);
        out.push('\n');
    }
    std::fs::write(&path, out).expect("users.csv");
}

#[test]
fn certificates_sign_in_people_and_every_attempt_is_audited() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    load_samples(&data, &[], &[]);
    install_access(&data);
    map_certificates(&data);
    let admin = token(&data, &["--role", "admin"]);
    let files = tmp.path();

    // The server's own certificate, and the clients' CA with one revoked certificate in its CRL.
    let server = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("server");
    let server_pem = server.cert.pem();
    let server_cert = write(files, "server.pem", &server_pem);
    let server_key = write(files, "server.key", &server.signing_key.serialize_pem());
    let citizens = ca("Test Citizen CA");
    let stranger = ca("Unknown CA");
    let client_ca = write(files, "ca.pem", &citizens.pem);
    let crl = CertificateRevocationListParams {
        this_update: date_time_ymd(2025, 1, 1),
        next_update: date_time_ymd(2090, 1, 1),
        crl_number: SerialNumber::from(vec![1]),
        issuing_distribution_point: None,
        revoked_certs: vec![RevokedCertParams {
            serial_number: SerialNumber::from(vec![0x66]),
            revocation_time: date_time_ymd(2025, 6, 1),
            reason_code: Some(rcgen::RevocationReason::KeyCompromise),
            invalidity_date: None,
        }],
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(&citizens.issuer)
    .expect("crl");
    let crl = write(files, "ca.crl", &crl.pem().expect("crl pem"));

    let adviser = person(
        &citizens,
        "Alice Adviser",
        Some(ADVISER_NISS),
        None,
        0x10,
        false,
    );
    let inspector = person(
        &citizens,
        "Ines Inspector",
        None,
        Some("Inspection service 0005"),
        0x11,
        false,
    );
    let expired = person(
        &citizens,
        "Alice Adviser",
        Some(ADVISER_NISS),
        None,
        0x12,
        true,
    );
    let revoked = person(
        &citizens,
        "Alice Adviser",
        Some(ADVISER_NISS),
        None,
        0x66,
        false,
    );
    let unknown_ca = person(
        &stranger,
        "Alice Adviser",
        Some(ADVISER_NISS),
        None,
        0x13,
        false,
    );
    let unmapped = person(
        &citizens,
        "Bob Nobody",
        Some(UNMAPPED_NISS),
        None,
        0x14,
        false,
    );

    let server = Server::start(
        &data,
        &[
            "--tls-cert",
            &server_cert,
            "--tls-key",
            &server_key,
            "--client-ca",
            &client_ca,
            "--client-crl",
            &crl,
        ],
    );
    assert!(server.url.starts_with("https://"), "{}", server.url);
    let url = |path: &str| format!("{}{path}", server.url);

    // A valid certificate signs in the adviser it names (by NISS): no token, scoped trace works.
    let c = client(&server_pem, Some(&adviser));
    let r = c.get(url("/v1/me")).send().expect("me");
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()
            .get("strict-transport-security")
            .and_then(|v| v.to_str().ok()),
        Some("max-age=31536000; includeSubDomains")
    );
    let me: Value = r.json().expect("json");
    assert_eq!(
        (me["id"].as_str(), me["role"].as_str()),
        (Some("ADV0003"), Some("adviser"))
    );
    assert_eq!(me["token"], "certificate");
    let r = c
        .get(url("/v1/trace?actor=U0003002"))
        .send()
        .expect("trace");
    assert_eq!(r.status(), 200);
    let b: Value = r.json().expect("json");
    let events = b["events"].as_array().expect("events");
    assert!(!events.is_empty(), "{b}");
    assert!(events.iter().all(|e| e["actor_org"] == "onem0003"), "{b}");
    // Another institution's user stays out of the adviser's scope, certificate or not.
    let r = c
        .get(url("/v1/trace?actor=U0000000"))
        .send()
        .expect("trace");
    assert_eq!(r.status(), 403);

    // The inspector is mapped by the whole subject DN.
    let r = client(&server_pem, Some(&inspector))
        .get(url("/v1/me"))
        .send()
        .expect("me");
    assert_eq!(r.status(), 200);
    let me: Value = r.json().expect("json");
    assert_eq!(
        (me["id"].as_str(), me["role"].as_str()),
        (Some("INS0005"), Some("inspector"))
    );

    // Expired, revoked and unknown-CA certificates end the handshake: no answer at all.
    for (what, id) in [
        ("expired", &expired),
        ("revoked", &revoked),
        ("unknown CA", &unknown_ca),
    ] {
        let r = client(&server_pem, Some(id)).get(url("/v1/me")).send();
        assert!(
            r.is_err(),
            "{what} certificate got an answer: {:?}",
            r.map(|r| r.status())
        );
    }
    // A valid certificate nobody in the directory holds: 401, naming the subject to map.
    let r = client(&server_pem, Some(&unmapped))
        .get(url("/v1/me"))
        .send()
        .expect("answer");
    assert_eq!(r.status(), 401);
    let b: Value = r.json().expect("json");
    assert!(b.to_string().contains(UNMAPPED_NISS), "{b}");
    // No certificate and no token: 401; a bearer token still works over TLS (machines).
    let anon = client(&server_pem, None);
    assert_eq!(anon.get(url("/v1/me")).send().expect("me").status(), 401);
    let sql = |q: &str| -> Vec<Value> {
        let r = anon
            .post(url("/v1/sql"))
            .bearer_auth(&admin)
            .json(&json!({ "sql": q }))
            .send()
            .expect("sql");
        assert_eq!(r.status(), 200);
        let b: Value = r.json().expect("json");
        b["rows"].as_array().cloned().unwrap_or_default()
    };
    // A machine's bearer token over TLS, audited before the seal below puts it in the chain.
    let r = anon
        .get(url("/v1/me"))
        .bearer_auth(&admin)
        .send()
        .expect("me");
    assert_eq!(r.status(), 200);
    let r = anon
        .post(url("/v1/seal"))
        .bearer_auth(&admin)
        .send()
        .expect("seal");
    assert_eq!(r.status(), 200);

    // Every attempt is in the chain: the sign-ins with subject, issuer and method; the refused
    // handshakes as `iris.signin` with the reason.
    let rows = sql(
        "SELECT actor_id, channel, result, error_code, message_type FROM audit \
         WHERE channel LIKE 'https%' OR message_type = 'iris.signin' ORDER BY ts",
    );
    let find = |pred: &dyn Fn(&Value) -> bool| rows.iter().filter(|r| pred(r)).count();
    let s = |r: &Value, k: &str| r[k].as_str().unwrap_or_default().to_owned();
    assert!(
        find(&|r| s(r, "actor_id") == "ADV0003"
            && s(r, "channel") == "https-certificate"
            && s(r, "error_code").contains(&format!("serialNumber={ADVISER_NISS}"))
            && s(r, "error_code").contains("issuer=CN=Test Citizen CA"))
            >= 3,
        "{rows:#?}"
    );
    assert_eq!(
        find(&|r| s(r, "actor_id") == "INS0005" && s(r, "channel") == "https-certificate"),
        1,
        "{rows:#?}"
    );
    assert_eq!(
        find(&|r| s(r, "actor_id") == "unauthenticated"
            && s(r, "result") == "nok"
            && s(r, "error_code").contains("not in the directory")
            && s(r, "error_code").contains(UNMAPPED_NISS)),
        1,
        "{rows:#?}"
    );
    let refused: Vec<String> = rows
        .iter()
        .filter(|r| s(r, "message_type") == "iris.signin")
        .map(|r| s(r, "error_code").to_lowercase())
        .collect();
    assert_eq!(refused.len(), 3, "{rows:#?}");
    for needle in ["expired", "revoked", "unknownissuer"] {
        assert!(
            refused
                .iter()
                .any(|e| e.contains(needle) && e.contains("subject=")),
            "no refused handshake for `{needle}`: {refused:#?}"
        );
    }
    assert!(
        find(&|r| s(r, "channel") == "https-token" && s(r, "message_type") == "iris.me") >= 1,
        "{rows:#?}"
    );
}

#[test]
fn plain_http_is_only_for_loopback_and_the_self_signed_certificate_just_works() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    // Beyond loopback without TLS: refused before anything starts, saying what to do.
    let o = iris(&data, &["serve", "--listen", "0.0.0.0:0"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("refusing to serve plain HTTP"), "{err}");
    assert!(
        err.contains("--tls-cert") && err.contains("--insecure-http"),
        "{err}"
    );
    // Client CAs without TLS make no sense either.
    let o = iris(&data, &["serve", "--client-ca", "ca.pem"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--client-ca needs TLS"));

    // A self-signed certificate is made once, kept in DATA/tls, and serves HTTPS.
    load_samples(&data, &[], &[]);
    let mut first = Server::start(&data, &["--tls-self-signed"]);
    let pem = std::fs::read_to_string(data.join("tls/self-signed.pem")).expect("made");
    let health = |url: &str| {
        client(&pem, None)
            .get(format!("{url}/v1/health"))
            .send()
            .expect("health")
            .status()
    };
    assert!(first.url.starts_with("https://"), "{}", first.url);
    assert_eq!(health(&first.url), 200);
    first.kill();
    let second = Server::start(&data, &["--tls-self-signed"]);
    assert_eq!(
        std::fs::read_to_string(data.join("tls/self-signed.pem")).expect("kept"),
        pem,
        "the certificate is reused, so a browser's trust in it lasts"
    );
    assert_eq!(health(&second.url), 200);
}
