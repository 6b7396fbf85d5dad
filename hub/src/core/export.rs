//! CSV exports: a session's tally, result and ballots, and the voter roll
//! with its codes. Shared by the HTTP API and the desktop app.

use std::borrow::Cow;

use crate::core::roll::RollEntry;
use crate::core::session::SessionView;
use crate::core::store::BallotRecord;
use crate::core::tally::{Ballot, OptionCounts};

/// Spreadsheets run cells that start with these as formulas; voter ids in
/// an open session are typed by anyone, so such cells are defused.
fn cell(s: &str) -> Cow<'_, str> {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}").into()
    } else {
        s.into()
    }
}

/// The summary (`key,value` rows), a blank line, then one row per ballot:
/// `voter,choice,time` for a motion (the grade on a nuanced scale), and for
/// an election `voter`, one column per option (`x` when chosen; `for`,
/// `against` or `abstain` in approval), then `time`.
pub fn session_csv(session: &SessionView, ballots: &[BallotRecord]) -> Result<Vec<u8>, csv::Error> {
    let t = &session.tally;
    let options: Vec<String> = session
        .options
        .iter()
        .flatten()
        .map(|o| cell(&o.name).into_owned())
        .collect();
    let names = |ids: &Option<Vec<u16>>| {
        ids.iter()
            .flatten()
            .filter_map(|id| options.get(usize::from(*id)).cloned())
            .collect::<Vec<_>>()
            .join("; ")
    };
    let mut summary: Vec<(String, String)> = vec![
        ("session".into(), session.id.to_string()),
        ("title".into(), cell(&session.title).into_owned()),
        ("status".into(), session.status.as_str().into()),
        (
            "result".into(),
            session.result.map(|r| r.as_str()).unwrap_or("").into(),
        ),
    ];
    match (t.motion(), t.options()) {
        (Some(m), _) => {
            summary.push(("for".into(), m.votes_for.to_string()));
            summary.push(("against".into(), m.votes_against.to_string()));
            summary.push(("abstain".into(), m.votes_abstain.to_string()));
        }
        (None, Some(counts)) => {
            summary.push(("elected".into(), names(&session.elected)));
            summary.push(("tied".into(), names(&session.tied)));
            summary.push(("blank".into(), t.blank().to_string()));
            match counts {
                OptionCounts::Votes(votes) => {
                    for (name, n) in options.iter().zip(votes) {
                        summary.push((format!("votes: {name}"), n.to_string()));
                    }
                }
                OptionCounts::Marks(marks) => {
                    for (name, [f, a, n]) in options.iter().zip(marks) {
                        summary.push((format!("for: {name}"), f.to_string()));
                        summary.push((format!("against: {name}"), a.to_string()));
                        summary.push((format!("abstain: {name}"), n.to_string()));
                    }
                }
            }
        }
        (None, None) => {}
    }
    summary.push(("total".into(), t.total().to_string()));
    summary.push(("ballots".into(), t.ballots.to_string()));
    let mut w = csv::Writer::from_writer(Vec::new());
    for (key, value) in &summary {
        w.write_record([key, value])?;
    }
    let mut out = w.into_inner().map_err(|e| e.into_error())?;
    out.push(b'\n');
    let mut w = csv::Writer::from_writer(out);
    if options.is_empty() {
        w.write_record(["voter", "choice", "time"])?;
    } else {
        let mut head = vec!["voter".to_owned()];
        head.extend(options.iter().cloned());
        head.push("time".into());
        w.write_record(&head)?;
    }
    for b in ballots {
        let mut row: Vec<Cow<'_, str>> = vec![cell(&b.voter)];
        match &b.ballot {
            Ballot::Choice(c) => row.push(c.as_str().into()),
            Ballot::Grade(g) => row.push(g.to_string().into()),
            Ballot::Selection(ids) => {
                for i in 0..options.len() {
                    let chosen = ids.iter().any(|id| usize::from(*id) == i);
                    row.push(if chosen { "x" } else { "" }.into());
                }
            }
            Ballot::Approval(marks) => row.extend(marks.iter().map(|m| m.as_str().into())),
        }
        row.push(b.cast_at.to_rfc3339().into());
        w.write_record(row.iter().map(|c| c.as_bytes()))?;
    }
    w.into_inner().map_err(|e| e.into_error().into())
}

/// `name,code,groups` (groups joined by `;`), for printing voting cards.
pub fn roll_csv(roll: &[RollEntry]) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["name", "code", "groups"])?;
    for e in roll {
        w.write_record([&*cell(&e.name), &e.code, &e.groups.join(";")])?;
    }
    w.into_inner().map_err(|e| e.into_error().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_defused() {
        assert_eq!(cell("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(cell("-3"), "'-3");
        assert_eq!(cell("Ann"), "Ann");
    }

    #[test]
    fn roll_lists_every_code() {
        let roll = vec![RollEntry {
            name: "Ann".into(),
            code: "ABCD-EFGH".into(),
            groups: vec!["smith".into(), "council".into()],
        }];
        let csv = String::from_utf8(roll_csv(&roll).expect("csv")).expect("utf-8");
        assert_eq!(csv, "name,code,groups\nAnn,ABCD-EFGH,smith;council\n");
    }
}
