-- +goose Up
-- Organizations: projects, applications and bills belong to a user (as before) or to an organization,
-- whose members have one role each. What a member may do is decided by the store from this table.
CREATE TABLE organizations (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE organization_members (
    organization_id bigint      NOT NULL REFERENCES organizations (id),
    user_id         bigint      NOT NULL REFERENCES users (id),
    role            text        NOT NULL CHECK (role IN ('viewer', 'deployer', 'publisher', 'admin')),
    added_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, user_id)
);
-- A user's organizations, for every scoped list.
CREATE INDEX organization_members_by_user ON organization_members (user_id, organization_id);

-- The owner of a row is its organization when organization_id is set, its user otherwise (user_id,
-- publisher_id, consumer_id then name who created it or asked for it). Set once, never changed.
ALTER TABLE projects ADD COLUMN organization_id bigint REFERENCES organizations (id);
ALTER TABLE applications ADD COLUMN organization_id bigint REFERENCES organizations (id);
-- A deployment's and a usage record's organization is their project's, copied so that scoped lists and
-- bills read one column.
ALTER TABLE deployments ADD COLUMN organization_id bigint REFERENCES organizations (id);
ALTER TABLE usage_records ADD COLUMN organization_id bigint REFERENCES organizations (id);
CREATE INDEX projects_by_organization ON projects (organization_id, id) WHERE organization_id IS NOT NULL AND deleted_at IS NULL;
CREATE INDEX deployments_by_organization ON deployments (organization_id, id) WHERE organization_id IS NOT NULL;
CREATE INDEX usage_records_by_organization ON usage_records (organization_id, id) WHERE organization_id IS NOT NULL;
CREATE INDEX applications_by_organization ON applications (organization_id, id) WHERE organization_id IS NOT NULL;

-- account_role is the one rule of access: the role caller holds on a row owned by owner_user, or by org
-- when it is set. 'owner' for the user who owns a personal row and for the operator (caller 0), the
-- member's role for an organization's row, NULL for anyone else (who is then told the row does not exist).
CREATE FUNCTION account_role(caller bigint, owner_user bigint, org bigint) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN CASE WHEN caller = 0 THEN 'owner'
                WHEN org IS NULL THEN CASE WHEN owner_user = caller THEN 'owner' END
                ELSE (SELECT m.role FROM organization_members m WHERE m.organization_id = org AND m.user_id = caller) END;

-- +goose StatementBegin
CREATE FUNCTION usage_records_organization() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.organization_id := (SELECT organization_id FROM deployments WHERE id = NEW.deployment_id);
    RETURN NEW;
END $$;
-- +goose StatementEnd
-- Every usage record, whoever opens it (an install, an upgrade), is billed to its deployment's owner.
CREATE TRIGGER usage_records_organization BEFORE INSERT ON usage_records
    FOR EACH ROW EXECUTE FUNCTION usage_records_organization();

-- An organization's invoice has no user; a user's has no organization.
ALTER TABLE invoices ALTER COLUMN user_id DROP NOT NULL,
    ADD COLUMN organization_id bigint REFERENCES organizations (id),
    ADD CONSTRAINT invoices_one_account CHECK ((user_id IS NULL) <> (organization_id IS NULL)),
    ADD CONSTRAINT invoices_organization_period UNIQUE (organization_id, period_start);
-- The member who asked for the deployment an organization's line bills.
ALTER TABLE invoice_lines ADD COLUMN requested_by bigint;

-- The audit trail names the organization of a change made in it; its members read those events.
ALTER TABLE audit_events ADD COLUMN organization_id bigint;
CREATE INDEX audit_events_by_organization ON audit_events (organization_id, id) WHERE organization_id IS NOT NULL;

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION audit_deployment_status() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit_events (at, actor, owner_id, organization_id, action, resource, detail)
    VALUES (coalesce(nullif(current_setting('marketplace.at', true), '')::timestamptz, now()),
            'marketplace', NEW.consumer_id, NEW.organization_id, 'deployment.' || NEW.status, 'deployment:' || NEW.id,
            jsonb_build_object('from', CASE WHEN TG_OP = 'INSERT' THEN NULL ELSE OLD.status END, 'to', NEW.status,
                               'attempt', NEW.attempts, 'version', NEW.version,
                               'failure_reason', nullif(NEW.failure_reason, ''),
                               'application_id', NEW.application_id, 'project_id', NEW.project_id));
    RETURN NULL;
END $$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION audit_deployment_status() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit_events (at, actor, owner_id, action, resource, detail)
    VALUES (coalesce(nullif(current_setting('marketplace.at', true), '')::timestamptz, now()),
            'marketplace', NEW.consumer_id, 'deployment.' || NEW.status, 'deployment:' || NEW.id,
            jsonb_build_object('from', CASE WHEN TG_OP = 'INSERT' THEN NULL ELSE OLD.status END, 'to', NEW.status,
                               'attempt', NEW.attempts, 'version', NEW.version,
                               'failure_reason', nullif(NEW.failure_reason, ''),
                               'application_id', NEW.application_id, 'project_id', NEW.project_id));
    RETURN NULL;
END $$;
-- +goose StatementEnd
ALTER TABLE audit_events DROP COLUMN organization_id;
ALTER TABLE invoice_lines DROP COLUMN requested_by;
ALTER TABLE invoices DROP COLUMN organization_id;
DROP TRIGGER usage_records_organization ON usage_records;
DROP FUNCTION usage_records_organization, account_role;
ALTER TABLE usage_records DROP COLUMN organization_id;
ALTER TABLE deployments DROP COLUMN organization_id;
ALTER TABLE applications DROP COLUMN organization_id;
ALTER TABLE projects DROP COLUMN organization_id;
DROP TABLE organization_members, organizations;
