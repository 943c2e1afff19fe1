-- +goose Up
-- The one billing rule: a record is billed per whole second from started_at to ended_at (or to the
-- instant a reader asks about) at its fixed hourly rate; amount = rate × seconds / 3600 rounded half to
-- even to 6 places, once. The seed's round() rounded half away from zero; the two differ only when the
-- 7th decimal is exactly 5.
CREATE FUNCTION usage_seconds(started timestamptz, ended timestamptz) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN greatest(floor(extract(epoch FROM ended - started)), 0);

-- round_half_even rounds x (exact, either sign) to places decimals, a tie to the even neighbour.
CREATE FUNCTION round_half_even(x numeric, places int) RETURNS numeric
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN abs(x * 10::numeric ^ places - trunc(x * 10::numeric ^ places)) = 0.5
        THEN round((trunc(x * 10::numeric ^ places) + sign(x) * mod(abs(trunc(x * 10::numeric ^ places)), 2))
                   / 10::numeric ^ places, places)
        ELSE round(x, places) END;

-- usage_amount rounds half away from zero with round() and then takes back the millionth a tie added to
-- an even result: rate × seconds × 10^6 is an integer (a rate has at most 6 decimals), and it is a tie
-- whose lower neighbour is even exactly when it is 1800 modulo 7200. One expression, so PostgreSQL
-- inlines it into the metering UPDATE.
CREATE OR REPLACE FUNCTION usage_amount(rate numeric, started timestamptz, ended timestamptz) RETURNS numeric
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN round(rate * greatest(floor(extract(epoch FROM ended - started)), 0) / 3600, 6)
         - CASE WHEN mod(rate * 1000000 * greatest(floor(extract(epoch FROM ended - started)), 0), 7200) = 1800
                THEN 0.000001 ELSE 0 END;

-- Closed records keep the amount of the rule (they differ from the seed's only on an exact tie).
UPDATE usage_records SET amount = usage_amount(hourly_rate, started_at, ended_at)
WHERE ended_at IS NOT NULL AND amount <> usage_amount(hourly_rate, started_at, ended_at);

-- What invoices have charged of each record so far: the next close bills the rest, so a correction found
-- after a period closed lands on the next invoice. Not indexed, so updating them stays a HOT update.
ALTER TABLE usage_records ADD COLUMN invoiced_seconds bigint NOT NULL DEFAULT 0,
                          ADD COLUMN invoiced_amount numeric(30,6) NOT NULL DEFAULT 0;

-- A publisher's revenue reads the records of its applications over a range; neither column ever changes,
-- so metering stays a HOT update.
CREATE INDEX usage_records_by_application ON usage_records (application_id, started_at);

-- Every run of the billing job, by any replica.
CREATE TABLE billing_runs (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    as_of          timestamptz NOT NULL,
    started_at     timestamptz NOT NULL,
    finished_at    timestamptz NOT NULL,
    records        bigint      NOT NULL,
    periods_closed int         NOT NULL DEFAULT 0,
    error          text        NOT NULL DEFAULT ''
);

-- A closed calendar month (UTC). Periods tile: each starts where the previous one ended.
CREATE TABLE billing_periods (
    starts_at   timestamptz   PRIMARY KEY,
    ends_at     timestamptz   NOT NULL UNIQUE,
    closed_at   timestamptz   NOT NULL,
    closed_by   text          NOT NULL,
    currency    text          NOT NULL,
    fee_percent numeric(9,4)  NOT NULL,
    invoices    int           NOT NULL DEFAULT 0,
    total       numeric(30,2) NOT NULL DEFAULT 0,
    CHECK (ends_at > starts_at)
);

CREATE TABLE invoices (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    number       text          NOT NULL UNIQUE,
    user_id      bigint        NOT NULL REFERENCES users (id),
    period_start timestamptz   NOT NULL REFERENCES billing_periods (starts_at),
    period_end   timestamptz   NOT NULL,
    issued_at    timestamptz   NOT NULL,
    currency     text          NOT NULL,
    total        numeric(30,2) NOT NULL,
    UNIQUE (user_id, period_start)
);

CREATE TABLE invoice_lines (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    invoice_id      bigint        NOT NULL REFERENCES invoices (id),
    kind            text          NOT NULL CHECK (kind IN ('usage', 'adjustment')),
    usage_record_id bigint        NOT NULL REFERENCES usage_records (id),
    deployment_id   bigint        NOT NULL,
    application_id  bigint        NOT NULL,
    publisher_id    bigint        NOT NULL,
    hourly_rate     numeric(18,6) NOT NULL,
    seconds         bigint        NOT NULL,
    amount          numeric(30,6) NOT NULL,
    charge          numeric(30,2) NOT NULL
);
CREATE INDEX invoice_lines_by_invoice ON invoice_lines (invoice_id, id);
CREATE INDEX invoice_lines_by_publisher ON invoice_lines (publisher_id, invoice_id);

-- +goose StatementBegin
CREATE FUNCTION billing_closed_forever() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% of a closed period never change', TG_TABLE_NAME USING ERRCODE = 'integrity_constraint_violation';
END $$;
-- +goose StatementEnd

-- A closed period never changes: what an invoice said stays what it says.
CREATE TRIGGER invoices_closed BEFORE UPDATE OR DELETE ON invoices
    FOR EACH ROW EXECUTE FUNCTION billing_closed_forever();
CREATE TRIGGER invoice_lines_closed BEFORE UPDATE OR DELETE ON invoice_lines
    FOR EACH ROW EXECUTE FUNCTION billing_closed_forever();

-- +goose Down
DROP TABLE invoice_lines, invoices, billing_periods, billing_runs;
DROP FUNCTION billing_closed_forever;
ALTER TABLE usage_records DROP COLUMN invoiced_seconds, DROP COLUMN invoiced_amount;
CREATE OR REPLACE FUNCTION usage_amount(rate numeric, started timestamptz, ended timestamptz) RETURNS numeric
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN round(rate * greatest(floor(extract(epoch FROM ended - started)), 0) / 3600, 6);
DROP FUNCTION round_half_even, usage_seconds;
