package httpapi

import (
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"golang.org/x/time/rate"
)

// maxRateLimitedClients bounds the memory of a clientLimiter.
const maxRateLimitedClients = 10_000

// clientLimiter limits how often each client may do something: a token bucket per client address (an
// IPv6 client by its /64, which one host usually holds whole). Its memory is bounded: a client whose
// bucket has refilled is forgotten, since a fresh bucket is the same, and when the table is full of
// clients still limited, new clients share one bucket, so a flood from many addresses is limited as one.
// The address is the connection's: behind a reverse proxy every client shares the proxy's bucket.
type clientLimiter struct {
	rate  rate.Limit
	burst int

	mu        sync.Mutex
	clients   map[netip.Prefix]*rate.Limiter
	overflow  *rate.Limiter
	lastSweep time.Time
}

// newClientLimiter allows each client perMinute events a minute with bursts of burst. A perMinute of 0
// (or less) means no limit, and newClientLimiter returns nil.
func newClientLimiter(perMinute float64, burst int) *clientLimiter {
	if perMinute <= 0 {
		return nil
	}
	r := rate.Limit(perMinute / 60)
	burst = max(burst, 1)
	return &clientLimiter{rate: r, burst: burst, clients: map[netip.Prefix]*rate.Limiter{},
		overflow: rate.NewLimiter(r, burst)}
}

// wait takes one event of the client at remoteAddr (host:port) at now. It returns 0 when the event is
// allowed, or else how long until it would be (and takes nothing).
func (l *clientLimiter) wait(remoteAddr string, now time.Time) time.Duration {
	lim := l.limiter(clientKey(remoteAddr), now)
	r := lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d
	}
	return 0
}

func (l *clientLimiter) limiter(key netip.Prefix, now time.Time) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	if lim, ok := l.clients[key]; ok {
		return lim
	}
	if len(l.clients) >= maxRateLimitedClients && now.Sub(l.lastSweep) >= time.Second {
		l.lastSweep = now
		for k, lim := range l.clients {
			if lim.TokensAt(now) >= float64(l.burst) {
				delete(l.clients, k)
			}
		}
	}
	if len(l.clients) >= maxRateLimitedClients {
		return l.overflow
	}
	lim := rate.NewLimiter(l.rate, l.burst)
	l.clients[key] = lim
	return lim
}

// clientKey is the bucket of a remote address: the IPv4 address, or the /64 of an IPv6 one. An address
// that does not parse (none should) shares the bucket of the unspecified address.
func clientKey(remoteAddr string) netip.Prefix {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return netip.PrefixFrom(netip.IPv4Unspecified(), 32)
	}
	addr := ap.Addr().Unmap()
	bits := 32
	if addr.Is6() {
		bits = 64
	}
	p, _ := addr.Prefix(bits)
	return p
}

// rateLimited is an operation middleware that answers 429, with Retry-After, to a client over its rate.
// It runs before the body is read, so refused requests cost nothing else and change nothing.
func rateLimited(api huma.API, l *clientLimiter, what string) func(huma.Context, func(huma.Context)) {
	return func(ctx huma.Context, next func(huma.Context)) {
		if l != nil {
			if wait := l.wait(ctx.RemoteAddr(), time.Now()); wait > 0 {
				seconds := int(math.Ceil(wait.Seconds()))
				ctx.SetHeader("Retry-After", strconv.Itoa(seconds))
				huma.WriteErr(api, ctx, http.StatusTooManyRequests, fmt.Sprintf(
					"too many %s from your address: at most %g a minute with bursts of %d; retry in %d s",
					what, float64(l.rate)*60, l.burst, seconds))
				return
			}
		}
		next(ctx)
	}
}
