LOAD 'auto_explain';
SET auto_explain.log_min_duration = 0;
SET auto_explain.log_nested_statements = on;
SET auto_explain.log_analyze = on;
SET auto_explain.log_buffers = on;
SET client_min_messages = log;
\timing on
SELECT total, cardinality(ids) FROM catalog_search('sku017', 0, '', 20, 0);
SELECT total, cardinality(ids) FROM catalog_page(0, '', 20, 7980);
