//! Turns untrusted input (a JSON body or record value, a query-string id) into
//! a validated [`UserPatch`], or into errors that name every bad field.
//!
//! Messages and shapes follow Django REST Framework's, so clients written for
//! the service's earlier DRF implementation keep working. Validation never
//! touches the database: a rejected input writes nothing.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::model::UserPatch;

/// Largest accepted body or record value; bigger inputs are refused unread.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

const NAME_MAX_CHARS: usize = 150;
const EMAIL_MAX_CHARS: usize = 254;
const PHONE_MAX_CHARS: usize = 32;

/// Field name -> messages, serialized as DRF does: `{"email": ["..."]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct FieldErrors(pub BTreeMap<String, Vec<String>>);

impl FieldErrors {
    fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0.entry(field.to_owned()).or_default().push(message.into());
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Why an input was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputError {
    /// Larger than [`MAX_BODY_BYTES`].
    TooLarge,
    /// Not parseable as JSON.
    MalformedJson(String),
    /// JSON, but not an object (DRF's `non_field_errors`).
    NotAnObject(&'static str),
    /// An object with invalid fields.
    Fields(FieldErrors),
    /// A tombstone (a Kafka record with a null value) whose key is not a
    /// user id: it names no user to delete.
    TombstoneKey(&'static str),
}

impl InputError {
    /// The JSON error body clients get, in DRF's shapes.
    pub fn to_json(&self) -> Value {
        match self {
            InputError::TooLarge => serde_json::json!({
                "detail": format!("Request body exceeds {MAX_BODY_BYTES} bytes.")
            }),
            InputError::MalformedJson(msg) => {
                serde_json::json!({ "detail": format!("JSON parse error - {msg}") })
            }
            InputError::NotAnObject(kind) => serde_json::json!({
                "non_field_errors": [format!("Invalid data. Expected a dictionary, but got {kind}.")]
            }),
            InputError::Fields(errors) => serde_json::to_value(errors).expect("string map"),
            InputError::TombstoneKey(problem) => serde_json::json!({
                "key": [format!("A tombstone (null value) deletes the user its key names: {problem}")]
            }),
        }
    }
}

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_json().to_string())
    }
}

/// Parses and validates a user update. `user_id` is required; the other four
/// fields are optional, absent meaning "leave unchanged". Unknown keys are ignored.
pub fn parse_patch(json: &[u8]) -> Result<UserPatch, InputError> {
    if json.len() > MAX_BODY_BYTES {
        return Err(InputError::TooLarge);
    }
    let value: Value =
        serde_json::from_slice(json).map_err(|e| InputError::MalformedJson(e.to_string()))?;
    let Value::Object(object) = value else {
        return Err(InputError::NotAnObject(json_kind(&value)));
    };

    let mut errors = FieldErrors::default();
    let user_id = match object.get("user_id") {
        None => {
            errors.add("user_id", "This field is required.");
            None
        }
        Some(Value::Null) => {
            errors.add("user_id", "This field may not be null.");
            None
        }
        Some(Value::String(s)) => match parse_uuid(s) {
            Some(id) => Some(id),
            None => {
                errors.add("user_id", "Must be a valid UUID.");
                None
            }
        },
        Some(_) => {
            errors.add("user_id", "Must be a valid UUID.");
            None
        }
    };
    let first_name = text_field(&object, "first_name", &mut errors, |s, e| {
        max_chars(s, NAME_MAX_CHARS, "first_name", e);
    });
    let last_name = text_field(&object, "last_name", &mut errors, |s, e| {
        max_chars(s, NAME_MAX_CHARS, "last_name", e);
    });
    let email = text_field(&object, "email", &mut errors, validate_email);
    let phone_number = text_field(&object, "phone_number", &mut errors, validate_phone);

    match user_id {
        Some(user_id) if errors.is_empty() => Ok(UserPatch {
            user_id,
            first_name,
            last_name,
            email,
            phone_number,
        }),
        _ => Err(InputError::Fields(errors)),
    }
}

/// Validates the `user_id` query parameter of `GET /user`.
pub fn parse_user_id(raw: Option<&str>) -> Result<Uuid, FieldErrors> {
    let mut errors = FieldErrors::default();
    match raw.map(str::trim) {
        None | Some("") => errors.add("user_id", "This field is required."),
        Some(s) => match parse_uuid(s) {
            Some(id) => return Ok(id),
            None => errors.add("user_id", "Must be a valid UUID."),
        },
    }
    Err(errors)
}

