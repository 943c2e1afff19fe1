package kubernetes

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
)

// errFenced is what every request of a stopped attempt gets.
var errFenced = errors.New("this attempt was stopped: its lease ended, or its worker is stopping")

// fence cuts one attempt's Kubernetes clients off from the cluster. Helm keeps working after its
// context is cancelled (RunWithContext returns early and the install goes on; Uninstall.Run takes no
// context at all), so cancelling is not enough to know an attempt is over. Every request Helm's
// clients make for the attempt passes through the fence; Close refuses new ones, cancels those in
// flight and waits until they have returned, after which nothing this attempt started can change the
// cluster, and another attempt may safely begin.
type fence struct {
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	closed   bool
	inflight sync.WaitGroup
}

// newFence returns a fence that also closes to new requests once attempt ends: a stale attempt that
// comes back from something slow (a registry) finds the cluster shut to it before it can write.
func newFence(attempt context.Context) *fence {
	ctx, cancel := context.WithCancel(attempt)
	return &fence{ctx: ctx, cancel: cancel}
}

// Close stops the attempt's traffic and returns once no request of it is under way.
func (f *fence) Close() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	f.cancel()
	f.inflight.Wait()
}

// wrap is a rest.Config WrapTransport function.
func (f *fence) wrap(next http.RoundTripper) http.RoundTripper {
	return fencedTransport{fence: f, next: next}
}

type fencedTransport struct {
	fence *fence
	next  http.RoundTripper
}

func (t fencedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	f := t.fence
	f.mu.Lock()
	if f.closed || f.ctx.Err() != nil {
		f.mu.Unlock()
		return nil, errFenced
	}
	f.inflight.Add(1)
	f.mu.Unlock()
	defer f.inflight.Done()

	// The request ends when its own context does or when the fence closes, whichever comes first; a
	// response body (a watch) stays readable until then.
	ctx, cancel := context.WithCancel(req.Context())
	stop := context.AfterFunc(f.ctx, cancel)
	resp, err := t.next.RoundTrip(req.WithContext(ctx))
	if err != nil {
		stop()
		cancel()
		if f.ctx.Err() != nil {
			return nil, errFenced
		}
		return nil, err
	}
	resp.Body = &releasingBody{ReadCloser: resp.Body, release: func() { stop(); cancel() }}
	return resp, nil
}

// releasingBody releases its request's context once closed.
type releasingBody struct {
	io.ReadCloser
	once    sync.Once
	release func()
}

func (b *releasingBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.release)
	return err
}
