package transport_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/breaker"
	"github.com/steadyapi/steady/bucket"
	"github.com/steadyapi/steady/retry"
	"github.com/steadyapi/steady/transport"
)

// handed records what an InfoRoundTripper is handed.
type handed struct {
	req  *http.Request
	info *transport.Info
	next http.RoundTripper
}

func (h *handed) RoundTrip(req *http.Request) (*http.Response, error) {
	return h.RoundTripInfo(req, transport.InfoOf(req))
}

func (h *handed) RoundTripInfo(req *http.Request, info *transport.Info) (*http.Response, error) {
	h.req, h.info = req, info
	return transport.Forward(h.next, req, info)
}

func postChat(t *testing.T, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "https://api.example.com/v1/chat/completions", strings.NewReader(body))
	require.NoError(t, err)
	return req
}

func TestReadHandsTheInfoOnWithoutACopy(t *testing.T) {
	const body = `{"messages":[],"model":"m1"}`
	var got []seen
	h := &handed{next: transport.Base(recorder(&got))}
	req := postChat(t, body)

	send, info, err := transport.Read(req, 0)
	require.NoError(t, err)
	assert.Same(t, req, send, "a body with GetBody is not copied")
	assert.Equal(t, "m1", info.Model)
	assert.Equal(t, transport.EndpointChat, info.Endpoint)
	assert.Nil(t, transport.InfoOf(send), "the Info is handed beside the request, not in its context")

	_, err = transport.Forward(h, send, info)
	require.NoError(t, err)
	assert.Same(t, req, h.req)
	assert.Same(t, info, h.info)
	require.Len(t, got, 1)
	assert.Same(t, req, got[0].req, "a base marked with Base gets the request as it is")
	assert.Equal(t, body, string(got[0].body))
}

func TestForwardCarriesTheInfoToWhoLooksInTheContext(t *testing.T) {
	var got []seen
	req := postChat(t, `{"model":"m2","messages":[]}`)
	send, info, err := transport.Read(req, 0)
	require.NoError(t, err)

	_, err = transport.Forward(recorder(&got), send, info)
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.NotSame(t, req, got[0].req, "the Info is carried in a copy's context")
	assert.Same(t, info, got[0].info)
	assert.Equal(t, "m2", got[0].model)
	assert.Same(t, req.URL, got[0].req.URL)

	// A request the Info does not describe (made anew) goes as it is.
	other := postChat(t, `{"model":"other"}`)
	_, err = transport.Forward(recorder(&got), other, info)
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.Same(t, other, got[1].req)
	assert.Nil(t, got[1].info)
	assert.Equal(t, "other", got[1].model)

	// Carried once, a request is not copied again.
	carried := got[0].req
	_, err = transport.Forward(recorder(&got), carried, info)
	require.NoError(t, err)
	assert.Same(t, carried, got[2].req)
}

func TestReadBuffersABodyWithoutGetBodyInACopy(t *testing.T) {
	const body = `{"model":"m3","messages":[]}`
	req := postChat(t, body)
	req.GetBody = nil
	req.Body = io.NopCloser(bytes.NewBufferString(body))

	send, info, err := transport.Read(req, 0)
	require.NoError(t, err)
	assert.NotSame(t, req, send, "the caller's request keeps its own body")
	require.NotNil(t, send.GetBody)
	assert.Equal(t, "m3", info.Model)
	b, err := io.ReadAll(send.Body)
	require.NoError(t, err)
	assert.Equal(t, body, string(b))
	again, err := send.GetBody()
	require.NoError(t, err)
	b, err = io.ReadAll(again)
	require.NoError(t, err)
	assert.Equal(t, body, string(b))
}

func TestReadCopyPreparesACopyTheInfoDescribes(t *testing.T) {
	const body = `{"messages":[],"model":"m4"}`
	req := postChat(t, body)
	req.Header.Set("X-Caller", "c")
	var prepared *http.Request
	send, info, err := transport.ReadCopy(req, 0, func(c *http.Request) {
		prepared = c
		h := c.Header.Clone()
		h.Set("Authorization", "Bearer k")
		c.Header = h
	})
	require.NoError(t, err)
	assert.NotSame(t, req, send, "the copy goes, not the caller's request")
	assert.Same(t, prepared, send, "prepare is handed the copy that is sent")
	assert.Equal(t, "Bearer k", send.Header.Get("Authorization"))
	assert.Equal(t, "c", send.Header.Get("X-Caller"))
	assert.Equal(t, http.Header{"X-Caller": {"c"}}, req.Header, "the caller's header is not changed")
	assert.Equal(t, "m4", info.Model)
	assert.Equal(t, transport.EndpointChat, info.Endpoint)

	// The Info describes the copy: a decorator that is not steady's finds
	// it in the context of the request it is handed.
	var got []seen
	_, err = transport.Forward(recorder(&got), send, info)
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Same(t, info, got[0].info)
	assert.Equal(t, body, string(got[0].body))
}

