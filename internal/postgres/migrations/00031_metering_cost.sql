-- +goose Up
-- The metering pass spends about a third of its time evaluating usage_amount: 00030's form takes a
-- numeric epoch, multiplies, divides, rounds and takes a numeric modulo, ~0.85 µs a record. The same
-- numbers come from integer arithmetic on p = rate × 10^6 × seconds: amount = p / 3600 rounded half to
-- even, × 10^-6. The fast branch is exact only inside its guard, and 00030's expression stays verbatim as
-- the other branch, so every input outside it (and NULL, negative rates) gives what it always gave:
--   * seconds: date_part('epoch') is a double, time / 10^6 plus whole days, each rounded once; below
--     2^33 s (272 years) an error is under 10^-6 s, so floor() cannot cross a whole second.
--   * p = (rate × 10^6)::bigint × seconds is an integer below 2^53 when rate < 100 and the span is under
--     1000 days (10^8 × 8.64×10^7 = 8.64×10^15), so its double is exact; p / 3600 then lands exactly on a
--     tie (k + 0.5 is representable) and otherwise stays on the right side of it (a non-tie is at least
--     1/3600 from k + 0.5, more than half a unit in the last place below 2^42), and round() on a double
--     is rint(), which rounds a tie to the even neighbour.
--   * × 0.000001 keeps the scale at 6, so the text of every amount stays the same.
-- One expression, so PostgreSQL still inlines it into the metering UPDATE and every reader.
CREATE OR REPLACE FUNCTION usage_amount(rate numeric, started timestamptz, ended timestamptz) RETURNS numeric
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN rate >= 0 AND rate < 100 AND ended - started < interval '1000 days'
        THEN round((rate * 1000000)::bigint * greatest(floor(date_part('epoch', ended - started)), 0) / 3600)::bigint
             * 0.000001
        ELSE round(rate * greatest(floor(extract(epoch FROM ended - started)), 0) / 3600, 6)
           - CASE WHEN mod(rate * 1000000 * greatest(floor(extract(epoch FROM ended - started)), 0), 7200) = 1800
                  THEN 0.000001 ELSE 0 END END;

-- At fillfactor 50 a page holds 32 records and their 32 new versions do not quite fit beside them (plus
-- the redirects pruning leaves), so each pass moved 3-6% of the records to other pages, with an entry in
-- each of the five indexes, and the table grew. At 40 every rewrite stays on its page (HOT). It applies to
-- pages written from now on; an existing table gets there as records move or at its next rewrite.
ALTER TABLE usage_records SET (fillfactor = 40);

-- +goose Down
ALTER TABLE usage_records SET (fillfactor = 50);
CREATE OR REPLACE FUNCTION usage_amount(rate numeric, started timestamptz, ended timestamptz) RETURNS numeric
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN round(rate * greatest(floor(extract(epoch FROM ended - started)), 0) / 3600, 6)
         - CASE WHEN mod(rate * 1000000 * greatest(floor(extract(epoch FROM ended - started)), 0), 7200) = 1800
                THEN 0.000001 ELSE 0 END;
