//! The `UserInfo` record as stored and as answered, and the partial update
//! (`UserPatch`) that both HTTP and Kafka inputs become.

use serde::Serialize;
use uuid::Uuid;

/// The optional columns of `user_info`, named and ordered as the fields of
/// [`UserInfo`] and [`UserPatch`]: the one list every statement (upsert,
/// delete, read) names them from.
pub(crate) const FIELDS: [&str; 4] = ["first_name", "last_name", "email", "phone_number"];

/// A user as stored. Field order is the JSON key order clients see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserInfo {
    /// Serialized in canonical lowercase hyphenated form.
    pub user_id: Uuid,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub phone_number: String,
}

impl UserInfo {
    /// A user from its id and the values of [`FIELDS`], in that order.
    pub(crate) fn from_fields(user_id: Uuid, [first_name, last_name, email, phone_number]: [String; 4]) -> Self {
        UserInfo { user_id, first_name, last_name, email, phone_number }
    }
}

/// A validated update: `None` leaves a field unchanged, `Some("")` clears it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserPatch {
    pub user_id: Uuid,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub phone_number: Option<String>,
}

impl UserPatch {
    /// The values of [`FIELDS`], in that order.
    pub(crate) fn fields(&self) -> [Option<&String>; 4] {
        [&self.first_name, &self.last_name, &self.email, &self.phone_number].map(Option::as_ref)
    }
}
