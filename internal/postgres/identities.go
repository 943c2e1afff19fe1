package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// identityUser finds the user of id, or creates it, under a transaction-scoped lock on (issuer, subject)
// so that two first sign-ins at once make one user.
func identityUser(ctx context.Context, tx pgx.Tx, id marketplace.Identity) (userID int64, created bool, err error) {
	if id.Issuer == "" || id.Subject == "" {
		return 0, false, marketplace.Errorf(marketplace.EUNAUTHORIZED, "the provider named no issuer or subject")
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1 || ' ' || $2, 116))`, id.Issuer, id.Subject); err != nil {
		return 0, false, fmt.Errorf("lock identity: %w", err)
	}
	err = tx.QueryRow(ctx, `UPDATE oidc_identities SET last_at = now() WHERE issuer = $1 AND subject = $2 RETURNING user_id`,
		id.Issuer, id.Subject).Scan(&userID)
	if err == nil {
		return userID, false, nil
	} else if !errors.Is(err, pgx.ErrNoRows) {
		return 0, false, fmt.Errorf("find identity: %w", err)
	}
	name := id.Name
	if name == "" {
		name = id.Subject
	}
	if err := tx.QueryRow(ctx, `WITH u AS (INSERT INTO users (name) VALUES ($3) RETURNING id)
INSERT INTO oidc_identities (issuer, subject, user_id) SELECT $1, $2, id FROM u RETURNING user_id`, id.Issuer, id.Subject, name).Scan(&userID); err != nil {
		return 0, false, fmt.Errorf("create the user of an identity: %w", err)
	}
	return userID, true, nil
}

// IdentityUser finds or creates the user of id.
func (db *DB) IdentityUser(ctx context.Context, id marketplace.Identity) (userID int64, err error) {
	err = pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		userID, _, err = identityUser(ctx, tx, id)
		return err
	})
	return userID, err
}

// SignInIdentity finds or creates the user of id and sets its memberships of source 'oidc' to grants, in
// one transaction: memberships of source 'manual' are left as they are.
func (db *DB) SignInIdentity(ctx context.Context, id marketplace.Identity, grants []marketplace.RoleGrant) (*marketplace.IdentitySignIn, error) {
	var in marketplace.IdentitySignIn
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		in = marketplace.IdentitySignIn{}
		var err error
		if in.UserID, in.Created, err = identityUser(ctx, tx, id); err != nil {
			return err
		}
		// The organizations the grants name, the first grant of each winning.
		type want struct {
			name, role string
		}
		wanted := map[int64]want{}
		unresolved := map[string]bool{} // names of no organization, or of several: none of theirs is touched
		for _, g := range grants {
			if err := marketplace.ValidateRole(g.Role); err != nil {
				return err
			}
			rows, _ := tx.Query(ctx, `SELECT id FROM organizations WHERE name = $1 ORDER BY id LIMIT 2`, g.Organization)
			ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
			if err != nil {
				return fmt.Errorf("find organization %q: %w", g.Organization, err)
			}
			if len(ids) != 1 {
				in.Unknown = append(in.Unknown, g.Organization)
				unresolved[g.Organization] = true
				continue
			}
			if _, ok := wanted[ids[0]]; !ok {
				wanted[ids[0]] = want{g.Organization, g.Role}
			}
		}
		type have struct {
			name, role, source string
		}
		had := map[int64]have{}
		rows, _ := tx.Query(ctx, `SELECT m.organization_id, o.name, m.role, m.source
FROM organization_members m JOIN organizations o ON o.id = m.organization_id WHERE m.user_id = $1 FOR UPDATE OF m`, in.UserID)
		var org int64
		var h have
		if _, err := pgx.ForEachRow(rows, []any{&org, &h.name, &h.role, &h.source}, func() error { had[org] = h; return nil }); err != nil {
			return fmt.Errorf("read the memberships of user %d: %w", in.UserID, err)
		}
		for org, w := range wanted {
			label := w.name + ":" + w.role
			switch h, ok := had[org]; {
			case ok && h.source == "manual":
				in.Kept = append(in.Kept, w.name+":"+h.role)
			case ok && h.role == w.role:
				in.Granted = append(in.Granted, label)
			default:
				if _, err := tx.Exec(ctx, `INSERT INTO organization_members (organization_id, user_id, role, source) VALUES ($1, $2, $3, 'oidc')
ON CONFLICT (organization_id, user_id) DO UPDATE SET role = excluded.role`, org, in.UserID, w.role); err != nil {
					return fmt.Errorf("grant %s to user %d: %w", label, in.UserID, err)
				}
				in.Granted = append(in.Granted, label)
			}
		}
		for org, h := range had {
			// A grant whose name became ambiguous (anyone may create an organization of the same
			// name) keeps what it granted: a stranger's namesake must not strip the real one's members.
			if _, ok := wanted[org]; ok || h.source != "oidc" || unresolved[h.name] {
				continue
			}
			if _, err := tx.Exec(ctx, `DELETE FROM organization_members WHERE organization_id = $1 AND user_id = $2`, org, in.UserID); err != nil {
				return fmt.Errorf("remove user %d from organization %d: %w", in.UserID, org, err)
			}
			in.Removed = append(in.Removed, h.name+":"+h.role)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &in, nil
}

// CreateIdentitySession opens a storefront session for a user signed in through a provider; the user's
// sessions past SessionsPerUser end, the oldest first.
func (db *DB) CreateIdentitySession(ctx context.Context, idHash []byte, userID int64, issuer string, s *marketplace.Session) error {
	return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `WITH swept AS (DELETE FROM web_sessions WHERE expires_at < now())
INSERT INTO web_sessions (id_hash, user_id, oidc_issuer, csrf_token, expires_at) VALUES ($1, $2, $3, $4, $5)`,
			idHash, userID, issuer, s.CSRFToken, s.ExpiresAt); err != nil {
			return fmt.Errorf("create session: %w", err)
		}
		s.UserID = userID
		if _, err := tx.Exec(ctx, `DELETE FROM web_sessions WHERE user_id = $1 AND id_hash NOT IN (
  SELECT id_hash FROM web_sessions WHERE user_id = $1 ORDER BY expires_at DESC, id_hash LIMIT $2)`, userID, SessionsPerUser); err != nil {
			return fmt.Errorf("end sessions past %d: %w", SessionsPerUser, err)
		}
		return nil
	})
}
