package libvirt

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestURLLocks: a URL's lock is held by one download at a time; another URL's is free meanwhile; a
// wait for a held lock ends with its context.
func TestURLLocks(t *testing.T) {
	var locks urlLocks
	ctx := context.Background()
	unlockA, err := locks.lock(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	unlockB, err := locks.lock(ctx, "b")
	if err != nil {
		t.Fatalf("another URL's lock: %v", err)
	}
	unlockB()

	waiting, cancel := context.WithCancel(ctx)
	got := make(chan error, 1)
	go func() {
		_, err := locks.lock(waiting, "a")
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("a held lock was taken again: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	cancel()
	if err := <-got; !errors.Is(err, context.Canceled) {
		t.Fatalf("the wait ended with %v, want its context's end", err)
	}

	second := make(chan func(), 1)
	go func() {
		unlock, err := locks.lock(ctx, "a")
		if err != nil {
			t.Error(err)
		}
		second <- unlock
	}()
	unlockA()
	(<-second)()
	if len(locks.locks) != 0 {
		t.Fatalf("locks left after every holder left: %v", locks.locks)
	}
}

// TestDownloadQuota: a publisher's kept and in-flight bytes count against the quota; given-back bytes
// do not; another publisher has a quota of their own.
func TestDownloadQuota(t *testing.T) {
	q := downloadQuota{limit: 100}
	onDisk := map[int64]int64{1: 30}
	a := q.begin(1, func() int64 { return onDisk[1] })
	if _, err := a.Write(make([]byte, 50)); err != nil {
		t.Fatalf("50 of the 70 left: %v", err)
	}
	b := q.begin(1, func() int64 { return onDisk[1] })
	if _, err := b.Write(make([]byte, 21)); err == nil {
		t.Fatal("30 kept + 50 under way + 21 fitted a quota of 100")
	} else {
		var over *quotaExceeded
		if !errors.As(err, &over) || over.used != 80 {
			t.Fatalf("got %v, want the quota exceeded with 80 bytes used", err)
		}
	}
	other := q.begin(2, func() int64 { return 0 })
	if _, err := other.Write(make([]byte, 100)); err != nil {
		t.Fatalf("another publisher: %v", err)
	}
	if err := a.keep(func() error { onDisk[1] += 50; return nil }); err != nil {
		t.Fatal(err)
	}
	a.giveBack() // after keep: nothing
	if err := b.fits(21); err == nil {
		t.Fatal("80 kept + 21 fitted a quota of 100")
	}
	if err := b.fits(20); err != nil {
		t.Fatalf("80 kept + 20: %v", err)
	}
	c := q.begin(1, func() int64 { return 0 }) // the index forgot every download (collected)
	if err := c.fits(100); err != nil {
		t.Fatalf("after collection: %v", err)
	}
}
