//! Agenda files: the day's votes prepared in advance, as JSON (an array of
//! sessions as `POST /api/sessions` takes them) or CSV (one vote per line:
//! title, description, kind, options, seats, rule, and optional columns).
//! A file is read as a whole: the first bad line refuses it, named with the
//! field that is wrong.

use serde_json::value::RawValue;

use crate::core::error::HubError;
use crate::core::rules::{Method, RuleSpec};
use crate::core::session::KindName;
use crate::core::spec::SessionSpec;
use crate::core::tally::Scale;

/// Votes in one file at most.
pub const MAX_IMPORT: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
}

impl Format {
    /// JSON when the file starts like JSON, CSV otherwise.
    pub fn sniff(text: &str) -> Format {
        match text.trim_start().chars().next() {
            Some('[' | '{') => Format::Json,
            _ => Format::Csv,
        }
    }
}

fn refuse(line: usize, field: Option<&str>, message: impl std::fmt::Display) -> HubError {
    HubError::InvalidSession(match field {
        Some(field) => format!("line {line}, field \"{field}\": {message}"),
        None => format!("line {line}: {message}"),
    })
}

/// Each vote of the file with the line it starts on.
pub fn parse(text: &str, format: Format) -> Result<Vec<(usize, SessionSpec)>, HubError> {
    let specs = match format {
        Format::Json => parse_json(text)?,
        Format::Csv => parse_csv(text)?,
    };
    if specs.is_empty() {
        return Err(HubError::InvalidSession(
            "the agenda file lists no vote".into(),
        ));
    }
    if specs.len() > MAX_IMPORT {
        return Err(HubError::InvalidSession(format!(
            "an agenda file lists {MAX_IMPORT} votes at most"
        )));
    }
    Ok(specs)
}

fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

fn parse_json(text: &str) -> Result<Vec<(usize, SessionSpec)>, HubError> {
    #[derive(serde::Deserialize)]
    struct Wrapped<'a> {
        #[serde(borrow)]
        sessions: Vec<&'a RawValue>,
    }
    let parsed = if text.trim_start().starts_with('{') {
        serde_json::from_str::<Wrapped<'_>>(text).map(|w| w.sessions)
    } else {
        serde_json::from_str::<Vec<&RawValue>>(text)
    };
    let items = parsed.map_err(|e| {
        refuse(
            e.line().max(1),
            None,
            "the file is not a JSON list of votes ([{\"title\": …}, …])",
        )
    })?;
    items
        .into_iter()
        .map(|raw| {
            // Where the item starts in the file: its line number.
            let at = raw.get().as_ptr() as usize - text.as_ptr() as usize;
            let line = line_of(text, at);
            serde_json::from_str::<SessionSpec>(raw.get())
                .map(|spec| (line, spec))
                .map_err(|e| refuse(line + e.line().saturating_sub(1), None, e))
        })
        .collect()
}

/// The columns a CSV agenda may have; `title` is required.
const COLUMNS: &[&str] = &[
    "title",
    "description",
    "kind",
    "options",
    "seats",
    "method",
    "min",
    "max",
    "rule",
    "electorate",
    "scale",
    "duration_s",
    "closes_at",
];

fn parse_csv(text: &str) -> Result<Vec<(usize, SessionSpec)>, HubError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| refuse(1, None, format!("the header row cannot be read: {e}")))?
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    if let Some(unknown) = headers.iter().find(|h| !COLUMNS.contains(&h.as_str())) {
        return Err(refuse(
            1,
            Some(unknown),
            format!("unknown column; the columns are {}", COLUMNS.join(", ")),
        ));
    }
    if !headers.iter().any(|h| h == "title") {
        return Err(refuse(1, None, "the header row needs a \"title\" column"));
    }
    let mut specs = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line() as usize);
            refuse(line, None, e)
        })?;
        let line = record.position().map_or(0, |p| p.line() as usize);
        let mut spec = SessionSpec::default();
        for (name, value) in headers.iter().zip(record.iter()) {
            if value.is_empty() {
                continue;
            }
            set(&mut spec, name, value).map_err(|m| refuse(line, Some(name), m))?;
        }
        specs.push((line, spec));
    }
    Ok(specs)
}

fn number(value: &str) -> Result<u64, String> {
    value
        .parse()
        .map_err(|_| format!("{value:?} is not a whole number"))
}

