//! Conditional requests (RFC 9110 §8.8.3, §13): the one place that says what
//! a user's ETag is, how `If-Match` and `If-None-Match` are read, and what
//! they require of the stored user.
//!
//! The ETag is the strong validator `"<revision>"`. A revision names exactly
//! one content of one id for ever: every write adds 1, and a delete keeps the
//! row as a tombstone whose revision keeps counting (migration 0003), so a
//! user re-created after a delete never shows an ETag its erased predecessor
//! had (no ABA).
//!
//! Reads evaluate the conditions here, on the row they read. Writes hand them
//! to the write statement as a SQL condition ([`Preconditions::sql`]), so the
//! check and the write are one statement, with no race between them.

use crate::db::SqlValue;

/// The ETag of the user at `revision`.
pub fn etag(revision: i64) -> String {
    format!("\"{revision}\"")
}

/// The entity tags of an `If-Match` or `If-None-Match` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tags {
    /// `*`: any current representation.
    Any,
    /// The revisions of the listed tags that are this service's ETags. A tag
    /// of another shape cannot match any user, so it is left out (a list of
    /// only such tags matches nothing).
    Revisions(Vec<i64>),
}

/// The preconditions of one request; `None` when the header is absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preconditions {
    pub if_match: Option<Tags>,
    pub if_none_match: Option<Tags>,
}

/// What a read does after evaluating the preconditions on the current user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadVerdict {
    /// Answer with the user.
    Proceed,
    /// 304: the client's copy is current.
    NotModified,
    /// 412.
    Failed,
}

impl Tags {
    /// Parses an `If-Match` field (strong comparison: a weak tag `W/"…"`
    /// never matches, RFC 9110 §13.1.1).
    pub fn parse_if_match(field: &str) -> Tags {
        Self::parse(field, false)
    }

    /// Parses an `If-None-Match` field (weak comparison: `W/"5"` matches `"5"`).
    pub fn parse_if_none_match(field: &str) -> Tags {
        Self::parse(field, true)
    }

    fn parse(field: &str, weak_matches: bool) -> Tags {
        if field.trim() == "*" {
            return Tags::Any;
        }
        let revisions = field
            .split(',')
            .filter_map(|member| {
                let member = member.trim();
                let tag = match member.strip_prefix("W/") {
                    Some(weak) if weak_matches => weak,
                    Some(_) => return None,
                    None => member,
                };
                let inner = tag.strip_prefix('"')?.strip_suffix('"')?;
                // Only our own shape: digits, no sign, no leading zero, so that
                // each revision has exactly one tag.
                let canonical = !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_digit()) && (inner == "0" || !inner.starts_with('0'));
                canonical.then(|| inner.parse::<i64>().ok()).flatten()
            })
            .collect();
        Tags::Revisions(revisions)
    }

    /// Whether the tags match a user at `revision` (`None`: no current user).
    fn matches(&self, revision: Option<i64>) -> bool {
        match (self, revision) {
            (_, None) => false,
            (Tags::Any, Some(_)) => true,
            (Tags::Revisions(list), Some(r)) => list.contains(&r),
        }
    }
}

impl Preconditions {
    pub fn is_empty(&self) -> bool {
        self.if_match.is_none() && self.if_none_match.is_none()
    }

    /// Whether the request may only change an existing user (`If-Match`).
    pub(crate) fn requires_current(&self) -> bool {
        self.if_match.is_some()
    }

    /// RFC 9110 §13.2.2 for GET: `If-Match` first (412 when false), then
    /// `If-None-Match` (304 when it matches). Only called with a current user:
    /// a missing one is 404, whatever the conditions (§13.2.1).
    pub fn evaluate_read(&self, revision: i64) -> ReadVerdict {
        if self.if_match.as_ref().is_some_and(|t| !t.matches(Some(revision))) {
            return ReadVerdict::Failed;
        }
        if self.if_none_match.as_ref().is_some_and(|t| t.matches(Some(revision))) {
            return ReadVerdict::NotModified;
        }
        ReadVerdict::Proceed
    }

