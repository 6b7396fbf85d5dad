//! PROTOCOL.md §3 over a real socket: every row of the seed's table, what
//! votehub adds, and the bad inputs that crash the seed.

mod common;

use std::time::Duration;

use common::{HubProcess, InProcess, Live};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Bytes, Message};

const ID: &str = "6f1c1f5e-8a43-4c4e-9a51-3d0f5f9f2a10";

/// Asks for `/live` on a bare TCP stream, for clients that then misbehave
/// in ways a WebSocket library would not let them.
async fn raw_handshake(stream: &mut tokio::net::TcpStream, host: std::net::SocketAddr) {
    let handshake = format!(
        "GET /live HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream
        .write_all(handshake.as_bytes())
        .await
        .expect("handshake");
}

#[tokio::test]
async fn seed_table_row_by_row_with_codes() {
    let hub = HubProcess::start();
    let mut live = Live::connect(&hub.live_url()).await;
    let cases = [
        (
            "not json".to_owned(),
            json!({"error": "JSON invalide", "code": "invalid_json"}),
        ),
        (
            r#"{"action":"subscribe"}"#.to_owned(),
            json!({"error": "Champs 'action' et 'session_id' requis", "code": "missing_fields"}),
        ),
        (
            format!(r#"{{"session_id":"{ID}"}}"#),
            json!({"error": "Champs 'action' et 'session_id' requis", "code": "missing_fields"}),
        ),
        (
            r#"{"action":"subscribe","session_id":"12"}"#.to_owned(),
            json!({"error": "session_id invalide", "code": "invalid_session_id"}),
        ),
        (
            format!(r#"{{"action":"vote","session_id":"{ID}"}}"#),
            json!({"error": "Action inconnue: vote", "code": "unknown_action"}),
        ),
        (
            format!(r#"{{"action":"unsubscribe","session_id":"{ID}"}}"#),
            json!({"event": "unsubscribed", "session_id": ID}),
        ),
        (
            format!(r#"{{"action":"subscribe","session_id":"{ID}"}}"#),
            json!({"event": "subscribed", "session_id": ID}),
        ),
        // Again, without a second registration.
        (
            format!(
                r#"{{"action":"subscribe","session_id":"{}"}}"#,
                ID.to_uppercase()
            ),
            json!({"event": "subscribed", "session_id": ID}),
        ),
        (
            format!(r#"{{"action":"unsubscribe","session_id":"{ID}"}}"#),
            json!({"event": "unsubscribed", "session_id": ID}),
        ),
    ];
    for (sent, expected) in cases {
        live.send(&sent).await;
        assert_eq!(live.next_json().await, expected, "answer to {sent}");
    }
}

#[tokio::test]
async fn what_crashes_the_seed_is_answered_and_the_connection_stays() {
    let hub = HubProcess::start();
    let api = hub.api();
    let id = api.create_titled("Still here").await;
    let mut live = Live::connect(&hub.live_url()).await;
    let missing =
        json!({"error": "Champs 'action' et 'session_id' requis", "code": "missing_fields"});
    let invalid_id = json!({"error": "session_id invalide", "code": "invalid_session_id"});
    let invalid_json = json!({"error": "JSON invalide", "code": "invalid_json"});
    let deep = "[".repeat(50_000 / 2);
    let cases: Vec<(String, serde_json::Value)> = vec![
        ("[]".into(), missing.clone()),
        ("123".into(), missing.clone()),
        ("null".into(), missing.clone()),
        (r#""subscribe""#.into(), missing.clone()),
        (
            r#"{"action":"subscribe","session_id":123}"#.into(),
            invalid_id.clone(),
        ),
        (
            r#"{"action":"subscribe","session_id":{"a":1}}"#.into(),
            invalid_id.clone(),
        ),
        (
            r#"{"action":"subscribe","session_id":true}"#.into(),
            invalid_id.clone(),
        ),
        // Arabic-Indic digits: Python's int() takes them, a UUID does not.
        (
            r#"{"action":"subscribe","session_id":"٠٠٠٠٠٠٠٠٠٠٠٠٠٠٠٠٠٠٠٠٠٠٠٠٠٠٠٠٠٠٠٠"}"#.into(),
            invalid_id.clone(),
        ),
        (
            r#"{"action":1e999999,"session_id":"x"}"#.into(),
            invalid_json.clone(),
        ),
        (
            format!(r#"{{"action":{}"#, &deep[..1000]),
            invalid_json.clone(),
        ),
        (
            format!(
                r#"{{"action":"subscribe","session_id":"{id}","n":123456789012345678901234567890e400}}"#
            ),
            json!({"event": "subscribed", "session_id": id}),
        ),
    ];
    for (sent, expected) in cases {
        live.send(&sent).await;
        let reply = live.next_json().await;
        assert_eq!(reply, expected, "answer to {}", &sent[..sent.len().min(80)]);
    }
    // The subscription above delivers the tally.
    let update = live.next_json().await;
    assert_eq!(update["event"], "vote_update");

    live.ws
        .send(Message::Binary(Bytes::from_static(&[0, 159, 146, 150])))
        .await
        .expect("send");
    let reply = live.next_json().await;
    assert_eq!(reply["code"], "binary_not_supported");
    assert!(reply["error"].is_string());

    // Still the same connection, still subscribed: a vote reaches it.
    let (status, _) = api.vote(&id, "after-the-noise", "for").await;
    assert_eq!(status, 200);
    let update = live.until_total(1).await;
    assert_eq!(update["votes_for"], 1);
}

#[tokio::test]
async fn subscribing_sends_the_current_state_and_every_change() {
    let hub = HubProcess::start();
    let api = hub.api();
    let id = api.create_titled("Budget").await;
    api.vote(&id, "a", "for").await;
    api.vote(&id, "b", "against").await;
    api.vote(&id, "c", "abstain").await;

    let mut live = Live::connect(&hub.live_url()).await;
    live.subscribe(&id).await;
    let current = live.next_json().await;
    assert_eq!(current["event"], "vote_update");
    assert_eq!(current["session_id"], id.as_str());
    assert_eq!(
        (
            &current["votes_for"],
            &current["votes_against"],
            &current["votes_abstain"],
            &current["votes_total"]
        ),
        (&json!(1), &json!(1), &json!(1), &json!(3))
    );
    assert_eq!(current["seq"], 3);

    let (_, receipt) = api.vote(&id, "d", "for").await;
    let update = live.next_json().await;
    assert_eq!(update["votes_total"], 4);
    assert_eq!(
        update["seq"], receipt["seq"],
        "same seq in the answer and on /live"
    );

    // A re-vote changes the split, not the total.
    api.vote(&id, "d", "against").await;
    let update = live.next_json().await;
    assert_eq!(
        (
            &update["votes_for"],
            &update["votes_against"],
            &update["votes_total"]
        ),
        (&json!(1), &json!(2), &json!(4))
    );

    let (status, closed) = api.admin(&format!("/api/sessions/{id}/close"), None).await;
    assert_eq!(status, 200);
    assert_eq!(closed["result"], "rejected");
    // As from the seed: `session_closed` alone, carrying every count.
    let closed_event = live.next_json().await;
    assert_eq!(closed_event["event"], "session_closed");
    assert_eq!(closed_event["result"], "rejected");
    assert_eq!(closed_event["votes_total"], 4);
    assert_eq!(closed_event["seq"], closed["seq"]);

    // Closing again broadcasts nothing.
    let (status, again) = api.admin(&format!("/api/sessions/{id}/close"), None).await;
    assert_eq!(status, 200);
    assert_eq!(again["result"], "rejected");
    live.expect_silence(Duration::from_millis(300)).await;

    // A late joiner gets the tally and the close at once.
    let mut late = Live::connect(&hub.live_url()).await;
    late.subscribe(&id).await;
    assert_eq!(late.next_json().await["event"], "vote_update");
    let closed_event = late.next_json().await;
    assert_eq!(closed_event["event"], "session_closed");
    assert_eq!(closed_event["result"], "rejected");

    // Broadcast pushes the state again to every subscriber: for a closed
    // session, its `session_closed`.
    let (status, _) = api
        .admin(&format!("/api/sessions/{id}/broadcast"), None)
        .await;
    assert_eq!(status, 200);
    for client in [&mut live, &mut late] {
        assert_eq!(client.next_json().await["event"], "session_closed");
    }

    // After unsubscribing, nothing more arrives.
    late.send_json(json!({"action": "unsubscribe", "session_id": id}))
        .await;
    assert_eq!(late.next_json().await["event"], "unsubscribed");
    api.admin(&format!("/api/sessions/{id}/broadcast"), None)
        .await;
    assert_eq!(live.next_json().await["event"], "session_closed");
    late.expect_silence(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn subscriber_count_follows_connections() {
    let hub = HubProcess::start();
    let api = hub.api();
    let id = api.create_titled("Count").await;
    let mut a = Live::connect(&hub.live_url()).await;
    let mut b = Live::connect(&hub.live_url()).await;
    a.subscribe(&id).await;
    b.subscribe(&id).await;
    a.next_json().await;
    b.next_json().await;
    assert_eq!(api.session(&id).await["subscribers"], 2);
    drop(a);
    // The server notices the close shortly after.
    let mut n = 2;
    for _ in 0..100 {
        n = api.session(&id).await["subscribers"]
            .as_u64()
            .expect("count");
        if n == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(n, 1);
}

#[tokio::test]
async fn a_message_over_4_kib_closes_with_1009_and_is_not_acted_on() {
    let hub = HubProcess::start();
    let api = hub.api();
    let id = api.create_titled("Big").await;
    let mut live = Live::connect(&hub.live_url()).await;
    let padding = "x".repeat(4100);
    live.send_json(json!({"action": "subscribe", "session_id": id, "padding": padding}))
        .await;
    match live.next_message().await {
        Some(Message::Close(Some(frame))) => assert_eq!(frame.code, CloseCode::Size),
        other => panic!("expected close 1009, got {other:?}"),
    }
    assert_eq!(api.session(&id).await["subscribers"], 0);

    // Exactly 4 KiB is fine.
    let mut live = Live::connect(&hub.live_url()).await;
    let base = json!({"action": "subscribe", "session_id": id, "p": ""}).to_string();
    let msg = json!({"action": "subscribe", "session_id": id, "p": "y".repeat(4096 - base.len())})
        .to_string();
    assert_eq!(msg.len(), 4096);
    live.send(&msg).await;
    assert_eq!(live.next_json().await["event"], "subscribed");
}

#[tokio::test]
async fn origin_is_checked_for_browsers_only() {
    let hub =
        InProcess::start(|c| c.live.allow_origins = vec!["https://decision.example".into()]).await;
    let url = hub.live_url();
    let with_origin = |origin: Option<String>| {
        let mut req = url.as_str().into_client_request().expect("request");
        if let Some(o) = origin {
            req.headers_mut()
                .insert("origin", o.parse().expect("header"));
        }
        req
    };
    let refused =
        tokio_tungstenite::connect_async(with_origin(Some("http://evil.example".into()))).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 403),
        other => panic!("expected 403, got {other:?}"),
    }
    for origin in [
        None,
        Some("https://decision.example".to_owned()),
        Some(format!("http://{}", hub.addr)),
    ] {
        let (mut ws, _) = tokio_tungstenite::connect_async(with_origin(origin.clone()))
            .await
            .unwrap_or_else(|e| panic!("{origin:?} refused: {e}"));
        ws.send(Message::text("x")).await.expect("send");
        assert!(ws.next().await.is_some());
    }
}

#[tokio::test]
async fn idle_connections_are_pinged_and_the_silent_dropped() {
    let hub = InProcess::start(|c| c.live.ping_interval = Duration::from_millis(200)).await;
    // A well-behaved client (tungstenite answers pings) stays connected.
    let mut live = Live::connect(&hub.live_url()).await;
    let mut pings = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(1500);
    while tokio::time::Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_millis(100), live.ws.next()).await {
            Ok(Some(Ok(Message::Ping(_)))) => pings += 1,
            Ok(Some(Ok(m))) => panic!("unexpected {m:?}"),
            Ok(_) => panic!("a responsive client was dropped"),
            Err(_) => {}
        }
    }
    assert!(pings >= 2, "saw {pings} pings");
    live.send("x").await;
    assert_eq!(live.next_json().await["code"], "invalid_json");

    // A client that completes the handshake and then never answers is dropped.
    let mut raw = tokio::net::TcpStream::connect(hub.addr).await.expect("tcp");
    raw_handshake(&mut raw, hub.addr).await;
    let mut buf = vec![0u8; 4096];
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match raw.read(&mut buf).await {
                Ok(0) | Err(_) => return true,
                Ok(_) => {} // 101, then pings we do not answer
            }
        }
    })
    .await;
    assert_eq!(closed, Ok(true), "the silent client was not dropped");
}

#[tokio::test]
async fn a_stuck_subscriber_neither_delays_others_nor_stays_forever() {
    // The stuck client is given 3 s before it is dropped: were the others
    // to wait for it, each of their updates would be late by that much.
    let hub = InProcess::start(|c| {
        c.live.send_timeout = Duration::from_secs(3);
        c.send_buffer = 4096;
    })
    .await;
    let api = hub.api();
    let id = api.create_titled("Stuck").await;

    // Subscribes, then never reads again.
    let mut stuck = tokio::net::TcpStream::connect(hub.addr).await.expect("tcp");
    socket2::SockRef::from(&stuck)
        .set_recv_buffer_size(4096)
        .expect("rcvbuf");
    raw_handshake(&mut stuck, hub.addr).await;
    let sub = format!(r#"{{"action":"subscribe","session_id":"{id}"}}"#);
    let mut frame = vec![0x81, 0x80 | sub.len() as u8, 0, 0, 0, 0];
    frame.extend_from_slice(sub.as_bytes());
    stuck.write_all(&frame).await.expect("subscribe");

    let mut reader = Live::connect(&hub.live_url()).await;
    reader.subscribe(&id).await;
    reader.next_json().await;

    // Ballot after ballot, each seen by the reader before the next: the
    // tally frames soon overflow the stuck client's buffers many times
    // over, and the reader's delay from each answer to its update stays
    // far below the stuck client's 3 s.
    let n = 300;
    let mut slowest = Duration::ZERO;
    for k in 1..=n {
        let (status, _) = api.vote(&id, &format!("v{k}"), "for").await;
        assert_eq!(status, 200);
        let answered = tokio::time::Instant::now();
        reader.until_total(k).await;
        slowest = slowest.max(answered.elapsed());
    }
    assert!(
        slowest < Duration::from_secs(1),
        "a reader waited {slowest:?} for an update while another subscriber was stuck"
    );

    // The stuck client is dropped once its writes time out.
    let mut gone = false;
    for _ in 0..200 {
        if api.session(&id).await["subscribers"] == 1 {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "the stuck subscriber is still registered");
    drop(stuck);
}

#[tokio::test]
async fn shutdown_closes_live_connections_with_1001() {
    let mut hub = HubProcess::start();
    let id = hub.api().create_titled("Bye").await;
    let mut live = Live::connect(&hub.live_url()).await;
    live.subscribe(&id).await;
    live.next_json().await;
    let status = hub.terminate();
    match live.next_message().await {
        Some(Message::Close(Some(frame))) => assert_eq!(frame.code, CloseCode::Away),
        other => panic!("expected close 1001, got {other:?}"),
    }
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn the_nil_uuid_follows_the_list_of_sessions() {
    let hub = HubProcess::start();
    let api = hub.api();
    let mut live = Live::connect(&hub.live_url()).await;
    let nil = "00000000-0000-0000-0000-000000000000";
    live.subscribe(nil).await;
    assert_eq!(live.next_json().await, json!({"event": "sessions_changed"}));
    let id = api.create_titled("New").await;
    assert_eq!(live.next_json().await, json!({"event": "sessions_changed"}));
    // Ballots do not change the list…
    api.vote(&id, "a", "for").await;
    live.expect_silence(Duration::from_millis(300)).await;
    // …a close does.
    api.admin(&format!("/api/sessions/{id}/close"), None).await;
    assert_eq!(live.next_json().await, json!({"event": "sessions_changed"}));
    live.send_json(json!({"action": "unsubscribe", "session_id": nil}))
        .await;
    assert_eq!(live.next_json().await["event"], "unsubscribed");
    api.create_titled("Unseen").await;
    live.expect_silence(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn client_pings_interleaved_with_updates_keep_the_stream_whole() {
    let hub = HubProcess::start();
    let api = hub.api();
    let id = api.create_titled("Pings").await;
    let mut live = Live::connect(&hub.live_url()).await;
    live.subscribe(&id).await;
    live.next_json().await;
    let mut pongs = 0;
    for i in 0..30u8 {
        // Each pong leaves through the connection's outlet while the
        // fan-out writes tallies to the same socket: frames must stay whole.
        live.ws
            .send(Message::Ping(Bytes::from(vec![i; 8])))
            .await
            .expect("ping");
        assert_eq!(api.vote(&id, &format!("v{i}"), "for").await.0, 200);
    }
    let mut last_total = 0;
    while last_total < 30 {
        match tokio::time::timeout(Duration::from_secs(10), live.ws.next()).await {
            Ok(Some(Ok(Message::Pong(p)))) => {
                assert_eq!(p.len(), 8);
                pongs += 1;
            }
            Ok(Some(Ok(Message::Text(t)))) => {
                let v: serde_json::Value = serde_json::from_str(t.as_str()).expect("a whole frame");
                last_total = v["votes_total"].as_u64().expect("total");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(last_total, 30);
    assert!(pongs > 0);
}

#[tokio::test]
async fn one_connection_follows_several_sessions_and_unfollows_one() {
    let hub = InProcess::start(|_| {}).await;
    let api = hub.api();
    let a = api.create_titled("A").await;
    let b = api.create_titled("B").await;
    let mut live = Live::connect(&hub.live_url()).await;
    live.subscribe(&a).await;
    assert_eq!(live.next_json().await["session_id"], a.as_str());
    live.subscribe(&b).await;
    assert_eq!(live.next_json().await["session_id"], b.as_str());

    api.vote(&a, "x", "for").await;
    let update = live.next_json().await;
    assert_eq!(
        (&update["session_id"], &update["votes_total"]),
        (&json!(a), &json!(1))
    );
    api.vote(&b, "x", "against").await;
    let update = live.next_json().await;
    assert_eq!(
        (&update["session_id"], &update["votes_against"]),
        (&json!(b), &json!(1))
    );

    live.send_json(json!({"action": "unsubscribe", "session_id": a}))
        .await;
    assert_eq!(live.next_json().await["event"], "unsubscribed");
    api.vote(&a, "y", "for").await;
    api.vote(&b, "y", "for").await;
    let update = live.next_json().await;
    assert_eq!(
        (&update["session_id"], &update["votes_total"]),
        (&json!(b), &json!(2))
    );
    live.expect_silence(Duration::from_millis(300)).await;
    assert_eq!(api.session(&a).await["subscribers"], 0);
    assert_eq!(api.session(&b).await["subscribers"], 1);
}

#[tokio::test]
async fn a_client_that_never_reads_its_answers_is_dropped() {
    let hub = InProcess::start(|c| {
        c.live.send_timeout = Duration::from_millis(500);
        c.send_buffer = 4096;
    })
    .await;
    let mut stream = tokio::net::TcpStream::connect(hub.addr).await.expect("tcp");
    socket2::SockRef::from(&stream)
        .set_recv_buffer_size(4096)
        .expect("rcvbuf");
    raw_handshake(&mut stream, hub.addr).await;
    let (mut reader, mut writer) = stream.into_split();
    let mut open = false;
    for _ in 0..100 {
        if hub.hub.connections() == 1 {
            open = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(open, "the live connection never opened");

    // Ten thousand requests (~800 KiB of answers), none of them read: once
    // its answers wait, the hub reads no more of them (they wait in the
    // kernel, not in the hub), and it drops the connection when nothing
    // moves for the send timeout.
    let request = format!(r#"{{"action":"unsubscribe","session_id":"{ID}"}}"#);
    let mut frame = vec![0x81, 0x80 | request.len() as u8, 0, 0, 0, 0];
    frame.extend_from_slice(request.as_bytes());
    let flood = tokio::spawn(async move {
        for _ in 0..10_000 {
            // Stalls when the kernel's buffers are full; fails once the
            // hub has closed.
            let write = writer.write_all(&frame);
            if !matches!(
                tokio::time::timeout(Duration::from_secs(10), write).await,
                Ok(Ok(()))
            ) {
                break;
            }
        }
    });
    let mut dropped = false;
    for _ in 0..100 {
        if hub.hub.connections() == 0 {
            dropped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(dropped, "a client that reads nothing is still connected");
    flood.await.expect("flood");
    // What was already in the kernel can still be read, then the end.
    let mut sink = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), reader.read_to_end(&mut sink)).await;
    assert!(read.is_ok(), "the hub did not close the socket");
}

/// votehub's addition for pages on a silent Wi-Fi: a `ping` is answered
/// `pong` at once, on a quiet session as on a busy one, and changes nothing.
#[tokio::test]
async fn a_ping_is_answered_pong_and_the_connection_carries_on() {
    let hub = HubProcess::start();
    let id = hub.api().create_titled("Quiet").await;
    let mut live = Live::connect(&hub.live_url()).await;
    live.subscribe(&id).await;
    live.until_total(0).await;
    live.send(r#"{"action":"ping"}"#).await;
    assert_eq!(live.next_json().await, json!({"event": "pong"}));
    // Still subscribed: the next ballot arrives.
    assert_eq!(hub.api().vote(&id, "ann", "for").await.0, 200);
    let update = live.until_total(1).await;
    assert_eq!(update["votes_for"], 1);
}
