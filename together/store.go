package together

import "github.com/steadyapi/steady/bucket"

// WithStore keeps the request limiters of every route in s, one bucket per
// route and model (key "route:model"), so that every process using the
// same store shares Together's limits, which are per API key: four
// replicas each with the full limit would send four times what it allows.
// A 429 seen by one process pauses and slows them all. Without it (the
// default) the limiters are in memory and nothing needs Redis.
//
// bucket/redisbucket provides a store in Redis. One store serves one API
// key: processes using different keys on one Redis give each key its own
// prefix (redisbucket.WithPrefix). The token limiters that open when the
// server shows a token limit stay in process. A store that reports events
// of its own ([bucket.EventReporter], as redisbucket's does when Redis
// stops answering and when it answers again) gets the hooks of
// [WithEvents] too. A nil store is ignored.
func WithStore(s bucket.Store) Option {
	return func(c *config) {
		if s != nil {
			c.store = s
		}
	}
}

// shared is where a route's buckets keep their state: memory, when store
// is nil, or store under keys that name the route.
type shared struct {
	store bucket.Store
	route string
}

// newBucket makes the bucket of model at rate.
func (s shared) newBucket(rate bucket.Rate, model string) *bucket.Bucket {
	if s.store == nil {
		return bucket.New(rate)
	}
	return bucket.New(rate, bucket.WithStore(s.store, s.route+":"+model))
}
