-- +goose Up
-- Catalog pages whose cost does not grow with the catalog.
--
-- catalog_counts replaces application_counts (one row per publisher and type, summed for a filter: a
-- scan of every publisher's rows for the unfiltered catalog) and application_blocks (one row per block of
-- 256 ids per publisher and type, all aggregated with a running sum for every deep page: 1,600 rows at
-- 100,000 applications). It counts the live applications of each filter a page can ask for (every
-- publisher and type, one type, one publisher, both) over three nested spans of ids: id >> 8 (256 ids),
-- id >> 14 (64 of those) and id >> 20 (64 of those, 1,048,576 ids). The total of a filter is the sum of
-- its top spans (one row below a million ids); a page at offset O walks down: the top span where the
-- running count passes O, then at most 64 spans below it, then at most 64 blocks, then at most 255 ids in
-- the index. Every step reads a bounded number of rows, whatever the size of the catalog.
CREATE TABLE catalog_counts (
    publisher_id    bigint   NOT NULL, -- 0: every publisher
    deployment_type text     NOT NULL, -- '': both types
    shift           smallint NOT NULL, -- the span of a row is id >> shift: 8, 14 or 20
    span            bigint   NOT NULL,
    n               bigint   NOT NULL,
    -- n in the index: a page's walk reads the index alone
    PRIMARY KEY (publisher_id, deployment_type, shift, span) INCLUDE (n)
);

-- +goose StatementBegin
-- catalog_counts_apply adds to catalog_counts the applications of the arrays (id, publisher, type) with
-- their weight (1 added, -1 taken away): each counts in 12 rows (4 filters, 3 spans). The rows are
-- written in key order, so concurrent publishes and deletes take their locks in the same order and
-- cannot deadlock on them.
CREATE FUNCTION catalog_counts_apply(ids bigint[], publishers bigint[], types text[], weights int[])
    RETURNS void LANGUAGE sql VOLATILE AS $f$
    INSERT INTO catalog_counts AS c (publisher_id, deployment_type, shift, span, n)
    SELECT f.publisher_id, f.deployment_type, s.shift, d.id >> s.shift, sum(d.n)
    FROM unnest(ids, publishers, types, weights) AS d (id, publisher_id, deployment_type, n)
    CROSS JOIN LATERAL (VALUES (0::bigint, ''), (0, d.deployment_type), (d.publisher_id, ''), (d.publisher_id, d.deployment_type))
        AS f (publisher_id, deployment_type)
    CROSS JOIN (VALUES (8::smallint), (14), (20)) AS s (shift)
    GROUP BY 1, 2, 3, 4 HAVING sum(d.n) <> 0
    ORDER BY 1, 2, 3, 4
    ON CONFLICT (publisher_id, deployment_type, shift, span) DO UPDATE SET n = c.n + excluded.n
$f$;
-- +goose StatementEnd

-- +goose StatementBegin
-- catalog_counts_track counts the live applications a statement added (added) and took away
-- (removed), once per statement: a statement that inserts 100,000 applications writes each count row
-- once, not 100,000 versions of it in one transaction (which every later write of the row would walk).
CREATE FUNCTION catalog_counts_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM catalog_counts_apply(array_agg(id), array_agg(publisher_id), array_agg(deployment_type), array_agg(1))
        FROM added WHERE deleted_at IS NULL;
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM catalog_counts_apply(array_agg(id), array_agg(publisher_id), array_agg(deployment_type), array_agg(-1))
        FROM removed WHERE deleted_at IS NULL;
    ELSE
        PERFORM catalog_counts_apply(array_agg(id), array_agg(publisher_id), array_agg(deployment_type), array_agg(n))
        FROM (
            SELECT id, publisher_id, deployment_type, -1 AS n FROM removed WHERE deleted_at IS NULL
            UNION ALL
            SELECT id, publisher_id, deployment_type, 1 FROM added WHERE deleted_at IS NULL
        ) d;
    END IF;
    RETURN NULL;
END $$;
-- +goose StatementEnd