/// The user a tombstone deletes: its key, the user id as UTF-8 text (what
/// the README asks producers to key records by), in any form `user_id`
/// accepts.
pub fn parse_tombstone_key(key: Option<&[u8]>) -> Result<Uuid, InputError> {
    let key = key.ok_or(InputError::TombstoneKey("the record has no key."))?;
    let text = std::str::from_utf8(key).map_err(|_| InputError::TombstoneKey("the key is not UTF-8 text."))?;
    parse_uuid(text).ok_or(InputError::TombstoneKey("the key must be a valid UUID."))
}

fn parse_uuid(s: &str) -> Option<Uuid> {
    // Accepts the forms Python's uuid.UUID accepts (hyphenated, simple, braced, urn).
    Uuid::parse_str(s.trim()).ok()
}

/// Reads an optional text field: absent -> None; strings are trimmed (as DRF's
/// CharField does); numbers are accepted as their decimal text, as DRF does.
fn text_field(
    object: &Map<String, Value>,
    field: &str,
    errors: &mut FieldErrors,
    validate: impl Fn(&str, &mut FieldErrors),
) -> Option<String> {
    let text = match object.get(field)? {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        Value::Null => {
            errors.add(field, "This field may not be null.");
            return None;
        }
        _ => {
            errors.add(field, "Not a valid string.");
            return None;
        }
    };
    let before = errors.0.get(field).map_or(0, Vec::len);
    validate(&text, errors);
    // As DRF's ProhibitNullCharactersValidator: PostgreSQL cannot store U+0000
    // in text, so without this the same input would be saved on SQLite and
    // fail as a database error (a 500; a Kafka record retried forever) on PostgreSQL.
    if text.contains('\0') {
        errors.add(field, "Null characters are not allowed.");
    }
    (errors.0.get(field).map_or(0, Vec::len) == before).then_some(text)
}

fn max_chars(s: &str, max: usize, field: &str, errors: &mut FieldErrors) -> bool {
    let ok = s.chars().count() <= max;
    if !ok {
        errors.add(field, format!("Ensure this field has no more than {max} characters."));
    }
    ok
}

fn validate_email(s: &str, errors: &mut FieldErrors) {
    if !max_chars(s, EMAIL_MAX_CHARS, "email", errors) || s.is_empty() {
        return;
    }
    // RFC 5322 syntax from a maintained parser, plus Django's rule that the
    // domain has a dot: "a@b" is syntactically fine but never a real mailbox.
    let valid = email_address::EmailAddress::parse_with_options(
        s,
        email_address::Options::default().without_display_text(),
    )
    .map(|addr| addr.domain().contains('.') && !addr.domain().starts_with('['))
    .unwrap_or(false);
    if !valid {
        errors.add("email", "Enter a valid email address.");
    }
}

fn validate_phone(s: &str, errors: &mut FieldErrors) {
    if !max_chars(s, PHONE_MAX_CHARS, "phone_number", errors) || s.is_empty() {
        return;
    }
    let allowed = s
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '+' | '-' | '(' | ')' | '.'));
    if !allowed || !s.chars().any(|c| c.is_ascii_digit()) {
        errors.add(
            "phone_number",
            "Enter a valid phone number: digits, spaces and + - ( ) . only.",
        );
    }
}

