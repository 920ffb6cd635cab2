// Package together is steady's preset for Together AI.
//
// It assembles an [http.Client] whose transport limits each endpoint to the
// rate the key is allowed (and learns that rate from the server's answers),
// retries what the server pushes back, stops sending to a model that is
// failing and falls back to another, and never outlives the caller's
// deadline. It also parses Together's error
// answers into [*APIError], lists the model catalog ([Models]) and embeds a
// whole corpus at the rate the key allows ([EmbedAll]).
//
//	client := together.NewClient() // API key from TOGETHER_API_KEY
//	vecs, err := together.EmbedAll(ctx, client, "BAAI/bge-large-en-v1.5", texts)
//
// The defaults are the documented ones (chat and completions 600 requests a
// minute, embeddings 300, images 60, at most 3 running fine-tunes, batches of
// at most 100 requests); the 429s and rate headers the key really gets
// correct them at run time. The preset is a
// [github.com/steadyapi/steady/preset.Spec] ([Spec]) built by the builder
// every preset shares; the openai and anthropic packages are the same
// stack for those providers.
package together
