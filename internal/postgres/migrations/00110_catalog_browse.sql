-- +goose Up
-- A catalog people browse (issue #22): each application carries what its cards and filters show, kept
-- on its row so that a catalog page stays one read of applications:
--   publisher_name  its organization's name, or its publisher's (names never change once given);
--   categories      its current version's package keywords, lower case, distinct, sorted (at most 20);
--   icon_url        its current version's icon on this marketplace (/icons/<sha256>.png), or '';
--   app_version     its current version's appVersion, or ''.
-- The version's columns follow what its package says (application_versions.about, read after the
-- version is published): a trigger on application_versions copies them when about is written for the
-- current version, and applications' own trigger when the current version changes.
ALTER TABLE applications
    ADD COLUMN publisher_name text   NOT NULL DEFAULT '',
    ADD COLUMN categories     text[] NOT NULL DEFAULT '{}',
    ADD COLUMN icon_url       text   NOT NULL DEFAULT '',
    ADD COLUMN app_version    text   NOT NULL DEFAULT '';

-- +goose StatementBegin
-- catalog_categories_of is the categories of what a package says about itself (its keywords).
CREATE FUNCTION catalog_categories_of(about jsonb) RETURNS text[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ARRAY(SELECT k FROM (
        SELECT DISTINCT lower(btrim(e)) AS k FROM jsonb_array_elements_text(
            CASE WHEN jsonb_typeof(about->'keywords') = 'array' THEN about->'keywords' ELSE '[]' END) AS e
        WHERE btrim(e) <> '' AND length(e) <= 64) d ORDER BY k LIMIT 20)
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION applications_about_track() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    about jsonb;
BEGIN
    IF TG_OP = 'INSERT' OR NEW.publisher_id <> OLD.publisher_id OR NEW.organization_id IS DISTINCT FROM OLD.organization_id THEN
        NEW.publisher_name := coalesce((SELECT o.name FROM organizations o WHERE o.id = NEW.organization_id),
            (SELECT u.name FROM users u WHERE u.id = NEW.publisher_id), '');
    END IF;
    -- A new application's versions are written after it (application_versions_about then fills these).
    IF TG_OP = 'UPDATE' AND NEW.version <> OLD.version THEN
        SELECT v.about INTO about FROM application_versions v WHERE v.application_id = NEW.id AND v.version = NEW.version;
        NEW.categories := catalog_categories_of(about);
        NEW.icon_url := coalesce(about->>'icon', '');
        NEW.app_version := coalesce(about->>'app_version', '');
    END IF;
    RETURN NEW;
END $$;
-- +goose StatementEnd
-- BEFORE triggers run in name order: applications_about before applications_listing, which writes them.
CREATE TRIGGER applications_about BEFORE INSERT OR UPDATE ON applications
    FOR EACH ROW EXECUTE FUNCTION applications_about_track();

-- +goose StatementBegin
CREATE FUNCTION application_versions_about_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE applications a SET categories = catalog_categories_of(NEW.about), icon_url = coalesce(NEW.about->>'icon', ''),
        app_version = coalesce(NEW.about->>'app_version', '')
    WHERE a.id = NEW.application_id AND a.version = NEW.version
      AND (a.categories, a.icon_url, a.app_version) IS DISTINCT FROM
          (catalog_categories_of(NEW.about), coalesce(NEW.about->>'icon', ''), coalesce(NEW.about->>'app_version', ''));
    RETURN NULL;
END $$;
-- +goose StatementEnd
CREATE TRIGGER application_versions_about AFTER INSERT OR UPDATE OF about ON application_versions
    FOR EACH ROW EXECUTE FUNCTION application_versions_about_track();

-- The listing (migration 00050) shows them, as encoding/json writes marketplace.Application.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION applications_listing_track() RETURNS trigger LANGUAGE plpgsql AS $$
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
        || ',"image":' || to_json(catalog_redact_urls(coalesce(NEW.deployment->>'image', '')))::text
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
        || ',"publisher_name":' || to_json(NEW.publisher_name)::text
        || CASE WHEN cardinality(NEW.categories) > 0 THEN ',"categories":' || to_json(NEW.categories)::text ELSE '' END
        || coalesce(',"icon_url":' || to_json(nullif(NEW.icon_url, ''))::text, '')
        || coalesce(',"app_version":' || to_json(nullif(NEW.app_version, ''))::text, '')
        || '}';
    RETURN NEW;
END $$;
-- +goose StatementEnd

-- The categories of the catalog with how many live applications list each, for the storefront's
-- filter: kept exact by a trigger once per statement (as catalog_counts), so no request counts them.
CREATE TABLE catalog_categories (
    category text   PRIMARY KEY,
    n        bigint NOT NULL
) WITH (fillfactor = 50);

-- +goose StatementBegin
-- catalog_categories_apply adds the weights (1 added, -1 taken away) to their categories, in key order
-- (concurrent publishes take their row locks in the same order).
CREATE FUNCTION catalog_categories_apply(cats text[], weights int[]) RETURNS void LANGUAGE sql VOLATILE AS $f$
    INSERT INTO catalog_categories AS c (category, n)
    SELECT d.category, sum(d.n) FROM unnest(cats, weights) AS d (category, n)
    GROUP BY 1 HAVING sum(d.n) <> 0 ORDER BY 1
    ON CONFLICT (category) DO UPDATE SET n = c.n + excluded.n
$f$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION catalog_categories_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM catalog_categories_apply(array_agg(k), array_agg(1)) FROM added, unnest(added.categories) AS k
        WHERE added.deleted_at IS NULL;
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM catalog_categories_apply(array_agg(k), array_agg(-1)) FROM removed, unnest(removed.categories) AS k
        WHERE removed.deleted_at IS NULL;
    ELSE
        PERFORM catalog_categories_apply(array_agg(k), array_agg(n)) FROM (
            SELECT k, -1 AS n FROM removed, unnest(removed.categories) AS k WHERE removed.deleted_at IS NULL
            UNION ALL
            SELECT k, 1 FROM added, unnest(added.categories) AS k WHERE added.deleted_at IS NULL
        ) d;
    END IF;
    RETURN NULL;
END $$;
-- +goose StatementEnd
CREATE TRIGGER catalog_categories_insert AFTER INSERT ON applications REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_categories_track();
CREATE TRIGGER catalog_categories_delete AFTER DELETE ON applications REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_categories_track();
CREATE TRIGGER catalog_categories_update AFTER UPDATE ON applications REFERENCING OLD TABLE AS removed NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_categories_track();

-- The applications of today: their columns and listings written anew (the update moves
-- catalog_generation on, so no kept page is answered with a listing written before), counted above.
UPDATE applications a SET
    publisher_name = coalesce((SELECT o.name FROM organizations o WHERE o.id = a.organization_id),
        (SELECT u.name FROM users u WHERE u.id = a.publisher_id), ''),
    categories = catalog_categories_of(v.about), icon_url = coalesce(v.about->>'icon', ''),
    app_version = coalesce(v.about->>'app_version', '')
FROM applications x LEFT JOIN application_versions v ON v.application_id = x.id AND v.version = x.version
WHERE x.id = a.id;

-- Filtered and sorted pages are computed (on a miss of catalog_searches) from these, each a walk of
-- the live catalog in the order asked: a category through its GIN index, a publisher's name, and the
-- orders by name, price and age.
CREATE INDEX applications_by_category ON applications USING gin (categories) WHERE deleted_at IS NULL;
CREATE INDEX applications_by_publisher_name ON applications (lower(publisher_name), id) WHERE deleted_at IS NULL;
CREATE INDEX applications_by_name ON applications (lower(name), id) WHERE deleted_at IS NULL;
CREATE INDEX applications_by_price ON applications (hourly_rate, id) WHERE deleted_at IS NULL;
CREATE INDEX applications_by_created ON applications (created_at, id) WHERE deleted_at IS NULL;

-- +goose Down
DROP INDEX applications_by_category, applications_by_publisher_name, applications_by_name, applications_by_price,
    applications_by_created;
DROP TRIGGER catalog_categories_insert ON applications;
DROP TRIGGER catalog_categories_delete ON applications;
DROP TRIGGER catalog_categories_update ON applications;
DROP FUNCTION catalog_categories_track;
DROP FUNCTION catalog_categories_apply;
DROP TABLE catalog_categories;
-- The listing of migration 00077.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION applications_listing_track() RETURNS trigger LANGUAGE plpgsql AS $$
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
        || ',"image":' || to_json(catalog_redact_urls(coalesce(NEW.deployment->>'image', '')))::text
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
DROP TRIGGER application_versions_about ON application_versions;
DROP FUNCTION application_versions_about_track;
DROP TRIGGER applications_about ON applications;
DROP FUNCTION applications_about_track;
DROP FUNCTION catalog_categories_of;
ALTER TABLE applications DROP COLUMN publisher_name, DROP COLUMN categories, DROP COLUMN icon_url, DROP COLUMN app_version;
UPDATE applications SET listing = NULL;
