//! The minutes of a meeting: a print-ready page (A4, print CSS) of the day
//! in agenda order — each vote's question, rule, counts, result, opening
//! and closing times — in English or French. The HTTP door serves it and
//! the desktop window prints it; both render it here.

use std::fmt::Write as _;

use crate::core::clock::Time;
use crate::core::meeting::Meeting;
use crate::core::rules::{Outcome, RuleKind};
use crate::core::session::{KindName, SessionView, Status};
use crate::core::tally::OptionCounts;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Fr,
}

impl Lang {
    /// French when the first language asked for is French.
    pub fn from_accept(header: &str) -> Lang {
        match header.trim_start().get(..2) {
            Some(l) if l.eq_ignore_ascii_case("fr") => Lang::Fr,
            _ => Lang::En,
        }
    }
}

struct Words {
    minutes: &'static str,
    started: &'static str,
    ended: &'static str,
    none: &'static str,
    question: &'static str,
    rule: &'static str,
    counts: &'static str,
    result: &'static str,
    opened: &'static str,
    closed: &'static str,
    draft: &'static str,
    open: &'static str,
    seats: &'static str,
    blank: &'static str,
    ballots: &'static str,
    votes: &'static str,
    f: &'static str,
    a: &'static str,
    n: &'static str,
    adopted: &'static str,
    rejected: &'static str,
    elected: &'static str,
    tie: &'static str,
    none_elected: &'static str,
    majority: &'static str,
    supermajority: &'static str,
    inertia: &'static str,
    quorum: &'static str,
    tied: &'static str,
    printed: &'static str,
    head: &'static str,
    file: &'static str,
    key: &'static str,
}

/// What the minutes say of the logs: the key that signed them, and each
/// closed vote's final head fingerprint and audit file's SHA-256.
#[derive(Debug, Clone, Default)]
pub struct Audits {
    pub key_fingerprint: String,
    pub digests: std::collections::HashMap<uuid::Uuid, (String, String)>,
}

const EN: Words = Words {
    minutes: "Minutes",
    started: "Began",
    ended: "Ended",
    none: "No vote on the agenda.",
    question: "Question",
    rule: "Rule",
    counts: "Counts",
    result: "Result",
    opened: "Opened",
    closed: "Closed",
    draft: "Not put to the vote",
    open: "Still open",
    seats: "seats",
    blank: "blank",
    ballots: "ballots",
    votes: "votes",
    f: "for",
    a: "against",
    n: "abstain",
    adopted: "Adopted",
    rejected: "Rejected",
    elected: "Elected",
    tie: "Tie — not decided",
    none_elected: "No one elected",
    majority: "majority",
    supermajority: "supermajority",
    inertia: "inertia (Duniter)",
    quorum: "quorum",
    tied: "tied",
    printed: "Printed",
    head: "Published count",
    file: "Audit file (SHA-256)",
    key: "Logs signed with the key",
};

const FR: Words = Words {
    minutes: "Procès-verbal",
    started: "Ouverture",
    ended: "Clôture",
    none: "Aucun vote à l'ordre du jour.",
    question: "Question",
    rule: "Règle",
    counts: "Décompte",
    result: "Résultat",
    opened: "Ouvert",
    closed: "Clos",
    draft: "Non soumis au vote",
    open: "Encore ouvert",
    seats: "sièges",
    blank: "blancs",
    ballots: "bulletins",
    votes: "voix",
    f: "pour",
    a: "contre",
    n: "abstention",
    adopted: "Adopté",
    rejected: "Rejeté",
    elected: "Élu·e·s",
    tie: "Égalité — non départagé",
    none_elected: "Personne n'est élu",
    majority: "majorité",
    supermajority: "majorité qualifiée",
    inertia: "inertie (Duniter)",
    quorum: "quorum",
    tied: "à égalité",
    printed: "Imprimé le",
    head: "Décompte publié",
    file: "Fichier d’audit (SHA-256)",
    key: "Journaux signés avec la clé",
};

