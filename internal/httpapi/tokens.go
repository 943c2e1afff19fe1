package httpapi

import (
	"context"
	"log/slog"
	"time"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// There is no cache of valid tokens: every authenticated request looks its token up in PostgreSQL (one
// unique-index lookup), so a token revoked through any replica is refused by every replica at once. A
// cache of unknown tokens would not help either: a flood of random tokens never repeats one, and a string
// that cannot be a token is refused without a query (wellFormedToken).

// wellFormedToken reports whether s could be a user token at all.
func wellFormedToken(s string) bool {
	if len(s) != tokenLength || s[:len(tokenPrefix)] != tokenPrefix {
		return false
	}
	for _, c := range []byte(s[len(tokenPrefix):]) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

type createdToken struct {
	ID        int64     `json:"id"`
	UserID    int64     `json:"user_id"`
	CreatedAt time.Time `json:"created_at"`
	Token     string    `json:"token" doc:"the bearer token; shown only now"`
}

func createToken(tokens marketplace.TokenService, log *slog.Logger) func(context.Context, *idInput) (*body[createdToken], error) {
	return func(ctx context.Context, in *idInput) (*body[createdToken], error) {
		token := newToken()
		t, err := tokens.CreateToken(ctx, in.ID, HashToken(token))
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		return &body[createdToken]{createdToken{ID: t.ID, UserID: t.UserID, CreatedAt: t.CreatedAt, Token: token}}, nil
	}
}

func listTokens(tokens marketplace.TokenService, log *slog.Logger) func(context.Context, *idInput) (*body[[]*marketplace.Token], error) {
	return func(ctx context.Context, in *idInput) (*body[[]*marketplace.Token], error) {
		ts, err := tokens.FindTokens(ctx, in.ID)
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		return &body[[]*marketplace.Token]{ts}, nil
	}
}

type tokenInput struct {
	ID      int64 `path:"id" minimum:"1"`
	TokenID int64 `path:"tokenID" minimum:"1"`
}

func revokeToken(tokens marketplace.TokenService, log *slog.Logger) func(context.Context, *tokenInput) (*struct{}, error) {
	return func(ctx context.Context, in *tokenInput) (*struct{}, error) {
		if err := tokens.DeleteToken(ctx, in.ID, in.TokenID); err != nil {
			return nil, problem(ctx, log, err)
		}
		return nil, nil
	}
}
