package deploy

import (
	"container/list"
	"sync"
)

// lru remembers up to size values, dropping the least recently used. (Its own, not k8s.io/utils/lru:
// package deploy runs in the API, which links nothing of Kubernetes.)
type lru[K comparable, V any] struct {
	mu      sync.Mutex
	size    int
	order   *list.List // of lruEntry, most recently used first
	entries map[K]*list.Element
}

type lruEntry[K comparable, V any] struct {
	key   K
	value V
}

func newLRU[K comparable, V any](size int) *lru[K, V] {
	return &lru[K, V]{size: size, order: list.New(), entries: map[K]*list.Element{}}
}

func (c *lru[K, V]) get(key K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok {
		var zero V
		return zero, false
	}
	c.order.MoveToFront(e)
	return e.Value.(lruEntry[K, V]).value, true
}

func (c *lru[K, V]) add(key K, value V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[key]; ok {
		e.Value = lruEntry[K, V]{key, value}
		c.order.MoveToFront(e)
		return
	}
	c.entries[key] = c.order.PushFront(lruEntry[K, V]{key, value})
	if c.order.Len() > c.size {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.entries, oldest.Value.(lruEntry[K, V]).key)
	}
}
