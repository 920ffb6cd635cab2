package conformance

import "time"

// ScenariosFor returns the scenarios a preset for the provider of dialect
// d is held to: those of [Scenarios] as that provider would serve them
// (its dialect and rate headers; its buckets holding a minute of their
// rate, as OpenAI and Anthropic describe theirs; Anthropic's requests to
// /v1/messages), but for Together's own dynamic limit and, for Anthropic,
// which has no embeddings, the embedding job; and, for the dialects whose
// token limits count what a request uses, a token-bound key
// ([TokenBoundScenario]). Their goals are Together's. DialectTogether
// gives [Scenarios].
func ScenariosFor(d Dialect) []Scenario {
	if d == DialectTogether {
		return Scenarios()
	}
	headers := HeaderOpenAI
	if d == DialectAnthropic {
		headers = HeaderAnthropic | HeaderRetryAfter
	}
	var out []Scenario
	for _, sc := range Scenarios() {
		if sc.Name == "dynamic" || (d == DialectAnthropic && sc.Workload.Texts > 0) {
			continue
		}
		sc.Server.Dialect = d
		sc.Server.Headers = sc.Server.Headers&(HeaderRetryAfter|HeaderNoReset) | headers
		limits := make(map[string]Limit, len(sc.Server.Limits))
		for ep, lim := range sc.Server.Limits {
			if lim.resolved() == TokenBucket {
				lim.Burst, lim.TokenBurst = max(lim.RPM, 1), max(lim.TPM, 1)
			}
			limits[ep] = lim
		}
		sc.Server.Limits = limits
		if d == DialectAnthropic && sc.Workload.endpoint() == Chat {
			sc.Workload.Endpoint = Messages
			limits := make(map[string]Limit, len(sc.Server.Limits))
			for ep, lim := range sc.Server.Limits {
				if ep == Chat {
					ep = Messages
				}
				limits[ep] = lim
			}
			sc.Server.Limits = limits
			faults := append([]Fault(nil), sc.Server.Faults...)
			for i := range faults {
				if faults[i].Status == 503 {
					faults[i].Status = 529 // Anthropic's overload
				}
			}
			sc.Server.Faults = faults
		}
		out = append(out, sc)
	}
	return append(out, TokenBoundScenario(d))
}

// TokenBoundScenario is a key whose token limit binds before its request
// limit, against a provider whose token limit counts what a request uses
// (d is DialectOpenAI or DialectAnthropic): 600 requests a minute, but
// 3,000 tokens a minute (Anthropic: 1,800 output tokens a minute), held as
// a minute's bucket, as both providers document. Each request uses about
// 15 tokens (9 of output) and allows 512: a client that charges max_tokens
// and never learns what was used runs at a fortieth of the limit.
func TokenBoundScenario(d Dialect) Scenario {
	chatLatency := Config{Latency: 200 * time.Millisecond, LatencyJitter: 100 * time.Millisecond, Seed: 9, Dialect: d}
	endpoint, lim := Chat, Limit{RPM: 600, Burst: 600, TPM: 3000, TokenBurst: 3000}
	chatLatency.Headers = HeaderOpenAI
	if d == DialectAnthropic {
		endpoint, lim = Messages, Limit{RPM: 600, Burst: 600, TPM: 60000, TokenBurst: 60000, OutputTPM: 1800, OutputTokenBurst: 1800}
		chatLatency.Headers = HeaderAnthropic | HeaderRetryAfter
	}
	chatLatency.Limits = map[string]Limit{endpoint: lim}
	return Scenario{
		Name:  "token-bound",
		Title: "A token-bound key: 600 RPM, but tokens bind first, and answers report what was used",
		About: "The key's token limit (OpenAI: 3,000 a minute; Anthropic: 1,800 output tokens a minute) allows about 200 " +
			"requests a minute of what the requests use, a third of the request limit. Each request allows 512 tokens " +
			"and uses about 15. 16 callers send 400 requests.",
		Server:   chatLatency,
		Workload: Workload{Endpoint: endpoint, Model: ScenarioChatModel, Requests: 400, Concurrency: 16, MaxTokens: 512},
		Goal:     ScenarioGoal{TooMany: 0.02, Ratio: 1.10},
	}
}
