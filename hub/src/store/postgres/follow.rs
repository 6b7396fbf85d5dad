//! Following the other nodes: a connection of its own that `LISTEN`s on
//! the channel every commit notifies (session id and seq), and has this
//! node's writer read each changed session and show it to its own
//! subscribers — latest wins, so notifications that pile up while the
//! writer is busy are merged. When the connection is lost, the node says
//! so on `/health` (503) until it has listened again and read every
//! session afresh (a notification sent while it was away is lost).

use std::collections::BTreeSet;
use std::str::FromStr;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_postgres::AsyncMessage;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{CHANNEL, url_without_password};
use crate::core::Hub;

/// How long a node waits before listening again after losing the
/// database.
const RETRY: Duration = Duration::from_millis(500);
/// Notifications waiting to be read at most; more are merged (one read of
/// every session), never queued without bound.
const PENDING: usize = 4096;

/// Follows the database at `url` for `hub` until `shutdown`.
pub async fn follow(url: String, hub: Hub, shutdown: CancellationToken) {
    let mut config = match tokio_postgres::Config::from_str(&url) {
        Ok(config) => config,
        Err(e) => {
            tracing::error!(url = %url_without_password(&url), error = %e, "cannot follow the other nodes");
            return;
        }
    };
    super::bound(&mut config);
    config.application_name("votehub-follow");
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            ended = listen(&config, &hub) => {
                hub.set_following(false);
                if let Err(e) = ended {
                    tracing::warn!(error = %e, "lost the database's notifications; this node reports unhealthy until it has caught up");
                }
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(RETRY) => {}
        }
    }
}

/// Listens until the connection ends: first `LISTEN`, then every session
/// read afresh (what was missed), then each notified session.
async fn listen(config: &tokio_postgres::Config, hub: &Hub) -> Result<(), String> {
    let (client, mut connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|e| e.to_string())?;
    let (tx, mut rx) = mpsc::channel::<Option<(Uuid, u64)>>(PENDING);
    // Set when a notification found the queue full: everything is read
    // again once the queue is drained.
    let overflow = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let overflowed = overflow.clone();
    // The connection's messages: notifications go to the loop below; its
    // end ends the loop.
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    let parsed = n
                        .payload()
                        .split_once(' ')
                        .and_then(|(id, seq)| Some((Uuid::parse_str(id).ok()?, seq.parse().ok()?)));
                    // A full queue: read everything once instead.
                    if tx.try_send(parsed).is_err() {
                        overflowed.store(true, std::sync::atomic::Ordering::Release);
                    }
                }
                Ok(_) => {}
                Err(e) => return e.to_string(),
            }
        }
        "the database closed the connection".to_owned()
    });
    let result = async {
        client
            .batch_execute(&format!("LISTEN {CHANNEL}"))
            .await
            .map_err(|e| e.to_string())?;
        hub.follow(Vec::new()).await.map_err(|e| e.to_string())?;
        hub.set_following(true);
        tracing::info!("following the other nodes");
        while let Some(first) = rx.recv().await {
            // Everything that came meanwhile, in one read.
            let mut all = first.is_none();
            let mut ids = BTreeSet::new();
            for told in std::iter::once(first).chain(std::iter::from_fn(|| rx.try_recv().ok())) {
                match told {
                    Some((id, seq)) if !seen_past(hub, id, seq) => {
                        ids.insert(id);
                    }
                    Some(_) => {}
                    None => all = true,
                }
            }
            if !all && ids.is_empty() && !overflow.load(std::sync::atomic::Ordering::Acquire) {
                continue;
            }
            all |= overflow.swap(false, std::sync::atomic::Ordering::AcqRel);
            let ids = if all {
                Vec::new()
            } else {
                ids.into_iter().collect()
            };
            hub.follow(ids).await.map_err(|e| e.to_string())?;
        }
        Ok(())
    }
    .await;
    driver.abort();
    match (result, driver.await) {
        (Err(e), _) => Err(e),
        (Ok(()), Ok(reason)) => Err(reason),
        (Ok(()), Err(_)) => Err("the connection ended".into()),
    }
}

/// Whether this hub already shows a later state of the session than the
/// one a notification announces: a commit of its own came after that one
/// (`seq` orders a session's commits across nodes, under its row lock), so
/// the store holds nothing newer of it to read. Seq 0 announces a
/// deletion: never seen past.
fn seen_past(hub: &Hub, id: Uuid, seq: u64) -> bool {
    seq > 0 && hub.published(id).is_some_and(|p| p.state.seq > seq)
}
