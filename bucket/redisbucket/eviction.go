package redisbucket

import (
	"context"
	"errors"
	"fmt"
	"strconv"
)

// ErrEviction is the error [Store.CheckEviction] returns when Redis may
// evict bucket keys.
var ErrEviction = errors.New("redisbucket: Redis may evict bucket keys")

// CheckEviction asks Redis whether it may evict the store's keys: with a
// memory limit (maxmemory) and an eviction policy other than noeviction,
// a Redis under memory pressure drops keys, bucket keys among them (they
// carry an expiry, so the volatile-* policies take them too), and every
// process then starts the key afresh, with a full burst: the shared limit
// breaks without a sign. It returns nil when Redis cannot evict, an error
// wrapping [ErrEviction] that names the setting when it can, and Redis's
// error when it will not say (a managed Redis may refuse CONFIG).
//
// The store checks once by itself, in the background after its first
// reservation in Redis, and warns through its [WithLogger] logger; call it
// at startup to refuse to run instead. Give the store a Redis (or a logical
// database of one) with maxmemory-policy noeviction: a full Redis then
// refuses writes, which the store sees, and limits in process until it
// can write again.
//
// It waits at most the store's timeout ([WithTimeout]), as every call of
// the store does, whatever the client's own timeouts.
func (s *Store) CheckEviction(ctx context.Context) error {
	var limit, policy string
	err := s.call(ctx, func(ctx context.Context) error {
		l, err := s.config(ctx, "maxmemory")
		if err != nil {
			return err
		}
		p, err := s.config(ctx, "maxmemory-policy")
		if err != nil {
			return err
		}
		limit, policy = l, p
		return nil
	})
	if err != nil {
		return fmt.Errorf("redisbucket: CONFIG GET: %w", err) // the timeout, or a setting's error
	}
	if n, err := strconv.ParseInt(limit, 10, 64); err == nil && n == 0 {
		return nil // no memory limit: nothing is evicted
	}
	if policy == "noeviction" {
		return nil
	}
	return fmt.Errorf("%w: maxmemory %s, maxmemory-policy %s; set maxmemory-policy noeviction", ErrEviction, limit, policy)
}

// config reads one setting with CONFIG GET; its errors name the setting,
// for CheckEviction to say where they came from.
func (s *Store) config(ctx context.Context, name string) (string, error) {
	m, err := s.c.ConfigGet(ctx, name).Result()
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	v, ok := m[name]
	if !ok {
		return "", fmt.Errorf("%s: not answered", name)
	}
	return v, nil
}

// warnEviction is the store's own check (see [Store.CheckEviction]): a
// warning when Redis may evict its keys, nothing when Redis will not say.
func (s *Store) warnEviction() {
	err := s.CheckEviction(context.Background())
	if errors.Is(err, ErrEviction) {
		s.log("redisbucket: Redis may evict bucket keys under memory pressure, and the shared limit would break", "err", err)
	}
}
