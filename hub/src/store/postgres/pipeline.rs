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
}

impl ToSql for Cell {
    fn to_sql(
        &self,
        ty: &tokio_postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        // `accepts` answers for every variant at once: a column bound to a
        // scalar, or a scalar to an array, is an error here rather than a
        // panic in the encoder.
        let array = matches!(ty.kind(), tokio_postgres::types::Kind::Array(_));
        if array != matches!(self, Cell::Texts(_) | Cell::Ints(_)) {
            // Named by its kind only: the values may be a voter's.
            let kind = if array { "a single value" } else { "a column" };
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

/// Sends `pending` then `COMMIT`, in one round trip. A write that fails
/// aborts the transaction, and the `COMMIT` after it then rolls back:
/// nothing of the batch is kept, and its error is the batch's.
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
    // the order they were queued.
    let mut statements = Vec::with_capacity(pending.len());
    for q in pending {
        statements.push(c.prepare_cached(q.sql).await?);
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
