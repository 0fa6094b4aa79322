package mcrs

// Leases: stampede protection with memcached's meta commands, on the event
// loop (mcrs_loop_lease_get, _lease_set, _invalidate, _meta_get).

/*
#include "mcrs_go.h"
*/
import "C"

import (
	"context"
	"fmt"
	"runtime"
	"time"
)

// LeaseState is what LeaseGet found (the C API's mcrs_lease).
type LeaseState int

const (
	// LeaseHit: a fresh value.
	LeaseHit LeaseState = iota
	// LeaseWon: a miss or a stale value, and this caller holds the lease:
	// compute, then LeaseSet with the token.
	LeaseWon
	// LeaseStale: a stale value; another caller is recomputing.
	LeaseStale
	// LeaseWait: a miss; another caller holds the lease: retry shortly.
	LeaseWait
)

func (s LeaseState) String() string {
	switch s {
	case LeaseHit:
		return "HIT"
	case LeaseWon:
		return "WON"
	case LeaseStale:
		return "STALE"
	case LeaseWait:
		return "WAIT"
	}
	return fmt.Sprintf("LeaseState(%d)", int(s))
}

// Item is a value read with a meta command: decoded, with its flags, cas
// and the seconds of TTL it had left (-1: none).
type Item struct {
	Value any
	Flags uint32
	CAS   uint64
	TTL   int64
}

// Lease is what LeaseGet found: the state, the token for LeaseWon (pass it
// to LeaseSet; 0 otherwise) and the item for LeaseHit and LeaseStale (and
// LeaseWon on a stale item), nil otherwise.
type Lease struct {
	State LeaseState
	Token uint64
	Item  *Item
}

const (
	metaLeaseGet = iota
	metaLeaseSet
	metaInvalidate
	metaGet
)

var metaOps = [...]string{"lease_get", "lease_set", "invalidate", "meta_get"}

func (c *Client) meta(ctx context.Context, cmd int, key string, data []byte, flags uint32, arg uint32,
	token uint64) (result, error) {
	op := metaOps[cmd]
	kp, kl := keyArg(key)
	vp, vl := bytesArg(data)
	kind := kindRead
	if cmd == metaLeaseSet || cmd == metaInvalidate {
		kind = kindWrite
	}
	res, err := c.roundTrip(ctx, op, key, kind, nil, false, func(l *C.mcrs_loop, id C.uint64_t, eb *errBuf) C.enum_mcrs_status {
		return C.mcrsgo_meta(l, C.int(cmd), kp, kl, vp, vl, C.uint32_t(flags), C.uint32_t(arg), C.uint64_t(token),
			id, eb.ptr(), eb.size())
	})
	runtime.KeepAlive(key)
	runtime.KeepAlive(data)
	return res, err
}

func ttlArg(op, key, name string, n int) (uint32, error) {
	if n < 0 || n > 1<<31-1 {
		return 0, &Error{Status: StatusInvalidArgument, Op: op, Key: key,
			Detail: fmt.Sprintf("%s %d is out of range", name, n)}
	}
	return uint32(n), nil
}

// LeaseGet is a lease get (meta mg with vivify-on-miss): of many callers
// that miss a cold key, exactly one gets LeaseWon; the others get LeaseWait
// until the winner's LeaseSet lands, or the lease expires after leaseTTL
// seconds (> 0) and the next caller wins. After Invalidate, one caller
// wins with the stale value and the others get it as LeaseStale.
func (c *Client) LeaseGet(ctx context.Context, key string, leaseTTL int) (Lease, error) {
	ttl, err := ttlArg("lease_get", key, "leaseTTL", leaseTTL)
	if err != nil {
		return Lease{}, err
	}
	res, err := c.meta(ctx, metaLeaseGet, key, nil, 0, ttl, 0)
	if err == nil {
		err = statusError(res.status, "lease_get", key, res.detail)
	}
	if err != nil {
		return Lease{}, err
	}
	l := Lease{State: LeaseState(res.lease), Token: res.token}
	if res.found {
		v, err := c.decode(key, res.it)
		if err != nil {
			return Lease{}, err
		}
		l.Item = &Item{Value: v, Flags: res.it.flags, CAS: res.it.cas, TTL: res.ttl}
	}
	return l, nil
}

// LeaseSet stores the value computed under a lease (meta ms with the
// token): nil when stored, ErrExists when the lease was lost (the item was
// invalidated, replaced or expired meanwhile: the value is not stored, so a
// recompute that lost a race never reads as fresh). Token 0 stores
// unconditionally. Options: Expire.
func (c *Client) LeaseSet(ctx context.Context, key string, value any, token uint64, opts ...CallOption) error {
	o, err := parseCallOpts("lease_set", key, opts)
	if err != nil {
		return err
	}
	data, flags, err := c.serde.Serialize(key, value)
	if err != nil {
		return err
	}
	res, err := c.meta(ctx, metaLeaseSet, key, data, flags, uint32(o.expire), token)
	if err != nil {
		return err
	}
	return statusError(res.status, "lease_set", key, res.detail)
}

// Invalidate marks key stale instead of deleting it (meta md with I): the
// next LeaseGet wins with the stale value, the others get it as LeaseStale
// until the new value lands. staleTTL > 0 also sets how many seconds the
// stale item lives (0 keeps its TTL). ErrNotFound when key was absent.
func (c *Client) Invalidate(ctx context.Context, key string, staleTTL int) error {
	ttl, err := ttlArg("invalidate", key, "staleTTL", staleTTL)
	if err != nil {
		return err
	}
	res, err := c.meta(ctx, metaInvalidate, key, nil, 0, ttl, 0)
	if err != nil {
		return err
	}
	return statusError(res.status, "invalidate", key, res.detail)
}

// How long GetOrCompute waits after its first LeaseWait; doubled after each
// further one, up to maxLeaseBackoff.
const (
	firstLeaseBackoff = time.Millisecond
	maxLeaseBackoff   = 50 * time.Millisecond
)

// GetOrCompute is a cached function under a lease: the value of key,
// computed by fn only when this caller wins the lease (so a herd of
// callers on a cold key makes one call of fn), then stored with LeaseSet
// (options: Expire). LeaseHit and LeaseStale return the cached value;
// LeaseWait retries with backoff (1 ms, doubling up to 50 ms) until the
// value lands, the lease expires (leaseTTL seconds) and this caller wins,
// or ctx ends (then ctx's error). A LeaseSet that finds the lease lost
// still returns fn's value to this caller (it is not stored).
func (c *Client) GetOrCompute(ctx context.Context, key string, leaseTTL int,
	fn func(ctx context.Context) (any, error), opts ...CallOption) (any, error) {
	backoff := firstLeaseBackoff
	for {
		l, err := c.LeaseGet(ctx, key, leaseTTL)
		if err != nil {
			return nil, err
		}
		switch l.State {
		case LeaseHit, LeaseStale:
			if l.Item != nil {
				return l.Item.Value, nil
			}
		case LeaseWon:
			v, err := fn(ctx)
			if err != nil {
				return nil, err
			}
			if err := c.LeaseSet(ctx, key, v, l.Token, opts...); err != nil && !isExists(err) {
				return v, err
			}
			return v, nil
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctxError(ctx, "get_or_compute", key)
		case <-t.C:
		}
		backoff = min(backoff*2, maxLeaseBackoff)
	}
}

func isExists(err error) bool {
	e, ok := err.(*Error)
	return ok && e.Status == StatusExists
}
