package web

import (
	"errors"
	"mime"
	"net/http"
	"strconv"
)

// What a form of the storefront may weigh. A sign-in form holds a token and a path; the largest other
// form is an install's inputs. Nothing the storefront serves uploads files.
const (
	signInMaxBytes = 4 << 10
	formMaxBytes   = 1 << 20
)

// boundedForms reads the form of every state-changing request here, before anyone else does, within
// its limit: a larger body is refused with 413 before it is read into memory, a multipart body with
// 415. Unread, forty megabytes of sign-in form would have been parsed into memory for anyone, signed in
// or not.
func (s *server) boundedForms(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			next.ServeHTTP(w, r)
			return
		}
		limit := int64(formMaxBytes)
		if r.URL.Path == "/signin" {
			limit = signInMaxBytes
		}
		if media, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); media == "multipart/form-data" {
			s.fail(w, r, http.StatusUnsupportedMediaType, "The storefront's forms are sent URL-encoded; it takes no uploads.")
			return
		}
		tooLarge := "This form is larger than the storefront accepts (" + strconv.FormatInt(limit>>10, 10) + " KiB)."
		if r.ContentLength > limit {
			s.fail(w, r, http.StatusRequestEntityTooLarge, tooLarge)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		if err := r.ParseForm(); err != nil {
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				s.fail(w, r, http.StatusRequestEntityTooLarge, tooLarge)
				return
			}
			s.fail(w, r, http.StatusBadRequest, "This form could not be read: "+err.Error())
			return
		}
		next.ServeHTTP(w, r)
	})
}
