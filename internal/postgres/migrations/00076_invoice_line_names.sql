-- +goose Up
-- An invoice or payout line names its application as it was called when the period closed: a
-- publisher's later rename changes no bill.
ALTER TABLE invoice_lines ADD COLUMN application_name text NOT NULL DEFAULT '';
UPDATE invoice_lines l SET application_name = a.name FROM applications a WHERE a.id = l.application_id;

-- +goose Down
ALTER TABLE invoice_lines DROP COLUMN application_name;