    /// The conditions as SQL over the stored row `user_info` (live when
    /// `deleted = 0`; a tombstone is no current user), with their revisions
    /// as parameters numbered from `first`; `None` when unconditional. For
    /// methods other than GET a matching `If-None-Match` fails the request.
    pub(crate) fn sql(&self, first: usize) -> Option<(String, Vec<SqlValue>)> {
        let mut params = Vec::new();
        let mut list = |revisions: &[i64]| -> String {
            if revisions.is_empty() {
                return "(0 = 1)".to_owned();
            }
            let cells: Vec<String> = revisions
                .iter()
                .map(|r| {
                    params.push(SqlValue::Integer(*r));
                    format!("CAST(${} AS BIGINT)", first + params.len() - 1)
                })
                .collect();
            format!("user_info.revision IN ({})", cells.join(", "))
        };
        let mut terms = Vec::new();
        match &self.if_match {
            None => {}
            Some(Tags::Any) => terms.push("user_info.deleted = 0".to_owned()),
            Some(Tags::Revisions(r)) => terms.push(format!("(user_info.deleted = 0 AND {})", list(r))),
        }
        match &self.if_none_match {
            None => {}
            Some(Tags::Any) => terms.push("user_info.deleted = 1".to_owned()),
            Some(Tags::Revisions(r)) => terms.push(format!("(user_info.deleted = 1 OR NOT {})", list(r))),
        }
        (!terms.is_empty()).then(|| (terms.join(" AND "), params))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_parse_as_rfc_9110_lists() {
        assert_eq!(Tags::parse_if_match(" * "), Tags::Any);
        assert_eq!(Tags::parse_if_match("\"3\", W/\"4\", \"x\",\"05\", 6"), Tags::Revisions(vec![3]));
        assert_eq!(Tags::parse_if_none_match("W/\"4\" , \"7\""), Tags::Revisions(vec![4, 7]));
        assert_eq!(Tags::parse_if_none_match(""), Tags::Revisions(vec![]));
        assert_eq!(etag(12), "\"12\"");
        assert_eq!(Tags::parse_if_match(&etag(12)), Tags::Revisions(vec![12]));
    }

    #[test]
    fn reads_check_if_match_then_if_none_match() {
        let pre = |m: Option<Tags>, n: Option<Tags>| Preconditions { if_match: m, if_none_match: n };
        let r = |v: &[i64]| Some(Tags::Revisions(v.to_vec()));
        assert_eq!(pre(None, None).evaluate_read(2), ReadVerdict::Proceed);
        assert_eq!(pre(None, r(&[2])).evaluate_read(2), ReadVerdict::NotModified);
        assert_eq!(pre(None, Some(Tags::Any)).evaluate_read(2), ReadVerdict::NotModified);
        assert_eq!(pre(None, r(&[1])).evaluate_read(2), ReadVerdict::Proceed);
        assert_eq!(pre(r(&[1]), r(&[2])).evaluate_read(2), ReadVerdict::Failed);
        assert_eq!(pre(Some(Tags::Any), None).evaluate_read(2), ReadVerdict::Proceed);
    }

    #[test]
    fn write_conditions_bind_their_revisions() {
        let pre = Preconditions { if_match: Some(Tags::Revisions(vec![3, 4])), if_none_match: Some(Tags::Any) };
        let (sql, params) = pre.sql(2).unwrap();
        assert_eq!(
            sql,
            "(user_info.deleted = 0 AND user_info.revision IN (CAST($2 AS BIGINT), CAST($3 AS BIGINT))) AND user_info.deleted = 1"
        );
        assert_eq!(params, [SqlValue::Integer(3), SqlValue::Integer(4)]);
        assert_eq!(Preconditions::default().sql(1), None);
    }
}
