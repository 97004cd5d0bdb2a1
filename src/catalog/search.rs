//! The search index: character n-grams of listed products' titles and subtitles. Chinese has
//! no spaces, so instead of words we index every pair of neighbouring letters (and each CJK
//! character alone); a query matches the products that hold all of its grams, and the exact
//! substring is then checked. Portable across SQLite and PostgreSQL, no tokenizer needed.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::time::Duration;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::model::ProductCard;
use super::service::{lower, PER_PAGE};
use crate::cache::Ttl;
use crate::db::schema::{categories, products, search_grams as sg, shops};
use crate::db::{like_pattern, DbConn};
use crate::error::AppError;
use crate::pagination::{PageQuery, Paginated};
use crate::per_backend;
use crate::shops::model::{Category, ShopStatus};

pub fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F)
}

/// Runs of letters and digits, lower-cased.
fn runs(text: &str) -> Vec<Vec<char>> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    for c in text.to_lowercase().chars() {
        if c.is_alphanumeric() {
            cur.push(c);
        } else if !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The grams a text is indexed under: bigrams of every run, and single CJK characters.
pub fn grams(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for run in runs(text) {
        for w in run.windows(2) {
            out.insert(w.iter().collect());
        }
        for c in run.iter().filter(|c| is_cjk(**c)) {
            out.insert(c.to_string());
        }
    }
    out
}

/// The grams every match of a query must have; None when the query has none (a lone latin
/// letter), and the caller falls back to scanning.
pub fn query_grams(q: &str) -> Option<Vec<String>> {
    let mut out = BTreeSet::new();
    for run in runs(q) {
        if run.len() >= 2 {
            for w in run.windows(2) {
                out.insert(w.iter().collect::<String>());
            }
        } else if is_cjk(run[0]) {
            out.insert(run[0].to_string());
        }
    }
    (!out.is_empty()).then(|| out.into_iter().collect())
}

/// Replaces a product's grams (called whenever it becomes listed).
pub fn reindex(
    c: &mut DbConn,
    product_id: i64,
    title: &str,
    subtitle: &str,
) -> Result<(), AppError> {
    diesel::delete(sg::table.filter(sg::product_id.eq(product_id))).execute(c)?;
    let rows: Vec<_> = grams(&format!("{title} {subtitle}"))
        .into_iter()
        .map(|g| (sg::gram.eq(g), sg::product_id.eq(product_id)))
        .collect();
    for chunk in rows.chunks(500) {
        crate::per_backend!(c, |c| diesel::insert_into(sg::table)
            .values(chunk)
            .execute(c))?;
    }
    Ok(())
}

// ---------- the query ----------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    /// Best sellers first, then newest (the platforms' "综合").
    Overall,
    Newest,
    PriceAsc,
    PriceDesc,
    Sales,
}

impl Sort {
    pub const ALL: [Sort; 5] = [
        Sort::Overall,
        Sort::Newest,
        Sort::PriceAsc,
        Sort::PriceDesc,
        Sort::Sales,
    ];
    pub fn parse(s: &str) -> Sort {
        Self::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .unwrap_or(Sort::Overall)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Sort::Overall => "overall",
            Sort::Newest => "newest",
            Sort::PriceAsc => "price_asc",
            Sort::PriceDesc => "price_desc",
            Sort::Sales => "sales",
        }
    }
    /// The order of two hits, as the SQL `ORDER BY` of the same sort has it.
    fn cmp(self, a: &SortKey, b: &SortKey) -> Ordering {
        let by = match self {
            Sort::Overall | Sort::Sales => b.1.cmp(&a.1).then(b.4.cmp(&a.4)),
            Sort::Newest => b.4.cmp(&a.4),
            Sort::PriceAsc => a.2.cmp(&b.2),
            Sort::PriceDesc => b.3.cmp(&a.3),
        };
        by.then(b.0.cmp(&a.0))
    }
}

/// Search counts (and pages through) at most this many matches.
pub const SEARCH_CAP: i64 = 1000;

/// A query runs one of two ways. Read the rarest gram's postings whole, keep the products that
/// really contain the text, sort them here: the cost is the posting list's length. Or walk the
/// listed products in the requested order (an index per sort) and stop when the page is full:
/// the cost is the page's end divided by the share of products that match, small for common
/// words and unbounded for rare phrases. The walk is chosen only when that share is known (the
/// query ran in the last minute) or estimated to make it cheaper; a rarest gram with at most
/// this many postings is always read whole.
const POSTING_LIMIT: i64 = 2000;

