//! Child rows riding along in their parent's statement as one JSON array.
//!
//! A page that shows a record with its children (a product with its SKUs and a page of its
//! ratings) costs one statement per list. On SQLite that is cheap, but on PostgreSQL every
//! statement is a network round trip (and on a 2-core machine, context switches). A
//! [`JsonRows`] expression is a sub-select in the parent's select list that aggregates the
//! child rows into JSON text (`json_agg(json_build_array(…))` on PostgreSQL,
//! `json_group_array(json_array(…))` on SQLite), and the rows are read back with serde in the
//! order of the struct's fields ([`parse`]).
//!
//! diesel's own `sql()` literal marks a query as not cacheable, so every execution would be
//! parsed and planned again; a `JsonRows` has a static query id (its [`JsonSql`] type), so the
//! statement it is part of is prepared once per connection like any other diesel query.

use std::marker::PhantomData;

use chrono::NaiveDateTime;
use diesel::backend::Backend;
use diesel::expression::{
    is_aggregate, AppearsOnTable, Expression, SelectableExpression, ValidGrouping,
};
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::sqlite::Sqlite;
use diesel::QueryResult;
use serde::{Deserialize, Deserializer};

use crate::error::AppError;

/// The SQL of one sub-select, per backend: the pieces around its bound integers (one more
/// piece than the `N` integers of the [`JsonRows`]). It must yield one nullable text value:
/// a JSON array of arrays, NULL when there are no rows.
pub trait JsonSql: 'static {
    const POSTGRES: &'static [&'static str];
    const SQLITE: &'static [&'static str];
}

/// A [`JsonSql`] sub-select with its bound integers, usable in a diesel select list.
#[derive(Debug, Clone, Copy)]
pub struct JsonRows<S, const N: usize> {
    args: [i64; N],
    sql: PhantomData<S>,
}

impl<S: JsonSql, const N: usize> JsonRows<S, N> {
    pub fn new(args: [i64; N]) -> Self {
        JsonRows {
            args,
            sql: PhantomData,
        }
    }

    fn walk<'b, DB>(&'b self, pieces: &[&str], mut out: AstPass<'_, 'b, DB>) -> QueryResult<()>
    where
        DB: Backend + diesel::sql_types::HasSqlType<BigInt>,
        i64: diesel::serialize::ToSql<BigInt, DB>,
    {
        debug_assert_eq!(
            pieces.len(),
            N + 1,
            "a JsonSql needs one piece more than its args"
        );
        for (i, piece) in pieces.iter().enumerate() {
            out.push_sql(piece);
            if let Some(arg) = self.args.get(i) {
                out.push_bind_param::<BigInt, i64>(arg)?;
            }
        }
        Ok(())
    }
}

impl<S, const N: usize> Expression for JsonRows<S, N> {
    type SqlType = Nullable<Text>;
}

impl<S, QS, const N: usize> AppearsOnTable<QS> for JsonRows<S, N> {}
impl<S, QS, const N: usize> SelectableExpression<QS> for JsonRows<S, N> {}

impl<S, GB, const N: usize> ValidGrouping<GB> for JsonRows<S, N> {
    type IsAggregate = is_aggregate::Never;
}

impl<S: JsonSql, const N: usize> QueryId for JsonRows<S, N> {
    // The SQL depends only on `S` (and the backend, whose connection owns the cache).
    type QueryId = S;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<S: JsonSql, const N: usize> QueryFragment<Pg> for JsonRows<S, N> {
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.walk(S::POSTGRES, out)
    }
}

impl<S: JsonSql, const N: usize> QueryFragment<Sqlite> for JsonRows<S, N> {
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        self.walk(S::SQLITE, out)
    }
}

/// The rows of a [`JsonRows`] value (None, the SQL NULL of no rows, is an empty list).
pub fn parse<T: for<'de> Deserialize<'de>>(json: Option<&str>) -> Result<Vec<T>, AppError> {
    match json {
        None => Ok(Vec::new()),
        Some(text) => serde_json::from_str(text)
            .map_err(|e| AppError::Internal(format!("child rows in JSON: {e}"))),
    }
}

/// A timestamp as either backend writes it into JSON: PostgreSQL `2026-11-30T20:04:00.123`,
/// SQLite the stored text `2026-11-30 20:04:00.123`.
pub fn time<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDateTime, D::Error> {
    let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
    parse_time(&text).ok_or_else(|| serde::de::Error::custom(format!("not a timestamp: {text}")))
}

/// [`time`] for a nullable column.
pub fn time_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NaiveDateTime>, D::Error> {
    match Option::<std::borrow::Cow<'de, str>>::deserialize(d)? {
        None => Ok(None),
        Some(text) => parse_time(&text)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("not a timestamp: {text}"))),
    }
}

fn parse_time(text: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f"))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_of_both_backends_parse_to_the_same_time() {
        let pg = parse_time("2026-11-30T20:04:00.123456").unwrap();
        let sqlite = parse_time("2026-11-30 20:04:00.123456").unwrap();
        assert_eq!(pg, sqlite);
        assert_eq!(pg.to_string(), "2026-11-30 20:04:00.123456");
        assert_eq!(
            parse_time("2026-11-30 20:04:00").unwrap().to_string(),
            "2026-11-30 20:04:00"
        );
        assert!(parse_time("30/11/2026").is_none());
    }

    #[derive(Deserialize, Debug, PartialEq)]
    struct Row {
        id: i64,
        name: String,
        #[serde(deserialize_with = "time_opt")]
        at: Option<NaiveDateTime>,
    }

    #[test]
    fn rows_parse_in_field_order_and_null_is_no_rows() {
        let rows: Vec<Row> =
            parse(Some(r#"[[1,"a",null],[2,"b\"c","2026-01-02 03:04:05"]]"#)).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].name, "b\"c");
        assert_eq!(rows[1].at, parse_time("2026-01-02T03:04:05"));
        assert_eq!(rows[0].at, None);
        assert!(parse::<Row>(None).unwrap().is_empty());
        assert!(parse::<Row>(Some("[[1]]")).is_err());
    }
}