func TestReadCopyBuffersABodyWithoutGetBodyInTheCopy(t *testing.T) {
	const body = `{"model":"m5","messages":[]}`
	req := postChat(t, body)
	req.GetBody = nil
	caller := io.NopCloser(bytes.NewBufferString(body))
	req.Body = caller

	send, info, err := transport.ReadCopy(req, 0, nil)
	require.NoError(t, err)
	assert.NotSame(t, req, send)
	assert.True(t, caller == req.Body, "the caller's request keeps its own body")
	require.NotNil(t, send.GetBody)
	assert.Equal(t, "m5", info.Model)
	for range 2 {
		b, err := send.GetBody()
		require.NoError(t, err)
		got, err := io.ReadAll(b)
		require.NoError(t, err)
		assert.Equal(t, body, string(got))
	}

	// A body that fails as it is read is closed, and nothing is sent.
	failing := &failingBody{}
	req = postChat(t, body)
	req.GetBody, req.Body = nil, failing
	send, info, err = transport.ReadCopy(req, 0, nil)
	require.Error(t, err)
	assert.Nil(t, send)
	assert.Nil(t, info)
	assert.True(t, failing.closed)
}

// failingBody fails every read, and records that it was closed.
type failingBody struct{ closed bool }

func (*failingBody) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }
func (f *failingBody) Close() error           { f.closed = true; return nil }

func TestBaseKeepsTheTransportItMarks(t *testing.T) {
	assert.Same(t, http.DefaultTransport, transport.Base(nil))
	tr := &http.Transport{}
	assert.Same(t, tr, transport.Base(tr), "an *http.Transport reads no Info already")
	var got []seen
	b := transport.Base(recorder(&got))
	assert.Same(t, b, transport.Base(b))
	_, ok := b.(transport.InfoRoundTripper)
	assert.True(t, ok)
}

func TestAnsweredAtSaysWhetherThisAttemptWasTimed(t *testing.T) {
	var none *transport.Info
	at, n := none.AnsweredAt()
	assert.True(t, at.IsZero())
	assert.Zero(t, n)
	none.SetAnsweredAt(time.Now()) // a nil Info records nothing, and does not panic

	_, info, err := transport.Read(postChat(t, `{"model":"m"}`), 0)
	require.NoError(t, err)
	_, before := info.AnsweredAt()
	t1 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	info.SetAnsweredAt(t1)
	at, n = info.AnsweredAt()
	assert.Equal(t, t1, at)
	assert.Equal(t, before+1, n)
	// The next attempt, not timed, leaves the count where it was: the
	// instant is the earlier attempt's, and the count says so.
	_, again := info.AnsweredAt()
	assert.Equal(t, n, again)
}

func TestInfoTokensIsMadeOnce(t *testing.T) {
	req := postChat(t, `{"model":"m","messages":[{"role":"user","content":"abcdefgh"}],"max_tokens":7}`)
	send, info, err := transport.Read(req, 0)
	require.NoError(t, err)
	p, o := info.Tokens(send)
	assert.Equal(t, 2, p)
	assert.Equal(t, 7, o)
	// Made once: a body that changed under the Info is not read again.
	send.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(`{}`)), nil }
	p, o = info.Tokens(send)
	assert.Equal(t, 2, p)
	assert.Equal(t, 7, o)
	// An Info that does not describe the request is not used.
	other := postChat(t, `{"model":"m","prompt":"abcdefghijkl","max_tokens":1}`)
	p, o = info.Tokens(other)
	assert.Equal(t, 3, p)
	assert.Equal(t, 1, o)
}

