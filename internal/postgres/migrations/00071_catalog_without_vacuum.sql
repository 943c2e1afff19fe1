-- +goose Up
-- The catalog read at once after being filled by separate publishes (issue #23), with no VACUUM or
-- ANALYZE ever run (autovacuum may be off, as on the CI machine, or not have come round yet):
--
-- 1. catalog_counts' n is no longer in its primary key's index. With it there, every publish's 12
--    updates changed an indexed column, so none was HOT: 10,000 publishes left 119,622 dead row
--    versions on 417 pages (and as many index entries) for 378 live rows, which only VACUUM reclaims.
--    Now an update writes its new version on the same page (fillfactor 50 leaves room) without an index
--    entry, and the next read of the page prunes the dead ones: the table stays a few pages without
--    VACUUM. (The index-only scans n was there for needed the visibility map, which only VACUUM sets
--    and every update clears: they read the heap anyway.) The table is rewritten once, compact.
LOCK TABLE catalog_counts IN ACCESS EXCLUSIVE MODE;
CREATE TEMPORARY TABLE catalog_counts_live ON COMMIT DROP AS SELECT * FROM catalog_counts;
TRUNCATE catalog_counts;
ALTER TABLE catalog_counts DROP CONSTRAINT catalog_counts_pkey;
ALTER TABLE catalog_counts ADD PRIMARY KEY (publisher_id, deployment_type, shift, span);
ALTER TABLE catalog_counts SET (fillfactor = 50);
INSERT INTO catalog_counts SELECT * FROM catalog_counts_live;

-- 2. The functions that compute a kept answer return one row, and plan their statements the same with
--    or without statistics. As set-returning functions of the default ROWS 1000, joined with
--    catalog_generation (never analyzed: estimated at 2,260 rows), the catalog's statement was estimated
--    at 2.26 million rows and a cost of 760,000, past jit_above_cost and jit_optimize_above_cost: every
--    execution of the cached plan JIT-compiled, inlined and optimized 58 functions (0.3–1.4 s) before
--    answering from a kept answer in 0.1 ms. Their own statements are short lookups in index order:
--    without statistics the deep page's last step chose a bitmap scan of every id past the block and a
--    sort (2,065 rows read for 20 at 10,000 applications; all the rest of the catalog at any size), so
--    sorting is off in them (the index gives the order) and so is JIT.
ALTER FUNCTION catalog_page(bigint, text, int, bigint) ROWS 1 SET jit = off SET enable_sort = off;
ALTER FUNCTION catalog_search(text, bigint, text, int, int) ROWS 1 SET jit = off;

-- +goose Down
ALTER FUNCTION catalog_page(bigint, text, int, bigint) ROWS 1000 RESET ALL;
ALTER FUNCTION catalog_search(text, bigint, text, int, int) ROWS 1000 RESET ALL;
ALTER TABLE catalog_counts RESET (fillfactor);
ALTER TABLE catalog_counts DROP CONSTRAINT catalog_counts_pkey;
ALTER TABLE catalog_counts ADD PRIMARY KEY (publisher_id, deployment_type, shift, span) INCLUDE (n);
