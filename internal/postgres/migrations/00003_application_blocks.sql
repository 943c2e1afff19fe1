-- +goose Up
-- Where a deep catalog page starts, without walking every application before it: the number of live
-- applications per (publisher, type) in each block of 256 consecutive ids, kept exact by a trigger.
-- A page at offset O starts in the first block whose running count exceeds O.
CREATE TABLE application_blocks (
    publisher_id    bigint NOT NULL,
    deployment_type text   NOT NULL,
    block           bigint NOT NULL, -- id >> 8
    n               bigint NOT NULL,
    PRIMARY KEY (block, publisher_id, deployment_type)
);
CREATE INDEX application_blocks_by_publisher ON application_blocks (publisher_id, block);

INSERT INTO application_blocks (publisher_id, deployment_type, block, n)
SELECT publisher_id, deployment_type, id >> 8, count(*) FROM applications WHERE deleted_at IS NULL
GROUP BY 1, 2, 3;

-- +goose StatementBegin
CREATE FUNCTION application_blocks_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.deleted_at IS NULL THEN
        UPDATE application_blocks SET n = n - 1
        WHERE block = OLD.id >> 8 AND publisher_id = OLD.publisher_id AND deployment_type = OLD.deployment_type;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.deleted_at IS NULL THEN
        INSERT INTO application_blocks (publisher_id, deployment_type, block, n)
        VALUES (NEW.publisher_id, NEW.deployment_type, NEW.id >> 8, 1)
        ON CONFLICT (block, publisher_id, deployment_type) DO UPDATE SET n = application_blocks.n + 1;
    END IF;
    RETURN NULL;
END $$;
-- +goose StatementEnd

CREATE TRIGGER applications_blocks AFTER INSERT OR DELETE OR UPDATE OF publisher_id, deployment_type, deleted_at
    ON applications FOR EACH ROW EXECUTE FUNCTION application_blocks_track();

-- +goose Down
DROP TRIGGER applications_blocks ON applications;
DROP FUNCTION application_blocks_track;
DROP TABLE application_blocks;