func TestAFallbackIsNotDescribedByTheInfoOfTheRequestItRewrote(t *testing.T) {
	// The request carries the Info of its first model in its context (as
	// InspectRequest passes it); the rewritten request must not be read
	// as that model by whoever looks in its context.
	var models []string
	srv := transport.Func(func(r *http.Request) (*http.Response, error) {
		info := transport.InfoOf(r)
		require.NotNil(t, info)
		models = append(models, info.Model)
		m, _, err := transport.RequestModel(r, 0)
		require.NoError(t, err)
		assert.Equal(t, info.Model, m, "the Info describes the body sent")
		status := http.StatusServiceUnavailable
		if info.Model == "small" {
			status = http.StatusOK
		}
		return &http.Response{StatusCode: status, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
	})
	// A decorator handed the Info beside the request that reads the body
	// the way any other does (RequestModel looks in the context first).
	var handedModels []string
	check := infoFunc(func(r *http.Request, info *transport.Info) (*http.Response, error) {
		m, _, err := transport.RequestModel(r, 0)
		require.NoError(t, err)
		handedModels = append(handedModels, m)
		assert.Equal(t, info.Model, m)
		return transport.Forward(srv, r, info)
	})
	req, err := transport.InspectRequest(postChat(t, `{"messages":[],"model":"big"}`), 0, nil)
	require.NoError(t, err)
	rt := transport.Fallback(map[string][]string{"big": {"small"}})(check)
	resp, err := rt.RoundTrip(req)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, []string{"big", "small"}, models)
	assert.Equal(t, []string{"big", "small"}, handedModels)
}

// infoFunc is an InfoRoundTripper made of a function.
type infoFunc func(*http.Request, *transport.Info) (*http.Response, error)

func (f infoFunc) RoundTrip(r *http.Request) (*http.Response, error) {
	return f(r, transport.InfoOf(r))
}

func (f infoFunc) RoundTripInfo(r *http.Request, info *transport.Info) (*http.Response, error) {
	return f(r, info)
}

// Each decorator of steady hands a request on as Forward does, whatever
// it found its next RoundTripper to be when it was made: an
// InfoRoundTripper is handed the request and its Info beside it, any
// other RoundTripper a copy of the request that carries the Info in its
// context, and a base marked with Base the request as it is.
func TestEveryDecoratorHandsOnAsForwardDoes(t *testing.T) {
	const body = `{"messages":[],"model":"m1"}`
	fast := bucket.New(bucket.PerMinute(1e12), bucket.WithBurst(1e12))
	for name, mw := range map[string]transport.Middleware{
		"retry":   retry.New(),
		"breaker": breaker.New(),
		"limit":   bucket.Limit(fast),
		"route":   transport.Route(nil, map[string]transport.Middleware{transport.EndpointChat: func(next http.RoundTripper) http.RoundTripper { return next }}),
		"other":   transport.Route(nil, map[string]transport.Middleware{transport.EndpointOther: func(next http.RoundTripper) http.RoundTripper { return next }}),
		"none":    transport.Route(nil, nil),
	} {
		t.Run(name, func(t *testing.T) {
			req := postChat(t, body)
			send, info, err := transport.Read(req, 0)
			require.NoError(t, err)

			var got []seen
			h := &handed{next: transport.Base(recorder(&got))}
			_, err = transport.Forward(mw(h), send, info)
			require.NoError(t, err)
			assert.Same(t, info, h.info, "an InfoRoundTripper is handed the Info beside the request")
			assert.Same(t, send.URL, h.req.URL)
			require.Len(t, got, 1)
			assert.Same(t, h.req, got[0].req, "a base gets the request as it is")

			got = nil
			_, err = transport.Forward(mw(recorder(&got)), postChat(t, body), nil)
			require.NoError(t, err)
			require.Len(t, got, 1)
			assert.Nil(t, got[0].info, "a request that was not read has no Info to carry")

			got = nil
			req = postChat(t, body)
			send, info, err = transport.Read(req, 0)
			require.NoError(t, err)
			_, err = transport.Forward(mw(recorder(&got)), send, info)
			require.NoError(t, err)
			require.Len(t, got, 1)
			assert.Same(t, info, got[0].info, "any other RoundTripper finds the Info in the request's context")
			assert.Equal(t, body, string(got[0].body))
		})
	}
}

