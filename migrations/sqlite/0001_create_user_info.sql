-- Users of the User Information Service. Every text column is NOT NULL and
-- defaults to '' so "blank" has exactly one representation.
-- `revision` starts at 1 on insert and grows on every update: the upsert's
-- RETURNING clause reads it to tell a create (201) from an update (200)
-- without a racy read-then-write.
CREATE TABLE IF NOT EXISTS user_info (
    user_id      TEXT    NOT NULL PRIMARY KEY,
    first_name   TEXT    NOT NULL DEFAULT '',
    last_name    TEXT    NOT NULL DEFAULT '',
    email        TEXT    NOT NULL DEFAULT '',
    phone_number TEXT    NOT NULL DEFAULT '',
    revision     INTEGER NOT NULL DEFAULT 1
);