/// A search hit with its shop.
pub struct SearchHit {
    pub product: ProductCard,
    pub shop_name: String,
    pub shop_slug: String,
}

type Row = (ProductCard, String, String);
/// id, sales, lowest and highest price, listed at: what the sorts order by.
type SortKey = (i64, i64, Option<i64>, Option<i64>, Option<NaiveDateTime>);

/// Counts that steer the search plan (postings per gram, listed products) and fill the
/// "N results" header of long result lists, each kept for a minute; result pages and the search
/// form's categories, kept [`PAGE_TTL`]. Counts never decide what is shown: every hit is read
/// live, its visibility checked.
pub struct SearchStats {
    counts: Ttl<i64>,
    /// The ids of a result page, in order, and the total.
    pages: Ttl<(Vec<i64>, i64)>,
    top_categories: Ttl<Vec<Category>>,
    /// Each storefront's category filter (the categories its listed products are in).
    shop_categories: Ttl<Vec<Category>>,
    force_walk: Option<bool>,
}

impl Default for SearchStats {
    fn default() -> Self {
        SearchStats {
            counts: Ttl::new(Duration::from_secs(60)),
            pages: Ttl::new(PAGE_TTL),
            top_categories: Ttl::new(PAGE_TTL),
            shop_categories: Ttl::new(PAGE_TTL),
            force_walk: None,
        }
    }
}

/// How long a result page's ids are reused. Only which products and in what order can be this
/// old (a new listing shows up in search within it); the cards are read live each time, so a
/// delisted product or a product of a shop put under restriction leaves search at once.
pub const PAGE_TTL: Duration = Duration::from_secs(15);

impl SearchStats {
    /// Always one plan (true: walk in order; false: read postings) when the query has grams:
    /// tests run both and check they give the same answer.
    pub fn forcing(walk: bool) -> SearchStats {
        SearchStats {
            force_walk: Some(walk),
            ..SearchStats::default()
        }
    }

    /// The search form's top categories (an admin's edit shows within [`PAGE_TTL`]).
    pub fn top_categories(
        &self,
        load: impl FnOnce() -> Result<Vec<Category>, AppError>,
    ) -> Result<Vec<Category>, AppError> {
        self.top_categories.get_or(String::new(), load)
    }

    /// A storefront's category filter, kept [`PAGE_TTL`] (a product listed in a new category
    /// shows in the filter within it; the product grid itself is always read live).
    pub fn shop_categories(
        &self,
        shop_id: i64,
        load: impl FnOnce() -> Result<Vec<Category>, AppError>,
    ) -> Result<Vec<Category>, AppError> {
        self.shop_categories.get_or(shop_id.to_string(), load)
    }
}

/// What the public may see: listed products of shops in good standing (restricted, suspended
/// and cleared shops are hidden from search). `search` repeats this test on the cards it shows.
macro_rules! visible {
    ($now:expr) => {
        products::status.eq("listed").and(
            shops::status.eq("active").or(shops::status
                .eq_any(["restricted", "suspended"])
                .and(shops::restricted_until.le($now))),
        )
    };
}

/// The exact test: the lower-cased query as a substring of the title or subtitle.
macro_rules! matches_text {
    ($pattern:expr) => {
        lower(products::title)
            .like($pattern.clone())
            .escape('\\')
            .or(lower(products::subtitle)
                .like($pattern.clone())
                .escape('\\'))
    };
}

