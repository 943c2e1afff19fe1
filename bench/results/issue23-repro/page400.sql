\timing on
PREPARE p400(bytea, int, text, bigint, text, int, int) AS
WITH caller AS (
  SELECT t.id, t.last_used_at FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = $1
), used AS (
  UPDATE tokens SET last_used_at = now() FROM caller
  WHERE tokens.id = caller.id AND (caller.last_used_at IS NULL OR caller.last_used_at < now() - interval '1 minute')
), cached AS (
  SELECT s.total, s.ids, s.listings FROM catalog_searches s JOIN catalog_generation g ON g.n = s.generation
  WHERE s.slot = $2 AND s.search = $3
), computed AS (
  SELECT c.total, c.ids, l.listings, catalog_search_keep($2, $3, g.n, c.total, c.ids, l.listings) AS kept
  FROM catalog_generation g, catalog_page($4, $5, $6, $7) c,
    LATERAL (SELECT string_agg(a.listing, ',' ORDER BY a.id) AS listings FROM applications a
             WHERE a.id = ANY (c.ids) AND a.deleted_at IS NULL) l
  WHERE NOT EXISTS (SELECT FROM cached) AND EXISTS (SELECT FROM caller)
), answer AS (SELECT total, ids, listings FROM cached UNION ALL SELECT total, ids, listings FROM computed)
SELECT total.n, page.* FROM caller CROSS JOIN (SELECT total AS n, ids, listings FROM answer) AS total
LEFT JOIN LATERAL (SELECT total.listings AS listing WHERE total.listings IS NOT NULL) AS page ON true;
EXPLAIN (ANALYZE, BUFFERS) EXECUTE p400(sha256('mpt_bench-publisher-1-aaaaaaaaaaaaaaaaaaaaaaaaa'), 3057, '0  20 7980 ', 0, '', 20, 7980);
