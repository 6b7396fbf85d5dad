//! The offline verifier behind `votehub verify`: rebuilds a bundle's tree,
//! checks every signed head (and the key, when given), replays the log
//! against the roll — who may vote, with what weight, by whose proxy, how
//! many proxies one holds — and recomputes the tally and the result with
//! the hub's own rules. Each finding is one line naming what is wrong.

use std::collections::{BTreeMap, HashMap};

use crate::core::audit::bundle::{Bundle, FORMAT};
use crate::core::audit::entry::{
    BallotEntry, ClosedEntry, Created, Entry, RollMember, canonical, roll_hash,
};
use crate::core::audit::signing::{SignedHead, verify_head};
use crate::core::audit::tree::{Frontier, Hash, leaf_hash, verify_inclusion};
use crate::core::rules::{Method, Outcome, elect};
use crate::core::session::{Election, Electorate, KindName, Secrecy, SessionKind};
use crate::core::tally::{Ballot, Scale, Tally};

/// Reads a bundle; an error means the file cannot be checked at all.
pub fn parse(bytes: &[u8]) -> Result<Bundle, String> {
    let bundle: Bundle =
        serde_json::from_slice(bytes).map_err(|e| format!("not an audit bundle: {e}"))?;
    if bundle.format != FORMAT {
        return Err(format!(
            "not an audit bundle of this format ({:?}, expected {FORMAT:?})",
            bundle.format
        ));
    }
    Ok(bundle)
}

