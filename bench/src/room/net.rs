//! The room's network: three namespaces and the links between them, built
//! with iproute2, nftables and tc, and removed when the `Room` goes.
//!
//! ```text
//!  this machine ── control link (unshaped) ── hub ── link ── ap ── link ── room
//!  10.216.R.129                       10.216.R.130|.2   .1|  |.65     .66
//! ```
//!
//! `ap` is the venue's access point: it forwards between the hub and the
//! phones, and everything that makes the venue's Wi-Fi hard happens there,
//! to packets in both directions: loss (nftables `numgen random`), a rate
//! (tc tbf), silent cuts (nftables drops everything) and delay with jitter
//! (netem where the kernel has it, otherwise the TUN relay). The organiser's
//! link to the hub stays clean, as the laptop's own screen is.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde::Serialize;

/// What the link between the hub and the phones does to packets.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Shape {
    /// Share of packets lost, each way, in percent (0–100, 0.1 steps).
    pub loss_pct: f64,
    /// Delay of every packet, each way, in milliseconds.
    pub delay_ms: u64,
    /// The delay varies by up to this much either side (uniformly).
    pub jitter_ms: u64,
    /// Rate each way in kbit/s (0: unlimited).
    pub rate_kbit: u64,
}

/// How packets are delayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Delayer {
    None,
    Netem,
    /// Packets routed through a TUN device and written back late by
    /// `votehub-room relay` (this kernel has no netem).
    Relay,
}

/// Where everything is, as printed for the test or the script that asked.
#[derive(Debug, Clone, Serialize)]
pub struct Layout {
    pub hub_ns: String,
    pub ap_ns: String,
    pub room_ns: String,
    /// The hub's address as the phones reach it (through the access point).
    pub hub_addr: Ipv4Addr,
    /// The hub's address on the organiser's clean link from this machine.
    pub control_addr: Ipv4Addr,
    /// The phones' address.
    pub room_addr: Ipv4Addr,
    pub delayer: Delayer,
    pub shape: Shape,
}

/// A room built on this machine. Dropping it removes the namespaces (and
/// with them every link, rule and qdisc) and stops the relay.
pub struct Room {
    pub layout: Layout,
    relay: Option<Child>,
    control_if: String,
}

/// Namespaces of rooms start with this; the owner's pid follows, so that a
/// room left behind by a killed run is recognised and removed.
const PREFIX: &str = "vhroom-";
const TUN: &str = "vhdelay0";
const TABLE: &str = "vhroom";

/// Runs a command; its stderr becomes the error.
pub fn sh(cmd: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{cmd}: {e} (is it installed?)"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn in_ns(ns: &str, cmd: &str, args: &[&str]) -> Result<(), String> {
    let mut all = vec!["netns", "exec", ns, cmd];
    all.extend_from_slice(args);
    sh("ip", &all)
}

fn namespaces() -> Vec<String> {
    Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter_map(|l| l.split_whitespace().next())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Kills every process still inside `ns` (a hub, phones, a browser), then
/// removes it: a namespace's name can go while its processes live on, and
/// with them its links and addresses.
fn remove_ns(ns: &str) -> bool {
    if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let _ = sh("kill", &["-KILL", pid]);
        }
    }
    sh("ip", &["netns", "del", ns]).is_ok()
}

/// Removes the namespaces of rooms whose owner is gone (a run killed before
/// it could clean up), with what still runs in them (their links go with
/// them). Returns how many namespaces went.
pub fn remove_stale() -> usize {
    let mut removed = 0;
    for ns in namespaces() {
        let Some(rest) = ns.strip_prefix(PREFIX) else {
            continue;
        };
        // vhroom-<id>-<pid>-<role>
        let pid = rest.split('-').nth(1).and_then(|p| p.parse::<u32>().ok());
        let alive = pid.is_some_and(|p| PathBuf::from(format!("/proc/{p}")).exists());
        if !alive && remove_ns(&ns) {
            removed += 1;
        }
    }
    removed
}

impl Room {
    /// Builds a room and shapes its link. Fails, removing whatever was
    /// made, when namespaces cannot be made here (not root, no iproute2 or
    /// nftables): the caller must say so rather than pass.
    pub fn build(
        shape: Shape,
        relay_exe: &std::path::Path,
        max_seconds: u64,
    ) -> Result<Room, String> {
        remove_stale();
        let taken = namespaces();
        let pid = std::process::id();
        let id = (1..=250u8)
            .map(|k| (pid as usize + k as usize) % 250 + 1)
            .map(|k| k as u8)
            .find(|k| {
                !taken
                    .iter()
                    .any(|n| n.starts_with(&format!("{PREFIX}{k}-")))
            })
            .ok_or("no free room number (250 rooms exist)")?;
        let name = |role: &str| format!("{PREFIX}{id}-{pid}-{role}");
        let addr = |last: u8| Ipv4Addr::new(10, 216, id, last);
        let mut room = Room {
            layout: Layout {
                hub_ns: name("hub"),
                ap_ns: name("ap"),
                room_ns: name("room"),
                hub_addr: addr(2),
                control_addr: addr(130),
                room_addr: addr(66),
                delayer: Delayer::None,
                shape,
            },
            relay: None,
            control_if: format!("vhc{id}-{}", pid % 10_000),
        };
        // From here on, a failure drops `room`, which removes what was made.
        room.wire(id)?;
        room.shape(shape, relay_exe, max_seconds)?;
        Ok(room)
    }

