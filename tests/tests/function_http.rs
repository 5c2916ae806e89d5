//! The real `cahier-function` binary over HTTP on loopback: dev captcha verified by the hcaptcha
//! crate against the binary's own siteverify, SQLite store, outbox mails.

use cahier_function::token::TokenKind;
use cahier_tests::fixture::SLUG;
use cahier_tests::flow::Api;
use cahier_tests::outbox::{read_dir, token};
use cahier_tests::server::Fixture;

#[tokio::test]
async fn sign_mail_confirm_by_post_and_count() {
    let dir = tempfile::tempdir().unwrap();
    let f = Fixture::start(dir.path(), None, &[]);
    let c = Api::new(&f.server.base);
    let res = c.sign("camille@example.org").await;
    assert_eq!(res.status(), 202, "{}", f.server.log());
    assert_eq!(
        res.bytes().await.unwrap().as_ref(),
        br#"{"status":"pending"}"#
    );
    let mails = read_dir(&f.outbox);
    assert_eq!(mails.len(), 1);
    let confirm = token(&mails[0].text, "confirm").expect("confirm link");
    assert!(mails[0]
        .text
        .contains(&format!("{}/{SLUG}/confirm/#t=", f.server.base)));

    // A GET (a mail scanner following the link) changes nothing.
    let res = c
        .http
        .get(format!("{}/api/confirm?t={confirm}", c.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    assert_eq!(c.count().await, 0, "still pending after a GET");

    let res = c.post_token("/api/confirm", &confirm).await;
    assert_eq!(res.status(), 200);
    assert_eq!(c.count().await, 1);
}

#[tokio::test]
async fn replayed_captcha_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let f = Fixture::start(dir.path(), None, &[]);
    let c = Api::new(&f.server.base);
    let captcha = c.captcha().await;
    assert_eq!(
        c.sign_with("first@example.org", &captcha).await.status(),
        202
    );
    let res = c.sign_with("second@example.org", &captcha).await;
    assert_eq!(res.status(), 403);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    assert_eq!(read_dir(&f.outbox).len(), 1);
}

#[tokio::test]
async fn forged_tampered_and_expired_tokens_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let f = Fixture::start(dir.path(), None, &[]);
    let c = Api::new(&f.server.base);
    assert_eq!(c.sign("dominique@example.org").await.status(), 202);
    let genuine = token(&read_dir(&f.outbox)[0].text, "confirm").unwrap();

    let mut tampered: Vec<char> = genuine.chars().collect();
    let mid = tampered.len() / 2;
    tampered[mid] = if tampered[mid] == 'A' { 'B' } else { 'A' };
    let tampered: String = tampered.into_iter().collect();
    // Signed with another key: a forgery.
    let other = cahier_function::token::TokenKey::new(&[9u8; 32]).unwrap();
    let forged = other.issue(&cahier_function::token::TokenClaims {
        kind: TokenKind::Confirm,
        petition: SLUG.into(),
        email_hash: cahier_function::crypto::Hasher::new(&f.secrets.pepper)
            .unwrap()
            .email("dominique@example.org"),
        expires_at: i64::MAX,
    });
    for bad in [tampered.as_str(), forged.as_str(), "not-a-token"] {
        let res = c.post_token("/api/confirm", bad).await;
        assert_eq!(res.status(), 400, "{bad}");
    }
    let expired = f.token_for(TokenKind::Confirm, "dominique@example.org", 1);
    assert_eq!(c.post_token("/api/confirm", &expired).await.status(), 410);
    assert_eq!(c.count().await, 0);
    assert_eq!(c.post_token("/api/confirm", &genuine).await.status(), 200);
    assert_eq!(c.count().await, 1);
}

#[tokio::test]
async fn other_spellings_make_one_signature() {
    let dir = tempfile::tempdir().unwrap();
    let f = Fixture::start(dir.path(), None, &[]);
    let c = Api::new(&f.server.base);
    for email in [
        "Marie.Curie@gmail.com",
        "mariecurie+petition@gmail.com",
        "MARIE.CURIE@GOOGLEMAIL.COM",
        "m.a.r.i.e.curie@gmail.com",
    ] {
        assert_eq!(c.sign(email).await.status(), 202, "{email}");
    }
    let mails = read_dir(&f.outbox);
    // One confirmation, one "already signed" (at most one a day), nothing more.
    assert_eq!(mails.len(), 2, "{mails:#?}");
    let t = token(&mails[0].text, "confirm").unwrap();
    assert_eq!(c.post_token("/api/confirm", &t).await.status(), 200);
    let t2 = token(&mails[1].text, "confirm").unwrap();
    assert_eq!(c.post_token("/api/confirm", &t2).await.status(), 200);
    assert_eq!(c.count().await, 1);
    let conn = rusqlite::Connection::open(&f.db).unwrap();
    let rows: i64 = conn
        .query_row("SELECT COUNT(*) FROM signatures", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 1);
}

