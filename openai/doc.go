// Package openai is steady's preset for OpenAI and OpenAI-compatible APIs
// (Groq, Fireworks, DeepInfra, vLLM, ...), and for Azure OpenAI.
//
// It assembles an [http.Client] whose transport limits each model of each
// endpoint to the rate the key is allowed, learnt from the first answer:
// OpenAI states its limits on every answer
// (x-ratelimit-{limit,remaining,reset}-{requests,tokens}), so nothing needs
// to be configured, and until that first answer the limiter starts slow.
// Beside each model's request limiter, a token limiter charges each request
// its estimate and corrects it by the usage the answer reports. It retries
// what the server pushes back (honouring retry-after-ms, Retry-After and
// x-should-retry), never retries an account out of quota
// (insufficient_quota, named by [ErrQuotaExceeded]) nor holds the model's
// requests for it, as it does for a rate limit, stops sending to a
// model that is failing and falls back to another, and never outlives the
// caller's deadline.
//
//	client := openai.NewClient() // API key from OPENAI_API_KEY
//
// With the official SDK (github.com/openai/openai-go/v3), turn its retries
// off and let steady do them:
//
//	client := openaisdk.NewClient(
//		option.WithHTTPClient(openai.NewClient()),
//		option.WithMaxRetries(0),
//	)
//
// An OpenAI-compatible host is the same preset at another root
// (WithBaseURL("https://api.groq.com/openai/v1"), WithAPIKey(...)); Azure
// OpenAI is [NewAzureTransport].
package openai
