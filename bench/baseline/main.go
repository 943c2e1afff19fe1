// Command baseline is the yardstick of TARGETS.md's note: a bare net/http + pgx handler that answers
// GET /api/apps?page=&limit= with the same 20 rows of the same table, and total_items from
// catalog_counts (the one row of the whole catalog), in one round trip (the marketplace's own SQL), with no authentication, no
// framework and the jsonb columns passed through as they are. bench/apps.sh runs wrk against it in
// the same run as the marketplace, so a busy machine shows up in both figures.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

type app struct {
	ID          int64           `json:"id"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	PublisherID int64           `json:"publisher_id"`
	HourlyRate  json.Number     `json:"hourly_rate"`
	Deployment  json.RawMessage `json:"deployment"`
	Inputs      json.RawMessage `json:"inputs"`
	CreatedAt   time.Time       `json:"created_at"`
	UpdatedAt   time.Time       `json:"updated_at"`
}

const query = `WITH total AS (SELECT coalesce(sum(n), 0)::bigint AS n FROM catalog_counts WHERE publisher_id = 0 AND deployment_type = '' AND shift = 20)
SELECT total.n, a.* FROM total LEFT JOIN LATERAL (
  SELECT id, publisher_id, name, description, hourly_rate::text, deployment, inputs, created_at, updated_at
  FROM applications WHERE deleted_at IS NULL ORDER BY id LIMIT $1 OFFSET $2
) a ON true`

func main() {
	dbURL := flag.String("db", "postgres://postgres@127.0.0.1:5432/mp_bench?sslmode=disable", "database URL")
	addr := flag.String("addr", "127.0.0.1:3109", "listen address")
	flag.Parse()
	pool, err := pgxpool.New(context.Background(), *dbURL)
	if err != nil {
		fmt.Fprintln(os.Stderr, "baseline:", err)
		os.Exit(1)
	}
	http.HandleFunc("GET /api/apps", func(w http.ResponseWriter, r *http.Request) {
		page, _ := strconv.Atoi(r.URL.Query().Get("page"))
		limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		page, limit = max(page, 1), min(max(limit, 1), 100)
		rows, err := pool.Query(r.Context(), query, limit, (page-1)*limit)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		defer rows.Close()
		out := struct {
			Data       []app `json:"data"`
			Page       int   `json:"page"`
			Limit      int   `json:"limit"`
			TotalItems int   `json:"total_items"`
			TotalPages int   `json:"total_pages"`
		}{Data: make([]app, 0, limit), Page: page, Limit: limit}
		for rows.Next() {
			var a app
			var id *int64
			var rate *string
			if err := rows.Scan(&out.TotalItems, &id, &a.PublisherID, &a.Name, &a.Description, &rate,
				&a.Deployment, &a.Inputs, &a.CreatedAt, &a.UpdatedAt); err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			if id != nil {
				a.ID, a.HourlyRate = *id, json.Number(*rate)
				out.Data = append(out.Data, a)
			}
		}
		if err := rows.Err(); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		out.TotalPages = (out.TotalItems + limit - 1) / limit
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(out)
	})
	if err := http.ListenAndServe(*addr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "baseline:", err)
		os.Exit(1)
	}
}