    fn wire(&mut self, id: u8) -> Result<(), String> {
        let l = &self.layout;
        let (hub, ap, room) = (l.hub_ns.as_str(), l.ap_ns.as_str(), l.room_ns.as_str());
        for ns in [hub, ap, room] {
            sh("ip", &["netns", "add", ns])?;
            // The room speaks IPv4. Without IPv6, no address settles (DAD)
            // after the room is up: Chromium takes each such change for a
            // new network and aborts what it is loading
            // (net::ERR_NETWORK_CHANGED), a phone's browser would not see.
            in_ns(
                ns,
                "sysctl",
                &[
                    "-qw",
                    "net.ipv6.conf.all.disable_ipv6=1",
                    "net.ipv6.conf.default.disable_ipv6=1",
                ],
            )?;
            in_ns(ns, "ip", &["link", "set", "lo", "up"])?;
        }
        let net = |last: u8, len: u8| format!("10.216.{id}.{last}/{len}");
        // hub ↔ ap, ap ↔ room, and the control link from this machine.
        sh(
            "ip",
            &[
                "link", "add", "h0", "netns", hub, "type", "veth", "peer", "name", "ah", "netns",
                ap,
            ],
        )?;
        sh(
            "ip",
            &[
                "link", "add", "r0", "netns", room, "type", "veth", "peer", "name", "ar", "netns",
                ap,
            ],
        )?;
        sh(
            "ip",
            &[
                "link",
                "add",
                &self.control_if,
                "type",
                "veth",
                "peer",
                "name",
                "c0",
                "netns",
                hub,
            ],
        )?;
        in_ns(hub, "ip", &["addr", "add", &net(2, 26), "dev", "h0"])?;
        in_ns(hub, "ip", &["addr", "add", &net(130, 26), "dev", "c0"])?;
        in_ns(ap, "ip", &["addr", "add", &net(1, 26), "dev", "ah"])?;
        in_ns(ap, "ip", &["addr", "add", &net(65, 26), "dev", "ar"])?;
        in_ns(room, "ip", &["addr", "add", &net(66, 26), "dev", "r0"])?;
        sh(
            "ip",
            &["addr", "add", &net(129, 26), "dev", &self.control_if],
        )?;
        for (ns, dev) in [
            (hub, "h0"),
            (hub, "c0"),
            (ap, "ah"),
            (ap, "ar"),
            (room, "r0"),
        ] {
            in_ns(ns, "ip", &["link", "set", dev, "up"])?;
        }
        sh("ip", &["link", "set", &self.control_if, "up"])?;
        in_ns(
            hub,
            "ip",
            &[
                "route",
                "add",
                &net(64, 26),
                "via",
                &format!("10.216.{id}.1"),
            ],
        )?;
        in_ns(
            room,
            "ip",
            &["route", "add", "default", "via", &format!("10.216.{id}.65")],
        )?;
        in_ns(ap, "sysctl", &["-qw", "net.ipv4.ip_forward=1"])?;
        // The loss and the cuts: rules in the access point's forward path.
        // Packets through the relay pass it twice; they are lost on their
        // way in only.
        let rules = format!(
            "table inet {TABLE} {{
               chain cut {{ }}
               chain loss {{ }}
               chain forward {{
                 type filter hook forward priority 0; policy accept;
                 jump cut
                 iifname != \"{TUN}\" jump loss
               }}
             }}"
        );
        in_ns(ap, "nft", &[&rules])
    }

    fn shape(
        &mut self,
        shape: Shape,
        relay_exe: &std::path::Path,
        max_seconds: u64,
    ) -> Result<(), String> {
        self.set_loss(shape.loss_pct)?;
        let ap = self.layout.ap_ns.clone();
        if shape.delay_ms > 0 || shape.jitter_ms > 0 {
            if shape.jitter_ms > shape.delay_ms {
                return Err("the jitter cannot exceed the delay".into());
            }
            let (d, j) = (
                format!("{}ms", shape.delay_ms),
                format!("{}ms", shape.jitter_ms),
            );
            let netem = ["ah", "ar"].iter().try_for_each(|dev| {
                in_ns(
                    &ap,
                    "tc",
                    &[
                        "qdisc", "add", "dev", dev, "root", "handle", "1:", "netem", "delay", &d,
                        &j,
                    ],
                )
            });
            if netem.is_ok() {
                self.layout.delayer = Delayer::Netem;
            } else {
                for dev in ["ah", "ar"] {
                    let _ = in_ns(&ap, "tc", &["qdisc", "del", "dev", dev, "root"]);
                }
                self.start_relay(shape, relay_exe, max_seconds)?;
                self.layout.delayer = Delayer::Relay;
            }
        }
        if shape.rate_kbit > 0 {
            let rate = format!("{}kbit", shape.rate_kbit);
            for dev in ["ah", "ar"] {
                let parent: &[&str] = if self.layout.delayer == Delayer::Netem {
                    &["parent", "1:1", "handle", "10:"]
                } else {
                    &["root"]
                };
                let mut args = vec!["qdisc", "add", "dev", dev];
                args.extend_from_slice(parent);
                args.extend_from_slice(&[
                    "tbf", "rate", &rate, "burst", "32kbit", "latency", "400ms",
                ]);
                in_ns(&ap, "tc", &args)?;
            }
        }
        Ok(())
    }

    /// Packets between the hub and the room go through a TUN device in the
    /// access point: the relay reads each one and writes it back when its
    /// delay is over, and the kernel forwards it on. Policy routing sends
    /// what arrives on either link to the TUN device, and what comes back
    /// from it through the main table.
    fn start_relay(
        &mut self,
        shape: Shape,
        exe: &std::path::Path,
        max_seconds: u64,
    ) -> Result<(), String> {
        let ap = self.layout.ap_ns.clone();
        let mut child = Command::new("ip")
            .args(["netns", "exec", &ap])
            .arg(exe)
            .args([
                "relay",
                "--dev",
                TUN,
                "--delay-ms",
                &shape.delay_ms.to_string(),
                "--jitter-ms",
                &shape.jitter_ms.to_string(),
                "--max-seconds",
                &max_seconds.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("start the relay: {e}"))?;
        // It says `ready` once the device exists.
        let ready = child.stdout.take().map(|out| {
            let mut line = String::new();
            let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line);
            line
        });
        self.relay = Some(child);
        if ready.as_deref().map(str::trim) != Some("ready") {
            return Err("the relay did not start (is /dev/net/tun there?)".into());
        }
        in_ns(&ap, "ip", &["link", "set", TUN, "up"])?;
        for key in ["all", "default", TUN, "ah", "ar"] {
            in_ns(
                &ap,
                "sysctl",
                &["-qw", &format!("net.ipv4.conf.{key}.rp_filter=0")],
            )?;
        }
        in_ns(
            &ap,
            "sysctl",
            &["-qw", "net.ipv4.conf.all.send_redirects=0"],
        )?;
        in_ns(
            &ap,
            "ip",
            &["route", "add", "default", "dev", TUN, "table", "100"],
        )?;
        for dev in ["ah", "ar"] {
            in_ns(
                &ap,
                "ip",
                &["rule", "add", "iif", dev, "lookup", "100", "pref", "100"],
            )?;
        }
        Ok(())
    }

    /// Loses `pct` percent of the packets each way from now on.
    pub fn set_loss(&self, pct: f64) -> Result<(), String> {
        if !(0.0..=100.0).contains(&pct) {
            return Err("the loss is between 0 and 100 %".into());
        }
        let ap = &self.layout.ap_ns;
        in_ns(ap, "nft", &["flush", "chain", "inet", TABLE, "loss"])?;
        let per_mille = (pct * 10.0).round() as u32;
        if per_mille > 0 {
            in_ns(
                ap,
                "nft",
                &[
                    "add",
                    "rule",
                    "inet",
                    TABLE,
                    "loss",
                    "numgen",
                    "random",
                    "mod",
                    "1000",
                    "<",
                    &per_mille.to_string(),
                    "drop",
                ],
            )?;
        }
        Ok(())
    }

    /// Cuts the link silently (every packet dropped, as when the access
    /// point loses everyone), or restores it.
    pub fn set_cut(&self, cut: bool) -> Result<(), String> {
        let ap = &self.layout.ap_ns;
        in_ns(ap, "nft", &["flush", "chain", "inet", TABLE, "cut"])?;
        if cut {
            in_ns(ap, "nft", &["add", "rule", "inet", TABLE, "cut", "drop"])?;
        }
        Ok(())
    }

    /// Cuts the link for `d`, then restores it.
    pub fn cut_for(&self, d: Duration) -> Result<(), String> {
        self.set_cut(true)?;
        std::thread::sleep(d);
        self.set_cut(false)
    }
}

impl Drop for Room {
    fn drop(&mut self) {
        if let Some(mut relay) = self.relay.take() {
            let _ = relay.kill();
            let _ = relay.wait();
        }
        let l = &self.layout;
        for ns in [&l.room_ns, &l.ap_ns, &l.hub_ns] {
            remove_ns(ns);
        }
        // Gone with the hub's namespace already, unless it failed half-way.
        let _ = sh("ip", &["link", "del", &self.control_if]);
    }
}
