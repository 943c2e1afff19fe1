-- +goose Up
-- The catalog's hot path (GET /api/apps) sends each application as the API shows it, precomputed:
-- `listing` is the application's JSON exactly as encoding/json writes marketplace.Application (same keys,
-- same order, credentials of the repository URL redacted, times in UTC), kept by a trigger on every
-- insert and update, so a page is 20 strings concatenated instead of jsonb -> Go structs -> JSON.
-- cmd/marketplace's catalog test compares it with GET /api/apps/{id}, which is encoded by Go.

-- +goose StatementBegin
-- catalog_json_time is a timestamp as Go's time.Time marshals it in UTC (RFC 3339, trailing zeros of
-- the fraction dropped).
CREATE FUNCTION catalog_json_time(t timestamptz) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT '"' || to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
        || coalesce('.' || nullif(rtrim(to_char(t AT TIME ZONE 'UTC', 'US'), '0'), ''), '') || 'Z"'
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- catalog_redact_urls hides the credentials of every URL in s, as marketplace.RedactURLs does.
CREATE FUNCTION catalog_redact_urls(s text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN strpos(s, '@') = 0 THEN s
        ELSE regexp_replace(s, '([A-Za-z][A-Za-z0-9+.-]*://)[^/?#@ \t\n\f\r"'']*@', '\1REDACTED@', 'g') END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION applications_listing_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.listing := '{"id":' || NEW.id
        || ',"name":' || to_json(NEW.name)::text
        || ',"description":' || to_json(NEW.description)::text
        || ',"publisher_id":' || NEW.publisher_id
        || ',"hourly_rate":' || trim_scale(NEW.hourly_rate)::text
        || ',"deployment":{"type":' || to_json(coalesce(NEW.deployment->>'type', ''))::text
        || ',"repoURL":' || to_json(catalog_redact_urls(coalesce(NEW.deployment->>'repoURL', '')))::text
        || ',"chartName":' || to_json(coalesce(NEW.deployment->>'chartName', ''))::text
        || ',"chartVersion":' || to_json(coalesce(NEW.deployment->>'chartVersion', ''))::text
        || ',"image":' || to_json(coalesce(NEW.deployment->>'image', ''))::text
        || ',"cpu":' || to_json(coalesce(NEW.deployment->>'cpu', ''))::text
        || ',"memory":' || to_json(coalesce(NEW.deployment->>'memory', ''))::text
        || '},"inputs":' || CASE WHEN jsonb_typeof(NEW.inputs) = 'array' THEN coalesce((
               -- marketplace.Input's fields in its order, the empty ones left out (omitempty)
               SELECT '[' || string_agg('{"name":' || to_json(coalesce(i->>'name', ''))::text
                   || coalesce(',"description":' || to_json(nullif(i->>'description', ''))::text, '')
                   || coalesce(',"type":' || to_json(nullif(i->>'type', ''))::text, '')
                   || CASE WHEN jsonb_typeof(i->'default') <> 'null' THEN ',"default":' || (i->'default')::text ELSE '' END
                   || CASE WHEN i->'required' = 'true' THEN ',"required":true' ELSE '' END
                   || '}', ',' ORDER BY n) || ']'
               FROM jsonb_array_elements(NEW.inputs) WITH ORDINALITY AS e(i, n)), '[]')
             ELSE coalesce(NEW.inputs::text, 'null') END
        || ',"version":' || NEW.version
        || ',"created_at":' || catalog_json_time(NEW.created_at)
        || ',"updated_at":' || catalog_json_time(NEW.updated_at)
        || coalesce(',"retired_at":' || catalog_json_time(NEW.retired_at), '')
        || '}';
    RETURN NEW;
END $$;
-- +goose StatementEnd

ALTER TABLE applications ADD COLUMN listing text;
CREATE TRIGGER applications_listing BEFORE INSERT OR UPDATE ON applications
    FOR EACH ROW EXECUTE FUNCTION applications_listing_track();
UPDATE applications SET listing = NULL; -- the trigger fills it in
ALTER TABLE applications ALTER COLUMN listing SET NOT NULL;

-- Search (q=): the words of the name and the description, with the 'simple' configuration (lower case,
-- no stemming, no stop words: application names are not prose in one language), one row per word of each
-- application of the catalog, kept by a trigger. A search keeps the applications having every word of
-- what was typed, each as the start of a word ("kube" finds "Kubernetes"); both sides are parsed by the
-- same parser, so they agree on what a word is (hello-web, 1.2.0, host names). A btree, unlike a GIN
-- index on a tsvector, answers from the index alone (index-only scans): counting the matches of a word
-- found in a tenth of the catalog reads index pages, not every application's row.
CREATE TABLE application_words (
    word            text COLLATE "C" NOT NULL, -- byte order: a prefix is a range
    id              bigint NOT NULL,            -- the application's
    publisher_id    bigint NOT NULL,
    deployment_type text   NOT NULL,
    PRIMARY KEY (word, id) INCLUDE (publisher_id, deployment_type)
);
CREATE INDEX application_words_by_id ON application_words (id);

-- +goose StatementBegin
-- catalog_words are the words of a text as the catalog's search sees them. ROWS 4, not the default 1000:
-- what someone types is a few words, and the planner must walk the index once per word, not scan it all.
CREATE FUNCTION catalog_words(t text) RETURNS SETOF text LANGUAGE sql IMMUTABLE PARALLEL SAFE ROWS 4 AS $$
    SELECT lexeme FROM unnest(to_tsvector('simple', t))
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION application_words_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.deleted_at IS NULL THEN
        DELETE FROM application_words WHERE id = OLD.id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.deleted_at IS NULL THEN
        INSERT INTO application_words (word, id, publisher_id, deployment_type)
        SELECT w, NEW.id, NEW.publisher_id, NEW.deployment_type FROM catalog_words(NEW.name || ' ' || NEW.description) AS w;
    END IF;
    RETURN NULL;
END $$;
-- +goose StatementEnd

CREATE TRIGGER applications_words AFTER INSERT OR DELETE OR UPDATE OF name, description, publisher_id, deployment_type, deleted_at
    ON applications FOR EACH ROW EXECUTE FUNCTION application_words_track();
INSERT INTO application_words (word, id, publisher_id, deployment_type)
SELECT w, a.id, a.publisher_id, a.deployment_type FROM applications a, catalog_words(a.name || ' ' || a.description) AS w
WHERE a.deleted_at IS NULL;

-- +goose Down
DROP TRIGGER applications_words ON applications;
DROP FUNCTION application_words_track;
DROP FUNCTION catalog_words;
DROP TABLE application_words;
DROP TRIGGER applications_listing ON applications;
ALTER TABLE applications DROP COLUMN listing;
DROP FUNCTION applications_listing_track;
DROP FUNCTION catalog_redact_urls;
DROP FUNCTION catalog_json_time;
