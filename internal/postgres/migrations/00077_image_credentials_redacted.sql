-- +goose Up
-- A vm application's image URL may carry credentials (https://user:pass@host/x.qcow2) as a repoURL may:
-- the catalog's listing shows them redacted too. Failure reasons are recorded redacted from now on (the
-- deploy service redacts them); the ones recorded before, and the audit trail's copies of them, are
-- redacted here.

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

-- The trigger writes the listing anew. The statement moves catalog_generation on, so no kept search or
-- deep page (catalog_searches.listings) is answered again with a listing written before.
UPDATE applications SET listing = NULL WHERE deployment->>'image' LIKE '%@%';

UPDATE deployments SET failure_reason = catalog_redact_urls(failure_reason) WHERE failure_reason LIKE '%@%';
UPDATE audit_events SET detail = jsonb_set(detail, '{failure_reason}', to_jsonb(catalog_redact_urls(detail->>'failure_reason')))
WHERE detail->>'failure_reason' LIKE '%@%';

-- +goose Down
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
        || ',"image":' || to_json(coalesce(NEW.deployment->>'image', ''))::text
        || ',"cpu":' || to_json(coalesce(NEW.deployment->>'cpu', ''))::text
        || ',"memory":' || to_json(coalesce(NEW.deployment->>'memory', ''))::text
        || '},"inputs":' || CASE WHEN jsonb_typeof(NEW.inputs) = 'array' THEN coalesce((
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
UPDATE applications SET listing = NULL WHERE deployment->>'image' LIKE '%@%';
