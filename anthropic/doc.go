// Package anthropic is steady's preset for Anthropic's Messages API.
//
// It assembles an [http.Client] whose transport limits each model to the
// rate the key is allowed, learnt from the first answer (Anthropic states
// its limits on every answer,
// anthropic-ratelimit-{requests,input-tokens,output-tokens}-{limit,
// remaining,reset}): one limiter of requests, and one each of input and
// output tokens, which Anthropic limits apart, each charging a request
// its estimate (the prompt's characters over four; max_tokens) and
// correcting it by the usage the answer reports, in its body or in the
// events of its stream. It retries what the server pushes back, 529
// overloaded included (honouring retry-after), stops sending to a model
// that is failing and falls back to another (a model with a fallback
// leaves an overloaded answer for it at once, not retried first), and
// never outlives the caller's deadline. Requests for Anthropic get the x-api-key and
// anthropic-version headers.
//
//	client := anthropic.NewClient() // API key from ANTHROPIC_API_KEY
//
// With the official SDK (github.com/anthropics/anthropic-sdk-go/v2), turn its
// retries off and let steady do them:
//
//	client := anthropicsdk.NewClient(
//		option.WithHTTPClient(anthropic.NewClient()),
//		option.WithMaxRetries(0),
//	)
package anthropic
