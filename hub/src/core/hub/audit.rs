//! The hub's audit reads: proofs from the published log, a session's
//! newest head, its audit file (kept once a vote is closed), the digests
//! the minutes print, and the public key.

use std::collections::HashMap;

use uuid::Uuid;

use super::*;

impl Hub {
    /// The inclusion proof of leaf `index` of a session's log in its newest
    /// signed head, and the consistency proof from its tree of `from`
    /// leaves (read from what the writer published).
    pub fn proof(&self, session: Uuid, index: u64, from: Option<u64>) -> Result<Proof, HubError> {
        let registry = self.inner.board.read();
        if !registry.sessions.contains_key(&session) {
            return Err(HubError::SessionNotFound);
        }
        let log = registry.logs.get(&session);
        let (Some(log), Some(head)) = (log, log.and_then(|l| l.head)) else {
            return Err(HubError::NotInLog("this session has no log"));
        };
        prove(&log.leaves, &HeadWire::from(&head), index, from).map_err(|e| match e {
            ProofError::NoLeaf => HubError::NotInLog("the log has no leaf with this index"),
            ProofError::NoSize => HubError::NotInLog("the log never had this size"),
        })
    }

    /// A session's newest signed head, as screens show it.
    pub fn audit_head(&self, session: Uuid) -> Option<AuditHead> {
        let registry = self.inner.board.read();
        registry
            .logs
            .get(&session)
            .and_then(|l| l.head)
            .map(|h| AuditHead::of(&h))
    }

    /// A session's audit bundle: its log, every signed head, the roll as
    /// the vote opened and the result. Before the close, for moderators
    /// only (`admin`).
    pub async fn audit(&self, session: Uuid, admin: bool) -> Result<Bundle, HubError> {
        let view = self.session(session).ok_or(HubError::SessionNotFound)?;
        if view.status != Status::Closed && !admin {
            return Err(HubError::AdminOnly(
                "the audit file is public once the vote is closed",
            ));
        }
        let record = self.call(|r| Command::Log(session, r)).await?;
        let entries = record
            .entries
            .iter()
            .map(|e| serde_json::from_str(e))
            .collect::<Result<Vec<serde_json::Value>, _>>()
            .map_err(|e| HubError::Export(format!("a log entry is not JSON: {e}")))?;
        let roll = match &record.roll {
            Some(text) => serde_json::from_str(text)
                .map_err(|e| HubError::Export(format!("the log's roll is not JSON: {e}")))?,
            None => Vec::new(),
        };
        let last = record
            .heads
            .last()
            .ok_or(HubError::NotInLog("this session's log has no signed head"))?;
        let key = self.key();
        Ok(Bundle {
            format: FORMAT.into(),
            session,
            roll,
            entries,
            heads: record.heads.iter().map(HeadWire::from).collect(),
            head: FinalHead {
                size: last.size,
                root: hex::encode(last.root),
                signature: hex::encode(last.signature),
                public_key: key.public_key,
            },
            result: view.result,
            tally: serde_json::to_value(&view.tally).unwrap_or_default(),
        })
    }

    /// A session's audit file: its bundle as JSON bytes, exactly as served
    /// (the minutes print their SHA-256).
    pub async fn audit_file(&self, session: Uuid, admin: bool) -> Result<bytes::Bytes, HubError> {
        let is_closed = |hub: &Hub| {
            hub.session(session)
                .is_some_and(|v| v.status == Status::Closed)
        };
        let mut closed = is_closed(self);
        if !closed && self.session(session).is_some() && self.may_look_up() {
            // Closed on another node a moment ago, perhaps: asked for now
            // that it is public, it is read from the store first.
            self.follow(vec![session]).await?;
            closed = is_closed(self);
        }
        if !closed {
            return self.write_audit_file(session, admin).await.map(Into::into);
        }
        let mut kept = self.inner.audit_files.lock().await;
        if let Some(at) = kept.iter().position(|(id, _)| *id == session) {
            // The most asked for stays: moved to the back.
            if let Some(entry) = kept.remove(at) {
                let file = entry.1.clone();
                kept.push_back(entry);
                return Ok(file);
            }
        }
        let file = bytes::Bytes::from(self.write_audit_file(session, admin).await?);
        if kept.len() >= AUDIT_FILES_KEPT {
            kept.pop_front();
        }
        kept.push_back((session, file.clone()));
        Ok(file)
    }

    async fn write_audit_file(&self, session: Uuid, admin: bool) -> Result<Vec<u8>, HubError> {
        let bundle = self.audit(session, admin).await?;
        serde_json::to_vec(&bundle).map_err(|e| {
            tracing::error!(error = %e, "an audit bundle could not be written");
            HubError::Export(e.to_string())
        })
    }

    /// For the minutes: each closed session of `sessions` that keeps a log,
    /// with its final head's fingerprint and its audit file's SHA-256.
    pub async fn audit_digests(&self, sessions: &[SessionView]) -> HashMap<Uuid, (String, String)> {
        use sha2::Digest;
        let mut out = HashMap::new();
        for s in sessions.iter().filter(|s| s.status == Status::Closed) {
            let (Some(head), Ok(file)) = (&s.audit, self.audit_file(s.id, true).await) else {
                continue;
            };
            let digest = hex::encode(sha2::Sha256::digest(&file));
            out.insert(s.id, (head.fingerprint.clone(), digest));
        }
        out
    }

    /// The key that signs the logs' heads (`GET /api/key`).
    pub fn key(&self) -> KeyInfo {
        self.inner.key.clone()
    }
}
