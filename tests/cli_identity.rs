//! `meshlens identity init|issue|inspect`, run as a user runs them, with OpenSSL as the
//! independent judge of the certificates and as the maker of a team's own CA files.

use std::path::Path;
use std::process::{Command, Output};

fn meshlens(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meshlens"))
        .args(args)
        .output()
        .unwrap()
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Exit 1 and exactly one line, `error: ...`, that mentions `needle`.
fn fails_naming(out: Output, needle: &str) -> String {
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "stderr: {err}");
    assert!(err.starts_with("error: "), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains(needle), "expected {needle:?} in {err}");
    err
}

/// OpenSSL is part of this test's contract; its absence is a failure, not a skip.
fn openssl(dir: &Path, args: &[&str]) -> Output {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("these tests need the openssl command line tool: {e}"));
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn init_issue_inspect_and_openssl_agrees() {
    let tmp = tempfile::tempdir().unwrap();
    let (ca, prefix) = (tmp.path().join("ca"), tmp.path().join("web.shop"));
    let out = ok(meshlens(&["identity", "init", "--dir", s(&ca)]));
    assert!(out.contains("identity.linkerd.cluster.local"), "{out}");

    let out = ok(meshlens(&[
        "identity",
        "issue",
        "--dir",
        s(&ca),
        "--sa",
        "web",
        "--ns",
        "shop",
        "--out",
        s(&prefix),
    ]));
    assert!(
        out.contains("web.shop.serviceaccount.identity.linkerd.cluster.local"),
        "{out}"
    );
    let (crt, key) = (
        tmp.path().join("web.shop.crt"),
        tmp.path().join("web.shop.key"),
    );

    let verified = openssl(
        tmp.path(),
        &[
            "verify",
            "-CAfile",
            "ca/trust-anchor.crt",
            "-untrusted",
            "ca/issuer.crt",
            "web.shop.crt",
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&verified.stdout).trim(),
        "web.shop.crt: OK"
    );
    // The key belongs to the leaf.
    let cert_pub = openssl(
        tmp.path(),
        &["x509", "-in", "web.shop.crt", "-noout", "-pubkey"],
    );
    let key_pub = openssl(tmp.path(), &["pkey", "-in", "web.shop.key", "-pubout"]);
    assert_eq!(cert_pub.stdout, key_pub.stdout);
    let text = openssl(
        tmp.path(),
        &["x509", "-in", "web.shop.crt", "-noout", "-text"],
    );
    let text = String::from_utf8(text.stdout).unwrap();
    for expected in [
        "ecdsa-with-SHA256",
        "NIST CURVE: P-256",
        "Subject: CN = web.shop.serviceaccount.identity.linkerd.cluster.local",
        "DNS:web.shop.serviceaccount.identity.linkerd.cluster.local\n",
        "TLS Web Server Authentication, TLS Web Client Authentication",
        "CA:FALSE",
    ] {
        assert!(text.contains(expected), "{expected:?} not in\n{text}");
    }

    #[cfg(unix)]
    {
        assert_eq!(mode(&key), 0o600);
        assert_eq!(mode(&ca.join("issuer.key")), 0o600);
        // Reissuing over a key someone loosened tightens it again.
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .unwrap();
        ok(meshlens(&[
            "identity",
            "issue",
            "--dir",
            s(&ca),
            "--sa",
            "web",
            "--ns",
            "shop",
            "--out",
            s(&prefix),
        ]));
        assert_eq!(mode(&key), 0o600);
    }

    let out = ok(meshlens(&["identity", "inspect", s(&crt)]));
    for expected in [
        "identity   web.shop.serviceaccount.identity.linkerd.cluster.local",
        "service account web, namespace shop, control plane linkerd, trust domain cluster.local",
        "0  leaf    web.shop.serviceaccount.identity.linkerd.cluster.local",
        "1  issuer  identity.linkerd.cluster.local",
        "issued by root.linkerd.cluster.local; ECDSA P-256, ECDSA with SHA-256",
        "(1day 40s)",
        "time left  1day",
        "renew at",
    ] {
        assert!(out.contains(expected), "{expected:?} not in\n{out}");
    }

    // The CA is not overwritten.
    fails_naming(
        meshlens(&["identity", "init", "--dir", s(&ca)]),
        "trust-anchor.crt already exists",
    );
}

#[test]
fn trust_domain_and_lifetime() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = tmp.path().join("ca");
    ok(meshlens(&[
        "identity",
        "init",
        "--dir",
        s(&ca),
        "--trust-domain",
        "example.org",
    ]));
    let prefix = tmp.path().join("api");
    ok(meshlens(&[
        "identity",
        "issue",
        "--dir",
        s(&ca),
        "--sa",
        "api",
        "--ns",
        "billing",
        "--lifetime",
        "90m",
        "--out",
        s(&prefix),
    ]));
    let out = ok(meshlens(&[
        "identity",
        "inspect",
        s(&tmp.path().join("api.crt")),
    ]));
    assert!(
        out.contains("identity   api.billing.serviceaccount.identity.linkerd.example.org"),
        "{out}"
    );
    assert!(out.contains("(1h 30m 40s)"), "{out}");
    let anchor = ok(meshlens(&[
        "identity",
        "inspect",
        s(&ca.join("trust-anchor.crt")),
    ]));
    assert!(
        anchor.contains("0  root    root.linkerd.example.org"),
        "{anchor}"
    );
    assert!(anchor.contains("identity   none"), "{anchor}");

    fails_naming(
        meshlens(&[
            "identity",
            "issue",
            "--dir",
            s(&ca),
            "--sa",
            "API",
            "--ns",
            "billing",
            "--out",
            s(&prefix),
        ]),
        "service account \"API\"",
    );
}