DROP TRIGGER applications_count ON applications;
DROP TRIGGER applications_count_update ON applications;
DROP TRIGGER applications_blocks ON applications;
DROP TRIGGER applications_blocks_update ON applications;
DROP FUNCTION application_counts_track;
DROP FUNCTION application_blocks_track;
DROP TABLE application_counts, application_blocks;

-- Transition tables allow one event per trigger. An update that changes none of the counted columns
-- adds and takes away the same, so nothing is written.
CREATE TRIGGER catalog_counts_insert AFTER INSERT ON applications REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_counts_track();
CREATE TRIGGER catalog_counts_delete AFTER DELETE ON applications REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_counts_track();
CREATE TRIGGER catalog_counts_update AFTER UPDATE ON applications REFERENCING OLD TABLE AS removed NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_counts_track();

INSERT INTO catalog_counts (publisher_id, deployment_type, shift, span, n)
SELECT f.publisher_id, f.deployment_type, s.shift, a.id >> s.shift, count(*)
FROM applications a
CROSS JOIN LATERAL (VALUES (0::bigint, ''), (0, a.deployment_type), (a.publisher_id, ''), (a.publisher_id, a.deployment_type))
    AS f (publisher_id, deployment_type)
CROSS JOIN (VALUES (8::smallint), (14), (20)) AS s (shift)
WHERE a.deleted_at IS NULL
GROUP BY 1, 2, 3, 4;

-- Searches (q=) and deep pages answer from a cache that is exact: catalog_generation changes in every transaction that
-- changes what a search can find (an application published, deleted, renamed, described anew, moved to
-- another publisher or type), in the same transaction, and a search's answer is kept with the generation
-- it was computed at. A statement that reads the generation it was stored with sees the same catalog the
-- answer was computed from, so it uses it; any other recomputes it (and stores it). Concurrent catalog
-- writes queue on the generation's row, so each committed catalog has its own generation, and a snapshot
-- that sees one sees every write before it.
CREATE TABLE catalog_generation (n bigint NOT NULL);
INSERT INTO catalog_generation VALUES (1);

-- +goose StatementBegin
CREATE FUNCTION catalog_generation_next() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE catalog_generation SET n = n + 1;
    RETURN NULL;
END $$;
-- +goose StatementEnd

-- Every update, not only of the columns a search sees: a kept answer holds its page's listings too, and a
-- new price or version changes an application's listing. Applications change rarely; pages are read often.
CREATE TRIGGER catalog_generation AFTER INSERT OR DELETE OR UPDATE
    ON applications FOR EACH STATEMENT EXECUTE FUNCTION catalog_generation_next();

-- catalog_searches holds the total and the ids of one page of a search or of a deep page (the words
-- typed, the filters and the page: `search`), in one of a fixed number of slots chosen by a hash of
-- `search`: the table never grows past its slots, whatever is typed, and a slot taken by another search
-- is simply recomputed. UNLOGGED: after a crash it is empty, which only means recomputing.
CREATE UNLOGGED TABLE catalog_searches (
    slot       integer  PRIMARY KEY,
    search     text     NOT NULL,
    generation bigint   NOT NULL,
    total      bigint   NOT NULL,
    ids        bigint[] NOT NULL,
    listings   text     -- the page's applications.listing, comma-separated, in id order (NULL: none)
) WITH (fillfactor = 50); -- room for the next version of a row on its page (HOT updates)

-- +goose StatementBegin
-- catalog_search is a search's total and the ids of one page of it, computed: the applications of the
-- filters (publisher 0 and type '' stand for any) having every word typed (at most 32 count) as the
-- start of one of their words. The matches are found once, in the index of application_words alone,
-- for both the count and the page. Each word typed is a bit; an application matches when its words set
-- every bit: a bitwise OR aggregates in one hash table, where count(DISTINCT) would sort each
-- application's matches apart. STABLE: it reads the catalog as the statement that calls it does, and
-- plpgsql: the catalog's statement plans none of it when the answer comes from catalog_searches.
CREATE FUNCTION catalog_search(q text, publisher bigint, typ text, lim int, skip int)
    RETURNS TABLE (total bigint, ids bigint[]) LANGUAGE plpgsql STABLE PARALLEL SAFE AS $f$
