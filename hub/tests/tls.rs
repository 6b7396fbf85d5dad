//! HTTPS and `wss://` with the organiser's certificate: one made by the
//! test (rcgen) and a client that trusts it — the API, a ballot, the live
//! tally over TLS, the join addresses that follow the certificate — and a
//! certificate that cannot be used refused at start, nothing written.

mod common;

use std::process::Command;
use std::sync::Arc;

use common::{HubProcess, TOKEN, binary};
use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

struct Pem {
    cert: String,
    key: String,
}

fn certificate() -> Pem {
    let made =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("certificate");
    Pem {
        cert: made.cert.pem(),
        key: made.signing_key.serialize_pem(),
    }
}

#[tokio::test]
async fn the_api_and_live_tallies_go_over_https() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pem = certificate();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, &pem.cert).expect("cert");
    std::fs::write(&key_path, &pem.key).expect("key");
    let data = dir.path().join("data");
    let hub = HubProcess::start_with(
        &data,
        &[
            "--tls-cert",
            cert_path.to_str().expect("path"),
            "--tls-key",
            key_path.to_str().expect("path"),
        ],
        "info",
    );
    assert!(
        hub.stderr
            .lock()
            .expect("log")
            .contains("listening on https://"),
        "serve says it is on HTTPS"
    );
    let port = hub.addr.port();
    let base = format!("https://localhost:{port}");
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(pem.cert.as_bytes()).expect("root"))
        .build()
        .expect("client");
    let health = client
        .get(format!("{base}/health"))
        .send()
        .await
        .expect("health over https");
    assert_eq!(health.status().as_u16(), 200);
    let info: Value = client
        .get(format!("{base}/api/info"))
        .send()
        .await
        .expect("info")
        .json()
        .await
        .expect("json");
    assert_eq!(
        info["join_urls"],
        json!([
            format!("https://localhost:{port}/"),
            format!("https://127.0.0.1:{port}/")
        ]),
        "the join addresses are the certificate's names, then the addresses it covers"
    );
    let created: Value = client
        .post(format!("{base}/api/sessions"))
        .bearer_auth(TOKEN)
        .body(json!({"title": "Over TLS"}).to_string())
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    let id = created["id"].as_str().expect("id").to_owned();

    // wss://, with a client that trusts this certificate only.
    let mut roots = rustls::RootCertStore::empty();
    let der = CertificateDer::from_pem_slice(pem.cert.as_bytes()).expect("PEM");
    roots.add(der).expect("root");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(hub.addr).await.expect("tcp");
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
        .expect("TLS handshake");
    let (mut ws, _) = tokio_tungstenite::client_async(format!("wss://localhost:{port}/live"), tls)
        .await
        .expect("wss handshake");
    ws.send(Message::text(
        json!({"action": "subscribe", "session_id": id}).to_string(),
    ))
    .await
    .expect("subscribe");
    let mut seen = Vec::new();
    // The snapshot, then the ballot's update: read until it comes.
    let ballot = client
        .post(format!("{base}/api/sessions/{id}/votes"))
        .body(json!({"voter": "ann", "choice": "for"}).to_string())
        .send()
        .await
        .expect("ballot");
    assert_eq!(ballot.status().as_u16(), 200);
    while let Some(msg) = ws.next().await {
        let msg = msg.expect("frame");
        let Message::Text(text) = msg else { continue };
        let v: Value = serde_json::from_str(&text).expect("json");
        seen.push(v.clone());
        if v["event"] == "vote_update" && v["votes_for"] == 1 {
            break;
        }
    }
    assert!(
        seen.iter()
            .any(|v| v["event"] == "vote_update" && v["votes_for"] == 1),
        "{seen:?}"
    );
    // Many messages sent at once arrive in few reads, records split
    // across them: each is answered.
    for i in 0..50 {
        ws.feed(Message::text(
            json!({"action": format!("nothing-{i}"), "session_id": id}).to_string(),
        ))
        .await
        .expect("feed");
    }
    ws.flush().await.expect("flush");
    let mut refused = 0;
    while refused < 50 {
        let Some(Ok(Message::Text(text))) = ws.next().await else {
            panic!("the connection ended after {refused} answers")
        };
        let v: Value = serde_json::from_str(&text).expect("json");
        if v.get("error").is_some() {
            refused += 1;
        }
    }
    // An answer larger than a TLS record (16 KiB) arrives whole, and the
    // live state of the same election (its counts by option id).
    let options: Vec<String> = (0..100)
        .map(|i| format!("{i:03} {}", "candidate ".repeat(19)))
        .collect();
    let election: Value = client
        .post(format!("{base}/api/sessions"))
        .bearer_auth(TOKEN)
        .body(
            json!({"title": "Many long names", "kind": "election", "options": options, "seats": 3})
                .to_string(),
        )
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    let big = election["id"].as_str().expect("id").to_owned();
    ws.send(Message::text(
        json!({"action": "subscribe", "session_id": big}).to_string(),
    ))
    .await
    .expect("subscribe");
    let snapshot = loop {
        let Some(Ok(Message::Text(text))) = ws.next().await else {
            panic!("the connection ended")
        };
        let v: Value = serde_json::from_str(&text).expect("json");
        if v["session_id"] == big.as_str() && v["event"] == "vote_update" {
            break v;
        }
    };
    assert_eq!(snapshot["options"].as_array().map(Vec::len), Some(100));
    let whole = client
        .get(format!("{base}/api/sessions/{big}"))
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("body");
    assert!(whole.len() > 16 * 1024, "{} bytes", whole.len());
    let read: Value = serde_json::from_str(&whole).expect("whole JSON");
    assert_eq!(read["options"].as_array().map(Vec::len), Some(100));
    ws.close(None).await.expect("close");
}

#[test]
fn an_unusable_certificate_stops_the_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, "not a certificate").expect("cert");
    std::fs::write(&key, certificate().key).expect("key");
    let data = dir.path().join("data");
    let out = Command::new(binary())
        .args(["serve", "--bind", "127.0.0.1:0", "--data"])
        .arg(&data)
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cert.pem"), "{stderr}");
    assert!(!data.exists(), "nothing written");
    // A certificate without its key is refused by the flags.
    let out = Command::new(binary())
        .args(["serve", "--bind", "127.0.0.1:0", "--data"])
        .arg(&data)
        .arg("--tls-cert")
        .arg(&cert)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
}
