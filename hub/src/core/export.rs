//! CSV exports: a session's tally, result and ballots (a secret one's
//! ballots apart from who voted), and the voter roll with its codes.
//! Shared by the HTTP API and the desktop app.

use std::borrow::Cow;

use crate::core::roll::Voter;
use crate::core::session::{Electorate, SessionView, Status};
use crate::core::store::{BallotRecord, SecretBallot};
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

/// The summary rows (`key,value`) every export begins with.
fn summary(session: &SessionView, options: &[String]) -> Vec<(String, String)> {
    let t = &session.tally;
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
    summary
}

/// The options' names, defused for a spreadsheet.
fn option_names(session: &SessionView) -> Vec<String> {
    session
        .options
        .iter()
        .flatten()
        .map(|o| cell(&o.name).into_owned())
        .collect()
}

/// Writes `rows` of `key,value`, then a blank line.
fn write_summary(rows: &[(String, String)]) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for (key, value) in rows {
        w.write_record([key, value])?;
    }
    let mut out = w.into_inner().map_err(|e| e.into_error())?;
    out.push(b'\n');
    Ok(out)
}

/// The cells of a ballot: its choice (or grade), or one per option.
fn ballot_cells(ballot: &Ballot, options: usize) -> Vec<Cow<'static, str>> {
    match ballot {
        Ballot::Choice(c) => vec![c.as_str().into()],
        Ballot::Grade(g) => vec![g.to_string().into()],
        Ballot::Selection(ids) => (0..options)
            .map(|i| {
                let chosen = ids.iter().any(|id| usize::from(*id) == i);
                Cow::Borrowed(if chosen { "x" } else { "" })
            })
            .collect(),
        Ballot::Approval(marks) => marks.iter().map(|m| m.as_str().into()).collect(),
    }
}

/// The head of the ballot columns: `choice`, or one per option.
fn ballot_head(options: &[String]) -> Vec<String> {
    if options.is_empty() {
        vec!["choice".into()]
    } else {
        options.to_vec()
    }
}

/// A named session: the summary (`key,value` rows), a blank line, then one
/// row per ballot: `voter,choice,time` for a motion (the grade on a nuanced
/// scale), and for an election `voter`, one column per option (`x` when
/// chosen; `for`, `against` or `abstain` in approval), then `time`. On the
/// roll, `voter` is the member's name (never their code) and two columns
/// follow: the `weight` the ballot counted with and, for a ballot cast by
/// proxy, who cast it (`by_proxy`).
pub fn session_csv(
    session: &SessionView,
    ballots: &[BallotRecord],
    name_of: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<u8>, csv::Error> {
    let options = option_names(session);
    let roll = session.electorate == Electorate::Roll;
    let mut w = csv::Writer::from_writer(write_summary(&summary(session, &options))?);
    let mut head = vec!["voter".to_owned()];
    head.extend(ballot_head(&options));
    head.push("time".into());
    if roll {
        head.push("weight".into());
        head.push("by_proxy".into());
    }
    w.write_record(&head)?;
    let name = |id: &str| name_of(id).unwrap_or_else(|| "(no longer on the roll)".into());
    for b in ballots {
        let voter = if roll {
            name(&b.voter)
        } else {
            b.voter.clone()
        };
        let mut row: Vec<Cow<'_, str>> = vec![cell(&voter).into_owned().into()];
        row.extend(ballot_cells(&b.ballot, options.len()));
        row.push(b.cast_at.to_rfc3339().into());
        if roll {
            row.push(b.weight.to_string().into());
            row.push(
                b.holder
                    .as_deref()
                    .map(|h| cell(&name(h)).into_owned())
                    .unwrap_or_default()
                    .into(),
            );
        }
        w.write_record(row.iter().map(|c| c.as_bytes()))?;
    }
    w.into_inner().map_err(|e| e.into_error().into())
}

/// A secret session: the summary, then who voted (`voted`, one name per
/// row, sorted), then — once the vote is closed — the ballots (`tracker`,
/// the choice or one column per option, `weight`), sorted by what they
/// say. Nothing in one part points into the other: no order, no time, no
/// id in common.
pub fn secret_csv(
    session: &SessionView,
    ballots: &[SecretBallot],
    voted: &[String],
) -> Result<Vec<u8>, csv::Error> {
    let options = option_names(session);
    let mut w = csv::Writer::from_writer(write_summary(&summary(session, &options))?);
    w.write_record(["voted"])?;
    let mut names: Vec<&String> = voted.iter().collect();
    names.sort();
    for name in names {
        w.write_record([&*cell(name)])?;
    }
    let mut out = w.into_inner().map_err(|e| e.into_error())?;
    out.push(b'\n');
    let mut w = csv::Writer::from_writer(out);
    if session.status != Status::Closed {
        // Until the close a secret vote shows no choice, here neither.
        w.write_record(["ballots are listed once the vote is closed"])?;
        return w.into_inner().map_err(|e| e.into_error().into());
    }
    let mut head = vec!["tracker".to_owned()];
    head.extend(ballot_head(&options));
    head.push("weight".into());
    w.write_record(&head)?;
    let mut rows: Vec<Vec<String>> = ballots
        .iter()
        .map(|b| {
            let mut row: Vec<String> = ballot_cells(&b.ballot, options.len())
                .into_iter()
                .map(Cow::into_owned)
                .collect();
            row.push(b.weight.to_string());
            row.push(cell(&b.tracker).into_owned());
            row
        })
        .collect();
    rows.sort();
    for mut row in rows {
        // The tracker was last only to sort by what the ballot says.
        let tracker = row.pop().unwrap_or_default();
        row.insert(0, tracker);
        w.write_record(&row)?;
    }
    w.into_inner().map_err(|e| e.into_error().into())
}

/// `name,code,groups,weight` (groups joined by `;`), for printing voting
/// cards.
pub fn roll_csv(roll: &[Voter]) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["name", "code", "groups", "weight"])?;
    for e in roll {
        w.write_record([
            &*cell(&e.name),
            &e.code,
            &e.groups.join(";"),
            &e.weight.to_string(),
        ])?;
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
        let roll = vec![Voter {
            name: "Ann".into(),
            code: "ABCD-EFGH".into(),
            groups: vec!["smith".into(), "council".into()],
            weight: 3,
            present: false,
            proxy_to: None,
            proxies: vec![],
        }];
        let csv = String::from_utf8(roll_csv(&roll).expect("csv")).expect("utf-8");
        assert_eq!(
            csv,
            "name,code,groups,weight\nAnn,ABCD-EFGH,smith;council,3\n"
        );
    }
}
