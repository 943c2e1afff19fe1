package web

import "sync"

// kept is a map of at most max entries, safe for concurrent use: when full, a new entry takes the place
// of one of the others, whichever the map iterates first. It keeps what is cheaper to look up than to
// make again, and whose loss costs only that.
type kept[K comparable, V any] struct {
	mu  sync.Mutex
	max int
	m   map[K]V
}

func newKept[K comparable, V any](max int) *kept[K, V] {
	return &kept[K, V]{max: max, m: make(map[K]V)}
}

func (k *kept[K, V]) get(key K) (V, bool) {
	k.mu.Lock()
	v, ok := k.m[key]
	k.mu.Unlock()
	return v, ok
}

func (k *kept[K, V]) put(key K, v V) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.m[key]; !ok && len(k.m) >= k.max {
		for other := range k.m {
			delete(k.m, other)
			break
		}
	}
	k.m[key] = v
}
