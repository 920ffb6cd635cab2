package conformance

import "time"

// Models the scenarios use: two chat models (the second is a fallback's
// alternate) and an embedding model, all in [DefaultModels].
const (
	ScenarioChatModel     = "meta-llama/Llama-3.3-70B-Instruct-Turbo"
	ScenarioFallbackModel = "mistralai/Mixtral-8x7B-Instruct-v0.1"
	ScenarioEmbedModel    = "BAAI/bge-large-en-v1.5"
)

// Scenarios returns the scenarios the comparison runs, each a situation
// Together's documentation or its users describe. The stacks are
// configured once, with the guide's figures (chat 600 RPM, embeddings
// 300 RPM); some scenarios hold the server to other limits, as a real key
// would be.
func Scenarios() []Scenario {
	chatLatency := Config{Latency: 200 * time.Millisecond, LatencyJitter: 100 * time.Millisecond}
	with := func(c Config, limits map[string]Limit, seed int64) Config {
		c.Limits, c.Seed = limits, seed
		return c
	}
	chat := func(requests, callers int) Workload {
		return Workload{Model: ScenarioChatModel, Requests: requests, Concurrency: callers}
	}
	// Under seed 6 no request of flaky-5xx is hit on each of its first
	// five passes, so four retries can save every one; about 1 seed in 100
	// holds a request that cannot be saved so (1,000 × 0.1⁵). The draws
	// follow the requests, not their order, so this holds for every stack.
	flaky := with(chatLatency, map[string]Limit{Chat: {RPM: 600}}, 6)
	flaky.Faults = []Fault{
		{Kind: FaultStatus, Status: 500, Share: 0.05},
		{Kind: FaultStatus, Status: 502, Share: 0.05 / 0.95}, // 5% of all requests as well
	}
	overloaded := with(chatLatency, map[string]Limit{Chat: {RPM: 600}}, 8)
	overloaded.Faults = []Fault{{Kind: FaultStatus, Status: 503, Model: ScenarioChatModel, Until: 3 * time.Minute}}
	window := with(chatLatency, map[string]Limit{Chat: {RPM: 600, Window: time.Minute}}, 5)
	window.Headers = HeaderEveryAnswer
	deadline := with(Config{}, map[string]Limit{Chat: {RPM: 2}}, 7)
	deadline.Headers = HeaderRetryAfter
	return []Scenario{
		{
			Name:  "chat-burst",
			Title: "Chat burst: 3,000 requests from 64 callers, 600 RPM enforced per second",
			About: "The server holds the key to 600 requests per minute, enforced as 10 per second. " +
				"64 callers send 3,000 chat requests as fast as they are answered.",
			Server:   with(chatLatency, map[string]Limit{Chat: {RPM: 600}}, 1),
			Workload: chat(3000, 64),
			Goal:     ScenarioGoal{TooMany: 0.005, Ratio: 1.02},
		},
		{
			Name:  "embed-job",
			Title: "The guide's embedding job: 10,000 texts, 20 per request, 300 RPM",
			About: "10,000 texts embedded 20 per request (500 requests) against 300 RPM (5 per second). " +
				"Stacks without a job driver of their own send the batches one after the other.",
			Server: with(Config{Latency: 100 * time.Millisecond, LatencyJitter: 50 * time.Millisecond},
				map[string]Limit{Embeddings: {RPM: 300}}, 2),
			Workload: Workload{Model: ScenarioEmbedModel, Texts: 10000, BatchSize: NaiveBatchSize},
			Goal:     ScenarioGoal{TooMany: 0.01, Ratio: 1.05},
		},
		{
			Name:  "lower-tier",
			Title: "A key whose real tier is lower than configured: 60 RPM real, clients told 600",
			About: "The stacks are set up for the guide's 600 RPM, but this key's tier allows 60 (one request per second). " +
				"16 callers send 600 requests.",
			Server:   with(chatLatency, map[string]Limit{Chat: {RPM: 60}}, 3),
			Workload: chat(600, 16),
			Goal:     ScenarioGoal{TooMany: 0.05, Ratio: 1.15},
		},
		{
			Name:  "dynamic",
			Title: "Together's dynamic limit: base 60 RPM, cap 600, growing with successful traffic",
			About: "The limit is twice the past hour's successful requests per minute, never below 60 nor above 600: " +
				"a client has to succeed steadily at one request per second for half an hour before it is allowed more. " +
				"64 callers send 2,400 requests.",
			Server:   with(chatLatency, map[string]Limit{Chat: {Dynamic: true, Base: 60, Cap: 600}}, 4),
			Workload: chat(2400, 64),
			Goal:     ScenarioGoal{TooMany: 0.02, Ratio: 1.10},
		},
		{
			Name:  "minute-window",
			Title: "A one-minute-window provider (rate headers on every answer)",
			About: "600 requests per fixed one-minute window, with x-ratelimit-limit, -remaining and -reset on every answer. " +
				"64 callers send 3,000 requests.",
			Server:   window,
			Workload: chat(3000, 64),
			Goal:     ScenarioGoal{TooMany: 0.01, Ratio: 1.10},
		},
		{
			Name:     "flaky-5xx",
			Title:    "Flaky 5xx: 10% of answers are 500 or 502",
			About:    "At 600 RPM, 5% of the requests get a 500 and 5% a 502. 16 callers send 1,000 requests.",
			Server:   flaky,
			Workload: chat(1000, 16),
			Goal:     ScenarioGoal{TooMany: 0.01, Ratio: 1.10},
		},
		{
			Name:  "deadline",
			Title: "A deadline shorter than the server's wait: 2 s deadlines, 429s that say come back in 30 s",
			About: "The key allows one request every 30 s (2 RPM) and 429s carry Retry-After. A request starts every second, " +
				"each with a 2-second deadline: the right answer to all but the first is a quick failure, not a wait.",
			Server:   deadline,
			Workload: Workload{Model: ScenarioChatModel, Requests: 20, Every: time.Second, Timeout: 2 * time.Second},
			// One 429 tells the wait; the requests after it fail without
			// being sent. A client that sends every one is 95% 429s.
			Goal: ScenarioGoal{TooMany: 0.5, MayFail: true},
		},
		{
			Name:  "overloaded",
			Title: "A model overloaded for minutes: 503 for 3 minutes",
			About: "The chat model answers 503 to everything for the first 3 minutes (its capacity, not the key's limit); " +
				"another model (" + ScenarioFallbackModel + ") is fine. 16 callers send 600 requests at 600 RPM.",
			Server:   overloaded,
			Workload: Workload{Model: ScenarioChatModel, Fallback: ScenarioFallbackModel, Requests: 600, Concurrency: 16},
			// The oracle sends to the other model while the first fails,
			// as a stack with a fallback does: one that waits the three
			// minutes out takes four times as long.
			Goal: ScenarioGoal{TooMany: 0.01, Ratio: 1.10},
		},
	}
}
