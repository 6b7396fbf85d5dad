//! Roll files: the members of an assembly prepared in a spreadsheet, as CSV
//! with a header row naming its columns — `name` (required), `groups`
//! (separated by `;`), `weight` (a whole number, 1 by default); French
//! headers (`nom`, `groupes`, `poids`) are read too, and so are files
//! separated by `;` (as spreadsheets save them in French), whose groups are
//! then separated by `,`. A file is read as a whole: the first bad line
//! refuses it, named with the field that is wrong, and nothing is
//! registered.

use std::collections::HashMap;

use crate::core::error::HubError;
use crate::core::roll::{NewVoter, check_groups, check_name, weight};

fn refuse(line: u64, field: Option<&str>, message: impl std::fmt::Display) -> HubError {
    HubError::InvalidRoll(match field {
        Some(field) => format!("line {line}, field \"{field}\": {message}"),
        None => format!("line {line}: {message}"),
    })
}

/// The line (from 1) of byte `at` of `text`.
fn line_of(text: &str, at: u64) -> u64 {
    let bytes = text.as_bytes();
    let mut at = usize::try_from(at).unwrap_or(usize::MAX).min(bytes.len());
    // A record's position is where the reader began it, before any blank
    // lines it skipped.
    while at < bytes.len() && matches!(bytes[at], b'\n' | b'\r') {
        at += 1;
    }
    bytes[..at].iter().filter(|b| **b == b'\n').count() as u64 + 1
}

/// The members of a roll file, in its order.
pub fn parse(text: &str) -> Result<Vec<NewVoter>, HubError> {
    let header = text.lines().next().unwrap_or("");
    let (delimiter, between_groups) = if header.contains(';') && !header.contains(',') {
        (b';', ',')
    } else {
        (b',', ';')
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(false)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| refuse(1, None, e))?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_lowercase())
        .collect::<Vec<_>>();
    let column = |names: &[&str]| headers.iter().position(|h| names.contains(&h.as_str()));
    let name_at = column(&["name", "nom"]).ok_or_else(|| {
        refuse(
            1,
            None,
            "the first line names the columns: name, and optionally groups and weight",
        )
    })?;
    let groups_at = column(&["groups", "group", "groupes", "groupe"]);
    let weight_at = column(&["weight", "poids"]);
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut voters = Vec::new();
    for record in reader.records() {
        // Lines are counted from the bytes: the reader skips blank lines
        // without counting them.
        let record = record.map_err(|e| {
            let line = e.position().map(|p| line_of(text, p.byte())).unwrap_or(0);
            refuse(line, None, e)
        })?;
        let line = record
            .position()
            .map(|p| line_of(text, p.byte()))
            .unwrap_or(0);
        if record.iter().all(str::is_empty) {
            continue;
        }
        let cell = |at: Option<usize>| at.and_then(|i| record.get(i)).unwrap_or("");
        let name = check_name(cell(Some(name_at))).map_err(|e| refuse(line, Some("name"), e))?;
        if let Some(first) = seen.insert(name.clone(), line) {
            return Err(refuse(
                line,
                Some("name"),
                format!("{name:?} is already on line {first}"),
            ));
        }
        let groups: Vec<String> = cell(groups_at)
            .split(between_groups)
            .map(str::trim)
            .filter(|g| !g.is_empty())
            .map(str::to_owned)
            .collect();
        let groups = check_groups(&groups).map_err(|e| refuse(line, Some("groups"), e))?;
        let weight = match cell(weight_at) {
            "" => None,
            w => {
                let n: serde_json::Value = w
                    .parse::<u64>()
                    .map(serde_json::Value::from)
                    .unwrap_or_else(|_| serde_json::Value::String(w.to_owned()));
                weight(&n).map_err(|e| refuse(line, Some("weight"), e))?;
                Some(n)
            }
        };
        voters.push(NewVoter {
            name,
            groups,
            weight,
        });
    }
    if voters.is_empty() {
        return Err(HubError::InvalidRoll("the roll file lists no one".into()));
    }
    Ok(voters)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_groups_and_weights_are_read() {
        let voters = parse("name,groups,weight\nAnn,smith;council,3\n\"Bob, Jr\",,\n").expect("ok");
        assert_eq!(voters.len(), 2);
        assert_eq!(voters[0].groups, vec!["council", "smith"]);
        assert_eq!(voters[0].weight, Some(serde_json::json!(3)));
        assert_eq!(
            (voters[1].name.as_str(), &voters[1].weight),
            ("Bob, Jr", &None)
        );
        let fr = parse("\u{feff}Nom;Groupes;Poids\nAnn;conseil,forge;2\n").expect("ok");
        assert_eq!(fr[0].weight, Some(serde_json::json!(2)));
        assert_eq!(fr[0].groups, vec!["conseil", "forge"]);
    }

    #[test]
    fn one_bad_line_refuses_the_file_and_is_named() {
        for (file, says) in [
            ("name,weight\nAnn,1\nBob,0\n", "line 3, field \"weight\""),
            ("name,weight\nAnn,2.5\n", "line 2, field \"weight\""),
            ("name,weight\nAnn,-1\n", "line 2, field \"weight\""),
            ("name,weight\nAnn,1000001\n", "line 2, field \"weight\""),
            ("name\nAnn\n\nAnn\n", "line 4, field \"name\""),
            ("who,weight\nAnn,1\n", "line 1"),
            ("name,weight\nAnn\n", "line 2"),
        ] {
            match parse(file) {
                Err(HubError::InvalidRoll(m)) => assert!(m.starts_with(says), "{file:?}: {m}"),
                other => panic!("{file:?} was {other:?}"),
            }
        }
    }
}
