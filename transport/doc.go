// Package transport is the common ground of steady's decorators.
//
// It holds the [Middleware] type and [Chain] that composes them, the provider rate
// signals every decorator reads from a response ([ParseSignals]), request
// bodies that can be sent more than once ([Replay]), the drain-and-close
// of responses that are thrown away ([Drain]), dispatch by endpoint
// ([Route]), and the model of a JSON request, found and rewritten without
// decoding the body ([FindModel], [RewriteModel], [RequestModel]), on which
// [Fallback] serves a request from the next model of a chain. [Inspect]
// reads a request once for a whole stack: its endpoint, its model and, on
// demand, the estimate of its tokens ([EstimateTokens]), handed to every
// decorator under it, with a body without GetBody buffered once. The
// decorators of steady take that [Info] beside the request
// ([InfoRoundTripper]), and [Forward] hands it on: no copy of the request
// is made to carry it, but for a decorator that looks in the request's
// context ([InfoOf]). They share the answer's clock reading through it
// too ([Info.AnsweredAt]). [Read] is Inspect's reading for a decorator
// that is outermost itself, as a preset's transport is ([ReadAndSend]
// when nothing under it keeps the Info, which is then reused: no
// allocation; [ReadCopy] when it sends a copy of the request, with a key
// added: the copy and its Info are one allocation), and [Base] marks the
// transport at the bottom of a stack, which reads no Info.
//
// Every decorator in steady is an [http.RoundTripper] that wraps another, so
// a stack is built from the outside in:
//
//	rt := transport.Chain(http.DefaultTransport,
//		retry.New(),       // outermost: sees the caller's request first
//		bucket.Limit(bucket.New(bucket.PerMinute(600))),
//	)
//	client := &http.Client{Transport: rt}
//
// The package imports only the standard library, so any provider's client can
// use it without pulling in the rest of steady.
//
// # Contracts
//
// A decorator built on this package keeps the [http.RoundTripper] contract:
// it never modifies the caller's request, always closes the request body,
// returns a response or an error (never both), and is safe for concurrent use.
// A response it throws away is drained (at most [DrainLimit] bytes, for at
// most [DrainWait], and never past the request's end) and closed so the
// connection is reused; a response it returns is never read, so
// streamed (server-sent events) bodies pass through untouched. No wait
// outlives the caller's deadline: a wait that cannot end before it is refused
// at once with an error that matches [context.DeadlineExceeded].
package transport
