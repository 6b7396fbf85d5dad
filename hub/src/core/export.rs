//! CSV exports: a session's tally, result and ballots, and the voter roll
//! with its codes. Shared by the HTTP API and the desktop app.

use std::borrow::Cow;

use crate::core::roll::RollEntry;
use crate::core::session::SessionView;
use crate::core::store::BallotRecord;
use crate::core::tally::Ballot;

/// Spreadsheets run cells that start with these as formulas; voter ids in
/// an open session are typed by anyone, so such cells are defused.
fn cell(s: &str) -> Cow<'_, str> {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}").into()
    } else {
        s.into()
    }
}

/// The summary (`key,value` rows), a blank line, then `voter,choice,time`
/// with one row per ballot (the grade on a nuanced scale).
pub fn session_csv(session: &SessionView, ballots: &[BallotRecord]) -> Result<Vec<u8>, csv::Error> {
    let t = &session.tally;
    let id = session.id.to_string();
    let summary: [[&str; 2]; 4] = [
        ["session", &id],
        ["title", &cell(&session.title)],
        [
            "status",
            if session.result.is_some() {
                "closed"
            } else {
                "open"
            },
        ],
        ["result", session.result.map(|r| r.as_str()).unwrap_or("")],
    ];
    let counts = [
        ("for", t.votes_for),
        ("against", t.votes_against),
        ("abstain", t.votes_abstain),
        ("total", t.total()),
    ];
    let mut w = csv::Writer::from_writer(Vec::new());
    for row in summary {
        w.write_record(row)?;
    }
    for (name, n) in counts {
        w.write_record([name, &n.to_string()])?;
    }
    let mut out = w.into_inner().map_err(|e| e.into_error())?;
    out.push(b'\n');
    let mut w = csv::Writer::from_writer(out);
    w.write_record(["voter", "choice", "time"])?;
    for b in ballots {
        let choice: Cow<'_, str> = match b.ballot {
            Ballot::Choice(c) => c.as_str().into(),
            Ballot::Grade(g) => g.to_string().into(),
        };
        w.write_record([&*cell(&b.voter), &choice, &b.cast_at])?;
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
