-- +goose Up
-- A month's close inserts every invoice line of the month in one statement: a million lines ran a million
-- checks of each foreign key, each a query that also locked the usage record it found (FOR KEY SHARE),
-- three quarters of the close's time. The same rule, checked once per statement over all the lines it
-- inserted (two anti-joins), and on the other side once per statement over what it deleted: nothing
-- deletes invoices (billing_closed_forever) or usage records, but if something ever does, a record an
-- invoice charged still cannot go.
ALTER TABLE invoice_lines DROP CONSTRAINT invoice_lines_invoice_id_fkey,
                          DROP CONSTRAINT invoice_lines_usage_record_id_fkey;

-- +goose StatementBegin
CREATE FUNCTION invoice_lines_refer() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM added l WHERE NOT EXISTS (SELECT 1 FROM invoices i WHERE i.id = l.invoice_id)) THEN
        RAISE EXCEPTION 'an invoice line refers to an invoice that does not exist' USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF EXISTS (SELECT 1 FROM added l WHERE NOT EXISTS (SELECT 1 FROM usage_records r WHERE r.id = l.usage_record_id)) THEN
        RAISE EXCEPTION 'an invoice line refers to a usage record that does not exist' USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION usage_records_invoiced_stay() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM removed r JOIN invoice_lines l ON l.usage_record_id = r.id) THEN
        RAISE EXCEPTION 'a usage record an invoice charged cannot be deleted' USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END $$;
-- +goose StatementEnd

CREATE TRIGGER invoice_lines_refer AFTER INSERT ON invoice_lines REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION invoice_lines_refer();
CREATE TRIGGER usage_records_invoiced_stay AFTER DELETE ON usage_records REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION usage_records_invoiced_stay();

-- +goose Down
DROP TRIGGER usage_records_invoiced_stay ON usage_records;
DROP TRIGGER invoice_lines_refer ON invoice_lines;
DROP FUNCTION usage_records_invoiced_stay, invoice_lines_refer;
ALTER TABLE invoice_lines ADD CONSTRAINT invoice_lines_invoice_id_fkey FOREIGN KEY (invoice_id) REFERENCES invoices (id),
                          ADD CONSTRAINT invoice_lines_usage_record_id_fkey FOREIGN KEY (usage_record_id) REFERENCES usage_records (id);