fn json_kind(value: &Value) -> &'static str {
    // Python type names, as DRF reports them.
    match value {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ID: &str = "6f1c2a7e-3b4d-4e5f-8a9b-0c1d2e3f4a5b";

    fn errors_of(body: Value) -> Value {
        parse_patch(body.to_string().as_bytes()).unwrap_err().to_json()
    }

    #[test]
    fn full_patch_is_trimmed_and_kept() {
        let p = parse_patch(
            json!({"user_id": ID.to_uppercase(), "first_name": " John ", "last_name": "Doe",
                   "email": "john.doe@example.com", "phone_number": "+1 (555) 123-4567", "extra": 1})
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(p.user_id.to_string(), ID);
        assert_eq!(p.first_name.as_deref(), Some("John"));
        assert_eq!(p.phone_number.as_deref(), Some("+1 (555) 123-4567"));
    }

    #[test]
    fn absent_fields_stay_none_and_blank_clears() {
        let p = parse_patch(json!({"user_id": ID, "email": ""}).to_string().as_bytes()).unwrap();
        assert_eq!(p.first_name, None);
        assert_eq!(p.email.as_deref(), Some(""));
    }

    #[test]
    fn numbers_are_accepted_as_text() {
        let p = parse_patch(json!({"user_id": ID, "phone_number": 5551234}).to_string().as_bytes())
            .unwrap();
        assert_eq!(p.phone_number.as_deref(), Some("5551234"));
    }

    #[test]
    fn every_bad_field_is_named() {
        let e = errors_of(json!({"user_id": "nope", "email": "x@", "phone_number": "call me",
                                 "first_name": "a".repeat(151), "last_name": null}));
        assert_eq!(e["user_id"], json!(["Must be a valid UUID."]));
        assert_eq!(e["email"], json!(["Enter a valid email address."]));
        assert!(e["phone_number"][0].as_str().unwrap().starts_with("Enter a valid phone number"));
        assert_eq!(e["first_name"], json!(["Ensure this field has no more than 150 characters."]));
        assert_eq!(e["last_name"], json!(["This field may not be null."]));
    }

    #[test]
    fn null_characters_are_refused_on_every_store() {
        let e = errors_of(json!({"user_id": ID, "first_name": "a\u{0}b", "email": "\u{0}"}));
        assert_eq!(e["first_name"], json!(["Null characters are not allowed."]));
        assert_eq!(e["email"], json!(["Enter a valid email address.", "Null characters are not allowed."]));
        assert!(parse_patch(json!({"user_id": ID, "last_name": "\u{1}"}).to_string().as_bytes()).is_ok());
    }

    #[test]
    fn user_id_is_required_and_typed() {
        assert_eq!(errors_of(json!({}))["user_id"], json!(["This field is required."]));
        assert_eq!(errors_of(json!({"user_id": 7}))["user_id"], json!(["Must be a valid UUID."]));
        assert_eq!(errors_of(json!({"user_id": ID, "email": true}))["email"], json!(["Not a valid string."]));
    }

    #[test]
    fn email_rules() {
        for ok in ["a@example.com", "first.last+tag@sub.example.co.uk"] {
            assert!(parse_patch(json!({"user_id": ID, "email": ok}).to_string().as_bytes()).is_ok(), "{ok}");
        }
        for bad in ["plain", "a@b", "@example.com", "a b@example.com", "John <j@example.com>"] {
            assert!(parse_patch(json!({"user_id": ID, "email": bad}).to_string().as_bytes()).is_err(), "{bad}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(errors_of(json!({"user_id": ID, "email": long}))["email"],
                   json!(["Ensure this field has no more than 254 characters."]));
    }

    #[test]
    fn non_objects_and_garbage() {
        assert_eq!(
            parse_patch(b"[1]").unwrap_err().to_json(),
            json!({"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]})
        );
        assert!(matches!(parse_patch(b"{nope"), Err(InputError::MalformedJson(_))));
        assert!(matches!(parse_patch(b""), Err(InputError::MalformedJson(_))));
        let big = vec![b' '; MAX_BODY_BYTES + 1];
        assert!(matches!(parse_patch(&big), Err(InputError::TooLarge)));
    }

    #[test]
    fn query_user_id() {
        assert_eq!(parse_user_id(Some(ID)).unwrap().to_string(), ID);
        assert!(parse_user_id(None).is_err());
        assert!(parse_user_id(Some("")).is_err());
        assert_eq!(
            serde_json::to_value(parse_user_id(Some("12")).unwrap_err()).unwrap(),
            json!({"user_id": ["Must be a valid UUID."]})
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Field values a client might send: any string, or any JSON value.
        fn field() -> impl Strategy<Value = Value> {
            prop_oneof![
                any::<String>().prop_map(Value::String),
                "[ a-zA-Z0-9@.+()\\-]{0,300}".prop_map(Value::String),
                Just(Value::Null),
                any::<i64>().prop_map(Value::from),
                any::<bool>().prop_map(Value::Bool),
            ]
        }

        proptest! {
            #[test]
            fn any_bytes_are_an_answer_never_a_panic(body in proptest::collection::vec(any::<u8>(), 0..2048)) {
                let _ = parse_patch(&body);
            }

            #[test]
            fn any_object_is_a_patch_within_the_limits_or_an_error(
                id in prop_oneof![Just(Value::String(ID.into())), field()],
                first in field(), last in field(), email in field(), phone in field(),
                unknown in any::<String>(),
            ) {
                let mut body = json!({"user_id": id, "first_name": first, "last_name": last,
                                      "email": email, "phone_number": phone});
                body.as_object_mut().unwrap().entry(unknown).or_insert(json!(1));
                match parse_patch(body.to_string().as_bytes()) {
                    Ok(patch) => {
                        for (value, max) in [(&patch.first_name, 150), (&patch.last_name, 150),
                                             (&patch.email, 254), (&patch.phone_number, 32)] {
                            let value = value.as_deref().unwrap_or("");
                            prop_assert!(value.chars().count() <= max);
                            prop_assert_eq!(value, value.trim());
                        }
                    }
                    Err(e) => {
                        // Every error renders as the JSON the client gets.
                        prop_assert!(e.to_json().is_object());
                    }
                }
            }
        }
    }
}
