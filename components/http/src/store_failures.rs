//! What a client gets for each real failure of either store, from each
//! runtime, through the adapters' production classification (the table is
//! `components/store_errors.rs`) and this component's answer: a failure that
//! passes (an outage, a lock) is a 503 with `Retry-After`, which clients
//! retry; any other is a 500, which they do not.

use user_info::DbErrorKind;

use crate::response::JsonResponse;
use crate::store_errors;

/// The answer to each kind, written out here so that the table's kinds and
/// the component's mapping are checked against a third statement of the rule.
fn expected(kind: DbErrorKind) -> (u16, Option<&'static str>) {
    match kind {
        DbErrorKind::Unavailable | DbErrorKind::Busy => (503, Some("1")),
        DbErrorKind::MissingSchema | DbErrorKind::Constraint | DbErrorKind::Other => (500, None),
    }
}

#[test]
fn each_real_store_failure_answers_503_when_it_passes_and_500_otherwise() {
    let cases = store_errors::cases();
    store_errors::assert_every_kind_on_both_stores(&cases);
    for case in &cases {
        let error = case.classified();
        assert_eq!(error.kind(), case.kind, "{case}");
        assert_eq!(JsonResponse::database_error(&error).status_and_retry_after(), expected(case.kind), "{case}");
    }
}
