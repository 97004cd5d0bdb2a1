//! Writing statements whose SQL text is fixed, prepared once per connection.
//!
//! diesel marks every `UPDATE` and every upsert's `DO UPDATE` as not cacheable (a changeset may
//! skip `None` fields and so change the text), so each execution is parsed and planned again:
//! perf put that at ~5 % of the CPU of an order on SQLite, most of it on the group-commit
//! writer's serial path. A [`Fixed`] statement is written out once as SQL pieces around its
//! bound values, has a static query id (its [`FixedSql`] type), and is cached like a `SELECT`.
//! Execute it on the backend's own connection ([`crate::per_backend!`]). The SQL must mean the
//! same on SQLite and PostgreSQL (plain `UPDATE`, `INSERT … ON CONFLICT … DO UPDATE`), and each
//! statement must bind the same kinds of values in the same places every time.

use std::marker::PhantomData;

use chrono::NaiveDateTime;
use diesel::backend::Backend;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, HasSqlType, Text, Timestamp};
use diesel::{QueryResult, RunQueryDsl};

/// The SQL of one statement: the pieces around its bound values (one piece more than values).
pub trait FixedSql: 'static {
    const PIECES: &'static [&'static str];
}

/// A bound value.
#[derive(Debug, Clone)]
pub enum Arg {
    Int(i64),
    Text(String),
    Time(NaiveDateTime),
}

/// A [`FixedSql`] statement with its values.
#[derive(Debug, Clone)]
pub struct Fixed<S> {
    args: Vec<Arg>,
    sql: PhantomData<S>,
}

impl<S: FixedSql> Fixed<S> {
    pub fn new(args: Vec<Arg>) -> Self {
        debug_assert_eq!(
            S::PIECES.len(),
            args.len() + 1,
            "one piece more than values"
        );
        Fixed {
            args,
            sql: PhantomData,
        }
    }
}

impl<S: FixedSql> QueryId for Fixed<S> {
    type QueryId = S;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<S, DB> QueryFragment<DB> for Fixed<S>
where
    S: FixedSql,
    DB: Backend + HasSqlType<BigInt> + HasSqlType<Text> + HasSqlType<Timestamp>,
    i64: ToSql<BigInt, DB>,
    String: ToSql<Text, DB>,
    NaiveDateTime: ToSql<Timestamp, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        for (i, piece) in S::PIECES.iter().enumerate() {
            out.push_sql(piece);
            match self.args.get(i) {
                Some(Arg::Int(v)) => out.push_bind_param::<BigInt, i64>(v)?,
                Some(Arg::Text(v)) => out.push_bind_param::<Text, String>(v)?,
                Some(Arg::Time(v)) => out.push_bind_param::<Timestamp, NaiveDateTime>(v)?,
                None => {}
            }
        }
        Ok(())
    }
}

impl<S, Conn> RunQueryDsl<Conn> for Fixed<S> {}
