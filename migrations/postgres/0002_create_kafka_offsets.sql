-- Effectively-once application of Kafka records; the same table as SQLite's
-- migrations/sqlite/0002_create_kafka_offsets.sql (see there).
CREATE TABLE IF NOT EXISTS kafka_offsets (
    topic        TEXT   NOT NULL,
    partition_id BIGINT NOT NULL,
    last_offset  BIGINT NOT NULL,
    skipped      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (topic, partition_id)
);
