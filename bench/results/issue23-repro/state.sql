SELECT relname, n_live_tup, n_dead_tup, n_tup_upd, n_tup_hot_upd, last_vacuum, last_autovacuum, last_analyze, last_autoanalyze, pg_size_pretty(pg_total_relation_size(relid)) total, pg_relation_size(relid)/8192 heap_pages FROM pg_stat_user_tables WHERE relname IN ('catalog_counts','catalog_generation','catalog_searches','applications','application_words') ORDER BY relname;
SELECT indexrelname, pg_relation_size(indexrelid)/8192 pages, idx_scan FROM pg_stat_user_indexes WHERE relname IN ('catalog_counts','catalog_searches','application_words','applications');
SELECT relname, reltuples, relpages FROM pg_class WHERE relname IN ('catalog_counts','catalog_generation','catalog_searches','applications','application_words');
SELECT count(*) live_rows FROM catalog_counts;
SELECT n AS generation FROM catalog_generation;
SELECT slot, search, generation, total, cardinality(ids) FROM catalog_searches;
