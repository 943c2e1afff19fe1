-- +goose Up
-- Private applications (issue #21 item 3): an application is public (every application so far, and the
-- default) or private, seen only by its owner (its user, or its organization's members), the
-- organizations it is shared with (their members), and the operator. A caller who may not see it is
-- told it does not exist.
ALTER TABLE applications ADD COLUMN private boolean NOT NULL DEFAULT false;

CREATE TABLE application_shares (
    application_id  bigint NOT NULL REFERENCES applications (id),
    organization_id bigint NOT NULL REFERENCES organizations (id),
    PRIMARY KEY (application_id, organization_id)
);
-- A caller's shared applications, from its organizations.
CREATE INDEX application_shares_by_organization ON application_shares (organization_id, application_id);
-- The private applications of a user and of an organization: few, found by index.
CREATE INDEX applications_private_by_publisher ON applications (publisher_id, id) WHERE private AND deleted_at IS NULL;
CREATE INDEX applications_private_by_organization ON applications (organization_id, id) WHERE private AND deleted_at IS NULL;
-- An icon is served to whoever may see an application one of whose versions shows it.
CREATE INDEX application_versions_by_icon ON application_versions ((about ->> 'icon')) WHERE about ? 'icon';

-- app_visible is the one rule of sight: a public application is everyone's; a private one is its
-- owner's (account_role: its user, its organization's members, the operator: caller 0) and the members'
-- of the organizations it is shared with. Caller -1 (nobody) sees the public ones.
CREATE FUNCTION app_visible(caller bigint, app bigint, private boolean, owner_user bigint, org bigint) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN NOT private OR account_role(caller, owner_user, org) IS NOT NULL
        OR EXISTS (SELECT FROM application_shares s JOIN organization_members m ON m.organization_id = s.organization_id
                   WHERE s.application_id = app AND m.user_id = caller);

-- private_apps are the ids of the live private applications caller sees (app_visible spelled out so that
-- the indexes above serve it); every one for the operator (0).
CREATE FUNCTION private_apps(caller bigint) RETURNS SETOF bigint LANGUAGE sql STABLE PARALLEL SAFE ROWS 10 AS $$
    SELECT a.id FROM applications a WHERE a.private AND a.deleted_at IS NULL AND caller = 0
    UNION
    SELECT a.id FROM applications a WHERE a.private AND a.deleted_at IS NULL AND a.organization_id IS NULL AND a.publisher_id = caller
    UNION
    SELECT a.id FROM organization_members m JOIN applications a ON a.organization_id = m.organization_id AND a.private AND a.deleted_at IS NULL
    WHERE m.user_id = caller
    UNION
    SELECT a.id FROM organization_members m JOIN application_shares s ON s.organization_id = m.organization_id
        JOIN applications a ON a.id = s.application_id AND a.private AND a.deleted_at IS NULL
    WHERE m.user_id = caller
$$;

-- The shared catalog (catalog_counts, application_words, catalog_page, kept answers) is the public
-- catalog, the same for everyone: a private application counts as out of it. A caller who sees private
-- ones gets them added to its page (catalog_private_page).
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION catalog_counts_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM catalog_counts_apply(array_agg(id), array_agg(publisher_id), array_agg(deployment_type), array_agg(1))
        FROM added WHERE deleted_at IS NULL AND NOT private;
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM catalog_counts_apply(array_agg(id), array_agg(publisher_id), array_agg(deployment_type), array_agg(-1))
        FROM removed WHERE deleted_at IS NULL AND NOT private;
    ELSE
        PERFORM catalog_counts_apply(array_agg(id), array_agg(publisher_id), array_agg(deployment_type), array_agg(n))
        FROM (
            SELECT id, publisher_id, deployment_type, -1 AS n FROM removed WHERE deleted_at IS NULL AND NOT private
            UNION ALL
            SELECT id, publisher_id, deployment_type, 1 FROM added WHERE deleted_at IS NULL AND NOT private
        ) d;
    END IF;
    RETURN NULL;
END $$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION application_words_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.deleted_at IS NULL AND NOT OLD.private THEN
        DELETE FROM application_words WHERE id = OLD.id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.deleted_at IS NULL AND NOT NEW.private THEN
        INSERT INTO application_words (word, id, publisher_id, deployment_type)
        SELECT w, NEW.id, NEW.publisher_id, NEW.deployment_type FROM catalog_words(NEW.name || ' ' || NEW.description) AS w;
    END IF;
    RETURN NULL;