fn hex32(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

/// What `verify` learned besides its findings.
#[derive(Debug, Default)]
pub struct Summary {
    pub entries: usize,
    pub ballots: usize,
    pub result: Option<Outcome>,
}

/// Every finding about `bundle` (none: all holds). `key`: the public key
/// the organiser published, when known.
pub fn verify(bundle: &Bundle, key: Option<&[u8; 32]>) -> (Vec<String>, Summary) {
    let mut findings = Vec::new();
    let leaves: Vec<Hash> = bundle
        .entries
        .iter()
        .map(|e| leaf_hash(&canonical(e)))
        .collect();
    let public = hex32(&bundle.head.public_key);
    match (public, key) {
        (None, _) => findings.push("the bundle's public key is not a 32-byte hex key".into()),
        (Some(p), Some(k)) if p != *k => findings.push(format!(
            "key differs: the bundle is signed by {}, not by the key given ({})",
            hex::encode(p),
            hex::encode(k)
        )),
        _ => {}
    }
    check_tree(bundle, &leaves, public.as_ref(), &mut findings);
    let summary = replay(bundle, &mut findings);
    (findings, summary)
}

/// The heads: each signed by the key, each the root of the log's first
/// entries; where they disagree, which entries are altered, moved, missing
/// or added.
fn check_tree(bundle: &Bundle, leaves: &[Hash], public: Option<&[u8; 32]>, out: &mut Vec<String>) {
    let final_head = (|| {
        Some(SignedHead {
            size: bundle.head.size,
            root: hex32(&bundle.head.root)?,
            signature: {
                let mut s = [0u8; 64];
                hex::decode_to_slice(&bundle.head.signature, &mut s).ok()?;
                s
            },
        })
    })();
    let Some(final_head) = final_head else {
        out.push("the bundle's head is unreadable".into());
        return;
    };
    let mut heads: Vec<SignedHead> = Vec::with_capacity(bundle.heads.len() + 1);
    for (i, h) in bundle.heads.iter().enumerate() {
        match h.parse() {
            Some(h) => heads.push(h),
            None => out.push(format!("head {i} of the bundle is unreadable")),
        }
    }
    if heads.last() != Some(&final_head) {
        heads.push(final_head);
    }
    heads.sort_by_key(|h| h.size);
    if let Some(public) = public {
        for h in &heads {
            if !verify_head(public, bundle.session, h) {
                out.push(format!(
                    "signature invalid on the head of size {} (not signed by the bundle's key)",
                    h.size
                ));
            }
        }
    }
    // Each head against the tree of the first entries, walked once.
    let mut frontier = Frontier::default();
    let mut good = 0u64;
    let mut bad: Option<(u64, u64)> = None;
    let mut pending = heads.iter().peekable();
    for leaf in leaves {
        frontier.push(*leaf);
        while let Some(h) = pending.next_if(|h| h.size <= frontier.size()) {
            if h.size == frontier.size() {
                if h.root == frontier.root() && bad.is_none() {
                    good = h.size;
                } else if bad.is_none() {
                    bad = Some((good, h.size));
                }
            }
        }
    }
    let (n, m) = (leaves.len() as u64, final_head.size);
    if n < m {
        out.push(format!(
            "entries missing: the log holds {n} entries, its signed head covers {m} (the first {good} are intact)"
        ));
        return;
    }
    if n > m {
        out.push(format!(
            "entries added: the log holds {n} entries, its signed head covers {m} (entries {m} to {} are not signed)",
            n - 1
        ));
    }
    if let Some((from, to)) = bad {
        let from_i = from as usize;
        // Two entries swapped: putting one back makes the head hold again.
        // Each candidate rebuilds the tree up to `to`: bounded to some
        // twenty million leaf pushes whatever the log's size.
        let candidates = (20_000_000 / (to as usize).max(1)).clamp(1, 2000);
        let swapped = (from_i + 1..leaves.len().min(from_i + 1 + candidates)).find(|&q| {
            let mut f = Frontier::default();
            for (i, leaf) in leaves.iter().enumerate().take(to as usize) {
                f.push(if i == from_i {
                    leaves[q]
                } else if i == q {
                    leaves[from_i]
                } else {
                    *leaf
                });
            }
            heads
                .iter()
                .find(|h| h.size == to)
                .is_some_and(|h| h.root == f.root())
        });
        match swapped {
            Some(q) => out.push(format!(
                "entries {from} and {q} swapped: the head of size {to} holds with them in each other's place"
            )),
            None if to - from == 1 => out.push(format!(
                "entry {from} altered: it does not hash to what the head of size {to} signed"
            )),
            None => out.push(format!(
                "entries {from} to {} altered: they do not hash to what the head of size {to} signed",
                to - 1
            )),
        }
    }
}

/// A roll member as the log last described them.
#[derive(Debug, Clone)]
struct Member {
    weight: u64,
    groups: Vec<String>,
    proxy: Option<String>,
}

struct Session {
    kind: SessionKind,
    created: Created,
}

/// A ballot as it counts: with its weight and its voter's groups.
type Counted = (Ballot, u64, Vec<String>);

fn session_of(c: &Created) -> Result<SessionKind, String> {
    Ok(match c.kind {
        KindName::Motion => SessionKind::Motion {
            scale: c.scale.unwrap_or(Scale::Choice),
        },
        KindName::Election => {
            let options = c.options.clone().ok_or("an election without options")?;
            let method = c.method.unwrap_or(Method::Selection);
            let seats = c.seats.ok_or("an election without seats")?;
            SessionKind::Election(Election {
                options,
                seats,
                method,
                min: c.min.unwrap_or(0),
                max: c.max.unwrap_or(seats),
            })
        }
    })
}

/// Replays the log: every ballot against the roll as it stood, the counted
/// ballots into a tally, the tally through the rule.
fn replay(bundle: &Bundle, out: &mut Vec<String>) -> Summary {
    let mut summary = Summary {
        entries: bundle.entries.len(),
        ..Summary::default()
    };
    let mut entries = Vec::with_capacity(bundle.entries.len());
    for (k, value) in bundle.entries.iter().enumerate() {
        match serde_json::from_value::<Entry>(value.clone()) {
            Ok(e) => entries.push((k, e)),
            Err(e) => out.push(format!("entry {k} is not an entry of a votehub log: {e}")),
        }
    }
    let session = match entries.first() {
        Some((0, Entry::Created(c))) => {
            if c.session != bundle.session {
                out.push(format!(
                    "entry 0 creates session {}, the bundle is of {}",
                    c.session, bundle.session
                ));
            }
            match session_of(c) {
                Ok(kind) => Session {
                    kind,
                    created: c.clone(),
                },
                Err(e) => {
                    out.push(format!("entry 0: {e}"));
                    return summary;
                }
            }
        }
        _ => {
            out.push("entry 0 is not the session's creation".into());
            return summary;
        }
    };
    let roll_session = session.created.electorate == Electorate::Roll;
    let secret = session.created.secrecy == Secrecy::Secret;
    if roll_session {
        let hash = roll_hash(&bundle.roll);
        if session.created.roll.as_deref() != Some(hash.as_str()) {
            out.push("the bundle's roll is not the roll the log recorded at the opening".into());
        }
    } else if !bundle.roll.is_empty() {
        out.push("an open session's bundle lists a roll".into());
    }
    let max_proxies = session.created.max_proxies.unwrap_or(u64::MAX);
    let mut roll: HashMap<String, Member> = bundle
        .roll
        .iter()
        .map(|m: &RollMember| {
            (
                m.name.clone(),
                Member {
                    weight: m.weight,
                    groups: m.groups.clone(),
                    proxy: m.proxy.clone(),
                },
            )
        })
        .collect();
    // How many proxies each member holds, kept as the roll changes (a walk
    // over the roll per proxy ballot would be quadratic).
    let mut held: HashMap<String, u64> = HashMap::new();
    for m in roll.values() {
        if let Some(h) = &m.proxy {
            *held.entry(h.clone()).or_default() += 1;
        }
    }
    // Every weight each member had while the vote ran: a secret ballot
    // carries no time, so its voter's weight must be one of these.
    let mut weights: HashMap<String, Vec<u64>> = roll
        .iter()
        .map(|(name, m)| (name.clone(), vec![m.weight]))
        .collect();
    // Named and open: each voter's latest ballot (and all of them, to tell
    // a tally that counted an earlier one).
    let mut latest: BTreeMap<String, Counted> = BTreeMap::new();
    // Ballots a later one of the same voter replaced.
    let mut replaced: Vec<(String, Counted)> = Vec::new();
    let mut secret_ballots: Vec<(Ballot, u64)> = Vec::new();
    let mut voted: Option<Vec<crate::core::audit::entry::VotedMember>> = None;
    let mut closed: Option<(usize, ClosedEntry)> = None;
    for (k, entry) in entries.iter().skip(1) {
        if let Some((c, _)) = &closed {
            out.push(format!("entry {k} comes after the close (entry {c})"));
            continue;
        }
        match entry {
            Entry::Created(_) => out.push(format!("entry {k} creates the session again")),
            Entry::Opened { .. } | Entry::Extended { .. } => {}
            Entry::Member(m) => {
                let old = m.was.as_deref().unwrap_or(&m.member.name);
                if let Some(before) = roll.get(old).and_then(|b| b.proxy.clone())
                    && let Some(n) = held.get_mut(&before)
                {
                    *n = n.saturating_sub(1);
                }
                if let Some(was) = &m.was {
                    roll.remove(was);
                    // The same person: their ballot and weights follow the name.
                    if let Some(ballot) = latest.remove(was) {
                        latest.insert(m.member.name.clone(), ballot);
                    }
                    if let Some(w) = weights.remove(was) {
                        weights.insert(m.member.name.clone(), w);
                    }
                    for other in roll.values_mut() {
                        if other.proxy.as_deref() == Some(was.as_str()) {
                            other.proxy = Some(m.member.name.clone());
                        }
                    }
                    if let Some(n) = held.remove(was) {
                        held.insert(m.member.name.clone(), n);
                    }
                }
                if let Some(h) = &m.member.proxy {
                    *held.entry(h.clone()).or_default() += 1;
                }
                weights
                    .entry(m.member.name.clone())
                    .or_default()
                    .push(m.member.weight);
                roll.insert(
                    m.member.name.clone(),
                    Member {
                        weight: m.member.weight,
                        groups: m.member.groups.clone(),
                        proxy: m.member.proxy.clone(),
                    },
                );
            }
            Entry::Ballot(b) => {
                summary.ballots += 1;
                let ballot = match session.kind.ballot(b.ballot.input()) {
                    Ok(ballot) => ballot,
                    Err(why) => {
                        out.push(format!(
                            "entry {k}: a ballot this vote does not take ({why})"
                        ));
                        continue;
                    }
                };
                if secret {
                    if b.tracker.is_none() || b.voter.is_some() {
                        out.push(format!(
                            "entry {k}: a secret ballot must carry a tracker and no voter"
                        ));
                    }
                    secret_ballots.push((ballot, b.weight));
                    continue;
                }
                let Some(voter) = b.voter.clone() else {
                    out.push(format!("entry {k}: a ballot without its voter"));
                    continue;
                };
                let groups = if roll_session {
                    check_roll_ballot(*k, b, &voter, &roll, &held, max_proxies, out)
                } else {
                    if b.weight != 1 || b.by.is_some() {
                        out.push(format!(
                            "entry {k}: an open session weighs every ballot 1, by no proxy"
                        ));
                    }
                    Vec::new()
                };
                if let Some(old) = latest.insert(voter.clone(), (ballot, b.weight, groups)) {
                    replaced.push((voter, old));
                }
            }
            Entry::Voted { members } => {
                if !secret {
                    out.push(format!("entry {k}: a list of who voted in a named vote"));
                }
                // A secret vote's ballots carry no time: a weight or a proxy
                // may have changed since one was cast, so each member is
                // checked to be on the roll, and the weights as a whole
                // (below) against the ballots'.
                let mut seen = std::collections::HashSet::new();
                for m in members {
                    if !seen.insert(m.name.as_str()) {
                        out.push(format!(
                            "entry {k}: {} is listed twice among who voted (two counted ballots for one voter)",
                            m.name
                        ));
                    }
                    if !roll.contains_key(&m.name) {
                        out.push(format!(
                            "entry {k}: {} voted but is not on the roll",
                            m.name
                        ));
                    } else if !weights.get(&m.name).is_some_and(|w| w.contains(&m.weight)) {
                        out.push(format!(
                            "entry {k}: {} counted with weight {}, which the roll never gave them during the vote",
                            m.name, m.weight
                        ));
                    }
                    if let Some(by) = &m.by
                        && !roll.contains_key(by)
                    {
                        out.push(format!(
                            "entry {k}: {by}, who cast {}'s ballot, is not on the roll",
                            m.name
                        ));
                    }
                }
                voted = Some(members.clone());
            }
            Entry::Closed(c) => closed = Some((*k, c.clone())),
        }
    }
    let mut tally = Tally::new(session.kind.shape());
    if secret {
        let members = voted.unwrap_or_default();
        if members.len() != secret_ballots.len() {
            out.push(format!(
                "two counted ballots for one voter, or a ballot from no one: the log counts {} secret ballots for {} members who voted",
                secret_ballots.len(),
                members.len()
            ));
        }
        let mut weights_cast: Vec<u64> = secret_ballots.iter().map(|(_, w)| *w).collect();
        let mut weights_voted: Vec<u64> = members.iter().map(|m| m.weight).collect();
        weights_cast.sort_unstable();
        weights_voted.sort_unstable();
        if weights_cast != weights_voted {
            out.push("the ballots' weights are not those of the members who voted".into());
        }
        for (ballot, weight) in &secret_ballots {
            tally.add(ballot, *weight, &[]);
        }
    } else {
        for (ballot, weight, groups) in latest.values() {
            tally.add(ballot, *weight, groups);
        }
    }
    let Some((_, close)) = closed else {
        out.push("the log has no close: the vote is not over".into());
        return summary;
    };
    let presence = close.presence.map(Into::into);
    let rule = &session.created.rule;
    let (result, elected) = match &session.kind {
        SessionKind::Motion { .. } => (rule.outcome_at(&tally, presence), None),
        SessionKind::Election(e) => {
            let (outcome, elected) = elect(rule, usize::from(e.seats), &tally, presence);
            (outcome, Some(elected))
        }
    };
    summary.result = Some(result);
    let recomputed = serde_json::to_value(&tally).unwrap_or_default();
    if close.tally != recomputed {
        // A tally that counts one ballot a later one replaced: name whose.
        if !secret {
            let mut twice: Vec<&str> = replaced
                .iter()
                .filter(|(_, (ballot, weight, groups))| {
                    let mut more = tally.clone();
                    more.add(ballot, *weight, groups);
                    serde_json::to_value(&more).unwrap_or_default() == close.tally
                })
                .map(|(voter, _)| voter.as_str())
                .collect();
            twice.sort_unstable();
            twice.dedup();
            match twice.as_slice() {
                [] => {}
                [one] => out.push(format!(
                    "two counted ballots for one voter ({one}): the tally counts a ballot that a later one replaced"
                )),
                many => out.push(format!(
                    "two counted ballots for one voter (one of {}): the tally counts a ballot that a later one replaced",
                    many.join(", ")
                )),
            }
        }
        out.push(format!(
            "tally differs: the log's close says {}, its ballots give {}",
            close.tally, recomputed
        ));
    }
    if close.result != result {
        out.push(format!(
            "result differs: the log's close says {}, the rule gives {}",
            close.result.as_str(),
            result.as_str()
        ));
    }
    if let Some(elected) = elected
        && (close.elected.as_ref() != Some(&elected.elected)
            || close.tied.as_ref() != Some(&elected.tied))
    {
        out.push(format!(
            "result differs: the log's close elects {:?} (tied {:?}), the rule elects {:?} (tied {:?})",
            close.elected, close.tied, elected.elected, elected.tied
        ));
    }
    if bundle.result != Some(close.result) {
        out.push(format!(
            "result differs: the bundle says {}, its log's close {}",
            bundle.result.map(Outcome::as_str).unwrap_or("nothing"),
            close.result.as_str()
        ));
    }
    if bundle.tally != close.tally {
        out.push(format!(
            "tally differs: the bundle says {}, its log's close {}",
            bundle.tally, close.tally
        ));
    }
    summary
}

/// A named roll ballot against the roll as it stood; the groups it counts
/// with.
fn check_roll_ballot(
    k: usize,
    b: &BallotEntry,
    voter: &str,
    roll: &HashMap<String, Member>,
    held: &HashMap<String, u64>,
    max_proxies: u64,
    out: &mut Vec<String>,
) -> Vec<String> {
    let Some(member) = roll.get(voter) else {
        out.push(format!(
            "entry {k}: a ballot from {voter}, who is not on the roll"
        ));
        return Vec::new();
    };
    if member.weight != b.weight {
        out.push(format!(
            "entry {k}: {voter}'s ballot counted with weight {}, the roll says {}",
            b.weight, member.weight
        ));
    }
    match (&b.by, &member.proxy) {
        (None, Some(holder)) => out.push(format!(
            "entry {k}: {voter} voted themself, though {holder} held their proxy"
        )),
        (Some(by), holder) if holder.as_deref() != Some(by.as_str()) => out.push(format!(
            "entry {k}: {by} cast {voter}'s ballot without holding their proxy"
        )),
        (Some(by), _) => {
            let held = held.get(by.as_str()).copied().unwrap_or(0);
            if held > max_proxies {
                out.push(format!(
                    "entry {k}: {by} holds {held} proxies, more than the {max_proxies} allowed"
                ));
            }
            if !roll.contains_key(by.as_str()) {
                out.push(format!("entry {k}: {by}, who cast it, is not on the roll"));
            }
        }
        (None, None) => {}
    }
    member.groups.clone()
}

/// One voter's receipt checked against a bundle: the ballot is in the
/// final tree, and the head it was given is a head of this log, signed.
/// The lines to print, and whether all holds.
pub fn check_receipt(bundle: &Bundle, receipt: &serde_json::Value) -> (Vec<String>, bool) {
    let receipt = receipt.get("receipt").unwrap_or(receipt);
    let leaves: Vec<Hash> = bundle
        .entries
        .iter()
        .map(|e| leaf_hash(&canonical(e)))
        .collect();
    let Some(public) = hex32(&bundle.head.public_key) else {
        return (vec!["the bundle's public key is unreadable".into()], false);
    };
    if let Some(tracker) = receipt.get("tracker").and_then(|t| t.as_str()) {
        let found = bundle
            .entries
            .iter()
            .find(|e| e.get("tracker").and_then(|t| t.as_str()) == Some(tracker));
        return match found {
            Some(e) => {
                let mut shown = e.clone();
                if let Some(o) = shown.as_object_mut() {
                    o.remove("tracker");
                    o.remove("type");
                }
                (
                    vec![format!("your secret ballot is in the count: {shown}")],
                    true,
                )
            }
            None => (
                vec![format!(
                    "no ballot with the tracker {tracker} is in the count"
                )],
                false,
            ),
        };
    }
    let mut lines = Vec::new();
    let parsed = (|| {
        let index = receipt.get("index")?.as_u64()?;
        let leaf = hex32(receipt.get("leaf")?.as_str()?)?;
        let head: crate::core::audit::signing::HeadWire =
            serde_json::from_value(receipt.get("head")?.clone()).ok()?;
        Some((index, leaf, head.parse()?))
    })();
    let Some((index, leaf, head)) = parsed else {
        return (vec!["the receipt is unreadable".into()], false);
    };
    let mut ok = true;
    if !verify_head(&public, bundle.session, &head) {
        lines.push("the receipt's head is not signed by the bundle's key".into());
        ok = false;
    }
    if leaves.get(index as usize) != Some(&leaf) {
        lines.push(format!(
            "entry {index} of the log is not the receipt's ballot"
        ));
        ok = false;
    }
    let size = leaves.len() as u64;
    let proof = crate::core::audit::tree::inclusion_proof(&leaves, index as usize, leaves.len());
    let root = crate::core::audit::tree::root(&leaves);
    if !proof.is_some_and(|p| verify_inclusion(index, size, &leaf, &p, &root)) {
        lines.push("the ballot is not in the final tree".into());
        ok = false;
    }
    let prefix = leaves
        .get(..head.size as usize)
        .map(crate::core::audit::tree::root);
    if prefix != Some(head.root) {
        lines.push(format!(
            "the log was rewritten: its first {} entries are not the ones the receipt's head signed",
            head.size
        ));
        ok = false;
    }
    if ok {
        let entry = bundle
            .entries
            .get(index as usize)
            .cloned()
            .unwrap_or_default();
        lines.push(format!("your ballot is in the published count: {entry}"));
    }
    (lines, ok)
}