// ReadAndSend hands send the request and its Info as Read returns them,
// and takes the Info back once send returns: it is emptied, for another
// request. An Info a context carries (Forward attached it, for a
// RoundTripper that may keep the request) is the request's: it stays.
func TestReadAndSendTakesTheInfoBackUnlessAContextCarriesIt(t *testing.T) {
	const body = `{"messages":[],"model":"m5"}`
	var got []seen
	req := postChat(t, body)
	var info *transport.Info
	resp, err := transport.ReadAndSend(req, 0, func(send *http.Request, i *transport.Info) (*http.Response, error) {
		info = i
		assert.Same(t, req, send, "a body with GetBody is not copied")
		assert.Equal(t, "m5", i.Model)
		assert.Equal(t, transport.EndpointChat, i.Endpoint)
		return transport.Forward(transport.Base(recorder(&got)), send, i)
	})
	require.NoError(t, err)
	require.NotNil(t, resp)
	require.Len(t, got, 1)
	assert.Equal(t, body, string(got[0].body))
	assert.Empty(t, info.Model, "the Info was taken back and emptied")
	assert.Empty(t, info.Endpoint)

	// Forwarded to a RoundTripper that reads the context: the copy it
	// was sent, which it may keep, carries the Info.
	resp, err = transport.ReadAndSend(postChat(t, `{"model":"m6"}`), 0, func(send *http.Request, i *transport.Info) (*http.Response, error) {
		return transport.Forward(recorder(&got), send, i)
	})
	require.NoError(t, err)
	require.Len(t, got, 2)
	kept := transport.InfoOf(resp.Request)
	require.NotNil(t, kept, "the request sent carries its Info")
	assert.Equal(t, "m6", kept.Model, "and it was not emptied")
	assert.Same(t, got[1].info, kept)
}

// ReadCopyAndSend hands send a prepared copy of the caller's request and
// its Info, and takes the Info back once send returns; the copy stays the
// answer's, and a body it cannot read sends nothing.
func TestReadCopyAndSendSendsAPreparedCopyAndTakesTheInfoBack(t *testing.T) {
	const body = `{"messages":[],"model":"m7"}`
	req := postChat(t, body)
	req.Header.Set("X-Caller", "c")
	var got []seen
	var info *transport.Info
	var sent *http.Request
	resp, err := transport.ReadCopyAndSend(req, 0, func(c *http.Request) {
		h := c.Header.Clone()
		h.Set("Authorization", "Bearer k")
		c.Header = h
	}, func(send *http.Request, i *transport.Info) (*http.Response, error) {
		info, sent = i, send
		assert.Equal(t, "m7", i.Model)
		assert.Equal(t, transport.EndpointChat, i.Endpoint)
		return transport.Forward(transport.Base(recorder(&got)), send, i)
	})
	require.NoError(t, err)
	require.NotNil(t, resp)
	assert.NotSame(t, req, sent, "the copy goes, not the caller's request")
	assert.Equal(t, "Bearer k", sent.Header.Get("Authorization"))
	assert.Equal(t, http.Header{"X-Caller": {"c"}}, req.Header, "the caller's header is not changed")
	require.Len(t, got, 1)
	assert.Equal(t, body, string(got[0].body))
	assert.Same(t, sent, got[0].req, "the copy is what reaches the base")
	assert.Empty(t, info.Model, "the Info was taken back and emptied")
	assert.Equal(t, "Bearer k", sent.Header.Get("Authorization"), "the copy is not reused")

	failing := &failingBody{}
	req = postChat(t, body)
	req.GetBody, req.Body = nil, failing
	resp, err = transport.ReadCopyAndSend(req, 0, nil, func(*http.Request, *transport.Info) (*http.Response, error) {
		t.Fatal("sent a request whose body could not be read")
		return nil, nil
	})
	require.Error(t, err)
	assert.Nil(t, resp)
	assert.True(t, failing.closed)
}

// A body that cannot be read is ReadAndSend's error: nothing is sent.
func TestReadAndSendSendsNothingOfABodyItCannotRead(t *testing.T) {
	req := postChat(t, `{"model":"m"}`)
	req.GetBody = nil
	failure := errors.New("connection reset")
	req.Body = io.NopCloser(io.MultiReader(strings.NewReader(`{"mod`), iotest.ErrReader(failure)))
	resp, err := transport.ReadAndSend(req, 0, func(*http.Request, *transport.Info) (*http.Response, error) {
		t.Fatal("sent a request whose body could not be read")
		return nil, nil
	})
	require.ErrorIs(t, err, failure)
	assert.Nil(t, resp)
}
