//! A batch's ballots, log entries and kept answers gathered into one
//! multi-row statement per table (`INSERT … SELECT FROM unnest(arrays)`),
//! instead of one statement per row: PostgreSQL spends most of a small
//! statement's time parsing, planning and answering it, not writing the
//! row, and every node's ballots for a session wait on its lock meanwhile.
//! The rows go out, in place, before any other statement of the batch
//! (the transaction calls [`Bulk::spill`]), so that order is kept.

use std::collections::HashMap;

use super::pipeline::{Cell, Queued};

/// One ballot row, as its columns.
pub(super) struct BallotRow {
    pub session: String,
    pub voter: String,
    pub choice: Option<String>,
    pub grade: Option<i64>,
    pub options: Option<String>,
    pub marks: Option<String>,
    pub cast_at: String,
    pub weight: i64,
    pub groups: Option<String>,
    pub holder: Option<String>,
    pub seq: Option<i64>,
}

#[derive(Default)]
pub(super) struct Bulk {
    ballots: Vec<BallotRow>,
    /// Where a voter's row is: a change of mind within the batch replaces
    /// it (one statement may not write a row twice).
    ballot_at: HashMap<(String, String), usize>,
    entries: Vec<(i64, String)>,
    /// Session, voter, ballot id, answer.
    answers: Vec<[String; 4]>,
}

impl Bulk {
    pub fn ballot(&mut self, row: BallotRow) {
        let key = (row.session.clone(), row.voter.clone());
        match self.ballot_at.get(&key) {
            Some(&at) => self.ballots[at] = row,
            None => {
                self.ballot_at.insert(key, self.ballots.len());
                self.ballots.push(row);
            }
        }
    }

    pub fn entry(&mut self, id: i64, entry: String) {
        self.entries.push((id, entry));
    }

    pub fn answer(&mut self, row: [String; 4]) {
        self.answers.push(row);
    }

    /// Appends the gathered rows to `pending` as one statement per table,
    /// and starts again empty.
    pub fn spill(&mut self, pending: &mut Vec<Queued>) {
        let ballots = std::mem::take(&mut self.ballots);
        self.ballot_at.clear();
        if !ballots.is_empty() {
            pending.push(Queued::new(INSERT_BALLOTS, ballot_columns(ballots)));
        }
        let entries = std::mem::take(&mut self.entries);
        if !entries.is_empty() {
            let (ids, texts): (Vec<_>, Vec<_>) = entries
                .into_iter()
                .map(|(id, text)| (Some(id), Some(text)))
                .unzip();
            pending.push(Queued::new(
                INSERT_ENTRIES,
                vec![Cell::Ints(ids), Cell::Texts(texts)],
            ));
        }
        let answers = std::mem::take(&mut self.answers);
        if !answers.is_empty() {
            let mut columns: [Vec<Option<String>>; 4] = Default::default();
            for row in answers {
                for (column, value) in columns.iter_mut().zip(row) {
                    column.push(Some(value));
                }
            }
            pending.push(Queued::new(
                INSERT_ANSWERS,
                columns.into_iter().map(Cell::Texts).collect(),
            ));
        }
    }
}

fn ballot_columns(rows: Vec<BallotRow>) -> Vec<Cell> {
    fn column<T>(n: usize) -> Vec<T> {
        Vec::with_capacity(n)
    }
    let n = rows.len();
    let (mut session, mut voter, mut choice, mut options) =
        (column(n), column(n), column(n), column(n));
    let (mut marks, mut cast_at, mut groups, mut holder) =
        (column(n), column(n), column(n), column(n));
    let (mut grade, mut weight, mut seq) = (column(n), column(n), column(n));
    for r in rows {
        session.push(Some(r.session));
        voter.push(Some(r.voter));
        choice.push(r.choice);
        grade.push(r.grade);
        options.push(r.options);
        marks.push(r.marks);
        cast_at.push(Some(r.cast_at));
        weight.push(Some(r.weight));
        groups.push(r.groups);
        holder.push(r.holder);
        seq.push(r.seq);
    }
    // In the order of INSERT_BALLOTS' columns.
    vec![
        Cell::Texts(session),
        Cell::Texts(voter),
        Cell::Texts(choice),
        Cell::Ints(grade),
        Cell::Texts(options),
        Cell::Texts(marks),
        Cell::Texts(cast_at),
        Cell::Ints(weight),
        Cell::Texts(groups),
        Cell::Texts(holder),
        Cell::Ints(seq),
    ]
}

const INSERT_BALLOTS: &str =
    "INSERT INTO ballots (session_id, voter, choice, grade, options, marks,
        cast_at, weight, groups, holder, seq)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[],
        $6::text[], $7::text[], $8::bigint[], $9::text[], $10::text[], $11::bigint[])
     ON CONFLICT (session_id, voter) DO UPDATE
     SET choice = excluded.choice, grade = excluded.grade, options = excluded.options,
         marks = excluded.marks, cast_at = excluded.cast_at,
         weight = excluded.weight, groups = excluded.groups, holder = excluded.holder,
         seq = excluded.seq";

const INSERT_ENTRIES: &str =
    "INSERT INTO log_entries (id, entry) SELECT * FROM unnest($1::bigint[], $2::text[])";

const INSERT_ANSWERS: &str = "INSERT INTO answers (session_id, voter, ballot_id, answer)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])";