/// Searches listed products of shops in good standing: case-insensitive substring over title
/// and subtitle (works for Chinese text without a tokenizer), optional category (with its
/// children), sorted. See [`POSTING_LIMIT`] for the two ways a query runs.
pub fn search(
    conn: &mut DbConn,
    stats: &SearchStats,
    q: &str,
    category: Option<i64>,
    sort: Sort,
    page: PageQuery,
    now: NaiveDateTime,
) -> Result<Paginated<SearchHit>, AppError> {
    let q = q.trim().to_lowercase();
    let page_no = page.number().min(SEARCH_CAP / PER_PAGE);
    let offset = (page_no - 1) * PER_PAGE;
    let cats: Option<Vec<i64>> = match category {
        Some(id) => {
            let mut ids: Vec<i64> = per_backend!(conn, |c| categories::table
                .filter(categories::parent_id.eq(id))
                .select(categories::id)
                .load(c))?;
            ids.push(id);
            Some(ids)
        }
        None => None,
    };
    let cats_key = cats.as_ref().map(|c| format!("{c:?}")).unwrap_or_default();
    let page_key = format!("{} {cats_key} {page_no} {q}", sort.as_str());
    let (ids, total) = stats.pages.get_or(page_key, || {
        find_page(conn, stats, &q, &cats, &cats_key, sort, offset, now)
    })?;
    // The cards, read live: visibility is checked now, whatever the page's age. (Checked here
    // rather than in SQL: with a status filter SQLite's planner, which has no statistics,
    // prefers scanning a status index over looking the ids up.)
    type Checked = (
        ProductCard,
        String,
        String,
        String,
        String,
        Option<NaiveDateTime>,
    );
    let found: Vec<Checked> = if ids.is_empty() {
        Vec::new()
    } else {
        per_backend!(conn, |c| products::table
            .inner_join(shops::table)
            .filter(products::id.eq_any(&ids))
            .select((
                ProductCard::as_select(),
                shops::name,
                shops::slug,
                products::status,
                shops::status,
                shops::restricted_until,
            ))
            .load(c))?
    };
    let mut rows: Vec<Row> = found
        .into_iter()
        .filter(|(.., product, shop, until)| {
            product == "listed" && ShopStatus::at(shop, *until, now) == ShopStatus::Active
        })
        .map(|(card, name, slug, ..)| (card, name, slug))
        .collect();
    rows.sort_by_key(|r| ids.iter().position(|id| *id == r.0.id));
    Ok(Paginated {
        items: rows
            .into_iter()
            .map(|(product, shop_name, shop_slug)| SearchHit {
                product,
                shop_name,
                shop_slug,
            })
            .collect(),
        page: page_no,
        per_page: PER_PAGE,
        total: total.min(SEARCH_CAP),
    })
}

