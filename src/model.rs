//! The `UserInfo` record as stored and as answered, and the partial update
//! (`UserPatch`) that both HTTP and Kafka inputs become.

use serde::Serialize;
use uuid::Uuid;

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

/// A validated update: `None` leaves a field unchanged, `Some("")` clears it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserPatch {
    pub user_id: Uuid,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub phone_number: Option<String>,
}
