package reallimit

import (
	"bytes"
	"fmt"
	"time"
)

// Row is one run of the table: a stack against a server.
type Row struct {
	Server string  // the server case, e.g. "nginx burst=10 nodelay"
	Limit  Limiter // the server's limit, which the oracle knows
	Stack  string  // the client stack, e.g. "together"
	Told   string  // what the stack was told of the limit, e.g. "600/min (right)"
	Result Result  // what the run measured
}

// Oracle is the oracle's time for the row's run.
func (r Row) Oracle() time.Duration { return r.Result.Oracle(r.Limit) }

// Ratio is the run's time over the oracle's.
func (r Row) Ratio() float64 {
	o := r.Oracle()
	if o <= 0 {
		return 0
	}
	return float64(r.Result.Time) / float64(o)
}

// Table renders rows as a Markdown table, one line per run.
func Table(rows []Row) []byte {
	var b bytes.Buffer
	b.WriteString("| server | stack | told | requests | time | oracle | time/oracle | arrivals | 429s | 429 share | failed | unfinished | rtt |\n")
	b.WriteString("|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, r := range rows {
		res := r.Result
		ratio := fmt.Sprintf("%.3f", r.Ratio())
		if res.Lost() > 0 {
			ratio += " ✗" // the time of a run that lost requests is no measure of its speed
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %.2f s | %.2f s | %s | %d | %d | %.1f%% | %d | %d | %.1f ms |\n",
			r.Server, r.Stack, r.Told, res.Requests,
			res.Time.Seconds(), r.Oracle().Seconds(), ratio,
			res.Arrivals, res.Refused, 100*res.RefusedShare(), res.Failed, res.Unfinished,
			float64(res.RTT)/float64(time.Millisecond))
	}
	return b.Bytes()
}

// Document renders rows as the Markdown page docs/real-limiters.md holds:
// how the runs were made and graded, and the table.
func Document(rows []Row) []byte {
	var b bytes.Buffer
	b.WriteString("# steady against real rate limiters\n\n")
	b.WriteString("Written by `STEADY_REAL_DOCS=../../docs/real-limiters.md go test -run TestRealLimiters ./compare/reallimit/`\n")
	b.WriteString("(the path is relative to the package's directory); do not edit by hand.\n\n")
	fmt.Fprintf(&b, docIntro, DefaultCallers, DefaultMaxTime.Seconds())
	b.Write(Table(rows))
	return b.Bytes()
}

const docIntro = `Two rate limiters steady did not write, on loopback, each limiting per
Authorization header:

- **nginx** ` + "`limit_req`" + ` (Debian's nginx): a leaky bucket of 10 requests a second,
  with ` + "`burst=10 nodelay`" + ` on one location and no burst on the other, refusing
  with 429. It sends no rate headers and no Retry-After: a client learns the
  limit from its 429s alone.
- **express-rate-limit** 8 (Node): fixed windows of 100 requests per 10 s, each
  opened by the key's first request after the last one ended, announced in the
  IETF RateLimit header draft 7 (` + "`RateLimit: limit=100, remaining=99, reset=10`" + `),
  draft 8 (` + "`RateLimit: \"100-in-10sec\"; r=99; t=10`" + `) or, for reference, the older
  ` + "`X-RateLimit-Limit/-Remaining/-Reset`" + ` (reset as a Unix time). Every 429
  carries ` + "`Retry-After`" + ` in whole seconds, rounded up.

Each run is one stack sending the table's *requests* (chat completions) from
%d callers in a closed loop, with a key of its own, every request's deadline
%.0f s after the start (the run's cap). The stacks: ` + "`together.NewTransport`" + ` told
the right rate (` + "`WithRate(RouteChat, 600)`" + `), twice it, or nothing (0);
` + "`openai.NewTransport`" + `, as for an OpenAI-compatible host behind the limiter (vLLM
behind nginx), told the same (told nothing, it looks for OpenAI's stated limit in the
first answer, finds none, and starts slow); and ` + "`retry.New()`" + ` around
` + "`bucket.Limit(bucket.New(rate))`" + `, told the same.
*oracle plan* is the oracle as a client (` + "`reallimit.Plan`" + `): it sends each
request when the server's configuration first admits it, 1%% later for
timing noise, and shows how near the oracle a client on this machine comes.

The columns: *time* from the first request to the last answer; *oracle*, the
least time a client that knows the server's state needs: for nginx without
burst (N-1)/r, with burst b (N-1-b)/r, for express the full windows before
the last request, plus one median round trip (*rtt*, measured in the run);
*arrivals* and *429s* as the server answered them; *failed*, requests the
stack gave up on before their deadline; *unfinished*, requests cut by the
deadline or never sent. ✗ marks a run that lost requests, whose time says
nothing of its speed. The goals: nothing lost, time/oracle ≤ 1.15, 429
share ≤ 2%%.

All runs go at once, on a machine whose two cores other work shares: times
are wall-clock, and a stall of the machine costs a client against nginx
without burst the time it lasted, and often a 429.

`