BEGIN
    RETURN QUERY WITH typed AS (
        SELECT word COLLATE "C" AS word, 1::bigint << (n - 1)::int AS bit
        FROM catalog_words(q) WITH ORDINALITY AS t (word, n) WHERE n <= 32
    ), matches AS MATERIALIZED (
        SELECT w.id FROM typed JOIN application_words w ON w.word >= typed.word AND w.word < typed.word || chr(1114111)
        WHERE (publisher = 0 OR w.publisher_id = publisher) AND (typ = '' OR w.deployment_type = typ)
        GROUP BY w.id HAVING bit_or(typed.bit) = (SELECT sum(bit) FROM typed)
    )
    SELECT (SELECT count(*) FROM matches), ARRAY(SELECT m.id FROM matches m ORDER BY m.id LIMIT lim OFFSET skip);
END $f$;
-- +goose StatementEnd

-- +goose StatementBegin
-- catalog_page is the total of a filter (publisher 0 and type '' stand for any) and the ids of its
-- page at offset skip, from catalog_counts: among the top spans the one where the running count passes
-- skip, then among the 64 spans inside it, then among the 64 blocks inside that, each step keeping what
-- is left of the offset; then at most 255 ids skipped in the index. No step reads more than 64 rows
-- below the top (one row below a million ids), so a deep page costs the same in any catalog.
CREATE FUNCTION catalog_page(want_publisher bigint, want_type text, lim int, skip bigint)
    RETURNS TABLE (total bigint, ids bigint[]) LANGUAGE plpgsql STABLE PARALLEL SAFE AS $f$
DECLARE
    at_span bigint;
    rest bigint := skip;
    level smallint;
BEGIN
    SELECT coalesce(sum(c.n), 0) INTO total FROM catalog_counts c
    WHERE c.publisher_id = want_publisher AND c.deployment_type = want_type AND c.shift = 20;
    ids := '{}';
    IF skip >= total THEN
        RETURN NEXT;
        RETURN;
    END IF;
    SELECT w.span, rest - (w.upto - w.n) INTO at_span, rest FROM (
        SELECT c.span, c.n, sum(c.n) OVER (ORDER BY c.span) AS upto FROM catalog_counts c
        WHERE c.publisher_id = want_publisher AND c.deployment_type = want_type AND c.shift = 20
    ) w WHERE w.upto > rest ORDER BY w.span LIMIT 1;
    FOREACH level IN ARRAY ARRAY[14, 8]::smallint[] LOOP
        SELECT w.span, rest - (w.upto - w.n) INTO at_span, rest FROM (
            SELECT c.span, c.n, sum(c.n) OVER (ORDER BY c.span) AS upto FROM catalog_counts c
            WHERE c.publisher_id = want_publisher AND c.deployment_type = want_type AND c.shift = level
              AND c.span >= at_span << 6 AND c.span < (at_span + 1) << 6
        ) w WHERE w.upto > rest ORDER BY w.span LIMIT 1;
    END LOOP;
    -- One statement per filter, so that each uses its index.
    IF want_publisher <> 0 AND want_type <> '' THEN
        ids := ARRAY(SELECT a.id FROM applications a WHERE a.deleted_at IS NULL AND a.publisher_id = want_publisher
            AND a.deployment_type = want_type AND a.id >= at_span << 8 ORDER BY a.id OFFSET rest LIMIT lim);
    ELSIF want_publisher <> 0 THEN
        ids := ARRAY(SELECT a.id FROM applications a WHERE a.deleted_at IS NULL AND a.publisher_id = want_publisher
            AND a.id >= at_span << 8 ORDER BY a.id OFFSET rest LIMIT lim);
    ELSIF want_type <> '' THEN
        ids := ARRAY(SELECT a.id FROM applications a WHERE a.deleted_at IS NULL AND a.deployment_type = want_type
            AND a.id >= at_span << 8 ORDER BY a.id OFFSET rest LIMIT lim);
    ELSE
        ids := ARRAY(SELECT a.id FROM applications a WHERE a.deleted_at IS NULL
            AND a.id >= at_span << 8 ORDER BY a.id OFFSET rest LIMIT lim);
    END IF;
    RETURN NEXT;
