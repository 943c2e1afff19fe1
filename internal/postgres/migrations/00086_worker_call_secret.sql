-- +goose Up
-- The secret that signs the calls API replicas make to workers through Redis (package workerrpc) when
-- MARKETPLACE_RPC_SECRET is not set: every process of one marketplace reads the same database, and
-- whoever can write to Redis cannot read it.
ALTER TABLE instance ADD COLUMN worker_call_secret text NOT NULL
    DEFAULT replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '');

-- +goose Down
ALTER TABLE instance DROP COLUMN worker_call_secret;
