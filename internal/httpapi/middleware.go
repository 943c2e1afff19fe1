package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// HashToken is how tokens are stored: only their SHA-256, so a leaked table reveals no token. Tokens are
// 256 random bits, so a fast hash is enough.
func HashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// operatorCheck returns whether a presented bearer token is the operator's; never true when no
// operator token is configured. The comparison is constant-time.
func operatorCheck(operatorToken string) func(presented []byte) bool {
	operatorHash := HashToken(operatorToken)
	return func(presentedHash []byte) bool {
		return operatorToken != "" && subtle.ConstantTimeCompare(presentedHash, operatorHash) == 1
	}
}

// bearer returns the token of an Authorization header, or "".
func bearer(header string) string {
	token, _ := strings.CutPrefix(header, "Bearer ")
	return strings.TrimSpace(token)
}

// storeChecksToken marks an operation whose store read checks the bearer token itself, in the same
// statement (marketplace.Caller.TokenHash): one round trip to PostgreSQL instead of two, and a revoked
// token still refused at once.
const storeChecksToken = "storeChecksToken"

// tokenCheckedByStore lets o's store read check the token (storeChecksToken). Only for operations
// whose every read does, and that change nothing: anything else sees such a caller as nobody.
func tokenCheckedByStore(o huma.Operation) huma.Operation {
	if o.Metadata == nil {
		o.Metadata = map[string]any{}
	}
	o.Metadata[storeChecksToken] = true
	return o
}

// authenticate puts the caller in the context of every operation that declares the bearer security
// requirement, and answers 401 to a request without a valid token.
func authenticate(api huma.API, users marketplace.UserService, accessTokens AccessTokenVerifier, operatorToken string, log *slog.Logger) func(huma.Context, func(huma.Context)) {
	isOperator := operatorCheck(operatorToken)
	return func(ctx huma.Context, next func(huma.Context)) {
		if len(ctx.Operation().Security) == 0 {
			next(ctx)
			return
		}
		token := bearer(ctx.Header("Authorization"))
		if token == "" {
			huma.WriteErr(api, ctx, http.StatusUnauthorized, "send Authorization: Bearer <token>, the token POST /api/users/new returned")
			return
		}
		hash := HashToken(token)
		var caller marketplace.Caller
		if isOperator(hash) {
			caller.Operator = true
		} else if accessTokens != nil && strings.Count(token, ".") == 2 {
			// A JWT: an OpenID provider's access token.
			id, err := accessTokens.UserOfAccessToken(ctx.Context(), token)
			if err != nil {
				huma.WriteErr(api, ctx, problemStatus(ctx.Context(), log, err), marketplace.ErrorMessage(err))
				return
			}
			caller.UserID = id
		} else if !wellFormedToken(token) {
			huma.WriteErr(api, ctx, http.StatusUnauthorized, "the bearer token is not valid")
			return
		} else if ctx.Operation().Metadata[storeChecksToken] == true {
			caller.TokenHash = hash
		} else {
			u, err := users.FindUserByTokenHash(ctx.Context(), hash)
			if err != nil {
				huma.WriteErr(api, ctx, problemStatus(ctx.Context(), log, err), marketplace.ErrorMessage(err))
				return
			}
			caller.UserID = u.ID
		}
		next(huma.WithContext(ctx, marketplace.WithCaller(ctx.Context(), caller)))
	}
}

// OperatorOnly lets through only requests with the operator's bearer token, or every request when public
// is set. Without an operator token nobody can be the operator, so everything is refused unless public:
// an operator who forgot the token must not publish every tenant's activity by accident.
func OperatorOnly(operatorToken string, public bool, next http.Handler) http.Handler {
	isOperator := operatorCheck(operatorToken)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case public:
		case operatorToken == "":
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusForbidden)
			w.Write([]byte(`{"type":"/problems/forbidden","title":"Forbidden","status":403,"detail":"no operator token is configured: set MARKETPLACE_ADMIN_TOKEN and send it as a bearer token, or METRICS_PUBLIC=true to let anyone read the metrics"}`))
			return
		case !isOperator(HashToken(bearer(r.Header.Get("Authorization")))):
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"type":"/problems/unauthorized","title":"Unauthorized","status":401,"detail":"send the operator's bearer token (MARKETPLACE_ADMIN_TOKEN)"}`))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// jsonByDefault treats a body sent without a JSON content type (curl -d sends form encoding) as JSON:
// the API speaks nothing else, so a missing header should not be the caller's problem.
func jsonByDefault(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Header.Get("Content-Type") {
		case "", "application/x-www-form-urlencoded":
			r.Header.Set("Content-Type", "application/json")
		}
		next.ServeHTTP(w, r)
	})
}

// recoverer turns a panic in a handler into a logged 500 problem instead of a dropped connection.
func recoverer(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				if v := recover(); v != nil && v != http.ErrAbortHandler {
					log.ErrorContext(r.Context(), "panic in handler", "panic", v, "path", r.URL.Path)
					w.Header().Set("Content-Type", "application/problem+json")
					w.WriteHeader(http.StatusInternalServerError)
					w.Write([]byte(`{"type":"/problems/internal-server-error","title":"Internal Server Error","status":500,"detail":"internal error"}`))
				}
			}()
			next.ServeHTTP(w, r)
		})
	}
}

// instrument counts requests and their durations by route pattern and status.
func instrument(reg *prometheus.Registry) func(http.Handler) http.Handler {
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "marketplace_http_request_duration_seconds",
		Help:    "HTTP requests by method, route pattern and status.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"method", "route", "status"})
	if reg != nil {
		reg.MustRegister(duration)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
			next.ServeHTTP(ww, r)
			route := chi.RouteContext(r.Context()).RoutePattern()
			if route == "" {
				route = "unmatched"
			}
			duration.WithLabelValues(r.Method, route, strconv.Itoa(ww.Status())).Observe(time.Since(start).Seconds())
		})
	}
}