/// Escapes text for HTML: every title and name comes from people.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn when(t: Option<Time>) -> String {
    // 2026-11-29T14:05:00.250Z → 2026-11-29 14:05:00 UTC
    t.map(|t| {
        let s = t.to_rfc3339();
        format!(
            "{} {} UTC",
            &s[..10.min(s.len())],
            s.get(11..19).unwrap_or("")
        )
    })
    .unwrap_or_else(|| "—".into())
}

fn rule(s: &SessionView, w: &Words) -> String {
    let mut text = match s.rule.kind {
        RuleKind::Majority => w.majority.to_owned(),
        RuleKind::Supermajority { ratio } => format!("{} {:.0} %", w.supermajority, ratio * 100.0),
        RuleKind::Inertia(i) => format!("{} (W = {})", w.inertia, i.electorate),
    };
    if let Some(q) = s.rule.quorum {
        let _ = write!(text, ", {} {q}", w.quorum);
    }
    if s.kind == KindName::Election {
        let _ = write!(text, " — {} {}", s.seats.unwrap_or(1), w.seats);
    }
    text
}

fn option_name(s: &SessionView, id: u16) -> String {
    s.options
        .iter()
        .flatten()
        .find(|o| o.id == id)
        .map(|o| esc(&o.name))
        .unwrap_or_else(|| id.to_string())
}

fn counts(s: &SessionView, w: &Words) -> String {
    let t = &s.tally;
    if let Some(m) = t.motion() {
        return format!(
            "{} {} · {} {} · {} {} · {} {}",
            m.votes_for,
            w.f,
            m.votes_against,
            w.a,
            m.votes_abstain,
            w.n,
            t.total(),
            w.ballots
        );
    }
    let mut out = String::from("<ul class=\"options\">");
    match t.options() {
        Some(OptionCounts::Votes(votes)) => {
            for (id, n) in votes.iter().enumerate() {
                let _ = write!(
                    out,
                    "<li>{}: {n} {}</li>",
                    option_name(s, id as u16),
                    w.votes
                );
            }
        }
        Some(OptionCounts::Marks(marks)) => {
            for (id, [f, a, n]) in marks.iter().enumerate() {
                let _ = write!(
                    out,
                    "<li>{}: {f} {}, {a} {}, {n} {}</li>",
                    option_name(s, id as u16),
                    w.f,
                    w.a,
                    w.n
                );
            }
        }
        None => {}
    }
    let _ = write!(
        out,
        "</ul><p>{} {} · {} {}</p>",
        t.ballots,
        w.ballots,
        t.blank(),
        w.blank
    );
    out
}