END $f$;
-- +goose StatementEnd

-- +goose StatementBegin
-- catalog_search_keep keeps a search's answer computed at a generation, in its slot.
CREATE FUNCTION catalog_search_keep(slot integer, search text, generation bigint, total bigint, ids bigint[], listings text)
    RETURNS void LANGUAGE sql VOLATILE AS $f$
    INSERT INTO catalog_searches (slot, search, generation, total, ids, listings) VALUES (slot, search, generation, total, ids, listings)
    ON CONFLICT (slot) DO UPDATE SET search = excluded.search, generation = excluded.generation, total = excluded.total,
        ids = excluded.ids, listings = excluded.listings
$f$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION catalog_page;
DROP FUNCTION catalog_search_keep;
DROP FUNCTION catalog_search;
DROP TABLE catalog_searches;
DROP TRIGGER catalog_generation ON applications;
DROP FUNCTION catalog_generation_next;
DROP TABLE catalog_generation;

CREATE TABLE application_counts (
    publisher_id    bigint NOT NULL,
    deployment_type text   NOT NULL,
    n               bigint NOT NULL,
    PRIMARY KEY (publisher_id, deployment_type)
);
INSERT INTO application_counts SELECT publisher_id, deployment_type, count(*) FROM applications
WHERE deleted_at IS NULL GROUP BY 1, 2;
CREATE TABLE application_blocks (
    publisher_id    bigint NOT NULL,
    deployment_type text   NOT NULL,
    block           bigint NOT NULL,
    n               bigint NOT NULL,
    PRIMARY KEY (block, publisher_id, deployment_type)
);
CREATE INDEX application_blocks_by_publisher ON application_blocks (publisher_id, block);
INSERT INTO application_blocks SELECT publisher_id, deployment_type, id >> 8, count(*) FROM applications
WHERE deleted_at IS NULL GROUP BY 1, 2, 3;

-- +goose StatementBegin
CREATE FUNCTION application_counts_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.deleted_at IS NULL THEN
        UPDATE application_counts SET n = n - 1
        WHERE publisher_id = OLD.publisher_id AND deployment_type = OLD.deployment_type;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.deleted_at IS NULL THEN
        INSERT INTO application_counts (publisher_id, deployment_type, n)
        VALUES (NEW.publisher_id, NEW.deployment_type, 1)
        ON CONFLICT (publisher_id, deployment_type) DO UPDATE SET n = application_counts.n + 1;
    END IF;
    RETURN NULL;
END $$;
-- +goose StatementEnd

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

DROP TRIGGER catalog_counts_insert ON applications;
DROP TRIGGER catalog_counts_delete ON applications;
DROP TRIGGER catalog_counts_update ON applications;
DROP FUNCTION catalog_counts_track;
DROP FUNCTION catalog_counts_apply;
DROP TABLE catalog_counts;
CREATE TRIGGER applications_count AFTER INSERT OR DELETE ON applications
    FOR EACH ROW EXECUTE FUNCTION application_counts_track();
CREATE TRIGGER applications_count_update AFTER UPDATE ON applications FOR EACH ROW
    WHEN (OLD.publisher_id IS DISTINCT FROM NEW.publisher_id OR OLD.deployment_type IS DISTINCT FROM NEW.deployment_type
          OR OLD.deleted_at IS DISTINCT FROM NEW.deleted_at)
    EXECUTE FUNCTION application_counts_track();
CREATE TRIGGER applications_blocks AFTER INSERT OR DELETE ON applications
    FOR EACH ROW EXECUTE FUNCTION application_blocks_track();
CREATE TRIGGER applications_blocks_update AFTER UPDATE ON applications FOR EACH ROW
    WHEN (OLD.publisher_id IS DISTINCT FROM NEW.publisher_id OR OLD.deployment_type IS DISTINCT FROM NEW.deployment_type
          OR OLD.deleted_at IS DISTINCT FROM NEW.deleted_at)
    EXECUTE FUNCTION application_blocks_track();
