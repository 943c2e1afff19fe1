package libvirt

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/marketplace/marketplace/internal/fetch"
	"github.com/marketplace/marketplace/internal/marketplace"
)

// download writes the body at rawURL to w, at most ImageMaxBytes, through the fetch guard (which
// refuses internal addresses at every dial and redirect), and returns its sha256 and size. Its bytes
// are taken from the publisher's quota of downloaded bytes as they come; on success they stay taken
// (downloadedImage keeps or releases them), on failure they are given back. A server that sends less
// than ImageMinRate bytes a second over ImageRateWindow fails the download.
func (p *Provider) download(ctx context.Context, rawURL string, w io.Writer, publisher int64) (string, int64, *publisherDownload, error) {
	what := "image " + marketplace.RedactURLs(rawURL)
	if p.cfg.Fetch == nil {
		return "", 0, nil, errors.New("no fetch guard configured for image downloads")
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var got atomic.Int64
	go p.watchRate(ctx, cancel, &got, what)

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, http.NoBody)
	if err != nil {
		return "", 0, nil, fmt.Errorf("%s: %w", what, err)
	}
	req.Header.Set("User-Agent", "marketplace")
	client := p.cfg.Fetch.HTTPClient()
	// Images are larger than charts: the guard's dialer and redirect rules, this provider's size limit.
	client.Transport, client.Timeout = p.cfg.Fetch.Transport(), 0
	resp, err := client.Do(req)
	if err != nil {
		return "", 0, nil, slowOr(ctx, marketplace.Errorf(marketplace.EINVALID, "%s cannot be fetched: %v", what, err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", 0, nil, fmt.Errorf("%s cannot be fetched: the server answered %d %s", what, resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	limit := p.cfg.ImageMaxBytes
	if resp.ContentLength > limit {
		return "", 0, nil, &fetch.TooLargeError{What: what, Limit: limit}
	}
	q := p.quota.begin(publisher, func() int64 { return p.downloadedBy(publisher) })
	if resp.ContentLength > 0 {
		if err := q.fits(resp.ContentLength); err != nil {
			return "", 0, nil, marketplace.Final(marketplace.Errorf(marketplace.EINVALID, "%s cannot be downloaded: %v", what, err))
		}
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h, q, counter{&got}), io.LimitReader(resp.Body, limit+1))
	if err != nil {
		q.giveBack()
		var over *quotaExceeded
		if errors.As(err, &over) {
			return "", 0, nil, marketplace.Final(marketplace.Errorf(marketplace.EINVALID, "%s cannot be downloaded: %v", what, over))
		}
		return "", 0, nil, slowOr(ctx, fmt.Errorf("download %s: %w", what, err))
	}
	if n > limit {
		q.giveBack()
		return "", 0, nil, fmt.Errorf("%s is larger than the limit of %d bytes (VM_IMAGE_MAX_BYTES)", what, limit)
	}
	return hex.EncodeToString(h.Sum(nil)), n, q, nil
}

// tooSlow is why a download was stopped: its server sent too little for too long.
type tooSlow struct{ reason string }

func (e *tooSlow) Error() string { return e.reason }

// slowOr is the tooSlow cause of ctx's end, or err.
func slowOr(ctx context.Context, err error) error {
	var slow *tooSlow
	if errors.As(context.Cause(ctx), &slow) {
		return slow
	}
	return err
}

// watchRate ends the download (cancel) when fewer than ImageMinRate bytes a second came over the last
// ImageRateWindow: a server that trickles holds neither a worker nor a URL's lock for long.
func (p *Provider) watchRate(ctx context.Context, cancel context.CancelCauseFunc, got *atomic.Int64, what string) {
	if p.cfg.ImageMinRate <= 0 || p.cfg.ImageRateWindow <= 0 {
		return
	}
	window := p.cfg.ImageRateWindow
	least := int64(float64(p.cfg.ImageMinRate) * window.Seconds())
	tick := time.NewTicker(window)
	defer tick.Stop()
	var last int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			n := got.Load()
			if n-last < least {
				cancel(&tooSlow{reason: fmt.Sprintf("%s came too slowly: %d bytes in %s, less than the minimum of %d bytes a second (VM_IMAGE_MIN_RATE)",
					what, n-last, window, p.cfg.ImageMinRate)})
				return
			}
			last = n
		}
	}
}

// counter counts the bytes written through it.
type counter struct{ n *atomic.Int64 }

