//! The delay relay, for kernels without netem: packets routed into a TUN
//! device are read, held for their delay and written back, and the kernel
//! forwards them on. It moves packets, not streams — TCP's losses and
//! retransmissions stay between the hub and the phones, as over a venue's
//! Wi-Fi — and it keeps their order, as an access point's queue does (each
//! packet leaves at its own time or right after the one before it).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::mpsc::{RecvTimeoutError, TrySendError, sync_channel};
use std::time::{Duration, Instant};

use rand::Rng;

/// Packets held at once; beyond, new ones are dropped, as a full queue
/// does.
pub const QUEUE: usize = 20_000;
/// Largest packet read (the links' MTU is 1500).
const MTU: usize = 65_536;

/// Runs until `until`. Prints `ready` once the device exists.
pub fn run(dev: &str, delay: Duration, jitter: Duration, until: Instant) -> Result<(), String> {
    let tun = tun_rs::DeviceBuilder::new()
        .name(dev)
        .build_sync()
        .map_err(|e| format!("TUN device {dev}: {e}"))?;
    let tun = Arc::new(tun);
    println!("ready");
    let (tx, rx) = sync_channel::<(Instant, Vec<u8>)>(QUEUE);
    {
        let tun = tun.clone();
        // Blocked in `recv` for good: it ends with the process, at `until`.
        std::thread::Builder::new()
            .name("relay-in".into())
            .spawn(move || {
                let mut buf = vec![0u8; MTU];
                let mut rng = rand::rng();
                loop {
                    let Ok(n) = tun.recv(&mut buf) else { return };
                    let spread = jitter.as_micros() as i64;
                    let offset = if spread > 0 {
                        rng.random_range(-spread..=spread)
                    } else {
                        0
                    };
                    let wait =
                        Duration::from_micros((delay.as_micros() as i64 + offset).max(0) as u64);
                    match tx.try_send((Instant::now() + wait, buf[..n].to_vec())) {
                        Ok(()) | Err(TrySendError::Full(_)) => {}
                        Err(TrySendError::Disconnected(_)) => return,
                    }
                }
            })
            .map_err(|e| e.to_string())?;
    }
    let mut queue: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
    let mut last = Instant::now();
    while Instant::now() < until {
        let now = Instant::now();
        while queue.front().is_some_and(|(due, _)| *due <= now) {
            if let Some((_, packet)) = queue.pop_front() {
                // A packet the kernel refuses is a packet lost.
                let _ = tun.send(&packet);
            }
        }
        let wait = queue
            .front()
            .map(|(due, _)| due.saturating_duration_since(now))
            .unwrap_or(Duration::from_millis(100))
            .min(until.saturating_duration_since(now));
        match rx.recv_timeout(wait) {
            Ok((due, packet)) => {
                // Never before the packet ahead of it.
                let due = due.max(last);
                last = due;
                if queue.len() < QUEUE {
                    queue.push_back((due, packet));
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    Ok(())
}
