-- Effectively-once application of Kafka records: the last offset applied per
-- (topic, partition), written in the same transaction as the records' upserts,
-- so a record redelivered after a crash (at or below `last_offset`) is
-- recognised and skipped instead of overwriting newer writes. `skipped` counts
-- those redeliveries. Deleting a row makes its partition apply from any offset
-- again: that is how an operator reprocesses on purpose (see README).
CREATE TABLE IF NOT EXISTS kafka_offsets (
    topic        TEXT    NOT NULL,
    partition_id INTEGER NOT NULL,
    last_offset  INTEGER NOT NULL,
    skipped      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (topic, partition_id)
);