/// The ids of one result page, in order, and the total number of matches (see
/// [`POSTING_LIMIT`] for the two plans).
#[allow(clippy::too_many_arguments)]
fn find_page(
    conn: &mut DbConn,
    stats: &SearchStats,
    q: &str,
    cats: &Option<Vec<i64>>,
    cats_key: &str,
    sort: Sort,
    offset: i64,
    now: NaiveDateTime,
) -> Result<(Vec<i64>, i64), AppError> {
    let pattern = like_pattern(q);
    // How many products matched this query a moment ago (up to the cap): counted by whichever
    // plan ran, it tells the next run which plan suits (the popular queries repeat).
    let matched_key = format!("n {cats_key} {q}");

    // The plan: how many postings each gram has, and how many matches to expect.
    let mut dfs: Vec<(String, i64)> = Vec::new();
    for g in query_grams(q).unwrap_or_default() {
        let df = stats.counts.get_or(format!("df {g}"), || {
            Ok(per_backend!(conn, |c| sg::table
                .filter(sg::gram.eq(&g))
                .count()
                .get_result::<i64>(c))?)
        })?;
        dfs.push((g, df));
    }
    dfs.sort_by_key(|(_, df)| *df);
    let walk = match (dfs.first(), stats.force_walk) {
        (None, _) => true,
        (Some(_), Some(forced)) => forced,
        (Some((_, df)), None) if *df <= POSTING_LIMIT => false,
        (Some((_, df)), None) => {
            let listed = stats.counts.get_or("listed".into(), || {
                Ok(per_backend!(conn, |c| products::table
                    .filter(products::status.eq("listed"))
                    .count()
                    .get_result::<i64>(c))?)
            })?;
            let n = listed.max(1) as f64;
            let matched = match stats.counts.get(&matched_key) {
                Some(m) => m as f64,
                None => {
                    // Never seen: estimate as if the grams were independent. That
                    // underestimates a long word (its grams come together), which then reads
                    // postings once, safely: a wrong walk could scan every listed product.
                    let share = match &cats {
                        None => 1.0,
                        Some(ids) => {
                            let in_cats =
                                stats.counts.get_or(format!("cats {cats_key}"), || {
                                    Ok(per_backend!(conn, |c| products::table
                                        .filter(products::status.eq("listed"))
                                        .filter(products::category_id.eq_any(ids))
                                        .count()
                                        .get_result::<i64>(c))?)
                                })?;
                            in_cats as f64 / n
                        }
                    };
                    dfs.iter()
                        .fold(n * share, |e, (_, df)| e * (*df as f64 / n))
                }
            };
            // Rows a walk reads to fill this page against the postings read whole.
            let walked = (offset + PER_PAGE) as f64 * n / matched.max(1.0);
            walked < *df as f64
        }
    };

    let (items, total) = if walk {
        let (rows, counted) = per_backend!(conn, |c| {
            let filtered = || {
                let mut b = products::table
                    .inner_join(shops::table)
                    .filter(visible!(now))
                    .into_boxed();
                if !q.is_empty() {
                    b = b.filter(matches_text!(pattern));
                }
                if let Some(ids) = cats {
                    b = b.filter(products::category_id.eq_any(ids.clone()));
                }
                b
            };
            let ordered = match sort {
                Sort::Overall | Sort::Sales => filtered().order((
                    products::sales_count.desc(),
                    products::listed_at.desc(),
                    products::id.desc(),
                )),
                Sort::Newest => filtered().order((products::listed_at.desc(), products::id.desc())),
                Sort::PriceAsc => {
                    filtered().order((products::price_min.asc(), products::id.desc()))
                }
                Sort::PriceDesc => {
                    filtered().order((products::price_max.desc(), products::id.desc()))
                }
            };
            let rows: Vec<i64> = ordered
                .limit(PER_PAGE)
                .offset(offset)
                .select(products::id)
                .load(c)?;
            // A short page tells the total; a full one needs a count (up to the cap), which
            // for a broad query reads thousands of rows: kept for a minute.
            let len = rows.len() as i64;
            let counted = if len < PER_PAGE && (len > 0 || offset == 0) {
                offset + len
            } else {
                stats
                    .counts
                    .get_or(matched_key.clone(), || {
                        Ok(filtered()
                            .select(products::id)
                            .limit(SEARCH_CAP + 1)
                            .load::<i64>(c)?
                            .len() as i64)
                    })?
                    // A full page proves at least this many, whatever a minute-old count says.
                    .max(if len > 0 { offset + len } else { 0 })
            };
            Ok::<_, AppError>((rows, counted))
        })?;
        (rows, counted)
    } else {
        // Every match is among the rarest gram's postings: read their sort keys, sort here.
        let gram = dfs.first().map(|(g, _)| g.clone()).unwrap_or_default();
        let mut keys: Vec<SortKey> = per_backend!(conn, |c| {
            let mut b = sg::table
                .inner_join(products::table.inner_join(shops::table))
                .filter(sg::gram.eq(&gram))
                .filter(visible!(now))
                .filter(matches_text!(pattern))
                .into_boxed();
            if let Some(ids) = cats {
                b = b.filter(products::category_id.eq_any(ids.clone()));
            }
            b.select((
                products::id,
                products::sales_count,
                products::price_min,
                products::price_max,
                products::listed_at,
            ))
            .load(c)
        })?;
        keys.sort_by(|a, b| sort.cmp(a, b));
        let total = keys.len() as i64;
        stats.counts.put(matched_key, total);
        let ids: Vec<i64> = keys
            .iter()
            .skip(offset as usize)
            .take(PER_PAGE as usize)
            .map(|k| k.0)
            .collect();
        (ids, total)
    };
    Ok((items, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grams_of_mixed_text() {
        let g = grams("纯棉T恤 Silk");
        for want in ["纯棉", "棉t", "t恤", "纯", "棉", "恤", "si", "il", "lk"] {
            assert!(g.contains(want), "{want} in {g:?}");
        }
        assert!(!g.contains("恤 "), "no grams across separators");
        assert_eq!(query_grams("T恤"), Some(vec!["t恤".to_string()]));
        assert_eq!(query_grams("茶"), Some(vec!["茶".to_string()]));
        assert_eq!(query_grams("x"), None);
        assert_eq!(query_grams("  "), None);
        assert_eq!(query_grams("亚麻 衬衫").map(|v| v.len()), Some(2));
    }
}
