-- Erasure without ABA. A deleted user keeps its row as a tombstone: every
-- personal field is cleared to '' and `deleted` is 1. Its `revision` keeps
-- counting, so a user re-created after a delete continues from there and an
-- ETag (built from the revision) is never reused for the same id: a client
-- holding the erased user's ETag gets 412, not a match on the new user.
-- `created_revision` is the revision at which the current life of the user
-- began (1, or the first write after a delete): the upsert's RETURNING tells
-- a create (201) from an update (200) by revision = created_revision.
-- Deleting a tombstone row would allow revisions to repeat: never purge them.
ALTER TABLE user_info ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE user_info ADD COLUMN created_revision INTEGER NOT NULL DEFAULT 1;