fn files_contain(db: &std::path::Path, needle: &[u8]) -> bool {
    let wal = db.with_extension("sqlite3-wal");
    [db.to_path_buf(), wal]
        .iter()
        .filter_map(|p| std::fs::read(p).ok())
        .any(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
}

#[tokio::test]
async fn erase_corrects_the_count_and_wipes_the_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let f = Fixture::start(dir.path(), None, &[]);
    let c = Api::new(&f.server.base);
    let email = "effacez.moi@example.org";
    assert_eq!(c.sign(email).await.status(), 202);
    assert_eq!(c.sign("reste@example.org").await.status(), 202);
    let mails = read_dir(&f.outbox);
    let mine = mails.iter().find(|m| m.to == email).unwrap();
    assert_eq!(
        c.post_token("/api/confirm", &token(&mine.text, "confirm").unwrap())
            .await
            .status(),
        200
    );
    assert_eq!(c.count().await, 1);

    // The sealed personal data (and never the plain e-mail) is in the files before erasure.
    let hash = cahier_function::crypto::Hasher::new(&f.secrets.pepper)
        .unwrap()
        .email(email);
    let sealed: Vec<u8> = {
        let conn = rusqlite::Connection::open_with_flags(
            &f.db,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        conn.query_row(
            "SELECT sealed FROM signatures WHERE email_hash = ?1",
            [&hash],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert!(
        cahier_function::crypto::unseal(&f.identity, &sealed)
            .unwrap()
            .email
            == email
    );
    let chunk = &sealed[sealed.len() - 48..];
    assert!(
        files_contain(&f.db, chunk),
        "sealed data expected in the files before erasure"
    );
    assert!(!files_contain(&f.db, email.as_bytes()));

    let res = c
        .post_token("/api/erase", &token(&mine.text, "erase").unwrap())
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(c.count().await, 0);
    assert!(
        !files_contain(&f.db, chunk),
        "sealed data still in the SQLite files after erasure"
    );
    assert!(!files_contain(&f.db, email.as_bytes()));
    // Erasing twice is fine.
    assert_eq!(
        c.post_token("/api/erase", &token(&mine.text, "erase").unwrap())
            .await
            .status(),
        200
    );
}

/// A signer whose connection drops right after the request was sent (a phone going into a
/// tunnel, a proxy timing out): the request is carried through, signature and mail included,
/// so nothing is left half done (stored without the confirmation mail, or lost).
#[tokio::test]
async fn a_client_that_hangs_up_still_gets_its_signature_and_mail() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let f = Fixture::start(dir.path(), None, &[]);
    let c = Api::new(&f.server.base);
    let body = serde_json::json!({
        "name": "Alix Tunnel", "email": "alix@example.org", "consent": true,
        "h-captcha-response": c.captcha().await, "lang": "fr", "fill_ms": 6000,
    })
    .to_string();
    let addr = f.server.base.trim_start_matches("http://").to_string();
    let mut socket = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let request = format!(
        "POST /api/petitions/{SLUG}/sign HTTP/1.1\r\nHost: {addr}\r\nOrigin: {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        f.server.base,
        body.len()
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    // Hang up at once: the server sees the end of the connection while it verifies the captcha.
    socket.shutdown().await.unwrap();
    drop(socket);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while read_dir(&f.outbox).is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let mails = read_dir(&f.outbox);
    assert_eq!(mails.len(), 1, "{}", f.server.log());
    let confirm = token(&mails[0].text, "confirm").expect("confirm link");
    assert_eq!(c.post_token("/api/confirm", &confirm).await.status(), 200);
    assert_eq!(c.count().await, 1);
}

/// SIGTERM (systemd, `docker stop`) is a clean stop, not a kill: the server exits with success
/// after its requests in flight, and the confirmed signature is there after a restart.
#[tokio::test]
async fn sigterm_stops_cleanly_and_keeps_what_was_confirmed() {
    let dir = tempfile::tempdir().unwrap();
    let mut f = Fixture::start(dir.path(), None, &[]);
    let c = Api::new(&f.server.base);
    assert_eq!(c.sign("sacha@example.org").await.status(), 202);
    let confirm = token(&read_dir(&f.outbox)[0].text, "confirm").expect("confirm link");
    assert_eq!(c.post_token("/api/confirm", &confirm).await.status(), 200);
    let status = f.server.terminate().expect("exits within 15 s of SIGTERM");
    assert!(status.success(), "{status}; log:\n{}", f.server.log());
    f.server.restart();
    assert_eq!(Api::new(&f.server.base).count().await, 1);
}
