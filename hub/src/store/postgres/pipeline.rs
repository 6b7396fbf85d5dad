//! A batch's writes sent together: queued with owned values (`Cell`),
//! then sent in order on one connection, which pipelines them — before the
//! next read, or with the commit, in one round trip.

use deadpool_postgres::Object;
use tokio_postgres::types::ToSql;

use crate::core::store::StoreError;

/// A value of a queued write, owned until it is sent.
#[derive(Debug)]
pub(super) enum Cell {
    Text(Option<String>),
    Int(Option<i64>),
    Bytes(Vec<u8>),
    /// A column of a multi-row write (`unnest`).
    Texts(Vec<Option<String>>),
    Ints(Vec<Option<i64>>),
}

impl Cell {
    pub(super) fn text(s: impl Into<String>) -> Cell {
        Cell::Text(Some(s.into()))
    }

    /// Whether this value can be bound to a parameter of type `ty` (a
    /// column to an array, a single value to a scalar, of a type it
    /// encodes to).
    fn fits(&self, ty: &tokio_postgres::types::Type) -> bool {
        let array = matches!(ty.kind(), tokio_postgres::types::Kind::Array(_));
        match self {
            Cell::Text(_) => !array && <Option<String> as ToSql>::accepts(ty),
            Cell::Int(_) => !array && <Option<i64> as ToSql>::accepts(ty),
            Cell::Bytes(_) => !array && <Vec<u8> as ToSql>::accepts(ty),
            Cell::Texts(_) => array && <Vec<Option<String>> as ToSql>::accepts(ty),
            Cell::Ints(_) => array && <Vec<Option<i64>> as ToSql>::accepts(ty),
        }
    }
}

impl ToSql for Cell {
    fn to_sql(
        &self,
        ty: &tokio_postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        // `accepts` answers for every variant at once: a column bound to a
        // scalar, or a scalar to an array, is an error here rather than a
        // panic in the encoder. (`send` and `commit` check every value
        // before anything leaves; this is for any other caller.)
        if !self.fits(ty) {
            // Named by its kind only: the values may be a voter's.
            let kind = if matches!(self, Cell::Texts(_) | Cell::Ints(_)) {
                "a column"
            } else {
                "a single value"
            };
            return Err(format!("{kind} bound to a parameter of type {ty}").into());
        }
        match self {
            Cell::Text(v) => v.to_sql(ty, out),
            Cell::Int(v) => v.to_sql(ty, out),
            Cell::Bytes(v) => v.to_sql(ty, out),
            Cell::Texts(v) => v.to_sql(ty, out),
            Cell::Ints(v) => v.to_sql(ty, out),
        }
    }

    fn accepts(ty: &tokio_postgres::types::Type) -> bool {
        <Option<String> as ToSql>::accepts(ty)
            || <Option<i64> as ToSql>::accepts(ty)
            || <Vec<u8> as ToSql>::accepts(ty)
            || <Vec<Option<String>> as ToSql>::accepts(ty)
            || <Vec<Option<i64>> as ToSql>::accepts(ty)
    }

    tokio_postgres::types::to_sql_checked!();
}

/// A write waiting to be sent. Whatever it must find (a row to update) it
/// checks in its SQL, failing the transaction: its answer may come only
/// with the commit's.
pub(super) struct Queued {
    pub sql: &'static str,
    pub cells: Vec<Cell>,
}

impl Queued {
    pub fn new(sql: &'static str, cells: Vec<Cell>) -> Queued {
        Queued { sql, cells }
    }
}

/// Sends `pending` in order and waits for every answer: any error fails
/// the batch.
pub(super) async fn send(c: &Object, pending: &[Queued]) -> Result<(), StoreError> {
    for done in writes(c, pending, None).await? {
        done?;
    }
    Ok(())
}

/// Sends `pending` then `COMMIT`, in one round trip. Every value is
/// checked against its parameter before anything leaves, so a write can
/// fail only at the server, which aborts the transaction: the `COMMIT`
/// after it then rolls back, nothing of the batch is kept, and the write's
/// error is the batch's.
pub(super) async fn commit(c: &Object, pending: &[Queued]) -> Result<(), StoreError> {
    for done in writes(c, pending, Some("COMMIT")).await? {
        done?;
    }
    Ok(())
}

/// Sends `pending` in order, then `last` (a statement without
/// parameters), and gives every answer in order.
async fn writes(
    c: &Object,
    pending: &[Queued],
    last: Option<&str>,
) -> Result<Vec<Result<(), StoreError>>, StoreError> {
    // Prepared first (cached: no round trip), so that the writes leave in
    // the order they were queued; and their values checked against their
    // parameters before anything leaves. A value the client cannot encode
    // fails its write without the server seeing it: the transaction would
    // not be aborted, and the COMMIT sent after it would keep the rest.
    let mut statements = Vec::with_capacity(pending.len());
    for q in pending {
        let stmt = c.prepare_cached(q.sql).await?;
        let params = stmt.params();
        if params.len() != q.cells.len()
            || !q.cells.iter().zip(params).all(|(cell, ty)| cell.fits(ty))
        {
            // Named by its statement only: the values may be a voter's.
            return Err(StoreError::Inconsistent(format!(
                "values that do not fit the parameters of: {}",
                q.sql
            )));
        }
        statements.push(stmt);
    }
    let writes = pending.iter().zip(&statements).map(|(q, stmt)| {
        let params: Vec<&(dyn ToSql + Sync)> =
            q.cells.iter().map(|c| c as &(dyn ToSql + Sync)).collect();
        async move { c.execute(stmt, &params).await.map(drop) }
    });
    // Each request leaves when its future is first polled: the writes in
    // order, then `last`.
    let (done, last) =
        futures_util::future::join(futures_util::future::join_all(writes), async move {
            match last {
                Some(sql) => c.batch_execute(sql).await,
                None => Ok(()),
            }
        })
        .await;
    let mut done: Vec<Result<(), StoreError>> = done
        .into_iter()
        .map(|r| r.map_err(StoreError::from))
        .collect();
    done.push(last.map_err(StoreError::from));
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_postgres::types::Type;

    #[test]
    fn a_value_fits_only_a_parameter_of_its_kind_and_type() {
        assert!(Cell::text("a").fits(&Type::TEXT));
        assert!(Cell::Int(Some(1)).fits(&Type::INT8));
        assert!(Cell::Bytes(vec![1]).fits(&Type::BYTEA));
        assert!(Cell::Texts(vec![None]).fits(&Type::TEXT_ARRAY));
        assert!(Cell::Ints(vec![Some(1)]).fits(&Type::INT8_ARRAY));
        // A column for a single value and the reverse; an i64 for an int4.
        assert!(!Cell::Texts(vec![None]).fits(&Type::TEXT));
        assert!(!Cell::text("a").fits(&Type::TEXT_ARRAY));
        assert!(!Cell::Int(Some(1)).fits(&Type::INT4));
        assert!(!Cell::Ints(vec![Some(1)]).fits(&Type::INT4_ARRAY));
    }
}
