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
-- no stemming, no stop words: application names are not prose in one language). catalog_query turns
-- what someone typed into a query that keeps the applications having every word, each as a prefix
-- ("kube" finds "Kubernetes"); it parses with the same parser as the documents, so both sides agree on
-- what a word is (hello-web, 1.2.0, host names). A text without a word is NULL, which matches nothing.
ALTER TABLE applications ADD COLUMN search tsvector
    GENERATED ALWAYS AS (to_tsvector('simple', name || ' ' || description)) STORED;
CREATE INDEX applications_search ON applications USING gin (search) WHERE deleted_at IS NULL;

-- +goose StatementBegin
CREATE FUNCTION catalog_query(q text) RETURNS tsquery LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT string_agg('''' || replace(replace(lexeme, '\', '\\'), '''', '''''') || ''':*', ' & ')::tsquery
    FROM unnest(to_tsvector('simple', q))
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION catalog_query;
DROP INDEX applications_search;
ALTER TABLE applications DROP COLUMN search;
DROP TRIGGER applications_listing ON applications;
ALTER TABLE applications DROP COLUMN listing;
DROP FUNCTION applications_listing_track;
DROP FUNCTION catalog_redact_urls;
DROP FUNCTION catalog_json_time;
