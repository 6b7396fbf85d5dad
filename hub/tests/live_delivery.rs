//! How tallies reach screens (PROTOCOL.md §3, "tallies are state, not a
//! log"): a slow reader gets the newest, not a queue of old ones, and a
//! burst of ballots reaches a screen at the fan-out's pace.

mod common;

use std::time::Duration;

use common::{InProcess, Live};

#[tokio::test]
async fn a_slow_reader_gets_the_newest_tally_not_a_queue_of_old_ones() {
    let hub = InProcess::start(|c| {
        c.live.send_timeout = Duration::from_secs(20);
        c.send_buffer = 4096;
    })
    .await;
    let api = hub.api();
    let id = api.create_titled("Slow").await;

    let stream = tokio::net::TcpStream::connect(hub.addr).await.expect("tcp");
    socket2::SockRef::from(&stream)
        .set_recv_buffer_size(4096)
        .expect("rcvbuf");
    let stream = tokio_tungstenite::MaybeTlsStream::Plain(stream);
    let (ws, _) = tokio_tungstenite::client_async(hub.live_url(), stream)
        .await
        .expect("handshake");
    let mut slow = Live { ws };
    slow.subscribe(&id).await;
    assert_eq!(slow.next_json().await["votes_total"], 0);

    // The slow reader reads nothing while far more tallies are published
    // than its socket and the server's can hold.
    let n: u64 = 1200;
    api.votes_from_clients(&id, n, 8).await;

    // Then it reads: the tallies only ever grow, end on the exact one, and
    // are far fewer than the ballots (what queued in the kernel, then the
    // newest).
    let mut received = 0;
    let mut last = 0;
    loop {
        let update = slow.next_json().await;
        assert_eq!(update["event"], "vote_update");
        let total = update["votes_total"].as_u64().expect("total");
        assert!(
            total >= last,
            "an older tally ({total}) after a newer ({last})"
        );
        last = total;
        received += 1;
        if total == n {
            break;
        }
    }
    assert!(
        received < n / 4,
        "{received} tallies for {n} ballots: stale ones queued"
    );
    slow.expect_silence(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn a_burst_of_ballots_reaches_a_screen_at_most_once_per_pace() {
    use votehub::live::fanout::{BURST, PACE};
    let hub = InProcess::start(|_| {}).await;
    let api = hub.api();
    let id = api.create_titled("Burst").await;
    let mut screen = Live::connect(&hub.live_url()).await;
    screen.subscribe(&id).await;
    assert_eq!(screen.next_json().await["votes_total"], 0);

    // A reader that takes every frame as it comes, noting when.
    let n: u64 = 2000;
    let reader = tokio::spawn(async move {
        let mut seen = Vec::new();
        loop {
            let update = screen.next_json().await;
            let total = update["votes_total"].as_u64().expect("total");
            seen.push((tokio::time::Instant::now(), total));
            if total == n {
                return seen;
            }
        }
    });
    let began = tokio::time::Instant::now();
    api.votes_from_clients(&id, n, 16).await;
    let seen = reader.await.expect("reader");

    // Newest last and only ever growing, and at the fan-out's pace:
    // sweeps of one session keep a pace, so from the first ballot to the
    // last state seen the screen got at most one state per PACE, plus a
    // burst. (Measured from outside: when frames arrive depends on how
    // busy this test's own runtime is, when they were sent does not.)
    assert!(seen.windows(2).all(|w| w[0].1 <= w[1].1), "{seen:?}");
    let span = seen[seen.len() - 1].0 - began;
    let allowed = (span.as_micros() / PACE.as_micros()) as usize + BURST as usize + 1;
    assert!(
        seen.len() <= allowed,
        "{} states in {span:?}: more than one per {PACE:?}",
        seen.len(),
    );
}