fn result(s: &SessionView, w: &Words) -> String {
    match (s.status, s.result) {
        (Status::Draft, _) => w.draft.to_owned(),
        (Status::Open, _) | (_, None) => w.open.to_owned(),
        (Status::Closed, Some(r)) => {
            let names = |ids: &Option<Vec<u16>>| {
                ids.iter()
                    .flatten()
                    .map(|id| option_name(s, *id))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            match r {
                Outcome::Adopted => w.adopted.to_owned(),
                Outcome::Rejected => w.rejected.to_owned(),
                Outcome::Elected => format!("{}: {}", w.elected, names(&s.elected)),
                Outcome::Tie => {
                    let elected = names(&s.elected);
                    let mut text = w.tie.to_owned();
                    if !elected.is_empty() {
                        let _ = write!(text, " — {}: {elected}", w.elected);
                    }
                    let _ = write!(text, " — {}: {}", w.tied, names(&s.tied));
                    text
                }
                Outcome::NoneElected => w.none_elected.to_owned(),
            }
        }
    }
}

/// The minutes of `meeting`, whose sessions are given in agenda order.
pub fn render(
    meeting: &Meeting,
    sessions: &[SessionView],
    audits: &Audits,
    lang: Lang,
    printed: Time,
) -> String {
    let w = match lang {
        Lang::En => &EN,
        Lang::Fr => &FR,
    };
    let mut html = String::new();
    let _ = write!(
        html,
        "<!doctype html><html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
         <title>{minutes} — {title}</title><style>{STYLE}</style></head><body>\
         <header><h1>{minutes} — {title}</h1><p>{started}: {start} · {ended}: {end}</p></header>",
        lang = if lang == Lang::Fr { "fr" } else { "en" },
        minutes = w.minutes,
        title = esc(&meeting.title),
        started = w.started,
        start = when(Some(meeting.started_at)),
        ended = w.ended,
        end = when(meeting.ended_at),
    );
    if sessions.is_empty() {
        let _ = write!(html, "<p>{}</p>", w.none);
    }
    for s in sessions {
        let _ = write!(
            html,
            "<section class=\"vote\" data-session=\"{id}\"><h2>{pos}. {title}</h2>",
            id = s.id,
            pos = s.position,
            title = esc(&s.title)
        );
        if !s.description.is_empty() {
            let _ = write!(
                html,
                "<p class=\"question\"><span>{}:</span> {}</p>",
                w.question,
                esc(&s.description)
            );
        }
        let _ = write!(
            html,
            "<table><tr><th>{}</th><td>{}</td></tr><tr><th>{}</th><td>{}</td></tr>\
             <tr><th>{}</th><td class=\"result\" data-result=\"{}\">{}</td></tr>\
             <tr><th>{}</th><td>{}</td></tr><tr><th>{}</th><td>{}</td></tr></table></section>",
            w.rule,
            rule(s, w),
            w.counts,
            counts(s, w),
            w.result,
            s.result.map(Outcome::as_str).unwrap_or(s.status.as_str()),
            result(s, w),
            w.opened,
            when(s.opened_at),
            w.closed,
            when(s.closed_at),
        );
        if let Some((head, file)) = audits.digests.get(&s.id) {
            // Inside the section, after its table.
            let at = html.len() - "</section>".len();
            html.insert_str(
                at,
                &format!(
                    "<p class=\"audit\">{}: <code>{}</code> · {}: <code class=\"digest\">{}</code></p>",
                    w.head,
                    esc(head),
                    w.file,
                    esc(file)
                ),
            );
        }
    }
    if !audits.key_fingerprint.is_empty() {
        let _ = write!(
            html,
            "<p class=\"audit\">{}: <code>{}</code></p>",
            w.key,
            esc(&audits.key_fingerprint)
        );
    }
    let _ = write!(
        html,
        "<footer>{} {} · votehub {}</footer></body></html>",
        w.printed,
        when(Some(printed)),
        env!("CARGO_PKG_VERSION")
    );
    html
}

const STYLE: &str = "\
@page { size: A4; margin: 18mm 16mm; }
body { font: 11pt/1.4 system-ui, sans-serif; color: #111; max-width: 180mm; margin: 0 auto; }
h1 { font-size: 18pt; margin: 0 0 2mm; }
header p, footer { color: #555; font-size: 9pt; }
.vote { break-inside: avoid; border-top: 1px solid #999; padding: 3mm 0; }
.vote h2 { font-size: 13pt; margin: 0 0 2mm; }
table { border-collapse: collapse; width: 100%; }
th { text-align: left; width: 28mm; vertical-align: top; font-weight: 600; color: #333; }
td, th { padding: 1mm 2mm 1mm 0; }
ul.options { margin: 0; padding-left: 5mm; }
.result { font-weight: 700; }
@media print { footer { position: fixed; bottom: 0; } }
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_people_is_escaped() {
        assert_eq!(
            esc("<b>\"Ann\" & 'Bob'</b>"),
            "&lt;b&gt;&quot;Ann&quot; &amp; &#39;Bob&#39;&lt;/b&gt;"
        );
    }

    #[test]
    fn the_language_follows_the_browser() {
        assert_eq!(Lang::from_accept("fr-FR,fr;q=0.9,en;q=0.8"), Lang::Fr);
        assert_eq!(Lang::from_accept("en-GB"), Lang::En);
        assert_eq!(Lang::from_accept(""), Lang::En);
    }
}
