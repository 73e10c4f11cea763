-- Erasure without ABA; the same columns as SQLite's
-- migrations/sqlite/0003_user_tombstones.sql (see there). BIGINT, as every
-- integer the domain binds is a 64-bit parameter.
ALTER TABLE user_info ADD COLUMN deleted BIGINT NOT NULL DEFAULT 0;
ALTER TABLE user_info ADD COLUMN created_revision BIGINT NOT NULL DEFAULT 1;