func (c counter) Write(b []byte) (int, error) {
	c.n.Add(int64(len(b)))
	return len(b), nil
}

// downloadedBy sums the bytes of the downloads the index charges to publisher.
func (p *Provider) downloadedBy(publisher int64) int64 {
	var sum int64
	for _, e := range p.readAllIndex() {
		if e.Publisher == publisher {
			sum += e.Bytes
		}
	}
	return sum
}

// downloadQuota holds each publisher's downloaded bytes (ImageQuotaBytes each): those of the images
// kept, read from the index when a download begins, and those of the downloads under way.
type downloadQuota struct {
	limit    int64 // 0: none
	mu       sync.Mutex
	kept     map[int64]int64
	inflight map[int64]int64
}

// quotaExceeded is a download that would take a publisher past the quota.
type quotaExceeded struct {
	limit, used int64
}

func (e *quotaExceeded) Error() string {
	return fmt.Sprintf("its publisher's downloaded images would exceed their quota of %s (VM_IMAGE_QUOTA_BYTES; %s are used by images their applications name)",
		byteSize(uint64(e.limit)), byteSize(uint64(e.used)))
}

// publisherDownload is one download's share of its publisher's quota; as an io.Writer it takes the
// bytes written through it, failing with quotaExceeded once they do not fit.
type publisherDownload struct {
	q         *downloadQuota
	publisher int64
	taken     int64
}

// begin starts a download for publisher, whose kept bytes are read again with downloaded.
func (q *downloadQuota) begin(publisher int64, downloaded func() int64) *publisherDownload {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.kept == nil {
		q.kept, q.inflight = map[int64]int64{}, map[int64]int64{}
	}
	if q.limit > 0 {
		q.kept[publisher] = downloaded()
	}
	return &publisherDownload{q: q, publisher: publisher}
}

// fits says whether n more bytes fit the publisher's quota.
func (d *publisherDownload) fits(n int64) error {
	q := d.q
	q.mu.Lock()
	defer q.mu.Unlock()
	if used := q.kept[d.publisher] + q.inflight[d.publisher]; q.limit > 0 && used+n > q.limit {
		return &quotaExceeded{limit: q.limit, used: used}
	}
	return nil
}

func (d *publisherDownload) Write(b []byte) (int, error) {
	if err := d.fits(int64(len(b))); err != nil {
		return 0, err
	}
	d.q.mu.Lock()
	d.q.inflight[d.publisher] += int64(len(b))
	d.q.mu.Unlock()
	d.taken += int64(len(b))
	return len(b), nil
}

// giveBack returns the bytes a download took: it failed, or what it fetched is not kept.
func (d *publisherDownload) giveBack() {
	d.q.mu.Lock()
	defer d.q.mu.Unlock()
	d.q.inflight[d.publisher] -= d.taken
	d.taken = 0
}

// keep counts the bytes a download took as kept once record (writing its index entry) succeeds.
func (d *publisherDownload) keep(record func() error) error {
	d.q.mu.Lock()
	defer d.q.mu.Unlock()
	if err := record(); err != nil {
		return err
	}
	d.q.inflight[d.publisher] -= d.taken
	d.q.kept[d.publisher] += d.taken
	d.taken = 0
	return nil
}

// urlLocks serialises the downloads of one URL, and only of one URL: a lock is a channel, so a wait for
// it ends with the waiting attempt's context.
type urlLocks struct {
	mu    sync.Mutex
	locks map[string]*urlLock
}

type urlLock struct {
	held    chan struct{}
	waiting int
}

// lock takes the lock of key, or returns ctx's error if ctx ends first. unlock gives it back.
func (u *urlLocks) lock(ctx context.Context, key string) (unlock func(), err error) {
	u.mu.Lock()
	if u.locks == nil {
		u.locks = map[string]*urlLock{}
	}
	l := u.locks[key]
	if l == nil {
		l = &urlLock{held: make(chan struct{}, 1)}
		u.locks[key] = l
	}
	l.waiting++
	u.mu.Unlock()
	done := func() {
		u.mu.Lock()
		if l.waiting--; l.waiting == 0 {
			delete(u.locks, key)
		}
		u.mu.Unlock()
	}
	select {
	case l.held <- struct{}{}:
		return func() { <-l.held; done() }, nil
	case <-ctx.Done():
		done()
		return nil, ctx.Err()
	}
}