fn set(spec: &mut SessionSpec, name: &str, value: &str) -> Result<(), String> {
    match name {
        "title" => spec.title = Some(value.into()),
        "description" => spec.description = Some(value.into()),
        "kind" => {
            spec.kind = Some(match value.to_ascii_lowercase().as_str() {
                "motion" => KindName::Motion,
                "election" => KindName::Election,
                _ => return Err("the kind is motion or election".into()),
            })
        }
        "options" => {
            let options: Vec<String> = value.split(';').map(|o| o.trim().to_owned()).collect();
            spec.options = Some(Some(options));
        }
        "seats" => spec.seats = Some(Some(number(value)?)),
        "min" => spec.min = Some(Some(number(value)?)),
        "max" => spec.max = Some(Some(number(value)?)),
        "duration_s" => spec.duration_s = Some(Some(number(value)?)),
        "closes_at" => spec.closes_at = Some(Some(value.into())),
        "method" => {
            spec.method = Some(Some(match value.to_ascii_lowercase().as_str() {
                "selection" => Method::Selection,
                "approval" => Method::Approval,
                _ => return Err("the method is selection or approval".into()),
            }))
        }
        "scale" => {
            spec.scale = Some(match value.to_ascii_lowercase().as_str() {
                "choice" => Scale::Choice,
                "nuanced" => Scale::Nuanced,
                _ => return Err("the scale is choice or nuanced".into()),
            })
        }
        "electorate" => {
            spec.electorate = Some(
                serde_json::from_value(serde_json::Value::String(value.to_ascii_lowercase()))
                    .map_err(|_| "the electorate is open or roll".to_owned())?,
            )
        }
        "rule" => spec.rule = Some(rule(value)?),
        _ => return Err("unknown column".into()),
    }
    Ok(())
}

/// A rule as an organiser writes it in a cell: `majority`,
/// `supermajority 2/3` (or `0.66`), `inertia`, or the JSON of the API.
fn rule(value: &str) -> Result<RuleSpec, String> {
    if value.starts_with('{') {
        return serde_json::from_str(value).map_err(|e| format!("not a rule: {e}"));
    }
    let mut words = value
        .split(|c: char| c.is_whitespace() || c == ':')
        .filter(|w| !w.is_empty());
    let kind = words.next().unwrap_or_default().to_ascii_lowercase();
    let ratio = match words.next() {
        None => None,
        Some(r) => Some(match r.split_once('/') {
            Some((a, b)) => {
                let (a, b): (f64, f64) = (
                    a.parse().map_err(|_| format!("{r:?} is not a ratio"))?,
                    b.parse().map_err(|_| format!("{r:?} is not a ratio"))?,
                );
                a / b
            }
            None => r.parse().map_err(|_| format!("{r:?} is not a ratio"))?,
        }),
    };
    match kind.as_str() {
        "majority" | "inertia" if ratio.is_none() => Ok(RuleSpec {
            kind,
            ..RuleSpec::default()
        }),
        "supermajority" => Ok(RuleSpec {
            kind,
            ratio,
            ..RuleSpec::default()
        }),
        _ => Err(
            "the rule is majority, supermajority RATIO (e.g. 2/3), inertia, or a JSON rule".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(e: HubError) -> String {
        e.to_string()
    }

    #[test]
    fn csv_one_vote_per_line() {
        let file = "title,description,kind,options,seats,rule\n\
                    Budget,Adopt the budget,motion,,,supermajority 2/3\n\
                    Board,,election,Ann;Bob;Cy,2,\n";
        let specs = parse(file, Format::sniff(file)).expect("parses");
        assert_eq!(specs.len(), 2);
        assert_eq!(specs[0].0, 2);
        assert_eq!(specs[0].1.title.as_deref(), Some("Budget"));
        let ratio = specs[0]
            .1
            .rule
            .as_ref()
            .and_then(|r| r.ratio)
            .expect("ratio");
        assert!((ratio - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(specs[1].0, 3);
        assert_eq!(specs[1].1.kind, Some(KindName::Election));
        assert_eq!(
            specs[1].1.options,
            Some(Some(vec!["Ann".into(), "Bob".into(), "Cy".into()]))
        );
        assert_eq!(specs[1].1.seats, Some(Some(2)));
    }

    #[test]
    fn a_bad_csv_line_is_named_with_its_field() {
        let file = "title,seats\nBudget,\nBoard,two\n";
        let e = message(parse(file, Format::Csv).expect_err("refused"));
        assert_eq!(e, "line 3, field \"seats\": \"two\" is not a whole number");
        let e = message(parse("title,colour\nA,red\n", Format::Csv).expect_err("refused"));
        assert!(
            e.starts_with("line 1, field \"colour\": unknown column"),
            "{e}"
        );
        let e = message(parse("title,rule\nA,unanimity\n", Format::Csv).expect_err("refused"));
        assert!(e.starts_with("line 2, field \"rule\""), "{e}");
    }

    #[test]
    fn json_items_know_their_line() {
        let file = "[\n  {\"title\": \"Budget\"},\n  {\"title\": \"Board\",\n   \"kind\": \"election\", \"options\": [\"A\", \"B\"]}\n]";
        let specs = parse(file, Format::sniff(file)).expect("parses");
        assert_eq!(specs.iter().map(|(l, _)| *l).collect::<Vec<_>>(), [2, 3]);
        let bad = "[\n  {\"title\": \"Budget\"},\n  {\"title\": \"Board\",\n   \"colour\": 1}\n]";
        let e = message(parse(bad, Format::Json).expect_err("refused"));
        assert!(e.starts_with("line 4: unknown field `colour`"), "{e}");
        let wrapped = "{\"sessions\": [{\"title\": \"A\"}]}";
        assert_eq!(parse(wrapped, Format::Json).expect("parses").len(), 1);
        assert!(parse("[]", Format::Json).is_err());
        assert!(parse("[1,", Format::Json).is_err());
    }
}