END $$;
-- +goose StatementEnd
DROP TRIGGER applications_words ON applications;
CREATE TRIGGER applications_words AFTER INSERT OR DELETE OR UPDATE OF name, description, publisher_id, deployment_type, deleted_at, private
    ON applications FOR EACH ROW EXECUTE FUNCTION application_words_track();

-- catalog_page's last step reads the ids of the public catalog: its four statements as in 00070, each
-- with `NOT a.private` (and 00071's settings, which a replacement resets).
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION catalog_page(want_publisher bigint, want_type text, lim int, skip bigint)
    RETURNS TABLE (total bigint, ids bigint[]) LANGUAGE plpgsql STABLE PARALLEL SAFE ROWS 1 SET jit = off SET enable_sort = off AS $f$
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
    IF want_publisher <> 0 AND want_type <> '' THEN
        ids := ARRAY(SELECT a.id FROM applications a WHERE a.deleted_at IS NULL AND NOT a.private AND a.publisher_id = want_publisher
            AND a.deployment_type = want_type AND a.id >= at_span << 8 ORDER BY a.id OFFSET rest LIMIT lim);
    ELSIF want_publisher <> 0 THEN
        ids := ARRAY(SELECT a.id FROM applications a WHERE a.deleted_at IS NULL AND NOT a.private AND a.publisher_id = want_publisher
            AND a.id >= at_span << 8 ORDER BY a.id OFFSET rest LIMIT lim);
    ELSIF want_type <> '' THEN
        ids := ARRAY(SELECT a.id FROM applications a WHERE a.deleted_at IS NULL AND NOT a.private AND a.deployment_type = want_type
            AND a.id >= at_span << 8 ORDER BY a.id OFFSET rest LIMIT lim);
    ELSE
        ids := ARRAY(SELECT a.id FROM applications a WHERE a.deleted_at IS NULL AND NOT a.private
            AND a.id >= at_span << 8 ORDER BY a.id OFFSET rest LIMIT lim);
    END IF;
    RETURN NEXT;
END $f$;
-- +goose StatementEnd

-- +goose StatementBegin
-- catalog_kept_slot is the slot of catalog_searches a key is kept in, as the Go side computes it (keptHash:
-- FNV-1a, 32 bits, modulo the 4096 slots), so that a personal page shares the kept public answers.
CREATE FUNCTION catalog_kept_slot(key text) RETURNS integer LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $f$
DECLARE
    h bigint := 2166136261;
    b bytea := convert_to(key, 'UTF8');
BEGIN
    FOR i IN 0 .. length(b) - 1 LOOP
        h := ((h # get_byte(b, i)) * 16777619) & 4294967295;
    END LOOP;
    RETURN h % 4096;
END $f$;
-- +goose StatementEnd

-- +goose StatementBegin
-- catalog_private_page is a page of the catalog as a caller who sees private applications sees it: the
-- public catalog's answer merged with the private applications of the caller that the filters and words
-- select. With pp private applications in all (p <= pp of them selected), the public ids from offset
-- o = skip - pp (limit lim + pp) hold the page: the first of them is at position o + (selected private
-- ids before it) <= skip in the merged order, and lim + pp public ids reach past its end. That public
-- answer is looked up among the kept ones (catalog_searches, under the key keptKey would give it), and
-- computed and kept when it is not there: a caller's private applications change the window, not the
-- public answer, which every caller with as many private applications shares.
CREATE FUNCTION catalog_private_page(caller bigint, q text, want_publisher bigint, want_type text, lim int, skip int)
    RETURNS TABLE (total bigint, ids bigint[]) LANGUAGE plpgsql VOLATILE ROWS 1 SET jit = off AS $f$
DECLARE
    extra bigint[];
    pub bigint[];
    pub_total bigint;
    pp int;
    o int;
    start int := 0;
    k_key text;
    k_slot integer;
    k_generation bigint := (SELECT g.n FROM catalog_generation g);
BEGIN
    pp := (SELECT count(*) FROM private_apps(caller));
    extra := ARRAY(SELECT a.id FROM applications a WHERE a.id IN (SELECT p.id FROM private_apps(caller) AS p (id)) AND a.deleted_at IS NULL
        AND (want_publisher = 0 OR a.publisher_id = want_publisher) AND (want_type = '' OR a.deployment_type = want_type)
        AND NOT EXISTS (SELECT FROM catalog_words(q) WITH ORDINALITY AS t (word, n)
                        WHERE t.n <= 32 AND NOT EXISTS (SELECT FROM catalog_words(a.name || ' ' || a.description) AS w
                                                        WHERE starts_with(w, t.word)))
        ORDER BY a.id);
    o := greatest(0, skip - pp);
    k_key := format('%s %s %s %s %s', want_publisher, want_type, lim + pp, o, q);
    k_slot := catalog_kept_slot(k_key);
    SELECT s.total, s.ids INTO pub_total, pub FROM catalog_searches s
    WHERE s.slot = k_slot AND s.search = k_key AND s.generation = k_generation;
    IF NOT FOUND THEN
        IF q <> '' THEN
            SELECT s.total, s.ids INTO pub_total, pub FROM catalog_search(q, want_publisher, want_type, lim + pp, o) s;
        ELSE
            SELECT s.total, s.ids INTO pub_total, pub FROM catalog_page(want_publisher, want_type, lim + pp, o) s;
        END IF;
        PERFORM catalog_search_keep(k_slot, k_key, k_generation, pub_total, pub,
            (SELECT string_agg(a.listing, ',' ORDER BY a.id) FROM applications a WHERE a.id = ANY (pub) AND a.deleted_at IS NULL));
    END IF;
    total := pub_total + cardinality(extra);
    IF cardinality(pub) = 0 AND o > 0 THEN
        ids := '{}'; -- past the end
        RETURN NEXT;
        RETURN;
    END IF;
    IF o > 0 THEN
        start := o + (SELECT count(*) FROM unnest(extra) e WHERE e < pub[1]);
        extra := ARRAY(SELECT e FROM unnest(extra) e WHERE e > pub[1]);
    END IF;
    IF cardinality(pub) = lim + pp THEN
        extra := ARRAY(SELECT e FROM unnest(extra) e WHERE e < pub[lim + pp]);
    END IF;
    ids := ARRAY(SELECT x FROM unnest(pub || extra) x ORDER BY x OFFSET skip - start LIMIT lim);
    RETURN NEXT;
END $f$;
-- +goose StatementEnd

-- A private application's listing (the API's JSON of it, migration 00050) says so: "private":true, as
-- encoding/json writes marketplace.Application.Private (omitempty). BEFORE triggers run in name order:
-- this one after applications_listing has written the listing.
-- +goose StatementBegin
CREATE FUNCTION applications_listing_private() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.private THEN
        NEW.listing := left(NEW.listing, -1) || ',"private":true}';
    END IF;
    RETURN NEW;
END $$;
-- +goose StatementEnd
CREATE TRIGGER applications_listing_private BEFORE INSERT OR UPDATE ON applications
    FOR EACH ROW EXECUTE FUNCTION applications_listing_private();

-- +goose Down
DROP TRIGGER applications_listing_private ON applications;
DROP FUNCTION applications_listing_private;
DROP FUNCTION catalog_private_page;
DROP FUNCTION catalog_kept_slot;
DROP FUNCTION private_apps;
DROP FUNCTION app_visible;
DROP INDEX application_versions_by_icon;
DROP TABLE application_shares;
-- the public catalog's functions of 00070 read the column no more once it is gone; put them back as they were
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION catalog_counts_track() RETURNS trigger LANGUAGE plpgsql AS $$
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
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION application_words_track() RETURNS trigger LANGUAGE plpgsql AS $$
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
DROP TRIGGER applications_words ON applications;
CREATE TRIGGER applications_words AFTER INSERT OR DELETE OR UPDATE OF name, description, publisher_id, deployment_type, deleted_at
    ON applications FOR EACH ROW EXECUTE FUNCTION application_words_track();
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION catalog_page(want_publisher bigint, want_type text, lim int, skip bigint)
    RETURNS TABLE (total bigint, ids bigint[]) LANGUAGE plpgsql STABLE PARALLEL SAFE ROWS 1 SET jit = off SET enable_sort = off AS $f$
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
DROP INDEX applications_private_by_publisher;
DROP INDEX applications_private_by_organization;
ALTER TABLE applications DROP COLUMN private;
