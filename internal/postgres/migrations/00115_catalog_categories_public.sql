-- +goose Up
-- The categories' counts (migration 00110) count the public catalog, as catalog_counts does since
-- migration 00114: a private application's categories are not shown to those who cannot see it.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION catalog_categories_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM catalog_categories_apply(array_agg(k), array_agg(1)) FROM added, unnest(added.categories) AS k
        WHERE added.deleted_at IS NULL AND NOT added.private;
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM catalog_categories_apply(array_agg(k), array_agg(-1)) FROM removed, unnest(removed.categories) AS k
        WHERE removed.deleted_at IS NULL AND NOT removed.private;
    ELSE
        PERFORM catalog_categories_apply(array_agg(k), array_agg(n)) FROM (
            SELECT k, -1 AS n FROM removed, unnest(removed.categories) AS k WHERE removed.deleted_at IS NULL AND NOT removed.private
            UNION ALL
            SELECT k, 1 FROM added, unnest(added.categories) AS k WHERE added.deleted_at IS NULL AND NOT added.private
        ) d;
    END IF;
    RETURN NULL;
END $$;
-- +goose StatementEnd
DELETE FROM catalog_categories;
INSERT INTO catalog_categories (category, n)
SELECT k, count(*) FROM applications a, unnest(a.categories) AS k WHERE a.deleted_at IS NULL AND NOT a.private GROUP BY k;

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION catalog_categories_track() RETURNS trigger LANGUAGE plpgsql AS $$
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
DELETE FROM catalog_categories;
INSERT INTO catalog_categories (category, n)
SELECT k, count(*) FROM applications a, unnest(a.categories) AS k WHERE a.deleted_at IS NULL GROUP BY k;
