//! Pagination for long lists: `?page=N`, clamped, with the total for "page x of y".

#[derive(Debug, Clone, Copy, serde::Deserialize)]
pub struct PageQuery {
    pub page: Option<i64>,
}

impl PageQuery {
    /// 1-based page number, at least 1 and at most 10,000.
    pub fn number(&self) -> i64 {
        self.page.unwrap_or(1).clamp(1, 10_000)
    }
    pub fn offset(&self, per_page: i64) -> i64 {
        (self.number() - 1) * per_page
    }
}

#[derive(Debug, Clone)]
pub struct Paginated<T> {
    pub items: Vec<T>,
    pub page: i64,
    pub per_page: i64,
    pub total: i64,
}

impl<T> Paginated<T> {
    pub fn pages(&self) -> i64 {
        ((self.total + self.per_page - 1) / self.per_page.max(1)).max(1)
    }
    pub fn has_prev(&self) -> bool {
        self.page > 1
    }
    pub fn has_next(&self) -> bool {
        self.page < self.pages()
    }
    pub fn prev(&self) -> i64 {
        self.page - 1
    }
    pub fn next(&self) -> i64 {
        self.page + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_round_up_and_clamp() {
        let p = Paginated::<u8> {
            items: vec![],
            page: 1,
            per_page: 20,
            total: 41,
        };
        assert_eq!(p.pages(), 3);
        assert!(!p.has_prev() && p.has_next());
        let empty = Paginated::<u8> {
            items: vec![],
            page: 1,
            per_page: 20,
            total: 0,
        };
        assert_eq!(empty.pages(), 1);
        assert!(!empty.has_next());
        assert_eq!(PageQuery { page: Some(-4) }.number(), 1);
        assert_eq!(PageQuery { page: Some(3) }.offset(20), 40);
    }
}
