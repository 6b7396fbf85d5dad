//! RFC 6455 and seed conformance that a suite kept outside the project
//! found wanting: the close handshake, handshake limits, frame lengths
//! known too late, invalid UTF-8, and the seed's close message.

mod common;

use std::time::Duration;

use common::raw::{RawLive, Read};
use common::{HubProcess, Live};
use serde_json::json;

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

fn upgrade_request(addr: std::net::SocketAddr, version: &str, extra: &str) -> String {
    format!(
        "GET /live {version}\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

#[tokio::test]
async fn a_close_frame_is_answered_with_a_close_frame_before_the_tcp_close() {
    let hub = HubProcess::start();
    let id = hub.api().create_titled("Close handshake").await;

    // A code and a reason, from a client that follows a session.
    let mut live = RawLive::connect(hub.addr).await;
    live.send_text(&json!({"action": "subscribe", "session_id": id}).to_string())
        .await;
    assert_eq!(live.json().await["event"], "subscribed");
    assert_eq!(live.json().await["event"], "vote_update");
    let mut payload = 1000u16.to_be_bytes().to_vec();
    payload.extend_from_slice(b"bye");
    live.send_frame(true, 0x8, &payload).await;
    let answer = live.frame().await;
    assert_eq!(answer.opcode, 0x8, "a Close frame comes back: {answer:?}");
    assert_eq!(answer.close_code(), Some(1000), "the code is echoed");
    assert_eq!(
        live.read().await,
        Read::Eof,
        "then the TCP connection closes"
    );

    // Another code is echoed too.
    let mut live = RawLive::connect(hub.addr).await;
    live.send_frame(true, 0x8, &4000u16.to_be_bytes()).await;
    assert_eq!(live.frame().await.close_code(), Some(4000));
    assert_eq!(live.read().await, Read::Eof);

    // An empty Close: a Close without a code (or 1000) comes back.
    let mut live = RawLive::connect(hub.addr).await;
    live.send_frame(true, 0x8, &[]).await;
    let answer = live.frame().await;
    assert_eq!(answer.opcode, 0x8);
    assert!(
        answer.payload.is_empty() || answer.close_code() == Some(1000),
        "{answer:?}"
    );
    assert_eq!(live.read().await, Read::Eof);

    // A WebSocket library sees a clean close.
    let mut client = Live::connect(&hub.live_url()).await;
    client.ws.close(None).await.expect("close");
    match client.next_message().await {
        Some(tokio_tungstenite::tungstenite::Message::Close(_)) => {}
        other => panic!("expected the server's Close, got {other:?}"),
    }
}

#[tokio::test]
async fn an_http_1_0_upgrade_is_refused() {
    let hub = HubProcess::start();
    let mut raw = RawLive::request(hub.addr, &upgrade_request(hub.addr, "HTTP/1.0", "")).await;
    let status = raw.status().await;
    assert!(
        (400..500).contains(&status),
        "HTTP/1.0 cannot upgrade (RFC 6455 §4.1), got {status}"
    );
    // The same request in HTTP/1.1 is accepted.
    let mut raw = RawLive::request(hub.addr, &upgrade_request(hub.addr, "HTTP/1.1", "")).await;
    assert_eq!(raw.status().await, 101);
}

#[tokio::test]
async fn request_headers_are_bounded_for_live_and_the_api() {
    let hub = HubProcess::start();
    let big = format!("X-Padding: {}\r\n", "a".repeat(32 * 1024));
    let mut raw = RawLive::request(hub.addr, &upgrade_request(hub.addr, "HTTP/1.1", &big)).await;
    assert_eq!(raw.status().await, 431, "/live with 32 KiB of headers");
    let api = format!(
        "GET /api/sessions HTTP/1.1\r\nHost: {}\r\n{big}\r\n",
        hub.addr
    );
    let mut raw = RawLive::request(hub.addr, &api).await;
    assert_eq!(raw.status().await, 431, "the API with 32 KiB of headers");

    // What a browser sends (a few KiB of cookies at worst) is fine.
    let cookie = format!("Cookie: c={}\r\n", "b".repeat(3000));
    let mut raw = RawLive::request(hub.addr, &upgrade_request(hub.addr, "HTTP/1.1", &cookie)).await;
    assert_eq!(raw.status().await, 101);
}

#[tokio::test]
async fn a_bad_or_too_long_frame_length_fails_the_connection_before_the_mask_key() {
    let hub = HubProcess::start();
    // 64-bit length with the most significant bit set, and no mask key yet.
    let mut live = RawLive::connect(hub.addr).await;
    live.send_bytes(&[0x81, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 1])
        .await;
    assert_eq!(live.frame().await.close_code(), Some(1002));
    assert_eq!(live.read().await, Read::Eof);

    // 4097 bytes declared in 16 bits: 1009 as soon as the length is known.
    let mut live = RawLive::connect(hub.addr).await;
    live.send_bytes(&[0x81, 0x80 | 126, 0x10, 0x01]).await;
    assert_eq!(live.frame().await.close_code(), Some(1009));
    assert_eq!(live.read().await, Read::Eof);

    // 5000 bytes declared in 64 bits, likewise.
    let mut live = RawLive::connect(hub.addr).await;
    let mut header = vec![0x81, 0x80 | 127];
    header.extend_from_slice(&5000u64.to_be_bytes());
    live.send_bytes(&header).await;
    assert_eq!(live.frame().await.close_code(), Some(1009));
    assert_eq!(live.read().await, Read::Eof);

    // A continuation frame that takes the message over 4 KiB, likewise.
    let mut live = RawLive::connect(hub.addr).await;
    live.send_frame(false, 0x1, &[b' '; 3000]).await;
    live.send_bytes(&[0x80, 0x80 | 126, 0x07, 0xd0]).await;
    assert_eq!(live.frame().await.close_code(), Some(1009));
    assert_eq!(live.read().await, Read::Eof);
}

#[tokio::test]
async fn a_text_frame_that_is_not_utf8_closes_with_1007() {
    let hub = HubProcess::start();
    let mut live = RawLive::connect(hub.addr).await;
    live.send_frame(true, 0x1, b"{\"action\":\"subscribe\",\xff}")
        .await;
    assert_eq!(live.frame().await.close_code(), Some(1007));
    assert_eq!(live.read().await, Read::Eof);
}

#[tokio::test]
async fn subscribers_get_session_closed_alone_at_the_close_as_from_the_seed() {
    let hub = HubProcess::start();
    let api = hub.api();
    let id = api.create_titled("Seed close").await;
    let mut live = Live::connect(&hub.live_url()).await;
    live.subscribe(&id).await;
    assert_eq!(live.next_json().await["event"], "vote_update");
    api.vote(&id, "a", "for").await;
    assert_eq!(live.until_total(1).await["seq"], 1);

    let (status, closed) = api.admin(&format!("/api/sessions/{id}/close"), None).await;
    assert_eq!(status, 200);
    let next = live.next_json().await;
    assert_eq!(
        next["event"], "session_closed",
        "the message after the last vote_update is the close: {next}"
    );
    assert_eq!(next["seq"], closed["seq"]);
    assert_eq!(
        (&next["votes_for"], &next["votes_total"]),
        (&json!(1), &json!(1))
    );
    live.expect_silence(Duration::from_millis(300)).await;

    // A broadcast of a closed session: session_closed alone, once.
    let (status, _) = api
        .admin(&format!("/api/sessions/{id}/broadcast"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(live.next_json().await["event"], "session_closed");
    live.expect_silence(Duration::from_millis(300)).await;

    // A subscriber who comes after the close still gets the whole snapshot.
    let mut late = Live::connect(&hub.live_url()).await;
    late.subscribe(&id).await;
    assert_eq!(late.next_json().await["event"], "vote_update");
    assert_eq!(late.next_json().await["event"], "session_closed");
    late.expect_silence(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn a_nuanced_no_opinion_counts_half_each_way_under_the_majority_rule() {
    let hub = HubProcess::start();
    let api = hub.api();
    let s = api
        .create(json!({"title": "Nuanced", "scale": "nuanced", "rule": {"kind": "majority"}}))
        .await;
    let id = s["id"].as_str().expect("id");
    for (voter, grade) in [("a", 3), ("b", 2), ("c", 0), ("d", -1)] {
        let (status, _) = api
            .send(
                "POST",
                &format!("/api/sessions/{id}/votes"),
                Some(json!({"voter": voter, "grade": grade})),
                None,
            )
            .await;
        assert_eq!(status, 200);
    }
    // for = 2.5, against = 1.5: adopted, and the live figures agree.
    let s = api.session(id).await;
    assert_eq!(s["needed"], json!(2.5));
    assert_eq!(s["adopted_if_closed_now"], true);
    let (_, closed) = api.admin(&format!("/api/sessions/{id}/close"), None).await;
    assert_eq!(closed["result"], "adopted");
}

#[tokio::test]
async fn nothing_follows_a_close_frame_while_states_stream() {
    let hub = HubProcess::start();
    let api = hub.api();
    let id = api.create_titled("Streaming").await;
    // Ballots keep coming from outside, so that the fan-out has a state to
    // write at any moment.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut voters = Vec::new();
    for client in 0..16 {
        let (api, id, stop) = (api.clone(), id.clone(), stop.clone());
        voters.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && i < 100_000 {
                api.vote(&id, &format!("c{client}-{i}"), "for").await;
                i += 1;
            }
        }));
    }
    for round in 0..200 {
        let mut live = RawLive::connect(hub.addr).await;
        live.send_text(&json!({"action": "subscribe", "session_id": id}).to_string())
            .await;
        assert_eq!(live.json().await["event"], "subscribed");
        assert_eq!(live.json().await["event"], "vote_update");
        if round % 2 == 0 {
            // The hub closes (1009) …
            live.send_bytes(&[0x81, 0x80 | 126, 0x20, 0x00]).await;
        } else {
            // … or the client does.
            live.send_frame(true, 0x8, &1000u16.to_be_bytes()).await;
        }
        loop {
            let frame = live.frame().await;
            match frame.opcode {
                0x1 | 0x9 => continue,
                0x8 => break,
                other => panic!("unexpected opcode {other}"),
            }
        }
        assert_eq!(
            live.read().await,
            Read::Eof,
            "round {round}: a frame came after the Close frame"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for v in voters {
        v.await.expect("voter");
    }
}
