-- +goose Up
-- Single sign-on: a user signed in through an OpenID provider is its (issuer, subject), created on first
-- sign-in. A user may have several (one per provider); a token user has none.
CREATE TABLE oidc_identities (
    issuer     text        NOT NULL,
    subject    text        NOT NULL,
    user_id    bigint      NOT NULL REFERENCES users (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    last_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX oidc_identities_by_user ON oidc_identities (user_id);

-- Where a membership came from: 'manual' (added or changed by an admin, never touched by sign-ins) or
-- 'oidc' (granted by the provider's groups, set again at each sign-in, removed when the group is gone).
ALTER TABLE organization_members ADD COLUMN source text NOT NULL DEFAULT 'manual' CHECK (source IN ('manual', 'oidc'));

-- A session opened through a provider belongs to its user and names the issuer instead of a token.
ALTER TABLE web_sessions ADD COLUMN oidc_issuer text,
    DROP CONSTRAINT web_sessions_check,
    ADD CONSTRAINT web_sessions_check CHECK ((user_id IS NOT NULL AND (token_id IS NOT NULL OR oidc_issuer IS NOT NULL))
                                             OR operator_token_hash IS NOT NULL);

-- +goose Down
DELETE FROM web_sessions WHERE oidc_issuer IS NOT NULL;
ALTER TABLE web_sessions DROP CONSTRAINT web_sessions_check,
    ADD CONSTRAINT web_sessions_check CHECK ((user_id IS NOT NULL AND token_id IS NOT NULL) OR operator_token_hash IS NOT NULL),
    DROP COLUMN oidc_issuer;
ALTER TABLE organization_members DROP COLUMN source;
DROP TABLE oidc_identities;