/// A team's own root and issuer, made with OpenSSL the way Linkerd's docs make them with step:
/// P-256, SEC1 keys, a CA root and a path-length-0 issuer named identity.linkerd.cluster.local.
fn team_ca(dir: &Path) {
    let ext =
        "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n";
    std::fs::write(dir.join("issuer.ext"), ext).unwrap();
    for args in [
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "root.key",
        ][..],
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "root.key",
            "-subj",
            "/CN=root.linkerd.cluster.local",
            "-days",
            "3650",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-out",
            "root.crt",
        ],
        // With its EC PARAMETERS block, as `openssl ecparam -genkey` writes by default.
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-out",
            "issuer.key",
        ],
        &[
            "req",
            "-new",
            "-key",
            "issuer.key",
            "-subj",
            "/CN=identity.linkerd.cluster.local",
            "-out",
            "issuer.csr",
        ],
        &[
            "x509",
            "-req",
            "-in",
            "issuer.csr",
            "-CA",
            "root.crt",
            "-CAkey",
            "root.key",
            "-CAcreateserial",
            "-days",
            "365",
            "-extfile",
            "issuer.ext",
            "-out",
            "issuer.crt",
        ],
        &["genrsa", "-out", "rsa.key", "2048"],
    ] {
        openssl(dir, args);
    }
}

#[test]
fn a_teams_own_anchor_and_issuer() {
    let tmp = tempfile::tempdir().unwrap();
    let team = tmp.path().join("team");
    std::fs::create_dir(&team).unwrap();
    team_ca(&team);
    let ca = tmp.path().join("ca");
    ok(meshlens(&[
        "identity",
        "init",
        "--dir",
        s(&ca),
        "--from-anchor",
        s(&team.join("root.crt")),
        "--issuer-cert",
        s(&team.join("issuer.crt")),
        "--issuer-key",
        s(&team.join("issuer.key")),
    ]));
    #[cfg(unix)]
    assert_eq!(mode(&ca.join("issuer.key")), 0o600);
    ok(meshlens(&[
        "identity",
        "issue",
        "--dir",
        s(&ca),
        "--sa",
        "web",
        "--ns",
        "shop",
        "--out",
        s(&tmp.path().join("web")),
    ]));
    // The leaf chains to the team's original root file, not just to our copy of it.
    let verified = openssl(
        tmp.path(),
        &[
            "verify",
            "-CAfile",
            "team/root.crt",
            "-untrusted",
            "team/issuer.crt",
            "web.crt",
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&verified.stdout).trim(),
        "web.crt: OK"
    );
}

#[test]
fn bad_ca_files_fail_with_one_line_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let team = tmp.path().join("team");
    std::fs::create_dir(&team).unwrap();
    team_ca(&team);
    std::fs::write(
        team.join("garbage.crt"),
        "-----BEGIN CERTIFICATE-----\n%%%\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    std::fs::write(team.join("empty.crt"), "not a certificate\n").unwrap();
    let init = |anchor: &str, cert: &str, key: &str| {
        let p = |f: &str| team.join(f).to_str().unwrap().to_string();
        let dir = tmp.path().join("out");
        meshlens(&[
            "identity",
            "init",
            "--dir",
            s(&dir),
            "--from-anchor",
            &p(anchor),
            "--issuer-cert",
            &p(cert),
            "--issuer-key",
            &p(key),
        ])
    };
    fails_naming(
        init("missing.crt", "issuer.crt", "issuer.key"),
        "missing.crt: cannot read",
    );
    fails_naming(
        init("root.crt", "garbage.crt", "issuer.key"),
        "garbage.crt: malformed PEM",
    );
    fails_naming(
        init("empty.crt", "issuer.crt", "issuer.key"),
        "empty.crt: no PEM block CERTIFICATE",
    );
    let err = fails_naming(
        init("root.crt", "issuer.crt", "rsa.key"),
        "rsa.key: an RSA key",
    );
    assert!(err.contains("ECDSA P-256"), "{err}");
    fails_naming(
        init("root.crt", "issuer.crt", "root.key"),
        "root.key: the private key does not belong",
    );
    fails_naming(
        init("issuer.crt", "root.crt", "root.key"),
        "issuer.crt: the issuer root.linkerd.cluster.local is not signed by any trust anchor",
    );
    // Nothing was written by the failed attempts.
    assert!(!tmp.path().join("out").join("issuer.key").exists());

    fails_naming(
        meshlens(&["identity", "inspect", s(&team.join("garbage.crt"))]),
        "garbage.crt: malformed PEM",
    );
    fails_naming(
        meshlens(&["identity", "inspect", s(&team.join("nothing.crt"))]),
        "nothing.crt",
    );
    fails_naming(
        meshlens(&[
            "identity",
            "issue",
            "--dir",
            s(&team),
            "--sa",
            "web",
            "--ns",
            "shop",
            "--out",
            s(&tmp.path().join("web")),
        ]),
        "trust-anchor.crt: cannot read",
    );
}
